"""Page state saved by id: what a study page keeps across a reload, and the link that reopens it.

A page's state (the pipeline's answers, a quiz round, a flashcard session) is a small dict,
written as JSON in the data directory under a random id (`<folder>/<id>.json`, whole or not at
all: a temporary file, then a rename), and the page's link carries that id (`?<param>=<id>`).
A reload, or the same link in a new tab, opens the same state. Anyone holding the link can
read it; there are no accounts. Only ids this code writes are read (16 hex digits), files over
a size cap are not read, and a folder keeps at most MAX_FILES states (the oldest go first), and a visitor (and an
address) may start only so many new ones an hour (`engine.core.quotas`: SAVES_PER_HOUR), so no
visitor can push everyone else's out. Each write goes through its own temporary file.

An id in a link that cannot be used (not one this code writes, no such file, a damaged or
oversized file, or contents the page refuses) is named in a notice, and the page starts anew.
What the state means, and checking it, is the page's business: `parse` turns the stored dict
into the page's own value and raises ValueError (or TypeError, KeyError) to refuse it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, TypeVar

import streamlit as st

from engine.core import quotas
from engine.core.quotas import NOBODY, Window
from engine.core.store import home_dir, write_atomic
from engine.experiments.lessons.links import MAX_QUERY_VALUE, link_text
from ui.kit.shell import show_link_notices

ID_PATTERN = re.compile(r"[0-9a-f]{16}")  # what secrets.token_hex(8) writes (matched whole)
MAX_FILES = 5_000  # states kept per folder; saving one more removes the oldest
_NEW_STATES = Window(3600.0)  # new saved states per visitor and address in the last hour
_PRUNE_LOCK = threading.Lock()
T = TypeVar("T")


class SavedStateError(ValueError):
    """A saved state that cannot be opened; the message says why, for a notice."""


@dataclass(frozen=True)
class SavedStates:
    """One kind of saved state: where its files live, its link parameter and its size cap."""

    folder_name: str  # its folder in the data directory: "plans", "quizzes"
    param: str  # the link parameter that carries the id
    noun: str  # what a notice calls one: "plan", "quiz"
    max_bytes: int  # a larger file is not read
    root: Optional[Path] = None  # the data directory; None: TRANSFERLAB_HOME (read at each use)

    @property
    def cap(self) -> str:
        size = self.max_bytes
        return f"{size // 1000} kB" if size >= 1000 else f"{size} bytes"

    @property
    def folder(self) -> Path:
        return (self.root or home_dir()) / self.folder_name

    def new_id(self) -> str:
        return secrets.token_hex(8)

    def link_id(self, params: Mapping[str, str]) -> Optional[str]:
        """The id a link carries, when it is one this code could have written."""
        value = params.get(self.param)
        return value if isinstance(value, str) and ID_PATTERN.fullmatch(value) else None

    def link_notices(self, params: Mapping[str, str]) -> list[str]:
        """Why a link's id cannot be used (too long, or not an id this code writes); [] when
        the link carries none or a usable one."""
        value = params.get(self.param)
        if value is None or self.link_id(params):
            return []
        if len(value) > MAX_QUERY_VALUE:
            return [f"the link's '{self.param}' value is too long; starting a new {self.noun}"]
        return [f"{self.param} {link_text(value)} is not a {self.noun} id this page writes; "
                f"starting a new {self.noun}"]

    def load(self, state_id: str) -> dict:
        """The dict saved under `state_id`; SavedStateError says why there is none."""
        if not ID_PATTERN.fullmatch(state_id):
            raise SavedStateError(f"{self.param} {link_text(state_id)} is not a {self.noun} id")
        path, named = self.folder / f"{state_id}.json", f"{self.noun} {link_text(state_id)}"
        try:
            size = path.stat().st_size
        except OSError:
            raise SavedStateError(f"no {named} is saved on this server (it may have been "
                                  f"removed); starting a new {self.noun}") from None
        if size > self.max_bytes:
            raise SavedStateError(f"the saved {named} is larger than {self.cap}, so it was "
                                  f"not read; starting a new {self.noun}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            raise SavedStateError(f"the saved {named} is damaged and could not be read; "
                                  f"starting a new {self.noun}")
        return data

    def save(self, state_id: str, data: dict) -> None:
        """Write `data` under `state_id`, whole or not at all (each write its own temporary
        file, so saves to one id at once never collide); ValueError when over the cap, or when
        this visitor has started too many new states this hour (QuotaError); OSError when the
        disk refuses."""
        if not ID_PATTERN.fullmatch(state_id):
            raise ValueError(f"not a {self.noun} id: {state_id!r}")
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(text) > self.max_bytes:
            raise ValueError(f"a {self.noun} is larger than {self.cap}")
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{state_id}.json"
        if not path.exists():
            _NEW_STATES.take(quotas.per_keys(_visitor(), "SAVES_PER_HOUR", "SAVES_PER_ADDRESS_HOUR"),
                             "You have started too many saved quizzes, plans or decks in the "
                             "last hour")
        write_atomic(path, lambda f: f.write(text))
        self._prune(folder)

    def _prune(self, folder: Path) -> None:
        """Keep at most MAX_FILES states in the folder: the least recently written go first."""
        if not _PRUNE_LOCK.acquire(blocking=False):
            return  # another save is pruning
        try:
            self._prune_now(folder)
        finally:
            _PRUNE_LOCK.release()

    def _prune_now(self, folder: Path) -> None:
        try:
            entries = [e for e in os.scandir(folder) if e.name.endswith(".json")]
            if len(entries) <= MAX_FILES:
                return
            entries.sort(key=lambda e: e.stat().st_mtime)
            for entry in entries[:len(entries) - MAX_FILES]:
                Path(entry.path).unlink(missing_ok=True)
        except OSError:
            pass  # another process pruned at the same moment; the next save tries again

    def opened(self, id_key: str, parse: Callable[[dict], T]) -> Optional[T]:
        """The state a link opens: when the link carries an id this session has not opened
        yet, its saved state, parsed; that id then becomes the session's (`id_key` in
        session_state). None when there is nothing new to open. A link's unusable id, or a
        state that cannot be read or parsed, is named in a notice (on every rerun while the
        link carries it), and the session keeps its own id."""
        params = st.query_params.to_dict()
        show_link_notices(self.link_notices(params))
        linked = self.link_id(params)
        seen_key = f"{id_key}.seen"  # session_state: (the last linked id handled, its notice)
        seen = st.session_state.get(seen_key)
        if not linked or linked == st.session_state.get(id_key):
            return None
        if seen and seen[0] == linked:  # handled before: it could not be opened
            show_link_notices([seen[1]])
            return None
        try:
            value = parse(self.load(linked))
        except SavedStateError as err:
            notice = str(err)
        except (ValueError, TypeError, KeyError, AttributeError):
            notice = (f"the saved {self.noun} {link_text(linked)} does not hold a {self.noun} "
                      f"this page can open; starting a new {self.noun}")
        else:
            st.session_state[id_key] = linked
            return value
        st.session_state[seen_key] = (linked, notice)
        show_link_notices([notice])
        return None

    def session_id(self, id_key: str) -> str:
        """The id this session saves under (a new random one the first time)."""
        return st.session_state.setdefault(id_key, self.new_id())

    def link(self, state_id: Optional[str]) -> None:
        """Make the page's link carry `state_id`, or no id of this kind when None."""
        if state_id is None:
            if self.param in st.query_params:
                del st.query_params[self.param]
        elif st.query_params.get(self.param) != state_id:
            st.query_params[self.param] = state_id


def _visitor():
    """This session's visitor, or nobody outside a page's run."""
    try:
        from ui.kit.visitor import who

        return who()
    except Exception:  # noqa: BLE001  (no session: the command line, a unit test)
        return NOBODY
