"""How a page shows the sentences the engine reads off its runs (`engine.experiments.readings`).

`show_readings` writes each sentence, the engine's note on gaps left uncalled for want of seeds
(`uncalled_note`), a link to the page that explains how a difference is called, and, where a
sentence had too few seeds to call, one button that runs the section again
with enough seeds. The button only records the request (`ADD_SEEDS`, keyed by the section's
experiment); `ui.kit.section.show_section` starts the run on the next script run, as if Run had
been pressed with more seeds. Nothing here words a result.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import streamlit as st

from engine.experiments.readings import Sentence
from engine.experiments.readings.common import uncalled_note
from engine.experiments.stats import MIN_SEEDS
from ui.kit.shell import page_view

ADD_SEEDS = "readings.add_seeds"  # session_state: the experiment key of a section asking for seeds
HOW_CALLED = "pages/how_called.py"


def wants_seeds(settings: Any) -> bool:
    """The section's settings have fewer seeds than the rule needs to call anything."""
    return isinstance(getattr(settings, "seeds", None), int) and settings.seeds < MIN_SEEDS


def _request(key: str) -> None:
    st.session_state[ADD_SEEDS] = key


def show_readings(sentences: Sequence[Sentence], settings: Optional[Any] = None,
                  key: str = "") -> None:
    """The sentences (markdown), then the link to "How a difference is called"; with
    `settings` whose seeds are too few and a sentence that could not call, a button that runs
    them again with MIN_SEEDS seeds. `key` keeps the buttons of a page's sections apart."""
    if not sentences:
        return
    st.markdown("\n\n".join(s.text for s in sentences))
    note = uncalled_note(sentences)
    if note:
        more = (settings is not None and not page_view()
                and isinstance(getattr(settings, "seeds", None), int))
        st.caption(note + (" Raise Seeds in the form above and press Run: only the new seeds "
                           "train." if more else ""))
    st.page_link(HOW_CALLED, label="How a difference is called, and why seeds matter",
                 icon=":material/functions:")
    if (settings is not None and not page_view() and wants_seeds(settings)
            and any(s.too_few for s in sentences)):
        st.button(f"Run again with {MIN_SEEDS} seeds", key=f"add_seeds_{key}",
                  icon=":material/add:", on_click=_request, args=(settings.experiment().key(),),
                  help=f"Trains only the missing seeds: the rule calls nothing with fewer than "
                       f"{MIN_SEEDS} a side.")


def pending_seeds(settings: Any) -> bool:
    """Whether this section asked for more seeds on the last script run (the request is used up)."""
    if not wants_seeds(settings) or st.session_state.get(ADD_SEEDS) != settings.experiment().key():
        return False
    del st.session_state[ADD_SEEDS]
    return True
