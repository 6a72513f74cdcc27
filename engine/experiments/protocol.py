"""One experiment protocol and the one driver that runs it, on every backend.

An experiment is a frozen, hashable settings object that expands into *units* of work (a run of
a sweep, an arm of the forgetting experiment, a model of the diagnostics, ...). Each unit has a
result-store key that hashes everything that determines its numbers, so a unit is trained once
and then found in the store by any later job, session or machine.

`run_experiment` is the only place that compares units with the store, pretrains (or loads) the
backbone they share, trains what is missing, stores each unit the moment it finishes, reports
progress and honours cancellation. Where the units train is a `Backend`: `LocalBackend` (this
process, several units side by side when the experiment allows it) or
`engine.infra.ray_backend.RayBackend` (a Ray cluster). The job manager (`engine.infra.jobs`)
calls the same driver in its worker processes.

An experiment provides:
- `key()`: identifies the experiment (one job per key), `check()`: raises ValueError (a
  DatasetError is one) when it cannot run;
- `units()`: every `Unit`, in the order they should train;
- `pretraining()`: the `PretrainConfig` its units start from, or None;
- `workbench(device, pretrained)`: what the units share (data on the device, weights, cached
  features), built once per process; its `train(unit, should_stop, say)` trains one unit and
  returns its record (None when stopped part-way);
- `finished_text(unit, record)`: the progress line for a stored unit.

Not here: what any unit computes (the experiments), queues and worker processes (`infra.jobs`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence, runtime_checkable

import torch

from engine.core.device import pick_device
from engine.core.parallel import default_concurrency, run_concurrently
from engine.core.pretrain import PretrainConfig, PretrainResult, load_cached, pretrain
from engine.core.store import ResultStore

UNTRAINED_SEED = 0  # the one random network that every "untrained" backbone or baseline shares
Notify = Callable[["Progress"], None]
Say = Callable[[str], None]  # a progress line from inside a unit (e.g. "EWC: epoch 3 of 8")


def digest(payload: dict) -> str:
    """A short, stable hash of a JSON-able payload: the form of every key in the store."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Unit:
    key: str  # result-store key: a hash of everything that determines this unit's numbers
    label: str  # what it is, for progress lines and failure messages
    spec: Any = None  # what the experiment needs to train it (a RunPlan, an arm's name, ...)


@dataclass(frozen=True)
class Progress:
    stage: str  # "pretrain" while the backbone trains on the source, then "run"
    done: int  # finished units of this stage (steps when pretraining, units afterwards)
    total: int
    message: str
    record: Optional[dict] = None  # the unit just stored (stage "run")


@dataclass(frozen=True)
class Outcome:
    trained: int  # units trained and stored by this call
    reused: int  # units the store already held
    cancelled: bool  # True when some unit is still missing (stopped, or failed part-way)
    pretrained: Optional[PretrainResult]  # the weights the units started from, if any


class Workbench(Protocol):
    """What one experiment's units share in one process, built once."""

    concurrency: Optional[int]  # units that may train at once (None: as many as the device suits)

    def order(self, todo: list[Unit], workers: int) -> list[Unit]:
        """The order to train `todo` in when `workers` train at once."""

    def train(self, unit: Unit, should_stop: Callable[[], bool], say: Say) -> Optional[dict]:
        """Train one unit; its record (with "run_key" == unit.key), or None if stopped."""


@runtime_checkable
class Experiment(Protocol):
    def key(self) -> str: ...

    def check(self) -> None: ...

    def units(self) -> list[Unit]: ...

    def pretraining(self) -> Optional[PretrainConfig]: ...

    def workbench(self, device: torch.device, pretrained: Optional[PretrainResult]) -> Workbench: ...

    def finished_text(self, unit: Unit, record: dict) -> str: ...


@runtime_checkable
class ExperimentGroup(Protocol):
    """Several experiments run one after another as one job (one progress bar)."""

    def key(self) -> str: ...

    def check(self) -> None: ...

    def parts(self) -> Sequence[Experiment]: ...


def all_units(experiment) -> list[Unit]:
    """Every unit of an experiment or of a group's parts."""
    if isinstance(experiment, ExperimentGroup):
        return [u for part in experiment.parts() for u in part.units()]
    return experiment.units()


def stored_units(experiment, store: ResultStore) -> dict[str, dict]:
    """The experiment's units that the store holds: unit key -> record (no training)."""
    return {r["run_key"]: r for r in store.get_many(u.key for u in all_units(experiment))}


def unit_counts(experiment, store: ResultStore) -> tuple[int, int]:
    """(units the store holds, units in the experiment)."""
    return len(stored_units(experiment, store)), len(all_units(experiment))


class Backend(Protocol):
    """Where units train."""

    def connect(self) -> contextlib.AbstractContextManager:
        """Held while the experiment runs; entered before any pretraining, so a backend that
        cannot be reached fails before minutes of work."""

    def train(self, experiment: Experiment, pretrained: Optional[PretrainResult], todo: list[Unit],
              device: torch.device, should_stop: Callable[[], bool],
              say: Say) -> Iterator[tuple[Unit, Optional[dict]]]:
        """Yield (unit, record) as each unit finishes (record None: stopped part-way)."""


class LocalBackend:
    """Units train in this process: `concurrency` at once (default: what the workbench allows,
    else one per CPU thread or a few per GPU), each with its own model and generator, so every
    unit's numbers are the same whatever the concurrency. On CUDA, a workbench with
    `train_stacked(todo, should_stop, say)` (a sweep's) trains its units there instead: runs of
    one architecture as one stacked model (`engine.core.batched`)."""

    def __init__(self, concurrency: Optional[int] = None):
        self.concurrency = concurrency

    def connect(self):
        return contextlib.nullcontext()

    def train(self, experiment, pretrained, todo, device, should_stop, say):
        bench = experiment.workbench(device, pretrained)
        if hasattr(bench, "say"):  # a workbench that reports its own shared work (features)
            bench.say = say
        stacked = getattr(bench, "train_stacked", None)  # a sweep's runs as stacked models
        if device.type == "cuda" and stacked is not None:  # the CPU keeps one run per thread
            yield from stacked(todo, should_stop, say)
            return
        workers = self.concurrency or bench.concurrency or default_concurrency(device)
        if bench.concurrency is not None:
            workers = min(workers, bench.concurrency)
        yield from run_concurrently(bench.order(todo, workers),
                                    lambda unit: bench.train(unit, should_stop, say),
                                    workers=workers, device=device, should_stop=should_stop)


def pretrain_progress(source: str, notify: Notify) -> Callable[[int, int, float], None]:
    """Pretraining's step callback as progress events (every 20 steps and the last)."""
    def on_step(step: int, steps: int, loss: float) -> None:
        if step == steps or step % 20 == 0:
            notify(Progress("pretrain", step, steps, f"pretraining on {source}: loss {loss:.3f}"))
    return on_step


def run_experiment(experiment, store: Optional[ResultStore] = None, *,
                   device: Optional[torch.device] = None, on_progress: Optional[Notify] = None,
                   should_stop: Optional[Callable[[], bool]] = None,
                   backend: Optional[Backend] = None) -> Outcome:
    """Train every unit of `experiment` the store lacks on `backend` (default: this process),
    storing each as it finishes; returns what was trained and reused. A group's parts run one
    after another, their progress counted as one job."""
    store = store or ResultStore()
    notify = on_progress or (lambda event: None)
    stop = should_stop or (lambda: False)
    backend = backend or LocalBackend()
    experiment.check()
    if isinstance(experiment, ExperimentGroup):
        return _run_group(experiment, store, device, notify, stop, backend)
    device = device or pick_device()
    units = experiment.units()
    have = set(stored_units(experiment, store))
    todo = [u for u in units if u.key not in have]
    done, total = len(have), len(units)
    config = experiment.pretraining()
    with (backend.connect() if todo and not stop() else contextlib.nullcontext()):
        pretrained = None
        if config is not None and todo:
            pretrained = pretrain(config, device=device, on_step=pretrain_progress(config.source, notify))
        elif config is not None:
            pretrained = load_cached(config)
        notify(Progress("run", done, total, f"{done} of {total} already stored"))

        def say(message: str) -> None:
            notify(Progress("run", done, total, message))
        for unit, record in backend.train(experiment, pretrained, todo, device, stop, say) if todo else ():
            if record is None:  # stopped part-way: nothing half-trained is stored
                continue
            if record.get("run_key") != unit.key:
                raise ValueError(f"{unit.label}: the record came back under key "
                                 f"{record.get('run_key')!r}, not {unit.key!r}; it was not stored")
            store.put(record)
            done += 1
            notify(Progress("run", done, total, experiment.finished_text(unit, record), record))
    return Outcome(trained=done - len(have), reused=len(have), cancelled=done < total,
                   pretrained=pretrained)


def _run_group(group, store, device, notify: Notify, stop, backend) -> Outcome:
    parts = list(group.parts())
    totals = [len(p.units()) for p in parts]
    trained = reused = 0
    outcome = None
    for i, part in enumerate(parts):
        if stop():
            break
        before, total = sum(totals[:i]), sum(totals)

        def shifted(event: Progress, before=before, total=total) -> None:
            if event.stage == "run":
                event = replace(event, done=before + event.done, total=total)
            notify(event)
        outcome = run_experiment(part, store, device=device, on_progress=shifted,
                                 should_stop=stop, backend=backend)
        trained, reused = trained + outcome.trained, reused + outcome.reused
        if outcome.cancelled:
            break
    return Outcome(trained=trained, reused=reused,
                   cancelled=outcome is None or outcome.cancelled or trained + reused < sum(totals),
                   pretrained=outcome.pretrained if outcome else None)
