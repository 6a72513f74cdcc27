"""The "How much of the network to train" lesson: its sweeps, live panel, charts and readings.

Two sweeps at one labels-per-class value: freeze depth (`partial:0` .. `partial:<all>`, the
last k blocks fine-tuned) and layer transferability in the style of Yosinski et al. (2014):
the first k blocks copied, the rest re-initialised, the copies frozen (`copy-frozen:k`) or
fine-tuned (`copy-tuned:k`), against training from scratch. Nothing here trains: the specs go to
the server's job manager and the charts read the store.
"""

from __future__ import annotations

import functools

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core.backbones import block_count, count_parameters, get_backbone, SMALL_CNN_BLOCKS
from engine.experiments.stats import summarize
from engine.core.store import ResultStore
from engine.core.strategies import get_strategy
from engine.experiments.sweep import SweepSpec, plan_runs, stored_records
from ui.jobs import POLL_SECONDS, job_manager, seconds_text

BACKBONE = "small_cnn"
BLOCKS = block_count(BACKBONE)


def depth_specs(labels: int, seeds: int) -> tuple[SweepSpec, SweepSpec]:
    freeze = SweepSpec(strategies=tuple(f"partial:{k}" for k in range(BLOCKS + 1)),
                       labels_per_class=(labels,), seeds=seeds)
    copy = SweepSpec(strategies=("scratch", *(f"copy-frozen:{k}" for k in range(1, BLOCKS + 1)),
                                 *(f"copy-tuned:{k}" for k in range(1, BLOCKS + 1))),
                     labels_per_class=(labels,), seeds=seeds)
    return freeze, copy


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


def records_of(specs) -> pd.DataFrame:
    store = ResultStore()
    frames = [stored_records(s, store) for s in specs]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def block_label(k: int) -> str:
    names = SMALL_CNN_BLOCKS
    return "none" if k == 0 else f"{k} ({'+'.join(names[len(names) - k:])})"


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


@st.fragment(run_every=POLL_SECONDS)
def live_depth(specs) -> None:
    """Progress of the lesson's jobs; a full rerun (with the charts) when they end."""
    jobs = [j for j in (job_manager().status(s.key()) for s in specs) if j is not None and j.active]
    if not jobs:
        st.rerun(scope="app")
        return
    stored = len(records_of(specs))
    total = sum(len(plan_runs(s)) for s in specs)
    with st.container(border=True):
        st.markdown(f"**Training: {stored} of {total} runs stored**")
        st.progress(stored / total if total else 1.0)
        for job in jobs:
            st.caption(f"{job.done} of {job.total} runs · {job.message} · elapsed "
                       f"{seconds_text(job.elapsed)}")
        st.button("Cancel", icon=":material/stop:", key="cancel_depth",
                  on_click=lambda: [job_manager().cancel(j.job_id) for j in jobs])
    records = records_of(specs)
    if not records.empty:
        summary = summarize(records)
        if not by_k(summary, "partial").empty:
            st.plotly_chart(freeze_figure(summary), key="depth_live_freeze")
