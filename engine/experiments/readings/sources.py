"""The "Which source?" lesson's readings: the probe on MNIST features against the probe on an
ImageNet network's, and a probe on an earlier block against one on the last, at every
labelled-set size both have runs at (Holm-corrected together). Records carry curve labels in
`strategy` (as `engine.experiments.lessons.curve_sets.curve_records` gives them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pandas as pd

from engine.experiments.readings.common import (TOO_FEW, Sentence, clean, group_by_verdict,
                                                sizes_list, sizes_sentence)

NATIVE_SIZE = 224  # the side EfficientNet-Lite0 (and every ImageNet network here) was trained at


@dataclass(frozen=True)
class Reading:
    heading: str  # the subheading over the sentences
    sentences: tuple[Sentence, ...]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)


@dataclass(frozen=True)
class SourceFacts:
    photo: str  # the ImageNet network's short title, e.g. "EfficientNet-Lite0"
    size: int  # the side in pixels it was fed in these runs
    big: int  # weights in its feature layers
    small: int  # weights in the small CNN's feature layers
    digits: bool  # the target is a digit dataset (the lesson's default, the UCI digits)


def size_caveat(facts: SourceFacts) -> str:
    if facts.size >= NATIVE_SIZE:
        return (f"{facts.photo} saw the images at its native {NATIVE_SIZE} px, so a size "
                "mismatch does not explain this result.")
    return (f"{facts.photo} saw the images at {facts.size} px, under its native {NATIVE_SIZE} "
            "px: its filters met shapes at a scale they were not trained on, so part of any gap "
            f"may be that mismatch. Run it at {NATIVE_SIZE} px to see how much.")


WHY_MNIST_AHEAD = {
    True: ("{photo}'s feature layers hold {big:,} weights, trained on more than a million labelled "
           "photos; the small CNN's hold {small:,}, trained on 5,000 digits. A linear probe can only "
           "reweight the features it is given. The MNIST network's last layer already responds to "
           "strokes, loops and digit shapes, so a few examples per class can point the probe at the "
           "right ones; ImageNet's last layer describes fur, wheels, textures and colour in natural "
           "photographs, features in which digits of different classes need not lie apart."),
    False: ("{photo}'s feature layers hold {big:,} weights, trained on more than a million labelled "
            "photos; the small CNN's hold {small:,}, trained on 5,000 grey digits. A linear probe "
            "can only reweight the features it is given, and here the digit network's features "
            "separated this target's classes better: what a source teaches matters, not only how "
            "much."),
}
WHY_PHOTOS_AHEAD = (
    "{photo}'s feature layers hold {big:,} weights learnt from a million photographs; the small "
    "CNN's hold {small:,} learnt from 5,000 grey digits. Colour, texture and natural shapes "
    "favour ImageNet's features, pen strokes on a plain background favour the digit network's; "
    "a source helps as far as its features separate the target's classes, which is what the "
    "probe measures.")
WORDS = {"ahead": "ahead of", "behind": "behind", "level": "level with"}


def _heading(groups: dict, who: str) -> str:
    ahead, behind = groups["ahead"], groups["behind"]
    if ahead and behind:
        return "Which source leads depends on the labelled-set size"
    if ahead:
        return f"Why {who} loses here" if not (groups["level"] or groups["too few"]) else \
            f"Where {who} loses"
    if behind:
        return f"Why {who} wins here" if not (groups["level"] or groups["too few"]) else \
            f"Where {who} wins"
    if groups["level"]:
        return "Reading the result: no difference called"
    return f"Reading the result: {TOO_FEW}"


def source_reading(records: pd.DataFrame, mnist: str, photo_curve: str,
                   facts: SourceFacts) -> Optional[Reading]:
    """The probe on MNIST features (curve `mnist`) against the ImageNet probe (`photo_curve`)
    at every size both have; None when no size has both."""
    calls, verdict = sizes_sentence(clean(records), mnist, photo_curve,
                                    "The probe on MNIST features", f"the {facts.photo} probe", WORDS)
    if verdict is None:
        return None
    groups = group_by_verdict(calls)
    sentences = [verdict]
    fill = facts.__dict__
    if groups["ahead"]:
        sentences.append(Sentence(
            f"At {sizes_list(groups['ahead'])}, the source that looks like the target did better: "
            "**domain match mattered more than size** there. " + WHY_MNIST_AHEAD[facts.digits].format(**fill)))
    if groups["behind"]:
        against = (" On digits this goes against what the lesson expects, since the digit "
                   "network's features match the target." if facts.digits else "")
        sentences.append(Sentence(
            f"At {sizes_list(groups['behind'])}, the bigger network's features separated the "
            f"classes better.{against} " + WHY_PHOTOS_AHEAD.format(**fill)))
    if not groups["ahead"] and not groups["behind"]:
        sentences.append(Sentence(
            "This run shows neither that domain match beats size nor the opposite"
            + (f" ({TOO_FEW} at {sizes_list(groups['too few'])})" if groups["too few"] else "")
            + "; more seeds narrow the intervals."))
    sentences.append(Sentence(size_caveat(facts)))
    return Reading(_heading(groups, "the bigger network"), tuple(sentences))


def block_reading(records: pd.DataFrame, last: str, earlier: str, block: int,
                  photo: str) -> Optional[Reading]:
    """The probe on block `block` (curve `earlier`) against the probe on the last block
    (`last`), over every size both have; None when no size has both."""
    calls, verdict = sizes_sentence(clean(records), earlier, last, f"The probe on block {block}",
                                    "the probe on the last block", WORDS)
    if verdict is None:
        return None
    groups = group_by_verdict(calls)
    n, ahead, behind = len(calls), groups["ahead"], groups["behind"]
    if ahead and not behind and len(ahead) == n:
        heading = f"Block {block} is ahead at every size compared"
        why = (f"CS231n's advice for a target far from the source holds in this run: {photo}'s "
               "last blocks specialise in telling ImageNet's 1,000 classes apart, while earlier "
               "blocks respond to edges, strokes, blobs and simple textures, more generic features "
               "that a distant target can still use.")
    elif ahead and not behind:
        heading = f"Block {block} is ahead at {len(ahead)} of {n} sizes"
        why = (f"The advice to probe an earlier block shows at {sizes_list(ahead)} only; elsewhere "
               "this run does not separate the two blocks.")
    elif behind and not ahead:
        heading = (f"The last block is ahead at {len(behind)} of {n} sizes" if len(behind) < n
                   else "The last block is ahead at every size compared")
        why = (f"On this target the last block's more abstract features separated the classes "
               f"better than block {block}'s at {sizes_list(behind)}: probing an earlier layer is a "
               "rule of thumb for distant targets, and this run does not bear it out there.")
    elif ahead and behind:
        heading = "Earlier or last block: it depends on the size"
        why = (f"Block {block} is ahead at {sizes_list(ahead)} and behind at {sizes_list(behind)}: "
               "no single answer for this target.")
    else:
        heading = "Earlier or last block: no difference called"
        why = "This run does not say which layer to probe on this target."
    return Reading(heading, (verdict, Sentence(why)))
