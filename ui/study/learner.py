"""Helpers shared by the flashcards and quiz pages: the loaded content, the learner's name, and
the questions and cards drawn from the learner's own runs. Nothing here schedules or scores;
that is `engine.study.srs`, `ui.study.flashcards` and `ui.study.quiz`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pandas as pd
import streamlit as st

from engine.study.content import Content, ContentError, Deck, Flashcard, Question, load_content
from engine.study.run_questions import run_questions
from engine.study.srs import MAX_LEARNER_CHARS, check_learner
from engine.experiments.sweep import SweepSpec
from ui.kit.jobs import stored
from ui.lessons.controls import last_curve_settings
from ui.lessons.curves import describe_spec

NAME_KEY = "study.learner"  # session_state: the learner's name, kept while moving between pages
RUNS_DECK_ID = "your-runs"


@st.cache_resource(max_entries=1, ttl=600)
def study_content() -> Content:
    """Every deck and question bank, validated once and shared (all of it is frozen).
    Raises engine.study.content.ContentError when a file is broken; the page shows the message."""
    return load_content()


def loaded_content(what: str) -> Optional[Content]:
    """The study content, or None after saying that `what` ("The quiz questions") could not be
    loaded and why (a broken deck or bank file)."""
    try:
        return study_content()
    except ContentError as err:
        st.error(f"{what} could not be loaded: {err}", icon=":material/error:")
        return None


def learner_name() -> Optional[str]:
    """The learner's name input. Returns the name when it is valid, else None after saying why.
    The name lives in the session, so it stays filled in on the flashcards and quiz pages."""
    st.session_state.setdefault(NAME_KEY, "")
    name = st.text_input(
        "Your name", value=st.session_state[NAME_KEY], max_chars=MAX_LEARNER_CHARS,
        key=f"{NAME_KEY}.input", placeholder="e.g. Ada",
        help="Your progress is saved on this server under this name, so you can pick up where "
             "you left off after a restart. There are no accounts or passwords: anyone who "
             "types the same name shares the same progress.")
    st.session_state[NAME_KEY] = name
    if not name.strip():
        st.info("Type a name to start and press Enter: your progress is kept under it.",
                icon=":material/person:")
        return None
    try:
        check_learner(name)
    except ValueError as err:
        st.error(f"That name cannot be used: {err}.", icon=":material/error:")
        return None
    return " ".join(name.split())


@dataclass(frozen=True, eq=False)
class YourRuns:
    """The learner's own runs and the questions their results answer."""

    spec: SweepSpec  # the Transfer curves settings this session last used (else the default)
    records: pd.DataFrame  # the runs of `spec` that the result store holds
    questions: tuple[Question, ...]  # questions computed from `records` (none when too few)

    def caption(self) -> str:
        return (f"From your stored runs of: {describe_spec(self.spec)} ({len(self.records):,} of "
                "them stored). Change the settings or run more on the Transfer curves page.")

    def deck(self) -> Optional[Deck]:
        """Flashcards made from the questions about the learner's runs: the question on the
        front, the computed answer and its explanation on the back. Card ids carry the spec's
        key, so progress on one experiment's cards never carries over to another's."""
        if not self.questions:
            return None
        tag = self.spec.key()[:10]
        cards = tuple(Flashcard(f"{q.id}-{tag}", q.prompt, f"**{q.answer}**\n\n{q.explanation}",
                                ("your-runs",)) for q in self.questions)
        return Deck(RUNS_DECK_ID, "From your runs", "Cards whose answers come from your own "
                    "stored runs on the Transfer curves page.", cards)


def your_runs() -> YourRuns:
    """The Transfer curves settings this session last used (else the default), the runs of them
    that the result store holds, and the questions those runs answer."""
    settings = last_curve_settings()
    records = stored(settings, with_pack=False)  # this server's runs, not the shipped pack's
    return YourRuns(settings.experiment(), records, run_questions(records))
