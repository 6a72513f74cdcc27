"""The "Which source?" lesson's settings and the comparison they run.

The comparison is up to three `SweepSpec`s at the same labels per class and seeds, run as one
`SweepGroup`: the small CNN pretrained on MNIST (scratch and probe), an ImageNet network (probe;
only when its weights are on disk) and the small CNN left untrained (probe). `SourceSettings`
follows `ui.experiments.SectionSettings`: it reads and writes the link (`labels`, `seeds`,
`target`, `imagenet`) and names the group. Nothing here draws or trains (`ui.sources` draws).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Mapping

from engine.core.datasets import ALL_LABELS, DATASETS, USER_PREFIX, labels_list_text
from engine.core.imagenet import IMAGENET_MODELS, weights_status
from engine.core.remote import REMOTE_DATASETS, missing_files
from engine.core.userdata import list_uploads
from engine.experiments.sweep import (DEFAULT_LABELS, IMAGENET, MAX_SEEDS, UNTRAINED, SweepGroup,
                                      SweepSpec)
from ui.curve_sets import Curve
from ui.experiments import QueryReader

IMAGENET_BACKBONE = "efficientnet_lite0"  # the photo network that works offline
DEFAULT_TARGET = "uci_digits"
LABEL_CHOICES = DEFAULT_LABELS  # labelled-set sizes the form offers (ALL_LABELS is "all")


def curves_for(imagenet: str = IMAGENET_BACKBONE) -> tuple[Curve, ...]:
    """The comparison's curves, in legend order, with `imagenet` as the photo network."""
    title = IMAGENET_MODELS[imagenet].title.split(" (")[0]
    return (
        Curve("From scratch (small CNN, no pretraining)", "mnist5k", "scratch"),
        Curve("Probe on the small CNN pretrained on MNIST digits", "mnist5k", "probe"),
        Curve(f"Probe on {title} trained on ImageNet photos", IMAGENET, "probe"),
        Curve("Probe on the small CNN left untrained (random weights)", UNTRAINED, "probe"),
    )


CURVES = curves_for()


def comparison_specs(labels: tuple[int, ...], seeds: int, target: str = DEFAULT_TARGET,
                     imagenet: str = IMAGENET_BACKBONE) -> list[SweepSpec]:
    """The sweeps of the comparison (on the default target, MNIST's shares its runs with the
    curves lesson); the ImageNet one only when `imagenet`'s weights are on disk."""
    common = dict(target=target, labels_per_class=labels, seeds=seeds)
    specs = [SweepSpec(strategies=("scratch", "probe"), **common),
             SweepSpec(source=UNTRAINED, strategies=("probe",), **common)]
    if weights_status(imagenet)[0]:
        specs.insert(1, SweepSpec(source=IMAGENET, backbone=imagenet, strategies=("probe",),
                                  **common))
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
    PARAMS: ClassVar[tuple[str, ...]] = ("labels", "seeds", "target", "imagenet")

    labels_per_class: tuple[int, ...] = (1, 2, 5, 10, 20, 50)  # sizes of the labelled target set
    seeds: int = 3  # runs per point
    target: str = DEFAULT_TARGET  # the dataset every source is probed on
    imagenet: str = IMAGENET_BACKBONE  # the ImageNet network whose features are probed

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
                            "EfficientNet-Lite0"))
        return settings, reader.notices

    def to_query(self) -> dict[str, str]:
        return {"labels": labels_list_text(self.labels_per_class), "seeds": str(self.seeds),
                "target": self.target, "imagenet": self.imagenet}

    def specs(self) -> list[SweepSpec]:
        return comparison_specs(self.labels_per_class, self.seeds, self.target, self.imagenet)

    def experiment(self) -> SweepGroup:
        """The comparison as one job: its sweeps one after another."""
        return SweepGroup(tuple(self.specs()))

    def curves(self) -> tuple[Curve, ...]:
        return curves_for(self.imagenet)

    def on_known_target(self, targets: Mapping[str, str]) -> "SourceSettings":
        """These settings, moved to the UCI digits when their target is no longer on this
        server (an upload deleted since this session ran it)."""
        return self if self.target in targets else replace(self, target=DEFAULT_TARGET)
