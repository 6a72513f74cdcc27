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

from engine.core import quotas
from engine.core.quotas import NOBODY, Who
from engine.core.store import ResultStore
from engine.experiments.protocol import Experiment, ExperimentGroup, run_experiment, unit_counts
from engine.experiments.sweep import SweepSpec

ACTIVE = ("queued", "running")
# Workers run at a lower CPU priority than the server process (Unix niceness 0..19). A classroom
# of sessions polling one job needs the server's thread promptly; training soaks up the rest.
# `TRANSFERLAB_WORKER_NICENESS` sets another (0: the server's own priority; the test suite uses
# it, where two test processes already share the cores and a worker at 10 would get a tenth).
WORKER_NICENESS = 10
NICENESS_ENV = "TRANSFERLAB_WORKER_NICENESS"
THREADS_ENV = "TRANSFERLAB_WORKER_THREADS"  # torch threads of each worker (default: its cores)
# A worker killed from outside (the kernel's out-of-memory killer, an operator) is replaced this
# many times; the new worker trains only the runs the store still lacks. An exception inside the
# sweep is not retried: it would fail the same way again.
MAX_RESTARTS = 1
MAX_SPARE_DEATHS = 3  # a spare worker that keeps dying while it waits is not started again
ENV_PREFIX = "TRANSFERLAB_"  # the settings a spare worker takes from the server with its job
WORKER_ENV = "TRANSFERLAB_IN_WORKER"  # "1" inside a job's worker process
# Fair turns: while another visitor's job waits for a worker, a running job gives the worker up
# after SLICE_S seconds of its turn and at least one stored run (so every turn makes progress,
# however slowly a worker starts), at the end of the run in hand (nothing half-trained is lost;
# its stored runs count), and goes to the back of the queue; the next job is the one whose
# visitor has waited longest for a turn. A worker's start costs a few seconds (START_S).
SLICE_S = 45.0
START_S = 5.0
WATCH_S = 15.0  # a session counts as watching a job while its page polled it this recently
UNWATCHED_S = 300.0  # the app cancels a job no page has shown for this long (finished runs kept)
PACE_WINDOW = 200  # the server's pace: the latest this many stored runs


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
    askers: int = 1  # sessions that pressed Run for it and have not cancelled
    turns: int = 0  # times it gave the worker up for another visitor's job (`SLICE_S`)
    jobs_ahead: int = 0  # while queued: active jobs of other visitors it shares the workers with
    runs_ahead: int = 0  # and the runs those jobs still have to train
    turn_wait_s: Optional[float] = None  # while queued: at most how long until its turn
    reason: str = ""  # why it ended, when it was cancelled: "asked", "unwatched" or "shutdown"

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


def worker_niceness() -> int:
    """How far below the server a worker runs (`NICENESS_ENV`, 0..19; WORKER_NICENESS when unset
    or not a number)."""
    try:
        return min(19, max(0, int(os.environ.get(NICENESS_ENV, WORKER_NICENESS))))
    except ValueError:
        return WORKER_NICENESS


def _prepare_worker(threads: int) -> None:
    os.environ[WORKER_ENV] = "1"  # code that trains can tell it runs beside a busy server
    try:  # below the server in CPU priority: pages stay responsive, training takes what is left
        os.nice(worker_niceness())
    except (AttributeError, OSError):  # not on this platform, or not allowed
        pass
    import torch

    torch.set_num_threads(max(1, threads))


def _worker_main(spec: JobSpec, store_path: str, threads: int, conn, turn) -> None:
    """Entry point of a worker process: run the sweep, stream progress, report the end; when
    the server sets `turn`, stop after the run in hand (another visitor's job takes a turn)."""
    _prepare_worker(threads)
    _run_job(spec, store_path, conn, turn)


def _spare_main(threads: int, tasks, conn, turn) -> None:
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
        for name in [n for n in os.environ if n.startswith(ENV_PREFIX) and n != WORKER_ENV]:
            del os.environ[name]
        os.environ.update(environ)  # the server's settings now, not when the spare started
        _run_job(spec, store_path, conn, turn)


def _run_job(spec: JobSpec, store_path: str, conn, turn=None) -> None:
    try:
        def on_progress(event) -> None:
            conn.send(("progress", event.stage, event.done, event.total, event.message,
                       event.record is not None))

        from engine.infra.ray_backend import ray_address, run_on_ray

        if ray_address():  # TRANSFERLAB_RAY_ADDRESS: every experiment's units go to the cluster
            trained = run_on_ray(spec, ResultStore(store_path), on_progress=on_progress).trained
        else:
            yielding = turn.is_set if turn is not None else None
            outcome = run_experiment(spec, ResultStore(store_path), on_progress=on_progress,
                                     should_stop=yielding)
            if outcome.cancelled and yielding is not None and yielding():
                conn.send(("yielded", outcome.trained))  # its turn is over; the rest waits
                return
            trained = outcome.trained
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
    """(worker processes, torch threads each): about two cores per worker, at most 4 workers;
    `THREADS_ENV` sets the threads (the test suite: 1, beside its other test processes)."""
    cores = os.cpu_count() or 1
    workers = max(1, min(4, cores // 2))
    threads = max(1, cores // workers)
    try:
        threads = max(1, int(os.environ.get(THREADS_ENV, threads)))
    except ValueError:
        pass
    return workers, threads


class JobManager:
    """Runs sweeps in worker processes; thread-safe; one instance per server process.

    Who asks: each job remembers the sessions that pressed Run for it (`askers`) and the
    visitor who submitted it (`engine.core.quotas.Who`). With `run_quotas`, a visitor, an
    address and the server may each have only so many runs queued or training (`quotas.LIMITS`);
    jobs of different visitors take turns on the workers (`SLICE_S`); `leave` takes a session
    off a job, which stops when no asker is left; with `unwatched_after`, a job no page has
    polled (`watch`) for that long is cancelled. The monitor thread survives anything one job
    throws: that job fails with the error, frees its worker, and the others go on."""

    def __init__(self, store_path: Optional[str] = None, *, max_workers: Optional[int] = None,
                 threads_per_worker: Optional[int] = None, per_session_cap: int = 4,
                 max_active: int = 16, poll_interval: float = 0.1, spare_worker: bool = False,
                 run_quotas: bool = False, slice_s: Optional[float] = SLICE_S,
                 unwatched_after: Optional[float] = None):
        workers, threads = default_workers()
        self.store_path = str(store_path or ResultStore().path)
        self.max_workers = max_workers or workers
        self.threads_per_worker = threads_per_worker or threads
        self.per_session_cap = per_session_cap
        self.max_active = max_active
        self.run_quotas = run_quotas
        self.slice_s = slice_s  # None: a job keeps its worker to the end
        self.unwatched_after = unwatched_after
        self._ctx = mp.get_context("spawn")  # safe beside the server's threads and for CUDA
        self._lock = threading.RLock()
        self._jobs: dict[str, JobStatus] = {}
        self._owners: dict[str, tuple[str, Who]] = {}  # job id -> (session, visitor) that started it
        self._askers: dict[str, set[str]] = {}  # job id -> sessions that asked and did not leave
        self._seen: dict[str, dict[str, float]] = {}  # job id -> {session: when it last polled}
        self._queue: deque[str] = deque()
        # job id -> (process, connection, turn event, when its turn began, runs trained by then)
        self._procs: dict[str, tuple] = {}
        self._last_turn: dict[str, float] = {}  # visitor or address key -> its job's latest turn
        self._finished_runs: deque[float] = deque(maxlen=PACE_WINDOW)  # when runs were stored
        self._closed = False
        self.jobs_started = 0  # jobs handed to a worker process so far (for the load test)
        self.monitor_errors = 0  # exceptions the monitor caught and survived
        # with spare_worker, while no job runs one worker process waits, PyTorch imported, so the
        # next job starts training at once (the app turns it on; tests mostly leave it off)
        self.spare_worker = spare_worker
        self._spare: Optional[tuple] = None  # (process, task connection, progress connection, turn)
        self._spare_deaths = 0  # spares that died while waiting; after MAX_SPARE_DEATHS, no more
        self._poll_interval = poll_interval
        self._monitor = threading.Thread(target=self._monitor_loop, name="transferlab-jobs", daemon=True)
        self._monitor.start()

    # ---- what pages call ----------------------------------------------------------------------

    def submit(self, spec: JobSpec, session_id: str = "cli", who: Who = NOBODY) -> JobStatus:
        """Start (or join) the job for `spec`. Runs already stored are never trained again.
        JobLimitError when a cap or quota refuses it (the message says which and why)."""
        if not isinstance(spec, (Experiment, ExperimentGroup)):
            raise TypeError(f"a job runs an experiment, not {type(spec).__name__}")
        spec.check()
        job_id = spec.key()
        with self._lock:
            current = self._jobs.get(job_id)
            if current is not None and current.active:
                self._askers[job_id].add(session_id)
                self._seen[job_id][session_id] = time.time()
                return self._snapshot(job_id)
            stored, total = spec_units(spec, self.store_path)
            now = time.time()
            if stored == total:  # nothing to train: a finished job at once
                self._jobs[job_id] = JobStatus(job_id, spec, "done", stored, total, 0, "run",
                                               "every run was already stored", now, now, now)
                self._askers[job_id], self._seen[job_id] = {session_id}, {session_id: now}
                return self._snapshot(job_id)
            mine = sum(1 for j, (owner, _) in self._owners.items()
                       if owner == session_id and self._jobs[j].active)
            if mine >= self.per_session_cap:
                raise JobLimitError(f"you already have {mine} experiments running or queued; "
                                    "wait for one to finish or cancel it")
            if sum(1 for j in self._jobs.values() if j.active) >= self.max_active:
                raise JobLimitError("the server is at its limit of experiments; try again in a minute")
            if self.run_quotas and not who.exempt:
                self._check_runs(who, total - stored)
            self._jobs[job_id] = JobStatus(job_id, spec, "queued", stored, total, 0, "waiting",
                                           "waiting for a free worker", now)
            self._owners[job_id] = (session_id, who)
            self._askers[job_id], self._seen[job_id] = {session_id}, {session_id: now}
            self._queue.append(job_id)
            self._start_queued()
            return self._snapshot(job_id)

    def _check_runs(self, who: Who, runs: int) -> None:
        """JobLimitError when `runs` more would take `who` or the server over its run limit."""
        left = {j: job.total - job.done for j, job in self._jobs.items() if job.active}
        server = sum(left.values())
        if server + runs > quotas.limit("SERVER_RUNS"):
            pace = self.pace()
            wait = f" (about {max(1, round(server / pace / 60))} min at this server's pace of " \
                   f"{pace * 60:.0f} runs a minute)" if pace else ""
            raise JobLimitError(f"the server is busy: {server:,} runs are queued or training "
                                f"ahead of you{wait}, and it takes at most "
                                f"{quotas.limit('SERVER_RUNS'):,}; try again when some have "
                                "finished")
        for key, name in ((who.visitor_key, "RUNS"), (who.address_key, "RUNS_PER_ADDRESS")):
            if key == who.address_key and who.visitor_key == key and name == "RUNS_PER_ADDRESS":
                continue  # no cookie: the address is the visitor, under the visitor's limit
            most = quotas.limit(name)
            held = sum(n for j, n in left.items() if key in self._owners[j][1].keys)
            if runs > most:
                raise JobLimitError(f"these settings have {runs:,} runs to train, and one "
                                    f"visitor may queue at most {most:,} at a time: choose fewer "
                                    "seeds, sizes or strategies")
            if held + runs > most:
                whose = "you have" if name == "RUNS" else "your network address has"
                raise JobLimitError(f"{whose} {held:,} runs queued or training, and these "
                                    f"settings add {runs:,} (at most {most:,} at a time); wait "
                                    "for them to finish or cancel one")

    def status(self, job_id: str) -> Optional[JobStatus]:
        with self._lock:
            return self._snapshot(job_id) if job_id in self._jobs else None

    def watch(self, job_id: str, session_id: str) -> None:
        """Note that `session_id`'s page shows the job now (its live panel polls every second)."""
        with self._lock:
            if job_id in self._seen:
                self._seen[job_id][session_id] = time.time()

    def asked(self, job_id: str, session_id: str) -> bool:
        """Whether `session_id` pressed Run for the job and has not cancelled since."""
        with self._lock:
            return session_id in self._askers.get(job_id, ())

    def jobs(self) -> list[JobStatus]:
        with self._lock:
            return [self._snapshot(j) for j in self._jobs]

    def load(self) -> dict[str, int]:
        """Jobs running and queued now, and jobs handed to a worker since the server began."""
        with self._lock:
            return {"running": len(self._procs), "queued": len(self._queue),
                    "started": self.jobs_started}

    def pace(self) -> Optional[float]:
        """Runs stored per second over the latest PACE_WINDOW runs (None before two)."""
        with self._lock:
            times = list(self._finished_runs)
        if len(times) < 2 or times[-1] <= times[0]:
            return None
        return (len(times) - 1) / (times[-1] - times[0])

    def leave(self, job_id: str, session_id: str, outright: bool = False) -> str:
        """`session_id` no longer wants the job: it stops ("stopped") when no other session
        that asked for it is left, or when `outright` (a teacher); else it goes on for them
        ("left"). "" when the job is not active."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.active:
                return ""
            askers = self._askers.setdefault(job_id, set())
            askers.discard(session_id)
            self._seen.get(job_id, {}).pop(session_id, None)
            if askers and not outright:
                return "left"
        return "stopped" if self.cancel(job_id) else ""

    def cancel(self, job_id: str, reason: str = "asked") -> bool:
        """Stop the job's worker for real; finished runs stay in the store. False if not active."""
        messages = {"asked": "cancelled; the finished runs are kept",
                    "unwatched": f"cancelled: no page had shown it for "
                                 f"{round((self.unwatched_after or 0) / 60)} minutes; the "
                                 "finished runs are kept",
                    "shutdown": "stopped: the server shut down; the finished runs are kept"}
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not job.active:
                return False
            if job_id in self._queue:
                self._queue.remove(job_id)
            proc_conn = self._procs.pop(job_id, None)
            self._jobs[job_id] = replace(job, state="cancelled", finished_at=time.time(),
                                         message=messages.get(reason, messages["asked"]),
                                         reason=reason)
        if proc_conn is not None:
            proc, conn = proc_conn[:2]
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
            self.cancel(job_id, "shutdown")
        with self._lock:
            for job_id in list(self._queue):
                self.cancel(job_id, "shutdown")

    # ---- internals ----------------------------------------------------------------------------

    def _snapshot(self, job_id: str) -> JobStatus:
        job = self._jobs[job_id]
        now = time.time()
        watchers = sum(1 for t in self._seen.get(job_id, {}).values() if now - t <= WATCH_S)
        extra: dict = {}
        if job_id in self._queue:
            mine = self._owners.get(job_id, ("", NOBODY))[1].visitor_key
            others = [j for j in (*self._procs, *self._queue)
                      if j != job_id and self._owners.get(j, ("", NOBODY))[1].visitor_key != mine]
            mine_ahead = list(self._queue).index(job_id)
            extra = dict(queue_position=mine_ahead + 1, jobs_ahead=len(others),
                         runs_ahead=sum(self._jobs[j].total - self._jobs[j].done for j in others))
            if self.slice_s is not None:  # every other visitor's job takes at most one turn first
                turns = max(len(others), mine_ahead + (1 if self._procs else 0))
                extra["turn_wait_s"] = turns * (self.slice_s + START_S) / self.max_workers
        return replace(job, watchers=max(1, watchers) if job.active else watchers,
                       askers=len(self._askers.get(job_id, ())), **extra)

    def _refresh_done(self, job_id: str) -> None:
        job = self._jobs[job_id]
        try:
            self._jobs[job_id] = replace(job, done=spec_units(job.spec, self.store_path)[0])
        except Exception:  # noqa: BLE001  (a damaged store: the count stays as last reported)
            pass

    def _next_queued(self) -> str:
        """The queued job to start: of the address, then the visitor, that has waited longest
        for a turn (never had one first), and of those the one queued first. Addresses first:
        a script that collects visitor cookies is still one address."""
        def waited(job_id: str) -> tuple[float, float]:
            who = self._owners.get(job_id, ("", NOBODY))[1]
            return (self._last_turn.get(who.address_key, float("-inf")),
                    self._last_turn.get(who.visitor_key, float("-inf")))
        job_id = min(self._queue, key=waited)  # min keeps the queue's order among equals
        self._queue.remove(job_id)
        return job_id

    def _start_queued(self) -> None:
        while self._queue and len(self._procs) < self.max_workers and not self._closed:
            job_id = self._next_queued()
            try:
                self._start(job_id)
            except Exception as err:  # noqa: BLE001  (a worker that cannot start fails its job)
                self._fail(job_id, f"its worker could not start ({type(err).__name__}: {err})")

    def _start(self, job_id: str) -> None:
        spare, self._spare = self._spare, None
        if spare is not None and spare[0].is_alive():
            proc, tasks, parent, turn = spare
            environ = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
            tasks.send((self._jobs[job_id].spec, self.store_path, environ))
            tasks.close()
        else:
            if spare is not None:  # it died while waiting: start a fresh worker
                _close_pipes(spare)
            parent, child = self._ctx.Pipe(duplex=False)
            turn = self._ctx.Event()
            proc = self._ctx.Process(target=_worker_main, name=f"transferlab-sweep-{job_id[:8]}",
                                     args=(self._jobs[job_id].spec, self.store_path,
                                           self.threads_per_worker, child, turn), daemon=True)
            with _bare_main():
                proc.start()
            child.close()
        self.jobs_started += 1
        now = time.time()
        self._procs[job_id] = (proc, parent, turn, now, self._jobs[job_id].trained)
        for key in self._owners.get(job_id, ("", NOBODY))[1].keys:
            self._last_turn[key] = now
        job = self._jobs[job_id]
        self._jobs[job_id] = replace(  # a restarted job keeps its start and its reason
            job, state="running", started_at=job.started_at or now, runs_since=None,
            message=job.message if job.restarts or job.turns else "starting a worker")

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
        turn = self._ctx.Event()
        proc = self._ctx.Process(target=_spare_main, name="transferlab-spare",
                                 args=(self.threads_per_worker, tasks_child, child, turn),
                                 daemon=True)
        with _bare_main():
            proc.start()
        tasks_child.close()
        child.close()
        self._spare = (proc, tasks, parent, turn)

    def _monitor_loop(self) -> None:
        while not self._closed:
            with self._lock:
                for job_id, entry in list(self._procs.items()):
                    try:
                        self._drain(job_id, *entry)
                    except Exception as err:  # noqa: BLE001  (this job fails; the others go on)
                        self.monitor_errors += 1
                        self._fail(job_id, f"{type(err).__name__}: {err}")
                for step in (self._take_turns, self._cancel_unwatched, self._start_queued,
                             self._start_spare):
                    try:
                        step()
                    except Exception:  # noqa: BLE001  (tried again at the next poll)
                        self.monitor_errors += 1
            time.sleep(self._poll_interval)

    def _fail(self, job_id: str, error: str) -> None:
        """End `job_id` as failed with `error`: its worker stopped, its slot freed."""
        entry = self._procs.pop(job_id, None)
        if job_id in self._queue:
            self._queue.remove(job_id)
        if entry is not None:
            with contextlib.suppress(Exception):
                _stop_process(entry[0])
                entry[1].close()
        job = self._jobs[job_id]
        self._jobs[job_id] = replace(job, state="failed", finished_at=time.time(), error=error,
                                     message=error)
        self._refresh_done(job_id)

    def _take_turns(self) -> None:
        """Ask a job that has had its turn to give the worker up, when another visitor's job
        waits and every worker is busy."""
        if self.slice_s is None or not self._queue or len(self._procs) < self.max_workers:
            return
        waiting = {self._owners.get(j, ("", NOBODY))[1].visitor_key for j in self._queue}
        now = time.time()
        for job_id, (proc, conn, turn, since, trained) in self._procs.items():
            mine = self._owners.get(job_id, ("", NOBODY))[1].visitor_key
            progressed = self._jobs[job_id].trained > trained  # a turn trains at least one run
            if now - since >= self.slice_s and progressed and waiting - {mine}:
                turn.set()  # the worker stops after the run in hand and says "yielded"

    def _cancel_unwatched(self) -> None:
        if self.unwatched_after is None:
            return
        now = time.time()
        for job_id, job in list(self._jobs.items()):
            seen = self._seen.get(job_id) or {"": job.submitted_at}
            if job.active and now - max(seen.values()) > self.unwatched_after:
                self.cancel(job_id, "unwatched")

    def _drain(self, job_id: str, proc, conn, *turn) -> None:
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
                    if finished_run:
                        self._finished_runs.append(time.time())
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
        if ended[0] == "yielded":  # its turn is over: to the back of the queue, runs kept
            self._jobs[job_id] = replace(
                job, state="queued", stage="waiting", turns=job.turns + 1,
                message=f"taking turns with other visitors' experiments: {job.done} of "
                        f"{job.total} runs stored; it goes on at its next turn")
            self._queue.append(job_id)
        elif killed and job.restarts < MAX_RESTARTS:  # killed from outside: a fresh worker, once
            self._jobs[job_id] = replace(job, state="queued", stage="waiting",
                                         restarts=job.restarts + 1, message=f"{ended[1]}; restarting it")
            self._queue.appendleft(job_id)
        else:
            state = "done" if ended[0] == "finished" else "failed"
            self._jobs[job_id] = replace(job, state=state, finished_at=time.time(),
                                         error=ended[1] if state == "failed" else None,
                                         message="finished" if state == "done" else ended[1])
        self._refresh_done(job_id)
