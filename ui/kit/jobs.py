"""The server's one `JobManager`, the session's id, and what the store holds of a running job.

Training runs in the job manager's worker processes, never in a script thread: a page submits
its experiment and polls the job's status. Identical experiments from any number of sessions
share one job. The live panel a page draws while a job runs is `ui.kit.section.live_panel`.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

import pandas as pd
from streamlit.runtime.scriptrunner import get_script_run_ctx

from engine.core.store import ResultStore
from engine.experiments.sweep import stored_records
from engine.infra.jobs import JobManager, JobSpec, JobStatus

POLL_SECONDS = 1.0  # how often a running job's panel refreshes
SPARE_WORKER_ENV = "TRANSFERLAB_SPARE_WORKER"  # "0": no worker process waits for the next job
_LIVE_LOCK = threading.Lock()
_LIVE: dict[tuple, tuple[tuple, pd.DataFrame]] = {}  # (job id, reader) -> (step, what it read)
Reader = Callable[[JobSpec, ResultStore], pd.DataFrame]  # what a page reads of an experiment


_MANAGER_LOCK = threading.Lock()  # guards _MANAGER: sessions' script threads ask at once
_MANAGER: list[JobManager] = []  # the server process's job manager, once created


def job_manager() -> JobManager:
    """One job manager per server process, shared by every session, created on first use. While
    no job runs, one worker process waits with PyTorch imported, so pressing Run starts training
    at once. Held here, not in `st.cache_resource`: clearing Streamlit's caches would drop it and
    orphan its jobs (their progress and Cancel gone, the worker still training, the next Run
    starting a second one)."""
    with _MANAGER_LOCK:
        if not _MANAGER:
            _MANAGER.append(JobManager(spare_worker=os.environ.get(SPARE_WORKER_ENV, "1") != "0"))
        return _MANAGER[0]


def _forget_job_manager() -> None:
    """Let the next `job_manager()` create a new manager; the caller has shut the old one down
    (tests that point TRANSFERLAB_HOME elsewhere: the manager keeps its store's path)."""
    with _MANAGER_LOCK:
        _MANAGER.clear()


job_manager.clear = _forget_job_manager  # as `st.cache_resource` functions have; tests call it


def session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"



def live_records(job: JobStatus, read: Reader = stored_records) -> pd.DataFrame:
    """`read(job.spec, store)` for a running job, read from the store once per progress step
    and shared by every session watching it (thirty students poll the same job once a second
    each). Callers only read the frame."""
    step, key = (job.done, job.trained, job.stage), (job.job_id, read)
    with _LIVE_LOCK:
        cached = _LIVE.get(key)
        if cached is None or cached[0] != step:
            if len(_LIVE) > 64:  # jobs that ended long ago
                _LIVE.clear()
            cached = _LIVE[key] = (step, read(job.spec, ResultStore()))
        return cached[1]


def stored_so_far(spec: JobSpec, read: Reader = stored_records) -> pd.DataFrame:
    """`read(spec, store)`: what the store holds of `spec`; while its job runs, through
    `live_records`, so a classroom watching one job reads the store once per step."""
    job = job_manager().status(spec.key())
    if job is None or not job.active:
        return read(spec, ResultStore())
    return live_records(job, read)
