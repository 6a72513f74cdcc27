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
from typing import Any, Iterator, Mapping, Optional

import streamlit as st

from engine.experiments.lessons.links import link_text

APP = Path(__file__).resolve().parents[2] / "app.py"

PRESENT, HANDOUT = "present", "handout"  # the link flags of the two views (`?present=1`)
VIEW_PARAMS = (PRESENT, HANDOUT)  # every page reads them (`ui.kit.present`), so none is "unused"
# A student in a class carries these on every page (`ui.classroom.class_mode.class_banner` reads them)
MEMBER_PARAMS = ("class", "student")

# True while app.py runs a page in this thread; a ContextVar, so sessions never share it.
_INSIDE_APP: contextvars.ContextVar[bool] = contextvars.ContextVar("transferlab_inside_app",
                                                                  default=False)
# The view of this script run ("", PRESENT or HANDOUT) and the page app.py runs.
_VIEW: contextvars.ContextVar[str] = contextvars.ContextVar("transferlab_view", default="")
_PAGE: contextvars.ContextVar[Any] = contextvars.ContextVar("transferlab_page", default=None)
# This page run's view links: the slot they are written in and the settings they carry.
_LINKS: contextvars.ContextVar[Optional[tuple[Any, dict]]] = contextvars.ContextVar(
    "transferlab_view_links", default=None)


@contextlib.contextmanager
def app_run(view: str = "", page: Any = None) -> Iterator[None]:
    """Wrap app.py's `page.run()`, so `page_setup()` knows the frame is drawn, and every function
    which `view` the page is drawn in (`page_view`) and which `page` it is."""
    tokens = (_INSIDE_APP.set(True), _VIEW.set(view), _PAGE.set(page))
    try:
        yield
    finally:
        for var, token in zip((_INSIDE_APP, _VIEW, _PAGE), tokens):
            var.reset(token)


def page_view() -> str:
    """The view this script run draws: "" (the normal page), PRESENT or HANDOUT."""
    return _VIEW.get()


def current_page() -> Any:
    """The `st.Page` app.py runs now (None outside app.py's run)."""
    return _PAGE.get()


def page_setup() -> None:
    """Call first in every page: runs app.py when Streamlit ran the page without it."""
    if _INSIDE_APP.get():
        _LINKS.set(None)  # a new page run: its first section writes the view links again
        return
    runpy.run_path(str(APP), run_name="__main__")
    st.stop()  # app.py has drawn the frame and this page; the legacy run ends here


MAX_NAMES_SHOWN = 3  # unused parameters named before "and N more"


def show_link_notices(notices: list[str]) -> None:
    """One warning per setting of a link that could not be used (the page fell back)."""
    for notice in notices:
        st.warning(f"This link's settings were not all usable: {notice}.", icon=":material/link_off:")


def warn_unused_params(query_keys: tuple[str, ...]) -> None:
    """A warning naming the link's parameters that are not among the page's `query_keys` (they
    are ignored)."""
    unused = [k for k in st.query_params
              if k not in query_keys and k not in VIEW_PARAMS + MEMBER_PARAMS]
    if not unused:
        return
    shown = ", ".join(link_text(k) for k in unused[:MAX_NAMES_SHOWN])
    if len(unused) > MAX_NAMES_SHOWN:
        shown += f" and {len(unused) - MAX_NAMES_SHOWN} more"
    st.warning(f"This link has settings this page does not use, so they were ignored: {shown}.",
               icon=":material/link_off:")


def view_links(query: Mapping[str, str]) -> None:
    """Under a page's first experiment form: links that open this page, with the settings of
    the link and of every section drawn so far (`query`, merged in call by call), in
    presentation mode and as the printable handout. Later sections rewrite the same links."""
    page = current_page()
    if page is None or page_view():
        return
    links = _LINKS.get()
    if links is None:
        links = (st.empty(), {})
        _LINKS.set(links)
    slot, params = links
    params.update({k: v for k, v in st.query_params.to_dict().items() if k not in VIEW_PARAMS})
    params.update(query)
    with slot.container(horizontal=True):
        st.page_link(page, label="Present to a class", icon=":material/co_present:",
                     query_params={**params, PRESENT: "1"},
                     help="This page for a projector: no sidebar and no forms, a large chart, "
                          "and the results hidden until you show them (the class predicts "
                          "first). These settings travel in the link.")
        st.page_link(page, label="Printable handout", icon=":material/print:",
                     query_params={**params, HANDOUT: "1"},
                     help="The charts, the verdicts and the settings on clean pages: open it, "
                          "then print from the browser (Ctrl+P).")
