"""Plotly figure builders for transfer curves: records in, figures out.

One colour per strategy on every page (colour-blind safe), the transfer-curve figure, and the
learner's predictions drawn onto it as dashed lines with open markers labelled "your
prediction". Pure functions: nothing here trains, stores or draws widgets; the statistics come
from `engine.experiments.stats`.
"""

from __future__ import annotations

from typing import Optional, Sequence

import pandas as pd
import plotly.graph_objects as go

from engine.experiments.stats import point_label, strategy_label, summarize
from engine.study.predictions import Predictions

# Colour-blind-safe (Okabe-Ito) colours, one per strategy, stable across pages.
COLORS = {"scratch": "#D55E00", "probe": "#0072B2", "finetune": "#009E73"}
FALLBACK_COLORS = ["#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def strategy_color(name: str, order: Sequence[str] = ()) -> str:
    if name in COLORS:
        return COLORS[name]
    extra = [s for s in order if s not in COLORS]
    return FALLBACK_COLORS[extra.index(name) % len(FALLBACK_COLORS)] if name in extra else "#666666"


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def transfer_curve_figure(records: pd.DataFrame, strategies: Sequence[str] = (),
                          marker_n: Optional[int] = None, title: str = "") -> go.Figure:
    """Test accuracy (%) against labels per class (log axis): per strategy a mean line and a
    +-1 std band, both in one legend group; an optional vertical marker at `marker_n`."""
    summary = summarize(records)
    order = list(strategies) or list(dict.fromkeys(summary["strategy"]))
    fig = go.Figure()
    for name in order:
        s = summary[summary["strategy"] == name].sort_values("labels_per_class")
        if s.empty:
            continue
        color, label = strategy_color(name, order), strategy_label(name)
        x = s["labels_per_class"].tolist()
        upper = (s["mean"] + s["std"]).clip(upper=100).tolist()
        lower = (s["mean"] - s["std"]).clip(lower=0).tolist()
        fig.add_trace(go.Scatter(
            x=x + x[::-1], y=upper + lower[::-1], mode="lines", fill="toself", fillcolor=_rgba(color, 0.18),
            line={"width": 0}, hoverinfo="skip", showlegend=False, legendgroup=name,
            name=f"{label} ±1 std"))
        hover = [
            f"<b>{label}</b><br>labels per class: {point_label(k, a)}<br>labelled examples: {n}"
            f"<br>test accuracy: {m:.1f}% ± {sd:.1f}<br>seeds: {sc}"
            for k, a, n, m, sd, sc in zip(s["labels_per_class"], s["all_labels"], s["n_train"],
                                          s["mean"], s["std"], s["seeds"])
        ]
        fig.add_trace(go.Scatter(
            x=x, y=s["mean"].tolist(), mode="lines+markers", name=label, legendgroup=name,
            line={"color": color, "width": 3}, marker={"size": 8}, text=hover,
            hovertemplate="%{text}<extra></extra>"))
    ticks = summary.drop_duplicates("labels_per_class").sort_values("labels_per_class")
    fig.update_xaxes(type="log", title="labelled examples per class (log scale)",
                     tickvals=ticks["labels_per_class"].tolist(),
                     ticktext=[point_label(k, a)
                               for k, a in zip(ticks["labels_per_class"], ticks["all_labels"])])
    fig.update_yaxes(title="test accuracy (%)", range=[0, 101])
    if marker_n is not None and not summary.empty:
        fig.add_vline(x=marker_n, line_dash="dash", line_color="#444",
                      annotation_text=f"n = {marker_n}", annotation_position="top left")
    fig.update_layout(title=title or None, hovermode="closest", legend_title_text="strategy",
                      margin={"l": 60, "r": 20, "t": 50 if title else 20, "b": 60}, height=460)
    return fig


def with_predictions(figure: go.Figure, predictions: Predictions,
                     order: Sequence[str] = ()) -> go.Figure:
    """A copy of `figure` with each strategy's predictions as a dashed line with open diamond
    markers in the strategy's colour, named '<strategy>: your prediction'. The input figure is
    left unchanged (it may be shared between sessions)."""
    out = go.Figure(figure)
    strategies = list(order) or sorted({s for s, _ in predictions})
    for name in strategies:
        points = sorted((k, v) for (s, k), v in predictions.items() if s == name)
        if not points:
            continue
        label = f"{strategy_label(name)}: your prediction"
        out.add_trace(go.Scatter(
            x=[k for k, _ in points], y=[v for _, v in points], mode="lines+markers",
            name=label, legendgroup=f"{name}:prediction",
            line={"color": strategy_color(name, strategies), "width": 2, "dash": "dash"},
            marker={"symbol": "diamond-open", "size": 12, "line": {"width": 2}},
            hovertemplate=f"<b>{label}</b><br>labels per class: %{{x}}<br>"
                          "predicted accuracy: %{y:.1f}%<extra></extra>"))
    return out
