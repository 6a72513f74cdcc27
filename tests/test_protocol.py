"""The one experiment driver: keys that stay put, one path for every backend, stored units reused.

The pinned keys below were computed before the experiments moved onto `run_experiment`; a result
stored by an earlier version of the app is found under the same key, so it is reused, not
retrained, and a job started from an old link is the same job.
"""

import pytest

from engine.core.store import ResultStore
from engine.core.train import TrainBudget
from engine.experiments.diagnostics import DiagnosticsConfig
from engine.experiments.forgetting import ForgettingConfig
from engine.experiments.protocol import (ExperimentGroup, LocalBackend, Progress, Unit, digest,
                                         run_experiment, stored_units, unit_counts)
from engine.experiments.sweep import SweepGroup, SweepSpec, plan_runs, run_sweep


def test_sweep_keys_are_unchanged():
    spec = SweepSpec(seeds=3)  # the default lesson before it became 5 seeds
    plans = plan_runs(spec)
    assert spec.key() == "25207e4a83844fa1503d"
    assert len(plans) == 63
    assert SweepSpec().key() == "793038a0c0feacbcc22b" and len(plan_runs(SweepSpec())) == 105
    assert plan_runs(SweepSpec())[0].run_key == plans[0].run_key  # its first 3 seeds are reused
    assert (plans[0].strategy, plans[0].labels_per_class, plans[0].seed, plans[0].run_key) == \
        ("scratch", 1, 0, "ba3aa49392d0fb9fc4f0")
    assert (plans[-1].strategy, plans[-1].labels_per_class, plans[-1].seed, plans[-1].run_key) == \
        ("finetune", 0, 2, "8af2a1d8ddc84cb3ae8e")
    spec = SweepSpec(strategies=("probe", "lora:r4", "partial:2"), labels_per_class=(1, 0), seeds=2,
                     target="uci_digits~rotate:30")
    assert spec.key() == "d8f5ed6243255dece017"
    assert [u.key for u in spec.units()] == [
        "1224a64103b2c3714126", "b7673d9ca699382671fa", "abe65754dc0df7eb860a",
        "393df556331598cf67d9", "9480082bad085689d543", "a95ffadce2cb5b7de482",
        "8008f0865066973c07bd", "9c8344c2e29ca2c85fbf", "dba3b9cdf202a1c793a4",
        "78c4201537fa6af8cda2", "56fdd8601fcd3cb3249d", "6c039c3b700e9b82552a"]


def test_forgetting_diagnostics_and_group_keys_are_unchanged():
    config = ForgettingConfig(ewc_lambda=10.0, arms=("ewc", "replay"))
    assert config.key() == "forgetting-5b3fd874a4ff7980408b"
    assert [u.key for u in config.units()] == ["forgetting:66035e08de16ee5e5e8f",
                                               "forgetting:5c9fc8c9867af79573bf"]
    diagnostics = DiagnosticsConfig()
    assert diagnostics.key() == "diagnostics-7d3e3041002e2e971a08"
    assert [(u.label, u.key) for u in diagnostics.units()] == [
        ("baseline", "diagnostics:d14df361520b536f1407"),
        ("lr=0.0003", "diagnostics:087fffb6ecf5953daaaa"),
        ("lr=0.003", "diagnostics:f29ce2cb874d176fe5ae")]
    group = SweepGroup((SweepSpec(seeds=1), SweepSpec(seeds=2)))
    assert group.key() == "a1cbf6cb2daf28af0b1f"
    assert isinstance(group, ExperimentGroup)


def test_digest_is_the_stores_key_form():
    assert digest({"b": 1, "a": [1, 2]}) == digest({"a": [1, 2], "b": 1})
    assert len(digest({})) == 20


TINY = TrainBudget(epochs=1, min_steps=2, max_steps=3)


def tiny_spec(**changes) -> SweepSpec:
    fields = dict(strategies=("scratch",), labels_per_class=(1, 2), seeds=1, budget=TINY)
    return SweepSpec(**{**fields, **changes})


def test_stored_units_are_reused_not_retrained(tmp_path, one_torch_thread):
    store = ResultStore(tmp_path / "runs.sqlite")
    spec = tiny_spec()
    first = run_experiment(spec, store, backend=LocalBackend(concurrency=1))
    assert (first.trained, first.reused, first.cancelled) == (2, 0, False)
    before = {k: dict(r) for k, r in stored_units(spec, store).items()}
    events: list[Progress] = []
    again = run_sweep(spec, store, on_progress=events.append)
    assert (again.trained, again.reused) == (0, 2)
    assert stored_units(spec, store) == before  # the same rows, untouched
    assert [e.message for e in events] == ["2 of 2 already stored"]
    wider = tiny_spec(labels_per_class=(1, 2, 5))
    grown = run_experiment(wider, store, backend=LocalBackend(concurrency=1))
    assert (grown.trained, grown.reused) == (1, 2)
    assert unit_counts(wider, store) == (3, 3)


def test_a_group_runs_its_parts_as_one_job(tmp_path, one_torch_thread):
    store = ResultStore(tmp_path / "runs.sqlite")
    group = SweepGroup((tiny_spec(), tiny_spec(target="uci_digits~rotate:30", labels_per_class=(1,))))
    events: list[Progress] = []
    outcome = run_experiment(group, store, on_progress=events.append,
                             backend=LocalBackend(concurrency=1))
    assert (outcome.trained, outcome.reused, outcome.cancelled) == (3, 0, False)
    finished = [e for e in events if e.record is not None]
    assert [(e.done, e.total) for e in finished] == [(1, 3), (2, 3), (3, 3)]
    assert unit_counts(group, store) == (3, 3)


def test_cancelling_keeps_finished_units_and_stores_nothing_half_trained(tmp_path, one_torch_thread):
    store = ResultStore(tmp_path / "runs.sqlite")
    spec = tiny_spec(labels_per_class=(1, 2, 5))
    stored: list[Progress] = []

    def on_progress(event: Progress) -> None:
        if event.record is not None:
            stored.append(event)
    outcome = run_experiment(spec, store, on_progress=on_progress, should_stop=lambda: len(stored) >= 1,
                             backend=LocalBackend(concurrency=1))
    assert outcome.cancelled and outcome.trained == 1
    assert unit_counts(spec, store) == (1, 3)


class _Counting:
    """A minimal experiment: two units whose 'training' writes a number."""

    def __init__(self):
        self.trained: list[str] = []

    def key(self):
        return "counting"

    def check(self):
        pass

    def units(self):
        return [Unit(f"counting:{i}", f"unit {i}", i) for i in range(2)]

    def pretraining(self):
        return None

    def workbench(self, device, pretrained):
        outer = self

        class Bench:
            concurrency = 1

            def order(self, todo, workers):
                return todo

            def train(self, unit, should_stop, say):
                say(f"training {unit.label}")
                outer.trained.append(unit.label)
                return {"run_key": unit.key, "value": unit.spec * 10}
        return Bench()

    def finished_text(self, unit, record):
        return f"{unit.label}: {record['value']}"


def test_any_experiment_that_follows_the_protocol_runs(tmp_path):
    store = ResultStore(tmp_path / "runs.sqlite")
    experiment = _Counting()
    events: list[Progress] = []
    outcome = run_experiment(experiment, store, on_progress=events.append)
    assert outcome.trained == 2 and experiment.trained == ["unit 0", "unit 1"]
    assert [e.message for e in events] == ["0 of 2 already stored", "training unit 0", "unit 0: 0",
                                           "training unit 1", "unit 1: 10"]
    assert run_experiment(experiment, store).reused == 2 and experiment.trained == ["unit 0", "unit 1"]


def test_a_record_under_the_wrong_key_is_refused(tmp_path):
    class Wrong(_Counting):
        def workbench(self, device, pretrained):
            bench = super().workbench(device, pretrained)
            train = bench.train
            bench.train = lambda unit, stop, say: {**train(unit, stop, say), "run_key": "other"}
            return bench
    with pytest.raises(ValueError, match="other"):
        run_experiment(Wrong(), ResultStore(tmp_path / "runs.sqlite"))


def test_the_feature_pass_reports_its_stage_and_progress():
    """Frozen features computed for a sweep say so on the job's progress line as they go
    ('Feature extraction: 900 of 1,797 target images ...'), about every tenth of the pass."""
    import torch
    from torch import nn

    from engine.core.features import extract
    from engine.experiments.sweep import SweepContext, SweepSpec

    calls = []
    out = extract(nn.Flatten(), torch.zeros(300, 1, 2, 2), torch.device("cpu"),
                  lambda done, total: calls.append((done, total)))
    assert out.shape == (300, 4) and calls[-1] == (300, 300) and calls == sorted(calls)

    bench = SweepContext.__new__(SweepContext)  # only what the progress line reads
    bench.spec, said = SweepSpec(), []
    bench.say = None
    assert bench._feature_progress() is None  # nobody to tell: no callback
    bench.say = said.append
    on_batch = bench._feature_progress()
    for done in range(18, 1798, 18):
        on_batch(min(done, 1797), 1797)
    on_batch(1797, 1797)
    assert 10 <= len(said) <= 11
    assert said[-1].startswith("Feature extraction: 1,797 of 1,797 target images through ")


def test_a_feature_pass_is_timed_and_the_page_quotes_this_servers_time(tmp_path, monkeypatch):
    """The feature cache notes how long each pass took here; Which source? quotes that, per
    input size, and says so when no pass has run yet (no typed-in guess)."""
    import torch
    from torch import nn

    from engine.core.features import cached_features, measured_passes
    from ui.lessons.sources import pass_cost

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path))
    assert measured_passes() == []
    assert pass_cost().startswith("No feature pass has run on this server yet")
    x = torch.zeros(40, 3, 8, 8)
    _, hit = cached_features(nn.Flatten, "tiny@imagenet", x, {"input": (3, 96, 96)},
                             torch.device("cpu"))
    assert not hit
    (facts,) = measured_passes()
    assert facts["images"] == 40 and facts["seconds"] >= 0 and facts["input"] == [3, 96, 96]
    assert pass_cost().startswith("Measured on this server: ") and "at 96 px (40 images)" in pass_cost()
    _, hit = cached_features(nn.Flatten, "tiny@imagenet", x, {"input": (3, 96, 96)},
                             torch.device("cpu"))
    assert hit and len(measured_passes()) == 1  # read from disk: no new pass, no new note
