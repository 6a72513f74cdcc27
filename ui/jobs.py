"""The server's one `JobManager`, the session's id, and the live panel of a running sweep.

Training runs in the job manager's worker processes, never in a script thread: a page submits
its spec and polls the job's status. Identical specs from any number of sessions share one job.
The live panel is a fragment that reruns every second on its own, so the rest of the page (the
form, the slider) stays usable, and asks for a full rerun once the job is no longer active.
"""

from __future__ import annotations

import os
import threading
from typing import Optional

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from engine.core.datasets import get_dataset_info
from engine.infra.jobs import JobManager, JobStatus
from engine.core.store import ResultStore
from engine.experiments.sweep import SweepSpec, stored_records
from ui.curves import curve_figure, plural

JOB_KEY = "transfer_curves.job"  # session_state key: the job this session last submitted
POLL_SECONDS = 1.0  # how often a running job's panel refreshes
_LIVE_LOCK = threading.Lock()
_LIVE: dict[str, tuple[tuple, pd.DataFrame]] = {}  # job id -> (progress step, its stored runs)


SPARE_WORKER_ENV = "TRANSFERLAB_SPARE_WORKER"  # "0": no worker process waits for the next job


@st.cache_resource(max_entries=1)
def job_manager() -> JobManager:
    """One job manager per server process, shared by every session. While no job runs, one
    worker process waits with PyTorch imported, so pressing Run starts training at once."""
    return JobManager(spare_worker=os.environ.get(SPARE_WORKER_ENV, "1") != "0")


def session_id() -> str:
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def seconds_text(seconds: Optional[float]) -> str:
    if seconds is None:
        return "estimating…"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def job_progress(job: JobStatus, spec: SweepSpec) -> None:
    """Progress bar, stage, elapsed time, ETA, queue position and a Cancel button."""
    fraction = job.done / job.total if job.total else 1.0
    if job.state == "queued":
        where = f"position {job.queue_position} in the queue" if job.queue_position else "queued"
        label = f"Waiting for a free worker ({where})"
    elif job.stage == "pretrain":
        label = (f"Pretraining on {get_dataset_info(spec.source).title} "
                 "(once; the checkpoint is cached)")
    else:
        label = f"Training runs: {job.done} of {job.total} done"
    with st.container(border=True):
        st.markdown(f"**{label}**")
        st.progress(fraction, text=f"{job.done} of {job.total} runs stored · {job.message}")
        facts = [f"Elapsed: {seconds_text(job.elapsed)}"]
        if job.state == "running":
            facts.append(f"ETA: {seconds_text(job.eta_seconds())}")
        if job.restarts:
            facts.append("the worker was stopped from outside and restarted; it trains only the "
                         "runs not yet stored")
        if job.watchers > 1:
            facts.append(f"{job.watchers} sessions are watching this experiment")
        st.caption(" · ".join(facts) + ". Training runs on the server in the background: each "
                   "run is stored the moment it finishes, and leaving the page does not stop it. "
                   "Cancel keeps the finished runs.")
        st.button("Cancel", icon=":material/stop:", key="cancel_job",
                  on_click=job_manager().cancel, args=(job.job_id,))


def live_records(job: JobStatus) -> pd.DataFrame:
    """The stored runs of a running job, read from the store once per progress step and shared
    by every session watching it (thirty students poll the same job once a second each).
    Callers only read the frame."""
    step = (job.done, job.trained, job.stage)
    with _LIVE_LOCK:
        cached = _LIVE.get(job.job_id)
        if cached is None or cached[0] != step:
            if len(_LIVE) > 64:  # jobs that ended long ago
                _LIVE.clear()
            cached = _LIVE[job.job_id] = (step, stored_records(job.spec, ResultStore()))
        return cached[1]


@st.fragment(run_every=POLL_SECONDS)
def live_job_panel(spec: SweepSpec) -> None:
    """Reruns every second while the job for `spec` is active; the chart fills in run by run."""
    job = job_manager().status(spec.key())
    if job is None or not job.active:
        st.rerun(scope="app")  # the job ended: draw the full results
        return
    job_progress(job, spec)
    records = live_records(job)
    if records.empty:
        st.info("No run of these settings is stored yet; the curves fill in as each run "
                "finishes.", icon=":material/hourglass_empty:")
    else:
        st.plotly_chart(curve_figure(records, spec.strategies), key="transfer_curve_live")


def job_summary(job: JobStatus, area) -> None:
    """One note on how a finished job ended, drawn in `area`."""
    if job.state == "done":
        with area:
            st.status(f"Trained {plural(job.trained, 'new run')} in {job.elapsed:.1f} s; "
                      f"{job.done} of {job.total} runs stored", state="complete", expanded=False)
    elif job.state == "cancelled":
        area.warning(f"Cancelled: {job.done} of {plural(job.total, 'run')} are stored and kept; "
                     "press Run to train only the missing runs.", icon=":material/stop_circle:")
    else:
        area.error(f"Training stopped: {job.error or job.message}. The finished runs are kept; "
                   "press Run to train only the missing runs.", icon=":material/error:")
