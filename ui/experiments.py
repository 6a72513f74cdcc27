"""Submitting any job (a sweep, a sweep group, an experiment) and its live panel.

Used by the lessons whose sections each run their own background job on the server's one job
manager (`ui.jobs`): `submit_job` turns refusals into a message in the page, `live_panel` is a
fragment that reruns every second while the job is active (progress, cancel, what is stored so
far) and asks for a full rerun when it ends, and `ended_note` says how a job that is no longer
running ended. Nothing here trains.
"""

from __future__ import annotations

from typing import Callable, Optional
from urllib.parse import quote

import streamlit as st

from engine.infra.jobs import JobLimitError, JobSpec, JobStatus
from ui.controls import MAX_QUERY_VALUE
from ui.curves import plural
from ui.jobs import POLL_SECONDS, job_manager, seconds_text, session_id
from ui.shell import link_text


def submit_job(spec: JobSpec, area) -> Optional[JobStatus]:
    """Start (or join) the job for `spec`; a refusal is written in `area` and gives None."""
    try:
        job = job_manager().submit(spec, session_id())
    except (ValueError, JobLimitError) as err:
        area.error(f"Not started: {err}.", icon=":material/error:")
        return None
    if not job.active:
        area.success("Everything these settings ask for was already stored: nothing was "
                     "retrained.", icon=":material/check_circle:")
    return job


def active(spec: JobSpec) -> bool:
    job = job_manager().status(spec.key())
    return job is not None and job.active


@st.fragment(run_every=POLL_SECONDS)
def live_panel(spec: JobSpec, name: str, unit: str, draw: Optional[Callable[[], None]] = None) -> None:
    """Progress of the job for `spec` (a bar of stored `unit`s, the latest message, elapsed
    time, Cancel), then `draw()` for what is stored so far; a full rerun once the job ends.
    `name` keeps the widget keys of several panels on one page apart."""
    job = job_manager().status(spec.key())
    if job is None or not job.active:
        st.rerun(scope="app")
        return
    with st.container(border=True):
        if job.state == "queued":
            st.markdown(f"**Waiting for a free worker** (position {job.queue_position or '?'} in "
                        "the queue)")
        elif job.stage == "pretrain":
            st.markdown("**Pretraining the backbone on the source** (once; the checkpoint is "
                        "cached for every later run)")
        else:
            st.markdown(f"**Training: {job.done} of {plural(job.total, unit)} stored**")
        st.progress(job.done / job.total if job.total else 1.0, text=job.message)
        facts = [f"Elapsed: {seconds_text(job.elapsed)}"]
        if job.state == "running" and job.stage != "pretrain":
            facts.append(f"ETA: {seconds_text(job.eta_seconds())}")
        st.caption(" · ".join(facts) + ". It runs on the server in the background: each "
                   f"{unit} is stored the moment it finishes, and leaving the page does not stop "
                   "it. Cancel keeps what is finished.")
        st.button("Cancel", icon=":material/stop:", key=f"cancel_{quote(name)}",
                  on_click=job_manager().cancel, args=(job.job_id,))
    if draw is not None:
        draw()


def ended_note(spec: JobSpec, area) -> None:
    """How this server's last job for `spec` ended, when it did not finish normally."""
    job = job_manager().status(spec.key())
    if job is None or job.active or job.state == "done":
        return
    if job.state == "cancelled":
        area.warning("Cancelled: what had finished is stored and shown; press Run to train only "
                     "the rest.", icon=":material/stop_circle:")
    else:
        area.error(f"Training stopped: {job.error or job.message}. What had finished is kept; "
                   "press Run to train only the rest.", icon=":material/error:")


class QueryReader:
    """Reads a page's settings from its URL: each bad value falls back to the default and adds
    a notice for the page to show (a link never breaks the page). A value longer than
    MAX_QUERY_VALUE is refused unread; a notice repeats a bad value only shortened, as code."""

    def __init__(self, params):
        self.params = dict(params)
        self.notices: list[str] = []

    def _get(self, key: str):
        """The link's value for `key`; None when absent or refused for its length."""
        value = self.params.get(key)
        if value is not None and len(value) > MAX_QUERY_VALUE:
            self.notices.append(f"the link's '{key}' value is too long; using the default")
            return None
        return value

    def choice(self, key: str, choices, default):
        value = self._get(key)
        if value is None:
            return default
        if value in choices:
            return value
        self.notices.append(f"{key} {link_text(value)} is not one of {', '.join(map(str, choices))}")
        return default

    def integer(self, key: str, low: int, high: int, default: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            self.notices.append(f"{key} must be a whole number from {low} to {high}, got "
                                f"{link_text(value)}")
            return default
        return number

    def number(self, key: str, low: float, high: float, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:  # also refuses nan
            self.notices.append(f"{key} must be a number from {low:g} to {high:g}, got "
                                f"{link_text(value)}")
            return default
        return number

    def size(self, key: str, allowed: tuple[int, ...], default: int) -> int:
        """One labels-per-class value from `allowed` ('all' is 0)."""
        found = self.labels(key, allowed, (default,))
        if len(found) != 1:
            self.notices.append(f"{key} must be one size, got {link_text(self.params.get(key))}")
            return default
        return found[0]

    def numbers(self, key: str, allowed: tuple[float, ...], default: tuple[float, ...]) -> tuple[float, ...]:
        """Comma-separated numbers, each one of `allowed`."""
        value = self._get(key)
        if value is None:
            return default
        try:
            parsed = tuple(sorted({float(v) for v in value.split(",")}))
        except ValueError:
            parsed = ()
        if not parsed or any(v not in allowed for v in parsed):
            self.notices.append(f"{key} must list values among {', '.join(f'{v:g}' for v in allowed)}, "
                                f"got {link_text(value)}")
            return default
        return parsed

    def labels(self, key: str, allowed: tuple[int, ...], default: tuple[int, ...]) -> tuple[int, ...]:
        """Comma-separated labels per class from `allowed` ('all' is 0)."""
        value = self._get(key)
        if value is None:
            return default
        try:
            parsed = tuple(sorted({0 if v.strip() == "all" else int(v) for v in value.split(",")}))
        except ValueError:
            parsed = ()
        if not parsed or any(k not in allowed for k in parsed):
            shown = ", ".join("all" if k == 0 else str(k) for k in allowed)
            self.notices.append(f"{key} must list sizes among {shown}, got {link_text(value)}")
            return default
        return parsed


def labels_text(labels) -> str:
    """(1, 5, 0) -> '1,5,all': the URL form of labels per class."""
    return ",".join("all" if k == 0 else str(k) for k in labels)
