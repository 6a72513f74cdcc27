"""Results a learner may not see yet, and the page waiting until they may.

A student in a class predicts and answers blind: until the teacher reveals them, the results
of the lesson the class predicts on (Transfer curves or Transfer on text) and the right answers to the class's quiz questions stay hidden, whatever the
student saved or checked. Class mode answers the question (`ui.kit.events.RESULTS_HELD`), so the
lesson and study pages never import it. While something is held, the page draws
`wait_for_reveal`, which asks again every `POLL_SECONDS` and reruns the page once the teacher
has revealed, so the student's page updates by itself.
"""

from __future__ import annotations

from typing import Optional

import streamlit as st

from ui.kit.events import RESULTS_HELD, emit

POLL_SECONDS = 4  # how often a held page asks again


def held_back(question_id: Optional[str] = None, lesson: Optional[str] = None) -> str:
    """Why this learner may not see the results of `lesson`'s Predict first (its page's name,
    e.g. "transfer_curves") or the right answer to `question_id` yet, in a sentence; "" when
    nothing holds them."""
    payload = {"question_id": question_id} if question_id is not None else {"lesson": lesson}
    return " ".join(emit(RESULTS_HELD, **payload))


@st.fragment(run_every=POLL_SECONDS)
def wait_for_reveal(question_id: Optional[str] = None, lesson: Optional[str] = None) -> None:
    """Draws nothing; reruns the whole page as soon as `held_back(...)` is lifted."""
    if not held_back(question_id, lesson):
        st.rerun(scope="app")
