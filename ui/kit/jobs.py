"""The server's one `JobManager`, the session's id, and what the store holds of a section (or,
on a first visit with nothing stored, what the sections pack holds of it).

Training runs in the job manager's worker processes, never in a script thread: a page submits
its experiment and polls the job's status. Identical experiments from any number of sessions
share one job. The live panel a page draws while a job runs is `ui.kit.section.live_panel`.
"""

from __future__ import annotations

import os
import threading
from streamlit.runtime.scriptrunner import get_script_run_ctx

from typing import Optional

from engine.core.store import ResultStore
from engine.experiments.protocol import all_units
from engine.infra.jobs import JobManager
from engine.infra.packs import pack_store

POLL_SECONDS = 1.0  # how often a running job's panel refreshes
SPARE_WORKER_ENV = "TRANSFERLAB_SPARE_WORKER"  # "0": no worker process waits for the next job
_LIVE_LOCK = threading.Lock()
_LIVE: dict[tuple, tuple[tuple, object]] = {}  # (job id, settings) -> (step, what it read)


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



def stored(settings, with_pack: bool = True):
    """What the store holds of a lesson section's settings, `settings.records(store)`: the one
    way a page reads its runs. When the store holds none of the section's units and no job of
    it runs, the sections pack's (`packed`; the page says so). While the section's job runs,
    the store is read once per progress step and the result shared by every session showing
    the same settings (thirty students poll the same job once a second each); callers only
    read what they get. `with_pack=False`: this server's own runs only (the study pages'
    questions "from your runs")."""
    job = job_manager().status(settings.experiment().key())
    if job is None or not job.active:
        store = ResultStore()
        if with_pack and not _holds_any(store, settings) and _holds_any(pack_store(), settings):
            return settings.records(pack_store())
        return settings.records(store)
    step, key = (job.done, job.trained, job.stage), (job.job_id, settings)
    with _LIVE_LOCK:
        cached = _LIVE.get(key)
        if cached is None or cached[0] != step:
            if len(_LIVE) > 64:  # jobs that ended long ago
                _LIVE.clear()
            cached = _LIVE[key] = (step, settings.records(ResultStore()))
        return cached[1]


def _holds_any(store, settings) -> bool:
    return bool(store.get_many(u.key for u in all_units(settings.experiment())))


def packed(settings) -> Optional[dict]:
    """The sections pack's provenance (built_at, device, code_version, units: how many it holds
    of these settings) when `stored` shows the pack's runs of these settings: the store holds
    none of them, no job of them runs, and the pack holds some; else None."""
    job = job_manager().status(settings.experiment().key())
    if job is not None and job.active:
        return None
    pack = pack_store()
    keys = [u.key for u in all_units(settings.experiment())]
    held = len(pack.get_many(keys))
    if not held or _holds_any(ResultStore(), settings):
        return None
    return dict(pack.provenance, units=held, total=len(keys))


def stored_count() -> int:
    """How many runs the store holds in all (the sidebar's figure)."""
    return ResultStore().count()
