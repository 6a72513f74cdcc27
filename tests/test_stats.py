"""The one rule for a difference (`engine.experiments.stats.compare`, `holm`), checked against
random runs: how often it calls a difference that is not there, and that more seeds let it see
a real one more often. Simulated with a fixed seed, so every run of the suite sees the same draws.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from engine.experiments.stats import MIN_GAP, MIN_SEEDS, compare, compare_runs, holm

REPS = 1000


def _call_rate(rng, seeds: int, gap: float, sigma: float, paired: bool, shared: float = 0.0) -> float:
    """Share of REPS simulated experiments in which the rule calls a difference. `shared`: the
    spread of a per-seed effect both sides share (the labelled subset), which pairing removes."""
    calls = 0
    for _ in range(REPS):
        subset = rng.normal(0, shared, seeds)
        a = 70 + gap + subset + rng.normal(0, sigma, seeds)
        b = 70 + subset + rng.normal(0, sigma, seeds)
        calls += compare(a, b, paired=paired).counts
    return calls / REPS


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("sigma", [1.0, 3.0, 5.0])
def test_under_equal_true_means_the_rule_calls_a_difference_at_most_about_5_percent(paired, sigma):
    rng = np.random.default_rng(25)
    for seeds in (1, 2, 3, 5, 10):
        rate = _call_rate(rng, seeds, 0.0, sigma, paired, shared=4.0)
        # 5% is the interval's error rate; 1000 draws put a true 5% under 6.5% with 98% odds
        assert rate <= 0.065, (seeds, rate)
        if seeds < MIN_SEEDS:
            assert rate == 0.0  # no call at all on too few seeds


@pytest.mark.parametrize("paired", [True, False])
def test_a_true_gap_of_two_sigma_is_called_more_often_with_10_seeds_than_with_3(paired):
    rng = np.random.default_rng(7)
    sigma = 3.0
    three, ten = (_call_rate(rng, n, 2 * sigma, sigma, paired) for n in (3, 10))
    assert ten > three + 0.2, (three, ten)
    assert ten > 0.9


def test_more_seeds_never_make_a_real_gap_harder_to_see():
    """The old rule (gap > the larger standard deviation) saw a 2-point gap with sigma 3 less
    often as seeds were added; this one sees it more often."""
    rng = np.random.default_rng(3)
    rates = [_call_rate(rng, n, 2.0, 3.0, False) for n in (3, 10, 40)]
    assert rates[0] < rates[1] < rates[2], rates


def test_the_interval_is_the_textbook_paired_and_welch_interval():
    a, b = [71.0, 74.5, 69.0, 73.0], [65.0, 70.0, 66.5, 66.0]
    c = compare(a, b, paired=True)
    d = np.subtract(a, b)
    low, high = sp.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=sp.sem(d))
    assert (c.gap, c.low, c.high) == pytest.approx((d.mean(), low, high))
    assert c.p == pytest.approx(sp.ttest_rel(a, b).pvalue) and c.paired and c.seeds == 4
    w = compare(a, b[:3], paired=False)
    res = sp.ttest_ind(a, b[:3], equal_var=False)
    ci = res.confidence_interval(0.95)
    assert (w.low, w.high) == pytest.approx((ci.low, ci.high)) and w.p == pytest.approx(res.pvalue)
    assert w.seeds == 3 and not w.paired


def test_too_few_seeds_never_count_and_a_small_gap_never_counts():
    assert not compare([90.0, 90.0], [10.0, 10.0], paired=True).counts  # 2 seeds: no call
    assert compare([90.0, 90.0], [10.0, 10.0], paired=True).too_few
    one = compare([80.0], [70.0], paired=False)
    assert one.seeds == 1 and math.isinf(one.low) and not one.counts
    tiny = compare([50.5, 50.6, 50.5], [50.0, 50.0, 50.0], paired=True)  # certain but < 1 point
    assert tiny.low > 0 and abs(tiny.gap) < MIN_GAP and not tiny.counts
    exact = compare([60.0, 61.0, 62.0], [50.0, 51.0, 52.0], paired=True)  # every seed +10
    assert exact.low == exact.high == 10.0 and exact.counts and exact.sign == 1


def test_nan_runs_are_left_out_and_empty_sides_refused():
    c = compare([70.0, float("nan"), 72.0, 71.0], [60.0, 61.0, float("nan"), 60.5], paired=True)
    assert c.seeds == 2  # the two seeds with both runs finite
    assert compare([70.0, float("nan"), 72.0], [60.0], paired=False).seeds == 1
    with pytest.raises(ValueError):
        compare([float("nan")], [1.0], paired=False)
    with pytest.raises(ValueError):
        compare([1.0, 2.0], [1.0], paired=True)


def test_holm_calls_in_step_down_order_at_the_level_it_tested():
    strong = compare([80, 81, 82, 80.5, 81.5], [60, 61, 62, 60.5, 61.5], paired=True)
    weak = compare([73.0, 74.0, 76.0], [70.0, 70.0, 70.0], paired=True)  # p about 0.04
    few = compare([70.0], [60.0], paired=False)
    assert weak.counts and weak.p > 0.025
    out = holm([weak, strong, few])
    assert out[1].counts and out[1].level == pytest.approx(1 - 0.05 / 2)
    assert out[0].counts and out[0].level == pytest.approx(1 - 0.05 / 1)  # tested second, at 5%
    assert out[2] == few  # too few seeds: untouched, never called
    # a family of 3 testable ones stops at the first failure: what follows keeps its level
    fam = holm([strong, weak, weak])
    assert fam[0].counts and not fam[1].counts and not fam[2].counts
    assert fam[1].level == fam[2].level == pytest.approx(1 - 0.05 / 2)
    for c in fam:  # counts still means "the interval excludes 0 and the gap is at least 1 point"
        assert c.counts == ((c.low > 0 or c.high < 0) and abs(c.gap) >= MIN_GAP)


def test_holm_keeps_the_family_error_rate_where_separate_calls_do_not():
    rng = np.random.default_rng(11)
    any_separate = any_holm = 0
    for _ in range(1000):
        family = [compare(rng.normal(0, 3, 5), rng.normal(0, 3, 5), paired=False) for _ in range(7)]
        any_separate += any(c.counts for c in family)
        any_holm += any(c.counts for c in holm(family))
    assert any_holm / 1000 <= 0.065 < any_separate / 1000


def test_runs_that_share_their_seeds_are_paired_and_others_are_not():
    import pandas as pd

    a = pd.DataFrame({"seed": [2, 0, 1], "test_accuracy": [72.0, 70.0, 71.0]})
    b = pd.DataFrame({"seed": [0, 1, 2], "test_accuracy": [60.0, 61.0, 62.0]})
    c = compare_runs(a, b)
    assert c.paired and c.low == c.high == 10.0  # sorted by seed before pairing
    assert not compare_runs(a, b[b["seed"] < 2]).paired
