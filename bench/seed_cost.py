"""What the new seed defaults cost on the default lessons: the rule for a difference calls
nothing under 3 seeds a side, so every section that reads its runs now defaults to 3 (it was 2
for When transfer hurts and How much to train, 1 for Forgetting), and the Transfer curves to 5
(it was 3: with 3 seeds and Holm over its 7 sizes the rule called none of its head starts). For
each of those sections this runs the old default, then the new one on the same store (only the
added seeds train), and prints both times, then the readings of the new runs as the pages show
them.

Runs train in this process through the one driver (`run_experiment`, the local backend), as a
job's worker does; pretraining happens before the clock starts (its checkpoint is shared by
both settings). `--quick` times the Forgetting and How much to train sections only.
"""

from __future__ import annotations

import dataclasses
import time

from common import quick_run

QUICK = quick_run(__doc__, "two sections only", "transferlab-seedcost-")

import pandas as pd  # noqa: E402

from engine.core.device import describe_device, pick_device  # noqa: E402
from engine.core.pretrain import pretrain  # noqa: E402
from engine.core.store import ResultStore  # noqa: E402
from engine.experiments.protocol import all_units, run_experiment  # noqa: E402
from engine.experiments.readings import depth as depth_readings  # noqa: E402
from engine.experiments.readings.curves import sweep_readings  # noqa: E402
from engine.experiments.readings import forgetting as forgetting_readings  # noqa: E402
from engine.experiments.readings import hurts as hurts_readings  # noqa: E402
from engine.experiments.forgetting import stored_seeds  # noqa: E402
from engine.experiments.sweep import stored_records  # noqa: E402
from engine.experiments.lessons.curves import CurveSettings  # noqa: E402
from engine.experiments.lessons.depth import DepthSettings  # noqa: E402
from engine.experiments.lessons.forgetting import ForgettingSettings  # noqa: E402
from engine.experiments.lessons.hurts import MISMATCHED, NegativeSettings, ShiftSettings  # noqa: E402


def _pretrain(experiment) -> None:
    parts = experiment.parts() if hasattr(experiment, "parts") else [experiment]
    for part in parts:
        config = part.pretraining()
        if config is not None:
            pretrain(config)


def timed(settings, store: ResultStore) -> tuple[float, int]:
    experiment = settings.experiment()
    _pretrain(experiment)
    start = time.perf_counter()
    outcome = run_experiment(experiment, store)
    return time.perf_counter() - start, outcome.trained


def _records(specs, store, levels=None) -> pd.DataFrame:
    frames = []
    for i, spec in enumerate(specs):
        part = stored_records(spec, store)
        if levels is not None:
            part = part.assign(severity=levels[i])
        frames.append(part)
    return pd.concat(frames, ignore_index=True)


def readings(name: str, settings, store: ResultStore) -> list:
    if name == "Transfer curves":
        return sweep_readings(stored_records(settings.experiment(), store))
    if name == "Forgetting":
        return forgetting_readings.forgetting_readings(stored_seeds(settings.experiment(), store))
    if name == "How much to train":
        records = _records(settings.specs(), store)
        return depth_readings.freeze_readings(records) + depth_readings.copy_readings(records)
    if name == "Negative transfer":
        from engine.experiments.lessons.curve_sets import curve_records  # the curve labels the page reads

        curves = settings.curves()
        records = curve_records(settings.experiment().specs, curves)  # the default store
        return hurts_readings.negative_readings(records, curves[0].label, curves[2].label,
                                                curves[3].label, MISMATCHED[settings.shift])
    records = _records(settings.experiment().specs, store, settings.levels())
    return hurts_readings.shift_readings(records, settings.kind)


def main() -> None:
    print(f"device: {describe_device(pick_device())}")
    sections = [("Forgetting", ForgettingSettings(), 1),
                ("How much to train", DepthSettings(), 2)]
    if not QUICK:
        sections += [("Transfer curves", CurveSettings(), 3),
                     ("Negative transfer", NegativeSettings(), 2),
                     ("Domain shift", ShiftSettings(), 2)]
    store = ResultStore()
    for name, new, old_seeds in sections:
        old = dataclasses.replace(new, seeds=old_seeds)
        old_s, old_runs = timed(old, store)
        new_s, added = timed(new, store)
        total = len(all_units(new.experiment()))
        print(f"{name}: {old_seeds} seed(s) {old_s:.1f} s ({old_runs} units); "
              f"{new.seeds} seeds {old_s + new_s:.1f} s ({total} units; the added seeds "
              f"{new_s:.1f} s, x{(old_s + new_s) / old_s:.2f})")
        for sentence in readings(name, new, store):
            print("    " + sentence.text.replace("**", ""))


if __name__ == "__main__":
    main()
