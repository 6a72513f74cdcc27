"""The "Transfer on text" lesson's settings.

- `curves`: which corpus, strategies, labelled-set sizes and seeds; its experiment is a text
  sweep (`engine.experiments.text_sweep`: words from scratch, a linear probe on frozen MiniLM
  sentence features, LoRA, fine-tuning), read by the same rule as the image curves
  (`sweep_readings`).
- `shift`: domain shift: trained on one sentiment corpus, tested on the others, then adapted
  with a few of their labels (`TextShiftSpec`, read by `readings.text.shift_readings`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import pandas as pd

from engine.core.datasets import ALL_LABELS, labels_list_text, labels_text
from engine.core.store import ResultStore, records_frame
from engine.core.text import TEXT_DATASETS, is_text_dataset
from engine.experiments.lessons.links import QueryReader
from engine.experiments.readings.common import Sentence
from engine.experiments.readings.curves import sweep_readings
from engine.experiments.readings.lora import tradeoff_readings
from engine.experiments.readings.text import shift_readings
from engine.experiments.text_sweep import (DETERMINISTIC, SHIFT_ADDED, SHIFT_SOURCE, SHIFT_TARGETS,
                                           TEXT_LORA_RANKS, TEXT_STRATEGIES, TextShiftSpec,
                                           TextSweepSpec, lora_rank)

TEXT_LABEL_CHOICES = (1, 2, 5, 10, 20, 50, 100, ALL_LABELS)
_DEFAULT_LABELS = (1, 5, 20, 100, ALL_LABELS)


@dataclass(frozen=True)
class TextCurveSettings:
    PARAMS: ClassVar[tuple[str, ...]] = ("text_target", "text_strategies", "text_labels",
                                         "text_seeds")

    target: str = "amazon_reviews"  # the corpus (TEXT_DATASETS)
    strategies: tuple[str, ...] = DETERMINISTIC  # scratch and probe; lora, finetune tune MiniLM
    labels_per_class: tuple[int, ...] = _DEFAULT_LABELS  # the curves' points; 0 = all
    seeds: int = 3  # label draws per point ("all" is one run: the same pool every seed)

    def __post_init__(self):
        if not is_text_dataset(self.target):
            raise ValueError(f"the corpus is one of {', '.join(TEXT_DATASETS)} or sentences "
                             "uploaded to this server")
        if not self.labels_per_class or any(k not in TEXT_LABEL_CHOICES
                                            for k in self.labels_per_class):
            raise ValueError("labels per class are among "
                             f"{', '.join(labels_text(k) for k in TEXT_LABEL_CHOICES)}")
        spec = self.experiment()  # validates strategies and seeds
        object.__setattr__(self, "labels_per_class", spec.labels_per_class)
        object.__setattr__(self, "strategies", spec.strategies)

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["TextCurveSettings", list[str]]:
        reader, fields = QueryReader(params), {}
        target = params.get("text_target")
        if target is not None:
            if is_text_dataset(target):
                fields["target"] = target
            else:
                reader.notices.append(f"the link's corpus is not one of {', '.join(TEXT_DATASETS)} "
                                      "nor sentences uploaded to this server; "
                                      "using the default")
        strategies = reader.items("text_strategies")
        if strategies is not None:
            if strategies and all(s in TEXT_STRATEGIES for s in strategies):
                fields["strategies"] = tuple(strategies)
            else:
                reader.notices.append("the link's strategies are not all among "
                                      f"{', '.join(TEXT_STRATEGIES)}; using the default")
        labels = reader.items("text_labels")
        if labels is not None:
            allowed = {labels_text(k): k for k in TEXT_LABEL_CHOICES}
            if labels and all(k in allowed for k in labels):
                fields["labels_per_class"] = tuple(allowed[k] for k in labels)
            else:
                reader.notices.append("the link's labels per class are not all among "
                                      f"{', '.join(allowed)}; using the default")
        fields["seeds"] = reader.seeds("text_seeds", cls.seeds)
        return cls(**fields), reader.notices

    def to_query(self) -> dict[str, str]:
        return {"text_target": self.target, "text_strategies": ",".join(self.strategies),
                "text_labels": labels_list_text(self.labels_per_class),
                "text_seeds": str(self.seeds)}

    def experiment(self) -> TextSweepSpec:
        return TextSweepSpec(target=self.target, strategies=self.strategies,
                             labels_per_class=self.labels_per_class, seeds=self.seeds)

    def records(self, store: ResultStore) -> pd.DataFrame:
        """The sweep's stored runs."""
        return records_frame(store.get_many(u.key for u in self.experiment().units()))

    def readings(self, store: ResultStore) -> list[Sentence]:
        """The probe against words from scratch at every size (the stored runs)."""
        return sweep_readings(self.records(store))


SENTIMENT = ("movie_reviews", "amazon_reviews", "tweets", "nyt_editorials")  # shift between these
ADDED_CHOICES = (0, 1, 2, 5, 10, 20, 50, 100, 200)


@dataclass(frozen=True)
class TextShiftSettings:
    PARAMS: ClassVar[tuple[str, ...]] = ("shift_source", "shift_targets", "shift_strategies",
                                         "shift_added", "shift_seeds")

    source: str = SHIFT_SOURCE  # the corpus trained on (SOURCE_LABELS per class)
    targets: tuple[str, ...] = SHIFT_TARGETS  # the corpora tested on
    strategies: tuple[str, ...] = DETERMINISTIC
    added: tuple[int, ...] = SHIFT_ADDED  # target labels per class added; 0 = none
    seeds: int = 3

    def __post_init__(self):
        if self.source not in SENTIMENT or not self.targets \
                or any(t not in SENTIMENT for t in self.targets):
            raise ValueError(f"the corpora are among {', '.join(SENTIMENT)}")
        if any(k not in ADDED_CHOICES for k in self.added):
            raise ValueError(f"target labels added are among {', '.join(map(str, ADDED_CHOICES))}")
        spec = self.experiment()  # validates the rest
        for name in ("targets", "strategies", "added"):
            object.__setattr__(self, name, getattr(spec, name))

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["TextShiftSettings", list[str]]:
        reader, fields = QueryReader(params), {}
        fields["source"] = reader.choice("shift_source", SENTIMENT, cls.source)
        targets = reader.items("shift_targets")
        if targets is not None:
            kept = tuple(t for t in targets if t in SENTIMENT and t != fields["source"])
            if kept and len(kept) == len(targets):
                fields["targets"] = kept
            else:
                reader.notices.append("the link's test corpora are not all other sentiment "
                                      "corpora than its source; using the default")
        if "targets" not in fields:
            fields["targets"] = tuple(t for t in SENTIMENT if t != fields["source"])
        strategies = reader.items("shift_strategies")
        if strategies is not None:
            if strategies and all(s in DETERMINISTIC for s in strategies):
                fields["strategies"] = tuple(strategies)
            else:
                reader.notices.append(f"the link's strategies are not all among "
                                      f"{', '.join(DETERMINISTIC)}; using the default")
        added = reader.items("shift_added")
        if added is not None:
            if added and all(a.isdecimal() and int(a) in ADDED_CHOICES for a in added):
                fields["added"] = tuple(int(a) for a in added)
            else:
                reader.notices.append("the link's target labels added are not all among "
                                      f"{', '.join(map(str, ADDED_CHOICES))}; using the default")
        fields["seeds"] = reader.seeds("shift_seeds", cls.seeds)
        return cls(**fields), reader.notices

    def to_query(self) -> dict[str, str]:
        return {"shift_source": self.source, "shift_targets": ",".join(self.targets),
                "shift_strategies": ",".join(self.strategies),
                "shift_added": ",".join(map(str, self.added)), "shift_seeds": str(self.seeds)}

    def experiment(self) -> TextShiftSpec:
        return TextShiftSpec(source=self.source, targets=self.targets, strategies=self.strategies,
                             added=self.added, seeds=self.seeds)

    def records(self, store: ResultStore) -> pd.DataFrame:
        return records_frame(store.get_many(u.key for u in self.experiment().units()))

    def readings(self, store: ResultStore) -> list[Sentence]:
        """The shift per strategy, then the adaptation per target (the stored runs)."""
        return shift_readings(self.records(store), self.source)


TRADEOFF_LABELS = (5, 20, 100)


@dataclass(frozen=True)
class TextLoraSettings:
    """The LoRA trade-off on MiniLM: LoRA at several ranks, beside the linear probe and full
    fine-tuning, at one labelled-set size of one corpus."""

    PARAMS: ClassVar[tuple[str, ...]] = ("tl_target", "tl_labels", "tl_ranks", "tl_seeds")

    target: str = "amazon_reviews"
    labels_per_class: int = 20
    ranks: tuple[int, ...] = (1, 4, 16)
    seeds: int = 3

    def __post_init__(self):
        if not is_text_dataset(self.target):
            raise ValueError(f"the corpus is one of {', '.join(TEXT_DATASETS)} or sentences "
                             "uploaded to this server")
        if self.labels_per_class not in TRADEOFF_LABELS:
            raise ValueError(f"labels per class are one of {', '.join(map(str, TRADEOFF_LABELS))}")
        ranks = tuple(sorted(set(self.ranks)))
        if not ranks or any(r not in TEXT_LORA_RANKS for r in ranks):
            raise ValueError(f"LoRA ranks are among {', '.join(map(str, TEXT_LORA_RANKS))}")
        object.__setattr__(self, "ranks", ranks)
        self.experiment()  # validates the seeds

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["TextLoraSettings", list[str]]:
        reader, fields = QueryReader(params), {}
        target = params.get("tl_target")
        if target is not None:
            if is_text_dataset(target):
                fields["target"] = target
            else:
                reader.notices.append("the link's corpus for the LoRA trade-off is not known "
                                      "here; using the default")
        fields["labels_per_class"] = reader.size("tl_labels", TRADEOFF_LABELS, cls.labels_per_class)
        ranks = reader.items("tl_ranks")
        if ranks is not None:
            if ranks and all(r.isdecimal() and int(r) in TEXT_LORA_RANKS for r in ranks):
                fields["ranks"] = tuple(int(r) for r in ranks)
            else:
                reader.notices.append("the link's LoRA ranks are not all among "
                                      f"{', '.join(map(str, TEXT_LORA_RANKS))}; using the default")
        fields["seeds"] = reader.seeds("tl_seeds", cls.seeds)
        return cls(**fields), reader.notices

    def to_query(self) -> dict[str, str]:
        return {"tl_target": self.target, "tl_labels": str(self.labels_per_class),
                "tl_ranks": ",".join(map(str, self.ranks)), "tl_seeds": str(self.seeds)}

    @property
    def strategies(self) -> tuple[str, ...]:
        return ("probe", *(f"lora:r{r}" for r in self.ranks), "finetune")

    def experiment(self) -> TextSweepSpec:
        return TextSweepSpec(target=self.target, strategies=self.strategies,
                             labels_per_class=(self.labels_per_class,), seeds=self.seeds)

    def records(self, store: ResultStore) -> pd.DataFrame:
        return records_frame(store.get_many(u.key for u in self.experiment().units()))

    def readings(self, store: ResultStore) -> list[Sentence]:
        """The best LoRA rank against the other ranks, fine-tuning and the probe."""
        records = self.records(store)
        return tradeoff_readings(records, lambda s: trainable_of(records, s),
                                 model_weights(self.target))


def trainable_of(records: pd.DataFrame, strategy: str) -> int:
    """The exact trainable weights of a strategy's runs (each run counts its own)."""
    found = records.loc[records["strategy"] == strategy, "trainable"]
    return int(found.max()) if len(found) else 0


def model_weights(target: str, encoder: str = "minilm") -> int:
    """The weights full fine-tuning trains on `target`: the encoder's (counted exactly from its
    configuration) and the new head's (a weight per feature and class, a bias per class)."""
    from engine.core.text import load_text
    from engine.core.text_models import TEXT_ENCODERS, encoder_weights

    folder = TEXT_ENCODERS[encoder].path()
    classes = load_text(target).n_classes
    return encoder_weights(folder) + (hidden_size(folder) + 1) * classes


def hidden_size(folder) -> int:
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(str(folder), local_files_only=True).hidden_size)


def rank_sort(strategy: str) -> tuple:
    """probe, the LoRA ranks in order, then fine-tuning."""
    rank = lora_rank(strategy)
    return (0 if strategy == "probe" else 1 if rank is not None else 2, rank or 0)


LESSON = "transfer_on_text"  # the page's file stem, and the command line's lesson name
SECTIONS = {"curves": TextCurveSettings, "shift": TextShiftSettings, "lora": TextLoraSettings}
