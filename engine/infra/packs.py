"""Lesson packs: experiments run once and shipped as results with their provenance.

Two kinds. A lesson file (`assets/lessons/<name>.yaml`) lists sweeps; `build_pack` runs them
through the job manager's same path (`run_sweep`, the result store) and writes
`assets/packs/<name>.json`: every run's record plus where, when and with which code the numbers
were made (class mode reads the default sweep's runs from it, `pack_records`).

The sections pack (`SECTIONS_PACK`, `build_sections_pack`) holds every unit of every lesson
section's default settings (`engine.experiments.lessons.catalog`), by result-store key, with
the same provenance. `PackStore` reads it as a read-only result store, so a section's own
`records(store)` reads the pack exactly as it reads the store: a first visit to any lesson on
a CPU-only classroom machine shows results at once, marked as precomputed, while the class's
own runs train. Nothing here draws; loading a pack never trains.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional

import pandas as pd
import torch
import yaml

from engine import ENGINE_VERSION
from engine.core.datasets import ALL_LABELS_TEXT, parse_labels_value
from engine.core.device import describe_device, pick_device
from engine.core.store import ResultStore, records_frame
from engine.experiments.sweep import Progress, SweepSpec, run_sweep

ROOT = Path(__file__).resolve().parents[2]
LESSONS_DIR = ROOT / "assets" / "lessons"
PACKS_DIR = ROOT / "assets" / "packs"


class PackError(ValueError):
    """A lesson or pack file that is missing or malformed."""


def spec_from_dict(entry: dict) -> SweepSpec:
    """A SweepSpec from a lesson's YAML entry (labels_per_class as the command line writes
    them: whole numbers and 'all')."""
    if not isinstance(entry, dict):
        raise PackError(f"a sweep must be a mapping of settings, got {entry!r}")
    fields = dict(entry)
    if "labels_per_class" in fields:
        if not isinstance(fields["labels_per_class"], list):
            raise PackError(f"labels_per_class must be a list, e.g. [1, 5, {ALL_LABELS_TEXT}]")
        try:
            fields["labels_per_class"] = tuple(parse_labels_value(k) for k in fields["labels_per_class"])
        except ValueError as err:
            raise PackError(str(err)) from None
    if "strategies" in fields:
        fields["strategies"] = tuple(fields["strategies"])
    allowed = {"source", "target", "backbone", "strategies", "labels_per_class", "seeds", "pretrain_epochs"}
    unknown = set(fields) - allowed
    if unknown:
        raise PackError(f"unknown sweep setting(s): {', '.join(sorted(unknown))}")
    return SweepSpec(**fields)


def load_lesson(path: Path | str) -> dict:
    path = Path(path)
    try:
        lesson = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PackError(f"lesson file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise PackError(f"lesson file {path} is not valid YAML: {err}") from None
    if not isinstance(lesson, dict) or not lesson.get("sweeps"):
        raise PackError(f"lesson file {path} must have a name and a list of sweeps")
    lesson.setdefault("name", path.stem)
    lesson["specs"] = [spec_from_dict(s) for s in lesson["sweeps"]]
    return lesson


def build_pack(lesson_path: Path | str, out_dir: Path | str = PACKS_DIR,
               store: Optional[ResultStore] = None,
               on_progress: Optional[Callable[[Progress], None]] = None,
               ray_address: Optional[str] = None) -> Path:
    """Run every sweep of a lesson (reusing stored runs) and write its pack; returns the path.
    With `ray_address` the runs train as tasks on that Ray cluster (`ray_backend`)."""
    lesson = load_lesson(lesson_path)
    store = store or ResultStore()
    device = pick_device()
    sweeps = []
    for spec in lesson["specs"]:
        if ray_address:
            from engine.infra.ray_backend import run_sweep_on_ray

            result = run_sweep_on_ray(spec, store, ray_address, on_progress)
        else:
            result = run_sweep(spec, store, device=device, on_progress=on_progress)
        sweeps.append({"spec": asdict(spec), "spec_key": spec.key(),
                       "records": json.loads(result.records.to_json(orient="records"))})
    pack = {
        "name": lesson["name"], "title": lesson.get("title", lesson["name"]),
        "description": lesson.get("description", ""),
        "provenance": {
            "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "device": (describe_device(device) if not ray_address else "Ray cluster: " + ", ".join(
                sorted({r["device"] for s in sweeps for r in s["records"]}))),
            "code_version": ENGINE_VERSION,
            "torch": torch.__version__, "python": platform.python_version(),
            "seeds": sorted({s.seeds for s in lesson["specs"]}),
        },
        "sweeps": sweeps,
    }
    out = Path(out_dir) / f"{lesson['name']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(pack, indent=1))
    return out


def load_packs(packs_dir: Path | str = PACKS_DIR) -> list[dict]:
    """Every readable pack; a malformed file is skipped, never fatal."""
    packs = []
    for path in sorted(Path(packs_dir).glob("*.json")):
        try:
            pack = json.loads(path.read_text())
            if isinstance(pack, dict) and isinstance(pack.get("sweeps"), list):
                packs.append(pack)
        except (OSError, json.JSONDecodeError):
            continue
    return packs


def pack_records(spec: SweepSpec, packs_dir: Path | str = PACKS_DIR) -> tuple[pd.DataFrame, Optional[dict]]:
    """Precomputed records for exactly this spec and the pack's provenance, or (empty, None)."""
    key = spec.key()
    for pack in load_packs(packs_dir):
        for sweep in pack["sweeps"]:
            if sweep.get("spec_key") == key:
                return records_frame(sweep.get("records", [])), dict(pack.get("provenance", {}),
                                                                   title=pack.get("title", ""))
    return records_frame([]), None


# --- the sections pack ---------------------------------------------------------------------------

SECTIONS_PACK = PACKS_DIR / "sections.json"


def _provenance(device_text: str) -> dict:
    return {"built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "device": device_text, "code_version": ENGINE_VERSION, "torch": torch.__version__,
            "python": platform.python_version()}


def build_sections_pack(store: Optional[ResultStore] = None, out: Path | str = SECTIONS_PACK,
                        on_progress: Optional[Callable[[Progress], None]] = None,
                        device: Optional[torch.device] = None,
                        only: Optional[set[str]] = None) -> Path:
    """Run every lesson section at its default settings (reusing what `store` holds) and write
    their units, by key, to `out`; returns the path. `only`: run just these lessons and add
    their units to the pack already at `out` (its other lessons' entries are kept as they are;
    the provenance names both builds)."""
    from engine.experiments.lessons.catalog import LESSONS

    store = store or ResultStore()
    device = device or pick_device()
    units: dict[str, dict] = {}
    sections = []
    provenance = _provenance(describe_device(device))
    if only:
        unknown = set(only) - set(LESSONS)
        if unknown:
            raise ValueError(f"no lesson {sorted(unknown)[0]!r}; the lessons are "
                             f"{', '.join(LESSONS)}")
        old = json.loads(Path(out).read_text())
        sections = [s for s in old["sections"] if s["lesson"] not in only]
        units = dict(old["units"])
        provenance = {**old["provenance"],
                      "added": [*old["provenance"].get("added", []),
                                {"lessons": sorted(only), **provenance}]}
    _run_sections({k: v for k, v in LESSONS.items() if not only or k in only}, store, device,
                  on_progress, units, sections)
    pack = {"kind": "sections", "provenance": provenance, "sections": sections, "units": units}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(pack, separators=(",", ":")))
    return out


def _run_sections(lessons, store, device, on_progress, units: dict, sections: list) -> None:
    from engine.experiments.protocol import all_units, run_experiment, stored_units

    for lesson, classes in lessons.items():
        for name, cls in classes.items():
            settings, notices = cls.from_query({})
            experiment = settings.experiment()
            experiment.check()
            run_experiment(experiment, store, device=device, on_progress=on_progress)
            found = stored_units(experiment, store)
            units.update(found)
            sections.append({"lesson": lesson, "section": name, "experiment": experiment.key(),
                             "units": len(found), "total": len(all_units(experiment))})


class PackStore:
    """The sections pack as a read-only result store (`get_many`, `count`), and its provenance.
    A missing or malformed pack is an empty store, never an error."""

    def __init__(self, path: Path | str = SECTIONS_PACK):
        self.path = Path(path)
        try:
            pack = json.loads(self.path.read_text())
        except (OSError, ValueError):
            pack = {}
        units = pack.get("units") if isinstance(pack, dict) else None
        self.units: dict[str, dict] = units if isinstance(units, dict) else {}
        provenance = pack.get("provenance") if isinstance(pack, dict) else None
        self.provenance: dict = provenance if isinstance(provenance, dict) else {}

    def get_many(self, run_keys) -> list[dict]:
        return [dict(self.units[k]) for k in run_keys
                if isinstance(self.units.get(k), dict)]

    def count(self) -> int:
        return len(self.units)


_PACK_STORES: dict[tuple, PackStore] = {}


def pack_store(path: Path | str | None = None) -> PackStore:
    """The sections pack at `path` (default `SECTIONS_PACK`), read once per version of the
    file."""
    path = Path(path if path is not None else SECTIONS_PACK)
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
    except OSError:
        stamp = (str(path), None)
    if stamp not in _PACK_STORES:
        if len(_PACK_STORES) > 4:
            _PACK_STORES.clear()
        _PACK_STORES[stamp] = PackStore(path)
    return _PACK_STORES[stamp]
