"""Sweeps as background jobs in worker processes, shared by every session of one server.

Streamlit reruns a page's script on every widget change and abandons it when the tab goes
away, so training cannot live in a script thread. A `JobManager` (one per server process; the
app holds it in a module of its own, `ui.kit.jobs`, deliberately not in `st.cache_resource`,
whose clearing would orphan its jobs) runs each distinct sweep in its own worker process,
at most `max_workers` at a time, and queues the rest. Identical specs from any number of
sessions attach to the same job. Workers never touch Streamlit: they write each finished run
to the result store and send progress messages over a pipe, which a monitor thread folds into
the job's status for pages to poll. Cancelling kills the worker process; the runs it finished
are already committed to the store. With `spare_worker` (the app's default), while no job runs
one worker process waits with PyTorch and the engine imported and takes the next job, which then
starts training about two seconds sooner. With TRANSFERLAB_RAY_ADDRESS set, every job's worker
is a Ray driver instead: the experiment's units (a sweep's runs, a group's parts' runs, the
forgetting arms, the diagnostics' models) train as tasks on the cluster (`ray_backend`), the
worker stores what they return, and killing the worker cancels them.

A job runs any experiment of the one protocol (`engine.experiments.protocol`): a `SweepSpec`, a
`SweepGroup` (several sweeps as one job), the forgetting experiment, the fine-tuning diagnostics,
the LoRA merge check. Its worker calls the one driver, `run_experiment`, which stores each unit
as it finishes, so a cancelled or killed job loses nothing finished and a resubmitted one trains
only what the store lacks.

Not here: what a page draws (that is the page's business) and the training itself (`experiments`).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import threading
import time
import types
from collections import deque
from dataclasses import dataclass, replace
from typing import Optional, Union

from engine.core.store import ResultStore
from engine.experiments.protocol import Experiment, ExperimentGroup, run_experiment, unit_counts
from engine.experiments.sweep import SweepSpec

ACTIVE = ("queued", "running")
# Workers run at a lower CPU priority than the server process (Unix niceness 0..19). A classroom
# of sessions polling one job needs the server's thread promptly; training soaks up the rest.
WORKER_NICENESS = 10
# A worker killed from outside (the kernel's out-of-memory killer, an operator) is replaced this
# many times; the new worker trains only the runs the store still lacks. An exception inside the
# sweep is not retried: it would fail the same way again.
MAX_RESTARTS = 1
MAX_SPARE_DEATHS = 3  # a spare worker that keeps dying while it waits is not started again
ENV_PREFIX = "TRANSFERLAB_"  # the settings a spare worker takes from the server with its job


class JobLimitError(RuntimeError):
    """Submitting would exceed the per-session or the server-wide cap on active jobs."""


JobSpec = Union[Experiment, ExperimentGroup]  # a SweepSpec, a SweepGroup, a ForgettingConfig, ...


def spec_units(spec: JobSpec, store_path: str) -> tuple[int, int]:
    """(stored, total) units of a job's experiment."""
    return unit_counts(spec, ResultStore(store_path))


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job, safe to hand to any page."""

    job_id: str  # the spec's key: one job per distinct sweep
    spec: JobSpec  # the experiment the job runs
    state: str  # queued | running | done | cancelled | failed
    done: int  # runs of the spec in the store (including ones stored before this job)
    total: int  # runs in the spec
    trained: int  # runs this job has trained so far
    stage: str  # "waiting", "pretrain" or "run"
    message: str  # the latest progress line
    submitted_at: float
    started_at: Optional[float] = None  # when a worker began
    finished_at: Optional[float] = None
    queue_position: Optional[int] = None  # 1 = next to start; None unless queued
    error: Optional[str] = None
    watchers: int = 1  # sessions attached to this job
    restarts: int = 0  # times a killed worker was replaced
    pretrain_done: int = 0  # pretraining steps taken, while stage is "pretrain"
    pretrain_total: int = 0  # pretraining steps in all (0: no pretraining reported yet)
    runs_since: Optional[float] = None  # when the runs last started training (after any pretraining)
    trained_before: int = 0  # runs trained before `runs_since`

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.time()) - self.started_at

    def eta_seconds(self) -> Optional[float]:
        """Seconds left, at the rate this job's runs have trained on this machine since they
        last started (pretraining, and a group's next pretraining, are not runs); None before
        the first run of that stretch has finished, so there is never a first guess."""
        if self.state != "running" or self.runs_since is None:
            return None
        trained = self.trained - self.trained_before
        if trained < 1:
            return None
        return (time.time() - self.runs_since) / trained * (self.total - self.done)


def _prepare_worker(threads: int) -> None:
    try:  # below the server in CPU priority: pages stay responsive, training takes what is left
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # not on this platform, or not allowed
        pass
    import torch

    torch.set_num_threads(max(1, threads))


def _worker_main(spec: JobSpec, store_path: str, threads: int, conn) -> None:
    """Entry point of a worker process: run the sweep, stream progress, report the end."""
    _prepare_worker(threads)
    _run_job(spec, store_path, conn)


def _spare_main(threads: int, tasks, conn) -> None:
    """Entry point of a spare worker: started while the server is idle, it imports PyTorch and
    the engine and reads the default lesson's datasets (two seconds or so) before any job
    exists, then waits for its one job."""
    _prepare_worker(threads)
    import engine.infra.ray_backend  # noqa: F401  (what a job needs, imported ahead)
    from engine.core.datasets import load_dataset

    default = SweepSpec()
    for name in (default.source, default.target):  # built-in and offline: kept for the job
        try:
            load_dataset(name)
        except Exception:  # noqa: BLE001  (the job itself will report what is wrong)
            pass

    try:
        task = tasks.recv()
    except (EOFError, OSError):
        return  # the server went away or closed the spare
    finally:
        tasks.close()
    if task is not None:
        spec, store_path, environ = task
        for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
            del os.environ[name]
        os.environ.update(environ)  # the server's settings now, not when the spare started
        _run_job(spec, store_path, conn)


def _run_job(spec: JobSpec, store_path: str, conn) -> None:
    try:
        def on_progress(event) -> None:
            conn.send(("progress", event.stage, event.done, event.total, event.message,
                       event.record is not None))

        from engine.infra.ray_backend import ray_address, run_on_ray

        if ray_address():  # TRANSFERLAB_RAY_ADDRESS: every experiment's units go to the cluster
            trained = run_on_ray(spec, ResultStore(store_path), on_progress=on_progress).trained
        else:
            trained = run_experiment(spec, ResultStore(store_path), on_progress=on_progress).trained
        conn.send(("finished", trained))
    except BaseException as err:  # reported to the page; the finished runs are stored already
        conn.send(("failed", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


def _close_pipes(spare: tuple) -> None:
    """Close the server's ends of a spare worker's two pipes."""
    spare[1].close()
    spare[2].close()


def _stop_process(proc) -> None:
    proc.terminate()
    proc.join(5)
    if proc.is_alive():
        proc.kill()
        proc.join(5)


@contextlib.contextmanager
def _bare_main():
    """Hide the parent's `__main__` while a worker is spawned.

    A spawned child re-imports the parent's main module before it runs the target. Under
    `streamlit run`, `__main__` is the app script itself (Streamlit installs each run's module
    there), so every worker would re-run app.py (pages, sidebar and a job manager of its own)
    before training. A main module with neither `__file__` nor `__spec__` is not re-imported.
    """
    real = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if real is not None:
            sys.modules["__main__"] = real


def default_workers() -> tuple[int, int]:
    """(worker processes, torch threads each): about two cores per worker, at most 4 workers."""
    cores = os.cpu_count() or 1
    workers = max(1, min(4, cores // 2))
    return workers, max(1, cores // workers)


class JobManager:
    """Runs sweeps in worker processes; thread-safe; one instance per server process."""

    def __init__(self, store_path: Optional[str] = None, *, max_workers: Optional[int] = None,
                 threads_per_worker: Optional[int] = None, per_session_cap: int = 4,
                 max_active: int = 16, poll_interval: float = 0.1, spare_worker: bool = False):
        workers, threads = default_workers()
        self.store_path = str(store_path or ResultStore().path)
        self.max_workers = max_workers or workers
        self.threads_per_worker = threads_per_worker or threads
        self.per_session_cap = per_session_cap
        self.max_active = max_active
        self._ctx = mp.get_context("spawn")  # safe beside the server's threads and for CUDA
        self._lock = threading.RLock()
        self._jobs: dict[str, JobStatus] = {}
        self._owners: dict[str, str] = {}  # job id -> session that started it
        self._watchers: dict[str, set[str]] = {}
        self._queue: deque[str] = deque()
        self._procs: dict[str, tuple] = {}  # job id -> (process, connection)
        self._closed = False
        self.jobs_started = 0  # jobs handed to a worker process so far (for the load test)
        # with spare_worker, while no job runs one worker process waits, PyTorch imported, so the
        # next job starts training at once (the app turns it on; tests mostly leave it off)
        self.spare_worker = spare_worker
        self._spare: Optional[tuple] = None  # (process, task connection, progress connection)
        self._spare_deaths = 0  # spares that died while waiting; after MAX_SPARE_DEATHS, no more
        self._poll_interval = poll_interval
        self._monitor = threading.Thread(target=self._monitor_loop, name="transferlab-jobs", daemon=True)
        self._monitor.start()

    # ---- what pages call ----------------------------------------------------------------------

    def submit(self, spec: JobSpec, session_id: str = "cli") -> JobStatus:
        """Start (or join) the job for `spec`. Runs already stored are never trained again."""
        if not isinstance(spec, (Experiment, ExperimentGroup)):
            raise TypeError(f"a job runs an experiment, not {type(spec).__name__}")
        spec.check()
        job_id = spec.key()
        with self._lock:
            current = self._jobs.get(job_id)
            if current is not None and current.active:
                self._watchers[job_id].add(session_id)
                return self._snapshot(job_id)
            stored, total = spec_units(spec, self.store_path)
            now = time.time()
            if stored == total:  # nothing to train: a finished job at once
                self._jobs[job_id] = JobStatus(job_id, spec, "done", stored, total, 0, "run",
                                               "every run was already stored", now, now, now)
                self._watchers[job_id] = {session_id}
                return self._snapshot(job_id)
            mine = sum(1 for j, owner in self._owners.items()
                       if owner == session_id and self._jobs[j].active)
            if mine >= self.per_session_cap:
                raise JobLimitError(f"you already have {mine} experiments running or queued; "
                                    "wait for one to finish or cancel it")
            if sum(1 for j in self._jobs.values() if j.active) >= self.max_active:
                raise JobLimitError("the server is at its limit of experiments; try again in a minute")
            self._jobs[job_id] = JobStatus(job_id, spec, "queued", stored, total, 0, "waiting",
                                           "waiting for a free worker", now)
            self._owners[job_id] = session_id
            self._watchers[job_id] = {session_id}
            self._queue.append(job_id)
            self._start_queued()
            return self._snapshot(job_id)

    def status(self, job_id: str) -> Optional[JobStatus]:
        with self._lock:
            return self._snapshot(job_id) if job_id in self._jobs else None

    def jobs(self) -> list[JobStatus]:
        with self._lock:
            return [self._snapshot(j) for j in self._jobs]

    def load(self) -> dict[str, int]:
        """Jobs running and queued now, and jobs handed to a worker since the server began."""
        with self._lock:
            return {"running": len(self._procs), "queued": len(self._queue),
                    "started": self.jobs_started}

    def cancel(self, job_id: str) -> bool:
        """Stop the job's worker for real; finished runs stay in the store. False if not active."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.active:
                return False
            if job_id in self._queue:
                self._queue.remove(job_id)
            proc_conn = self._procs.pop(job_id, None)
            self._jobs[job_id] = replace(job, state="cancelled", finished_at=time.time(),
                                         message="cancelled; the finished runs are kept")
        if proc_conn is not None:
            proc, conn = proc_conn
            _stop_process(proc)
            conn.close()
        with self._lock:
            self._refresh_done(job_id)
            self._start_queued()
        return True

    def shutdown(self) -> None:
        """Kill every worker (finished runs are stored) and stop the monitor."""
        self._closed = True
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            _stop_process(spare[0])
            _close_pipes(spare)
        for job_id in list(self._procs):
            self.cancel(job_id)
        with self._lock:
            for job_id in list(self._queue):
                self.cancel(job_id)

    # ---- internals ----------------------------------------------------------------------------

    def _snapshot(self, job_id: str) -> JobStatus:
        job = self._jobs[job_id]
        position = self._queue.index(job_id) + 1 if job_id in self._queue else None
        return replace(job, queue_position=position, watchers=len(self._watchers.get(job_id, ())))

    def _refresh_done(self, job_id: str) -> None:
        job = self._jobs[job_id]
        self._jobs[job_id] = replace(job, done=spec_units(job.spec, self.store_path)[0])

    def _start_queued(self) -> None:
        while self._queue and len(self._procs) < self.max_workers and not self._closed:
            job_id = self._queue.popleft()
            spare, self._spare = self._spare, None
            if spare is not None and spare[0].is_alive():
                proc, tasks, parent = spare
                environ = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
                tasks.send((self._jobs[job_id].spec, self.store_path, environ))
                tasks.close()
            else:
                if spare is not None:  # it died while waiting: start a fresh worker
                    _close_pipes(spare)
                parent, child = self._ctx.Pipe(duplex=False)
                proc = self._ctx.Process(target=_worker_main, name=f"transferlab-sweep-{job_id[:8]}",
                                         args=(self._jobs[job_id].spec, self.store_path,
                                               self.threads_per_worker, child), daemon=True)
                with _bare_main():
                    proc.start()
                child.close()
            self.jobs_started += 1
            self._procs[job_id] = (proc, parent)
            job = self._jobs[job_id]
            self._jobs[job_id] = replace(  # a restarted job keeps its start and its reason
                job, state="running", started_at=job.started_at or time.time(),
                message=job.message if job.restarts else "starting a worker")

    def _start_spare(self) -> None:
        """Start the spare worker when none is waiting and the server is idle (so its start-up
        never competes with a running job)."""
        if not self.spare_worker or self._closed or self._procs or self._queue:
            return
        if self._spare is not None:
            if self._spare[0].is_alive():
                return
            _close_pipes(self._spare)
            self._spare = None
            self._spare_deaths += 1
            if self._spare_deaths >= MAX_SPARE_DEATHS:  # something kills them: jobs start fresh
                self.spare_worker = False
                return
        tasks_child, tasks = self._ctx.Pipe(duplex=False)
        parent, child = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_spare_main, name="transferlab-spare",
                                 args=(self.threads_per_worker, tasks_child, child), daemon=True)
        with _bare_main():
            proc.start()
        tasks_child.close()
        child.close()
        self._spare = (proc, tasks, parent)

    def _monitor_loop(self) -> None:
        while not self._closed:
            with self._lock:
                for job_id, (proc, conn) in list(self._procs.items()):
                    self._drain(job_id, proc, conn)
                self._start_queued()
                self._start_spare()
            time.sleep(self._poll_interval)

    def _drain(self, job_id: str, proc, conn) -> None:
        job = self._jobs[job_id]
        ended = None
        try:
            while conn.poll():
                msg = conn.recv()
                if msg[0] == "progress":
                    _, stage, done, total, message, finished_run = msg
                    if stage == "pretrain":  # the runs' clock stops while a backbone trains
                        job = replace(job, runs_since=None)
                    elif job.runs_since is None:
                        job = replace(job, runs_since=time.time(), trained_before=job.trained)
                    job = replace(job, stage=stage, message=message,
                                  done=done if stage == "run" else job.done,
                                  pretrain_done=done if stage == "pretrain" else job.pretrain_done,
                                  pretrain_total=total if stage == "pretrain" else job.pretrain_total,
                                  trained=job.trained + (1 if finished_run else 0))
                else:
                    ended = msg
        except (EOFError, OSError):
            pass
        killed = ended is None and not proc.is_alive()  # it died without saying why
        if killed:
            ended = ("failed", f"the worker stopped unexpectedly (exit code {proc.exitcode})")
        if ended is None:
            self._jobs[job_id] = job
            return
        proc.join(5)  # the worker has ended: reap it and free its slot
        conn.close()
        del self._procs[job_id]
        if killed and job.restarts < MAX_RESTARTS:  # killed from outside: a fresh worker, once
            self._jobs[job_id] = replace(job, state="queued", stage="waiting",
                                         restarts=job.restarts + 1, message=f"{ended[1]}; restarting it")
            self._queue.appendleft(job_id)
        else:
            state = "done" if ended[0] == "finished" else "failed"
            self._jobs[job_id] = replace(job, state=state, finished_at=time.time(),
                                         error=ended[1] if state == "failed" else None,
                                         message="finished" if state == "done" else ended[1])
        self._refresh_done(job_id)
