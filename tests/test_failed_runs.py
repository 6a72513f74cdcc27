"""Failed runs: the rule that calls a run failed rather than a result
(`engine.experiments.stats.failed_runs`), tested on hand-made points, on any numbers
(hypothesis) and against simulated seeds that trained normally (its error rate); and that every
mean, reading and chart leaves them out and names them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from engine.experiments.readings.common import clean
from engine.experiments.readings.curves import head_start
from engine.experiments.stats import (CHANCE_MARGIN, LEARNED_MARGIN, chance_levels, failed_note,
                                      failed_runs, summarize)

CLASSES = 10  # chance 10%


def runs(points: dict[tuple[str, int], list[float]], classes: int = CLASSES) -> pd.DataFrame:
    """Records of `points`: (strategy, labels per class) -> each seed's accuracy (%)."""
    rows = [{"strategy": s, "labels_per_class": k, "all_labels": False, "seed": seed,
             "test_accuracy": value, "n_train": k * classes, "target": "uci_digits",
             "train_seconds": 0.1, "device": "cpu"}
            for (s, k), values in points.items() for seed, value in enumerate(values)]
    return pd.DataFrame(rows)


def test_a_run_at_chance_among_seeds_that_learned_is_failed_and_left_out():
    records = runs({("probe", 10): [69.6, 49.7, 10.0, 66.8], ("scratch", 10): [55.0, 58.0, 52.0, 61.0]})
    assert list(chance_levels(records).round(6).unique()) == [10.0]
    failed = failed_runs(records)
    assert failed.tolist() == [False, False, True, False] + [False] * 4
    summary = summarize(records).set_index("strategy")
    assert summary.loc["probe", "seeds"] == 3
    assert summary.loc["probe", "mean"] == pytest.approx((69.6 + 49.7 + 66.8) / 3)
    assert len(clean(records)) == 7
    note = failed_note(records)
    assert note.startswith("1 run is left out as failed") and "Linear probe" in note
    assert "10 labels per class, seed 2 (10.0%, chance being 10%)" in note
    # the reading compares the three seeds that learned with scratch's four (Welch: unpaired)
    (claim,) = head_start(records, 10).claims
    assert claim.comparison.seeds == 3 and claim.a == "probe"
    assert claim.comparison.gap == pytest.approx((69.6 + 49.7 + 66.8) / 3 - 56.5)
    assert failed_note(records.drop(index=2)) is None


def test_a_point_where_no_seed_learns_is_a_result_and_kept():
    records = runs({("scratch", 1): [10.2, 11.0, 9.8, 14.0]})
    assert not failed_runs(records).any() and failed_note(records) is None
    assert summarize(records)["seeds"].iloc[0] == 4


def test_a_run_without_a_number_is_failed():
    records = runs({("finetune", 5): [80.0, float("nan"), 82.0]})
    assert failed_runs(records).tolist() == [False, True, False]
    assert "(no accuracy)" in failed_note(records)


def test_two_classes_have_a_chance_of_fifty():
    records = runs({("probe", 5): [50.5, 95.0, 97.0, 96.0]}, classes=2)
    assert chance_levels(records).iloc[0] == 50.0
    assert failed_runs(records).tolist() == [True, False, False, False]


accuracy = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(accuracy, min_size=1, max_size=8), st.sampled_from([2, 3, 10, 100]))
def test_a_failed_run_is_always_far_below_the_others_and_at_chance(values, classes):
    """For any accuracies: a run called failed is within CHANCE_MARGIN of chance, and at least
    LEARNED_MARGIN - CHANCE_MARGIN points below the median of the others; never the only run."""
    records = runs({("probe", 3): values}, classes=classes)
    chance = 100.0 / classes
    for row in np.flatnonzero(failed_runs(records).to_numpy()):
        others = [v for i, v in enumerate(values) if i != row]
        assert others, "a lone run was called failed"
        assert values[row] <= chance + CHANCE_MARGIN
        assert float(np.median(others)) - values[row] >= LEARNED_MARGIN - CHANCE_MARGIN - 1e-9


def test_seeds_that_trained_normally_are_almost_never_called_failed():
    """Simulated points of 5 seeds that all trained normally: mean anywhere from 40 points above
    chance up, spread 10 points (above the largest measured in the lessons): under 1 run in
    1,000 called failed."""
    rng = np.random.default_rng(0)
    points, seeds = 4000, 5
    means = rng.uniform(10.0 + LEARNED_MARGIN, 95.0, size=points)
    values = np.clip(rng.normal(means[:, None], 10.0, size=(points, seeds)), 0.0, 100.0)
    records = pd.concat([runs({("probe", 3): list(v)}).assign(target=f"t{i}")
                         for i, v in enumerate(values)], ignore_index=True)
    rate = failed_runs(records).mean()
    print(f"normally trained runs called failed: {rate:.5f}")
    assert rate < 1e-3
    # and a run at chance planted in each of 200 of those points is always found
    planted = records.copy()
    targets = [f"t{i}" for i in range(200)]
    rows = planted.index[planted["target"].isin(targets) & (planted["seed"] == 0)]
    planted.loc[rows, "test_accuracy"] = 10.0
    found = failed_runs(planted)
    learned = [float(np.median(values[i, 1:])) >= 10.0 + LEARNED_MARGIN for i in range(200)]
    assert found[rows].tolist() == learned and sum(learned) > 100


def test_a_chart_names_the_failed_runs_it_leaves_out():
    def script():
        import pandas as pd
        import plotly.graph_objects as go

        from ui.kit.exports import show_chart

        records = pd.DataFrame([
            {"strategy": "probe", "labels_per_class": 10, "all_labels": False, "seed": seed,
             "test_accuracy": value, "n_train": 100, "target": "uci_digits"}
            for seed, value in enumerate([66.0, 61.0, 10.0])])
        show_chart(go.Figure(), "chart", runs=records)

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    (warning,) = at.warning
    assert warning.value.startswith("1 run is left out as failed")


def test_a_head_start_sentence_names_fine_tuning_as_an_activity():
    """'fine-tuning is ahead of training from scratch', not 'the fine-tune is ahead'."""
    records = runs({("finetune", 2): [86.0, 88.0, 87.0, 85.0, 89.0],
                    ("scratch", 2): [70.0, 72.0, 71.0, 69.0, 73.0]})
    text = head_start(records, 2).text
    assert "fine-tuning is ahead of training from scratch" in text and "the fine-tune" not in text
