"""Sweeps on a Ray cluster: the same runs and the same store, on more machines.

`run_sweep_on_ray` is `sweep.run_sweep` with the runs sent out as Ray tasks, one task per run.
The process that calls it (the job manager's worker, or the command line) is the Ray driver:

- it pretrains the backbone (or loads the cached checkpoint) and puts the weights into Ray's
  object store once; every task reads them from there, so workers need no shared disk and
  never pretrain;
- each task trains exactly one run with `SweepContext.run` (the one training loop) and returns
  its record; the driver writes the record to its own result store with `store.put`, as
  `run_sweep` does, so runs are keyed, deduplicated and kept exactly as with the local pool;
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
from engine.core.device import pick_device
from engine.core.pretrain import load_cached, pretrain
from engine.core.store import ResultStore
from engine.experiments.sweep import (Progress, RunPlan, SweepContext, SweepResult, SweepSpec, plan_runs,
                          run_finished, stored_records)

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
    """Stands in for a PretrainResult inside a task: the weights came through the object store."""

    def __init__(self, state: dict):
        self._state = state

    def load_state_dict(self) -> dict:
        return self._state


# One sweep's context per worker process: Ray reuses workers, so the next run of the same sweep
# on this worker skips loading the target and computing frozen features. Keyed by the spec's
# key and the device, holding one entry, and only ever read by the task running on this worker.
_CONTEXT: dict[tuple[str, str], SweepContext] = {}


def task_device(ray) -> torch.device:
    """CUDA when Ray assigned this task a GPU (it sets CUDA_VISIBLE_DEVICES), else the CPU."""
    return torch.device("cuda") if ray.get_gpu_ids() and torch.cuda.is_available() else torch.device("cpu")


def run_one(spec: SweepSpec, plan: RunPlan, weights: Optional[dict], threads: int) -> Optional[dict]:
    """One run of `spec` inside a Ray task; returns its record (None only if stopped)."""
    import ray

    torch.set_num_threads(max(1, threads))
    device = task_device(ray)
    key = (spec.key(), str(device))
    if key not in _CONTEXT:
        _CONTEXT.clear()
        _CONTEXT[key] = SweepContext(spec, device, _ShippedWeights(weights) if weights is not None else None)
    return _CONTEXT[key].run(plan)


# ---- the driver -----------------------------------------------------------------------------

def _describe_failure(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}".strip().rstrip(":")


def run_sweep_on_ray(spec: SweepSpec, store: Optional[ResultStore] = None,
                     address: Optional[str] = None,
                     on_progress: Optional[Callable[[Progress], None]] = None,
                     should_stop: Optional[Callable[[], bool]] = None, *,
                     gpus: Optional[float] = None, threads_per_run: int = 1,
                     max_retries: int = MAX_RETRIES,
                     task: Callable = run_one) -> SweepResult:
    """Train every run of `spec` the store lacks as Ray tasks on the cluster at `address`
    (default: TRANSFERLAB_RAY_ADDRESS, else "auto"), storing each record as it comes back.

    `gpus` is the GPU share of one task (default: see `gpus_per_run`), `threads_per_run` its
    CPUs and torch threads. `task` is the function a task calls (`run_one`; tests wrap it).
    Raises RayUnavailable when Ray is missing or the cluster unreachable, RayRunError when runs
    failed after `max_retries` (every other run is stored first)."""
    address = address or ray_address() or "auto"
    store = store or ResultStore()
    notify = on_progress or (lambda event: None)
    stop = should_stop or (lambda: False)
    import_ray()  # before any pretraining: a missing Ray or a silent address is reported at once
    check_reachable(address)
    spec.check_target_capacity()
    plans = plan_runs(spec)
    have = {r["run_key"] for r in store.get_many(p.run_key for p in plans)}
    todo = [p for p in plans if p.run_key not in have]

    done = len(have)
    failed: list[tuple[RunPlan, str]] = []
    with contextlib.ExitStack() as stack:
        ray = None
        if todo and not stop():  # connect first: a cluster that refuses us fails before pretraining
            ray = stack.enter_context(connected(address))
            stack.enter_context(_sigterm_raises())  # after ray.init, which sets a handler of its own
        pretrained = None
        if todo and spec.needs_pretraining():
            def pretrain_step(step: int, steps: int, loss: float) -> None:
                if step == steps or step % 20 == 0:
                    notify(Progress("pretrain", step, steps, f"pretraining on {spec.source}: loss {loss:.3f}"))
            pretrained = pretrain(spec.pretrain_config(), device=pick_device(), on_step=pretrain_step)
        elif spec.needs_pretraining():
            pretrained = load_cached(spec.pretrain_config())
        notify(Progress("run", done, len(plans), f"{done} of {len(plans)} runs already stored"))

        if ray is not None and not stop():
            share = gpus_per_run(ray, gpus)
            cpus = ray.cluster_resources().get("CPU", 0)
            weights = ray.put(pretrained.load_state_dict()) if pretrained is not None else None
            remote = ray.remote(task).options(num_cpus=threads_per_run, num_gpus=share,
                                              max_retries=max_retries, retry_exceptions=False)
            pending = {remote.remote(spec, plan, weights, threads_per_run): plan for plan in todo}
            notify(Progress("run", done, len(plans), f"{len(todo)} runs sent to the Ray cluster at "
                            f"{address} ({cpus:g} CPUs" + (f", {share:g} GPU per run)" if share else ")")))
            try:
                while pending and not stop():
                    ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_INTERVAL)
                    for ref in ready:
                        plan = pending.pop(ref)
                        try:
                            record = ray.get(ref)
                        except ray.exceptions.RayError as err:  # died after its retries, or raised
                            failed.append((plan, _describe_failure(err)))
                            continue
                        if record is None:
                            continue
                        if record.get("run_key") != plan.run_key or record.get("code_version") != ENGINE_VERSION:
                            failed.append((plan, f"the worker returned a record of engine version "
                                                 f"{record.get('code_version')}, not {ENGINE_VERSION}"))
                            continue
                        store.put(record)
                        done += 1
                        notify(run_finished(plan, record, done, len(plans)))
            finally:  # cancelled, interrupted or killed: no task of this sweep keeps running
                for ref in pending:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)
    if failed:
        plan, reason = failed[0]
        raise RayRunError(f"{len(failed)} run(s) failed on the Ray cluster after {max_retries} "
                          f"retries, e.g. {plan.strategy}, {plan.labels_per_class or 'all'} labels/class, "
                          f"seed {plan.seed}: {reason}; the {done - len(have)} finished runs are stored")
    return SweepResult(records=stored_records(spec, store), trained=done - len(have), reused=len(have),
                       cancelled=done < len(plans), pretrain=pretrained)
