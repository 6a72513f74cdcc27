"""Predict first: the learner's predicted accuracies set against the measured ones.

A prediction is a number the learner typed before running: test accuracy (%) for one strategy
at one labelled-set size (labels per class, never "all", whose size the learner cannot know in
advance). `compare` lines predictions up with the means over seeds of the stored runs,
`comparison_sentences` says how far off each one was (`ui.kit.figures.with_predictions` draws them
onto a transfer-curve figure). Pure functions: nothing here stores predictions or draws.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from engine.core.datasets import LabelSize, labels_per_class_text
from engine.experiments.stats import strategy_label, summarize

Predictions = Mapping[tuple[str, int], float]  # (strategy, labels per class) -> accuracy (%)
COMPARE_COLUMNS = ["strategy", "labels_per_class", "predicted", "measured", "error", "seeds"]


def check_prediction(value: float) -> float:
    """A predicted accuracy must be a percentage; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError(f"a predicted accuracy is a percentage from 0 to 100, got {value!r}")
    return float(value)


def compare(records: pd.DataFrame, predictions: Predictions) -> pd.DataFrame:
    """One row per prediction with a measured mean: predicted, measured, error = measured -
    predicted (points; positive when the prediction was too low), seeds averaged."""
    summary = summarize(records)
    rows = []
    for (strategy, k), predicted in sorted(predictions.items()):
        at = summary[(summary["strategy"] == strategy) & (summary["size"] == LabelSize(k))]
        if at.empty:
            continue
        measured = float(at["mean"].iloc[0])
        rows.append({"strategy": strategy, "labels_per_class": int(k),
                     "predicted": float(predicted), "measured": measured,
                     "error": measured - float(predicted), "seeds": int(at["seeds"].iloc[0])})
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def comparison_sentences(table: pd.DataFrame) -> list[str]:
    """'Linear probe at 2 labels per class: you predicted 60.0%, the runs averaged 71.3%
    (11.3 points higher than you thought).' One per row, then the mean absolute error."""
    out = []
    for row in table.itertuples():
        size = labels_per_class_text(row.labels_per_class)
        if abs(row.error) < 0.05:
            verdict = "spot on"
        else:
            verdict = (f"{abs(row.error):.1f} points {'higher' if row.error > 0 else 'lower'} "
                       "than you predicted")
        out.append(f"{strategy_label(row.strategy)} at {size}: you predicted "
                   f"{row.predicted:.1f}%, the runs averaged {row.measured:.1f}% over "
                   f"{row.seeds} seed{'s' if row.seeds != 1 else ''} ({verdict}).")
    if len(table) > 1:
        out.append(f"Across your {len(table)} predictions you were off by "
                   f"{table['error'].abs().mean():.1f} points on average.")
    return out
