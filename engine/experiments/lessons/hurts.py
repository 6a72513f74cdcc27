"""The "When transfer hurts" lesson's settings and the sweep groups they run.

Both sections are plain sweeps over derived datasets (`engine.core.shifts`), each run as one
`SweepGroup`:

- negative transfer (`NegativeSettings`, link keys `neg*`): the small CNN pretrained on a
  mismatched source (MNIST with its pixels scrambled, or with random labels) fine-tuned and
  probed on the UCI digits, against training from scratch and fine-tuning from plain MNIST;
- domain shift (`ShiftSettings`, link keys `shift*`): one sweep (scratch, probe, fine-tune) per
  severity of a transform of the target.

Both follow `ui.kit.section.SectionSettings`. Nothing here draws or trains (`ui.lessons.hurts` draws).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Mapping

from engine.core.datasets import labels_list_text
from engine.core.shifts import SEVERITY_SHIFTS, SHIFTS, shifted_name
import pandas as pd

from engine.core.store import ResultStore
from engine.experiments.lessons.curve_sets import curve_records
from engine.experiments.readings import Sentence
from engine.experiments.readings.hurts import negative_readings, shift_readings
from engine.experiments.sweep import MAX_SEEDS, SweepGroup, SweepSpec, stored_records
from engine.experiments.lessons.curve_sets import Curve
from engine.experiments.lessons.links import COUNTED_LABELS, QueryReader

SOURCE, TARGET = "mnist5k", "uci_digits"
MISMATCHED = {"permuted": "MNIST with scrambled pixels", "randlabels": "MNIST with random labels"}
LABELS = COUNTED_LABELS  # labelled-set sizes both forms offer
SHIFT_SEEDS = 5  # the most seeds the domain-shift form offers (each seed trains every severity)
SHIFT_STEPS = (2, 5)  # fewest and most severity levels above 0
SHIFT_SLIDERS = {  # kind -> (step, default highest severity) of the page's slider
    "rotate": (5.0, 90.0), "invert": (0.05, 1.0), "noise": (0.05, 0.6), "blur": (0.25, 3.0),
}


def _check_sizes(labels: tuple[int, ...], seeds: int, most_seeds: int) -> tuple[int, ...]:
    """The sizes sorted; ValueError for none, one not offered, or seeds out of range."""
    if not labels:
        raise ValueError("choose at least one labelled-set size")
    if any(k not in LABELS for k in labels):
        raise ValueError(f"labels per class must be among {labels_list_text(LABELS)}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= most_seeds:
        raise ValueError(f"seeds must be a whole number from 1 to {most_seeds}")
    return tuple(sorted(set(labels)))


def negative_curves(shift: str) -> tuple[Curve, ...]:
    bad = shifted_name(SOURCE, shift)
    return (Curve("From scratch", SOURCE, "scratch"),
            Curve("Fine-tune from MNIST (matched source)", SOURCE, "finetune"),
            Curve(f"Fine-tune from {MISMATCHED[shift]}", bad, "finetune"),
            Curve(f"Probe on {MISMATCHED[shift]}", bad, "probe"))


@functools.lru_cache(maxsize=128)  # built once per settings: a page rerun asks several times
def negative_group(shift: str, labels: tuple[int, ...], seeds: int) -> SweepGroup:
    """Scratch and fine-tuning from MNIST (the runs the curves lesson shares), then probe and
    fine-tuning from the mismatched source."""
    common = dict(target=TARGET, labels_per_class=labels, seeds=seeds)
    return SweepGroup((SweepSpec(source=SOURCE, strategies=("scratch", "finetune"), **common),
                       SweepSpec(source=shifted_name(SOURCE, shift), strategies=("probe", "finetune"),
                                 **common)))


@dataclass(frozen=True)
class NegativeSettings:
    PARAMS: ClassVar[tuple[str, ...]] = ("neg", "neg_labels", "neg_seeds")

    shift: str = "permuted"  # the mismatched source: a key of MISMATCHED
    labels_per_class: tuple[int, ...] = (1, 5, 20)  # sizes of the labelled target set
    seeds: int = 3  # runs per point (the rule calls nothing under 3)

    def __post_init__(self):
        if self.shift not in MISMATCHED:
            raise ValueError(f"the mismatched source must be one of {', '.join(MISMATCHED)}")
        object.__setattr__(self, "labels_per_class",
                           _check_sizes(self.labels_per_class, self.seeds, MAX_SEEDS))

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["NegativeSettings", list[str]]:
        reader, default = QueryReader(params), cls()
        return cls(reader.choice("neg", tuple(MISMATCHED), default.shift),
                   reader.labels("neg_labels", LABELS, default.labels_per_class),
                   reader.integer("neg_seeds", 1, MAX_SEEDS, default.seeds)), reader.notices

    def to_query(self) -> dict[str, str]:
        return {"neg": self.shift, "neg_labels": labels_list_text(self.labels_per_class),
                "neg_seeds": str(self.seeds)}

    def records(self, store: ResultStore) -> pd.DataFrame:
        """The stored runs the curves draw, each `strategy` its curve's legend entry."""
        return curve_records(self.experiment().specs, self.curves(), store)

    def readings(self, store: ResultStore) -> list[Sentence]:
        """Where fine-tuning and the probe from the mismatched source ended against scratch."""
        curves, records = self.curves(), self.records(store)
        return negative_readings(records, curves[0].label, curves[2].label, curves[3].label,
                                 MISMATCHED[self.shift])

    def experiment(self) -> SweepGroup:
        return negative_group(self.shift, self.labels_per_class, self.seeds)

    def curves(self) -> tuple[Curve, ...]:
        return negative_curves(self.shift)


def shift_levels(kind: str, highest: float, steps: int) -> tuple[float, ...]:
    """0 and `steps` evenly spaced severities up to `highest` (rounded to 3 decimals)."""
    return tuple(sorted({round(highest * i / steps, 3) for i in range(steps + 1)}))


@functools.lru_cache(maxsize=128)
def shift_group(kind: str, levels: tuple[float, ...], labels: tuple[int, ...],
                seeds: int) -> SweepGroup:
    """One sweep (scratch, probe, fine-tune) per severity; severity 0 is the plain target."""
    return SweepGroup(tuple(SweepSpec(target=shifted_name(TARGET, kind, s), labels_per_class=labels,
                                      seeds=seeds) for s in levels))


@dataclass(frozen=True)
class ShiftSettings:
    PARAMS: ClassVar[tuple[str, ...]] = ("shift", "shift_max", "shift_steps", "shift_labels",
                                         "shift_seeds")

    kind: str = "rotate"  # the transform of the target: one of SEVERITY_SHIFTS
    highest: float = SHIFT_SLIDERS["rotate"][1]  # the highest severity, in the transform's unit
    steps: int = 3  # severity levels above 0, evenly spaced up to `highest`
    labels_per_class: tuple[int, ...] = (1, 20)  # sizes of the labelled target set
    seeds: int = 3  # runs per point (the rule calls nothing under 3)

    def __post_init__(self):
        if self.kind not in SEVERITY_SHIFTS:
            raise ValueError(f"the transform must be one of {', '.join(SEVERITY_SHIFTS)}")
        if not 0 < self.highest <= SHIFTS[self.kind].max_severity:
            raise ValueError(f"the highest severity must be above 0 and at most "
                             f"{SHIFTS[self.kind].max_severity:g}")
        if self.steps not in range(SHIFT_STEPS[0], SHIFT_STEPS[1] + 1):
            raise ValueError(f"severity levels must be from {SHIFT_STEPS[0]} to {SHIFT_STEPS[1]}")
        object.__setattr__(self, "highest", float(self.highest))
        object.__setattr__(self, "labels_per_class",
                           _check_sizes(self.labels_per_class, self.seeds, SHIFT_SEEDS))

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["ShiftSettings", list[str]]:
        reader, default = QueryReader(params), cls()
        kind = reader.choice("shift", SEVERITY_SHIFTS, default.kind)
        step, highest = SHIFT_SLIDERS[kind]
        return cls(kind, reader.number("shift_max", step, SHIFTS[kind].max_severity, highest),
                   reader.integer("shift_steps", *SHIFT_STEPS, default.steps),
                   reader.labels("shift_labels", LABELS, default.labels_per_class),
                   reader.integer("shift_seeds", 1, SHIFT_SEEDS, default.seeds)), reader.notices

    def to_query(self) -> dict[str, str]:
        return {"shift": self.kind, "shift_max": f"{self.highest:g}", "shift_steps": str(self.steps),
                "shift_labels": labels_list_text(self.labels_per_class), "shift_seeds": str(self.seeds)}

    def levels(self) -> tuple[float, ...]:
        return shift_levels(self.kind, self.highest, self.steps)

    def records(self, store: ResultStore) -> pd.DataFrame:
        """Every stored run of the domain-shift sweeps, with the severity each ran at."""
        frames = [stored_records(spec, store).assign(severity=level)
                  for level, spec in zip(self.levels(), self.experiment().specs)]
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def readings(self, store: ResultStore) -> list[Sentence]:
        """The head start of probe and fine-tuning across the severities."""
        return shift_readings(self.records(store), self.kind)

    def experiment(self) -> SweepGroup:
        return shift_group(self.kind, self.levels(), self.labels_per_class, self.seeds)


LESSON = "when_transfer_hurts"
SECTIONS = {"negative": NegativeSettings, "shift": ShiftSettings}
