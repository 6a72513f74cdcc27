"""Settings of the LoRA lab's trade-off (`LabSettings`, link keys labels, seeds, ranks, layers):
the probe, fine-tuning and LoRA at each chosen rank on the lesson's small CNN, at one labelled-set
size, as one sweep. The merge check trains one run of the same settings (`merge_check`).

A frozen dataclass following `ui.experiments.SectionSettings`: read from a link with a notice
for every value it cannot use, written back to a link, turned into the engine's `SweepSpec`.
Not here: the form and the panels (`ui.lora`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Mapping

from engine.core.strategies import lora_layer_names, lora_name
from engine.experiments.lora_merge import MergeCheckConfig
from engine.experiments.sweep import SweepSpec
from ui.experiments import QueryReader

RANK_CHOICES = (1, 2, 4, 8, 16)  # ranks the trade-off sweep offers
LABEL_CHOICES = (1, 2, 5, 10, 20, 50)  # one labelled-set size per trade-off


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
            if len(labels) == 1 and labels[0] in {str(k) for k in LABEL_CHOICES}:
                fields["labels_per_class"] = int(labels[0])
            else:
                query.notices.append("the link's labels per class must be one of "
                                     f"{', '.join(map(str, LABEL_CHOICES))}; using the default")
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

    def experiment(self) -> SweepSpec:
        """The trade-off as one sweep: probe, fine-tuning and LoRA at each rank, one size."""
        return SweepSpec(strategies=self.strategies(), labels_per_class=(self.labels_per_class,),
                         seeds=self.seeds)

    def merge_check(self, rank: int) -> MergeCheckConfig:
        """The merge check of LoRA at `rank` on these settings' layers and labelled-set size."""
        return MergeCheckConfig(lora_name(rank, self.layers), self.labels_per_class)


def _canonical_layers(layers) -> tuple[str, ...]:
    """Chosen layers in the network's order; () when they are all of them."""
    known = lora_layer_names()
    chosen = tuple(k for k in known if k in layers)
    return () if chosen == known else chosen
