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

import pandas as pd

from engine.core.backbones import block_count, count_parameters, get_backbone
from engine.core.datasets import labels_list_text, labels_text, parse_labels_value
from engine.core.store import ResultStore
from engine.core.strategies import get_strategy
from engine.core.train import TrainBudget
from engine.experiments.lessons.curve_sets import Curve, curve_records, records_of
from engine.experiments.readings import Sentence
from engine.experiments.readings.common import (TOO_FEW, clean, group_by_verdict, sizes_list,
                                               sizes_sentence)
from engine.experiments.readings.depth import copy_readings, freeze_readings
from engine.experiments.sweep import MAX_SEEDS, SweepGroup, SweepSpec
from engine.experiments.lessons.links import LABEL_CHOICES, QueryReader

BACKBONE = "small_cnn"
SOURCE = SweepSpec().source  # every sweep here starts from the small CNN pretrained on MNIST
BLOCKS = block_count(BACKBONE)  # k runs from 0 (no block) to BLOCKS (every block)
SEED_CHOICES = (1, 2, 3, 5)
OFFERED = (f"the link's labels per class and seeds are not ones this lesson offers (labels per "
           f"class: one of {', '.join(map(labels_text, LABEL_CHOICES))}; seeds: one of "
           f"{', '.join(map(str, SEED_CHOICES))}); showing the default")


@functools.lru_cache(maxsize=128)  # built once per settings: a page rerun asks several times
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

    def records(self, store: ResultStore) -> pd.DataFrame:
        """Both sweeps' stored runs, one frame."""
        return records_of(self.specs(), store)

    def readings(self, store: ResultStore) -> list[Sentence]:
        """Freeze depth (the best depth against the others), then the copied blocks."""
        records = self.records(store)
        return [*freeze_readings(records, trainable_weights), *copy_readings(records)]

    def experiment(self) -> SweepGroup:
        """Both sweeps as one job, freeze depth first."""
        return SweepGroup(self.specs())


# ---- Does a lower fine-tuning learning rate help at few labels? ---------------------------------

LOWER_RATES = (1e-4, 3e-4, 1e-3)  # lower head rates offered (the pretrained layers take 0.1 x)
LR_LABELS = (1, 2, 5, 10, 20)  # few labels: where the question is asked
LR_WORDS = {"ahead": "ahead of", "behind": "behind", "level": "level with"}


@dataclass(frozen=True)
class LearningRateSettings:
    """Fine-tuning from MNIST at the lessons' learning rate against fine-tuning at a lower one,
    at a few labelled-set sizes: two sweeps that differ only in their budget's `lr`."""

    PARAMS: ClassVar[tuple[str, ...]] = ("lr_low", "lr_labels", "lr_seeds")

    lower: float = 1e-3  # the lower rate of the new head, one of LOWER_RATES
    labels_per_class: tuple[int, ...] = LR_LABELS  # sizes compared, among LR_LABELS
    seeds: int = 3  # runs per point (the rule calls nothing under 3)

    def __post_init__(self):
        if self.lower not in LOWER_RATES:
            raise ValueError(f"the lower rate must be one of {', '.join(f'{r:g}' for r in LOWER_RATES)}")
        labels = tuple(sorted(set(self.labels_per_class)))
        if not labels or any(k not in LR_LABELS for k in labels):
            raise ValueError(f"labels per class must be among {labels_list_text(LR_LABELS)}")
        if isinstance(self.seeds, bool) or not isinstance(self.seeds, int) or not 1 <= self.seeds <= MAX_SEEDS:
            raise ValueError(f"seeds must be a whole number from 1 to {MAX_SEEDS}")
        object.__setattr__(self, "labels_per_class", labels)

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["LearningRateSettings", list[str]]:
        reader, default = QueryReader(params), cls()
        return cls(reader.numbers("lr_low", LOWER_RATES, (default.lower,))[0],
                   reader.labels("lr_labels", LR_LABELS, default.labels_per_class),
                   reader.integer("lr_seeds", 1, MAX_SEEDS, default.seeds)), reader.notices

    def to_query(self) -> dict[str, str]:
        return {"lr_low": f"{self.lower:g}", "lr_labels": labels_list_text(self.labels_per_class),
                "lr_seeds": str(self.seeds)}

    def specs(self) -> tuple[SweepSpec, SweepSpec]:
        """The lessons' fine-tuning (its runs are Transfer curves' own), then the lower rate."""
        common = dict(strategies=("finetune",), labels_per_class=self.labels_per_class,
                      seeds=self.seeds)
        return SweepSpec(**common), SweepSpec(budget=TrainBudget(lr=self.lower), **common)

    def experiment(self) -> SweepGroup:
        return SweepGroup(self.specs())

    def curves(self) -> tuple[Curve, Curve]:
        usual = TrainBudget().lr
        return (Curve(f"Fine-tune at lr {usual:g} (the lessons')", SOURCE, "finetune", lr=usual),
                Curve(f"Fine-tune at lr {self.lower:g}", SOURCE, "finetune", lr=self.lower))

    def records(self, store: ResultStore) -> pd.DataFrame:
        """Both rates' stored runs, each curve's `strategy` its legend entry."""
        return curve_records(self.specs(), self.curves(), store)

    def readings(self, store: ResultStore) -> list[Sentence]:
        """The lower rate against the lessons' at every size both have (Holm together), and
        what the call means."""
        return self.read(self.records(store))

    def read(self, records: pd.DataFrame) -> list[Sentence]:
        """`readings` of records already read (`records`)."""
        usual, lower = (c.label for c in self.curves())
        records = clean(records)
        calls, verdict = sizes_sentence(records, lower, usual, f"Fine-tuning at lr {self.lower:g}",
                                        f"fine-tuning at lr {TrainBudget().lr:g}", LR_WORDS)
        if verdict is None:
            return []
        groups = group_by_verdict(calls)
        said = [verdict]
        if groups["ahead"]:
            said.append(Sentence(
                f"At {sizes_list(groups['ahead'])} the smaller steps paid off. A likely reason: "
                "with so few labelled images, large steps pull the pretrained weights towards "
                "whatever separates those few examples, away from what pretraining learned."))
        if groups["behind"]:
            said.append(Sentence(
                f"At {sizes_list(groups['behind'])} the lower rate fell behind. Both rates take "
                "the same number of steps, so a likely reason is that the smaller steps had not "
                "yet fitted the target within that budget."))
        if not groups["ahead"] and not groups["behind"]:
            said.append(Sentence(
                "This run shows neither rate ahead at any size compared"
                + (f" ({TOO_FEW} at {sizes_list(groups['too few'])})" if groups["too few"] else "")
                + "; more seeds narrow the intervals."))
        return said


LESSON = "depth"
SECTIONS = {"depth": DepthSettings, "learning_rate": LearningRateSettings}
