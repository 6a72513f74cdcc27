"""Submitting any job (a sweep, a sweep group, an experiment), its live panel, and reading a
section's settings from its link.

Used by the lessons whose sections each run their own background job on the server's one job
manager (`ui.jobs`): `submit_job` turns refusals into a message in the page, `live_panel` is a
fragment that reruns every second while the job is active (progress, cancel, what is stored so
far) and asks for a full rerun when it ends, and `ended_note` says how a job that is no longer
running ended. A section's settings follow `SectionSettings`; `section_settings` picks the
link's, the session's or the default ones, and `QueryReader` is the one parser of link values.
Nothing here trains, and nothing here knows what a particular lesson draws.
"""

from __future__ import annotations

from typing import Callable, ClassVar, Mapping, Optional, Protocol, TypeVar
from urllib.parse import quote

import streamlit as st

from engine.core import datasets
from engine.experiments.sweep import MAX_SEEDS
from engine.infra.jobs import JobLimitError, JobSpec, JobStatus
from ui.curves import plural
from ui.jobs import POLL_SECONDS, job_manager, seconds_text, session_id
from ui.shell import link_text

MAX_QUERY_VALUE = 200  # characters; a longer URL value is refused, not parsed
# session_state: ids of the jobs this session started whose end `ended_note` has not reported
SUBMITTED_KEY = "experiments.submitted"


class SectionSettings(Protocol):
    """A lesson section's settings: a frozen dataclass (no Streamlit inside) that reads and
    writes its own link parameters and names the engine experiment it runs.

    `from_query(to_query())` gives the same settings back, so a shared link reopens the same
    experiment; a bad value in a link falls back to its default with a notice for the page."""

    PARAMS: ClassVar[tuple[str, ...]]  # the link keys this section reads and writes

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple["SectionSettings", list[str]]:
        """Settings from a link's parameters, and the notices about values it could not use."""

    def to_query(self) -> dict[str, str]:
        """The link form of these settings."""

    def experiment(self) -> JobSpec:
        """What the job manager runs for these settings (its key identifies the job)."""


S = TypeVar("S", bound=SectionSettings)


def section_settings(cls: type[S], session_key: str,
                     params: Optional[Mapping[str, str]] = None) -> tuple[S, list[str]]:
    """The section's settings to show: the link's when it carries any of `cls.PARAMS`, else
    the ones this session last ran (`st.session_state[session_key]`), else the defaults."""
    params = dict(st.query_params.to_dict() if params is None else params)
    settings, notices = cls.from_query(params)
    if not any(k in params for k in cls.PARAMS) and isinstance(st.session_state.get(session_key), cls):
        settings = st.session_state[session_key]
    return settings, notices


def submit_job(spec: JobSpec, area, unit: str = "run") -> Optional[JobStatus]:
    """Start (or join) the job for `spec`; a refusal is written in `area` and gives None. When
    everything is stored already, `area` says so, counting the stored `unit`s."""
    try:
        job = job_manager().submit(spec, session_id())
    except (ValueError, JobLimitError) as err:
        area.error(f"Not started: {err}.", icon=":material/error:")
        return None
    if job.active:  # ended_note reports its end once, in this session
        st.session_state.setdefault(SUBMITTED_KEY, set()).add(job.job_id)
    else:
        area.success(f"All {plural(job.total, unit)} of these settings were already stored: "
                     "nothing was retrained.", icon=":material/check_circle:")
    return job


def active(spec: JobSpec) -> bool:
    job = job_manager().status(spec.key())
    return job is not None and job.active


def job_box(job: JobStatus, name: str, unit: str, source: Optional[str] = None) -> None:
    """A running job's box: what it is doing, a bar of stored `unit`s with the latest message,
    elapsed time and ETA, restarts and watchers, and Cancel (key `cancel_<name>`). `source`:
    the dataset the job pretrains its backbone on, named while it does."""
    with st.container(border=True):
        if job.state == "queued":
            st.markdown(f"**Waiting for a free worker** (position {job.queue_position or '?'} in "
                        "the queue)")
        elif job.stage == "pretrain":
            on = datasets.get_dataset_info(source).title if source else "the source"
            st.markdown(f"**Pretraining the backbone on {on}** (once; the checkpoint is cached "
                        "for every later run)")
        else:
            st.markdown(f"**Training: {job.done} of {plural(job.total, unit)} stored**")
        st.progress(job.done / job.total if job.total else 1.0, text=job.message)
        facts = [f"Elapsed: {seconds_text(job.elapsed)}"]
        if job.state == "running" and job.stage != "pretrain":
            facts.append(f"ETA: {seconds_text(job.eta_seconds())}")
        if job.restarts:
            facts.append(f"the worker was stopped from outside and restarted; it trains only the "
                         f"{unit}s not yet stored")
        if job.watchers > 1:
            facts.append(f"{job.watchers} sessions are watching this experiment")
        st.caption(" · ".join(facts) + ". It runs on the server in the background: each "
                   f"{unit} is stored the moment it finishes, and leaving the page does not stop "
                   "it. Cancel keeps what is finished.")
        st.button("Cancel", icon=":material/stop:", key=f"cancel_{quote(name)}",
                  on_click=job_manager().cancel, args=(job.job_id,))


@st.fragment(run_every=POLL_SECONDS)
def live_panel(spec: JobSpec, name: str, unit: str, draw: Optional[Callable[[], None]] = None,
               source: Optional[str] = None) -> None:
    """The job for `spec`'s box (`job_box`), then `draw()` for what is stored so far; reruns
    every second while the job is active, and asks for a full rerun once it ends. `name` keeps
    the widget keys of several panels on one page apart."""
    job = job_manager().status(spec.key())
    if job is None or not job.active:
        st.rerun(scope="app")
        return
    job_box(job, name, unit, source)
    if draw is not None:
        draw()


def _reported(job_id: str) -> bool:
    """True once, after a job this session started has ended."""
    submitted = st.session_state.get(SUBMITTED_KEY, set())
    if job_id not in submitted:
        return False
    submitted.discard(job_id)
    return True


def ended_note(spec: JobSpec, area, unit: str = "run") -> None:
    """How this server's last job for `spec` ended: a job this session started that finished is
    reported once (what it trained, how long it took); a cancelled or failed one every time,
    counting the stored `unit`s."""
    job = job_manager().status(spec.key())
    if job is None or job.active:
        return
    mine = _reported(job.job_id)
    if job.state == "done":
        if mine:
            area.status(f"Trained {plural(job.trained, 'new ' + unit)} in {job.elapsed:.1f} s; "
                        f"{job.done} of {plural(job.total, unit)} stored", state="complete",
                        expanded=False)
    elif job.state == "cancelled":
        area.warning(f"Cancelled: {job.done} of {plural(job.total, unit)} are stored and kept; "
                     f"press Run to train only the missing {unit}s.", icon=":material/stop_circle:")
    else:
        area.error(f"Training stopped: {job.error or job.message}. The finished {unit}s are kept; "
                   f"press Run to train only the missing {unit}s.", icon=":material/error:")


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

    def items(self, key: str) -> Optional[list[str]]:
        """A comma-separated value as its lower-case items, blanks dropped ('Probe, ,lpft' ->
        ['probe', 'lpft']); None when absent or refused for its length. The caller checks
        the items against what it allows."""
        value = self._get(key)
        if value is None:
            return None
        return [part.strip().lower() for part in value.split(",") if part.strip()]

    def seeds(self, key: str, default: int) -> int:
        """Seeds per point: one whole number from 1 to MAX_SEEDS."""
        found = self.items(key)
        if found is None:
            return default
        if len(found) == 1 and found[0].isdecimal() and 1 <= int(found[0]) <= MAX_SEEDS:
            return int(found[0])
        self.notices.append(f"the link's {key} must be a whole number from 1 to {MAX_SEEDS}; "
                            "using the default")
        return default

    def choice(self, key: str, choices, default):
        value = self._get(key)
        if value is None:
            return default
        if value in choices:
            return value
        self.notices.append(f"{key} {link_text(value)} is not one of {', '.join(map(str, choices))}")
        return default

    def _bounded(self, key: str, parse: Callable, low, high, default, what: str):
        """`parse(value)` when it lies from `low` to `high`; else a notice that `key` must be
        `what`, and the default."""
        value = self._get(key)
        if value is None:
            return default
        try:
            number = parse(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:  # also refuses nan
            self.notices.append(f"{key} must be {what}, got {link_text(value)}")
            return default
        return number

    def integer(self, key: str, low: int, high: int, default: int) -> int:
        return self._bounded(key, int, low, high, default, f"a whole number from {low} to {high}")

    def number(self, key: str, low: float, high: float, default: float) -> float:
        return self._bounded(key, float, low, high, default, f"a number from {low:g} to {high:g}")

    def size(self, key: str, allowed: tuple[int, ...], default: int) -> int:
        """One labels-per-class value from `allowed` (written 'all' for ALL_LABELS)."""
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
        """Comma-separated labels per class from `allowed` (written 'all' for ALL_LABELS)."""
        value = self._get(key)
        if value is None:
            return default
        try:
            parsed = tuple(sorted(set(datasets.parse_labels_list(value))))
        except ValueError:
            parsed = ()
        if not parsed or any(k not in allowed for k in parsed):
            shown = ", ".join(map(datasets.labels_text, allowed))
            self.notices.append(f"{key} must list sizes among {shown}, got {link_text(value)}")
            return default
        return parsed
