"""Experiments on a Ray cluster: the same units and the same store, on more machines.

`RayBackend` is a backend of the one driver, `engine.experiments.protocol.run_experiment`: the
driver compares units with the store, pretrains and stores every record exactly as it does for
the local pool; only where the units train differs. `run_sweep_on_ray` runs a sweep this way.
The process that calls it (the job manager's worker, or the command line) is the Ray driver:

- it pretrains the backbone (or loads the cached checkpoint) and puts the weights into Ray's
  object store once; every task reads them from there, so workers need no shared disk and
  never pretrain;
- each task trains exactly one unit with the experiment's own workbench (for a sweep,
  `SweepContext`, the one training loop) and returns its record; the driver stores it, so units
  are keyed, deduplicated and kept exactly as with the local pool;
- cancelling (`should_stop`, Ctrl-C, or the job manager killing the driver with SIGTERM)
  cancels every task not yet returned; a driver that dies outright takes its tasks with it
  (Ray kills the tasks of a job whose driver has gone), and nothing it had not stored yet is
  written by anyone else;
- a task whose process dies (out of memory, a node lost) is retried by Ray up to `max_retries`
  times; a run that still fails is reported in a `RayRunError` once the others have finished,
  never dropped silently.

A worker node needs the packages of requirements.txt and requirements-ray.txt; the `engine`
package itself travels with each job (Ray's `py_modules`), so every task runs the driver's code.
A target that is not built in (a downloaded dataset, an uploaded zip) must also be present in
the worker's data directory. `import ray` happens inside functions only: without Ray installed
the rest of the app runs as before. Not here: what a run computes (`sweep`), the job queue
(`jobs`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Callable, Optional

import torch

from engine import ENGINE_VERSION
from engine.core.pretrain import PretrainResult
from engine.core.store import ResultStore
from engine.experiments import protocol
from engine.experiments.protocol import Progress, Unit
from engine.experiments.sweep import SweepResult, SweepSpec, sweep_result

RAY_ADDRESS_ENV = "TRANSFERLAB_RAY_ADDRESS"  # e.g. "auto" or "10.0.0.5:6379"; unset: the local pool
GPU_FRACTION_ENV = "TRANSFERLAB_RAY_GPUS"  # GPUs per run (e.g. 0.25 or 1); unset: the default below
DEFAULT_GPU_FRACTION = 0.25  # four runs share a GPU when the cluster has GPUs
MAX_RETRIES = 2  # times Ray re-runs a task whose worker process died
CONNECT_TIMEOUT = 5.0  # seconds to reach the cluster's address before giving up
WAIT_INTERVAL = 0.5  # seconds between checks of should_stop while tasks run
ENGINE_DIR = Path(__file__).resolve().parents[1]
INSTALL_HINT = "pip install -r requirements-ray.txt"


class RayError(RuntimeError):
    """Anything about the cluster the user must act on; the message says what."""


class RayUnavailable(RayError):
    """Ray is not installed, or the cluster cannot be reached."""


class RayRunError(RayError):
    """Some runs failed on the cluster even after Ray's retries (the others are stored)."""


def ray_address() -> Optional[str]:
    """The cluster the job manager sends sweeps to (TRANSFERLAB_RAY_ADDRESS), or None."""
    return os.environ.get(RAY_ADDRESS_ENV, "").strip() or None


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"Ray is not installed in this environment ({INSTALL_HINT}), "
                             f"or leave out --ray / unset {RAY_ADDRESS_ENV}") from None
    return ray


def check_reachable(address: str) -> None:
    """Fail fast, in one line, when a host:port address does not answer (ray.init would retry
    for minutes). "auto" and "local" are left to Ray, which answers at once."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"'{address}' is not a Ray address: use auto or HOST:PORT "
                             "(the head's address that `ray start --head` prints)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as err:
        raise RayUnavailable(f"cannot reach the Ray cluster at {address}: "
                             f"{err.strerror or err}; is `ray start --head` running there?") from None


@contextlib.contextmanager
def connected(address: str):
    """Ray, connected to the cluster at `address`; disconnects on exit if it connected here."""
    ray = import_ray()
    if ray.is_initialized():  # the caller (a test, a lesson build) holds a connection already
        yield ray
        return
    check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                 runtime_env={"py_modules": [str(ENGINE_DIR)],
                              "excludes": ["__pycache__", "*.pyc"]})
    except (ConnectionError, RuntimeError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = ("; if the cluster uses token authentication, set RAY_AUTH_MODE=token and give "
                "this machine its token (~/.ray/auth_token or RAY_AUTH_TOKEN)"
                if address != "auto" and not os.environ.get("RAY_AUTH_MODE") else "")
        raise RayUnavailable(f"cannot connect to the Ray cluster at {address}: {first_line}{hint}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _sigterm_raises():
    """Turn SIGTERM (how the job manager cancels a worker) into SystemExit in this process, so
    the driver's `finally` cancels its tasks before the process ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def gpus_per_run(ray, requested: Optional[float] = None) -> float:
    """GPUs each task asks Ray for: `requested`, else TRANSFERLAB_RAY_GPUS, else a quarter of
    a GPU when the cluster has GPUs and none when it has not."""
    if requested is None and os.environ.get(GPU_FRACTION_ENV, "").strip():
        try:
            requested = float(os.environ[GPU_FRACTION_ENV])
        except ValueError:
            raise RayError(f"{GPU_FRACTION_ENV} must be a number of GPUs per run, e.g. 0.25, "
                           f"got '{os.environ[GPU_FRACTION_ENV]}'") from None
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    if requested is None:
        return DEFAULT_GPU_FRACTION if has_gpus else 0.0
    if requested < 0 or (requested > 1 and requested != int(requested)):
        raise RayError(f"GPUs per run must be a fraction up to 1 or a whole number, got {requested}")
    if requested > 0 and not has_gpus:
        raise RayError(f"runs ask for {requested} GPU each but the Ray cluster has no GPUs")
    return float(requested)


# ---- inside a Ray task ----------------------------------------------------------------------

class _ShippedWeights:
    """Stands in for a PretrainResult inside a task: the weights came through the object store,
    with the facts about them a workbench reads."""

    def __init__(self, pretrained: PretrainResult, state: dict):
        self.config = pretrained.config
        self.source_accuracy = pretrained.source_accuracy
        self._state = state

    def load_state_dict(self) -> dict:
        return self._state


# One experiment's workbench per worker process: Ray reuses workers, so the next unit of the same
# experiment on this worker skips loading the data and computing frozen features. Keyed by the
# experiment's key and the device, holding one entry, and only ever read by the task running on
# this worker.
_BENCH: dict[tuple[str, str], object] = {}


def task_device(ray) -> torch.device:
    """CUDA when Ray assigned this task a GPU (it sets CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda") if ray.get_gpu_ids() and torch.cuda.is_available() else torch.device("cpu")


def run_one(experiment, unit: Unit, shipped: Optional[_ShippedWeights], threads: int) -> Optional[dict]:
    """One unit of `experiment` inside a Ray task; returns its record (None only if stopped)."""
    import ray

    torch.set_num_threads(max(1, threads))
    device = task_device(ray)
    key = (experiment.key(), str(device))
    if key not in _BENCH:
        _BENCH.clear()
        _BENCH[key] = experiment.workbench(device, shipped)
    return _BENCH[key].train(unit, lambda: False, lambda message: None)


# ---- the backend ----------------------------------------------------------------------------

def _describe_failure(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}".strip().rstrip(":")


class RayBackend:
    """Units train as Ray tasks on the cluster at `address` (default: TRANSFERLAB_RAY_ADDRESS,
    else "auto"), one task per unit.

    `gpus` is the GPU share of one task (default: see `gpus_per_run`), `threads_per_run` its
    CPUs and torch threads, `task` the function a task calls (`run_one`; tests wrap it). Units
    that failed after `max_retries` are collected in `failed` while the others are stored;
    `run_on_ray` raises them as one RayRunError."""

    def __init__(self, address: Optional[str] = None, *, gpus: Optional[float] = None,
                 threads_per_run: int = 1, max_retries: int = MAX_RETRIES, task: Callable = run_one):
        self.address = address or ray_address() or "auto"
        self.gpus, self.threads_per_run, self.max_retries, self.task = gpus, threads_per_run, max_retries, task
        self.failed: list[tuple[Unit, str]] = []
        self._ray = None
        import_ray()  # before any pretraining: a missing Ray or a silent address is reported at once
        check_reachable(self.address)

    @contextlib.contextmanager
    def connect(self):
        with connected(self.address) as ray, _sigterm_raises():  # after ray.init, which sets its own
            self._ray = ray
            try:
                yield
            finally:
                self._ray = None

    def train(self, experiment, pretrained, todo, device, should_stop, say):
        ray = self._ray
        share = gpus_per_run(ray, self.gpus)
        cpus = ray.cluster_resources().get("CPU", 0)
        shipped = ray.put(_ShippedWeights(pretrained, pretrained.load_state_dict())
                          if pretrained is not None else None)
        remote = ray.remote(self.task).options(num_cpus=self.threads_per_run, num_gpus=share,
                                               max_retries=self.max_retries, retry_exceptions=False)
        pending = {remote.remote(experiment, unit, shipped, self.threads_per_run): unit for unit in todo}
        say(f"{len(todo)} units sent to the Ray cluster at {self.address} ({cpus:g} CPUs"
            + (f", {share:g} GPU per run)" if share else ")"))
        try:
            while pending and not should_stop():
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_INTERVAL)
                for ref in ready:
                    unit = pending.pop(ref)
                    record = self._collect(ray, ref, unit)
                    if record is not None:
                        yield unit, record
        finally:  # cancelled, interrupted or killed: no task of this experiment keeps running
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def _collect(self, ray, ref, unit: Unit) -> Optional[dict]:
        """A finished task's record, or None with the failure noted."""
        try:
            record = ray.get(ref)
        except ray.exceptions.RayError as err:  # died after its retries, or raised
            self.failed.append((unit, _describe_failure(err)))
            return None
        if record is not None and record.get("code_version") != ENGINE_VERSION:
            self.failed.append((unit, f"the worker returned a record of engine version "
                                      f"{record.get('code_version')}, not {ENGINE_VERSION}"))
            return None
        return record


def run_on_ray(experiment, store: Optional[ResultStore] = None, backend: Optional[RayBackend] = None,
               on_progress: Optional[Callable[[Progress], None]] = None,
               should_stop: Optional[Callable[[], bool]] = None):
    """`run_experiment` on a Ray cluster; raises RayRunError when units failed after their
    retries (every other unit is stored first)."""
    backend = backend or RayBackend()
    outcome = protocol.run_experiment(experiment, store, on_progress=on_progress, should_stop=should_stop,
                             backend=backend)
    if backend.failed:
        unit, reason = backend.failed[0]
        raise RayRunError(f"{len(backend.failed)} run(s) failed on the Ray cluster after "
                          f"{backend.max_retries} retries, e.g. {unit.label}: {reason}; the "
                          f"{outcome.trained} finished runs are stored")
    return outcome


def run_sweep_on_ray(spec: SweepSpec, store: Optional[ResultStore] = None,
                     address: Optional[str] = None,
                     on_progress: Optional[Callable[[Progress], None]] = None,
                     should_stop: Optional[Callable[[], bool]] = None, *,
                     gpus: Optional[float] = None, threads_per_run: int = 1,
                     max_retries: int = MAX_RETRIES,
                     task: Callable = run_one) -> SweepResult:
    """Train every run of `spec` the store lacks as Ray tasks (see `RayBackend`), storing each
    record as it comes back. Raises RayUnavailable when Ray is missing or the cluster
    unreachable, RayRunError when runs failed after `max_retries`."""
    store = store or ResultStore()
    backend = RayBackend(address, gpus=gpus, threads_per_run=threads_per_run,
                         max_retries=max_retries, task=task)
    return sweep_result(spec, store, run_on_ray(spec, store, backend, on_progress, should_stop))
