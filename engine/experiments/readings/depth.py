"""The "How much of the network to train" lesson's readings: the best freeze depth, and the
copied-blocks experiment (Yosinski et al., 2014) against its published finding.

Records are the depth sweeps' runs (`partial:<k>`, `copy-frozen:<k>`, `copy-tuned:<k>`,
`scratch`, one labelled-set size). Each sentence's comparisons are Holm-corrected together.
"""

from __future__ import annotations

from typing import Callable, Optional

import pandas as pd

from engine.experiments.readings.common import (TOO_FEW, Claim, Sentence, and_list, clean,
                                                family, group_by_verdict, holm_note, quoted,
                                                runs_of)
from engine.experiments.stats import Comparison, compare_runs

PAPER = "Yosinski et al. (2014, \"How transferable are features in deep neural networks?\")"


def depths(records: pd.DataFrame, family_name: str) -> list[int]:
    """The k of every stored strategy of one family (`partial`, `copy-frozen`, ...), sorted."""
    names = records["strategy"][records["strategy"].str.startswith(family_name + ":")]
    return sorted({int(s.split(":")[1]) for s in names})


def _ks(ks) -> str:
    return "k = " + and_list([str(k) for k in ks])


def freeze_readings(records: pd.DataFrame,
                    weights: Optional[Callable[[str], int]] = None) -> list[Sentence]:
    """The depth with the highest mean against every other depth (Holm over them): the ones
    it is ahead of, level with, or too few seeds to call."""
    records = clean(records)
    ks = depths(records, "partial") if not records.empty else []
    if not ks:
        return []
    means = {k: runs_of(records, f"partial:{k}")["test_accuracy"].mean() for k in ks}
    best = max(ks, key=means.__getitem__)
    trains = (f", training {weights(f'partial:{best}'):,} weights" if weights else "")
    head = f"**In your run** the highest mean is at k = {best} ({means[best]:.1f}%{trains})"
    if len(ks) == 1:
        return [Sentence(f"{head}, the only depth stored so far: there is no other depth to "
                         "compare it with yet.")]
    calls = family({k: (runs_of(records, f"partial:{best}"), runs_of(records, f"partial:{k}"))
                    for k in ks if k != best})
    claims = tuple(Claim(f"partial:{best}", f"partial:{k}", f"k = {k}", c) for k, c in sorted(calls.items()))
    groups = group_by_verdict(calls)
    parts = []
    if groups["ahead"]:
        parts.append(f"ahead of {_ks(groups['ahead'])} ("
                     + "; ".join(f"k = {k}: {quoted(calls[k])}" for k in groups["ahead"]) + ")")
    if groups["level"]:
        parts.append(f"level with {_ks(groups['level'])} ("
                     + "; ".join(f"k = {k}: {quoted(calls[k])}" for k in groups["level"]) + ")")
    if groups["too few"]:
        parts.append(f"{TOO_FEW} against {_ks(groups['too few'])} ("
                     + "; ".join(f"k = {k}: {quoted(calls[k])}" for k in groups["too few"]) + ")")
    text = f"{head}. It is {and_list(parts)}{holm_note(calls).replace(', H', '; H', 1)}."
    if len(groups["ahead"]) == len(calls):
        text += " The run singles out this depth."
    elif groups["level"]:
        text += " The run does not single out one depth."
    return [Sentence(text, claims)]


FREEZE_PATTERN = (
    "The usual advice (CS231n's notes on transfer learning): with few labels, fine-tune fewer "
    "blocks, since every trainable weight can overfit a small set; with many, fine-tune more (a "
    "larger k), so that the earlier blocks adapt to the target as well. The last block trains "
    "at every k here.")


def _steps(records, fam: str, ks: list[int]) -> dict[int, Comparison]:
    """k -> the step from the previous k to this one (this minus previous), Holm together."""
    return family({b: (runs_of(records, f"{fam}:{b}"), runs_of(records, f"{fam}:{a}"))
                   for a, b in zip(ks, ks[1:])})


def _frozen_sentence(records: pd.DataFrame) -> Optional[Sentence]:
    ks = depths(records, "copy-frozen")
    if len(ks) < 2:
        return None if not ks else Sentence(
            f"With the copies frozen, only k = {ks[0]} is stored: no trend across depths yet.")
    first, last = ks[0], ks[-1]
    overall = compare_runs(runs_of(records, f"copy-frozen:{last}"), runs_of(records, f"copy-frozen:{first}"))
    steps = _steps(records, "copy-frozen", ks)
    mean = lambda k: runs_of(records, f"copy-frozen:{k}")["test_accuracy"].mean()  # noqa: E731
    claims = [Claim(f"copy-frozen:{last}", f"copy-frozen:{first}", "frozen copies", overall)]
    moves = {1: "rises", -1: "falls", 0: "ends level"}
    if overall.too_few:
        verb = f"goes from {mean(first):.1f}% (k = {first}) to {mean(last):.1f}% (k = {last}): {TOO_FEW}"
    else:
        verb = (f"{moves[overall.sign]} from {mean(first):.1f}% (k = {first}) to "
                f"{mean(last):.1f}% (k = {last})")
    text = f"With the copies frozen, accuracy {verb} ({quoted(overall)})"
    signs = {c.sign for c in steps.values() if c.counts}
    if signs == {1, -1}:
        called = [(a, k) for a, k in zip(ks, ks[1:]) if k in steps and steps[k].counts]
        text += "; not in one direction: it " + and_list(
            [f"{'rises' if steps[k].gap > 0 else 'falls'} from k = {a} to k = {k} ({quoted(steps[k])})"
             for a, k in called])
        claims += [Claim(f"copy-frozen:{k}", f"copy-frozen:{a}", "frozen copies", steps[k])
                   for a, k in called]
    if not overall.too_few:
        text += (", as in the published experiment, where it fell as more layers were copied"
                 if overall.sign < 0 else
                 ", unlike the published experiment, where it fell as more layers were copied")
    return Sentence(text + ".", tuple(claims))


def _tuned_sentence(records: pd.DataFrame) -> Optional[Sentence]:
    ks = depths(records, "copy-tuned")
    scratch = runs_of(records, "scratch")
    if not ks:
        return None
    if scratch.empty:
        return Sentence("No run from scratch is stored, so the fine-tuned copies have no baseline yet.")
    calls = family({k: (runs_of(records, f"copy-tuned:{k}"), scratch) for k in ks})
    claims = tuple(Claim(f"copy-tuned:{k}", "scratch", f"k = {k}", c) for k, c in sorted(calls.items()))
    groups = group_by_verdict(calls)
    parts = []
    for key, word in (("behind", "below"), ("level", "level with"), ("ahead", "above")):
        if groups[key]:
            whom = "it" if parts else f"the scratch baseline ({scratch['test_accuracy'].mean():.1f}%)"
            each = "; ".join(f"k = {k}: {quoted(calls[k])}" for k in groups[key])
            parts.append(f"{word} {whom} at {_ks(groups[key])} ({each})")
    if groups["too few"]:
        parts.append(f"{TOO_FEW} at {_ks(groups['too few'])} ("
                     + "; ".join(f"k = {k}: {quoted(calls[k])}" for k in groups["too few"]) + ")")
    text = (f"Fine-tuned, the copies finish {and_list(parts)}"
            f"{holm_note(calls).replace(', H', '; H', 1)}")
    if groups["behind"]:
        text += ": unlike the published experiment, where fine-tuned copies never fell below it"
    elif groups["ahead"] and len(groups["ahead"]) == len(calls):
        text += ": as in the published experiment, above the baseline at every depth"
    elif groups["ahead"] or groups["level"]:
        text += (": never below it, but the published boost above the baseline shows "
                 + (f"only at {_ks(groups['ahead'])}" if groups["ahead"] else "at no depth here"))
    return Sentence(text + ".", claims)


def copy_readings(records: pd.DataFrame) -> list[Sentence]:
    """The frozen copies' trend over k, then the fine-tuned copies against scratch."""
    records = clean(records)
    if records.empty:
        return []
    return [s for s in (_frozen_sentence(records), _tuned_sentence(records)) if s is not None]
