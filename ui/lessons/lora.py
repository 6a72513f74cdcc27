"""Forms and panels of the LoRA lab: engine counts and stored runs in, Streamlit elements and
figures out.

The lab's training settings (`engine.experiments.lessons.lora.LabSettings`) live in the URL as well as the
form; their experiment is the one `SweepSpec` of the trade-off, which the server's job manager
runs like any other sweep, and the merge check (`engine.experiments.lora_merge`) is a job of its
own. The figures here (trainable parameters against rank, the memory bars, accuracy against
trainable parameters) are plotly builders of engine numbers; the panels draw a section's
stored results, or its job while it runs. Nothing here trains.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Callable, Optional

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from engine.core.backbones import get_backbone
from engine.core.datasets import labels_per_class_text
from engine.core.lora import PUBLISHED, LoraCount, LoraError, short_layer_names
from engine.core.strategies import get_strategy, lora_layer_names
from engine.experiments.lora_presets import (PRESETS, MemoryEstimates, count_preset, memory_estimates,
                                             preset_architecture, strategy_parameters)
from engine.experiments.readings.lora import tradeoff_readings
from engine.experiments.stats import summarize
from engine.experiments.sweep import MAX_SEEDS, plan_runs
from ui.kit.text import plural
from ui.kit.exports import show_chart
from ui.kit.text import count_text
from ui.kit.figures import (DASHES, PALETTE, chart_layout, count_ticks, error_bars,
                        strategy_color)
from ui.kit.jobs import stored
from ui.kit.readings import show_readings
from ui.kit.section import Section, missing_note
from engine.experiments.lessons.links import COUNTED_LABELS
from engine.experiments.lessons.lora import RANK_CHOICES, LabSettings, MergeSettings
from ui.kit.tables import Compact, show_table

CHART_RANKS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DEFAULT_PRESET = "gpt3-175b"
PRESET_KEY = "lora_lab.preset"  # session_state: the architecture chosen


@dataclass(frozen=True)
class AdapterChoice:
    """The adapter the count and memory sections describe."""

    preset: str  # the architecture, a key of PRESETS
    rank: int  # r
    alpha: float  # scales the update by alpha / r; changes no count
    targets: tuple[str, ...]  # module names, matched as peft matches target_modules


@dataclass(frozen=True)
class MemoryChoice:
    """How the memory section trains the chosen adapter."""

    weights: str  # precision of the weights: "bf16" or "fp32"
    batch: int  # examples per step
    seq: int  # tokens per example (transformers)
    checkpointing: bool  # keep only each block's input and recompute the rest


@functools.lru_cache(maxsize=1)
def _lesson_aliases() -> dict[str, str]:
    with torch.device("meta"):
        paths = short_layer_names(get_backbone("small_cnn").build_features())
    return {f"features.{path}": short for short, path in paths.items()}


def target_label(name: str) -> str:
    """A target name as the multiselect shows it; the small CNN's layers with their short name."""
    alias = _lesson_aliases().get(name)
    return f"{name} ({alias})" if alias else name


def bytes_text(n: float) -> str:
    """Decimal units, as the papers use: 37,748,736 -> '37.7 MB'."""
    for size, unit in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:,.0f} bytes"


def rank_figure(preset: str) -> go.Figure:
    """Trainable parameters against rank (log-log), one line per target set of the preset."""
    fig = go.Figure()
    for i, (label, targets) in enumerate(PRESETS[preset].target_sets):
        counts = [count_preset(preset, r, targets).trainable for r in CHART_RANKS]
        fig.add_trace(go.Scatter(x=list(CHART_RANKS), y=counts, mode="lines+markers", name=label,
                                 line={"color": PALETTE[i % len(PALETTE)], "width": 3,
                                       "dash": DASHES[i % len(DASHES)]},
                                 hovertemplate="r = %{x}<br>%{y:,} trainable<extra>" + label + "</extra>"))
    total = count_preset(preset, 1, PRESETS[preset].default_targets).base_total
    fig.add_hline(y=total, line_dash="dash", line_color="#444")
    # its label under the line's right end; on a log axis a note is placed by log10 of the value
    fig.add_annotation(x=1, xref="x domain", xanchor="right", y=math.log10(total), yref="y",
                       yanchor="top", text=f"the whole model: {total:,}", showarrow=False)
    fig.update_xaxes(type="log", title="rank r", tickvals=list(CHART_RANKS))
    ticks = count_ticks([total, *(count_preset(preset, r, t).trainable
                                  for _, t in PRESETS[preset].target_sets for r in CHART_RANKS)])
    fig.update_yaxes(type="log", title="trainable parameters", tickvals=ticks,
                     ticktext=[count_text(t) for t in ticks])
    return chart_layout(fig, 440, "targets")


def memory_figure(estimates: MemoryEstimates) -> go.Figure:
    """One stacked horizontal bar per method, one segment per memory term, in GB."""
    estimates, fig = estimates.methods(), go.Figure()
    labels = list(dict.fromkeys(t.label for e in estimates for t in e.terms))
    for i, label in enumerate(labels):
        fig.add_trace(go.Bar(
            y=[e.method for e in estimates], orientation="h", name=label,
            marker_color=PALETTE[i % len(PALETTE)],
            x=[sum(t.bytes for t in e.terms if t.label == label) / 1e9 for e in estimates],
            hovertemplate="%{y}: " + label + " %{x:,.2f} GB<extra></extra>"))
    for e in estimates:
        fig.add_annotation(x=e.total / 1e9, y=e.method, text=f" {bytes_text(e.total)}",
                           showarrow=False, xanchor="left")
    fig.update_layout(barmode="stack", xaxis_title="estimated GPU memory (GB)")
    return chart_layout(fig, 480, top=10, left=120, right=90)  # room for a phone's one-column legend


def memory_table(estimates: MemoryEstimates) -> pd.DataFrame:
    return pd.DataFrame([{"Method": e.method, "Term": t.label, "Memory": bytes_text(t.bytes),
                          "Assumption": t.assumption} for e in estimates.methods() for t in e.terms])


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


MERGE_ROUNDING = 1e-3  # largest |logit difference| still read as floating-point rounding (fp32)


def merge_sentence(check) -> str:
    """What the merge check's stored result says: whether merging the adapter into the weights
    changed the outputs beyond floating-point rounding (and the accuracy)."""
    sizes = (f"{get_strategy(check.strategy).label}: the adapter's {check.lora_params:,} numbers "
             f"take {check.lora_bytes:,} bytes as a safetensors file in fp32 "
             f"({check.lora_bytes_fp16:,} in fp16); the new head adds {check.head_bytes:,}; the "
             f"whole merged model takes {check.full_bytes:,}.")
    if check.max_abs_diff <= MERGE_ROUNDING and check.accuracy == check.merged_accuracy:
        return sizes + (f" The outputs differ by at most {check.max_abs_diff:.1e}: only "
                        "floating-point rounding, and the accuracy is unchanged.")
    return sizes + (f" The outputs differ by up to {check.max_abs_diff:.2e} (accuracy "
                    f"{check.accuracy:.1f}% with the adapter, {check.merged_accuracy:.1f}% merged): "
                    "more than floating-point rounding, so this merge changed the model.")


TICK_NAMES = {"probe": "probe", "finetune": "fine-tune"}  # under those points on the x axis


def tradeoff_figure(table: pd.DataFrame) -> go.Figure:
    """Mean test accuracy against trainable parameters (log x), error bars of ±1 std; the LoRA
    ranks joined by a line, the probe and fine-tuning as single points."""
    fig = go.Figure()
    lora = table[table["strategy"].str.startswith("lora:")].sort_values("rank")
    groups = [("LoRA", lora, strategy_color("lora"), "lines+markers")]
    for name in ("probe", "finetune"):
        part = table[table["strategy"] == name]
        groups.append((get_strategy(name).label, part, strategy_color(name), "markers"))
    for label, part, color, mode in groups:
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part["Trainable parameters"].tolist(), y=part["Mean test accuracy (%)"].tolist(),
            mode=mode, name=label, marker={"size": 11, "color": color},
            line={"color": color, "width": 2},
            error_y=error_bars(part["± std"], part["Seeds"]),
            customdata=[[name, plural(int(n), "seed")]
                        for name, n in zip(part["Strategy"], part["Seeds"])],
            hovertemplate="<b>%{customdata[0]}</b><br>%{x:,} trainable parameters<br>"
                          "test accuracy %{y:.1f}% (%{customdata[1]})<extra></extra>"))
    # each point named on the axis under it (a label beside a point would cross its error bar
    # or the line): LoRA's ranks, and the probe and fine-tuning; counts in the hover and table
    names = [(n, f"r={int(r)}") for n, r in zip(lora["Trainable parameters"], lora["rank"])]
    names += [(n, TICK_NAMES[s]) for n, s in zip(table["Trainable parameters"], table["strategy"])
              if s in TICK_NAMES]
    fig.update_xaxes(type="log", title="trainable parameters, log scale<br>(hover a point: "
                     "its exact count)",
                     tickvals=[float(n) for n, _ in names], ticktext=[t for _, t in names])
    fig.update_yaxes(title="test accuracy (%)")
    fig.update_layout(hovermode="closest")
    return chart_layout(fig, 480, top=30)


def preset_counts(preset: str, rank: int, targets) -> Optional[LoraCount]:
    """The preset's count, or None after showing why it cannot be counted."""
    try:
        return count_preset(preset, rank, targets)
    except LoraError as err:
        st.error(f"Cannot count this adapter: {err}.", icon=":material/error:")
        return None


# ---- sections ------------------------------------------------------------------------------------

def preset_choice() -> str:
    """The architecture: a link opens the one it names (a notice when the lab does not know it);
    later the widget rules, and the choice is written to the link."""
    url_preset = st.query_params.get("preset")
    if url_preset is not None and url_preset not in PRESETS:
        st.warning("This link's architecture is not one the lab knows; showing GPT-3 175B.",
                   icon=":material/link_off:")
    if PRESET_KEY not in st.session_state:
        st.session_state[PRESET_KEY] = url_preset if url_preset in PRESETS else DEFAULT_PRESET
    preset = st.selectbox("Architecture", list(PRESETS), format_func=lambda n: PRESETS[n].title,
                          key=PRESET_KEY)
    if preset != DEFAULT_PRESET or "preset" in st.query_params:
        st.query_params["preset"] = preset
    return preset


def adapter_controls(preset: str) -> AdapterChoice:
    """Rank, alpha and target modules of an adapter on `preset`."""
    left, mid, right = st.columns([1, 1, 3])
    rank = left.number_input("Rank r", min_value=1, max_value=1024, value=8, step=1)
    alpha = mid.number_input("alpha", min_value=0.5, max_value=1024.0, value=16.0, step=1.0,
                             help="Scales the update by alpha / r. It changes no count.")
    targets = right.multiselect("Target modules", preset_architecture(preset).target_names(),
                                default=list(PRESETS[preset].default_targets),
                                key=f"lora_targets_{preset}", format_func=target_label,
                                help="Names matched as peft matches target_modules: a module whose "
                                     "path is the name or ends with '.' + the name.")
    st.caption(f"{PRESETS[preset].title}: {PRESETS[preset].about}. Built from its architecture "
               "(no weights downloaded); every number below is counted from its module shapes.")
    return AdapterChoice(preset, int(rank), float(alpha), tuple(targets))


def count_panel(count: LoraCount, adapter: AdapterChoice) -> None:
    """The exact count: metrics, what the adapter weighs on disk, and the per-module breakdown."""
    c = st.columns(4)
    c[0].metric("Trainable (LoRA)", count_text(count.trainable), help=f"{count.trainable:,}")
    c[1].metric("Total with the adapter", count_text(count.total), help=f"{count.total:,}")
    c[2].metric("Trainable share", f"{count.percent:.4g}%")
    c[3].metric("Scaling alpha/r", f"{adapter.alpha / adapter.rank:.4g}")
    st.markdown(
        f"Exactly **{count.trainable:,}** trainable parameters out of **{count.total:,}** "
        f"(peft's `get_nb_trainable_parameters()` reports the same pair). On disk the adapter takes "
        f"**{bytes_text(count.trainable * 2)}** in fp16 ({bytes_text(count.trainable * 4)} in fp32) "
        f"against **{bytes_text(count.base_total * 2)}** for the full checkpoint in fp16 "
        f"({bytes_text(count.base_total * 4)} in fp32): "
        f"{count.base_total / count.trainable:,.0f} times smaller. (Tensor data only; a file's "
        "header adds a few kilobytes.)")
    show_table(count.breakdown(), "breakdown", compact=Compact("{module} ({type}, {shape})"),
               formats=dict.fromkeys(("count", "weights each", "LoRA each", "LoRA total"), ","))


def memory_controls(preset: str) -> MemoryChoice:
    """Precision, batch, sequence length and checkpointing of the memory estimate."""
    t = PRESETS[preset].transformer
    left, mid, right = st.columns(3)  # the toggle below, its label whole (a fourth column cut it)
    weights = left.radio("Weights", ["bf16", "fp32"], horizontal=True)
    batch = mid.number_input("Batch size", min_value=1, max_value=4096, value=1, step=1)
    seq = right.number_input("Sequence length (tokens)", min_value=1, max_value=131072,
                             value=min(512, t.seq) if t else 512, step=1,
                             disabled=t is None or t.fixed_seq,
                             help="Transformers only; ViT always reads 197 tokens.")
    checkpointing = st.toggle("Gradient checkpointing", value=True, disabled=t is None,
                              help="Keep only each block's input and recompute the rest in the "
                                   "backward pass (transformers here).")
    return MemoryChoice(weights, int(batch), int(seq), bool(checkpointing))


def memory_panel(adapter: AdapterChoice, memory: MemoryChoice) -> None:
    """The three methods' memory, term by term, and what the bars say."""
    estimates = memory_estimates(adapter.preset, adapter.rank, adapter.targets, memory.weights,
                                 memory.batch, memory.seq, memory.checkpointing)
    show_chart(memory_figure(estimates), "memory_chart", name=f"lora-memory-{adapter.preset}")
    with st.expander("Every term and its assumption"):
        show_table(memory_table(estimates), "memory", compact=Compact("{Method}: {Term}"))
    st.markdown(
        "Full fine-tuning pays for a gradient and two Adam moments for every weight, about 16 "
        "bytes a weight. LoRA pays them only for A and B, so a frozen 16-bit model costs 2 bytes a "
        "weight. QLoRA also stores the frozen linear layers in 4-bit NormalFloat, about half a "
        "byte a weight. The activations are the same for all three: the gradient still has to flow "
        "back through every frozen layer to reach the adapters, so the same activations are kept.")


def published_panel() -> None:
    """The lab's estimates beside the figures the LoRA and QLoRA papers publish."""
    gpt3 = count_preset("gpt3-175b", 4, ["q_proj", "v_proj"])
    g = memory_estimates("gpt3-175b", 4, ["q_proj", "v_proj"], "bf16", 1, 2048, True)
    q65 = memory_estimates("llama-65b", 8, ["q_proj", "v_proj"], "bf16", 1, 512, True).qlora
    show_table({
        "Published figure": [p.what for p in PUBLISHED.values()],
        "As published": [p.stated for p in PUBLISHED.values()],
        "This lab's estimate": [
            f"{bytes_text(g.full.total)} (bf16 weights, fp32 master copy and Adam, 2048 tokens)",
            f"{bytes_text(g.lora.total)} (bf16 frozen weights, r = 4 on Wq and Wv)",
            f"{bytes_text(gpt3.base_total * 2)} ({gpt3.base_total:,} weights in fp16)",
            f"{bytes_text(gpt3.trainable * 2)} ({gpt3.trainable:,} LoRA weights in fp16)",
            f"{bytes_text(q65.total)} (LLaMA 65B, r = 8 on q and v, 512 tokens, checkpointing)"],
        "Source": [p.source for p in PUBLISHED.values()]}, "published",
        compact=Compact("{Published figure}"))
    st.markdown(
        f"The paper's 1.2 TB for full fine-tuning works out at "
        f"{PUBLISHED['gpt3_full_train'].value / gpt3.base_total:.1f} bytes a weight, less than the 16 "
        "assumed here (bf16 weights and gradients, an fp32 master copy, fp32 Adam moments). The paper "
        "does not list its terms, so the gap is one of assumptions about how the optimizer state is "
        "stored. The frozen 16-bit model behind the 350 GB and the 35 MB adapter match the exact "
        f"counts here, and the QLoRA estimate for LLaMA 65B, {bytes_text(q65.total)}, "
        f"{'fits' if q65.total < PUBLISHED['qlora_65b'].value else 'does not fit'} in one 48 GB GPU.")


def tradeoff_form(current: LabSettings) -> Optional[Callable[[], LabSettings]]:
    """The trade-off's form, showing `current`; when Run is pressed, what builds the chosen
    settings, else None."""
    with st.form("lora_settings", border=True):
        left, right = st.columns(2)
        values = dict(
            labels_per_class=left.selectbox("Labels per class", COUNTED_LABELS,
                                            index=COUNTED_LABELS.index(current.labels_per_class)),
            seeds=right.number_input("Seeds", min_value=1, max_value=MAX_SEEDS, value=current.seeds,
                                     step=1),
            ranks=left.multiselect("LoRA ranks", RANK_CHOICES, default=list(current.ranks)),
            layers=right.multiselect("Layers LoRA wraps", lora_layer_names(),
                                     default=list(current.layers or lora_layer_names())))
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    return (lambda: LabSettings.from_form(**values)) if run else None


def _tradeoff_chart_so_far(settings: LabSettings) -> None:
    records = stored(settings)
    if not records.empty:
        show_chart(tradeoff_figure(tradeoff_table(records)), "lora_tradeoff_live")


def tradeoff_panel(settings: LabSettings, notes) -> None:
    """The trade-off's stored runs: chart, sentence, table; a notice in `notes` when some runs
    are missing."""
    spec = settings.experiment()
    records, total = stored(settings), len(plan_runs(spec))
    if records.empty:
        st.info(f"None of the {plural(total, 'run')} of these settings is stored yet: press Run.",
                icon=":material/info:")
        return
    missing_note(len(records), total, notes)
    table = tradeoff_table(records)
    show_chart(tradeoff_figure(table), "lora_tradeoff", runs=records, name="lora-trade-off")
    show_readings(tradeoff_readings(records, trainable_parameters, strategy_parameters("finetune")[1]),
                  settings, "lora")
    one_seed = int(table["Seeds"].max()) == 1
    shown = table.drop(columns=["strategy", "rank", *(["± std"] if one_seed else [])])
    show_table(shown, "tradeoff", compact=Compact("{Strategy}"), formats={
        "Trainable parameters": ",", "% of the model": ".2f", "Mean test accuracy (%)": ".1f",
        "± std": ".1f"})
    spread = ("one seed, so each point is a single run and there is no spread to show" if one_seed
              else "points are means over seeds, bars ±1 standard deviation")
    st.caption(f"{labels_per_class_text(settings.labels_per_class)}; {spread}. Trainable "
               "parameters are counted on the built model.")


def merge_form(current: MergeSettings) -> Optional[Callable[[], MergeSettings]]:
    """The merge check's form: the rank; the rest follows the trade-off's settings."""
    with st.form("merge_settings", border=True):
        rank = st.selectbox("Rank", RANK_CHOICES, index=RANK_CHOICES.index(current.rank))
        run = st.form_submit_button("Train and merge", icon=":material/merge:")
    return (lambda: replace(current, rank=int(rank))) if run else None


def merge_panel(settings: MergeSettings, notes) -> None:
    """The merge check's stored result (nothing before the first)."""
    check = stored(settings)
    if check is None:
        return
    c = st.columns(4)
    c[0].metric("Largest output difference", f"{check.max_abs_diff:.2e}",
                help=f"max |logits before − after merging| over {check.test_images:,} test images")
    c[1].metric("Accuracy with adapter", f"{check.accuracy:.1f}%")
    c[2].metric("Accuracy merged", f"{check.merged_accuracy:.1f}%")
    c[3].metric("Adapter on disk (fp32)", bytes_text(check.lora_bytes))
    st.markdown(merge_sentence(check))



TRADEOFF = Section("lora_lab", "tradeoff", LabSettings, tradeoff_form, live=_tradeoff_chart_so_far,
                   results=tradeoff_panel)
MERGE = Section("lora_lab", "merge", MergeSettings, merge_form, results=merge_panel, unit="check")
SECTIONS = (TRADEOFF, MERGE)
