"""The "How much of the network to train" lesson's form, charts, readings and configurations.

The settings and the two sweeps they run (freeze depth; layer transferability after Yosinski et
al., 2014) are `ui.sections.depth`; here the form that fills them, the charts and readings drawn
from the store, and the refinements panel (one strategy's parameter groups, learning rates,
trainable weights and PyTorch code, computed on a fresh model: nothing trains). Nothing here
runs a sweep.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core.backbones import count_parameters, get_backbone
from engine.core.datasets import labels_list_text, labels_text
from engine.core.strategies import get_strategy
from engine.core.train import TrainBudget
from engine.experiments.stats import strategy_label, summarize
from engine.study.codegen import describe_groups, strategy_code
from ui.controls import DECAY_FACTORS, DEFAULT_DECAY
from ui.curve_sets import records_of
from ui.sections.depth import BACKBONE, BLOCKS, LABEL_CHOICES, SEED_CHOICES, DepthSettings
# the browser tests and bench/frozen_blocks.py build the sweeps from here
from ui.sections.depth import depth_specs  # noqa: F401

@functools.lru_cache(maxsize=64)
def trainable_weights(strategy: str) -> int:
    """Exact weights a strategy trains on the small CNN with a 10-class head (at the end of
    training, for a schedule)."""
    model = get_backbone(BACKBONE).build(10)
    get_strategy(strategy).param_groups(model, 1e-3, 1e-4)
    hook = get_strategy(strategy).schedule(model, 100, 1)
    for step in range(100 if hook else 0):  # play the schedule to its end
        hook(step, 100)
    return count_parameters(model)[0]


def by_k(summary: pd.DataFrame, family: str) -> pd.DataFrame:
    """Rows of one family (`partial`, `copy-frozen`, ...) with their k, sorted by k."""
    rows = summary[summary["strategy"].str.startswith(family + ":")].copy()
    rows["k"] = rows["strategy"].str.split(":").str[1].astype(int)
    return rows.sort_values("k")


def _line(rows: pd.DataFrame, name: str, color: str, dash: str = "solid") -> list[go.Scatter]:
    return [go.Scatter(x=rows["k"].tolist(), y=rows["mean"].tolist(), name=name,
                       mode="lines+markers", line={"color": color, "dash": dash},
                       error_y={"type": "data", "array": rows["std"].tolist(), "visible": True})]


def freeze_figure(summary: pd.DataFrame) -> go.Figure:
    rows = by_k(summary, "partial")
    rows["trainable"] = [trainable_weights(s) for s in rows["strategy"]]
    fig = go.Figure(_line(rows, "Test accuracy", "#1f77b4"))
    fig.add_trace(go.Bar(x=rows["k"].tolist(), y=rows["trainable"].tolist(),
                         name="Trainable weights", yaxis="y2",
                         marker_color="rgba(127,127,127,0.35)"))
    fig.update_layout(xaxis={"title": "Blocks fine-tuned from the top (k)", "dtick": 1},
                      yaxis={"title": "Mean test accuracy (%)"},
                      yaxis2={"title": "Trainable weights", "overlaying": "y", "side": "right",
                              "type": "log", "showgrid": False},
                      legend={"orientation": "h", "y": -0.25}, height=420, margin={"t": 20})
    return fig


def copy_figure(summary: pd.DataFrame) -> go.Figure:
    fig = go.Figure(_line(by_k(summary, "copy-frozen"), "Copied blocks frozen", "#d62728")
                    + _line(by_k(summary, "copy-tuned"), "Copied blocks fine-tuned", "#2ca02c"))
    scratch = summary[summary["strategy"] == "scratch"]["mean"]
    if not scratch.empty:
        fig.add_hline(y=float(scratch.iloc[0]), line_dash="dot", line_color="#555",
                      annotation_text=f"from scratch {float(scratch.iloc[0]):.1f}%")
    fig.update_layout(xaxis={"title": "Blocks copied from the pretrained network (k)", "dtick": 1},
                      yaxis={"title": "Mean test accuracy (%)"},
                      legend={"orientation": "h", "y": -0.25}, height=420, margin={"t": 20})
    return fig


def copy_reading(summary: pd.DataFrame) -> str:
    """What this run shows, in the terms of the published finding (numbers from the run)."""
    frozen, tuned = by_k(summary, "copy-frozen"), by_k(summary, "copy-tuned")
    scratch = summary[summary["strategy"] == "scratch"]["mean"]
    if frozen.empty or tuned.empty or scratch.empty:
        return ""
    base = float(scratch.iloc[0])
    first, last = frozen.iloc[0], frozen.iloc[-1]
    trend = "falls" if last["mean"] < first["mean"] else "does not fall"
    below = tuned[tuned["mean"] < base - 0.05]
    tuned_text = ("stays at or above the scratch baseline at every k"
                  if below.empty else
                  "drops below the scratch baseline at k = "
                  + ", ".join(str(int(k)) for k in below["k"]))
    return (f"**In your run:** with the copies frozen, accuracy {trend} from "
            f"{first['mean']:.1f}% (k = {int(first['k'])}) to {last['mean']:.1f}% "
            f"(k = {int(last['k'])}); fine-tuned, it ranges {tuned['mean'].min():.1f}% to "
            f"{tuned['mean'].max():.1f}% and {tuned_text} ({base:.1f}%).")


def depth_form(settings: DepthSettings) -> Optional[Callable[[], DepthSettings]]:
    """The settings form; when Run is pressed, what builds the chosen settings."""
    with st.form("depth_settings", border=True):
        left, right = st.columns(2)
        labels = left.select_slider("Labels per class", options=list(LABEL_CHOICES),
                                    value=settings.labels_per_class, format_func=labels_text,
                                    help="The size of the labelled target set for every run here.")
        seeds = right.select_slider("Seeds", options=list(SEED_CHOICES), value=settings.seeds,
                                    help="Repeats of every point; the chart shows their mean ± 1 "
                                         "standard deviation.")
        run = st.form_submit_button("Run both experiments", type="primary",
                                    icon=":material/play_arrow:")
    return (lambda: DepthSettings(labels, seeds)) if run else None


def stored_summary(settings: DepthSettings) -> Optional[pd.DataFrame]:
    """Mean and spread per strategy of the runs stored so far; None when none is."""
    records = records_of(settings.specs())
    return None if records.empty else summarize(records)


def live_freeze(settings: DepthSettings) -> None:
    """The freeze-depth chart of what is stored so far (the live panel redraws it)."""
    summary = stored_summary(settings)
    if summary is not None and not by_k(summary, "partial").empty:
        st.plotly_chart(freeze_figure(summary), key="depth_live_freeze")


def where_text(settings: DepthSettings) -> str:
    """'5 labels per class, 2 seeds': the settings a chart's caption names."""
    seeds = settings.seeds
    return (f"{labels_text(settings.labels_per_class)} labels per class, "
            f"{seeds} seed{'s' if seeds > 1 else ''}")


def freeze_results(summary: Optional[pd.DataFrame], where: str, running: bool) -> None:
    """The freeze-depth chart and its reading, or an invitation to press Run."""
    if summary is None or by_k(summary, "partial").empty:
        if not running:
            st.info("Press **Run both experiments** to train these points.", icon=":material/info:")
        return
    st.caption(f"{where}. Points: mean test accuracy; whiskers: ±1 standard deviation.")
    st.plotly_chart(freeze_figure(summary), key="depth_freeze")
    rows = by_k(summary, "partial")
    best = rows.loc[rows["mean"].idxmax()]
    st.markdown(f"**In your run** the best depth is k = {int(best['k'])} "
                f"({best['mean']:.1f}%), training {trainable_weights(best['strategy']):,} of "
                f"{trainable_weights(f'partial:{BLOCKS}'):,} weights. With few labels, freezing "
                "more guards against overfitting; with many, unfreezing more lets the late "
                "layers adapt to the target.")


def copy_results(summary: Optional[pd.DataFrame], where: str) -> None:
    """The copied-layers chart and its reading against the published finding."""
    if summary is None or by_k(summary, "copy-frozen").empty:
        return
    st.caption(f"{where}. Dotted line: the same network trained from scratch.")
    st.plotly_chart(copy_figure(summary), key="depth_copy")
    st.markdown(copy_reading(summary))
    st.caption("This setting differs from the paper's: a four-block network, a different "
               "target task with few labels, and short training. A small labelled set favours "
               "the frozen copies more than ImageNet's 600,000 images did.")


def refinements() -> None:
    """Pick a configuration: its parameter groups, learning rates, trainable weights and the
    PyTorch code that sets it up, then a link to compare them on the Transfer curves page."""
    factor = st.select_slider("Decay factor", options=list(DECAY_FACTORS), value=DEFAULT_DECAY,
                              format_func=lambda f: f"{f:g}", key="depth_factor")
    options = ["finetune", f"discriminative:{factor:g}", "gradual", "lpft",
               *(f"partial:{k}" for k in range(BLOCKS + 1)), "copy-frozen:2", "copy-tuned:2"]
    chosen = st.selectbox("Configuration", options, index=1, format_func=strategy_label)
    budget = TrainBudget()
    backbone_lr = budget.lr * budget.backbone_lr_mult
    groups = describe_groups(chosen, BACKBONE, budget.lr, backbone_lr)
    st.table(pd.DataFrame({
        "Parameter group": [g.name for g in groups],
        "Learning rate": [f"{g.lr:.3g}" for g in groups],
        "Weights": [f"{g.parameters:,}" for g in groups],
        "Trainable at the start": [f"{g.trainable_at_start:,}" for g in groups]}))
    at_start = sum(g.trainable_at_start for g in groups)
    st.markdown(f"**{strategy_label(chosen)}** trains {at_start:,} weights at the start and "
                f"{trainable_weights(chosen):,} by the end, of {trainable_weights('scratch'):,}.")
    with st.expander("Show the PyTorch code", icon=":material/code:"):
        st.caption("Exactly these settings: what is frozen and the optimizer's parameter groups. "
                   "It runs as shown in this app's environment.")
        st.code(strategy_code(chosen, lr=budget.lr, backbone_lr=backbone_lr), language="python")
    compare = ("scratch", "finetune", f"discriminative:{factor:g}", "gradual", "lpft")
    st.page_link("pages/transfer_curves.py", icon=":material/show_chart:",
                 label="Compare them over labels per class on the Transfer curves page",
                 query_params={"strategies": ",".join(compare),
                               "labels": labels_list_text(LABEL_CHOICES), "seeds": "3"})
