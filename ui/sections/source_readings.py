"""What the "Which source?" page says about its own runs: verdicts read by the tie rule.

Pure functions from stored runs (curve labels in `strategy`, as `ui.curve_sets.curve_records`
gives them) to a heading and a paragraph: which source's probe won at the smallest labelled set
(or a tie, or a result against the lesson's expectation, said plainly), and whether a probe on
an earlier block beat the probe on the last one. Every verdict comes from
`engine.experiments.stats.difference` and its `TIE_RULE`. Nothing here draws or trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pandas as pd

from engine.experiments.stats import Difference, seeds_text
from ui.sections.sources import majority_sign, pair_differences, smallest_difference

NATIVE_SIZE = 224  # the side EfficientNet-Lite0 (and every ImageNet network here) was trained at


@dataclass(frozen=True)
class Reading:
    heading: str  # the subheading over the paragraph
    text: str  # markdown: the verdict and why


@dataclass(frozen=True)
class SourceFacts:
    photo: str  # the ImageNet network's short title, e.g. "EfficientNet-Lite0"
    size: int  # the side in pixels it was fed in these runs
    big: int  # weights in its feature layers
    small: int  # weights in the small CNN's feature layers
    digits: bool  # the target is the UCI digits (the lesson's default)


def per_class(k: int) -> str:
    return f"{k} label{'s' if k != 1 else ''} per class"


def gap_text(diff: Difference) -> str:
    return f"{abs(diff.gap):.1f} points ({seeds_text(diff.seeds)})"


def size_caveat(facts: SourceFacts) -> str:
    if facts.size >= NATIVE_SIZE:
        return (f" {facts.photo} saw the images at its native {NATIVE_SIZE} px, so a size "
                "mismatch does not explain this result.")
    return (f" {facts.photo} saw the images at {facts.size} px, under its native {NATIVE_SIZE} "
            "px: its filters met shapes at a scale they were not trained on, so part of the gap "
            f"may be that mismatch. Run it at {NATIVE_SIZE} px to see how much.")


WHY_MNIST_WINS = (
    "{photo}'s feature layers hold {big:,} weights, trained on more than a million labelled "
    "photos; the small CNN's hold {small:,}, trained on 5,000 digits. A linear probe can only "
    "reweight the features it is given. The MNIST network's last layer already separates "
    "strokes, loops and digit shapes, so a few examples per class are enough to point the probe "
    "at the right ones; ImageNet's last layer describes fur, wheels, textures and colour in "
    "natural photographs, where the digit classes are not laid out apart.")
WHY_PHOTOS_WIN = (
    "{photo}'s feature layers hold {big:,} weights learnt from a million photographs; the small "
    "CNN's hold {small:,} learnt from 5,000 grey digits. Colour, texture and natural shapes "
    "favour ImageNet's features, pen strokes on a plain background favour the digit network's; "
    "a source helps as far as its features separate the target's classes, which is what the "
    "probe measures.")


def source_reading(records: pd.DataFrame, mnist: str, photo_curve: str,
                   facts: SourceFacts) -> Optional[Reading]:
    """The probe on MNIST features (curve `mnist`) against the ImageNet probe (`photo_curve`)
    at the smallest labelled-set size both have; None when either has no runs."""
    found = smallest_difference(pair_differences(records, mnist, photo_curve))
    if found is None:
        return None
    k, diff = found
    at = f"At {per_class(k)}"
    why = (WHY_MNIST_WINS if diff.sign > 0 else WHY_PHOTOS_WIN).format(**facts.__dict__)
    if diff.sign > 0:
        verdict = (f"{at} the probe on MNIST features leads the {facts.photo} probe by "
                   f"{gap_text(diff)}. **Domain match matters more than size** in this run: "
                   "pretraining transfers what the source taught, and here the source that "
                   "looks like the target wins.")
        return Reading("Why the bigger network loses here", f"{verdict} {why}{size_caveat(facts)}")
    if diff.sign < 0:
        against = (" This goes against what the lesson expects on digits, where the digit "
                   "network's features match the target: in this run the bigger network's "
                   "features separated the digits better.") if facts.digits else ""
        verdict = (f"{at} the {facts.photo} probe leads the probe on MNIST features by "
                   f"{gap_text(diff)}.{against}")
        return Reading("Why the bigger network wins here", f"{verdict} {why}{size_caveat(facts)}")
    verdict = (f"{at} the probe on MNIST features and the {facts.photo} probe are level: the "
               f"{gap_text(diff)} gap is within the tie rule. This run shows neither that domain "
               "match beats size nor the opposite; more seeds may separate them.")
    return Reading("Reading the result: a tie", verdict + size_caveat(facts))


def block_reading(records: pd.DataFrame, last: str, earlier: str, block: int,
                  photo: str) -> Optional[Reading]:
    """The probe on block `block` (curve `earlier`) against the probe on the last block
    (`last`), over every labelled-set size both have; None when either has no runs."""
    diffs = pair_differences(records, earlier, last)
    if not diffs:
        return None
    signs = [d.sign for d in diffs.values()]
    count = (f"block {block} is ahead at {signs.count(1)} of {len(signs)} labelled-set sizes, "
             f"behind at {signs.count(-1)} and level at {signs.count(0)}")
    sign = majority_sign(diffs)
    if sign > 0:
        return Reading(f"Block {block} beats the last block here", (
            f"By the tie rule, {count}. CS231n's advice for a target far from the source holds "
            f"in this run: {photo}'s last blocks specialise in telling ImageNet's 1,000 classes "
            "apart, while earlier blocks respond to edges, strokes, blobs and simple textures, "
            "more generic features that a digit-like target can still use. A probe on them "
            "needs fewer labels to find the classes."))
    if sign < 0:
        return Reading("The last block beats the earlier one here", (
            f"By the tie rule, {count}. On this target the last block's more abstract features "
            f"still separate the classes better than block {block}'s generic ones: probing an "
            "earlier layer is a rule of thumb for distant targets, and this run does not bear it "
            "out."))
    return Reading("Earlier or last block: no clear winner", (
        f"By the tie rule, {count}: neither block is ahead at more sizes than the other, so this "
        "run does not say which layer to probe on this target."))
