"""DESIGN.md's worked example of a new lesson section: "Does a lower fine-tuning learning rate
help at few labels?" on How much to train. Its settings and link, the two sweeps that differ
only in learning rate drawn as two curves (records say what varied), its reading under random
runs, the page's Run through the job manager, and the command line."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings as hyp_settings, strategies as st

from test_pages import TIMEOUT, no_jobs_left_running, open_page, texts, wait_until  # noqa: F401

DEPTH = "pages/depth.py"


def test_the_link_round_trips_and_the_default_shares_the_curves_lessons_runs():
    from engine.experiments.lessons.depth import LearningRateSettings
    from engine.experiments.sweep import SweepSpec, plan_runs

    default = LearningRateSettings()
    assert LearningRateSettings.from_query(default.to_query()) == (default, [])
    assert LearningRateSettings.from_query({}) == (default, [])
    odd = LearningRateSettings(lower=3e-4, labels_per_class=(1, 5), seeds=2)
    assert LearningRateSettings.from_query(odd.to_query()) == (odd, [])
    assert default.experiment().key() == "68278afe88eff7c63c9e"  # pinned: a stored link reopens it
    usual, lower = default.specs()
    # the lessons' rate: the very runs Transfer curves stores for fine-tuning
    curves_runs = {p.run_key for p in plan_runs(SweepSpec())}
    assert {p.run_key for p in plan_runs(usual)} <= curves_runs
    assert not {p.run_key for p in plan_runs(lower)} & curves_runs
    settings, notices = LearningRateSettings.from_query({"lr_low": "0.5", "lr_labels": "50"})
    assert settings == default and len(notices) == 2  # refused values fall back, each said


def test_the_settings_refuse_what_the_form_cannot_make():
    from engine.experiments.lessons.depth import LearningRateSettings

    for make, reason in [(lambda: LearningRateSettings(lower=3e-3), "lower rate"),
                         (lambda: LearningRateSettings(labels_per_class=()), "labels"),
                         (lambda: LearningRateSettings(labels_per_class=(50,)), "labels"),
                         (lambda: LearningRateSettings(seeds=0), "seeds")]:
        with pytest.raises(ValueError, match=reason):
            make()


def _records(rows) -> pd.DataFrame:
    """Records of both rates: (lr, labels per class, seed, accuracy)."""
    return pd.DataFrame([{"strategy": "finetune", "labels_per_class": k, "all_labels": False,
                          "seed": seed, "test_accuracy": acc, "run_key": f"{lr}-{k}-{seed}",
                          "n_train": 10 * k, "lr": lr} for lr, k, seed, acc in rows])


class _Store:
    """Stands in for the result store (the tests replace `stored_records`)."""


def test_two_sweeps_that_differ_only_in_learning_rate_draw_as_two_curves(monkeypatch):
    from engine.experiments.lessons import curve_sets
    from engine.experiments.lessons.depth import LearningRateSettings

    settings = LearningRateSettings(labels_per_class=(1, 2), seeds=3)
    rows = [(lr, k, seed, (80.0 if lr == 3e-3 else 70.0) + seed) for lr in (3e-3, 1e-3)
            for k in (1, 2) for seed in range(3)]
    records = _records(rows)
    monkeypatch.setattr(curve_sets, "stored_records",
                        lambda spec, store: records[records["lr"] == spec.budget.lr])
    drawn = settings.records(_Store())
    usual, lower = (c.label for c in settings.curves())
    assert sorted(drawn["strategy"].unique()) == sorted([usual, lower])
    assert len(drawn) == 12
    assert drawn.groupby("strategy")["test_accuracy"].mean().round(1).to_dict() == {usual: 81.0,
                                                                                   lower: 71.0}
    said = settings.readings(_Store())
    assert said[0].text.startswith("Fine-tuning at lr 0.001 is behind fine-tuning at lr 0.003 at 2 of 2")
    assert "fell behind" in said[1].text


@hyp_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seeds=st.integers(1, 5), gaps=st.lists(st.floats(-30, 30), min_size=2, max_size=2),
       noise=st.lists(st.floats(-10, 10), min_size=20, max_size=20))
def test_the_reading_follows_the_rule_for_any_runs(monkeypatch, seeds, gaps, noise):
    """Random runs: the sentence's call at each size is the rule's (paired, Holm over sizes),
    too few seeds never calls, and every quoted gap is the runs' own mean gap."""
    from engine.experiments.lessons import curve_sets
    from engine.experiments.lessons.depth import LearningRateSettings
    from engine.experiments.readings.common import sizes_family

    settings = LearningRateSettings(labels_per_class=(1, 2), seeds=seeds)
    rows, i = [], 0
    for j, k in enumerate((1, 2)):
        for seed in range(seeds):
            base = 60.0 + noise[i % 20]
            rows += [(3e-3, k, seed, base), (1e-3, k, seed, min(100.0, max(0.0, base + gaps[j] + noise[(i + 7) % 20] / 5)))]
            i += 1
    records = _records(rows)
    monkeypatch.setattr(curve_sets, "stored_records",
                        lambda spec, store: records[records["lr"] == spec.budget.lr])
    said = settings.readings(_Store())
    usual, lower = (c.label for c in settings.curves())
    calls = sizes_family(settings.records(_Store()), lower, usual)
    claims = said[0].claims
    assert [c.comparison for c in claims] == [calls[1], calls[2]]
    for claim in claims:
        assert f"{claim.comparison.gap:+.1f} points" in said[0].text
    if seeds < 3:
        assert all(c.comparison.too_few for c in claims) and "too few seeds" in said[0].text
        assert not any("paid off" in s.text or "fell behind" in s.text for s in said)
    assert ("paid off" in " ".join(s.text for s in said)) == any(c.sign == 1 and not c.too_few
                                                                  for c in calls.values())


def test_the_section_runs_from_the_page(pretrained, empty_default_store):
    from engine.experiments.lessons.depth import LearningRateSettings
    from ui.kit.jobs import job_manager

    at = open_page(DEPTH)
    assert any("lower fine-tuning learning rate" in h.value for h in at.header)
    run = next(b for b in at.button if b.form_id == "learning_rate_settings")
    labels = next(m for m in at.multiselect if m.label == "Labels per class")
    labels.set_value([1])
    next(n for n in at.number_input if n.key == "lr_seeds_input").set_value(1)
    run.click().run(timeout=TIMEOUT)
    settings = LearningRateSettings(labels_per_class=(1,), seeds=1)
    wait_until(lambda: not (job_manager().status(settings.experiment().key())).active,
               what="the learning-rate runs")
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["lr_labels"] in ("1", ["1"]) and at.query_params["lr_seeds"] in ("1", ["1"])
    assert "Fine-tuning at lr 0.001" in texts(at.markdown)
    assert "too few seeds" in texts(at.markdown)  # one seed: nothing is called
    assert any(b.label == "Run again with 3 seeds" for b in at.button)


def test_the_command_line_runs_the_section(tmp_path):
    env = {"TRANSFERLAB_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([sys.executable, "-m", "engine", "lesson", "depth", "--section",
                             "learning-rate", "--list"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and "learning-rate: {'lr_low': '0.001'" in listed.stdout
    bad = subprocess.run([sys.executable, "-m", "engine", "lesson", "depth", "--set", "lr_low=5",
                          "--list"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "lr_low must list values among" in bad.stderr
