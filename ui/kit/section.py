"""A lesson section, declared once, and the one way a page draws it.

Every section of every lesson does the same thing: its settings come from the link, else from
this session's last run, else the defaults; its form shows them; Run builds new settings,
remembers them (session and link) and submits their engine experiment to the server's one job
manager (`ui.kit.jobs`); while the job runs a live panel (progress, Cancel, what is stored so
far) reruns every second; once it has ended, the section's results. A `Section` declares what
differs (its settings class, form, live drawing and results), and `show_section` draws any of
them; its session key is derived from its lesson and name, and its lesson's link keys are the
union of its sections' `PARAMS` (`ui.catalog`).

In presentation mode and in the handout (`ui.kit.present`) a section draws no form and runs
nothing: it lists the link's settings where the form would be, and in presentation mode the
first section's results wait behind the teacher's "Show the results" (`results_gate`). On the
normal page the links to both views are written under the first form (`ui.kit.shell.view_links`).
Nothing here trains, and nothing here knows what a particular lesson draws.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Generic, Mapping, Optional, Protocol, TypeVar
from urllib.parse import quote

import streamlit as st

from engine.core import datasets
from engine.experiments.stats import MIN_SEEDS
from engine.infra.jobs import SLICE_S, UNWATCHED_S, JobLimitError, JobSpec, JobStatus
from ui.kit.events import TEACHING, emit
from ui.kit.jobs import POLL_SECONDS, job_manager, packed, session_id
from ui.kit.present import results_gate, show_settings
from ui.kit.readings import pending_seeds
from ui.kit.shell import page_view, show_link_notices, view_links
from ui.kit.text import plural, seconds_text
from ui.kit.visitor import who

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
# Written under a form whose Run has just started a job: once the job's box (the first progress
# bar after this script) is drawn, the page scrolls just enough to show it whole, when a Run
# pressed at the bottom of the window left it below the fold. Nothing else moves the page.
PROGRESS_INTO_VIEW = """<script>
(() => {
  const start = document.currentScript, deadline = Date.now() + 10000;
  const look = () => {
    const bar = [...document.querySelectorAll("[data-testid='stProgress']")]
      .find(b => start.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING);
    if (!bar) { if (Date.now() < deadline) setTimeout(look, 100); return; }
    const box = bar.closest("[data-testid='stVerticalBlock']") || bar;
    const r = box.getBoundingClientRect();
    if (r.top < 0 || r.bottom > window.innerHeight) box.scrollIntoView({block: "nearest", behavior: "smooth"});
  };
  look();
})();
</script>"""


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
        job = job_manager().submit(spec, session_id(), who())
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
            st.markdown(waiting_text(job, unit))
        elif job.stage == "pretrain":
            on = datasets.get_dataset_info(source).title if source else "the source"
            st.markdown(f"**Pretraining the backbone on {on}** (once; the checkpoint is cached "
                        "for every later run)")
        else:
            st.markdown(f"**Training: {job.done} of {plural(job.total, unit)} stored**")
        if job.stage == "pretrain" and job.pretrain_total:  # its own bar: steps of the source
            st.progress(job.pretrain_done / job.pretrain_total,
                        text=f"step {job.pretrain_done:,} of {job.pretrain_total:,} · {job.message}")
        else:
            st.progress(job.done / job.total if job.total else 1.0, text=job.message)
        facts = [f"Elapsed: {seconds_text(job.elapsed)}"]
        if job.state == "running" and job.stage != "pretrain":
            facts.append(f"ETA: {seconds_text(job.eta_seconds())}")
        if job.restarts:
            facts.append(f"the worker was stopped from outside and restarted; it trains only the "
                         f"{unit}s not yet stored")
        if job.watchers > 1:
            facts.append(f"{job.watchers} sessions are watching this experiment")
        minutes = round(UNWATCHED_S / 60)
        st.caption(" · ".join(facts) + ". It runs on the server in the background: each "
                   f"{unit} is stored the moment it finishes, and leaving the page does not stop "
                   f"it at once (after {minutes} minutes with no page showing it, it is "
                   "cancelled). Cancel keeps what is finished.")
        mine = job_manager().asked(job.job_id, session_id())
        if mine or emit(TEACHING):
            others = job.askers - (1 if mine else 0)
            st.button("Cancel", icon=":material/stop:", key=f"cancel_{quote(name)}",
                      on_click=_cancel, args=(job.job_id, unit),
                      help=f"Stops it, unless {plural(others, 'other session')} pressed Run for "
                           "it too: then it goes on for them." if others else None)
        else:
            st.caption("Another session started this experiment: it stops when they cancel it.")


def waiting_text(job: JobStatus, unit: str) -> str:
    """What a queued job waits for: its turn, behind other visitors' jobs."""
    if job.turns:
        head = f"**Taking turns:** {job.done} of {plural(job.total, unit)} stored so far"
    else:
        head = "**Waiting for a free worker**"
    if not job.jobs_ahead:
        ahead = (job.queue_position or 1) - 1
        return f"{head} ({'next in line' if not ahead else 'after ' + plural(ahead, 'experiment') + ' you started before it'})"
    turn = job_manager().slice_s or SLICE_S
    wait = (f"; jobs take turns of {round(turn)} s, so this one goes on within about "
            f"{seconds_text(job.turn_wait_s)}") if job.turn_wait_s is not None else ""
    return (f"{head}: the server is busy with {plural(job.jobs_ahead, 'other experiment')} "
            f"({plural(job.runs_ahead, unit)} to train){wait}.")


def _cancel(job_id: str, unit: str) -> None:
    """Cancel for this session: the job stops, or goes on for the others who asked for it."""
    outcome = job_manager().leave(job_id, session_id(), outright=bool(emit(TEACHING)))
    if outcome == "left":
        st.toast(f"You left this experiment; it goes on for the other sessions that asked for "
                 f"it. The {unit}s it stores still show here.", icon=":material/logout:")


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
    job_manager().watch(job.job_id, session_id())
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
    elif job.state == "cancelled" and job.reason == "unwatched":
        area.warning(f"Cancelled after {round(UNWATCHED_S / 60)} minutes with no page showing it: "
                     f"{job.done} of {plural(job.total, unit)} are stored and kept; press Run to "
                     f"train only the missing {unit}s.", icon=":material/stop_circle:")
    elif job.state == "cancelled":
        area.warning(f"Cancelled: {job.done} of {plural(job.total, unit)} are stored and kept; "
                     f"press Run to train only the missing {unit}s.", icon=":material/stop_circle:")
    else:
        area.error(f"Training stopped: {job.error or job.message}. The finished {unit}s are kept; "
                   f"press Run to train only the missing {unit}s.", icon=":material/error:")


Form = Callable[[S], Optional[Callable[[], S]]]  # draws a form; when Run is pressed, a builder


@dataclass(frozen=True)
class Section(Generic[S]):
    """One section of a lesson, declared once beside its drawing code (`ui/lessons/`) and listed
    in its lesson's `SECTIONS`. Every callable gets the section's current settings."""

    lesson: str  # the lesson's id, its page file's stem: "which_source"
    name: str  # the section's id within its lesson: "comparison"
    settings: type  # its settings (`engine.experiments.lessons`): link in and out, experiment
    form: Form  # draws the form showing the settings; when Run is pressed, what builds new ones
    live: Optional[Callable[[Any], None]] = None  # what is stored so far, while the job runs
    results: Optional[Callable[[Any, Any], Any]] = None  # (settings, notes) once it has ended;
    # what it returns is `SectionRun.shown` (e.g. the records drawn, for the page's words after)
    above: Optional[Callable[[Any], None]] = None  # drawn above the form (facts about the data)
    before: Optional[Callable[[Any], None]] = None  # under the form, above the results
    unit: str = "run"  # what the job stores, as its progress counts them ("arm", "model")

    @property
    def key(self) -> str:
        """The session_state key of the settings this section last showed."""
        return f"{self.lesson}.{self.name}"

    @property
    def params(self) -> tuple[str, ...]:
        """The link keys this section reads and writes."""
        return tuple(self.settings.PARAMS)


@dataclass(frozen=True)
class SectionRun(Generic[S]):
    settings: S  # what the section shows: the settings just run, else the ones it was given
    notes: Any  # the container below the form for refusals, notes and warnings
    running: bool  # the section's job is running (its live panel is drawn)
    shown: Any = None  # what `results` returned (None while running or without results)


def current_settings(section: Section, adjust: Optional[Callable[[Any], Any]] = None):
    """The settings `show_section` will show before any Run (link, session or default, then
    `adjust`), with the link's notices: for a page that words its introduction after them."""
    settings, notices = section_settings(section.settings, section.key)
    return (adjust(settings) if adjust else settings), notices


def show_section(section: Section, adjust: Optional[Callable[[Any], Any]] = None) -> SectionRun:
    """Draw `section`: the link's notices, `above`, the form and Run, the notes under it, then
    `before`, the live panel while the section's job runs (right under the form, so the
    progress is in sight after Run), else `results(settings, notes)`. `adjust(settings)`
    fits the loaded settings to the page (e.g. to another section's choice) before the form."""
    settings, notices = current_settings(section, adjust)
    show_link_notices(notices)
    if section.above is not None:
        section.above(settings)
    settings, notes = _form_and_run(section, settings)
    st.session_state[section.key] = settings  # a link's settings outlive a visit to another page
    live_slot = st.container()
    if section.before is not None:
        section.before(settings)
    results_gate()  # in presentation mode, the gate stays below what `before` draws
    with live_slot:
        running = _follow_job(settings, section, notes)
    shown = None
    if not running:
        pack_note(settings, notes)  # the results (here or drawn by the page) are the pack's
    if not running and section.results is not None:
        shown = section.results(settings, notes)
    return SectionRun(settings, notes, running, shown)


def pack_note(settings, notes) -> None:
    """Where the section shows the sections pack's runs (`ui.kit.jobs.stored`): that they are
    precomputed, where, when and by which engine, and that Run re-runs them here."""
    pack = packed(settings)
    if pack is None:
        return
    where = (f"trained on {pack.get('device', 'an unnamed machine')} on "
             f"{str(pack.get('built_at', ''))[:10]} (engine {pack.get('code_version', '?')})")
    if pack["here"]:
        notes.info(f"Precomputed results from the lesson pack for {pack['units']} of these "
                   f"{plural(pack['total'], 'run')}, {where}; the other {pack['here']} were "
                   "trained on this server. Press Run to train the rest here.",
                   icon=":material/inventory_2:")
        return
    notes.info(f"Precomputed results from the lesson pack: {plural(pack['units'], 'run')} "
               f"{where}. Press Run to re-run them live on this machine.",
               icon=":material/inventory_2:")


def _form_and_run(section: Section, settings):
    """The form (or, in presentation mode and the handout, the settings listed), the links to
    the page's other views and the notes container under it; Run starts the job."""
    if page_view():
        show_settings(settings)
        return settings, st.container()
    build = section.form(settings)
    if build is None and pending_seeds(settings):  # "Run again with 3 seeds" under a reading
        build = functools.partial(dataclasses.replace, settings, seeds=MIN_SEEDS)
    links, notes = st.container(), st.container()
    if build is not None:
        settings = _start(build, section, notes) or settings
    with links:
        view_links(settings.to_query())
    return settings, notes


def _start(build: Callable[[], Any], section: Section, area):
    """The settings `build()` makes from the form, remembered and submitted; None (with the
    reason written in `area`) when they cannot run."""
    try:
        settings = build()
    except ValueError as err:
        area.error(f"These settings cannot run: {err}.", icon=":material/error:")
        return None
    st.session_state[section.key] = settings
    st.query_params.update(settings.to_query())
    job = submit_job(settings.experiment(), area, section.unit)
    if job is not None and job.active:
        area.html(PROGRESS_INTO_VIEW, unsafe_allow_javascript=True)
    return settings


def pretraining_source(spec: JobSpec) -> Optional[str]:
    """The dataset `spec` (or the first part of a group that pretrains) pretrains on, if any."""
    for part in (spec.parts() if hasattr(spec, "parts") else (spec,)):
        config = part.pretraining()
        if config is not None:
            return config.source
    return None


def _follow_job(settings, section: Section, area) -> bool:
    """True while the section's job runs (its live panel drawn); otherwise False, after
    writing in `area` how it ended if it did not finish."""
    spec = settings.experiment()
    if active(spec):
        live = section.live
        live_panel(spec, section.key, section.unit,
                   (lambda: live(settings)) if live is not None else None, pretraining_source(spec))
        return True
    ended_note(spec, area, section.unit)
    return False


def stored_note(records, total: int, area, unit: str = "run") -> bool:
    """Whether any of the `total` units is stored: if none, an invitation to press Run (on the
    page); if some, `missing_note` for the rest (in `area`)."""
    if records.empty:
        st.info(f"None of the {plural(total, unit)} of these settings is stored yet. Press Run.",
                icon=":material/info:")
        return False
    missing_note(len(records), total, area, unit)
    return True


def missing_note(stored: int, total: int, area, unit: str = "run") -> None:
    """A warning in `area` when some of the `total` units are not stored yet."""
    if stored < total:
        area.warning(f"{total - stored} of {plural(total, unit)} are not stored yet; press Run "
                     "to train only the missing ones.", icon=":material/warning:")
