"""How every page gets app.py's frame, even when Streamlit runs the page without it.

`app.py` draws the frame (page config, navigation, sidebar) and runs the current page inside
`app_run()`. Every page starts with `page_setup()`, which does nothing in that normal case.

It matters on a fresh server. Until some script run has called `st.navigation`, Streamlit
treats `pages/` as a legacy multipage folder: a visitor who opens a page URL directly gets the
page script alone, with the legacy sidebar (file names and an "app" entry). `page_setup()` then
runs app.py itself, which declares the real pages (leaving legacy mode for good), draws the
sidebar and runs this page again as the navigation would; the legacy run then stops. Running
the page through `st.navigation` in the same script run keeps its widget ids identical to later
runs, so the visitor's first click is not lost.
"""

from __future__ import annotations

import contextlib
import contextvars
import runpy
from pathlib import Path
from typing import Iterator

import streamlit as st

from ui.lessons import Lesson

APP = Path(__file__).resolve().parents[1] / "app.py"

# True while app.py runs a page in this thread; a ContextVar, so sessions never share it.
_INSIDE_APP: contextvars.ContextVar[bool] = contextvars.ContextVar("transferlab_inside_app",
                                                                  default=False)


@contextlib.contextmanager
def app_run() -> Iterator[None]:
    """Wrap app.py's `page.run()`, so `page_setup()` knows the frame is drawn."""
    token = _INSIDE_APP.set(True)
    try:
        yield
    finally:
        _INSIDE_APP.reset(token)


def page_setup() -> None:
    """Call first in every page: runs app.py when Streamlit ran the page without it."""
    if _INSIDE_APP.get():
        return
    runpy.run_path(str(APP), run_name="__main__")
    st.stop()  # app.py has drawn the frame and this page; the legacy run ends here


MAX_NAMES_SHOWN = 3  # unused parameters named before "and N more"
MAX_SHOWN_CHARS = 40  # a longer name or value from a link is cut where a page repeats it


def link_text(text: str, width: int = MAX_SHOWN_CHARS) -> str:
    """Text from a URL as Markdown inline code: shortened, without backticks, so it shows
    literally (never as a link, emphasis or formula) however it was crafted."""
    text = " ".join(str(text).replace("`", "'").split()) or "(empty)"
    return f"`{text if len(text) <= width else text[:width - 1] + '…'}`"


def show_link_notices(notices: list[str]) -> None:
    """One warning per setting of a link that could not be used (the page fell back)."""
    for notice in notices:
        st.warning(f"This link's settings were not all usable: {notice}.", icon=":material/link_off:")


def warn_unused_params(lesson: Lesson) -> None:
    """A warning naming the link's parameters that `lesson` does not read (they are ignored)."""
    unused = [k for k in st.query_params if k not in lesson.query_keys]
    if not unused:
        return
    shown = ", ".join(link_text(k) for k in unused[:MAX_NAMES_SHOWN])
    if len(unused) > MAX_NAMES_SHOWN:
        shown += f" and {len(unused) - MAX_NAMES_SHOWN} more"
    st.warning(f"This link has settings this page does not use, so they were ignored: {shown}.",
               icon=":material/link_off:")
