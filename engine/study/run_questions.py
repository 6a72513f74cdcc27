"""Quiz questions drawn from the learner's own runs: records in, `Question`s out.

After a sweep, the result records say which strategy won at each labelled-set size and by how
much. `run_questions(records)` turns them into multiple-choice questions whose answers are
computed from those records (means over seeds, via `engine.experiments.stats.summarize`), never written by
hand: "In your runs at 2 labels per class, which strategy had the highest mean test accuracy?"
Every explanation quotes the measured means. Wrong numeric options are other gaps measured in
the same runs where there are enough, else the right gap shifted by a few points; they are
shown as choices, never as results.

Not here: where the records come from (the result store) or drawing the quiz (the quiz page).
"""

from __future__ import annotations

import pandas as pd

from engine.core.datasets import labels_per_class_text
from engine.experiments.stats import point_label, strategy_label, summarize
from engine.study.content import Question

TOPIC = "Your runs"
TIE = 0.05  # points: closer means are a tie, and make no winner question
MIN_GAP_BETWEEN_OPTIONS = 1.0  # points between any two numeric options


def _size(k: int, all_labels: bool) -> str:
    return labels_per_class_text(point_label(int(k), bool(all_labels)))


def _means_text(at: pd.DataFrame) -> str:
    rows = at.sort_values("mean", ascending=False)
    seeds = int(rows["seeds"].min())
    listed = ", ".join(f"{strategy_label(s)} {m:.1f}%"
                       for s, m in zip(rows["strategy"], rows["mean"]))
    return f"{listed} (mean of {seeds} seed{'s' if seeds != 1 else ''})"


def _points(value: float) -> str:
    return f"{value:.1f} points"


def _numeric_options(correct: float, pool: list[float]) -> tuple[str, ...]:
    """The right gap and three wrong ones, at least MIN_GAP_BETWEEN_OPTIONS apart, ascending."""
    chosen = [round(correct, 1)]
    for value in sorted({round(v, 1) for v in pool}, key=lambda v: abs(v - correct)):
        if len(chosen) == 4:
            break
        if value >= 0 and all(abs(value - c) >= MIN_GAP_BETWEEN_OPTIONS for c in chosen):
            chosen.append(value)
    step = 5.0
    while len(chosen) < 4:
        for value in (correct + step, correct - step):
            value = round(value, 1)
            if len(chosen) < 4 and value >= 0 and all(abs(value - c) >= MIN_GAP_BETWEEN_OPTIONS
                                                      for c in chosen):
                chosen.append(value)
        step += 5.0
    return tuple(_points(v) for v in sorted(chosen))


def _sizes(summary: pd.DataFrame) -> list[tuple[int, bool]]:
    sizes = summary.drop_duplicates("labels_per_class").sort_values("labels_per_class")
    return [(int(k), bool(a)) for k, a in zip(sizes["labels_per_class"], sizes["all_labels"])]


def _pick_sizes(sizes: list[tuple[int, bool]], limit: int = 3) -> list[tuple[int, bool]]:
    """A few sizes to ask about: the smallest, 2 if present, then the largest."""
    picked: list[tuple[int, bool]] = []
    for want in (sizes[0], next((s for s in sizes if s[0] == 2 and not s[1]), None), sizes[-1]):
        if want is not None and want not in picked:
            picked.append(want)
    return picked[:limit]


def run_questions(records: pd.DataFrame) -> tuple[Question, ...]:
    """Questions answered by these records; empty when they hold fewer than two strategies at
    any size."""
    summary = summarize(records)
    if summary.empty:
        return ()
    all_gaps: list[float] = []
    for _, at in summary.groupby("labels_per_class"):
        means = sorted(at["mean"].tolist(), reverse=True)
        all_gaps += [a - b for i, a in enumerate(means) for b in means[i + 1:]]
    questions: list[Question] = []
    for k, all_labels in _pick_sizes(_sizes(summary)):
        at = summary[summary["labels_per_class"] == k].sort_values("mean", ascending=False)
        if len(at) < 2:
            continue
        best, second = at.iloc[0], at.iloc[1]
        gap = float(best["mean"] - second["mean"])
        if gap < TIE:
            continue
        size = _size(k, all_labels)
        options = tuple(strategy_label(s) for s in sorted(at["strategy"]))
        questions.append(Question(
            f"run-winner-{k}", f"In your runs at **{size}**, which strategy had the highest "
            "mean test accuracy?", options, strategy_label(best["strategy"]),
            f"Your runs at {size}: {_means_text(at)}. {strategy_label(best['strategy'])} won, "
            f"{_points(gap)} ahead of {strategy_label(second['strategy']).lower()}.",
            kind="run", topic=TOPIC))
        questions.append(Question(
            f"run-margin-{k}", f"In your runs at **{size}**, by how many points did the best "
            "strategy lead the second best (difference of mean test accuracies)?",
            _numeric_options(gap, all_gaps), _points(round(gap, 1)),
            f"Your runs at {size}: {_means_text(at)}. {strategy_label(best['strategy'])} minus "
            f"{strategy_label(second['strategy']).lower()} is {best['mean']:.2f} - "
            f"{second['mean']:.2f} = {_points(gap)}.", kind="run", topic=TOPIC))
    questions += _head_start_question(summary) + _scratch_gain_question(summary, all_gaps)
    return tuple(questions)


def _head_start_question(summary: pd.DataFrame) -> list[Question]:
    """At which size did the best transfer strategy lead training from scratch by the most?"""
    leads: dict[tuple[int, bool], float] = {}
    for k, all_labels in _sizes(summary):
        at = summary[summary["labels_per_class"] == k]
        base, others = at[at["strategy"] == "scratch"], at[at["strategy"] != "scratch"]
        if not base.empty and not others.empty:
            leads[(k, all_labels)] = float(others["mean"].max() - base["mean"].iloc[0])
    if len(leads) < 2:
        return []
    ranked = sorted(leads.items(), key=lambda item: item[1], reverse=True)
    if ranked[0][1] - ranked[1][1] < TIE:
        return []
    (k, all_labels), lead = ranked[0]
    listed = ", ".join(f"{point_label(kk, aa)}: {v:+.1f}" for (kk, aa), v in sorted(leads.items()))
    return [Question(
        "run-head-start", "In your runs, at which number of labels per class did the best "
        "transfer strategy lead training from scratch by the most points?",
        tuple(point_label(kk, aa) for kk, aa in sorted(leads)), point_label(k, all_labels),
        f"The best transfer strategy's lead over training from scratch, in points, at each size: "
        f"{listed}. The largest is at {point_label(k, all_labels)} ({lead:+.1f}). Pretraining "
        "usually helps most when labels are scarce, and the lead shrinks as labels grow.",
        kind="run", topic=TOPIC)]


def _scratch_gain_question(summary: pd.DataFrame, pool: list[float]) -> list[Question]:
    """How much did training from scratch gain from the smallest to the largest size?"""
    scratch = summary[summary["strategy"] == "scratch"].sort_values("labels_per_class")
    if len(scratch) < 2:
        return []
    low, high = scratch.iloc[0], scratch.iloc[-1]
    gain = float(high["mean"] - low["mean"])
    if gain < TIE:
        return []
    low_size = _size(low["labels_per_class"], low["all_labels"])
    high_size = _size(high["labels_per_class"], high["all_labels"])
    return [Question(
        "run-scratch-gain", f"In your runs, how many points of mean test accuracy did training "
        f"from scratch gain between **{low_size}** and **{high_size}**?",
        _numeric_options(gain, pool), _points(round(gain, 1)),
        f"From scratch scored {low['mean']:.2f}% at {low_size} and {high['mean']:.2f}% at "
        f"{high_size}: a gain of {_points(gain)}. A network with no pretraining depends on "
        "labels for everything, so it gains the most from more of them.",
        kind="run", topic=TOPIC)]
