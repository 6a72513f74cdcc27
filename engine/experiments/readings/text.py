"""The text lesson's domain-shift readings (`engine.experiments.text_sweep.TextShiftSpec`).

Two kinds of sentence, each a family Holm-corrected together:
- the shift, one per strategy: trained on the source corpus alone, against as many labels of
  each target's own (the in-domain reference), over the targets;
- the adaptation, one per target and strategy: the source's labels plus k target labels against
  the k target labels alone, over k.
Every side is a seeded draw, so each comparison is the rule's (`compare_runs`: paired by seed).
The transfer curves of one corpus are read by `readings.curves.sweep_readings`.
"""

from __future__ import annotations

import pandas as pd

from engine.core.text import TEXT_DATASETS, text_title
from engine.experiments.readings.common import (Claim, Sentence, and_list, clean, family,
                                                group_by_verdict, holm_note, name_of, quoted,
                                                sizes_sentence)
from engine.experiments.text_sweep import SOURCE_LABELS

def with_source(strategy: str, target: str, source: str) -> str:
    """How an adaptation claim names its side a: 'probe on tweets + movie_reviews'."""
    return f"{strategy} on {target} + {source}"


def alone(strategy: str, target: str) -> str:
    """... and its side b: 'probe on tweets alone'."""
    return f"{strategy} on {target} alone"


def corpus_name(name: str) -> str:
    """'Amazon reviews': a corpus as sentences name it."""
    info = TEXT_DATASETS.get(name)
    return info.said if info is not None else text_title(name)


def _from(records: pd.DataFrame, source: str) -> pd.Series:
    column = records["train_source"] if "train_source" in records else pd.Series("", records.index)
    return column.fillna("") == source


def shift_sentence(records: pd.DataFrame, source: str, strategy: str):
    """Trained on `source` alone against `SOURCE_LABELS` per class of each target's own, over
    the targets: target -> comparison, and the sentence (None when no target has both)."""
    runs = records[records["strategy"] == strategy]
    alone = runs[_from(runs, source) & (runs["labels_per_class"] == 0)]
    own = runs[_from(runs, "") & (runs["labels_per_class"] == SOURCE_LABELS)]
    targets = sorted(set(alone["target"]) & set(own["target"]))
    calls = family({t: (alone[alone["target"] == t], own[own["target"] == t]) for t in targets})
    if not calls:
        return {}, None
    words = {"behind": "scores below", "ahead": "scores above", "level": "is level with",
             "too few": "has too few seeds to call against"}
    parts = []
    for verdict, names in group_by_verdict(calls).items():
        if names:
            each = "; ".join(f"{corpus_name(t)}: {quoted(calls[t])}" for t in names)
            whom = (f"{SOURCE_LABELS} labels per class of the target's own" if not parts
                    else "them")
            parts.append(f"{words[verdict]} {whom} on "
                         f"{and_list([corpus_name(t) for t in names])} ({each})")
    text = (f"Trained on {SOURCE_LABELS} labels per class of {corpus_name(source)} and tested "
            f"on another corpus, {name_of(strategy)} {and_list(parts)}"
            f"{holm_note(calls).replace(', H', '; H', 1)}.")
    claims = tuple(Claim(f"{strategy} on {source}", f"{strategy} on {t}", corpus_name(t), c)
                   for t, c in sorted(calls.items()))
    return calls, Sentence(text, claims)


def adapt_sentence(records: pd.DataFrame, source: str, target: str, strategy: str):
    """`source` plus k target labels against the k alone, over every k > 0 both have:
    k -> comparison, and the sentence (None when no k has both)."""
    runs = records[(records["strategy"] == strategy) & (records["target"] == target)
                   & (records["labels_per_class"] > 0)
                   & (records["labels_per_class"] < SOURCE_LABELS)]
    a, b = with_source(strategy, target, source), alone(strategy, target)
    both = pd.concat([runs[_from(runs, source)].assign(strategy=a),
                      runs[_from(runs, "")].assign(strategy=b)])
    if both.empty:
        return {}, None
    words = {"ahead": "ahead of", "behind": "behind", "level": "level with"}
    return sizes_sentence(
        both, a, b,
        f"On {corpus_name(target)}, {name_of(strategy)} with {SOURCE_LABELS} labels per class "
        f"of {corpus_name(source)} added to the target's", "the target's labels alone", words)


def shift_readings(records: pd.DataFrame, source: str) -> list[Sentence]:
    """The shift sentence of each strategy, then each target's adaptation sentences."""
    records = clean(records)
    if records.empty:
        return []
    out = []
    strategies = sorted(set(records["strategy"]), key=lambda s: (s != "probe", s))
    for strategy in strategies:
        _, sentence = shift_sentence(records, source, strategy)
        if sentence is not None:
            out.append(sentence)
    for target in sorted(set(records["target"]) - {source}):
        for strategy in strategies:
            _, sentence = adapt_sentence(records, source, target, strategy)
            if sentence is not None:
                out.append(sentence)
    return out
