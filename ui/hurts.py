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
from engine.experiments.stats import TIE_RULE, Difference, difference, seeds_text, summarize
from engine.experiments.verdicts import and_list, sizes_text, step_signs, trend
from engine.experiments.sweep import MAX_SEEDS, stored_records
from ui.curve_sets import Curve, curve_records, present_labels, stored_runs, total_runs
from ui.curves import chart_caption, curve_figure, plural
from ui.exports import show_chart
from ui.figures import DASHES, chart_layout, error_bars, strategy_color
from ui.section_run import missing_note
from ui.sections.hurts import (LABELS, MISMATCHED, SHIFT_SEEDS, SHIFT_SLIDERS, SHIFT_STEPS, SOURCE,
                               TARGET, NegativeSettings, ShiftSettings)
from ui.tables import Compact, show_table
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
        show_chart(curve_figure(records, present_labels(records, curves),
                                strategy_of={c.label: c.strategy for c in curves}), key,
                   runs=records, name=f"negative-transfer-{settings.shift}-source")


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
    st.caption(chart_caption(int(records["seed"].nunique()), "test accuracy on the UCI digits"))
    negative_chart(settings, "negative", records)
    table = negative_table(records, curves)
    show_table(table.rename_axis("Labels per class"), "negative", compact=Compact(
        "Labels per class: {Labels per class}"), formats=dict.fromkeys(table.columns, ".1f"))
    bad = MISMATCHED[settings.shift]
    verdict = negative_verdict(records, curves, bad)
    if verdict:
        st.markdown(verdict)
        st.caption(TIE_RULE)
    accuracy = source_accuracy(shifted_name(SOURCE, settings.shift))
    if accuracy is not None:
        st.markdown(f"Pretraining on {bad} reached **{accuracy:.1f}%** on held-out images of its "
                    "own task (chance is 10%).")
    st.subheader("Why it can hurt")
    fine_gaps = gaps_to_scratch(records, curves[2].label, curves[0].label)
    st.markdown(why_negative(settings.shift, fine_gaps))
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
    missing_note(stored_runs(specs), total_runs(specs), notes)
    show_chart(head_start_figure(frame, settings.kind), "shift", runs=frame,
               name=f"head-start-under-{settings.kind}-shift")
    st.caption(head_start_caption(int(frame["seeds"].max())))
    st.markdown(shift_reading(frame, settings.kind))
    st.caption(TIE_RULE)
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


HEAD_START_COLUMNS = ["severity", "strategy", "labels_per_class", "head_start", "std", "seeds",
                      "scratch", "accuracy", "values", "runs", "scratch_runs"]


def head_starts(settings: ShiftSettings) -> pd.DataFrame:
    """Per severity, label count and transfer strategy: the mean and spread over seeds of
    (strategy accuracy - scratch accuracy), paired by seed (same labelled examples); `values`
    holds those differences per seed, `runs` and `scratch_runs` the accuracies behind them."""
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
                             "accuracy": float(table[strategy].loc[k].mean()),
                             "values": tuple(part.tolist()),
                             "runs": tuple(table[strategy].loc[k].dropna().tolist()),
                             "scratch_runs": tuple(table["scratch"].loc[k].dropna().tolist())})
    return pd.DataFrame(rows, columns=HEAD_START_COLUMNS)


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
    fig.add_hline(y=0, line_color="#444", line_dash="dot",
                  annotation_text="no head-start (scratch)", annotation_position="bottom right")
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


def gaps_to_scratch(records: pd.DataFrame, label: str, scratch: str) -> dict[int, Difference]:
    """Per labelled-set size: curve `label`'s runs against scratch's, by `TIE_RULE`."""
    gaps = {}
    for k, at in records.groupby("labels_per_class"):
        runs = at[at["strategy"] == label]["test_accuracy"].tolist()
        base = at[at["strategy"] == scratch]["test_accuracy"].tolist()
        if runs and base:
            gaps[int(k)] = difference(runs, base)
    return gaps


def _split(gaps: dict[int, Difference]) -> dict[int, list[int]]:
    """The sizes where the curve is below (-1), level with (0) and above (+1) scratch."""
    return {sign: [k for k, d in sorted(gaps.items()) if d.sign == sign] for sign in (-1, 0, 1)}


def side_sentence(name: str, gaps: dict[int, Difference]) -> str:
    """Where one curve finished against scratch, size by size, e.g. "fine-tuning from X finished
    **below training from scratch at 2 of 3 label counts** (1 and 5 labels per class; by up to
    9.1 points) and level with it at 20 labels per class (mean of 2 seeds)."."""
    split, parts = _split(gaps), []
    for sign, where in ((-1, "below"), (0, "level with"), (1, "above")):
        sizes = split[sign]
        if not sizes:
            continue
        most = max(abs(gaps[k].gap) for k in sizes)
        if sign == -1:
            parts.append(f"**below training from scratch at {len(sizes)} of {len(gaps)} label "
                         f"counts** ({sizes_text(sizes)}; by up to {most:.1f} points)")
            continue
        whom = "training from scratch" if not parts else "it"
        parts.append(f"{where} {whom} at {sizes_text(sizes)}"
                     + (f" by up to {most:.1f} points" if sign == 1 else ""))
    seeds = min(d.seeds for d in gaps.values())
    return f"{name} finished {and_list(parts)} ({seeds_text(seeds)})."


def negative_verdict(records: pd.DataFrame, curves: tuple[Curve, ...], bad: str) -> str:
    """What this run shows, by `TIE_RULE`: where the mismatched fine-tune and probe finished
    against scratch, and whether that is negative transfer."""
    scratch, fine, probe = curves[0].label, curves[2].label, curves[3].label
    fine_gaps = gaps_to_scratch(records, fine, scratch)
    if not fine_gaps:
        return ""
    lines = [side_sentence(f"In this run, fine-tuning from {bad}", fine_gaps)]
    split = _split(fine_gaps)
    if split[-1]:
        lines.append("That is **negative transfer**: the mismatched start cost accuracy.")
    elif split[1]:
        lines.append("No negative transfer here: despite the mismatch, the pretrained start "
                     "helped at these settings.")
    else:
        lines.append("At these settings the harm does not show: every gap to scratch is a tie. "
                     "More seeds shrink the noise, and the other mismatched source may differ.")
    probe_gaps = gaps_to_scratch(records, probe, scratch)
    if probe_gaps:
        lines.append(side_sentence(f"The probe on {bad}", probe_gaps))
    return " ".join(lines)


def _step_words(signs: tuple[int, ...], levels: list[str]) -> str:
    """How a head-start moved from severity to severity, each step judged by `TIE_RULE`."""
    direction = trend(signs)
    if direction == "level":
        return "No step between neighbouring severities counts: it stayed level step by step."
    if direction == "both":
        moves = [f"{'fell' if s < 0 else 'rose'} from {a} to {b}"
                 for s, a, b in zip(signs, levels, levels[1:]) if s]
        return f"It does not move in one direction: it {and_list(moves)}."
    verb = "fell" if direction == "down" else "rose"
    if all(signs):
        return f"It {verb} at every step."
    return f"Every step that counts is a {'fall' if direction == 'down' else 'rise'}; the others are level."


def _strategy_paragraph(part: pd.DataFrame, name: str, k: int, fmt: Callable[[float], str]) -> str:
    """One strategy's head-start across the severities at one size, read by `TIE_RULE`."""
    first, last = part.iloc[0], part.iloc[-1]
    overall = difference(last["values"], first["values"])
    change = {-1: "it shrank", 0: "a change the rule calls a tie", 1: "it grew"}[overall.sign]
    size = f"{k} label{'s' if k != 1 else ''} per class"
    text = (f"{name} head-start at {size} went from **{first.head_start:+.1f}** points at severity "
            f"{fmt(first.severity)} to **{last.head_start:+.1f}** at {fmt(last.severity)} "
            f"({last.accuracy:.1f}% against scratch's {last.scratch:.1f}%): {change}. ")
    if len(part) > 2:
        signs = step_signs(list(part["values"]))
        text += _step_words(signs, [fmt(v) for v in part["severity"]]) + " "
    end = difference(last["runs"], last["scratch_runs"]).sign
    text += {1: f"At {fmt(last.severity)} it is still above scratch",
             0: f"At {fmt(last.severity)} it is level with scratch: the head-start is gone",
             -1: f"At {fmt(last.severity)} it is **below scratch**: the transferred start now "
                 "costs accuracy"}[end]
    return text + f" ({seeds_text(overall.seeds)})."


def shift_reading(frame: pd.DataFrame, kind: str) -> str:
    """The head-start of each strategy at the smallest label count across the severities, then
    whether fine-tuning kept more of its lead than the probe, all by `TIE_RULE`."""
    k = int(frame["labels_per_class"].min())
    info = SHIFTS[kind]
    fmt = lambda v: info.format_severity(v) + info.unit  # noqa: E731
    paragraphs, lasts = [], {}
    for strategy, name in (("probe", "The linear probe's"), ("finetune", "Fine-tuning's")):
        part = frame[(frame["strategy"] == strategy) & (frame["labels_per_class"] == k)]
        part = part.sort_values("severity")
        if len(part) < 2:
            continue
        paragraphs.append(_strategy_paragraph(part, name, k, fmt))
        lasts[strategy] = part.iloc[-1]
    if len(lasts) == 2 and lasts["probe"].severity == lasts["finetune"].severity:
        paragraphs.append(_lead_comparison(lasts["finetune"], lasts["probe"], fmt))
    return "\n\n".join(paragraphs)


def _lead_comparison(fine: pd.Series, probe: pd.Series, fmt: Callable[[float], str]) -> str:
    """Did fine-tuning keep more of its lead than the probe at the highest severity?"""
    diff = difference(fine["values"], probe["values"])
    at = f"at {fmt(fine.severity)}"
    if diff.sign > 0:
        return (f"As expected, fine-tuning kept more of its lead than the probe {at}, by "
                f"{diff.gap:.1f} points.")
    if diff.sign == 0:
        return (f"Fine-tuning and the probe are level {at} (a {abs(diff.gap):.1f}-point gap): this "
                "run does not show fine-tuning keeping more of its lead, as it usually does.")
    return (f"Unlike the usual expectation, the probe kept more of its lead than fine-tuning {at}, "
            f"by {-diff.gap:.1f} points.")


MECHANISM = {
    "permuted": (
        "The scrambled task is learnable: the permutation throws no information away. But a "
        "network learns it *for scrambled images*. After scrambling, pixels next to each other "
        "come from unrelated places of the digit, so there are no strokes, edges or loops for the "
        "3×3 filters to find; what the network learns instead is which scattered positions tend "
        "to be lit together. On real digits, where the ink forms connected strokes, those features "
        "respond to the wrong things. A **probe** can only reweight them. **Fine-tuning** can "
        "change them, but it trains the pretrained layers at a tenth of the head's learning rate "
        "(the usual recipe, meant to protect good features) for a limited number of steps, so it "
        "may not get far from a start committed to another world."),
    "randlabels": (
        "With shuffled labels nothing about the *labels* carries over to new images, so the "
        "source task's held-out accuracy sits near chance. The network still learns something "
        "about the *images*, though: Maennel et al. (NeurIPS 2020, \"What do neural networks learn "
        "when trained with random labels?\") found that the first layer's weights align with the "
        "principal components of the data, and that this alignment can transfer positively, "
        "speeding up later training on real labels. The harm sits in the later layers, which "
        "specialise in memorising arbitrary image-label pairs. A **probe** reads only the last "
        "block's features, the ones shaped by that memorising. **Fine-tuning** starts from both, "
        "early layers that may help and later ones that may hurt, and trains the pretrained "
        "layers at a tenth of the head's learning rate for a limited number of steps."),
}

OUTCOME = {  # (mismatched source, where fine-tuning from it finished) -> what that says
    ("permuted", "below"): "the start committed to scrambled images cost more than fine-tuning "
                           "could undo",
    ("permuted", "level"): "fine-tuning either undid the scrambled start or it hardly mattered "
                           "at these settings, so the harm does not show",
    ("permuted", "above"): "unlike what this lesson expects, the scrambled start still helped: "
                           "with few labels scratch is a weak baseline, and pretraining on any "
                           "digit images taught the early layers something",
    ("randlabels", "below"): "what the later layers memorised outweighed whatever the early layers "
                             "carry over",
    ("randlabels", "level"): "the help of the early layers and the harm of the later ones cancel, "
                             "or fine-tuning washed both out, at these settings",
    ("randlabels", "above"): "what the early layers carry over outweighed the harm of the later "
                             "ones, as Maennel et al. found can happen",
}


def why_negative(shift: str, fine_gaps: dict[int, Difference]) -> str:
    """The mechanism of the mismatched source, then which way this run went and what that says,
    chosen from where fine-tuning from it finished against scratch (by `TIE_RULE`)."""
    text = MECHANISM[shift]
    if not fine_gaps:
        return text
    split = _split(fine_gaps)
    found = [(where, split[sign]) for sign, where in ((-1, "below"), (0, "level"), (1, "above"))
             if split[sign]]
    if len(found) == 1:
        return text + f" In this run fine-tuning finished {found[0][0]} scratch at every size: " \
            f"{OUTCOME[(shift, found[0][0])]}."
    words = {"below": "below", "level": "level with", "above": "above"}
    clauses = [f"{words[where]} scratch at {sizes_text(sizes)}" for where, sizes in found]
    text += (f" In this run fine-tuning finished {and_list(clauses)}: which way the mismatch "
             "pulls depends on the size of the labelled set")
    return text + (f". Where it is below, {OUTCOME[(shift, 'below')]}." if split[-1] else ".")


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
