"""What happened on a page, told to whoever listens: the lesson and study pages announce their
learner's actions here, and class mode (`ui.classroom`) listens, so they never import it.

Two events today: `PREDICTIONS_SAVED` (Transfer curves' Predict first; payload `predictions`,
{(strategy, labels per class): accuracy %}) and `QUESTION_ANSWERED` (the quiz; payload
`question_id`, `choice`). A listener may return a sentence for the learner (a notice, e.g. that
the class did not receive the answer); `emit` returns those sentences.

The listeners are registered once, when their module is imported (app.py imports class mode,
and every page runs inside app.py: `ui.kit.shell.page_setup`), and are the same for every
session; they read who the learner is from the session itself, so no session's data passes
through this module.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

PREDICTIONS_SAVED = "predictions_saved"
QUESTION_ANSWERED = "question_answered"
EVENTS = (PREDICTIONS_SAVED, QUESTION_ANSWERED)

Listener = Callable[..., Optional[str]]
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


def emit(event: str, **payload) -> list[str]:
    """Tell every listener of `event`; the sentences they return for the learner, in order."""
    if event not in _LISTENERS:
        raise ValueError(f"unknown event {event!r}; known: {', '.join(EVENTS)}")
    with _LOCK:
        listeners = list(_LISTENERS[event])
    return [notice for notice in (listener(**payload) for listener in listeners) if notice]
