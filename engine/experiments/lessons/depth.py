"""The "How much of the network to train" lesson's settings and the two sweeps they run.

Both sweeps train at one labels-per-class value on the small CNN pretrained on MNIST: freeze
depth (`partial:0` .. `partial:<all>`, the last k blocks fine-tuned) and layer transferability
after Yosinski et al. (2014) (`copy-frozen:k`, `copy-tuned:k`: the first k blocks copied, the rest
re-initialised, against training from scratch). `DepthSettings` follows
`ui.kit.section.SectionSettings` (link keys `labels` and `seeds`) and runs both sweeps as one
`SweepGroup`. Nothing here draws or trains (`ui.lessons.depth` draws).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Mapping

from engine.core.backbones import block_count, count_parameters, get_backbone
from engine.core.datasets import labels_list_text, labels_text, parse_labels_value
from engine.core.store import ResultStore
from engine.core.strategies import get_strategy
from engine.experiments.lessons.curve_sets import records_of
from engine.experiments.readings import Sentence
from engine.experiments.readings.depth import copy_readings, freeze_readings
from engine.experiments.sweep import DEFAULT_LABELS, SweepGroup, SweepSpec
from engine.experiments.lessons.links import QueryReader

BACKBONE = "small_cnn"
BLOCKS = block_count(BACKBONE)  # k runs from 0 (no block) to BLOCKS (every block)
LABEL_CHOICES = DEFAULT_LABELS  # labelled-set sizes the form offers (ALL_LABELS is "all")
SEED_CHOICES = (1, 2, 3, 5)
OFFERED = (f"the link's labels per class and seeds are not ones this lesson offers (labels per "
           f"class: one of {', '.join(map(labels_text, LABEL_CHOICES))}; seeds: one of "
           f"{', '.join(map(str, SEED_CHOICES))}); showing the default")


def depth_specs(labels: int, seeds: int) -> tuple[SweepSpec, SweepSpec]:
    """Freeze depth (the last k blocks fine-tuned) and copied layers (the first k copied)."""
    freeze = SweepSpec(strategies=tuple(f"partial:{k}" for k in range(BLOCKS + 1)),
                       labels_per_class=(labels,), seeds=seeds)
    copy = SweepSpec(strategies=("scratch", *(f"copy-frozen:{k}" for k in range(1, BLOCKS + 1)),
                                 *(f"copy-tuned:{k}" for k in range(1, BLOCKS + 1))),
                     labels_per_class=(labels,), seeds=seeds)
    return freeze, copy


@functools.lru_cache(maxsize=64)
def trainable_weights(strategy: str) -> int:
    """Exact weights a strategy trains on the small CNN with a 10-class head (at the end of
    training, for a schedule)."""
    model = get_backbone(BACKBONE).build(10)
    get_strategy(strategy).param_groups(model, 1e-3, 1e-4)
    hook = get_strategy(strategy).schedule(model, 100, 1)
    for step in range(100 if hook else 0):  # play the schedule to its end
        hook(step, 100)
    return count_parameters(model)[0]


@dataclass(frozen=True)
class DepthSettings:
    PARAMS: ClassVar[tuple[str, ...]] = ("labels", "seeds")

    labels_per_class: int = 5  # the one labelled-set size of both sweeps (ALL_LABELS: all)
    seeds: int = 3  # runs per point, one of SEED_CHOICES (the rule calls nothing under 3)

    def __post_init__(self):
        if self.labels_per_class not in LABEL_CHOICES:
            raise ValueError(f"labels per class must be one of {labels_list_text(LABEL_CHOICES)}")
        if self.seeds not in SEED_CHOICES:
            raise ValueError(f"seeds must be one of {', '.join(map(str, SEED_CHOICES))}")

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["DepthSettings", list[str]]:
        """A link's settings: both values, each one this lesson offers, or else the default
        with one notice."""
        if not any(k in params for k in cls.PARAMS):
            return cls(), []
        reader = QueryReader(params)
        labels = reader.choice("labels", tuple(map(labels_text, LABEL_CHOICES)), None)
        seeds = reader.choice("seeds", tuple(map(str, SEED_CHOICES)), None)
        if labels is None or seeds is None or reader.notices:
            return cls(), [OFFERED]
        return cls(parse_labels_value(labels), int(seeds)), []

    def to_query(self) -> dict[str, str]:
        return {"labels": labels_text(self.labels_per_class), "seeds": str(self.seeds)}

    def specs(self) -> tuple[SweepSpec, SweepSpec]:
        return depth_specs(self.labels_per_class, self.seeds)

    def readings(self, store: ResultStore) -> list[Sentence]:
        """Freeze depth (the best depth against the others), then the copied blocks."""
        records = records_of(self.specs(), store)
        return [*freeze_readings(records, trainable_weights), *copy_readings(records)]

    def experiment(self) -> SweepGroup:
        """Both sweeps as one job, freeze depth first."""
        return SweepGroup(self.specs())



LESSON = "depth"
SECTIONS = {"depth": DepthSettings}
