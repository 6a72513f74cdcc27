"""The Transfer curves lesson's settings: which strategies, at which labelled-set sizes, how many
seeds; and the one `SweepSpec` they run.

`CurveSettings` follows `ui.kit.section.SectionSettings`: it reads and writes the link
(`?strategies=scratch,discriminative:0.38&labels=1,2,all&seeds=3`, the form `spec_to_query`
wrote before, so every shared link opens the same experiment) and names its sweep. The
discriminative-learning-rates curve carries its layer-wise decay factor in its strategy name.
Nothing here draws or trains (`ui.lessons.controls` is the form, `ui.lessons.curves` the panels).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Mapping, Optional

import pandas as pd

from engine.core.datasets import labels_list_text, labels_text
from engine.core.store import ResultStore
from engine.experiments.readings import Sentence
from engine.experiments.readings.curves import sweep_readings
from engine.experiments.stats import strategy_label
from engine.experiments.sweep import SweepSpec, stored_records
from engine.experiments.lessons.links import LABEL_CHOICES, QueryReader

# the strategies this lesson compares: the three basic ones, then the depth-wise refinements
CURVE_STRATEGIES = ("scratch", "probe", "finetune", "discriminative", "gradual", "lpft")
DECAY_FACTORS = (0.1, 0.2, 0.38, 0.5, 0.7, 1.0)  # layer-wise factors offered; 0.38 = ULMFiT's 1/2.6
DEFAULT_DECAY = 0.38
_DEFAULT = SweepSpec()  # the lesson's default experiment


@functools.lru_cache(maxsize=256)  # built and validated once per settings, not per call
def _sweep(strategies: tuple[str, ...], labels: tuple[int, ...], seeds: int) -> SweepSpec:
    """The sweep of these choices (a ValueError, not cached, when it cannot run)."""
    return SweepSpec(strategies=strategies, labels_per_class=labels, seeds=seeds)


def curve_name(option: str, factor: float) -> str:
    """A curve option to the engine's strategy name (the decay factor goes into the name)."""
    return f"discriminative:{factor:g}" if option == "discriminative" else option


def curve_option(name: str) -> Optional[tuple[str, Optional[float]]]:
    """An engine strategy name back to (option, factor); None when this lesson does not offer it."""
    if name in CURVE_STRATEGIES and name != "discriminative":
        return name, None
    family, _, setting = name.partition(":")
    allowed = {f"{f:g}": f for f in DECAY_FACTORS}
    if family == "discriminative" and setting in allowed:
        return "discriminative", allowed[setting]
    return None


def option_label(option: str) -> str:
    """A curve option as the form lists it."""
    return "Discriminative learning rates" if option == "discriminative" else strategy_label(option)


def _offered(strategies) -> bool:
    """True for one or more strategies this lesson offers, with at most one decay factor."""
    options = [curve_option(s) for s in strategies]
    return bool(options) and all(options) and sum(o[0] == "discriminative" for o in options) <= 1


@dataclass(frozen=True)
class CurveSettings:
    """What the Transfer curves form chooses. Stored in the sweep's canonical order, so two
    settings are equal exactly when they run the same experiment."""

    PARAMS: ClassVar[tuple[str, ...]] = ("strategies", "labels", "seeds")

    strategies: tuple[str, ...] = _DEFAULT.strategies  # engine names, e.g. "discriminative:0.38"
    labels_per_class: tuple[int, ...] = _DEFAULT.labels_per_class  # the curves' points; 0 = all
    seeds: int = _DEFAULT.seeds  # runs per point, each with its own label draw and init

    def __post_init__(self):
        if self.strategies and not _offered(self.strategies):
            raise ValueError(f"this lesson compares {', '.join(CURVE_STRATEGIES)} (one decay "
                             f"factor among {', '.join(f'{f:g}' for f in DECAY_FACTORS)}), got "
                             f"{', '.join(self.strategies)}")
        if any(k not in LABEL_CHOICES for k in self.labels_per_class):
            raise ValueError("labels per class must be among "
                             f"{', '.join(labels_text(k) for k in LABEL_CHOICES)}")
        spec = _sweep(tuple(self.strategies), tuple(self.labels_per_class), self.seeds)  # validates
        object.__setattr__(self, "strategies", spec.strategies)
        object.__setattr__(self, "labels_per_class", spec.labels_per_class)

    @classmethod
    def from_form(cls, options, factor: float, labels, seeds: int) -> "CurveSettings":
        """Settings from the form's values: curve options, one decay factor for the
        discriminative curve, labels per class, seeds. ValueError says what is wrong."""
        return cls(tuple(curve_name(o, factor) for o in options), tuple(labels), int(seeds))

    def options(self) -> list[str]:
        """The curve options chosen, as the form lists them."""
        return [curve_option(s)[0] for s in self.strategies]

    def decay(self) -> float:
        """The discriminative curve's decay factor (the default when it is not chosen)."""
        return next((f for _, f in map(curve_option, self.strategies) if f is not None),
                    DEFAULT_DECAY)

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["CurveSettings", list[str]]:
        reader, fields = QueryReader(params), {}
        strategies = reader.items("strategies")
        if strategies is not None:
            if _offered(strategies):
                fields["strategies"] = tuple(strategies)
            else:
                allowed = [curve_name(o, DEFAULT_DECAY) for o in CURVE_STRATEGIES]
                reader.notices.append(
                    f"the link's strategies are not all among {', '.join(allowed)} (the decay "
                    f"factor one of {', '.join(f'{f:g}' for f in DECAY_FACTORS)}); using the "
                    "default")
        labels = reader.items("labels")
        if labels is not None:
            allowed = {labels_text(k): k for k in LABEL_CHOICES}
            if labels and all(k in allowed for k in labels):
                fields["labels_per_class"] = tuple(allowed[k] for k in labels)
            else:
                reader.notices.append("the link's labels per class are not all among "
                                      f"{', '.join(allowed)}; using the default")
        fields["seeds"] = reader.seeds("seeds", _DEFAULT.seeds)
        return cls(**fields), reader.notices

    def to_query(self) -> dict[str, str]:
        """The link form: ?strategies=scratch,probe&labels=1,2,all&seeds=3"""
        return {"strategies": ",".join(self.strategies),
                "labels": labels_list_text(self.labels_per_class),
                "seeds": str(self.seeds)}

    def records(self, store: ResultStore) -> pd.DataFrame:
        """The sweep's stored runs."""
        return stored_records(self.experiment(), store)

    def readings(self, store: ResultStore) -> list[Sentence]:
        """Each transfer strategy against scratch over every size (the stored runs)."""
        return sweep_readings(self.records(store))

    def experiment(self) -> SweepSpec:
        return _sweep(self.strategies, self.labels_per_class, self.seeds)


LESSON = "transfer_curves"  # the page's file stem, and the command line's lesson name
SECTIONS = {"curves": CurveSettings}  # each section's name and settings, in page order
