"""Panels of the forgetting lesson: figures, tables and readings of stored results.

The forgetting experiment (`engine.experiments.forgetting`) stores one record per arm with both tasks'
accuracy after every epoch; the diagnostics (`engine.experiments.diagnostics`) store per-layer probe
accuracies and CKA. These helpers turn those records into plotly figures, tables and sentences
that quote the run's own numbers. Nothing here trains.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from engine.experiments.diagnostics import BASELINE, DiagnosticsConfig
from engine.experiments.forgetting import ARM_LABELS, ForgettingConfig

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
    fig.update_yaxes(title="probe test accuracy (%)")
    fig.update_xaxes(title="layer whose output the probe reads")
    fig.update_layout(height=420, margin={"l": 60, "r": 20, "t": 20, "b": 60},
                      legend_title_text="features from", hovermode="x unified")
    return fig


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
    fig.update_yaxes(title="linear CKA, before vs after")
    fig.update_xaxes(title="block")
    fig.update_layout(height=420, margin={"l": 60, "r": 20, "t": 20, "b": 60},
                      legend_title_text="fine-tune, images compared", hovermode="x unified")
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
        lines.append(f"- With {config.probe_labels_per_class or 'all'} labels per class, a probe "
                     f"on the pretrained network's last block scores **{pre[-1]:.1f}%**, on an "
                     f"untrained network's **{unt[-1]:.1f}%**, on the raw pixels "
                     f"**{base['pixels_probe']:.1f}%**.")
    return "\n".join(lines)
