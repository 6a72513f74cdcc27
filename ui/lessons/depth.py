"""The "How much of the network to train" lesson's form, charts, readings and configurations.

The settings and the two sweeps they run (freeze depth; layer transferability after Yosinski et
al., 2014) are `engine.experiments.lessons.depth`; here the form that fills them, the charts and readings drawn
from the store, and the refinements panel (one strategy's parameter groups, learning rates,
trainable weights and PyTorch code, computed on a fresh model: nothing trains). Nothing here
runs a sweep.
"""

from __future__ import annotations

from typing import Callable, Optional

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core.datasets import labels_list_text, labels_per_class_text, labels_text
from engine.core.train import TrainBudget
from engine.experiments.readings.depth import FREEZE_PATTERN, copy_readings, freeze_readings
from engine.experiments.stats import strategy_label, summarize
from engine.experiments.sweep import MAX_SEEDS, plan_runs
from engine.study.codegen import describe_groups, strategy_code
from engine.experiments.lessons.curves import DECAY_FACTORS, DEFAULT_DECAY
from ui.kit.exports import show_chart
from ui.kit.jobs import stored
from ui.kit.figures import TICK_FONT, chart_layout, error_bars, strategy_color
from ui.kit.readings import show_readings
from ui.kit.section import Section, missing_note
from ui.kit.text import count_text, plural
from ui.lessons.curves import chart_caption, curve_figure
from engine.experiments.lessons.depth import (BACKBONE, BLOCKS, LABEL_CHOICES, LOWER_RATES, LR_LABELS,
                                             SEED_CHOICES, DepthSettings, LearningRateSettings,
                                             trainable_weights)
from ui.kit.tables import show_table


def by_k(summary: pd.DataFrame, family: str) -> pd.DataFrame:
    """Rows of one family (`partial`, `copy-frozen`, ...) with their k, sorted by k."""
    rows = summary[summary["strategy"].str.startswith(family + ":")].copy()
    rows["k"] = rows["strategy"].str.split(":").str[1].astype(int)
    return rows.sort_values("k")


def _line(rows: pd.DataFrame, name: str, color: str, dash: str = "solid") -> list[go.Scatter]:
    return [go.Scatter(x=rows["k"].tolist(), y=rows["mean"].tolist(), name=name,
                       mode="lines+markers", line={"color": color, "dash": dash, "width": 3},
                       marker={"size": 8}, error_y=error_bars(rows["std"], rows["seeds"]))]


def freeze_figure(summary: pd.DataFrame) -> go.Figure:
    rows = by_k(summary, "partial")
    rows["trainable"] = [trainable_weights(s) for s in rows["strategy"]]
    fig = go.Figure(_line(rows, "Test accuracy", strategy_color("partial")))
    fig.add_trace(go.Bar(x=rows["k"].tolist(), y=rows["trainable"].tolist(),
                         name="Trainable weights (bars, labelled)", yaxis="y2",
                         marker_color="rgba(127,127,127,0.35)",
                         text=[count_text(n) for n in rows["trainable"]], textposition="inside",
                         insidetextanchor="start", textangle=0, textfont=TICK_FONT,
                         hovertemplate="k = %{x}: %{y:,} trainable weights<extra></extra>"))
    fig.update_layout(xaxis={"title": "Blocks fine-tuned from the top (k)", "dtick": 1},
                      yaxis={"title": "Mean test accuracy (%)"},
                      # each bar is labelled with its count, so the second axis needs no numbers
                      yaxis2={"title": "Trainable weights", "overlaying": "y", "side": "right",
                              "rangemode": "tozero", "showgrid": False, "showticklabels": False})
    return chart_layout(fig, 460, right=50)


def copy_figure(summary: pd.DataFrame) -> go.Figure:
    fig = go.Figure(_line(by_k(summary, "copy-frozen"), "Copied blocks frozen",
                          strategy_color("copy-frozen"))
                    + _line(by_k(summary, "copy-tuned"), "Copied blocks fine-tuned",
                            strategy_color("copy-tuned"), "dash"))
    scratch = summary[summary["strategy"] == "scratch"]["mean"]
    if not scratch.empty:
        fig.add_hline(y=float(scratch.iloc[0]), line_dash="dot", line_color=strategy_color("scratch"),
                      annotation_text=f"from scratch {float(scratch.iloc[0]):.1f}%")
    fig.update_layout(xaxis={"title": "Blocks copied from the pretrained network (k)", "dtick": 1},
                      yaxis={"title": "Mean test accuracy (%)"})
    return chart_layout(fig, 460)


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
    records = stored(settings)
    return None if records.empty else summarize(records)


def live_freeze(settings: DepthSettings) -> None:
    """The freeze-depth chart of what is stored so far (the live panel redraws it)."""
    summary = stored_summary(settings)
    if summary is not None and not by_k(summary, "partial").empty:
        show_chart(freeze_figure(summary), "depth_live_freeze")


def where_text(settings: DepthSettings) -> str:
    """'5 labels per class, 2 seeds': the settings a chart's caption names."""
    seeds = settings.seeds
    return (f"{labels_per_class_text(settings.labels_per_class)}, "
            f"{seeds} seed{'s' if seeds > 1 else ''}")


def freeze_results(summary: Optional[pd.DataFrame], settings: DepthSettings, running: bool) -> None:
    """The freeze-depth chart and its reading, or an invitation to press Run."""
    if summary is None or by_k(summary, "partial").empty:
        if not running:
            st.info("Press **Run both experiments** to train these points.", icon=":material/info:")
        return
    st.caption(f"{where_text(settings)}. Points: mean test accuracy; whiskers: ±1 standard deviation.")
    show_chart(freeze_figure(summary), "depth_freeze", runs=by_k(summary, "partial"),
               name="freeze-depth-fine-tuned-blocks")
    show_readings(freeze_readings(stored(settings), trainable_weights), settings, "freeze")
    st.markdown(FREEZE_PATTERN)


def copy_results(summary: Optional[pd.DataFrame], settings: DepthSettings) -> None:
    """The copied-layers chart and its reading against the published finding."""
    if summary is None or by_k(summary, "copy-frozen").empty:
        return
    st.caption(f"{where_text(settings)}. Dotted line: the same network trained from scratch.")
    show_chart(copy_figure(summary), "depth_copy", name="copied-blocks-frozen-or-fine-tuned",
               runs=summary[summary["strategy"].str.match(r"copy-|scratch$")])
    show_readings(copy_readings(stored(settings)), settings, "copy")
    st.caption("This setting differs from the paper's: a four-block network, a different "
               "target task with few labels, and short training. A small labelled set can favour "
               "the frozen copies more than the paper's ImageNet halves (about 645,000 images "
               "each) did.")


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
    show_table(pd.DataFrame({
        "Parameter group": [g.name for g in groups],
        "Learning rate": [f"{g.lr:.3g}" for g in groups],
        "Weights": [f"{g.parameters:,}" for g in groups],
        "Trainable at the start": [f"{g.trainable_at_start:,}" for g in groups]}), "groups")
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


# the page lays out the two sweeps' results itself, between its own words (`pages/depth.py`)
DEPTH = Section("depth", "depth", DepthSettings, depth_form, live=live_freeze)


# ---- Does a lower fine-tuning learning rate help at few labels? ---------------------------------

def lr_form(current: LearningRateSettings) -> Optional[Callable[[], LearningRateSettings]]:
    """The learning-rate section's form, showing `current`."""
    with st.form("learning_rate_settings", border=True):
        left, mid, right = st.columns([2, 3, 2])  # the sizes' tags need the room
        lower = left.select_slider("Lower learning rate", LOWER_RATES, current.lower,
                                   format_func="{:g}".format,
                                   help="Of the new head; the pretrained layers learn at 0.1 x "
                                        "it, as in every fine-tune here.")
        labels = mid.multiselect("Labels per class", LR_LABELS, default=list(current.labels_per_class))
        seeds = right.number_input("Seeds", 1, MAX_SEEDS, current.seeds, key="lr_seeds_input")
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    return (lambda: LearningRateSettings(lower, tuple(labels), int(seeds))) if run else None


def lr_chart(settings: LearningRateSettings, key: str) -> pd.DataFrame:
    """Both rates' curves (one colour, two dashes), from what is stored; their runs."""
    records = stored(settings)
    if not records.empty:
        curves = settings.curves()
        show_chart(curve_figure(records, [c.label for c in curves],
                                strategy_of={c.label: c.strategy for c in curves}), key,
                   runs=records, name="fine-tuning-learning-rates")
    return records


def lr_results(settings: LearningRateSettings, notes) -> None:
    """The chart and the reading, or an invitation to press Run."""
    total = sum(len(plan_runs(spec)) for spec in settings.specs())
    records = lr_chart(settings, "learning_rate")
    if records.empty:
        st.info(f"None of the {plural(total, 'run')} of these settings is stored yet. Press Run.",
                icon=":material/info:")
        return
    missing_note(len(records), total, notes)
    st.caption(chart_caption(int(records["seed"].nunique())))
    show_readings(settings.read(records), settings, "learning_rate")


LEARNING_RATE = Section("depth", "learning_rate", LearningRateSettings, lr_form,
                        live=lambda s: lr_chart(s, "learning_rate_live"), results=lr_results)
SECTIONS = (DEPTH, LEARNING_RATE)
