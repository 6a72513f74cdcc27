"""Quiz questions drawn from the learner's own runs: records in, `Question`s out.

After a sweep, the result records say which strategy won at each labelled-set size and by how
much. `run_questions(records)` turns them into multiple-choice questions whose answers are
computed from those records (means over seeds, via `engine.experiments.stats.summarize`), never
written by hand: "In your runs at 2 labels per class, which strategy came out ahead?" Every
verdict (a winner, a lead, a gain) is judged by the one rule of
`engine.experiments.stats.compare`, and a tie is an answer ("None: the best two are level").
Every explanation quotes the measured means. Wrong numeric options are other gaps measured in
the same runs where there are enough, else the right gap shifted by a few points; they are
shown as choices, never as results.

Not here: where the records come from (the result store) or drawing the quiz (the quiz page).
"""

from __future__ import annotations

from statistics import fmean as mean

import pandas as pd

from engine.core.datasets import LabelSize
from engine.experiments.readings.common import and_list, clean
from engine.experiments.stats import (MIN_GAP, MIN_SEEDS, RULE, Comparison, compare, compare_runs,
                                      interval_text, seeds_text, strategy_label,
                                      summarize)
from engine.study.content import Question

TOPIC = "Your runs"
NO_WINNER = "None: the best two are level"  # the winner question's answer for a tie
MIN_GAP_BETWEEN_OPTIONS = 1.0  # points between any two numeric options


def _means_text(at: pd.DataFrame) -> str:
    rows = at.sort_values("mean", ascending=False)
    seeds = int(rows["seeds"].min())
    listed = ", ".join(f"{strategy_label(s)} {m:.1f}%"
                       for s, m in zip(rows["strategy"], rows["mean"]))
    return f"{listed} ({seeds_text(seeds)})"


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


def _sizes(summary: pd.DataFrame) -> list[LabelSize]:
    return sorted(set(summary["size"]))


def _pick_sizes(sizes: list[LabelSize], limit: int = 3) -> list[LabelSize]:
    """A few sizes to ask about: the smallest, 2 if present, then the largest."""
    picked: list[LabelSize] = []
    for want in (sizes[0], LabelSize(2) if LabelSize(2) in sizes else None, sizes[-1]):
        if want is not None and want not in picked:
            picked.append(want)
    return picked[:limit]


def _runs(records: pd.DataFrame, strategy: str, k: int) -> pd.Series:
    """Test accuracy per seed of one strategy at one size."""
    at = records[(records["strategy"] == strategy) & (records["labels_per_class"] == k)]
    return at.groupby("seed")["test_accuracy"].mean()


def _paired(a: pd.Series, b: pd.Series) -> list[float]:
    """a - b per seed, over the seeds both have (the same labelled examples)."""
    return (a - b).dropna().tolist()


def _compare(records: pd.DataFrame, a: str, b: str, k: int) -> Comparison:
    """Strategy a against b at size k by the rule (paired where they share their seeds): the
    one comparison every question about this pair quotes."""
    at = records[records["labels_per_class"] == k]
    return compare_runs(at[at["strategy"] == a], at[at["strategy"] == b])


def _lead_values(records: pd.DataFrame, a: str, b: str, k: int) -> list[float]:
    """a - b per seed when both sides hold the same seeds; [] otherwise (no paired lead)."""
    ra, rb = _runs(records, a, k), _runs(records, b, k)
    return _paired(ra, rb) if sorted(ra.index) == sorted(rb.index) else []


RULE_SHORT = (f"A difference counts when its 95% interval excludes 0 and it is at least {MIN_GAP:g} "
              f"point, with at least {MIN_SEEDS} seeds a side.")


def run_questions(records: pd.DataFrame) -> tuple[Question, ...]:
    """Questions answered by these records; empty when they hold fewer than two strategies at
    any size. Every verdict (a winner, a lead, a gain) is judged by `RULE`. Runs with a NaN
    accuracy (failed) are left out."""
    records = clean(records)
    summary = summarize(records)
    if summary.empty:
        return ()
    all_gaps: list[float] = []
    for _, at in summary.groupby("size"):
        means = sorted(at["mean"].tolist(), reverse=True)
        all_gaps += [a - b for i, a in enumerate(means) for b in means[i + 1:]]
    questions: list[Question] = []
    for size in _pick_sizes(_sizes(summary)):
        at = summary[summary["size"] == size].sort_values("mean", ascending=False)
        if len(at) >= 2:
            questions += _winner_questions(records, at, size.text, all_gaps)
    questions += _head_start_question(records, summary)
    questions += _scratch_gain_question(records, summary, all_gaps)
    return tuple(questions)


def _winner_questions(records: pd.DataFrame, at: pd.DataFrame, size: str,
                      pool: list[float]) -> list[Question]:
    """Who came out ahead at one size (a tie is an answer), and by how much when someone did."""
    best, second = at.iloc[0], at.iloc[1]
    k = int(best["labels_per_class"])
    diff = _compare(records, best["strategy"], second["strategy"], k)
    if diff.too_few:  # nothing can be called: no question whose answer would be a call
        return []
    best_name, second_name = strategy_label(best["strategy"]), strategy_label(second["strategy"])
    options = tuple(strategy_label(s) for s in sorted(at["strategy"])) + (NO_WINNER,)
    prompt = f"In your runs at **{size}**, which strategy came out ahead? ({RULE_SHORT})"
    if not diff.counts:
        return [Question(
            f"run-winner-{k}", prompt, options, NO_WINNER,
            f"Your runs at {size}: {_means_text(at)}. {best_name} has the highest mean, but only "
            f"{_points(diff.gap)} above {second_name.lower()} ({_interval(diff)}): level by the "
            f"rule. {RULE}",
            kind="run", topic=TOPIC)]
    gap = diff.gap
    return [Question(
        f"run-winner-{k}", prompt, options, best_name,
        f"Your runs at {size}: {_means_text(at)}. {best_name} came out ahead, {_points(gap)} ahead "
        f"of {second_name.lower()} ({_interval(diff)}), a difference that counts by the rule.",
        kind="run", topic=TOPIC),
        Question(
        f"run-margin-{k}", f"In your runs at **{size}**, by how many points did the best "
        "strategy lead the second best (difference of mean test accuracies)?",
        _numeric_options(gap, pool), _points(round(gap, 1)),
        f"Your runs at {size}: {_means_text(at)}. {best_name} minus {second_name.lower()}"
        + (", seed by seed," if diff.paired else "") + f" is {_points(gap)} ({_interval(diff)}).",
        kind="run", topic=TOPIC)]


def _interval(c: Comparison) -> str:
    return interval_text(c)


def _leads(records: pd.DataFrame, summary: pd.DataFrame) -> dict[LabelSize, list[float]]:
    """Per size: the best transfer strategy's lead over training from scratch, per seed."""
    leads = {}
    for size in _sizes(summary):
        at = summary[summary["size"] == size]
        others = at[at["strategy"] != "scratch"]
        if (at["strategy"] == "scratch").any() and not others.empty:
            best = others.loc[others["mean"].idxmax(), "strategy"]
            lead = _lead_values(records, best, "scratch", size.count)
            if len(lead) >= MIN_SEEDS:
                leads[size] = lead
    return leads


def _head_start_question(records: pd.DataFrame, summary: pd.DataFrame) -> list[Question]:
    """At which size did the best transfer strategy lead training from scratch by the most?
    Asked only when the largest lead beats the next by the rule."""
    leads = _leads(records, summary)
    if len(leads) < 2:
        return []
    ranked = sorted(leads.items(), key=lambda item: mean(item[1]), reverse=True)
    if not compare(ranked[0][1], ranked[1][1], paired=False).counts:
        return []
    size, lead = ranked[0][0], mean(ranked[0][1])
    listed = ", ".join(f"{other}: {mean(v):+.1f}" for other, v in sorted(leads.items()))
    usual = ("As usual, pretraining helped most where labels were scarcest."
             if size == min(leads) else
             "Pretraining usually helps most where labels are scarcest; your runs show the "
             "largest lead at a bigger labelled set.")
    return [Question(
        "run-head-start", "In your runs, at which number of labels per class did the best "
        "transfer strategy lead training from scratch by the most points?",
        tuple(str(other) for other in sorted(leads)), str(size),
        f"The best transfer strategy's lead over training from scratch, in points, at each size: "
        f"{listed}. The largest is at {size} ({lead:+.1f}), ahead of the "
        f"next by the rule. {usual}", kind="run", topic=TOPIC)]


def _gain_comparison(records: pd.DataFrame, low: int, high: int, scratch_gain: list[float]) -> str:
    """Scratch's gain between two sizes against each transfer strategy's, by `RULE`."""
    words: dict[int, list[str]] = {1: [], 0: [], -1: []}
    for strategy in sorted(set(records["strategy"]) - {"scratch"}):
        gain = _paired(_runs(records, strategy, high), _runs(records, strategy, low))
        if len(gain) >= MIN_SEEDS and len(scratch_gain) >= MIN_SEEDS:
            words[compare(scratch_gain, gain, paired=False).sign].append(
                f"{strategy_label(strategy).lower()} ({sum(gain) / len(gain):+.1f})")
    if not any(words.values()):
        return ""
    if not words[0] and not words[-1]:
        return (f" It gained more than {and_list(words[1])}: a network with no pretraining "
                "depends on labels for everything, so it gains the most from more of them.")
    said = [f"{verb} {and_list(words[sign])}" for sign, verb in
            ((1, "more than"), (0, "level with"), (-1, "less than")) if words[sign]]
    return (" Training from scratch usually gains the most from more labels, since it depends "
            f"on them for everything; here its gain was {and_list(said)}.")


def _scratch_gain_question(records: pd.DataFrame, summary: pd.DataFrame,
                           pool: list[float]) -> list[Question]:
    """How much did training from scratch gain from the smallest to the largest size? Asked
    only when the gain counts by the rule."""
    scratch = summary[summary["strategy"] == "scratch"].sort_values("size")
    if len(scratch) < 2:
        return []
    low, high = scratch.iloc[0], scratch.iloc[-1]
    lk, hk = int(low["labels_per_class"]), int(high["labels_per_class"])
    if compare(_runs(records, "scratch", hk).tolist(), _runs(records, "scratch", lk).tolist(),
               paired=False).sign <= 0:
        return []
    gain = float(high["mean"] - low["mean"])
    low_size, high_size = low["size"].text, high["size"].text
    compared = _gain_comparison(records, lk, hk,
                                _paired(_runs(records, "scratch", hk), _runs(records, "scratch", lk)))
    return [Question(
        "run-scratch-gain", f"In your runs, how many points of mean test accuracy did training "
        f"from scratch gain between **{low_size}** and **{high_size}**?",
        _numeric_options(gain, pool), _points(round(gain, 1)),
        f"From scratch scored {low['mean']:.2f}% at {low_size} and {high['mean']:.2f}% at "
        f"{high_size}: a gain of {_points(gain)}.{compared}", kind="run", topic=TOPIC)]
