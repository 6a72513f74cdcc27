"""Predict first, on the Transfer curves page: the learner types the accuracy they expect for
each strategy at a few labelled-set sizes, and once runs are stored the chart and a few
sentences compare prediction with result.

Predictions are the learner's own numbers, kept only in their session (`PREDICTIONS_KEY`);
`engine.study.predictions` does the comparison and draws them onto the figure. Nothing here trains.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core.datasets import ALL_LABELS, labels_per_class_text
from engine.experiments.stats import strategy_label
from engine.study.predictions import check_prediction, compare, comparison_sentences
from engine.experiments.sweep import SweepSpec
from ui.figures import with_predictions

PREDICTIONS_KEY = "transfer_curves.predictions"  # session_state: {(strategy, k): accuracy %}
MAX_SIZES = 4  # labelled-set sizes offered for predictions


def prediction_sizes(spec: SweepSpec) -> list[int]:
    """Up to MAX_SIZES of the spec's labels per class: the two smallest (where pretraining
    matters most), the largest, and one from the middle. 'all' is left out: its size is only
    known once the run has drawn it."""
    sizes = [k for k in spec.labels_per_class if k != ALL_LABELS]
    if len(sizes) <= MAX_SIZES:
        return sizes
    middle = sizes[2:-1]
    return [sizes[0], sizes[1], middle[len(middle) // 2], sizes[-1]]


def prediction_panel(spec: SweepSpec) -> dict[tuple[str, int], float]:
    """The predictions form for the spec's strategies; returns the saved predictions that
    apply to this spec (possibly none)."""
    saved: dict = st.session_state.setdefault(PREDICTIONS_KEY, {})
    sizes = prediction_sizes(spec)
    applies = {key: v for key, v in saved.items()
               if key[0] in spec.strategies and key[1] in sizes}
    with st.expander("Predict first: how accurate will each strategy be?",
                     expanded=not applies, icon=":material/psychology:"):
        st.markdown(
            "Before you press Run, write down the test accuracy you expect, in percent: 10% "
            "is guessing among the ten digits, 100% is perfect. Leave a box empty to skip it. "
            "Your predictions are drawn on the chart as dashed lines labelled **your "
            "prediction**, and once the runs are stored the page says how far off each one "
            "was. They stay in this browser session only.")
        if not sizes:
            st.caption("Choose at least one number of labels per class other than 'all' to "
                       "predict.")
            return {}
        with st.form("predictions", border=False):
            header = st.columns(len(sizes) + 1)
            for column, k in zip(header[1:], sizes):
                column.markdown(f"**{labels_per_class_text(k)}**")
            values = {}
            for strategy in spec.strategies:
                row = st.columns(len(sizes) + 1, vertical_alignment="center")
                row[0].markdown(strategy_label(strategy))
                for column, k in zip(row[1:], sizes):
                    values[(strategy, k)] = column.number_input(
                        f"{strategy_label(strategy)} at {labels_per_class_text(k)} (%)",
                        min_value=0.0, max_value=100.0, value=saved.get((strategy, k)), step=1.0,
                        format="%.1f", key=f"predict.{strategy}.{k}", placeholder="%",
                        label_visibility="collapsed")
            save = st.form_submit_button("Save my predictions", icon=":material/save:")
        if save:
            for key, value in values.items():
                if value is None:
                    saved.pop(key, None)
                else:
                    saved[key] = check_prediction(float(value))
            applies = {key: v for key, v in saved.items()
                       if key[0] in spec.strategies and key[1] in sizes}
            st.caption(f"Saved {len(applies)} prediction{'s' if len(applies) != 1 else ''}.")
    return applies


def figure_with_predictions(figure: go.Figure, predictions: dict,
                            strategies: Sequence[str]) -> go.Figure:
    """The shared curve figure, or a copy of it with the predictions drawn on."""
    return with_predictions(figure, predictions, strategies) if predictions else figure


def prediction_report(records: pd.DataFrame, predictions: dict) -> None:
    """How far off each prediction was, for those with stored runs at their size."""
    if not predictions:
        return
    table = compare(records, predictions)
    st.markdown("##### Your predictions against the runs")
    if table.empty:
        st.caption("None of your predictions has stored runs at its size yet: press Run.")
        return
    st.markdown("\n".join(f"- {sentence}" for sentence in comparison_sentences(table)))
    waiting = len(predictions) - len(table)
    if waiting:
        st.caption(f"{waiting} more prediction{'s' if waiting != 1 else ''} will be compared "
                   "once their runs are stored.")
