"""The "When transfer hurts" lesson's readings: negative transfer and domain shift.

Negative transfer: fine-tuning and the probe from a mismatched source, each against training
from scratch at every size (each curve's sizes Holm-corrected together), and whether that is
negative transfer; by the lesson's own definition a transfer curve of either kind below scratch
is. Domain shift: the head start (strategy minus scratch, seed by seed on the same labelled
examples) at the smallest size across the severities; every call here is made on those per-seed
head starts, so "level with scratch" and "kept more of its lead" read the same numbers.
"""

from __future__ import annotations

from typing import Callable, Optional

import pandas as pd

from engine.core.shifts import SHIFTS
from engine.experiments.readings.common import (TOO_FEW, Claim, Sentence, and_list, by_text, clean,
                                                group_by_verdict, sizes_family, sizes_list,
                                                sizes_sentence)
from engine.experiments.stats import Comparison, compare, holm, interval_text

BELOW_WORDS = {"behind": "below", "ahead": "above", "level": "level with"}


def negative_readings(records: pd.DataFrame, scratch: str, fine: str, probe: str,
                      source: str) -> list[Sentence]:
    """Where fine-tuning (curve `fine`) and the probe (`probe`) from the mismatched `source`
    finished against scratch (`scratch`), then the verdict on negative transfer."""
    records = clean(records)
    out, found = [], {}
    for label, who in ((fine, f"In this run, fine-tuning from {source}"),
                       (probe, f"The probe on {source}")):
        comparisons, sentence = sizes_sentence(records, label, scratch, who,
                                               "training from scratch", BELOW_WORDS, "finished")
        if sentence is not None:
            found[label] = comparisons
            out.append(Sentence(sentence.text.replace(" below training from scratch",
                                                      " **below training from scratch**", 1),
                                sentence.claims))
        else:
            out.append(Sentence(f"{who}: no labelled-set size has runs of it and of training from "
                                "scratch yet, so there is nothing to compare."))
    if not found:
        return out
    below = {label: group_by_verdict(c)["behind"] for label, c in found.items()}
    above = {label: group_by_verdict(c)["ahead"] for label, c in found.items()}
    names = {fine: "fine-tuning", probe: "the probe"}
    if any(below.values()):
        where = and_list([f"{names[label]} at {sizes_list(ks)}" for label, ks in below.items() if ks])
        out.append(Sentence(f"That is **negative transfer**: the mismatched start cost accuracy "
                            f"({where})."))
    elif all(all(c.too_few for c in comps.values()) for comps in found.values()):
        out.append(Sentence(f"Whether the mismatched start hurt: {TOO_FEW} (the rule needs 3 "
                            "seeds a side)."))
    elif any(above.values()):
        where = and_list([f"{names[label]} at {sizes_list(ks)}" for label, ks in above.items() if ks])
        out.append(Sentence("No negative transfer at these settings: no transfer curve is called "
                            f"below scratch, and the pretrained start helped ({where})."))
    else:
        out.append(Sentence("No gap to scratch is called at these settings, so this run cannot "
                            "tell harm from noise. More seeds narrow the intervals."))
    return out


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
    ("permuted", "behind"): "the start committed to scrambled images cost more than fine-tuning "
                            "could undo",
    ("permuted", "level"): "fine-tuning either undid the scrambled start or it hardly mattered "
                           "at these settings; this run does not show a difference",
    ("permuted", "ahead"): "unlike what this lesson expects, the scrambled start still helped: "
                           "with few labels scratch is a weak baseline, and pretraining on any "
                           "digit images taught the early layers something",
    ("randlabels", "behind"): "what the later layers memorised outweighed whatever the early "
                              "layers carry over",
    ("randlabels", "level"): "the help of the early layers and the harm of the later ones cancel, "
                             "or fine-tuning washed both out, at these settings",
    ("randlabels", "ahead"): "what the early layers carry over outweighed the harm of the later "
                             "ones, as Maennel et al. found can happen",
}
PLACE = {"behind": "below", "level": "level with", "ahead": "above"}


def why_negative(records: pd.DataFrame, shift: str, scratch: str, fine: str) -> Sentence:
    """The mechanism of the mismatched source, then which way fine-tuning from it went in this
    run and what that says (the comparisons of `negative_readings`)."""
    records = clean(records)
    comparisons = sizes_family(records, fine, scratch) if not records.empty else {}
    text = MECHANISM[shift]
    if not comparisons:
        return Sentence(text)
    groups = group_by_verdict(comparisons)
    found = [(key, groups[key]) for key in ("behind", "level", "ahead") if groups[key]]
    if not found:
        return Sentence(text + f" Which way this run went: {TOO_FEW}.")
    if len(found) == 1 and not groups["too few"]:
        key = found[0][0]
        return Sentence(text + f" In this run fine-tuning finished {PLACE[key]} scratch at every "
                        f"size compared: {OUTCOME[(shift, key)]}.")
    clauses = [f"{PLACE[key]} scratch at {sizes_list(ks)}" for key, ks in found]
    if groups["too few"]:
        clauses.append(f"{TOO_FEW} at {sizes_list(groups['too few'])}")
    text += f" In this run fine-tuning finished {and_list(clauses)}"
    if len(found) > 1:
        text += ": which way the mismatch pulls depends on the size of the labelled set"
    return Sentence(text + (f". Where it is below, {OUTCOME[(shift, 'behind')]}." if groups["behind"]
                            else "."))


# ---- domain shift -----------------------------------------------------------------------------

HEAD_START_COLUMNS = ["severity", "strategy", "labels_per_class", "head_start", "std", "seeds",
                      "scratch", "accuracy"]
TRANSFER = {"probe": "The linear probe's", "finetune": "Fine-tuning's"}


def _table(records: pd.DataFrame) -> pd.DataFrame:
    """(severity, labels_per_class, seed) x strategy: test accuracy."""
    return records.pivot_table(index=["severity", "labels_per_class", "seed"], columns="strategy",
                               values="test_accuracy", aggfunc="mean")


def head_starts(records: pd.DataFrame) -> pd.DataFrame:
    """Per severity, size and transfer strategy: the mean and spread over seeds of (strategy
    accuracy - scratch accuracy) on the same labelled examples (seed by seed), and the means of
    the two accuracies over those seeds. Records carry a `severity` column."""
    records = clean(records)
    if records.empty or "scratch" not in set(records["strategy"]):
        return pd.DataFrame(columns=HEAD_START_COLUMNS)
    table, rows = _table(records), []
    for strategy in ("probe", "finetune"):
        if strategy not in table:
            continue
        both = table[[strategy, "scratch"]].dropna()
        for (level, k), part in both.groupby(level=["severity", "labels_per_class"]):
            gap = part[strategy] - part["scratch"]
            rows.append({"severity": float(level), "strategy": strategy, "labels_per_class": int(k),
                         "head_start": float(gap.mean()),
                         "std": float(gap.std()) if len(gap) > 1 else 0.0, "seeds": int(len(gap)),
                         "scratch": float(part["scratch"].mean()),
                         "accuracy": float(part[strategy].mean())})
    return pd.DataFrame(rows, columns=HEAD_START_COLUMNS)


def _gaps(table: pd.DataFrame, strategy: str, level: float, k: int) -> pd.Series:
    """Per seed: strategy minus scratch at one severity and size (seeds with both only)."""
    part = table.xs((level, k), level=["severity", "labels_per_class"])
    both = part[[strategy, "scratch"]].dropna() if strategy in part else part.iloc[0:0]
    return both[strategy] - both["scratch"]


def _paired(x: pd.Series, y: pd.Series) -> Comparison:
    """x against y (per-seed values): seed by seed when both hold the same seeds, Welch's
    interval otherwise (as `compare_runs` decides)."""
    if sorted(x.index) == sorted(y.index):
        return compare([x[s] for s in sorted(x.index)], [y[s] for s in sorted(y.index)], paired=True)
    return compare(list(x), list(y), paired=False)


def _zero(x: pd.Series) -> Comparison:
    return compare(list(x), [0.0] * len(x), paired=True)


def _strategy_sentences(table, strategy, levels, k, fmt) -> list[Sentence]:
    gaps = {level: _gaps(table, strategy, level, k) for level in levels}
    levels = [lv for lv in levels if len(gaps[lv])]
    if len(levels) < 2:
        return []
    name, size = TRANSFER[strategy], size_name_k(k)
    first, last = levels[0], levels[-1]
    overall = _paired(gaps[last], gaps[first])
    start, end = _zero(gaps[first]), _zero(gaps[last])
    where = f"at {size}"
    change = ("it shrank" if overall.sign < 0 else "it grew" if overall.sign > 0 else
              TOO_FEW if overall.too_few else "the rule calls the change level")
    text = (f"{name} head start {where} went from **{gaps[first].mean():+.1f}** points at "
            f"severity {fmt(first)} to **{gaps[last].mean():+.1f}** at {fmt(last)}: {change} "
            f"({overall.gap:+.1f} points, {interval_text(overall)}).")
    claims = [Claim(f"{strategy}@{fmt(last)}", f"{strategy}@{fmt(first)}", size, overall)]
    out = [Sentence(text, tuple(claims))]
    if len(levels) > 2:
        steps = holm([_paired(gaps[b], gaps[a]) for a, b in zip(levels, levels[1:])])
        out.append(_steps_sentence(strategy, steps, levels, size, fmt))
    if end.too_few:
        status = f"At {fmt(last)}, whether it is above scratch: {TOO_FEW}"
    elif end.sign > 0:
        status = f"At {fmt(last)} it is {'still ' if start.sign > 0 else ''}above scratch"
    elif end.sign == 0:
        status = (f"At {fmt(last)} the rule no longer calls a head start: it is level with scratch"
                  if start.sign > 0 else f"At {fmt(last)} it is level with scratch")
    else:
        status = f"At {fmt(last)} it is **below scratch**: the transferred start now costs accuracy"
    out.append(Sentence(f"{status} ({end.gap:+.1f} points, {interval_text(end)}).",
                        (Claim(strategy, "scratch", f"{size}, {fmt(last)}", end),)))
    return out


def size_name_k(k: int) -> str:
    return sizes_list([k])


def _steps_sentence(strategy, steps, levels, size, fmt) -> Sentence:
    """Every step between neighbouring severities, quoted, then what the called ones say."""
    moves = list(zip(steps, levels, levels[1:]))
    claims = tuple(Claim(f"{strategy}@{fmt(b)}", f"{strategy}@{fmt(a)}", size, c) for c, a, b in moves)
    each = "; ".join(f"{fmt(a)} to {fmt(b)}: {c.gap:+.1f} points ({interval_text(c)})"
                     for c, a, b in moves)
    counted = [(c, a, b) for c, a, b in moves if c.counts]
    if all(c.too_few for c, _, _ in moves):
        verdict = TOO_FEW
    elif not counted:
        verdict = "no step is called, so step by step it stayed level"
    else:
        verdict = "it " + and_list([f"{'fell' if c.gap < 0 else 'rose'} from {fmt(a)} to {fmt(b)}"
                                    for c, a, b in counted])
        if len(counted) < len(moves):
            verdict += "; the other steps are not called"
    tested = sum(not c.too_few for c, _, _ in moves)
    note = f"; Holm-corrected over {tested} steps" if tested > 1 else ""
    return Sentence(f"Step by step ({each}{note}): {verdict}.",
                    claims)


def shift_readings(records: pd.DataFrame, kind: str,
                   fmt: Optional[Callable[[float], str]] = None) -> list[Sentence]:
    """The head start of the probe and of fine-tuning at the smallest size across the
    severities (records carry `severity`), then whether fine-tuning kept more of its lead than
    the probe at the highest severity both reached."""
    records = clean(records)
    if records.empty:
        return []
    info = SHIFTS[kind]
    fmt = fmt or (lambda v: info.format_severity(v) + info.unit)
    k = int(records["labels_per_class"].min())
    if "scratch" not in set(records["strategy"]):
        return [Sentence("No run of training from scratch is stored, so no head start can be measured.")]
    table = _table(records)
    levels = sorted(float(v) for v in records["severity"].unique())
    out = []
    for strategy in ("probe", "finetune"):
        if strategy in table:
            found = _strategy_sentences(table, strategy, levels, k, fmt)
            out += found or [Sentence(f"{TRANSFER[strategy]} head start at {size_name_k(k)} has "
                                      "fewer than two severities stored: no change to read yet.")]
        else:
            out.append(Sentence(f"{TRANSFER[strategy][:-2]} has no run stored at these settings."))
    if {"probe", "finetune"} <= set(table.columns):
        both = [lv for lv in levels
                if len(_gaps(table, "probe", lv, k)) and len(_gaps(table, "finetune", lv, k))]
        if both:
            out.append(_lead(table, both[-1], k, fmt))
    return out


def _lead(table, level, k, fmt) -> Sentence:
    """Did fine-tuning keep more of its lead than the probe at this severity? (Fine-tune minus
    probe seed by seed: the difference of their head starts.)"""
    c = _paired(_gaps(table, "finetune", level, k), _gaps(table, "probe", level, k))
    at, numbers = f"at {fmt(level)}", f"{c.gap:+.1f} points, {interval_text(c)}"
    claim = (Claim("finetune", "probe", f"{size_name_k(k)}, {fmt(level)}", c),)
    if c.too_few:
        return Sentence(f"Whether fine-tuning kept more of its lead than the probe {at}: "
                        f"{TOO_FEW} ({numbers}).", claim)
    if c.sign > 0:
        return Sentence(f"As expected, fine-tuning kept more of its lead than the probe {at}, "
                        f"{by_text(c)}.", claim)
    if c.sign == 0:
        return Sentence(f"Fine-tuning and the probe are level {at} ({numbers}): this run does not "
                        "show fine-tuning keeping more of its lead, as it usually does.", claim)
    return Sentence(f"Unlike the usual expectation, the probe kept more of its lead than "
                    f"fine-tuning {at}, {by_text(c)}.", claim)
