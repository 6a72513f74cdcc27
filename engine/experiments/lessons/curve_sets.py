"""Reading the stored runs of a lesson's sweeps, and naming its curves.

A lesson that compares sources ("Which source?", negative transfer) trains several sweeps and
draws chosen strategies of each as one chart: a `Curve` is one strategy of the sweep from one
source, with its legend entry, and `curve_records` gives the sweeps' stored runs with each
strategy replaced by its curve's legend entry. `records_of`, `stored_runs` and `total_runs`
count and read the runs of several sweeps (a `SweepGroup`'s specs).

Plain Python over the result store: nothing here draws, reads widgets or trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pandas as pd

from engine.core.store import ResultStore
from engine.experiments.sweep import SweepSpec, plan_runs, stored_records


@dataclass(frozen=True)
class Curve:
    label: str  # the legend entry
    source: str  # the source of the sweep whose runs draw it
    strategy: str  # the strategy whose runs draw it
    lr: Optional[float] = None  # the learning rate of its runs (a record's `lr`); None: any


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def records_of(specs: Sequence[SweepSpec], store: Optional[ResultStore] = None) -> pd.DataFrame:
    """Every stored run of the sweeps, one frame (empty when none is stored)."""
    store = store or ResultStore()
    return _concat([stored_records(spec, store) for spec in specs])


def curve_records(specs: Sequence[SweepSpec], curves: Sequence[Curve],
                  store: Optional[ResultStore] = None) -> pd.DataFrame:
    """Every stored run the curves draw, with `strategy` replaced by its curve's label."""
    store, frames = store or ResultStore(), []
    for spec in specs:
        records = stored_records(spec, store)
        for curve in curves:
            if curve.source == spec.source and curve.strategy in spec.strategies:
                chosen = records["strategy"] == curve.strategy
                if curve.lr is not None and not records.empty:
                    chosen &= records["lr"] == curve.lr
                part = records[chosen].copy()
                part["strategy"] = curve.label
                frames.append(part)
    return _concat(frames)


def present_labels(records: pd.DataFrame, curves: Sequence[Curve]) -> list[str]:
    """The labels of the curves that have stored runs, in the curves' order (the legend's)."""
    present = set(records["strategy"]) if not records.empty else set()
    return [c.label for c in curves if c.label in present]


def total_runs(specs: Sequence[SweepSpec]) -> int:
    return sum(len(plan_runs(spec)) for spec in specs)


def stored_runs(specs: Sequence[SweepSpec]) -> int:
    return len(records_of(specs))
