"""Verdicts read off stored runs by the one rule of `engine.experiments.stats` (`difference`,
`TIE_RULE`), in the forms the lessons' readings share.

`summary_difference` applies the rule to two rows of a summary (mean, std, seeds), which gives
the verdict `difference` gives on the runs behind them; `trend` names the direction of a series
whose steps were judged by the rule; `sizes_text` and `and_list` list what a verdict covers.
These return judgements and short phrases, not a lesson's sentences: each reading words its own.
Pure Python: nothing here draws, reads widgets or trains.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from engine.core.datasets import labels_per_class_text, labels_text
from engine.experiments.stats import Difference, difference


def summary_difference(a: Mapping, b: Mapping) -> Difference:
    """`difference` of the runs behind two summary rows (`mean`, `std` over seeds with ddof=1,
    0 for one seed, `seeds`): side a minus side b, the same verdict from the summary alone."""
    return Difference(gap=float(a["mean"]) - float(b["mean"]),
                      threshold=max(float(a["std"]), float(b["std"])),
                      seeds=int(min(a["seeds"], b["seeds"])))


def step_signs(series: Sequence[Sequence[float]]) -> tuple[int, ...]:
    """The verdict on each step of a series (runs at each of its points, in order): +1 up,
    -1 down, 0 level by the rule."""
    return tuple(difference(after, before).sign for before, after in zip(series, series[1:]))


def trend(signs: Sequence[int]) -> str:
    """'up', 'down', 'level' (no step counts) or 'both': where a series' counted steps go."""
    moved = {s for s in signs if s}
    if not moved:
        return "level"
    if len(moved) == 2:
        return "both"
    return "up" if 1 in moved else "down"


def and_list(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def sizes_text(sizes: Sequence[int]) -> str:
    """'1 label per class', '1, 5 and 20 labels per class' (ALL_LABELS written 'all')."""
    if len(sizes) == 1:
        return labels_per_class_text(sizes[0])
    return and_list([labels_text(k) for k in sizes]) + " labels per class"
