"""The "When transfer hurts" lesson's forms, charts and readings.

The settings of its two sections and the sweep groups they run are `ui.sections.hurts`:
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
from engine.core.store import ResultStore
from engine.experiments.stats import summarize
from engine.experiments.sweep import MAX_SEEDS, stored_records
from ui.curve_sets import Curve, curve_records, present_labels, stored_runs, total_runs
from ui.curves import curve_figure, plural
from ui.figures import COLORS
from ui.section_run import missing_note
from ui.sections.hurts import (LABELS, MISMATCHED, SHIFT_SEEDS, SHIFT_SLIDERS, SHIFT_STEPS, SOURCE,
                               TARGET, NegativeSettings, ShiftSettings)
# the browser tests build the domain-shift groups from here
from ui.sections.hurts import shift_group, shift_levels  # noqa: F401

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
    records = curve_records(settings.experiment().specs, curves) if records is None else records
    if not records.empty:
        st.plotly_chart(curve_figure(records, present_labels(records, curves)), key=key)


def negative_results(settings: NegativeSettings, notes) -> None:
    """The curves, the table of gaps to scratch and the readings; an invitation to press Run
    when nothing is stored."""
    specs, curves = settings.experiment().specs, settings.curves()
    records, total = curve_records(specs, curves), total_runs(specs)
    if records.empty:
        st.info(f"None of the {plural(total, 'run')} of these settings is stored yet. Press Run: "
                "the first run pretrains the small CNN on the mismatched source once (about 10 s "
                "on two idle CPU cores).", icon=":material/info:")
        return
    missing_note(len(records), total, notes)
    st.caption("Lines: mean test accuracy on the UCI digits over seeds; bands: ±1 standard "
               "deviation; log x axis.")
    negative_chart(settings, "negative", records)
    table = negative_table(records, curves)
    st.dataframe(table.rename_axis("labels per class"))
    bad = MISMATCHED[settings.shift]
    if GAP in table:
        st.markdown(negative_verdict(table, bad))
    accuracy = source_accuracy(shifted_name(SOURCE, settings.shift))
    if accuracy is not None:
        st.markdown(f"Pretraining on {bad} reached **{accuracy:.1f}%** on held-out images of its "
                    "own task (chance is 10%).")
    st.subheader("Why it hurts")
    st.markdown(WHY_NEGATIVE[settings.shift])
    st.markdown("Pretraining is a bet that the source and the target share structure. When they "
                "do not, the transferred weights are a handicap, and only a **from-scratch "
                "baseline** shows it: run one before trusting a transfer.")


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
    st.plotly_chart(head_start_figure(head_starts(settings), settings.kind), key="shift_live")


def shift_results(settings: ShiftSettings, notes) -> None:
    """The head-start chart and its readings; an invitation to press Run when no severity has
    its runs stored."""
    frame, specs = head_starts(settings), settings.experiment().specs
    if frame.empty:
        runs = plural(total_runs(specs), "run")
        st.info(f"No severity of these settings has its runs stored yet ({runs} in all). Press Run.",
                icon=":material/info:")
        return
    missing_note(stored_runs(specs), total_runs(specs), notes)
    st.plotly_chart(head_start_figure(frame, settings.kind), key="shift")
    st.caption("Each point: mean over seeds of (strategy accuracy − scratch accuracy) on the same "
               "labelled examples; error bars: ±1 standard deviation of that difference.")
    st.markdown(shift_reading(frame, settings.kind))
    st.subheader("Reading the plot")
    st.markdown(WHY_SHIFT)
    st.markdown(WHY_KIND[settings.kind])


def head_starts(settings: ShiftSettings) -> pd.DataFrame:
    """Per severity, label count and transfer strategy: the mean and spread over seeds of
    (strategy accuracy - scratch accuracy), paired by seed (same labelled examples)."""
    store, rows = ResultStore(), []
    for level, spec in zip(settings.levels(), settings.experiment().specs):
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
