"""The LoRA lab's trade-off reading: the LoRA rank with the highest mean against the other
ranks, and fine-tuning and the linear probe against it, all Holm-corrected together (one
sentence). Records: the trade-off sweep's runs (one labelled-set size)."""

from __future__ import annotations

import re
from typing import Callable, Mapping

import pandas as pd

from engine.experiments.readings.common import (TOO_FEW, Claim, Sentence, and_list, by_text, clean,
                                                family, holm_note, quoted, runs_of)
from engine.experiments.stats import strategy_label


def tradeoff_readings(records: pd.DataFrame, parameters: Callable[[str], int],
                      total: int) -> list[Sentence]:
    """parameters: strategy -> its exact trainable count; total: the model's weights."""
    records = clean(records)
    if records.empty:
        return []
    ranks = sorted({s for s in records["strategy"] if s.startswith("lora:")},
                   key=lambda s: (int(re.match(r"lora:r?(\d+)", s).group(1)), s))
    if not ranks:
        return [Sentence("No LoRA run is stored yet: nothing to compare.")]
    means = {s: runs_of(records, s)["test_accuracy"].mean() for s in ranks}
    best = max(ranks, key=means.__getitem__)
    others = [s for s in (*ranks, "finetune", "probe") if s != best and not runs_of(records, s).empty]
    calls: Mapping[str, object] = family({s: (runs_of(records, s), runs_of(records, best)) for s in others})
    n = parameters(best)
    text = (f"The highest LoRA mean here is **{strategy_label(best)}**: {means[best]:.1f}% with "
            f"{n:,} trainable parameters ({100 * n / total:.1f}% of the model)")
    parts = []
    for s in others:
        c, name = calls[s], strategy_label(s)
        if s in ("finetune", "probe"):
            name = f"{name} ({parameters(s):,} parameters)"
        if c.too_few:
            parts.append(f"{name}: {TOO_FEW} ({quoted(c)})")
        elif c.counts:
            parts.append(f"{name} is {'above' if c.gap > 0 else 'below'} it {by_text(c)}")
        else:
            parts.append(f"{name} is level with it ({quoted(c)})")
    if parts:
        text += ". Against it (each minus it), " + and_list(parts)
    text += holm_note(calls).replace(", H", "; H", 1) + "."
    if len(ranks) == 1:
        text += " Only one rank is stored, so no other rank is compared."
    return [Sentence(text, tuple(Claim(s, best, "trade-off", calls[s]) for s in others))]
