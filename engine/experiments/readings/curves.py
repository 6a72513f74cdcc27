"""The transfer curves' readings: each transfer strategy against training from scratch.

`calls(records)` compares every strategy with the baseline at every size both have runs at,
each strategy's sizes Holm-corrected together; every sentence of the lesson quotes these same
comparisons, so the head start at one size and the summary over sizes cannot disagree.
`head_start` reads one size (the strategy with the highest mean there), `sweep_readings` one
sentence per strategy over every size (what `python -m engine sweep` prints).
"""

from __future__ import annotations

from typing import Optional

import pandas as pd

from engine.experiments.readings.common import (TOO_FEW, Claim, Sentence, and_list, by_text, clean,
                                                holm_note, missing_sizes, name_of,
                                                runs_of, size_name, sizes_family, sizes_sentence)
from engine.experiments.stats import Comparison, interval_text, strategy_label

BASELINE = "scratch"


def calls(records: pd.DataFrame, baseline: str = BASELINE) -> dict[str, dict[int, Comparison]]:
    """strategy -> size -> its comparison with `baseline` (a minus baseline), each strategy's
    sizes Holm-corrected together; strategies with no size shared with the baseline left out."""
    records = clean(records)
    out = {}
    for strategy in sorted(set(records["strategy"]) - {baseline}):
        found = sizes_family(records, strategy, baseline)
        if found:
            out[strategy] = found
    return out


def head_start(records: pd.DataFrame, k: int, baseline: str = BASELINE) -> Optional[Sentence]:
    """The head start at one size: the transfer strategy with the highest mean there against
    `baseline`, as `calls` decides it. A missing baseline or strategy is said; None when the
    records hold nothing at this size."""
    records = clean(records)
    at = records[records["labels_per_class"] == k]
    if at.empty:
        return None
    size = size_name(records, k)
    base_name = name_of(baseline)
    if runs_of(at, baseline).empty:
        return Sentence(f"At {size} there is no run of {base_name} yet, so no head start can be "
                        "measured.")
    others = at[at["strategy"] != baseline]
    if others.empty:
        return Sentence(f"At {size} only {base_name} has runs: no transfer strategy to compare it with.")
    best = str(others.groupby("strategy")["test_accuracy"].mean().idxmax())
    family = calls(records, baseline)[best]  # the family the summary over sizes calls too
    c = family[k]
    who = name_of(best)
    claim = (Claim(best, baseline, size, c),)
    family_note = holm_note(family)
    if c.too_few:
        text = (f"At {size}, {who} (the highest mean) is {c.gap:+.1f} points from {base_name}: "
                f"{TOO_FEW} ({interval_text(c)}; the rule needs 3 a side).")
    elif c.counts:
        verb = "is ahead of" if c.gap > 0 else "is behind"
        text = f"At {size}, {who} {verb} {base_name} {by_text(c)[:-1]}{family_note})."
    else:
        text = (f"At {size}, {who} (the highest mean) and {base_name} are level: the gap of "
                f"{c.gap:+.1f} points ({interval_text(c)}{family_note}) is not called by the rule.")
    return Sentence(text, claim)


def over_sizes(records: pd.DataFrame, strategy: str, baseline: str = BASELINE) -> Sentence:
    """One strategy against the baseline over every size compared, grouped by verdict, each
    size quoted with its gap and interval; sizes where one side is missing are named."""
    words = {"ahead": "ahead of", "behind": "behind", "level": "level with"}
    _, sentence = sizes_sentence(records, strategy, baseline, f"**{strategy_label(strategy)}**",
                                 name_of(baseline), words)
    missing = missing_sizes(records, strategy, baseline)
    if missing:
        sentence = Sentence(sentence.text + " No comparison at " + and_list(
            [size_name(records, k) for k in missing]) + ": one side has no run there yet.",
            sentence.claims)
    return sentence


def sweep_readings(records: pd.DataFrame, baseline: str = BASELINE) -> list[Sentence]:
    """One sentence per transfer strategy over every size, then a note when the baseline is
    missing; [] for no records."""
    records = clean(records)
    if records.empty:
        return []
    if runs_of(records, baseline).empty:
        return [Sentence(f"No run of {name_of(baseline)} is stored, so no head start can be measured.")]
    found = calls(records, baseline)
    out = [over_sizes(records, s, baseline) for s in sorted(found)]
    lonely = sorted(set(records["strategy"]) - {baseline} - set(found))
    if lonely:
        out.append(Sentence(f"{and_list([name_of(s) for s in lonely]).capitalize()} "
                            f"{'has' if len(lonely) == 1 else 'have'} no size in common with "
                            f"{name_of(baseline)}: no comparison."))
    return out
