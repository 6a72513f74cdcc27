"""Statistics of stored runs, and the sentences read off them: records in, numbers out.

Pure functions of a results DataFrame (columns as in `engine.core.store.RECORD_COLUMNS`): the
mean and spread over seeds per point of a curve, a point's label, and the sentence that reads
the head start at one labelled-set size. No plotting library is imported here, so the command
line and a GPU box need neither plotly nor Streamlit; the figures live in `ui.figures`.
"""

from __future__ import annotations

from typing import Optional

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


def head_start_sentence(records: pd.DataFrame, labels_per_class: int,
                        baseline: str = "scratch") -> Optional[str]:
    """One sentence reading the best transfer strategy's lead over `baseline` at one size.

    e.g. "At 2 labels per class, the linear probe beats training from scratch by 13.5 points
    (mean of 3 seeds)." None when the point lacks the baseline or any other strategy.
    """
    summary = summarize(records)
    at = summary[summary["labels_per_class"] == labels_per_class]
    base = at[at["strategy"] == baseline]
    others = at[at["strategy"] != baseline]
    if base.empty or others.empty:
        return None
    best = others.loc[others["mean"].idxmax()]
    gap = float(best["mean"] - base["mean"].iloc[0])
    seeds = int(min(best["seeds"], base["seeds"].iloc[0]))
    size = point_label(labels_per_class, bool(best["all_labels"]))
    size_text = f"{size} labels per class" if size != "1" else "1 label per class"
    who = f"the {strategy_label(best['strategy']).lower()}"
    base_text = "training from scratch" if baseline == "scratch" else f"the {strategy_label(baseline).lower()}"
    seed_text = f"mean of {seeds} seed{'s' if seeds != 1 else ''}"
    if abs(gap) < 0.05:
        return f"At {size_text}, {who} and {base_text} are level ({seed_text})."
    verb = "beats" if gap > 0 else "trails"
    return f"At {size_text}, {who} {verb} {base_text} by {abs(gap):.1f} points ({seed_text})."
