"""The "Which source?" lesson's settings and the comparison they run.

The comparison is up to three `SweepSpec`s at the same labels per class and seeds, run as one
`SweepGroup`: the small CNN pretrained on MNIST (scratch and probe), an ImageNet network (probe;
only when its weights are on disk, at the input size chosen) and the small CNN left untrained
(probe). `SourceSettings` follows `ui.kit.section.SectionSettings`: it reads and writes the link
(`labels`, `seeds`, `target`, `imagenet`, `size`) and names the group. `EarlierBlockSettings`
adds `block`: the same ImageNet network probed on an earlier block's output and on its last.
The verdicts on its runs are `engine.experiments.readings.sources`.
Nothing here draws or trains (`ui.lessons.sources` draws).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Mapping

import pandas as pd

from engine.core.backbones import IMAGENET_INPUT, IMAGENET_SIZES, block_count, feature_weights
from engine.core.datasets import ALL_LABELS, DATASETS, USER_PREFIX, labels_list_text
from engine.core.imagenet import IMAGENET_MODELS, weights_status
from engine.core.remote import REMOTE_DATASETS, missing_files
from engine.core.store import ResultStore
from engine.core.userdata import list_uploads
from engine.experiments.readings import Sentence
from engine.experiments.readings.sources import SourceFacts, block_reading, source_reading
from engine.experiments.sweep import (IMAGENET, MAX_SEEDS, UNTRAINED, SweepGroup,
                                      SweepSpec)
from engine.experiments.lessons.curve_sets import Curve, curve_records
from engine.experiments.lessons.links import LABEL_CHOICES, QueryReader

IMAGENET_BACKBONE = "efficientnet_lite0"  # the photo network that works offline
DEFAULT_TARGET = "uci_digits"
DIGIT_TARGETS = ("uci_digits", "mnist", "svhn")  # targets whose classes are the ten digits


def photo_title(imagenet: str) -> str:
    """'EfficientNet-Lite0': an ImageNet network's name without its details."""
    return IMAGENET_MODELS[imagenet].title.split(" (")[0]


def curves_for(imagenet: str = IMAGENET_BACKBONE,
               input_size: int = IMAGENET_INPUT) -> tuple[Curve, ...]:
    """The comparison's curves, in legend order, with `imagenet` as the photo network, fed
    `input_size` px images."""
    title = photo_title(imagenet)
    return (
        Curve("From scratch (small CNN, no pretraining)", "mnist5k", "scratch"),
        Curve("Probe on the small CNN pretrained on MNIST digits", "mnist5k", "probe"),
        Curve(f"Probe on {title} trained on ImageNet photos ({input_size} px input)", IMAGENET,
              "probe"),
        Curve("Probe on the small CNN left untrained (random weights)", UNTRAINED, "probe"),
    )


CURVES = curves_for()


def comparison_specs(labels: tuple[int, ...], seeds: int, target: str = DEFAULT_TARGET,
                     imagenet: str = IMAGENET_BACKBONE,
                     input_size: int = IMAGENET_INPUT) -> list[SweepSpec]:
    """The sweeps of the comparison (on the default target, MNIST's shares its runs with the
    curves lesson); the ImageNet one, fed `input_size` px images, only when `imagenet`'s
    weights are on disk."""
    common = dict(target=target, labels_per_class=labels, seeds=seeds)
    specs = [SweepSpec(strategies=("scratch", "probe"), **common),
             SweepSpec(source=UNTRAINED, strategies=("probe",), **common)]
    if weights_status(imagenet)[0]:
        specs.insert(1, SweepSpec(source=IMAGENET, backbone=imagenet, strategies=("probe",),
                                  input_size=input_size, **common))
    return specs


def target_choices() -> dict[str, str]:
    """Targets this server can use now: name -> title (built-in digits, downloaded datasets,
    uploads)."""
    choices = {DEFAULT_TARGET: DATASETS[DEFAULT_TARGET].title}
    choices.update({name: info.title for name, info in REMOTE_DATASETS.items()
                    if not missing_files(name)})
    choices.update({f"{USER_PREFIX}{u.digest}": f"Your upload: {u.name}" for u in list_uploads()})
    return choices


def _named(reader: QueryReader, key: str, known, default: str, notice: str) -> str:
    """The link's `key` when it is one of `known`, else `default` and `notice` (which never
    repeats the value: a target may be a long upload digest)."""
    value = reader.params.get(key)
    if value is None:
        return default
    if value in known:
        return value
    reader.notices.append(notice)
    return default


@dataclass(frozen=True)
class SourceSettings:
    PARAMS: ClassVar[tuple[str, ...]] = ("labels", "seeds", "target", "imagenet", "size")

    labels_per_class: tuple[int, ...] = (1, 2, 5, 10, 20, 50)  # sizes of the labelled target set
    seeds: int = 3  # runs per point
    target: str = DEFAULT_TARGET  # the dataset every source is probed on
    imagenet: str = IMAGENET_BACKBONE  # the ImageNet network whose features are probed
    input_size: int = IMAGENET_INPUT  # side in pixels of the images the ImageNet network sees

    def __post_init__(self):
        labels = tuple(sorted(set(self.labels_per_class), key=lambda k: (k == ALL_LABELS, k)))
        if not labels:
            raise ValueError("choose at least one labelled-set size")
        if any(k not in LABEL_CHOICES for k in labels):
            raise ValueError(f"labels per class must be among {labels_list_text(LABEL_CHOICES)}")
        seeds = self.seeds
        if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
            raise ValueError(f"seeds must be a whole number from 1 to {MAX_SEEDS}")
        if self.imagenet not in IMAGENET_MODELS:
            raise ValueError(f"{self.imagenet!r} is not an ImageNet network this app knows")
        if self.input_size not in IMAGENET_SIZES:
            raise ValueError(f"the ImageNet input size must be one of "
                             f"{', '.join(map(str, IMAGENET_SIZES))} pixels")
        object.__setattr__(self, "labels_per_class", labels)

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["SourceSettings", list[str]]:
        reader, default = QueryReader(params), cls()
        settings = cls(
            labels_per_class=reader.labels("labels", LABEL_CHOICES, default.labels_per_class),
            seeds=reader.integer("seeds", 1, MAX_SEEDS, default.seeds),
            target=_named(reader, "target", target_choices(), default.target,
                          "the link's target is not a dataset this server has; using the UCI digits"),
            imagenet=_named(reader, "imagenet", IMAGENET_MODELS, default.imagenet,
                            "the link's ImageNet network is not one this app knows; using "
                            "EfficientNet-Lite0"),
            input_size=int(reader.choice("size", tuple(map(str, IMAGENET_SIZES)),
                                         str(default.input_size))))
        return settings, reader.notices

    def to_query(self) -> dict[str, str]:
        return {"labels": labels_list_text(self.labels_per_class), "seeds": str(self.seeds),
                "target": self.target, "imagenet": self.imagenet, "size": str(self.input_size)}

    def specs(self) -> list[SweepSpec]:
        return comparison_specs(self.labels_per_class, self.seeds, self.target, self.imagenet,
                                self.input_size)

    def experiment(self) -> SweepGroup:
        """The comparison as one job: its sweeps one after another."""
        return SweepGroup(tuple(self.specs()))

    def curves(self) -> tuple[Curve, ...]:
        return curves_for(self.imagenet, self.input_size)

    def facts(self) -> SourceFacts:
        """What the reading says about the two networks beside its numbers."""
        return SourceFacts(photo=photo_title(self.imagenet), size=self.input_size,
                           big=feature_weights(self.imagenet), small=feature_weights("small_cnn"),
                           digits=self.target in DIGIT_TARGETS)

    def records(self, store: ResultStore) -> pd.DataFrame:
        """The stored runs the curves draw, each `strategy` its curve's legend entry."""
        return curve_records(self.specs(), self.curves(), store)

    def readings(self, store: ResultStore) -> list[Sentence]:
        """The probe on MNIST features against the ImageNet probe at every size."""
        curves, records = self.curves(), self.records(store)
        reading = source_reading(records, curves[1].label, curves[2].label, self.facts())
        return [] if reading is None else [Sentence(f"**{reading.heading}**"), *reading.sentences]

    def on_known_target(self, targets: Mapping[str, str]) -> "SourceSettings":
        """These settings, moved to the UCI digits when their target is no longer on this
        server (an upload deleted since this session ran it)."""
        return self if self.target in targets else replace(self, target=DEFAULT_TARGET)


def default_block(imagenet: str) -> int:
    """The earlier block a section probes unless told otherwise: two thirds of the way up
    (block 7 of EfficientNet-Lite0's 11: its fifth stage, 112 channels)."""
    return block_count(imagenet) * 2 // 3


def block_choices(imagenet: str) -> tuple[int, ...]:
    """The blocks an earlier-block probe may read: every one but the last (the plain probe)."""
    return tuple(range(1, block_count(imagenet)))


@dataclass(frozen=True)
class EarlierBlockSettings:
    """The ImageNet network of a comparison probed twice: on an earlier block and on its last."""

    PARAMS: ClassVar[tuple[str, ...]] = SourceSettings.PARAMS + ("block",)

    comparison: SourceSettings = field(default_factory=SourceSettings)  # target, sizes, network
    block: int = 7  # the earlier feature block probed, from 1 (default_block of EfficientNet-Lite0)

    def __post_init__(self):
        if self.block not in block_choices(self.comparison.imagenet):
            raise ValueError(f"the earlier block must be one of 1 to "
                             f"{block_count(self.comparison.imagenet) - 1}")

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["EarlierBlockSettings", list[str]]:
        """The link's comparison and block; the notices are the block's own (the comparison's
        section reports its settings' notices)."""
        comparison, _ = SourceSettings.from_query(params)
        reader = QueryReader(params)
        blocks = block_choices(comparison.imagenet)
        block = reader.integer("block", blocks[0], blocks[-1], default_block(comparison.imagenet))
        return cls(comparison, block), reader.notices

    def following(self, comparison: SourceSettings) -> "EarlierBlockSettings":
        """This block probed on `comparison` (the section above it on the page); the network's
        default block when this one is not a block of the comparison's network."""
        block = self.block if self.block in block_choices(comparison.imagenet) else \
            default_block(comparison.imagenet)
        return EarlierBlockSettings(comparison, block)

    def to_query(self) -> dict[str, str]:
        return {**self.comparison.to_query(), "block": str(self.block)}

    def strategy(self) -> str:
        return f"probe:block{self.block}"

    def spec(self) -> SweepSpec:
        c = self.comparison
        return SweepSpec(source=IMAGENET, backbone=c.imagenet, target=c.target,
                         strategies=("probe", self.strategy()), labels_per_class=c.labels_per_class,
                         seeds=c.seeds, input_size=c.input_size)

    def records(self, store: ResultStore) -> pd.DataFrame:
        """The stored runs of both probes, each `strategy` its curve's legend entry."""
        return curve_records([self.spec()], self.curves(), store)

    def readings(self, store: ResultStore) -> list[Sentence]:
        """The probe on the earlier block against the probe on the last one."""
        curves, records = self.curves(), self.records(store)
        reading = block_reading(records, curves[0].label, curves[1].label, self.block,
                                photo_title(self.comparison.imagenet))
        return [] if reading is None else [Sentence(f"**{reading.heading}.**"), *reading.sentences]

    def experiment(self) -> SweepSpec:
        """One sweep; its last-block probe runs are the comparison's own (the same run keys)."""
        return self.spec()

    def curves(self) -> tuple[Curve, ...]:
        n = block_count(self.comparison.imagenet)
        return (Curve(f"Probe on the last block ({n} of {n})", IMAGENET, "probe"),
                Curve(f"Probe on block {self.block} of {n}", IMAGENET, self.strategy()))


LESSON = "which_source"
SECTIONS = {"comparison": SourceSettings, "earlier_block": EarlierBlockSettings}
