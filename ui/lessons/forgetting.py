"""Forms and panels of the forgetting lesson: figures, tables and readings of stored results.

The forgetting experiment (`engine.experiments.forgetting`) stores one record per arm with both tasks'
accuracy after every epoch; the diagnostics (`engine.experiments.diagnostics`) store per-layer probe
accuracies and CKA. The forms here fill each section's settings (`engine.experiments.lessons.forgetting`); the
panels show a section's job while it runs and its stored records after, as plotly figures,
tables and sentences that quote the run's own numbers. Nothing here trains.
"""

from __future__ import annotations

from typing import Callable, Optional

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core.datasets import labels_text
from engine.experiments.diagnostics import BASELINE
from engine.experiments.forgetting import ARM_LABELS, MAX_SEEDS, ForgettingConfig
from engine.experiments.readings.forgetting import diagnostics_readings, forgetting_readings
from ui.kit.text import plural
from ui.kit.exports import show_chart
from ui.kit.jobs import stored
from ui.kit.figures import MODEBAR_ROOM, chart_layout, reference_line, strategy_color, titled
from ui.kit.readings import show_readings
from ui.kit.section import Section, missing_note
from engine.experiments.lessons.forgetting import (BACKBONE_LRS, D_LABELS, EPOCHS, F_LABELS, FREEZE_BLOCKS, LAMBDAS,
                                    LOW_MULTS, LRS, PROBE_LABELS, REPLAY_MAX, SEEDS,
                                    DiagnosticsSettings, ForgettingSettings)
from ui.kit.tables import Compact, show_table

# the plain fine-tune in the fine-tune colour of every page; each remedy its own colour and marker
ARM_COLORS = {"finetune": strategy_color("finetune"), "low_lr": "#56B4E9", "freeze": "#0072B2",
              "ewc": "#009E73", "replay": "#CC79A7"}
ARM_SYMBOLS = {"finetune": "circle", "low_lr": "square", "freeze": "diamond", "ewc": "triangle-up",
               "replay": "x"}
LR_DASHES = ["solid", "dash", "dot", "dashdot", "longdash"]


def arm_setting(arm: str, config: ForgettingConfig) -> str:
    """The arm's own setting, as the learner reads it."""
    return {"finetune": f"every layer at lr {config.lr:g}",
            "low_lr": f"pretrained layers at lr {config.lr * config.low_lr_mult:g}",
            "freeze": f"first {config.freeze_blocks} block{'s' if config.freeze_blocks > 1 else ''} "
                      "frozen",
            "ewc": f"λ = {config.ewc_lambda:g}, Fisher on {config.fisher_samples} source images",
            "replay": f"{config.replay_fraction:.0%} of each batch from the source"}[arm]


def forgetting_figure(records: dict[str, dict], task: str) -> go.Figure:
    """Accuracy of `task` ("source" or "target") after each epoch, one line per arm."""
    fig = go.Figure()
    for arm, record in records.items():
        fig.add_trace(go.Scatter(
            x=record["epoch"], y=record[f"{task}_accuracy"], mode="lines+markers",
            name=ARM_LABELS[arm], line={"color": ARM_COLORS[arm], "width": 3},
            marker={"symbol": ARM_SYMBOLS[arm], "size": 9},
            hovertemplate=f"<b>{ARM_LABELS[arm]}</b><br>epoch %{{x}}<br>{task} accuracy "
                          "%{y:.1f}%<extra></extra>"))
    # short enough for a phone's width (the section's text says which images are scored)
    title = "Source task: MNIST, kept head" if task == "source" else "Target task: UCI digits, new head"
    fig.update_xaxes(title="epochs of fine-tuning on the target", dtick=1)
    fig.update_yaxes(title="test accuracy (%)")
    fig.update_layout(hovermode="x unified")
    return chart_layout(titled(fig, title), 480, top=60 + MODEBAR_ROOM)


def mean_records(records: dict[str, list[dict]]) -> dict[str, dict]:
    """arm -> one record whose accuracies are the means over its stored seeds (epoch by epoch),
    with `seeds`: what the charts and the table draw."""
    out = {}
    for arm, runs in records.items():
        mean = dict(runs[0], seeds=len(runs))
        for key in ("source_accuracy", "target_accuracy"):
            mean[key] = [sum(v) / len(v) for v in zip(*(r[key] for r in runs))]
        for key in ("source_before", "source_after", "target_after"):
            mean[key] = sum(r[key] for r in runs) / len(runs)
        out[arm] = mean
    return out


def forgetting_table(records: dict[str, dict], config: ForgettingConfig) -> pd.DataFrame:
    """One row per arm: its setting and its means over seeds (`mean_records`)."""
    rows = [{"Arm": ARM_LABELS[arm], "Setting": arm_setting(arm, config),
             "Source before (%)": r["source_before"], "Source after (%)": r["source_after"],
             "Source change (points)": r["source_after"] - r["source_before"],
             "Lowest source (%)": min(r["source_accuracy"]),
             "Target after (%)": r["target_after"], "Seeds": r["seeds"],
             "Trained weights": f"{r['trainable_parameters']:,}"}
            for arm, r in records.items()]
    return pd.DataFrame(rows).set_index("Arm").round(1)


# ---- diagnostics ---------------------------------------------------------------------------------

def finetune_units(records: dict[str, dict]) -> list[dict]:
    return sorted((r for u, r in records.items() if u != BASELINE), key=lambda r: r["backbone_lr"])


def probe_figure(records: dict[str, dict]) -> go.Figure:
    """Linear-probe accuracy of each layer's output: untrained, pretrained, each fine-tune."""
    fig = go.Figure()
    base = records.get(BASELINE)
    any_record = next(iter(records.values()))
    layers = any_record["layers"]
    if base is not None:
        reference_line(fig, base["pixels_probe"],
                       f"probe on the raw pixels: {base['pixels_probe']:.1f}%")
        for name, key, color in (("Untrained network", "untrained_probe", "#999999"),
                                 ("Pretrained (before fine-tuning)", "pretrained_probe",
                                  strategy_color("probe"))):
            fig.add_trace(go.Scatter(x=layers[1:], y=base[key], mode="lines+markers", name=name,
                                     line={"color": color, "width": 3}))
    for i, r in enumerate(finetune_units(records)):
        fig.add_trace(go.Scatter(x=layers[1:], y=r["finetuned_probe"], mode="lines+markers",
                                 name=f"After fine-tuning, pretrained layers at lr {r['backbone_lr']:g}",
                                 line={"color": strategy_color("finetune"), "width": 3,
                                       "dash": LR_DASHES[i % 5]}))
    return _per_layer_layout(fig, "probe test accuracy (%)", "layer whose output the probe reads",
                             "features from")


def cka_figure(records: dict[str, dict]) -> go.Figure:
    """Linear CKA of each block before against after fine-tuning, on target and source images."""
    fig = go.Figure()
    for i, r in enumerate(finetune_units(records)):
        for key, images, color, symbol in (
                ("cka_target", "target test images", "#0072B2", "circle"),
                ("cka_source", "source held-out images", "#D55E00", "square")):
            fig.add_trace(go.Scatter(
                x=r["layers"][1:], y=r[key], mode="lines+markers", line={"color": color, "width": 3,
                                                                         "dash": LR_DASHES[i % 5]},
                marker={"symbol": symbol, "size": 9},
                name=f"lr {r['backbone_lr']:g}, {images}",
                hovertemplate="%{x}<br>CKA %{y:.4f}<extra></extra>"))
    fig.add_hline(y=1.0, line_dash="dot", line_color="#444",
                  annotation_text="1 = unchanged (up to rotation and scale)",
                  annotation_position="top left")
    lowest = min((min(r[k]) for r in finetune_units(records) for k in ("cka_target", "cka_source")
                  if r[k]), default=0.0)
    fig.update_yaxes(range=[max(0.0, lowest - 0.1), 1.12])  # room above 1 for the line's label
    return _per_layer_layout(fig, "linear CKA, before vs after", "block", "fine-tune, images compared")


def _per_layer_layout(fig: go.Figure, y_title: str, x_title: str, legend_title: str) -> go.Figure:
    """The layout the per-layer charts share: one point per layer, hovered layer by layer."""
    fig.update_yaxes(title=y_title)
    fig.update_xaxes(title=x_title)
    fig.update_layout(hovermode="x unified")
    return chart_layout(fig, 480, legend_title)


def change_table(records: dict[str, dict]) -> pd.DataFrame:
    """Per block: CKA and the relative weight change ||θ − θ*|| / ||θ*|| of each fine-tune."""
    units = finetune_units(records)
    if not units:
        return pd.DataFrame()
    table = pd.DataFrame(index=units[0]["layers"][1:])
    for r in units:
        table[f"CKA, lr {r['backbone_lr']:g} (target images)"] = r["cka_target"]
        table[f"Weight change, lr {r['backbone_lr']:g} (%)"] = [round(100 * v, 1)
                                                               for v in r["relative_change"]]
    return table.rename_axis("block")


# ---- forms and panels ------------------------------------------------------------------------------

def _run_button() -> bool:
    return st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")


def _size_slider(area, label: str, sizes: tuple[int, ...], value: int) -> int:
    return area.select_slider(label, sizes, value, format_func=labels_text)


def forgetting_form(current: ForgettingSettings) -> Optional[Callable[[], ForgettingSettings]]:
    """The forgetting section's form, showing `current`; when Run is pressed, what builds the
    chosen settings, else None."""
    with st.form("forgetting_settings"):
        a, b, c = st.columns(3)
        values = dict(
            labels_per_class=_size_slider(a, "Target labels per class", F_LABELS, current.labels_per_class),
            epochs=b.slider("Epochs", *EPOCHS, current.epochs),
            lr=c.select_slider("Learning rate", LRS, current.lr, format_func="{:g}".format,
                               help="Of every layer in plain fine-tuning, and of the new head in every arm."))
        a, b, c, d = st.columns(4)
        values.update(
            low_lr_mult=a.select_slider("Lower learning rate: factor", LOW_MULTS, current.low_lr_mult,
                                        format_func="{:g}".format),
            freeze_blocks=b.slider("Frozen early blocks", *FREEZE_BLOCKS, current.freeze_blocks),
            ewc_lambda=c.select_slider("EWC λ", LAMBDAS, current.ewc_lambda, format_func="{:g}".format,
                                       help="0 makes EWC plain fine-tuning."),
            replay_fraction=d.slider("Replay fraction", 0.0, REPLAY_MAX, float(current.replay_fraction),
                                     0.05, help="Share of each batch that is MNIST training images."),
            seed=st.number_input("First seed", *SEEDS, current.seed, width=160,
                                 help="Target labels drawn, new head, batch order."),
            seeds=st.number_input("Seeds", 1, MAX_SEEDS, current.seeds, width=160,
                                  help="Runs of every arm, one per seed from the first up; the "
                                       "readings call a difference only with 3 or more."))
        run = _run_button()
    return (lambda: ForgettingSettings.from_form(**values)) if run else None


def diagnostics_form(current: DiagnosticsSettings) -> Optional[Callable[[], DiagnosticsSettings]]:
    """The diagnostics section's form, showing `current`; when Run is pressed, what builds the
    chosen settings, else None."""
    with st.form("diagnostics_settings"):
        left, mid, right = st.columns(3)
        values = dict(
            labels_per_class=_size_slider(left, "Fine-tune labels per class", D_LABELS,
                                          current.labels_per_class),
            backbone_lrs=mid.multiselect("Learning rates of the pretrained layers", BACKBONE_LRS,
                                         default=list(current.backbone_lrs), format_func="{:g}".format,
                                         help="One fine-tune per rate; the new head trains at 0.003."),
            probe_labels_per_class=_size_slider(right, "Probe labels per class", PROBE_LABELS,
                                                current.probe_labels_per_class))
        run = _run_button()
    return (lambda: DiagnosticsSettings.from_form(**values)) if run else None


def draw_forgetting(records: dict, key: str) -> None:
    for area, task in zip(st.columns(2), ("source", "target")):
        show_chart(forgetting_figure(records, task), f"{key}_{task}", runs=records,
                   name=f"forgetting-{task}-task", area=area)


def _stored_or_invitation(settings, invitation: str) -> dict[str, dict]:
    """A section's stored records; {} with `invitation` shown when none is stored yet."""
    records = stored(settings)
    if not records:
        st.info(invitation, icon=":material/info:")
    return records


def forgetting_live(settings: ForgettingSettings) -> None:
    """While the job runs: the curves of the seeds stored so far."""
    so_far = stored(settings)
    if so_far:
        draw_forgetting(mean_records(so_far), "forgetting_live")


def forgetting_panel(settings: ForgettingSettings, notes) -> dict[str, dict]:
    """The forgetting section's results: the stored arms' curves, table and reading (notes in
    `notes`). Returns the stored arms drawn, or {} when nothing is stored yet."""
    config = settings.config()
    runs = _stored_or_invitation(
        settings,
        f"None of the {plural(len(config.arms) * settings.seeds, 'arm run')} of these settings "
        f"is stored yet. Press Run: the job's box shows each arm's epochs as they train.")
    if not runs:
        return {}
    stored, total = sum(len(r) for r in runs.values()), len(config.arms) * settings.seeds
    missing_note(stored, total, notes, "arm run")
    records = mean_records(runs)
    draw_forgetting(records, "forgetting")
    st.caption(f"Lines and table: means over {plural(settings.seeds, 'seed')} "
               f"(seeds {settings.seed} to {settings.seed + settings.seeds - 1}).")
    table = forgetting_table(records, config)  # every number rounded to 0.1
    show_table(table, "forgetting", formats={c: ("d" if c == "Seeds" else ".1f") for c in table.columns},
               compact=Compact("{Arm}: {Setting}"))
    show_readings(forgetting_readings(runs), settings, "forgetting")
    return records


def diagnostics_panel(settings: DiagnosticsSettings, notes) -> dict[str, dict]:
    """The diagnostics section's results: the stored probes, CKA, weight changes and reading.
    Returns the stored units drawn, or {}."""
    config = settings.experiment()
    records = _stored_or_invitation(
        settings,
        f"Nothing of these settings is stored yet ({plural(len(config.unit_names()), 'model')} "
        "to train and probe). Press Run.")
    if not records:
        return {}
    st.subheader("Linear probe on each layer")
    show_chart(probe_figure(records), "probes", name="linear-probe-on-each-layer")
    st.subheader("Similarity before against after fine-tuning")
    show_chart(cka_figure(records), "cka", name="cka-before-against-after-fine-tuning")
    table = change_table(records)
    if not table.empty:
        show_table(table, "changes", compact=Compact("{block}"), formats={  # CKA to 0.0001
            c: ".4f" if c.startswith("CKA") else ".1f" for c in table.columns})
    show_readings(diagnostics_readings(records, BASELINE, labels_text(config.probe_labels_per_class)))
    return records


FORGETTING = Section("forgetting", "forgetting", ForgettingSettings, forgetting_form,
                     live=forgetting_live, results=forgetting_panel, unit="arm")
DIAGNOSTICS = Section("forgetting", "diagnostics", DiagnosticsSettings, diagnostics_form,
                      results=diagnostics_panel, unit="model")
SECTIONS = (FORGETTING, DIAGNOSTICS)
