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
from engine.infra.jobs import SLICE_S, UNWATCHED_S, JobManager
from engine.infra.packs import pack_store

POLL_SECONDS = 1.0  # how often a running job's panel refreshes
SPARE_WORKER_ENV = "TRANSFERLAB_SPARE_WORKER"  # "0": no worker process waits for the next job
SLICE_ENV = "TRANSFERLAB_JOB_SLICE_S"  # seconds of one job's turn while others wait (SLICE_S)
_LIVE_LOCK = threading.Lock()
_LIVE: dict[tuple, tuple[tuple, object]] = {}  # (job id, settings) -> (step, what it read)


_MANAGER_LOCK = threading.Lock()  # guards _MANAGER: sessions' script threads ask at once
_MANAGER: list[JobManager] = []  # the server process's job manager, once created


def job_manager() -> JobManager:
    """One job manager per server process, shared by every session, created on first use. While
    no job runs, one worker process waits with PyTorch imported, so pressing Run starts training
    at once. Held here, not in `st.cache_resource`: clearing Streamlit's caches would drop it and
    orphan its jobs (their progress and Cancel gone, the worker still training, the next Run
    starting a second one). The app's manager counts each visitor's runs against the quotas,
    lets visitors' jobs take turns, and cancels a job no page has shown for UNWATCHED_S."""
    with _MANAGER_LOCK:
        if not _MANAGER:
            _MANAGER.append(JobManager(spare_worker=os.environ.get(SPARE_WORKER_ENV, "1") != "0",
                                       run_quotas=True, unwatched_after=UNWATCHED_S,
                                       slice_s=float(os.environ.get(SLICE_ENV) or SLICE_S)))
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
    way a page reads its runs. While no job of the section runs, a unit the store lacks is
    taken from the sections pack where it has it (`MergedStore`; `packed` says how many, and
    the page says so): lessons share units (the scratch runs of one are another's), so a
    first visit after another lesson's runs shows whole curves, not the shared part alone.
    While the section's job runs, only the store: it is read once per progress step and the
    result shared by every session showing the same settings (thirty students poll the same
    job once a second each); callers only read what they get. `with_pack=False`: this
    server's own runs only (the study pages' questions "from your runs")."""
    job = job_manager().status(settings.experiment().key())
    if job is None or not job.active:
        store = ResultStore()
        return settings.records(MergedStore(store, pack_store()) if with_pack else store)
    step, key = (job.done, job.trained, job.stage), (job.job_id, settings)
    with _LIVE_LOCK:
        cached = _LIVE.get(key)
        if cached is None or cached[0] != step:
            if len(_LIVE) > 64:  # jobs that ended long ago
                _LIVE.clear()
            cached = _LIVE[key] = (step, settings.records(ResultStore()))
        return cached[1]


class MergedStore:
    """The result store, with the sections pack's record for each key the store lacks (the
    store's own run always wins); read-only, as `settings.records(store)` reads a store."""

    def __init__(self, store, pack):
        self.store, self.pack = store, pack

    def get_many(self, run_keys) -> list[dict]:
        keys = list(run_keys)
        found = self.store.get_many(keys)
        have = {r.get("run_key") for r in found}
        return found + self.pack.get_many(k for k in keys if k not in have)


def packed(settings) -> Optional[dict]:
    """When `stored` shows some of the sections pack's runs of these settings: its provenance
    (built_at, device, code_version) with `units` (how many of the settings' units come from
    the pack), `here` (how many from this server's store) and `total`; else None."""
    job = job_manager().status(settings.experiment().key())
    if job is not None and job.active:
        return None
    keys = list(dict.fromkeys(u.key for u in all_units(settings.experiment())))
    here = {r.get("run_key") for r in ResultStore().get_many(keys)}
    pack = pack_store()
    held = len(pack.get_many(k for k in keys if k not in here))
    if not held:
        return None
    return dict(pack.provenance, units=held, here=len(here), total=len(keys))


def stored_count() -> int:
    """How many runs the store holds in all (the sidebar's figure)."""
    return ResultStore().count()
