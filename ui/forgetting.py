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
from engine.experiments.stats import TIE_RULE, difference
from engine.experiments.verdicts import and_list, step_signs, trend
from ui.curves import plural
from ui.exports import show_chart
from ui.figures import chart_layout, strategy_color
from ui.section_run import follow_job
from ui.sections.forgetting import (BACKBONE_LRS, D_LABELS, EPOCHS, F_LABELS, FREEZE_BLOCKS, LAMBDAS,
                                    LOW_MULTS, LRS, PROBE_LABELS, REPLAY_MAX, SEEDS,
                                    DiagnosticsSettings, ForgettingSettings)
from ui.tables import Compact, show_table

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
    fig.update_layout(title=title, hovermode="x unified")
    return chart_layout(fig, 480, top=60)


def forgetting_table(records: dict[str, dict], config: ForgettingConfig) -> pd.DataFrame:
    rows = [{"Arm": ARM_LABELS[arm], "Setting": arm_setting(arm, config),
             "Source before (%)": r["source_before"], "Source after (%)": r["source_after"],
             "Source change (points)": r["source_after"] - r["source_before"],
             "Lowest source (%)": min(r["source_accuracy"]),
             "Target after (%)": r["target_after"], "Trained weights": f"{r['trainable_parameters']:,}"}
            for arm, r in records.items()]
    return pd.DataFrame(rows).set_index("Arm").round(1)


ONE_SEED = ("Each arm is one run, so these verdicts rest on one seed: with no spread to compare, "
            "only the rule's 1-point floor separates a difference from a tie. Change the seed to "
            "see whether they hold.")


def _plain_sentence(plain: dict) -> str:
    """What plain fine-tuning did to the source task, judged by `TIE_RULE` (one seed)."""
    before, after = plain["source_before"], plain["source_after"]
    change, sign = after - before, difference([after], [before]).sign
    start = f"Plain fine-tuning took the target to **{plain['target_after']:.1f}%**"
    if sign < 0:
        return (f"{start}, while the source task fell from **{before:.1f}%** to **{after:.1f}%** "
                f"(down {-change:.1f} points; lowest {min(plain['source_accuracy']):.1f}%). "
                "Nothing in its loss asked it to keep the source.")
    moved = ("stayed level" if sign == 0 else "rose")
    return (f"{start}, and the source task {moved}: {before:.1f}% to {after:.1f}% ({change:+.1f} "
            "points). No forgetting that counts at these settings; a larger learning rate or more "
            "epochs move the shared layers further.")


def _against_plain(record: dict, plain: dict) -> str:
    """One mitigation against plain fine-tuning on both tasks, by `TIE_RULE` (one seed each)."""
    source = difference([record["source_after"]], [plain["source_after"]])
    target = difference([record["target_after"]], [plain["target_after"]])
    kept = {1: f"kept **more** of the source ({source.gap:+.1f} points)",
            0: f"kept as much of the source (level, {source.gap:+.1f} points)",
            -1: f"kept **less** of the source ({source.gap:+.1f} points)"}[source.sign]
    paid = {1: f"did better on the target ({target.gap:+.1f} points)",
            0: f"was level on the target ({target.gap:+.1f} points)",
            -1: f"paid {-target.gap:.1f} points on the target"}[target.sign]
    text = f"against plain fine-tuning it {kept} and {paid}"
    return text + ("" if source.sign > 0 else ": here it did not protect the source")


def forgetting_reading(records: dict[str, dict]) -> str:
    """Sentences chosen from this run by `TIE_RULE`: the plain arm's change on the source, then
    each mitigation against it, and that each verdict rests on one seed."""
    plain = records.get("finetune")
    lines = [] if plain is None else [_plain_sentence(plain)]
    for arm, record in records.items():
        if arm == "finetune":
            continue
        change = record["source_after"] - record["source_before"]
        text = (f"- **{ARM_LABELS[arm]}**: source {record['source_before']:.1f}% → "
                f"{record['source_after']:.1f}% ({change:+.1f} points), target "
                f"{record['target_after']:.1f}%")
        if plain is not None:
            text += "; " + _against_plain(record, plain)
        lines.append(text + ".")
    if lines:
        lines.append("\n" + ONE_SEED)
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


def _cka_trend(units: list[dict]) -> str:
    """Whether CKA falls block by block with depth in every fine-tune, each step judged by
    `TIE_RULE` on CKA written as points (0-100), so a step counts from 0.01."""
    directions = {r["backbone_lr"]: trend(step_signs([[100 * v] for v in r["cka_target"]]))
                  for r in units}
    if all(d == "down" for d in directions.values()):
        return ("- In this run CKA falls with depth in every fine-tune (steps under 0.01 count as "
                "level): the deeper the layer, the more fine-tuning rewrote it.")
    if all(d == "level" for d in directions.values()):
        return ("- In this run CKA stays level from block to block (no step reaches 0.01): "
                "fine-tuning changed every block about as much, or as little.")
    odd = and_list([f"lr {lr:g}" for lr, d in directions.items() if d != "down"])
    return (f"- In this run CKA does not fall steadily with depth in the fine-tune at {odd}, "
            "unlike the usual pattern (steps under 0.01 count as level): look at the table for "
            "where the change concentrated.")


def _probe_sentence(base: dict, probe_labels: int) -> str:
    """The probes on the last block, pretrained against untrained and raw pixels, by `TIE_RULE`."""
    pre, unt, pixels = base["pretrained_probe"][-1], base["untrained_probe"][-1], base["pixels_probe"]
    words = {1: "ahead of", 0: "level with", -1: "behind"}
    against_untrained = words[difference([pre], [unt]).sign]
    against_pixels = words[difference([pre], [pixels]).sign]
    return (f"- With {labels_text(probe_labels)} labels per class, a probe on the pretrained "
            f"network's last block scores **{pre:.1f}%**, on an untrained network's **{unt:.1f}%**, "
            f"on the raw pixels **{pixels:.1f}%**: the pretrained features are {against_untrained} "
            f"the untrained ones and {against_pixels} the raw pixels.")


def diagnostics_reading(records: dict[str, dict], config: DiagnosticsConfig) -> str:
    """Sentences quoting this run: where CKA fell most, whether it falls with depth, and what
    the probes show, verdicts by `TIE_RULE` on one model each (one seed)."""
    lines = []
    units = finetune_units(records)
    for r in units:
        cka, layers = r["cka_target"], r["layers"][1:]
        lo = min(range(len(cka)), key=cka.__getitem__)
        hi = max(range(len(cka)), key=cka.__getitem__)
        lines.append(f"- Pretrained layers at lr **{r['backbone_lr']:g}** (target test accuracy "
                     f"{r['target_accuracy']:.1f}%): CKA stayed highest at {layers[hi]} "
                     f"(**{cka[hi]:.4f}**) and fell most at {layers[lo]} (**{cka[lo]:.4f}**); "
                     f"its weights moved {100 * r['relative_change'][hi]:.1f}% and "
                     f"{100 * r['relative_change'][lo]:.1f}% of their size.")
    if units:
        lines.append(_cka_trend(units))
    base = records.get(BASELINE)
    if base is not None:
        lines.append(_probe_sentence(base, config.probe_labels_per_class))
    if lines:
        lines.append("\nEach model here is one run, so these verdicts rest on one seed and the "
                     "rule's 1-point floor.")
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
    for area, task in zip(st.columns(2), ("source", "target")):
        show_chart(forgetting_figure(records, task), f"{key}_{task}", runs=records,
                   name=f"forgetting-{task}-task", area=area)


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
    table = forgetting_table(records, config)  # every number rounded to 0.1
    show_table(table, "forgetting", formats=dict.fromkeys(table.columns, ".1f"),
               compact=Compact("{Arm}: {Setting}"))
    st.markdown(forgetting_reading(records))
    st.caption(TIE_RULE)
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
    show_chart(probe_figure(records), "probes", name="linear-probe-on-each-layer")
    st.subheader("Similarity before against after fine-tuning")
    show_chart(cka_figure(records), "cka", name="cka-before-against-after-fine-tuning")
    table = change_table(records)
    if not table.empty:
        show_table(table, "changes", compact=Compact("{block}"), formats={  # CKA to 0.0001
            c: ".4f" if c.startswith("CKA") else ".1f" for c in table.columns})
    st.markdown(diagnostics_reading(records, config))
    st.caption(TIE_RULE)
    return records
