"""Plotly figure builders and the one chart style every lesson shares: records in, figures out.

One colour per strategy on every page (Okabe-Ito, colour-blind safe; curves of one strategy
are told apart by their dash, never by a second colour), chart text large and dark enough for
a projector (`chart_layout`: at least 14 px), legends below the plot so a phone keeps the plot
wide, the transfer-curve figure, and the learner's predictions drawn onto it as dashed lines
with open markers labelled "your prediction". Pure functions: nothing here trains, stores or
draws widgets; the statistics come from `engine.experiments.stats`.
"""

from __future__ import annotations

import math
import textwrap
from typing import Mapping, Optional, Sequence

import pandas as pd
import plotly.graph_objects as go

from engine.experiments.stats import strategy_label, summarize
from engine.study.predictions import Predictions

# Colour-blind-safe (Okabe-Ito) colours, one per strategy family, stable across pages. The
# three basic strategies are grey, blue and orange: no red-against-green pair.
COLORS = {
    "scratch": "#4D4D4D",  # dark grey: the baseline the others are measured against
    "probe": "#0072B2",  # blue
    "finetune": "#E69F00",  # orange
    "discriminative": "#56B4E9",  # sky blue
    "gradual": "#D55E00",  # vermillion
    "lpft": "#009E73",  # bluish green
    "lora": "#CC79A7",  # reddish purple
}
# strategy families drawn in the colour of the basic strategy they refine
FAMILY_COLORS = {"partial": "finetune", "copy-tuned": "finetune", "copy-frozen": "probe"}
FALLBACK_COLORS = ["#000000", "#56B4E9", "#CC79A7", "#D55E00", "#009E73"]
# Okabe-Ito in order, for series that are not strategies (memory terms, target sets)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000",
           "#F0E442", "#999999"]
DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]  # same colour, told apart
TEXT_COLOR = "#1A1A1A"  # chart text: dark on white
FONT = {"size": 16, "color": TEXT_COLOR}  # titles, annotations, hover labels
TICK_FONT = {"size": 14, "color": TEXT_COLOR}  # tick labels and legend entries: the smallest text
# characters per line of a legend entry: at TICK_FONT's size a line, its symbol and margins fit
# the 390 px width of a phone
LEGEND_LINE = 36


def strategy_color(name: str, order: Sequence[str] = ()) -> str:
    """The colour of an engine strategy name ('probe', 'discriminative:0.38', 'lora:4',
    'partial:2'): its family's colour. A name of no known family gets a colour of its own by
    its place in `order`."""
    family = name.partition(":")[0]
    family = FAMILY_COLORS.get(family, family)
    if family in COLORS:
        return COLORS[family]
    extra = [s for s in order if s.partition(":")[0] not in COLORS]
    return FALLBACK_COLORS[extra.index(name) % len(FALLBACK_COLORS)] if name in extra else "#666666"


def curve_styles(names: Sequence[str], strategies: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """(colour, dash) of each curve name: the colour of its strategy (`strategies` maps a
    legend name to its engine strategy; a name not in it is a strategy itself), and a dash that
    tells apart the curves sharing one strategy, in the order given."""
    styles, seen = {}, {}
    for name in names:
        strategy = strategies.get(name, name)
        color = strategy_color(strategy, [strategies.get(n, n) for n in names])
        styles[name] = (color, DASHES[seen.get(color, 0) % len(DASHES)])
        seen[color] = seen.get(color, 0) + 1
    return styles


def legend_name(name: str) -> str:
    """A legend entry broken into lines of at most LEGEND_LINE characters (plotly never wraps
    one), so the longest entry still fits a phone's width."""
    return "<br>".join(textwrap.wrap(name, LEGEND_LINE)) if len(name) > LEGEND_LINE else name


def chart_layout(fig: go.Figure, height: int, legend_title: str = "", top: int = 20,
                 left: int = 70, right: int = 30) -> go.Figure:
    """The style every chart shares: dark text of at least 14 px, the legend in rows at the
    bottom of the figure, under the x axis title (placed in the figure's own coordinates, so
    plotly makes room for it below the axis however many rows it wraps into on a phone, and
    its rows span the figure's whole width, not only the plot's), long legend entries broken
    into lines (`legend_name`). Applies to every axis and trace already in `fig` (a second y
    axis too); returns `fig`."""
    for trace in fig.data:
        if trace.name:
            trace.name = legend_name(trace.name)
    fig.update_layout(
        font=FONT, height=height, margin={"l": left, "r": right, "t": top, "b": 10},
        legend={"orientation": "h", "xref": "container", "x": 0, "xanchor": "left",
                "yref": "container", "y": 0, "yanchor": "bottom", "font": TICK_FONT,
                "title": {"text": legend_title, "side": "top", "font": FONT}},
        hoverlabel={"font": {"size": 14}}, uniformtext={"minsize": 14, "mode": "show"})
    axis = {"tickfont": TICK_FONT, "title_font": FONT, "automargin": True,
            "linecolor": "#444444", "gridcolor": "#E5E5E5"}
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
    return fig


MODEBAR_ROOM = 40  # px: a chart title starts this far down, below the chart's toolbar


def titled(fig: go.Figure, title: str) -> go.Figure:
    """`fig` with `title` placed under the toolbar that plotly shows at the chart's top right
    on hover (a title at the very top would sit under its buttons on a narrow chart)."""
    fig.update_layout(title={"text": title, "yref": "container", "y": 1, "yanchor": "top",
                             "pad": {"t": MODEBAR_ROOM}, "x": 0, "xref": "container",
                             "xanchor": "left"})
    return fig


def reference_line(fig: go.Figure, y: float, name: str, color: str = "#444444",
                   dash: str = "dot") -> go.Figure:
    """A horizontal line across the plot at `y`, named in the legend (a line sample and
    `name`) rather than by a label on the plot, where the data's lines would cross it."""
    fig.add_hline(y=y, line_dash=dash, line_color=color)
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=name, hoverinfo="skip",
                             line={"color": color, "dash": dash, "width": 2}))
    return fig


def error_bars(std: Sequence[float], seeds: Sequence[int], thickness: float = 1.5) -> dict:
    """`error_y` of ±1 standard deviation, shown only where a point has more than one seed
    (with one seed there is no spread to show)."""
    return {"type": "data", "array": [float(s) for s in std], "visible": max(seeds, default=1) > 1,
            "thickness": thickness}


def rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _hover(label: str, s: pd.DataFrame) -> list[str]:
    """One hover text per point; the spread only where the point has more than one seed."""
    return [f"<b>{label}</b><br>labels per class: {size}<br>labelled examples: {n}"
            f"<br>test accuracy: {m:.1f}%" + (f" ± {sd:.1f} (1 std)" if sc > 1 else "")
            + f"<br>seeds: {sc}"
            for size, n, m, sd, sc in zip(s["size"], s["n_train"], s["mean"], s["std"],
                                          s["seeds"])]


def transfer_curve_figure(records: pd.DataFrame, strategies: Sequence[str] = (),
                          marker_n: Optional[int] = None, title: str = "",
                          strategy_of: Optional[Mapping[str, str]] = None) -> go.Figure:
    """Test accuracy (%) against labels per class (log axis): per curve a mean line and, where
    a point has several seeds, a ±1 std band, both in one legend group; an optional vertical
    marker at `marker_n`. `strategy_of` maps a curve name that is not an engine strategy
    (e.g. 'Probe on ImageNet features') to its strategy, whose colour it takes."""
    summary = summarize(records)
    order = list(strategies) or list(dict.fromkeys(summary["strategy"]))
    styles = curve_styles(order, strategy_of or {})
    fig = go.Figure()
    for name in order:
        s = summary[summary["strategy"] == name].sort_values("size")
        if s.empty:
            continue
        (color, dash), label = styles[name], strategy_label(name)
        x = s["labels_per_class"].tolist()
        if s["seeds"].max() > 1:
            upper = (s["mean"] + s["std"]).clip(upper=100).tolist()
            lower = (s["mean"] - s["std"]).clip(lower=0).tolist()
            fig.add_trace(go.Scatter(
                x=x + x[::-1], y=upper + lower[::-1], mode="lines", fill="toself",
                fillcolor=rgba(color, 0.18), line={"width": 0}, hoverinfo="skip",
                showlegend=False, legendgroup=name, name=f"{label} ±1 std"))
        fig.add_trace(go.Scatter(
            x=x, y=s["mean"].tolist(), mode="lines+markers", name=label, legendgroup=name,
            line={"color": color, "width": 3, "dash": dash}, marker={"size": 8},
            text=_hover(label, s), hovertemplate="%{text}<extra></extra>"))
    ticks = sorted(set(summary["size"]))
    fig.update_xaxes(type="log", title="labelled examples per class (log scale)",
                     tickvals=[size.count for size in ticks], ticktext=[str(size) for size in ticks])
    fig.update_yaxes(title="test accuracy (%)", range=[0, 101])
    if marker_n is not None and not summary.empty:
        fig.add_vline(x=marker_n, line_dash="dash", line_color="#444")
        # its label above the plot, clear of the curves (a log axis places notes by log10)
        fig.add_annotation(x=math.log10(marker_n), xref="x", y=1, yref="paper", yanchor="bottom",
                           text=f"n = {marker_n}", showarrow=False)
    fig.update_layout(title=title or None, hovermode="closest")
    return chart_layout(fig, 500, "strategy", top=50 if title else 30)


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
            name=legend_name(label), legendgroup=f"{name}:prediction",
            line={"color": strategy_color(name, strategies), "width": 2, "dash": "dash"},
            marker={"symbol": "diamond-open", "size": 12, "line": {"width": 2}},
            hovertemplate=f"<b>{label}</b><br>labels per class: %{{x}}<br>"
                          "predicted accuracy: %{y:.1f}%<extra></extra>"))
    return out


def count_ticks(values: Sequence[float]) -> list[float]:
    """Tick values for a log axis of counts: the powers of ten around `values` (1, 10, 100,
    1k, ...), so the axis reads '1k, 10k, 100k' instead of plotly's own digits."""
    positive = [v for v in values if v > 0] or [1]
    low = math.floor(math.log10(min(positive)))
    high = math.ceil(math.log10(max(positive)))
    return [10.0 ** e for e in range(low, max(high, low + 1) + 1)]
