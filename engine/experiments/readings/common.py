"""What the lessons' readings share: the `Sentence` and `Claim` they return, the runs of one
side, the families of comparisons a sentence makes (Holm-corrected together) and the phrases
that quote a comparison with its interval."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

import pandas as pd

from engine.core.datasets import labels_per_class_text, labels_text
from engine.experiments.stats import (MIN_GAP, Comparison, compare_runs, holm, interval_text,
                                      label_sizes, strategy_label, without_failed)

TOO_FEW = "too few seeds to call"  # what a sentence says where a side has under MIN_SEEDS runs


@dataclass(frozen=True)
class Claim:
    """One comparison a sentence rests on: side a against side b at one point."""

    a: str  # side a: a strategy or curve name as the records write it
    b: str  # side b
    at: str  # where: "2 labels per class", "severity 90°", "k = 3"
    comparison: Comparison


@dataclass(frozen=True)
class Sentence:
    """One sentence of a reading (markdown) and the comparisons it quotes, in order."""

    text: str
    claims: tuple[Claim, ...] = ()

    @property
    def too_few(self) -> bool:
        """Some comparison here has too few seeds to call: the page offers more seeds."""
        return any(c.comparison.too_few for c in self.claims)

    def __str__(self) -> str:
        return self.text


def uncalled_note(sentences: Sequence[Sentence]) -> Optional[str]:
    """A sentence on the gaps of at least MIN_GAP points that these sentences call level
    although each side had enough seeds (their interval holds 0): level there means the runs
    cannot tell the two apart yet, not that they are equal. None when there is no such gap."""
    wide = [c for sentence in sentences for c in sentence.claims
            if not c.comparison.counts and not c.comparison.too_few
            and abs(c.comparison.gap) >= MIN_GAP]
    if not wide:
        return None
    said = (f"1 gap quoted above is at least {MIN_GAP:g} point yet not called: its interval "
            "holds 0" if len(wide) == 1 else
            f"{len(wide)} gaps quoted above are at least {MIN_GAP:g} point yet not called: their "
            "intervals hold 0")
    return (f"{said}. Level there means these runs cannot tell the two apart yet, not that they "
            "are equal; more seeds narrow the intervals.")


def clean(records: pd.DataFrame) -> pd.DataFrame:
    """The runs a reading reads: failed runs (`engine.experiments.stats.failed_runs`: no
    finite accuracy, or at chance where the other seeds learned) are left out."""
    return without_failed(records)


def runs_of(records: pd.DataFrame, strategy: str, k: Optional[int] = None) -> pd.DataFrame:
    """The runs of one strategy (or curve label), at one labelled-set size when k is given."""
    part = records[records["strategy"] == strategy]
    return part if k is None else part[part["labels_per_class"] == k]


def size_name(records: pd.DataFrame, k: int) -> str:
    """'2 labels per class', 'all (120) labels per class': one size as the sentences write it."""
    at = records[records["labels_per_class"] == k]
    return label_sizes(at).iloc[0].text if not at.empty else labels_per_class_text(int(k))


def sizes_list(ks: Sequence[int]) -> str:
    """'1 label per class', '1, 5 and 20 labels per class' (ALL_LABELS written 'all')."""
    if len(ks) == 1:
        return labels_per_class_text(ks[0])
    return and_list([labels_text(k) for k in ks]) + " labels per class"


def and_list(items: Iterable[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# strategies a sentence names as what one does, not as a thing ("fine-tuning is ahead of ...")
SENTENCE_NAMES = {"scratch": "training from scratch", "finetune": "fine-tuning",
                  "gradual": "gradual unfreezing", "lpft": "LP-FT"}


def name_of(strategy: str) -> str:
    """'the linear probe', 'fine-tuning', 'training from scratch': a strategy in a sentence."""
    return SENTENCE_NAMES.get(strategy) or f"the {strategy_label(strategy).lower()}"


def family(pairs: Mapping) -> dict:
    """Compare every pair of a family and call them together (Holm): key -> Comparison.

    pairs: key -> (runs of side a, runs of side b); keys whose sides have no run are left out.
    """
    keys = [key for key, (a, b) in pairs.items() if not a.empty and not b.empty]
    raw = [compare_runs(*pairs[key]) for key in keys]
    return dict(zip(keys, holm(raw)))


def sizes_family(records: pd.DataFrame, a: str, b: str) -> dict[int, Comparison]:
    """Side a against side b at every labelled-set size both have runs at, Holm-corrected
    together (one sentence reads them all): size -> comparison (a minus b)."""
    ks = sorted(int(k) for k in records["labels_per_class"].unique())
    return family({k: (runs_of(records, a, k), runs_of(records, b, k)) for k in ks})


def missing_sizes(records: pd.DataFrame, a: str, b: str) -> list[int]:
    """The sizes where the records hold runs of one side but not the other."""
    out = []
    for k in sorted(int(k) for k in records["labels_per_class"].unique()):
        if runs_of(records, a, k).empty != runs_of(records, b, k).empty:
            out.append(k)
    return out


def verdict(c: Comparison) -> str:
    """'ahead', 'behind', 'level' or 'too few': one comparison's call as a word."""
    if c.too_few:
        return "too few"
    return {1: "ahead", -1: "behind", 0: "level"}[c.sign]


def quoted(c: Comparison) -> str:
    """'+13.5 points, 95% interval 10.2 to 16.8, 5 seeds': a comparison's numbers."""
    return f"{c.gap:+.1f} points, {interval_text(c)}"


def group_by_verdict(comparisons: Mapping[int, Comparison]) -> dict[str, list[int]]:
    """The keys under each verdict word, in key order."""
    out: dict[str, list[int]] = {"ahead": [], "level": [], "behind": [], "too few": []}
    for key in sorted(comparisons):
        out[verdict(comparisons[key])].append(key)
    return out


def holm_note(comparisons) -> str:
    """', Holm-corrected over 4 comparisons' where a sentence tests several comparisons
    together (those with too few seeds are not tested, so not counted)."""
    values = comparisons.values() if isinstance(comparisons, Mapping) else comparisons
    n = sum(not c.too_few for c in values)
    return f", Holm-corrected over {n} comparisons" if n > 1 else ""


def over_sizes_text(records: pd.DataFrame, comparisons: Mapping[int, Comparison],
                    words: Mapping[str, str], whom: str, verb: str = "is") -> str:
    """'finished below training from scratch at 2 of 3 sizes (1 label per class: -9.1 points,
    95% interval ...; 5 labels per class: ...) and level with it at 1 of 3 sizes (...)'.

    words: verdict -> the words before `whom` ('ahead' -> 'above'); the first group names
    `whom` after `verb`, the others say 'it'; sizes with too few seeds 'have too few seeds to
    call'. With one size compared: '... at 20 labels per class (...)'.
    """
    groups, parts = group_by_verdict(comparisons), []
    for key in ("behind", "ahead", "level", "too few"):
        ks = groups[key]
        if not ks:
            continue
        each = "; ".join(f"{size_name(records, k)}: {quoted(comparisons[k])}" for k in ks)
        target = whom if not parts else "it"
        if key == "too few":
            head = f"{'has ' if not parts else ''}{TOO_FEW} against {target}"
        else:
            head = f"{verb + ' ' if not parts else ''}{words[key]} {target}"
        if len(comparisons) == 1:
            parts.append(f"{head} at {size_name(records, ks[0])} ({quoted(comparisons[ks[0]])})")
        else:
            parts.append(f"{head} at {len(ks)} of {len(comparisons)} sizes ({each})")
    return and_list(parts)


def by_text(c: Comparison) -> str:
    """'by 13.5 points (95% interval 10.2 to 16.8, 5 seeds)': the size of a called gap, with
    its interval turned the same way (for 'behind' / 'below' sentences, where the gap is < 0)."""
    if c.gap >= 0 or not math.isfinite(c.low):
        return f"by {abs(c.gap):.1f} points ({interval_text(c)})"
    flipped = Comparison(gap=-c.gap, low=-c.high, high=-c.low, seeds=c.seeds, counts=c.counts,
                         paired=c.paired, p=c.p, level=c.level, se=c.se, df=c.df)
    return f"by {flipped.gap:.1f} points ({interval_text(flipped)})"


def sizes_sentence(records: pd.DataFrame, a: str, b: str, lead: str, whom: str,
                   words: Mapping[str, str], verb: str = "is") -> tuple[dict, Optional[Sentence]]:
    """Side a against side b at every size both have (Holm together), as one sentence:
    '{lead} {verb} ahead of {whom} at 2 of 3 sizes (...) and level with it at ...; Holm-corrected
    over 3 comparisons.' Returns (size -> comparison, the sentence), or ({}, None) when no size
    has both sides. `records` are already `clean`."""
    calls = sizes_family(records, a, b) if not records.empty else {}
    if not calls:
        return {}, None
    claims = tuple(Claim(a, b, size_name(records, k), c) for k, c in sorted(calls.items()))
    text = (f"{lead} {over_sizes_text(records, calls, words, whom, verb)}"
            f"{holm_note(calls).replace(', H', '; H', 1)}.")
    return calls, Sentence(text, claims)
