"""Panels of the "When transfer hurts" lesson: negative transfer and domain shift.

Both are plain sweeps over derived datasets (`engine.core.shifts`), grouped into one background job
each (`engine.infra.jobs.SweepGroup`):

- negative transfer: the small CNN pretrained on a mismatched source (MNIST with its pixels
  scrambled, or with random labels) fine-tuned and probed on the UCI digits, against training
  from scratch and fine-tuning from plain MNIST, at several label counts;
- domain shift: one sweep (scratch, probe, fine-tune) per severity of a transform of the
  target, read as the head-start of probe and fine-tune over scratch against severity.

Helpers here build the specs, read their runs from the store and build the figures; the page
draws them. Nothing here trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core.datasets import load_dataset, split_target
from engine.infra.jobs import SweepGroup
from engine.experiments.stats import summarize
from ui.figures import COLORS
from engine.core.pretrain import PretrainConfig, load_cached
from engine.core.shifts import SHIFTS, shifted_name
from engine.core.store import ResultStore
from engine.experiments.sweep import SweepSpec, plan_runs, stored_records

SOURCE, TARGET = "mnist5k", "uci_digits"
MISMATCHED = {"permuted": "MNIST with scrambled pixels", "randlabels": "MNIST with random labels"}
GAP = "Mismatched fine-tune minus scratch (points)"  # a column of `negative_table`


@dataclass(frozen=True)
class Curve:
    label: str  # the legend entry
    source: str  # the spec's source
    strategy: str  # the strategy whose runs draw it


def negative_curves(shift: str) -> tuple[Curve, ...]:
    bad = shifted_name(SOURCE, shift)
    return (Curve("From scratch", SOURCE, "scratch"),
            Curve("Fine-tune from MNIST (matched source)", SOURCE, "finetune"),
            Curve(f"Fine-tune from {MISMATCHED[shift]}", bad, "finetune"),
            Curve(f"Probe on {MISMATCHED[shift]}", bad, "probe"))


def negative_group(shift: str, labels: tuple[int, ...], seeds: int) -> SweepGroup:
    """Scratch and fine-tuning from MNIST (the runs the curves lesson shares), then probe and
    fine-tuning from the mismatched source."""
    common = dict(target=TARGET, labels_per_class=labels, seeds=seeds)
    return SweepGroup((SweepSpec(source=SOURCE, strategies=("scratch", "finetune"), **common),
                       SweepSpec(source=shifted_name(SOURCE, shift), strategies=("probe", "finetune"),
                                 **common)))


def group_records(group: SweepGroup, curves: tuple[Curve, ...]) -> pd.DataFrame:
    """Every stored run of the group, with `strategy` replaced by its curve's label."""
    store, frames = ResultStore(), []
    for spec in group.specs:
        records = stored_records(spec, store)
        for curve in curves:
            if curve.source == spec.source and curve.strategy in spec.strategies:
                part = records[records["strategy"] == curve.strategy].copy()
                part["strategy"] = curve.label
                frames.append(part)
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def source_accuracy(source: str):
    """The cached pretraining's accuracy on its held-out source images, or None."""
    result = load_cached(PretrainConfig(source=source))
    return None if result is None else result.source_accuracy


def negative_table(records: pd.DataFrame, curves: tuple[Curve, ...]) -> pd.DataFrame:
    """Mean accuracy of each curve per label count, and the mismatched fine-tune's gap to scratch."""
    summary = summarize(records)
    wide = summary.pivot(index="labels_per_class", columns="strategy", values="mean")
    wide = wide[[c.label for c in curves if c.label in wide.columns]]
    scratch, bad = curves[0].label, curves[2].label
    if scratch in wide and bad in wide:
        wide[GAP] = wide[bad] - wide[scratch]
    return wide.round(1)


# ---- domain shift ---------------------------------------------------------------------------

SHIFT_SLIDERS = {  # kind -> (step, default highest severity) of the page's slider
    "rotate": (5.0, 90.0), "invert": (0.05, 1.0), "noise": (0.05, 0.6), "blur": (0.25, 3.0),
}


def shift_levels(kind: str, highest: float, steps: int) -> tuple[float, ...]:
    """0 and `steps` evenly spaced severities up to `highest` (rounded to 3 decimals)."""
    return tuple(sorted({round(highest * i / steps, 3) for i in range(steps + 1)}))


def shift_group(kind: str, levels: tuple[float, ...], labels: tuple[int, ...], seeds: int) -> SweepGroup:
    """One sweep (scratch, probe, fine-tune) per severity; severity 0 is the plain target."""
    return SweepGroup(tuple(SweepSpec(target=shifted_name(TARGET, kind, s), labels_per_class=labels,
                                      seeds=seeds) for s in levels))


def head_starts(group: SweepGroup, levels: tuple[float, ...]) -> pd.DataFrame:
    """Per severity, label count and transfer strategy: the mean and spread over seeds of
    (strategy accuracy - scratch accuracy), paired by seed (same labelled examples)."""
    store, rows = ResultStore(), []
    for level, spec in zip(levels, group.specs):
        records = stored_records(spec, store)
        if records.empty:
            continue
        table = records.pivot_table(index=["labels_per_class", "seed"], columns="strategy",
                                    values="test_accuracy")
        for strategy in ("probe", "finetune"):
            if strategy not in table or "scratch" not in table:
                continue
            gap = (table[strategy] - table["scratch"]).dropna()
            for k, part in gap.groupby(level="labels_per_class"):
                rows.append({"severity": level, "strategy": strategy, "labels_per_class": int(k),
                             "head_start": float(part.mean()),
                             "std": float(part.std()) if len(part) > 1 else 0.0,
                             "seeds": int(len(part)),
                             "scratch": float(table["scratch"].loc[k].mean()),
                             "accuracy": float(table[strategy].loc[k].mean())})
    return pd.DataFrame(rows, columns=["severity", "strategy", "labels_per_class", "head_start",
                                       "std", "seeds", "scratch", "accuracy"])


def head_start_figure(frame: pd.DataFrame, kind: str) -> go.Figure:
    """Head-start over scratch (points) against severity: a line per strategy and label count."""
    fig = go.Figure()
    names = {"probe": "Linear probe", "finetune": "Fine-tune"}
    dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
    counts = sorted(frame["labels_per_class"].unique())
    for strategy in ("probe", "finetune"):
        for i, k in enumerate(counts):
            part = frame[(frame["strategy"] == strategy) & (frame["labels_per_class"] == k)]
            if part.empty:
                continue
            part = part.sort_values("severity")
            label = f"{names[strategy]}, {k} label{'s' if k != 1 else ''}/class"
            fig.add_trace(go.Scatter(
                x=part["severity"].tolist(), y=part["head_start"].tolist(), mode="lines+markers",
                name=label, line={"color": COLORS[strategy], "dash": dashes[i % len(dashes)], "width": 3},
                error_y={"type": "data", "array": part["std"].tolist(), "visible": True, "thickness": 1},
                customdata=part[["accuracy", "scratch", "seeds"]].values.tolist(),
                hovertemplate=(f"<b>{label}</b><br>severity %{{x}}<br>head-start %{{y:+.1f}} points"
                               "<br>accuracy %{customdata[0]:.1f}% vs scratch %{customdata[1]:.1f}%"
                               "<br>seeds %{customdata[2]}<extra></extra>")))
    fig.add_hline(y=0, line_color="#444", line_dash="dot",
                  annotation_text="no head-start (scratch)", annotation_position="bottom right")
    unit = SHIFTS[kind].unit
    fig.update_xaxes(title=f"severity of {SHIFTS[kind].title.lower()}" + (f" ({unit})" if unit else ""),
                     tickvals=sorted(float(v) for v in frame["severity"].unique()))
    fig.update_yaxes(title="accuracy minus scratch (points)")
    fig.update_layout(height=440, margin={"l": 60, "r": 20, "t": 20, "b": 60},
                      legend_title_text="strategy, labelled set", hovermode="closest")
    return fig


@st.cache_data(max_entries=64, show_spinner=False)
def preview_strip(kind: str, level: float, count: int = 6) -> np.ndarray:
    """The first test image of each of the first `count` classes of the target at one severity,
    side by side as one grey image (28 x 28 * count, uint8)."""
    data = load_dataset(shifted_name(TARGET, kind, level))
    test = split_target(data.y).test_idx
    y = data.y.numpy()[test]
    picks = [test[np.flatnonzero(y == c)[0]] for c in range(min(count, data.n_classes))]
    images = data.x[picks].mean(1).numpy()  # (count, H, W) in [0, 1]
    return (np.concatenate(list(images), axis=1) * 255).round().astype(np.uint8)


def total_runs(group: SweepGroup) -> int:
    return sum(len(plan_runs(spec)) for spec in group.specs)


def stored_runs(group: SweepGroup) -> int:
    return group.units(str(ResultStore().path))[0]


def negative_verdict(table: pd.DataFrame, bad: str) -> str:
    """What this run shows: at how many label counts the mismatched fine-tune fell below scratch."""
    gaps = table[GAP].dropna()
    below = gaps[gaps < 0]
    if not len(below):
        return (f"In this run, fine-tuning from {bad} did not fall below training from scratch at "
                "any label count: the harm is not visible at these settings. More seeds shrink "
                "the noise, and the other mismatched source may show it more clearly.")
    worst = below.idxmin()
    return (f"In this run, fine-tuning from {bad} finished **below training from scratch at "
            f"{len(below)} of {len(gaps)} label counts**, by as much as {-below.min():.1f} points "
            f"(at {worst} label{'s' if worst != 1 else ''} per class): negative transfer.")


def shift_reading(frame: pd.DataFrame, kind: str) -> str:
    """The head-start of each strategy at the smallest label count, from the first to the last
    severity, in words that follow the run's own numbers."""
    k = int(frame["labels_per_class"].min())
    info = SHIFTS[kind]
    fmt = lambda v: info.format_severity(v) + info.unit  # noqa: E731
    lines = []
    for strategy, name in (("probe", "The linear probe's"), ("finetune", "Fine-tuning's")):
        part = frame[(frame["strategy"] == strategy) & (frame["labels_per_class"] == k)]
        part = part.sort_values("severity")
        if len(part) < 2:
            continue
        first, last = part.iloc[0], part.iloc[-1]
        change = last.head_start - first.head_start
        verb = "shrank" if change < 0 else "grew"
        lines.append(f"- {name} head-start at {k} label{'s' if k != 1 else ''} per class "
                     f"{verb} from **{first.head_start:+.1f}** points at severity "
                     f"{fmt(first.severity)} to **{last.head_start:+.1f}** at {fmt(last.severity)} "
                     f"({last.accuracy:.1f}% against scratch's {last.scratch:.1f}%).")
        steps = part["head_start"].diff().dropna()
        if ((steps > 0).any() and (steps < 0).any()):
            lines.append(f"- {name} head-start does not move in one direction across the "
                         "severities; compare the size of each step with the error bars before "
                         "reading much into it (more seeds make them smaller).")
    return "\n".join(lines)


WHY_NEGATIVE = {
    "permuted": (
        "The scrambled task is perfectly learnable: the permutation throws no information away, "
        "and the accuracy above shows the network learned it. But it learned it *for scrambled "
        "images*. After scrambling, pixels next to each other come from unrelated places of the "
        "digit, so there are no strokes, edges or loops for the 3×3 filters to find; what the "
        "network learned instead is which scattered positions tend to be lit together. On real "
        "digits, where the ink forms connected strokes, those features respond to the wrong "
        "things. A **probe** can only reweight them, so it lags far behind. **Fine-tuning** can "
        "change them, but it starts from weights committed to another world, and it trains the "
        "pretrained layers at a tenth of the head's learning rate (the usual recipe, meant to "
        "protect good features) for a limited number of steps: it does not get far enough from a "
        "bad start. A random start commits to nothing."),
    "randlabels": (
        "With shuffled labels there is nothing to learn that carries over to new images, so the "
        "held-out accuracy above sits near chance. The weights still moved: every step pushed "
        "them to fit arbitrary image-label pairs. The result is not a neutral starting point but "
        "one shaped by noise, and its features separate digits badly, which is why the **probe** "
        "on them is so weak. **Fine-tuning** trains the pretrained layers at a tenth of the "
        "head's learning rate for a limited number of steps, so it cannot travel far from where "
        "the noise left the weights. A fresh random initialisation is a better start than that."),
}

WHY_SHIFT = (
    "Pretrained features are detectors tuned to what the source looked like: upright, clean, "
    "light strokes on a dark background. A **linear probe** can only reweight those frozen "
    "features, so when a transform stops them from separating the classes, its head-start goes, "
    "and it can fall below scratch. **Fine-tuning** can adapt the features to the new look, so it "
    "tends to keep more of its lead, though it too starts from detectors built for the source. "
    "Scratch never saw the source: it suffers only from what the transform does to the task "
    "itself (heavy noise makes digits harder for everyone), which is why the plot subtracts it at "
    "every severity.")

WHY_KIND = {
    "rotate": "Rotation turns every stroke, and first-layer filters respond to particular stroke "
              "orientations: by 90° a 1 looks like a dash. Near 180° some digits (0, 1, 8) look "
              "much as before and 6 and 9 trade places, so part of the lead can come back.",
    "invert": "Inversion turns the dark background into a bright field with dark strokes, which "
              "MNIST never showed the network. At a share below 100% the target mixes both looks, "
              "so each class has two appearances to learn from the same few labels.",
    "noise": "Noise puts bright speckles everywhere, and edge detectors fire on them as well as on "
             "the strokes. At high severity the digits are hard for every method, scratch "
             "included.",
    "blur": "Blur keeps each digit's overall shape and removes fine detail. Features tuned to "
            "strokes still respond to coarse ones, and blur also makes the task harder for a "
            "network learning from a handful of examples, so here the head-start need not shrink "
            "at all: the plot shows which way it went in this run.",
}
