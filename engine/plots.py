"""Figure builders and teaching sentences for transfer curves: records in, plotly figures out.

Pure functions of a results DataFrame (columns as in `engine.store.RECORD_COLUMNS`): the mean
and spread over seeds, the transfer-curve figure, and the sentence that reads the head-start
at one labelled-set size. Nothing here trains, stores or draws widgets.
"""

from __future__ import annotations

from typing import Optional, Sequence

import pandas as pd
import plotly.graph_objects as go

from engine.strategies import StrategyError, get_strategy

# Colour-blind-safe (Okabe-Ito) colours, one per strategy, stable across pages.
COLORS = {"scratch": "#D55E00", "probe": "#0072B2", "finetune": "#009E73"}
FALLBACK_COLORS = ["#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]

SUMMARY_COLUMNS = ["strategy", "labels_per_class", "all_labels", "mean", "std", "seeds", "n_train"]


def strategy_label(name: str) -> str:
    try:
        return get_strategy(name).label
    except StrategyError:
        return name


def strategy_color(name: str, order: Sequence[str] = ()) -> str:
    if name in COLORS:
        return COLORS[name]
    extra = [s for s in order if s not in COLORS]
    return FALLBACK_COLORS[extra.index(name) % len(FALLBACK_COLORS)] if name in extra else "#666666"


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


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def point_label(labels_per_class: int, all_labels: bool) -> str:
    return f"all ({labels_per_class})" if all_labels else str(labels_per_class)


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
                     ticktext=[point_label(k, a) for k, a in zip(ticks["labels_per_class"], ticks["all_labels"])])
    fig.update_yaxes(title="test accuracy (%)", range=[0, 101])
    if marker_n is not None and not summary.empty:
        fig.add_vline(x=marker_n, line_dash="dash", line_color="#444",
                      annotation_text=f"n = {marker_n}", annotation_position="top left")
    fig.update_layout(title=title or None, hovermode="closest", legend_title_text="strategy",
                      margin={"l": 60, "r": 20, "t": 50 if title else 20, "b": 60}, height=460)
    return fig


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
