"""The "When transfer hurts" lesson's forms, charts and readings.

The settings of its two sections and the sweep groups they run are `engine.experiments.lessons.hurts`:
negative transfer (a source that teaches the wrong things, against training from scratch) and
domain shift (the head-start of probe and fine-tune over scratch against the severity of a
transform of the target). Here the forms that fill them, and what the page draws from the
store: the curves and table of negative transfer, the head-start chart of domain shift, a strip
of the shifted target, and readings that follow the run's own numbers. Nothing here trains.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core.datasets import load_dataset, split_target
from engine.core.pretrain import PretrainConfig, load_cached
from engine.core.shifts import SEVERITY_SHIFTS, SHIFTS, shifted_name
from engine.experiments.readings import hurts as hurts_readings
from engine.experiments.readings.hurts import negative_readings, shift_readings, why_negative
from engine.experiments.stats import summarize
from engine.experiments.sweep import MAX_SEEDS
from engine.experiments.lessons.curve_sets import Curve, present_labels, total_runs
from ui.kit.text import plural
from ui.lessons.curves import chart_caption, curve_figure
from ui.kit.exports import show_chart
from ui.kit.jobs import stored
from ui.kit.figures import DASHES, chart_layout, error_bars, reference_line, strategy_color
from ui.kit.readings import show_readings
from ui.kit.section import Section, missing_note
from engine.experiments.lessons.hurts import (LABELS, MISMATCHED, SHIFT_SEEDS, SHIFT_SLIDERS, SHIFT_STEPS, SOURCE,
                               TARGET, NegativeSettings, ShiftSettings)
from ui.kit.tables import Compact, show_table

GAP = "Mismatched fine-tune minus scratch (points)"  # a column of `negative_table`


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


def negative_form(settings: NegativeSettings) -> Optional[Callable[[], NegativeSettings]]:
    """The negative-transfer form; when Run is pressed, what builds the chosen settings."""
    with st.form("negative_settings"):
        shift = st.radio("Mismatched source", list(MISMATCHED), format_func=MISMATCHED.get,
                         index=list(MISMATCHED).index(settings.shift), horizontal=True,
                         help="Scrambled pixels: every MNIST image's pixels moved by one fixed "
                              "permutation. Random labels: MNIST's labels shuffled among its images.")
        left, right = st.columns(2)
        labels = left.multiselect("Labels per class", LABELS, default=list(settings.labels_per_class),
                                  key="neg_labels")
        seeds = right.number_input("Seeds", 1, MAX_SEEDS, settings.seeds, key="neg_seeds")
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    return (lambda: NegativeSettings(shift, tuple(labels), int(seeds))) if run else None


def negative_chart(settings: NegativeSettings, key: str,
                   records: Optional[pd.DataFrame] = None) -> None:
    """The negative-transfer curves stored so far (read from the store unless given)."""
    curves = settings.curves()
    records = stored(settings) if records is None else records
    if not records.empty:
        show_chart(curve_figure(records, present_labels(records, curves),
                                strategy_of={c.label: c.strategy for c in curves}), key,
                   runs=records, name=f"negative-transfer-{settings.shift}-source")


def negative_results(settings: NegativeSettings, notes) -> None:
    """The curves, the table of gaps to scratch and the readings; an invitation to press Run
    when nothing is stored."""
    specs, curves = settings.experiment().specs, settings.curves()
    records, total = stored(settings), total_runs(specs)
    if records.empty:
        st.info(f"None of the {plural(total, 'run')} of these settings is stored yet. Press Run: "
                "the first run pretrains the small CNN on the mismatched source once (the job's "
                "bar follows its steps), then trains the runs.", icon=":material/info:")
        return
    missing_note(len(records), total, notes)
    st.caption(chart_caption(int(records["seed"].nunique()), "test accuracy on the UCI digits"))
    negative_chart(settings, "negative", records)
    table = negative_table(records, curves)
    show_table(table.rename_axis("Labels per class"), "negative", compact=Compact(
        "Labels per class: {Labels per class}"), formats=dict.fromkeys(table.columns, ".1f"))
    bad = MISMATCHED[settings.shift]
    scratch, fine, probe = curves[0].label, curves[2].label, curves[3].label
    show_readings(negative_readings(records, scratch, fine, probe, bad), settings, "negative")
    accuracy = source_accuracy(shifted_name(SOURCE, settings.shift))
    if accuracy is not None:
        st.markdown(f"Pretraining on {bad} reached **{accuracy:.1f}%** on held-out images of its "
                    "own task (chance is 10%).")
    st.subheader("Why it can hurt")
    st.markdown(why_negative(records, settings.shift, scratch, fine).text)
    st.markdown("Pretraining is a bet that the source and the target share structure. When they "
                "do not, the transferred weights can be a handicap, and only a **from-scratch "
                "baseline** shows whether they were: run one before trusting a transfer.")


# ---- domain shift ---------------------------------------------------------------------------

def shift_form(settings: ShiftSettings) -> Optional[Callable[[], ShiftSettings]]:
    """The transform picker (it redraws the form) and the domain-shift form; when Run is
    pressed, what builds the chosen settings."""
    kind = st.selectbox("Transform", SEVERITY_SHIFTS, index=SEVERITY_SHIFTS.index(settings.kind),
                        format_func=lambda k: SHIFTS[k].title, key="shift_kind",
                        help="Changing it redraws the form below; nothing trains until you press Run.")
    step, default_high = SHIFT_SLIDERS[kind]
    unit = f" ({SHIFTS[kind].unit})" if SHIFTS[kind].unit else ""
    with st.form("shift_settings"):
        highest = st.slider(f"Highest severity{unit}", step, SHIFTS[kind].max_severity,
                            float(settings.highest if kind == settings.kind else default_high), step,
                            help="The severities run evenly from 0 (the plain target) to this.")
        steps = st.slider("Severity levels above 0", *SHIFT_STEPS, settings.steps)
        left, right = st.columns(2)
        labels = left.multiselect("Labels per class", LABELS, default=list(settings.labels_per_class),
                                  key="shift_labels")
        seeds = right.number_input("Seeds", 1, SHIFT_SEEDS, settings.seeds, key="shift_seeds")
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    return (lambda: ShiftSettings(kind, float(highest), int(steps), tuple(labels), int(seeds))
            ) if run else None


def shift_preview(settings: ShiftSettings) -> None:
    """One test image per class of the target at each severity of these settings."""
    info = SHIFTS[settings.kind]
    st.caption(f"The target at each severity of these settings ({info.title.lower()}), one test "
               "image per class:")
    levels = settings.levels()
    for column, level in zip(st.columns(len(levels)), levels):
        column.image(preview_strip(settings.kind, level),
                     caption=f"severity {info.format_severity(level)}", width="stretch")


def live_head_starts(settings: ShiftSettings) -> None:
    """The head-start chart of what is stored so far (the live panel redraws it)."""
    show_chart(head_start_figure(head_starts(settings), settings.kind), "shift_live")


def shift_results(settings: ShiftSettings, notes) -> None:
    """The head-start chart and its readings; an invitation to press Run when no severity has
    its runs stored."""
    frame, specs = head_starts(settings), settings.experiment().specs
    if frame.empty:
        runs = plural(total_runs(specs), "run")
        st.info(f"No severity of these settings has its runs stored yet ({runs} in all). Press Run.",
                icon=":material/info:")
        return
    missing_note(len(shift_records(settings)), total_runs(specs), notes)
    show_chart(head_start_figure(frame, settings.kind), "shift", runs=frame,
               name=f"head-start-under-{settings.kind}-shift")
    st.caption(head_start_caption(int(frame["seeds"].max())))
    show_readings(shift_readings(shift_records(settings), settings.kind), settings, "shift")
    st.subheader("Reading the plot")
    st.markdown(WHY_SHIFT)
    st.markdown(WHY_KIND[settings.kind])


def head_start_caption(seeds: int) -> str:
    """What a point (and its error bar) of the head-start chart is, for `seeds` seeds."""
    if seeds > 1:
        return ("Each point: mean over seeds of (strategy accuracy − scratch accuracy) on the "
                "same labelled examples; error bars: ±1 standard deviation of that difference.")
    return ("Each point: strategy accuracy − scratch accuracy on the same labelled examples, one "
            "seed, so there is no spread to show (run more seeds for error bars).")


def shift_records(settings: ShiftSettings) -> pd.DataFrame:
    """Every stored run of the domain-shift sweeps, with the severity each ran at."""
    return stored(settings)


def head_starts(settings: ShiftSettings) -> pd.DataFrame:
    """Per severity, label count and transfer strategy: the mean and spread over seeds of
    (strategy accuracy - scratch accuracy), seed by seed (`engine...readings.hurts.head_starts`)."""
    return hurts_readings.head_starts(shift_records(settings))


def head_start_figure(frame: pd.DataFrame, kind: str) -> go.Figure:
    """Head-start over scratch (points) against severity: a line per strategy and label count."""
    fig = go.Figure()
    names = {"probe": "Linear probe", "finetune": "Fine-tune"}
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
                name=label, line={"color": strategy_color(strategy), "dash": DASHES[i % len(DASHES)],
                                  "width": 3},
                error_y=error_bars(part["std"], part["seeds"]),
                customdata=part[["accuracy", "scratch", "seeds"]].values.tolist(),
                hovertemplate=(f"<b>{label}</b><br>severity %{{x}}<br>head-start %{{y:+.1f}} points"
                               "<br>accuracy %{customdata[0]:.1f}% vs scratch %{customdata[1]:.1f}%"
                               "<br>seeds %{customdata[2]}<extra></extra>")))
    reference_line(fig, 0, "no head start (= from scratch)")
    unit = SHIFTS[kind].unit
    fig.update_xaxes(title=f"severity of {SHIFTS[kind].title.lower()}" + (f" ({unit})" if unit else ""),
                     tickvals=sorted(float(v) for v in frame["severity"].unique()))
    fig.update_yaxes(title="accuracy minus scratch (points)")
    fig.update_layout(hovermode="closest")
    return chart_layout(fig, 480, "strategy, labelled set")


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


NEGATIVE = Section("when_transfer_hurts", "negative", NegativeSettings, negative_form,
                   live=lambda s: negative_chart(s, "negative_live"), results=negative_results)
SHIFT = Section("when_transfer_hurts", "shift", ShiftSettings, shift_form, live=live_head_starts,
                results=shift_results, before=shift_preview)
SECTIONS = (NEGATIVE, SHIFT)
