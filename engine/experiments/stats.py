"""Statistics of stored runs, and the sentences read off them: records in, numbers out.

Pure functions of a results DataFrame (columns as in `engine.core.store.RECORD_COLUMNS`): the
mean and spread over seeds per point of a curve, a point's label, and the sentence that reads
the head start at one labelled-set size, and the one rule that says when a difference between
two sets of runs counts (`difference`, `TIE_RULE`). No plotting library is imported here, so the command
line and a GPU box need neither plotly nor Streamlit; the figures live in `ui.figures`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import pandas as pd

from engine.core.strategies import StrategyError, get_strategy

SUMMARY_COLUMNS = ["strategy", "labels_per_class", "all_labels", "mean", "std", "seeds", "n_train"]


def strategy_label(name: str) -> str:
    try:
        return get_strategy(name).label
    except StrategyError:
        return name


def summarize(records: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation of test accuracy over seeds, per (strategy, labels per class).

    std is the sample standard deviation (ddof=1), 0 when a point has a single seed.
    """
    if records.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    grouped = records.groupby(["strategy", "labels_per_class", "all_labels"], sort=True)
    out = grouped.agg(mean=("test_accuracy", "mean"), std=("test_accuracy", "std"),
                      seeds=("seed", "nunique"), n_train=("n_train", "mean")).reset_index()
    out["std"] = out["std"].fillna(0.0)
    out["n_train"] = out["n_train"].round().astype(int)
    return out[SUMMARY_COLUMNS]


def point_label(labels_per_class: int, all_labels: bool) -> str:
    return f"all ({labels_per_class})" if all_labels else str(labels_per_class)


MIN_GAP = 1.0  # points: a smaller difference of means is a tie, whatever the seeds say
TIE_RULE = ("A difference counts when the two means differ by at least 1 point and by more than "
            "the larger of the two sides' standard deviations over seeds; otherwise it is a tie.")


@dataclass(frozen=True)
class Difference:
    """Two sets of runs compared by `TIE_RULE`: side a's mean minus side b's."""

    gap: float  # mean of a - mean of b, in points
    threshold: float  # what |gap| must exceed (and MIN_GAP reach) to count
    seeds: int  # runs on the smaller side

    @property
    def counts(self) -> bool:
        return abs(self.gap) >= MIN_GAP and abs(self.gap) > self.threshold

    @property
    def sign(self) -> int:
        """+1 when a is ahead, -1 when b is, 0 for a tie."""
        return 0 if not self.counts else (1 if self.gap > 0 else -1)


def _std(values: Sequence[float]) -> float:
    """Sample standard deviation (ddof=1); 0 for a single value."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    """Compare two sets of accuracies (one per seed) by `TIE_RULE`. With one seed a side has no
    spread, so only MIN_GAP guards against noise; callers say how many seeds a verdict rests on."""
    a, b = [float(v) for v in a], [float(v) for v in b]
    if not a or not b:
        raise ValueError("a difference needs at least one run on each side")
    return Difference(gap=sum(a) / len(a) - sum(b) / len(b), threshold=max(_std(a), _std(b)),
                      seeds=min(len(a), len(b)))


def seeds_text(seeds: int) -> str:
    """'1 seed' or 'mean of 3 seeds': how a number over seeds is qualified."""
    return "1 seed" if seeds == 1 else f"mean of {seeds} seeds"


def head_start_sentence(records: pd.DataFrame, labels_per_class: int,
                        baseline: str = "scratch") -> Optional[str]:
    """One sentence reading the best transfer strategy's lead over `baseline` at one size,
    judged by `TIE_RULE`.

    e.g. "At 2 labels per class, the linear probe beats training from scratch by 13.5 points
    (mean of 3 seeds)." None when the point lacks the baseline or any other strategy.
    """
    at = records[records["labels_per_class"] == labels_per_class]
    base = at[at["strategy"] == baseline]
    others = at[at["strategy"] != baseline]
    if base.empty or others.empty:
        return None
    best_name = others.groupby("strategy")["test_accuracy"].mean().idxmax()
    best = others[others["strategy"] == best_name]
    diff = difference(best["test_accuracy"].tolist(), base["test_accuracy"].tolist())
    size = point_label(labels_per_class, bool(best["all_labels"].iloc[0]))
    size_text = f"{size} labels per class" if size != "1" else "1 label per class"
    who = f"the {strategy_label(best_name).lower()}"
    base_text = "training from scratch" if baseline == "scratch" else f"the {strategy_label(baseline).lower()}"
    if not diff.counts:
        return (f"At {size_text}, {who} and {base_text} are level: the {abs(diff.gap):.1f}-point "
                f"gap is within the seeds' spread or under {MIN_GAP:g} point ({seeds_text(diff.seeds)}).")
    verb = "beats" if diff.gap > 0 else "trails"
    return f"At {size_text}, {who} {verb} {base_text} by {abs(diff.gap):.1f} points ({seeds_text(diff.seeds)})."
