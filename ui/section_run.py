"""A lesson section's Run and what follows it, on top of `ui.experiments`.

`start_section` is what pressing a section's Run does: build its settings from the form (a
ValueError is shown, not raised), remember them in this session and in the link, and submit
their experiment. `form_and_run` draws a section's form, the notes container under it, and
starts Run; `open_section` is the section's settings, link notices, form and Run in one call;
`run_section` is the form and Run, then the live panel while the section's job runs, else its
results. `follow_job` draws the live panel while the section's job runs, or says how it ended;
`missing_note` asks for Run when some runs are not stored. Nothing here trains.

In presentation mode and in the handout (`ui.present`) a section draws no form and runs
nothing: it lists the link's settings where the form would be, and in presentation mode the
first section's results wait behind the teacher's "Show the results" (`results_gate`). On the
normal page the links to both views are written under the first form (`ui.shell.view_links`).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Callable, Generic, Optional, TypeVar

import streamlit as st

from engine.experiments.stats import MIN_SEEDS
from ui.curves import plural
from ui.experiments import SectionSettings, active, ended_note, live_panel, section_settings, submit_job
from ui.present import results_gate, show_settings
from ui.readings import pending_seeds
from ui.shell import page_view, show_link_notices, view_links

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
Form = Callable[[S], Optional[Callable[[], S]]]  # draws a form; when Run is pressed, a builder


@dataclass(frozen=True)
class SectionRun(Generic[S]):
    settings: S  # what the section shows: the settings just run, else the ones it was given
    notes: Any  # the container below the form for refusals, notes and warnings
    running: bool  # the section's job is running (its live panel is drawn)


def run_section(settings: S, form: Form, session_key: str, name: str,
                live: Callable[[S], None], before: Optional[Callable[[S], None]] = None,
                results: Optional[Callable[[S, Any], None]] = None) -> SectionRun[S]:
    """The section's form and notes; Run starts its job. Then `before(settings)`, and the live
    panel (with `live(settings)`, what is stored so far) while the job runs, else
    `results(settings, notes)`. The live panel goes right under the form, above what `before`
    draws, so the progress is in sight after Run. `name` keeps the widget keys of a page's
    sections apart."""
    opened = form_and_run(settings, session_key, form)
    settings, notes = opened.settings, opened.notes
    live_slot = st.container()
    if before is not None:
        before(settings)
    results_gate()  # in presentation mode, the gate stays below what `before` draws
    with live_slot:
        running = follow_job(settings, name, notes, lambda: live(settings))
    if not running and results is not None:
        results(settings, notes)
    return SectionRun(settings, notes, running)


def start_section(build: Callable[[], S], session_key: str, area, unit: str = "run") -> Optional[S]:
    """The settings `build()` makes from a section's form, remembered and submitted; None
    (with the reason written in `area`) when they cannot run. `unit`: what the job stores."""
    try:
        settings = build()
    except ValueError as err:
        area.error(f"These settings cannot run: {err}.", icon=":material/error:")
        return None
    st.session_state[session_key] = settings
    st.query_params.update(settings.to_query())
    job = submit_job(settings.experiment(), area, unit)
    if job is not None and job.active:
        area.html(PROGRESS_INTO_VIEW, unsafe_allow_javascript=True)
    return settings


@dataclass(frozen=True)
class OpenSection(Generic[S]):
    settings: S  # what the section shows: just run, else the link's, the session's or the defaults
    notes: Any  # the container under the form, for the section's notes


def open_section(cls: type[S], session_key: str, form: Form, unit: str = "run") -> OpenSection[S]:
    """A section's settings (`section_settings`) with the link's notices shown, its form
    (`form(settings)` gives what builds the chosen settings when Run is pressed), the notes
    container under it, and Run (`start_section`)."""
    settings, notices = section_settings(cls, session_key)
    show_link_notices(notices)
    return form_and_run(settings, session_key, form, unit)


def form_and_run(settings: S, session_key: str, form: Form, unit: str = "run") -> OpenSection[S]:
    """`form(settings)`, the links to the page's other views and the notes container under
    it, and Run (`start_section`). In presentation mode or the handout: the settings listed,
    no form and no Run."""
    if page_view():
        show_settings(settings)
        return OpenSection(settings, st.container())
    build = form(settings)
    if build is None and pending_seeds(settings):  # "Run again with 3 seeds" under a reading
        build = functools.partial(dataclasses.replace, settings, seeds=MIN_SEEDS)
    links, notes = st.container(), st.container()
    if build is not None:
        settings = start_section(build, session_key, notes, unit) or settings
    with links:
        view_links(settings.to_query())
    return OpenSection(settings, notes)


def follow_job(settings: SectionSettings, name: str, area, draw: Optional[Callable[[], None]] = None,
               unit: str = "run", source: Optional[str] = None) -> bool:
    """True while the section's job runs (its live panel is drawn, counting stored `unit`s,
    with `draw()` for what is stored so far, naming the pretraining `source`); otherwise False, after writing in `area` how it
    ended if it did not finish. In presentation mode, nothing of the results (nor of the page
    below) until the teacher shows them (`results_gate`)."""
    results_gate()
    spec = settings.experiment()
    if active(spec):
        live_panel(spec, name, unit, draw, source)
        return True
    ended_note(spec, area, unit)
    return False


def missing_note(stored: int, total: int, area) -> None:
    """A warning in `area` when some of the `total` runs are not stored yet."""
    if stored < total:
        area.warning(f"{total - stored} of {plural(total, 'run')} are not stored yet; press Run "
                     "to train only the missing ones.", icon=":material/warning:")
