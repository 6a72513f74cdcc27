"""Forms and panels of the forgetting lesson: figures, tables and readings of stored results.

The forgetting experiment (`engine.experiments.forgetting`) stores one record per arm with both tasks'
accuracy after every epoch; the diagnostics (`engine.experiments.diagnostics`) store per-layer probe
accuracies and CKA. The forms here fill each section's settings (`ui.sections.forgetting`); the
panels show a section's job while it runs and its stored records after, as plotly figures,
tables and sentences that quote the run's own numbers. Nothing here trains.
"""

from __future__ import annotations

from typing import Callable, Optional

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core.datasets import labels_text
from engine.core.store import ResultStore
from engine.experiments.diagnostics import BASELINE, DiagnosticsConfig, stored_units
from engine.experiments.forgetting import ARM_LABELS, ForgettingConfig, stored_arms
from ui.curves import plural
from ui.section_run import follow_job
from ui.sections.forgetting import (BACKBONE_LRS, D_LABELS, EPOCHS, F_LABELS, FREEZE_BLOCKS, LAMBDAS,
                                    LOW_MULTS, LRS, PROBE_LABELS, REPLAY_MAX, SEEDS,
                                    DiagnosticsSettings, ForgettingSettings)

ARM_COLORS = {"finetune": "#D55E00", "low_lr": "#0072B2", "freeze": "#E69F00", "ewc": "#009E73",
              "replay": "#CC79A7"}
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
            hovertemplate=f"<b>{ARM_LABELS[arm]}</b><br>epoch %{{x}}<br>{task} accuracy "
                          "%{y:.1f}%<extra></extra>"))
    title = ("Source task (MNIST, held-out images, kept head)" if task == "source"
             else "Target task (test split, new head)")
    fig.update_xaxes(title="epochs of fine-tuning on the target", dtick=1)
    fig.update_yaxes(title="test accuracy (%)")
    fig.update_layout(title=title, height=440, margin={"l": 60, "r": 20, "t": 50, "b": 60},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
                      hovermode="x unified")
    return fig


def forgetting_table(records: dict[str, dict], config: ForgettingConfig) -> pd.DataFrame:
    rows = [{"Arm": ARM_LABELS[arm], "Setting": arm_setting(arm, config),
             "Source before (%)": r["source_before"], "Source after (%)": r["source_after"],
             "Source change (points)": r["source_after"] - r["source_before"],
             "Lowest source (%)": min(r["source_accuracy"]),
             "Target after (%)": r["target_after"], "Trained weights": f"{r['trainable_parameters']:,}"}
            for arm, r in records.items()]
    return pd.DataFrame(rows).set_index("Arm").round(1)


def forgetting_reading(records: dict[str, dict]) -> str:
    """Sentences quoting this run: the plain arm's drop, then each mitigation's against it."""
    plain = records.get("finetune")
    lines = []
    if plain is not None:
        drop = plain["source_before"] - plain["source_after"]
        low = min(plain["source_accuracy"])
        if drop > 0:
            lines.append(f"Plain fine-tuning took the target to **{plain['target_after']:.1f}%**, "
                         f"while the source task fell from **{plain['source_before']:.1f}%** to "
                         f"**{plain['source_after']:.1f}%** (down {drop:.1f} points; lowest "
                         f"{low:.1f}%). Nothing in its loss asked it to keep the source.")
        else:
            lines.append(f"In this run plain fine-tuning kept the source task at "
                         f"{plain['source_after']:.1f}% (from {plain['source_before']:.1f}%): no "
                         "forgetting at these settings. A larger learning rate or more epochs "
                         "move the shared layers further.")
    for arm, record in records.items():
        if arm == "finetune":
            continue
        change = record["source_after"] - record["source_before"]
        text = (f"- **{ARM_LABELS[arm]}**: source {record['source_before']:.1f}% → "
                f"{record['source_after']:.1f}% ({change:+.1f} points), target "
                f"{record['target_after']:.1f}%")
        if plain is not None:
            text += (f" (plain fine-tuning: {plain['source_after'] - plain['source_before']:+.1f} "
                     f"points, target {plain['target_after']:.1f}%)")
        lines.append(text + ".")
    return "\n".join(lines)


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
        fig.add_hline(y=base["pixels_probe"], line_dash="dot", line_color="#444",
                      annotation_text=f"probe on the raw pixels: {base['pixels_probe']:.1f}%",
                      annotation_position="bottom right")
        for name, key, color in (("Untrained network", "untrained_probe", "#999999"),
                                 ("Pretrained (before fine-tuning)", "pretrained_probe", "#0072B2")):
            fig.add_trace(go.Scatter(x=layers[1:], y=base[key], mode="lines+markers", name=name,
                                     line={"color": color, "width": 3}))
    for i, r in enumerate(finetune_units(records)):
        fig.add_trace(go.Scatter(x=layers[1:], y=r["finetuned_probe"], mode="lines+markers",
                                 name=f"After fine-tuning, pretrained layers at lr {r['backbone_lr']:g}",
                                 line={"color": "#009E73", "width": 3, "dash": LR_DASHES[i % 5]}))
    return _per_layer_layout(fig, "probe test accuracy (%)", "layer whose output the probe reads",
                             "features from")


def cka_figure(records: dict[str, dict]) -> go.Figure:
    """Linear CKA of each block before against after fine-tuning, on target and source images."""
    fig = go.Figure()
    for i, r in enumerate(finetune_units(records)):
        for key, images, color in (("cka_target", "target test images", "#009E73"),
                                   ("cka_source", "source held-out images", "#D55E00")):
            fig.add_trace(go.Scatter(
                x=r["layers"][1:], y=r[key], mode="lines+markers", line={"color": color, "width": 3,
                                                                         "dash": LR_DASHES[i % 5]},
                name=f"lr {r['backbone_lr']:g}, {images}",
                hovertemplate="%{x}<br>CKA %{y:.4f}<extra></extra>"))
    fig.add_hline(y=1.0, line_dash="dot", line_color="#444",
                  annotation_text="1 = unchanged (up to rotation and scale)",
                  annotation_position="bottom left")
    return _per_layer_layout(fig, "linear CKA, before vs after", "block", "fine-tune, images compared")


def _per_layer_layout(fig: go.Figure, y_title: str, x_title: str, legend_title: str) -> go.Figure:
    """The layout the per-layer charts share: one point per layer, hovered layer by layer."""
    fig.update_yaxes(title=y_title)
    fig.update_xaxes(title=x_title)
    fig.update_layout(height=420, margin={"l": 60, "r": 20, "t": 20, "b": 60},
                      legend_title_text=legend_title, hovermode="x unified")
    return fig


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


def diagnostics_reading(records: dict[str, dict], config: DiagnosticsConfig) -> str:
    """Sentences quoting this run: where CKA fell most, and what the probes show."""
    lines = []
    for r in finetune_units(records):
        cka, layers = r["cka_target"], r["layers"][1:]
        lo = min(range(len(cka)), key=cka.__getitem__)
        hi = max(range(len(cka)), key=cka.__getitem__)
        lines.append(f"- Pretrained layers at lr **{r['backbone_lr']:g}** (target test accuracy "
                     f"{r['target_accuracy']:.1f}%): CKA stayed highest at {layers[hi]} "
                     f"(**{cka[hi]:.4f}**) and fell most at {layers[lo]} (**{cka[lo]:.4f}**); "
                     f"its weights moved {100 * r['relative_change'][hi]:.1f}% and "
                     f"{100 * r['relative_change'][lo]:.1f}% of their size.")
    units = finetune_units(records)
    if units:
        falls = all(all(x >= y for x, y in zip(r["cka_target"], r["cka_target"][1:])) for r in units)
        lines.append("- In this run CKA " + ("falls block by block with depth in every fine-tune: "
                     "the deeper the layer, the more fine-tuning rewrote it." if falls else
                     "does not fall steadily with depth in every fine-tune: look at the table for "
                     "where the change concentrated."))
    base = records.get(BASELINE)
    if base is not None:
        pre, unt = base["pretrained_probe"], base["untrained_probe"]
        lines.append(f"- With {labels_text(config.probe_labels_per_class)} labels per class, a probe "
                     f"on the pretrained network's last block scores **{pre[-1]:.1f}%**, on an "
                     f"untrained network's **{unt[-1]:.1f}%**, on the raw pixels "
                     f"**{base['pixels_probe']:.1f}%**.")
    return "\n".join(lines)


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
            seed=st.number_input("Seed", *SEEDS, current.seed, width=160,
                                 help="Target labels drawn, new head, batch order."))
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
    left, right = st.columns(2)
    left.plotly_chart(forgetting_figure(records, "source"), key=f"{key}_source")
    right.plotly_chart(forgetting_figure(records, "target"), key=f"{key}_target")


def _stored_or_invitation(settings, notes, name: str, unit: str, read: Callable, invitation: str,
                          draw_live: Optional[Callable[[], None]] = None) -> dict[str, dict]:
    """A section's stored records, `read(experiment, store)`; {} while its job runs (its live
    panel drawn instead) or when none is stored yet (`invitation` shown)."""
    if follow_job(settings, name, notes, draw_live, unit=unit):
        return {}
    records = read(settings.experiment(), ResultStore())
    if not records:
        st.info(invitation, icon=":material/info:")
    return records


def forgetting_panel(settings: ForgettingSettings, notes) -> dict[str, dict]:
    """The forgetting section's results: its job's progress and curves so far while it runs,
    else the stored arms' curves, table and reading (notes in `notes`). Returns the stored
    arms drawn, or {} when nothing is drawn yet."""
    config = settings.experiment()

    def draw_live() -> None:
        so_far = stored_arms(config, ResultStore())
        if so_far:
            draw_forgetting(so_far, "forgetting_live")
    records = _stored_or_invitation(
        settings, notes, "forgetting", "arm", stored_arms,
        f"None of the {plural(len(config.arms), 'arm')} of these settings is stored yet. "
        "Press Run (about a minute on two CPU cores).", draw_live)
    if not records:
        return {}
    if len(records) < len(config.arms):
        missing = plural(len(config.arms) - len(records), "arm")
        notes.warning(f"{missing} of these settings not stored yet; press Run to train only "
                      "what is missing.", icon=":material/warning:")
    draw_forgetting(records, "forgetting")
    st.dataframe(forgetting_table(records, config))
    st.markdown(forgetting_reading(records))
    return records


def diagnostics_panel(settings: DiagnosticsSettings, notes) -> dict[str, dict]:
    """The diagnostics section's results: its job's progress while it runs, else the stored
    probes, CKA, weight changes and reading. Returns the stored units drawn, or {}."""
    config = settings.experiment()
    records = _stored_or_invitation(
        settings, notes, "diagnostics", "model", stored_units,
        f"Nothing of these settings is stored yet ({plural(len(config.unit_names()), 'model')} "
        "to train and probe). Press Run.")
    if not records:
        return {}
    st.subheader("Linear probe on each layer")
    st.plotly_chart(probe_figure(records), key="probes")
    st.subheader("Similarity before against after fine-tuning")
    st.plotly_chart(cka_figure(records), key="cka")
    table = change_table(records)
    if not table.empty:
        st.dataframe(table)
    st.markdown(diagnostics_reading(records, config))
    return records
