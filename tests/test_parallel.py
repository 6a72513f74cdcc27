"""Runs trained side by side (`engine.core.parallel`): real overlap, same numbers, stops and errors."""

import threading
import time

import pytest
import torch

from engine.core.parallel import default_concurrency, run_concurrently
from engine.experiments.sweep import SweepSpec, run_sweep
from engine.core.train import TrainBudget

CPU = torch.device("cpu")


def test_items_really_run_at_the_same_time():
    barrier = threading.Barrier(2, timeout=10)  # breaks unless two items wait together

    def work(item):
        barrier.wait()
        return item * 10

    results = dict(run_concurrently([1, 2, 3, 4], work, workers=2, device=CPU))
    assert results == {1: 10, 2: 20, 3: 30, 4: 40}


def test_one_worker_runs_in_order_in_the_calling_thread():
    seen = []
    out = list(run_concurrently(["a", "b"], lambda i: seen.append(threading.current_thread()) or i,
                                workers=1, device=CPU))
    assert out == [("a", "a"), ("b", "b")]
    assert seen == [threading.current_thread()] * 2


def test_each_run_gets_one_cpu_thread_and_the_setting_is_restored():
    before = torch.get_num_threads()
    inside = list(run_concurrently([0, 1, 2], lambda i: torch.get_num_threads(), workers=2, device=CPU))
    assert [n for _, n in inside] == [1, 1, 1]
    assert torch.get_num_threads() == before


def test_an_error_stops_new_items_and_is_raised():
    started = []

    def work(item):
        started.append(item)
        if item == 0:
            raise RuntimeError("boom")
        time.sleep(0.2)
        return item

    with pytest.raises(RuntimeError, match="boom"):
        list(run_concurrently(list(range(8)), work, workers=2, device=CPU))
    assert len(started) < 8


def test_stop_skips_items_not_started():
    stop = threading.Event()

    def work(item):
        if item == 1:
            stop.set()
        return item

    out = [i for i, _ in run_concurrently(list(range(10)), work, workers=2, device=CPU,
                                           should_stop=stop.is_set)]
    assert 1 in out and len(out) < 10


def test_default_concurrency_follows_the_cpu_threads():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert default_concurrency(CPU) == 2
        torch.set_num_threads(1)
        assert default_concurrency(CPU) == 1
    finally:
        torch.set_num_threads(before)


def test_a_sweep_gives_the_same_numbers_whatever_its_concurrency(pretrained, tmp_path):
    """Each run is independent of which thread trains it: identical accuracies and losses."""
    from engine.core.store import ResultStore

    spec = SweepSpec(labels_per_class=(1, 3), seeds=2,
                     budget=TrainBudget(epochs=2, min_steps=6, max_steps=8))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # the sequential side also computes with one thread per run
        one = run_sweep(spec, ResultStore(tmp_path / "one.sqlite"), device=CPU, concurrency=1)
        torch.set_num_threads(2)
        two = run_sweep(spec, ResultStore(tmp_path / "two.sqlite"), device=CPU, concurrency=2)
    finally:
        torch.set_num_threads(before)
    assert one.trained == two.trained == 12
    cols = ["strategy", "labels_per_class", "seed", "test_accuracy", "run_key"]
    a = one.records[cols].sort_values("run_key").reset_index(drop=True)
    b = two.records[cols].sort_values("run_key").reset_index(drop=True)
    assert a.equals(b)
    assert a["test_accuracy"].nunique() > 1  # not a degenerate comparison
