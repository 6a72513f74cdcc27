"""Settings of the LoRA lab's trade-off (`LabSettings`, link keys labels, seeds, ranks, layers):
the probe, fine-tuning and LoRA at each chosen rank on the lesson's small CNN, at one labelled-set
size, as one sweep. The merge check trains one run of the same settings (`merge_check`).

A frozen dataclass following `ui.kit.section.SectionSettings`: read from a link with a notice
for every value it cannot use, written back to a link, turned into the engine's `SweepSpec`.
Not here: the form and the panels (`ui.lessons.lora`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Mapping

import pandas as pd

from engine.core.store import ResultStore
from engine.core.strategies import lora_layer_names, lora_name
from engine.experiments.lora_merge import MergeCheckConfig, stored_check
from engine.experiments.lora_presets import strategy_parameters
from engine.experiments.readings import Sentence
from engine.experiments.readings.lora import tradeoff_readings
from engine.experiments.sweep import SweepSpec, stored_records
from engine.experiments.lessons.links import COUNTED_LABELS, QueryReader

RANK_CHOICES = (1, 2, 4, 8, 16)  # ranks the trade-off sweep offers


@dataclass(frozen=True)
class LabSettings:
    PARAMS: ClassVar[tuple[str, ...]] = ("labels", "seeds", "ranks", "layers")

    labels_per_class: int = 10  # the one labelled-set size of the trade-off
    seeds: int = 3  # runs per point
    ranks: tuple[int, ...] = RANK_CHOICES  # the LoRA ranks trained
    layers: tuple[str, ...] = ()  # the small CNN's layers LoRA wraps; empty: every one

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["LabSettings", list[str]]:
        query, fields, default = QueryReader(params), {}, cls()
        labels = query.items("labels")
        if labels is not None:
            if len(labels) == 1 and labels[0] in {str(k) for k in COUNTED_LABELS}:
                fields["labels_per_class"] = int(labels[0])
            else:
                query.notices.append("the link's labels per class must be one of "
                                     f"{', '.join(map(str, COUNTED_LABELS))}; using the default")
        fields["seeds"] = query.seeds("seeds", default.seeds)
        ranks = query.items("ranks")
        if ranks is not None:
            if ranks and all(r in {str(k) for k in RANK_CHOICES} for r in ranks):
                fields["ranks"] = tuple(sorted({int(r) for r in ranks}))
            else:
                query.notices.append(f"the link's ranks are not all among "
                                     f"{', '.join(map(str, RANK_CHOICES))}; using the default")
        layers, known = query.items("layers"), lora_layer_names()
        if layers is not None:
            if layers and all(k in known for k in layers):
                fields["layers"] = _canonical_layers(layers)
            else:
                query.notices.append(f"the link's layers are not all among {', '.join(known)}; "
                                     "using all")
        return replace(default, **fields), query.notices

    @classmethod
    def from_form(cls, labels_per_class, seeds, ranks, layers) -> "LabSettings":
        """Settings from the form's values; ValueError says what is wrong."""
        if not ranks:
            raise ValueError("choose at least one LoRA rank")
        if not layers:
            raise ValueError("choose at least one layer for LoRA")
        return cls(int(labels_per_class), int(seeds), tuple(sorted(set(ranks))), _canonical_layers(layers))

    def strategies(self) -> tuple[str, ...]:
        return ("probe", "finetune", *(lora_name(r, self.layers) for r in self.ranks))

    def to_query(self) -> dict[str, str]:
        return {"labels": str(self.labels_per_class), "seeds": str(self.seeds),
                "ranks": ",".join(map(str, self.ranks)),
                "layers": ",".join(self.layers or lora_layer_names())}

    def records(self, store: ResultStore) -> pd.DataFrame:
        """The sweep's stored runs."""
        return stored_records(self.experiment(), store)

    def readings(self, store: ResultStore) -> list[Sentence]:
        """Accuracy against trainable parameters: LoRA at each rank, the probe, fine-tuning."""
        return tradeoff_readings(self.records(store),
                                 lambda s: strategy_parameters(s)[0], strategy_parameters("finetune")[1])

    def experiment(self) -> SweepSpec:
        """The trade-off as one sweep: probe, fine-tuning and LoRA at each rank, one size."""
        return SweepSpec(strategies=self.strategies(), labels_per_class=(self.labels_per_class,),
                         seeds=self.seeds)

    def merge_check(self, rank: int) -> MergeCheckConfig:
        """The merge check of LoRA at `rank` on these settings' layers and labelled-set size."""
        return MergeCheckConfig(lora_name(rank, self.layers), self.labels_per_class)


@dataclass(frozen=True)
class MergeSettings:
    """The merge check: one LoRA run of the trade-off's settings at one rank, merged into W."""

    PARAMS: ClassVar[tuple[str, ...]] = ("merge_rank",)

    lab: LabSettings = field(default_factory=LabSettings)  # layers and labelled-set size
    rank: int = 4  # the LoRA rank trained and merged, one of RANK_CHOICES

    def __post_init__(self):
        if self.rank not in RANK_CHOICES:
            raise ValueError(f"the rank must be one of {', '.join(map(str, RANK_CHOICES))}")

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["MergeSettings", list[str]]:
        """The link's trade-off settings (their notices are the trade-off section's) and rank."""
        lab, _ = LabSettings.from_query(params)
        reader = QueryReader(params)
        rank = int(reader.choice("merge_rank", tuple(map(str, RANK_CHOICES)), "4"))
        return cls(lab, rank), reader.notices

    def to_query(self) -> dict[str, str]:
        return {"merge_rank": str(self.rank)}

    def following(self, lab: LabSettings) -> "MergeSettings":
        """This rank's check on `lab` (the trade-off section above it on the page)."""
        return replace(self, lab=lab)

    def experiment(self) -> MergeCheckConfig:
        return self.lab.merge_check(self.rank)

    def records(self, store: ResultStore):
        """The stored check (a MergeCheck), or None before the first."""
        return stored_check(self.experiment(), store)

    def readings(self, store: ResultStore) -> list[Sentence]:
        """The merge check measures one run, so it calls no difference: no readings."""
        return []


def _canonical_layers(layers) -> tuple[str, ...]:
    """Chosen layers in the network's order; () when they are all of them."""
    known = lora_layer_names()
    chosen = tuple(k for k in known if k in layers)
    return () if chosen == known else chosen


LESSON = "lora_lab"
SECTIONS = {"tradeoff": LabSettings, "merge": MergeSettings}
