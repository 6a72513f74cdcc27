"""Transfer Lab: the Streamlit entry point (`python serve.py` runs `streamlit run app.py`).

Sets the page config, declares the pages with `st.Page` + `st.navigation` (the list lives in
`ui.catalog`, shared with the home page's lesson path) and writes the sidebar: the device the
engine trains on, the data directory, the number of stored runs and the server's background
jobs. Each lesson is its own script under `pages/`; see `ui.kit.shell` for why every page starts
with `page_setup()`. A link's settings that the page does not use are named in a warning, and a
data directory or result store that cannot be used is reported in the page, not as a traceback.
A link with `?present=1` (a projector) or `?handout=1` (to print) draws the page without the
sidebar, in the view `ui.kit.present` describes, until the view's exit button.
"""

import streamlit as st

from engine.core.store import StoreError
from ui.classroom.class_mode import class_banner
from engine.experiments.lessons.links import QueryReader
from ui.catalog import PAGES
from ui.kit.present import frame, sticky_view
from ui.kit.shell import app_run, show_link_notices, warn_unused_params
from ui.kit.sidebar import show_server_state, sidebar_facts

# An emoji favicon is drawn inline; a Material one would be fetched from Google's servers.
# "auto": the sidebar is open on a projector or a laptop and collapsed on a phone, where it
# would otherwise cover the page.
st.set_page_config(page_title="Transfer Lab", page_icon="🧪", layout="wide",
                   initial_sidebar_state="auto")

pages = {p: st.Page(p.path, title=p.title, icon=p.icon, default=p.default) for p in PAGES}
link = QueryReader(st.query_params.to_dict())
view = sticky_view(link)  # "?present=1" (a projector) or "?handout=1" (to print): no sidebar,
# kept by the session until the view's exit button
# expanded: every page listed (collapsed, the last ones, Class among them, hide under "View more")
page = st.navigation(list(pages.values()), position="hidden" if view else "sidebar", expanded=True)
runs_slot = None if view else sidebar_facts()
with app_run(view, page):
    frame(view)
    show_link_notices(link.notices)
    lesson = next(p for p, sp in pages.items() if sp is page)
    warn_unused_params(lesson.query_keys)
    class_banner(lesson.path)  # a student in a class: which one, on every page
    try:
        page.run()
    except StoreError as err:  # a read-only data directory or a damaged result store
        st.error(f"{err}", icon=":material/database:")
if runs_slot is not None:
    show_server_state(runs_slot)  # after the page, so the count is as fresh as the page's results
