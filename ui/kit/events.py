"""What happened on a page, told to whoever listens: the lesson and study pages announce their
learner's actions here, and class mode (`ui.classroom`) listens, so they never import it.

Two events: `PREDICTIONS_SAVED` (a lesson's Predict first; payload `predictions`,
{(strategy, labels per class): accuracy %}, and `lesson`, the page's name, e.g.
"transfer_curves" or "transfer_on_text") and `QUESTION_ANSWERED` (the quiz; payload
`question_id`, `choice`). A listener may return a sentence for the learner (a notice, e.g. that
the class did not receive the answer); `emit` returns those sentences.

And two questions the pages ask of whoever listens: `RESULTS_HELD` (payload: `question_id`, or
`lesson` for the results of that lesson's Predict first): a listener returns a sentence saying why the learner
may not see the results, or the right answer to that question, yet (a class whose teacher has
not revealed them), else None; and `EARLIER_PREDICTIONS` (payload `lesson`): a listener returns the
predictions this learner saved before on that lesson, {(strategy, labels per class): %}, e.g. in an earlier
session that a reload ended. `emit` returns every answer that is not None or empty.

The listeners are registered once, when their module is imported (app.py imports class mode,
and every page runs inside app.py: `ui.kit.shell.page_setup`), and are the same for every
session; they read who the learner is from the session itself, so no session's data passes
through this module.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

PREDICTIONS_SAVED = "predictions_saved"
QUESTION_ANSWERED = "question_answered"
RESULTS_HELD = "results_held"
EARLIER_PREDICTIONS = "earlier_predictions"
TEACHING = "teaching"
EVENTS = (PREDICTIONS_SAVED, QUESTION_ANSWERED, RESULTS_HELD, EARLIER_PREDICTIONS, TEACHING)

Listener = Callable[..., Any]
_LOCK = threading.Lock()
_LISTENERS: dict[str, list[Listener]] = {event: [] for event in EVENTS}


def listen(event: str, listener: Listener) -> Listener:
    """Call `listener(**payload)` on every `emit(event, ...)`; registering the same listener
    twice (a module imported again) keeps one."""
    if event not in _LISTENERS:
        raise ValueError(f"unknown event {event!r}; known: {', '.join(EVENTS)}")
    with _LOCK:
        if listener not in _LISTENERS[event]:
            _LISTENERS[event].append(listener)
    return listener


def emit(event: str, **payload) -> list[Any]:
    """Tell every listener of `event`; what they return (sentences for the learner, or the
    answers to a question), in order, leaving out None and empty answers."""
    if event not in _LISTENERS:
        raise ValueError(f"unknown event {event!r}; known: {', '.join(EVENTS)}")
    with _LOCK:
        listeners = list(_LISTENERS[event])
    return [notice for notice in (listener(**payload) for listener in listeners) if notice]
