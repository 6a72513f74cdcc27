"""Panels of the LoRA lab: engine counts and stored runs in, Streamlit elements and figures out.

The lab's training settings (`LabSettings`) live in the URL as well as the form; `lab_spec`
turns them into the one `SweepSpec` of the trade-off, which the server's job manager runs like
any other sweep. The figures here (trainable parameters against rank, the memory bars, accuracy
against trainable parameters) are plotly builders of engine numbers. Nothing here trains.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Mapping, Optional

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from engine.core.backbones import get_backbone
from engine.core.lora import LoraError, MemoryEstimate, short_layer_names
from engine.experiments.lora_presets import PRESETS, count_preset, strategy_parameters
from engine.experiments.stats import summarize
from engine.core.strategies import get_strategy, lora_layer_names, lora_name
from engine.experiments.sweep import SweepSpec
from ui.controls import query_items, query_seeds
from ui.jobs import POLL_SECONDS, job_manager, job_progress, live_records

RANK_CHOICES = (1, 2, 4, 8, 16)  # ranks the trade-off sweep offers
LABEL_CHOICES = (1, 2, 5, 10, 20, 50)  # one labelled-set size per trade-off
CHART_RANKS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DEFAULT_PRESET = "gpt3-175b"


@dataclass(frozen=True)
class LabSettings:
    labels_per_class: int = 10  # the one labelled-set size of the trade-off
    seeds: int = 3  # runs per point
    ranks: tuple[int, ...] = RANK_CHOICES  # the LoRA ranks trained
    layers: tuple[str, ...] = ()  # the small CNN's layers LoRA wraps; empty: every one

    def strategies(self) -> tuple[str, ...]:
        return ("probe", "finetune", *(lora_name(r, self.layers) for r in self.ranks))

    def to_query(self) -> dict[str, str]:
        return {"labels": str(self.labels_per_class), "seeds": str(self.seeds),
                "ranks": ",".join(map(str, self.ranks)),
                "layers": ",".join(self.layers or lora_layer_names())}


def lab_spec(settings: LabSettings) -> SweepSpec:
    """The trade-off as one sweep: probe, fine-tuning and LoRA at each rank, one size."""
    return SweepSpec(strategies=settings.strategies(), labels_per_class=(settings.labels_per_class,),
                     seeds=settings.seeds)


def settings_from(labels, seeds, ranks, layers) -> LabSettings:
    """Settings from the form's values; ValueError says what is wrong."""
    if not ranks:
        raise ValueError("choose at least one LoRA rank")
    if not layers:
        raise ValueError("choose at least one layer for LoRA")
    known = lora_layer_names()
    chosen = tuple(k for k in known if k in layers)
    return LabSettings(int(labels), int(seeds), tuple(sorted(set(ranks))),
                       () if chosen == known else chosen)


def settings_from_query(params: Mapping[str, str]) -> tuple[Optional[LabSettings], list[str]]:
    """A link's settings, each value checked against the allowed ones; a bad value falls back
    to the default with a notice. None when the link holds no settings."""
    if not any(k in params for k in ("labels", "seeds", "ranks", "layers")):
        return None, []
    default, notices, fields = LabSettings(), [], {}

    def items(name: str) -> Optional[list[str]]:
        return query_items(params, name, notices)

    labels, seeds, ranks, layers = (items(n) for n in ("labels", "seeds", "ranks", "layers"))
    if labels is not None:
        if len(labels) == 1 and labels[0] in {str(k) for k in LABEL_CHOICES}:
            fields["labels_per_class"] = int(labels[0])
        else:
            notices.append("the link's labels per class must be one of "
                           f"{', '.join(map(str, LABEL_CHOICES))}; using the default")
    query_seeds(seeds, fields, notices)
    if ranks is not None:
        if ranks and all(r in {str(k) for k in RANK_CHOICES} for r in ranks):
            fields["ranks"] = tuple(sorted({int(r) for r in ranks}))
        else:
            notices.append(f"the link's ranks are not all among {', '.join(map(str, RANK_CHOICES))}; "
                           "using the default")
    if layers is not None:
        known = lora_layer_names()
        if layers and all(k in known for k in layers):
            chosen = tuple(k for k in known if k in layers)
            fields["layers"] = () if chosen == known else chosen
        else:
            notices.append(f"the link's layers are not all among {', '.join(known)}; using all")
    return replace(default, **fields), notices


@functools.lru_cache(maxsize=1)
def _lesson_aliases() -> dict[str, str]:
    with torch.device("meta"):
        paths = short_layer_names(get_backbone("small_cnn").build_features())
    return {f"features.{path}": short for short, path in paths.items()}


def target_label(name: str) -> str:
    """A target name as the multiselect shows it; the small CNN's layers with their short name."""
    alias = _lesson_aliases().get(name)
    return f"{name} ({alias})" if alias else name


def count_text(n: float) -> str:
    """4,718,592 -> '4.7M'; small numbers in full."""
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:,.0f}"


def bytes_text(n: float) -> str:
    """Decimal units, as the papers use: 37,748,736 -> '37.7 MB'."""
    for size, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:,.0f} bytes"


def rank_figure(preset: str) -> go.Figure:
    """Trainable parameters against rank (log-log), one line per target set of the preset."""
    fig = go.Figure()
    for label, targets in PRESETS[preset].target_sets:
        counts = [count_preset(preset, r, targets).trainable for r in CHART_RANKS]
        fig.add_trace(go.Scatter(x=list(CHART_RANKS), y=counts, mode="lines+markers", name=label,
                                 hovertemplate="r = %{x}<br>%{y:,} trainable<extra>" + label + "</extra>"))
    total = count_preset(preset, 1, PRESETS[preset].default_targets).base_total
    fig.add_hline(y=total, line_dash="dash", line_color="#444",
                  annotation_text=f"the whole model: {total:,}", annotation_position="bottom right")
    fig.update_xaxes(type="log", title="rank r", tickvals=list(CHART_RANKS))
    fig.update_yaxes(type="log", title="trainable parameters")
    fig.update_layout(height=380, margin={"l": 60, "r": 20, "t": 20, "b": 50}, legend_title_text="targets")
    return fig


def memory_figure(estimates: list[MemoryEstimate]) -> go.Figure:
    """One stacked horizontal bar per method, one segment per memory term, in GB."""
    fig = go.Figure()
    labels = list(dict.fromkeys(t.label for e in estimates for t in e.terms))
    for label in labels:
        fig.add_trace(go.Bar(
            y=[e.method for e in estimates], orientation="h", name=label,
            x=[sum(t.bytes for t in e.terms if t.label == label) / 1e9 for e in estimates],
            hovertemplate="%{y}: " + label + " %{x:,.2f} GB<extra></extra>"))
    for e in estimates:
        fig.add_annotation(x=e.total / 1e9, y=e.method, text=f" {bytes_text(e.total)}",
                           showarrow=False, xanchor="left")
    fig.update_layout(barmode="stack", height=260, margin={"l": 120, "r": 80, "t": 10, "b": 40},
                      xaxis_title="estimated GPU memory (GB)", legend_orientation="h",
                      legend_y=-0.35)
    return fig


def memory_table(estimates: list[MemoryEstimate]) -> pd.DataFrame:
    return pd.DataFrame([{"Method": e.method, "Term": t.label, "Memory": bytes_text(t.bytes),
                          "Assumption": t.assumption} for e in estimates for t in e.terms])


@functools.lru_cache(maxsize=64)
def trainable_parameters(strategy: str) -> int:
    """Exact trainable count of a strategy on the built lesson model (counted once per name)."""
    return strategy_parameters(strategy)[0]


def tradeoff_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: its trainable parameters (counted on the built model) and its accuracy."""
    summary = summarize(records)
    total = strategy_parameters("finetune")[1]
    rows = []
    for _, row in summary.iterrows():
        strategy = get_strategy(row["strategy"])
        n = trainable_parameters(row["strategy"])
        rows.append({"strategy": row["strategy"], "Strategy": strategy.label,
                     "rank": getattr(strategy, "rank", None), "Trainable parameters": n,
                     "% of the model": 100.0 * n / total, "Mean test accuracy (%)": row["mean"],
                     "± std": row["std"], "Seeds": int(row["seeds"])})
    return pd.DataFrame(rows).sort_values("Trainable parameters", kind="stable")


def tradeoff_sentence(table: pd.DataFrame) -> str:
    """What the stored runs say: the best LoRA rank against the probe and fine-tuning."""
    rows = {r["strategy"]: r for _, r in table.iterrows()}
    lora = table[table["strategy"].str.startswith("lora:")]
    if lora.empty:
        return ""
    best = lora.loc[lora["Mean test accuracy (%)"].idxmax()]
    parts = [f"The best LoRA rank here is **{best['Strategy']}**: "
             f"{best['Mean test accuracy (%)']:.1f}% with {best['Trainable parameters']:,} "
             f"trainable parameters ({best['% of the model']:.1f}% of the model)"]
    for name, what in (("finetune", "fine-tuning"), ("probe", "the linear probe")):
        if name in rows:
            r = rows[name]
            gap = best["Mean test accuracy (%)"] - r["Mean test accuracy (%)"]
            parts.append(f"{what} reaches {r['Mean test accuracy (%)']:.1f}% with "
                         f"{r['Trainable parameters']:,} ({abs(gap):.1f} points "
                         f"{'below' if gap > 0 else 'above'} it)")
    seeds = int(table["Seeds"].min())
    return "; ".join(parts) + f" (mean of {seeds} seed{'s' if seeds != 1 else ''})."


COLORS = {"probe": "#0072B2", "finetune": "#009E73", "lora": "#CC79A7"}


def tradeoff_figure(table: pd.DataFrame) -> go.Figure:
    """Mean test accuracy against trainable parameters (log x), error bars of ±1 std; the LoRA
    ranks joined by a line, the probe and fine-tuning as single points."""
    fig = go.Figure()
    lora = table[table["strategy"].str.startswith("lora:")].sort_values("rank")
    groups = [("LoRA", lora, COLORS["lora"], [f"r={int(r)}" for r in lora["rank"]], "lines+markers+text")]
    for name in ("probe", "finetune"):
        part = table[table["strategy"] == name]
        groups.append((get_strategy(name).label, part, COLORS[name], [get_strategy(name).label] * len(part),
                       "markers+text"))
    for label, part, color, texts, mode in groups:
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["Trainable parameters"].tolist(), y=part["Mean test accuracy (%)"].tolist(),
            mode=mode, name=label,
            text=texts, textposition="top center", marker={"size": 11, "color": color},
            line={"color": color, "width": 2},
            error_y={"type": "data", "array": part["± std"].tolist(), "visible": True},
            customdata=part[["Strategy", "Seeds"]].values.tolist(),
            hovertemplate="<b>%{customdata[0]}</b><br>%{x:,} trainable parameters<br>"
                          "test accuracy %{y:.1f}% (%{customdata[1]} seeds)<extra></extra>"))
    fig.update_xaxes(type="log", title="trainable parameters (log scale, counted on the built model)")
    fig.update_yaxes(title="test accuracy (%)")
    fig.update_layout(height=440, margin={"l": 60, "r": 20, "t": 20, "b": 60}, hovermode="closest")
    return fig


@st.fragment(run_every=POLL_SECONDS)
def live_tradeoff(spec: SweepSpec) -> None:
    """Progress of the trade-off's job and the chart so far; a full rerun when it ends."""
    job = job_manager().status(spec.key())
    if job is None or not job.active:
        st.rerun(scope="app")
        return
    job_progress(job, spec)
    records = live_records(job)
    if not records.empty:
        st.plotly_chart(tradeoff_figure(tradeoff_table(records)), key="lora_tradeoff_live")


def preset_counts(preset: str, rank: int, targets) -> Optional[object]:
    """The preset's count, or None after showing why it cannot be counted."""
    try:
        return count_preset(preset, rank, targets)
    except LoraError as err:
        st.error(f"Cannot count this adapter: {err}.", icon=":material/error:")
        return None
