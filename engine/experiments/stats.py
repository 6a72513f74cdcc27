"""Statistics of stored runs: records in, numbers out, and the one rule for a difference.

Pure functions of a results DataFrame (columns as in `engine.core.store.RECORD_COLUMNS`): the
mean and spread over seeds per point of a curve and a point's label; and `compare`, the one
rule that says when a difference between two sets of runs counts (`RULE`): a paired t interval
where the runs share their seeds, Welch's otherwise, no call on fewer than 3 seeds a side, and
`holm` for the comparisons one sentence makes together. And `failed_runs`, the rule that calls a
run failed rather than a result (`FAILED_RULE`): every mean, curve and reading leaves those out
(`summarize` and the readings' `clean` do), and the pages say so (`failed_note`). The
sentences built on it live in
`engine.experiments.readings`. No plotting library is imported here, so the command line and a
GPU box need neither plotly nor Streamlit; the figures live in `ui.kit.figures`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import pandas as pd
from scipy.stats import t as student_t

from engine.core.datasets import LabelSize
from engine.core.strategies import StrategyError, get_strategy

# size: the point's `LabelSize` (labels per class, "all" or not); labels_per_class: its count
SUMMARY_COLUMNS = ["strategy", "size", "labels_per_class", "mean", "std", "seeds", "n_train"]


OTHER_LABELS = {"lora": "LoRA"}  # strategies of the text sweep that no image strategy names


def strategy_label(name: str) -> str:
    try:
        return get_strategy(name).label
    except StrategyError:
        return OTHER_LABELS.get(name, name)


# --- failed runs -------------------------------------------------------------------------------
# A run "ended at chance" within CHANCE_MARGIN points of 100 / classes; the other seeds of its
# point "learned" when their median is at least LEARNED_MARGIN points above chance. A run that
# ended at chance where the others learned is a failed run (a diverged or degenerate training:
# with NaN or exploding losses every prediction falls on one class), not a result: its gap to
# the others' median is then over 35 points, more than 3.5 times the largest spread of seeds
# measured at any point of the lessons' packs (the 1-label scratch runs' 4-7 points; at most
# 10), so a run that trained normally is marked failed with a chance well under 1 in 1,000
# (tests/test_failed_runs.py simulates it). A point where every seed is at chance is a result
# (the strategy does not learn there) and is kept. A run without a finite accuracy did not
# finish, and is failed too.
CHANCE_MARGIN = 5.0
LEARNED_MARGIN = 40.0
# the columns that tell one point of an experiment from another (those a record has)
POINT_COLUMNS = ("strategy", "size", "target", "source", "train_source",
                 "backbone", "lr", "backbone_lr", "severity", "unit", "curve")
FAILED_RULE = (f"A run is called failed, not a result, when it ended at chance (within "
               f"{CHANCE_MARGIN:g} points of guessing) while the median of the other seeds at "
               f"its point is at least {LEARNED_MARGIN:g} points above chance, or when it ended "
               "without a number. A failed run is left out of every curve, mean and reading, "
               "and the page names it.")


def label_sizes(records: pd.DataFrame) -> pd.Series:
    """Each run's (or summary row's) `LabelSize`: the one place that reads a record's pair
    (`labels_per_class`, `all_labels`); a frame without the flag has drawn sizes only."""
    if "size" in records:
        return records["size"]
    every = records["all_labels"] if "all_labels" in records else [False] * len(records)
    return pd.Series([LabelSize.of(k, a) for k, a in zip(records["labels_per_class"], every)],
                     index=records.index, dtype=object)


def chance_levels(records: pd.DataFrame) -> pd.Series:
    """Each run's chance accuracy (%), 100 / its target's classes; NaN where not known. The
    classes are read off the records: a run drawn at k labels per class has k x classes
    labelled examples."""
    chance = pd.Series(float("nan"), index=records.index)
    if not {"labels_per_class", "n_train"} <= set(records):
        return chance
    drawn = records[label_sizes(records).map(lambda size: size.count > 0 and not size.every)
                    .astype(bool)]
    if drawn.empty:
        return chance
    classes = (drawn["n_train"] / drawn["labels_per_class"]).round()
    by = drawn["target"] if "target" in drawn else pd.Series("", index=drawn.index)
    per_target = classes.groupby(by).median()
    targets = records["target"] if "target" in records else pd.Series("", index=records.index)
    found = targets.map(per_target)
    return (100.0 / found).where(found >= 2)


def failed_runs(records: pd.DataFrame) -> pd.Series:
    """True for each failed run of `records` (`FAILED_RULE`); False for every other."""
    if records.empty or "test_accuracy" not in records:
        return pd.Series(False, index=records.index, dtype=bool)
    accuracy = pd.to_numeric(records["test_accuracy"], errors="coerce")
    failed = ~accuracy.map(lambda v: math.isfinite(v))
    chance = chance_levels(records)
    if "labels_per_class" in records:
        records = records.assign(size=label_sizes(records))
    keys = [c for c in POINT_COLUMNS if c in records]
    if not keys:
        return failed
    for _, rows in records.groupby(keys, dropna=False, sort=False).groups.items():
        values = accuracy[rows]
        for row in rows:
            level, value = chance[row], values[row]
            others = values.drop(row)
            others = others[others.map(lambda v: math.isfinite(v))]
            if (math.isfinite(level) and math.isfinite(value) and len(others)
                    and value <= level + CHANCE_MARGIN
                    and others.median() >= level + LEARNED_MARGIN):
                failed[row] = True
    return failed


def without_failed(records: pd.DataFrame) -> pd.DataFrame:
    """The runs that are results: `records` less its failed runs."""
    return records if records.empty else records[~failed_runs(records)]


def failed_note(records: pd.DataFrame) -> Optional[str]:
    """A sentence naming the failed runs of `records` and why, or None when there is none."""
    failed = records[failed_runs(records)]
    if failed.empty:
        return None
    chance = chance_levels(records)
    named = []
    for index, run in failed.head(MAX_FAILED_NAMED).iterrows():
        where = [strategy_label(str(run["strategy"]))] if "strategy" in run else []
        if "labels_per_class" in run:
            where.append(label_sizes(failed.loc[[index]]).iloc[0].text)
        if "seed" in run:
            where.append(f"seed {int(run['seed'])}")
        value = pd.to_numeric(pd.Series([run["test_accuracy"]]), errors="coerce").iloc[0]
        what = (f"{value:.1f}%, chance being {chance[index]:.0f}%" if math.isfinite(value)
                else "no accuracy")
        named.append(f"{', '.join(where)} ({what})")
    more = len(failed) - len(named)
    listed = "; ".join(named) + (f"; and {more} more" if more else "")
    runs = "1 run" if len(failed) == 1 else f"{len(failed)} runs"
    verb = "is" if len(failed) == 1 else "are"
    return (f"{runs} {verb} left out as failed, not results: ended at chance while the other "
            f"seeds at the same point learned (or without a number): {listed}. They stay in "
            "the store and in the CSV export; read them as a sign that training is unstable "
            "there.")


MAX_FAILED_NAMED = 3  # failed runs named one by one in `failed_note`


def summarize(records: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of test accuracy over seeds, per (strategy, labels per class),
    failed runs left out (`failed_runs`).

    std is the sample standard deviation (ddof=1), 0 when a point has a single seed.
    """
    records = without_failed(records)
    if records.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    records = records.assign(size=label_sizes(records))
    grouped = records.groupby(["strategy", "size"], sort=True)
    out = grouped.agg(mean=("test_accuracy", "mean"), std=("test_accuracy", "std"),
                      seeds=("seed", "nunique"), n_train=("n_train", "mean")).reset_index()
    out["labels_per_class"] = [size.count for size in out["size"]]
    out["std"] = out["std"].fillna(0.0)
    out["n_train"] = out["n_train"].round().astype(int)
    return out[SUMMARY_COLUMNS]


ALPHA = 0.05  # the error rate of one call: a 95% interval
MIN_GAP = 1.0  # points: a smaller gap of means is not called, whatever the interval says
MIN_SEEDS = 3  # runs a side below which nothing is called
RULE = ("How a difference is called: a gap between two strategies counts only when its 95% "
        "confidence interval excludes 0 and the gap is at least 1 point, with at least 3 seeds "
        "on each side. Runs that share a seed share their labelled subset, so they are compared "
        "seed by seed (a paired t interval); otherwise the interval is Welch's. With fewer than "
        "3 seeds a side nothing is called. Where one sentence covers several sizes, the calls "
        "are corrected for their number (Holm), so that the whole sentence keeps a 5% error rate.")
TIE_RULE = RULE  # the name the pages show it under


@dataclass(frozen=True)
class Comparison:
    """Two sets of runs compared by `RULE`: side a's mean minus side b's, with its interval."""

    gap: float  # mean of a - mean of b, in points (paired: the mean of the per-seed gaps)
    low: float  # the interval of the gap at `level` (-inf with one run a side: no spread)
    high: float  # (+inf likewise)
    seeds: int  # runs on the smaller side (paired: the pairs)
    counts: bool  # the rule calls the gap: enough seeds, interval excludes 0, |gap| >= MIN_GAP
    paired: bool = False  # compared seed by seed (True) or by Welch's interval (False)
    p: float = 1.0  # two-sided p value of the gap being 0 (1.0 where it cannot be computed)
    level: float = 1 - ALPHA  # confidence of [low, high]: 0.95, or higher after Holm
    se: float = math.inf  # standard error of the gap
    df: float = math.nan  # degrees of freedom of its t distribution

    @property
    def sign(self) -> int:
        """+1 when a is ahead, -1 when b is, 0 when the rule does not call it."""
        return 0 if not self.counts else (1 if self.gap > 0 else -1)

    @property
    def too_few(self) -> bool:
        """Fewer than MIN_SEEDS runs a side: the rule makes no call at all."""
        return self.seeds < MIN_SEEDS

    def at_level(self, level: float) -> "Comparison":
        """The same gap with its interval at another confidence level (and `counts` re-read)."""
        low, high = _interval(self.gap, self.se, self.df, level)
        return _decided(self.gap, low, high, self.seeds, self.paired, self.p, level, self.se, self.df)


def _interval(gap: float, se: float, df: float, level: float) -> tuple[float, float]:
    if not math.isfinite(se) or not df > 0:
        return -math.inf, math.inf
    if se == 0:
        return gap, gap
    half = float(student_t.ppf(0.5 + level / 2, df)) * se
    return gap - half, gap + half


def _decided(gap, low, high, seeds, paired, p, level, se, df) -> Comparison:
    counts = seeds >= MIN_SEEDS and (low > 0 or high < 0) and abs(gap) >= MIN_GAP
    return Comparison(gap=gap, low=low, high=high, seeds=seeds, counts=bool(counts), paired=paired,
                      p=p, level=level, se=se, df=df)


def _mean_var(values: list[float]) -> tuple[float, float]:
    """Mean and sample variance (ddof=1; nan for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def compare(a: Sequence[float], b: Sequence[float], paired: bool) -> Comparison:
    """Compare two sets of accuracies (points, one per seed) by `RULE`.

    paired: a[i] and b[i] come from the same seed (the same labelled subset); the interval is
    the paired t interval of the per-seed gaps, and pairs with a NaN are left out. Otherwise the
    interval is Welch's and NaN runs are left out of their side. ValueError when a side has no
    finite run, or when paired sides differ in length.
    """
    a, b = [float(v) for v in a], [float(v) for v in b]
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired sides need one run each per seed, got {len(a)} and {len(b)}")
        pairs = [(x, y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]
        if not pairs:
            raise ValueError("a comparison needs at least one seed with a finite run on each side")
        gaps = [x - y for x, y in pairs]
        gap, var = _mean_var(gaps)
        n = len(gaps)
        se, df = (math.sqrt(var / n), n - 1.0) if n > 1 else (math.inf, math.nan)
    else:
        a = [v for v in a if math.isfinite(v)]
        b = [v for v in b if math.isfinite(v)]
        if not a or not b:
            raise ValueError("a comparison needs at least one finite run on each side")
        (ma, va), (mb, vb) = _mean_var(a), _mean_var(b)
        gap, n = ma - mb, min(len(a), len(b))
        if len(a) > 1 and len(b) > 1:
            wa, wb = va / len(a), vb / len(b)
            se = math.sqrt(wa + wb)
            df = (wa + wb) ** 2 / (wa ** 2 / (len(a) - 1) + wb ** 2 / (len(b) - 1)) if se > 0 else 1.0
        else:
            se, df = math.inf, math.nan
    if math.isfinite(se) and se > 0:
        p = float(2 * student_t.sf(abs(gap) / se, df))
    elif se == 0:
        p = 0.0 if gap != 0 else 1.0
    else:
        p = 1.0
    low, high = _interval(gap, se, df, 1 - ALPHA)
    return _decided(gap, low, high, n, paired, p, 1 - ALPHA, se, df)


def holm(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Comparison]:
    """The comparisons of one sentence, called together with Holm's step-down correction.

    Only comparisons with enough seeds are tested (the others are never called). Sorted by p,
    the i-th (from 0) of m is tested at alpha / (m - i) until one fails; each comes back with
    its interval at the level it was tested at (those after the first failure at that failure's
    level), so `counts` still means "the interval excludes 0 and the gap is at least 1 point".
    In the input's order.
    """
    tested = sorted((i for i, c in enumerate(comparisons) if not c.too_few),
                    key=lambda i: comparisons[i].p)
    out = list(comparisons)
    m, stopped_at = len(tested), None
    for rank, i in enumerate(tested):
        level = 1 - alpha / (m - rank) if stopped_at is None else stopped_at
        c = comparisons[i].at_level(level)
        if stopped_at is None and not (c.low > 0 or c.high < 0):
            stopped_at = level
        out[i] = c
    return out


def compare_runs(a: pd.DataFrame, b: pd.DataFrame, paired: Optional[bool] = None) -> Comparison:
    """`compare` of two sets of stored runs (columns `seed`, `test_accuracy`).

    paired=None: paired when both sides hold the same seeds, once each (runs that share a seed
    share their labelled subset), Welch's interval otherwise.
    """
    if paired is None:
        sa, sb = a["seed"].tolist(), b["seed"].tolist()
        paired = len(set(sa)) == len(sa) and sorted(sa) == sorted(sb)
    if paired:
        a, b = a.sort_values("seed"), b.sort_values("seed")
    return compare(a["test_accuracy"].tolist(), b["test_accuracy"].tolist(), paired=paired)


def level_text(level: float) -> str:
    """'95%', '98.3%': a confidence level as the sentences write it."""
    percent = 100 * level
    return f"{percent:.0f}%" if abs(percent - round(percent)) < 0.05 else f"{percent:.1f}%"


def interval_text(c: Comparison) -> str:
    """'95% interval 10.2 to 16.8, 5 seeds' (or '1 seed, no interval'): what a verdict rests on."""
    seeds = f"{c.seeds} seed{'s' if c.seeds != 1 else ''}"
    if not math.isfinite(c.low):
        return f"{seeds}, no interval"
    return f"{level_text(c.level)} interval {c.low:.1f} to {c.high:.1f}, {seeds}"


def seeds_text(seeds: int) -> str:
    """'1 seed' or 'mean of 3 seeds': how a number over seeds is qualified."""
    return "1 seed" if seeds == 1 else f"mean of {seeds} seeds"
