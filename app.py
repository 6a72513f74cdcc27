"""Transfer Lab: the Streamlit entry point (`python serve.py` runs `streamlit run app.py`).

Sets the page config, declares the pages with `st.Page` + `st.navigation` (the list lives in
`ui.lessons`, shared with the home page's lesson path) and writes the sidebar: the device the
engine trains on, the data directory, the number of stored runs and the server's background
jobs. Each lesson is its own script under `pages/`; see `ui.shell` for why every page starts
with `page_setup()`. A link's settings that the page does not use are named in a warning, and a
data directory or result store that cannot be used is reported in the page, not as a traceback.
"""

import streamlit as st

from engine.core.store import StoreError
from ui.lessons import PAGES
from ui.shell import app_run, warn_unused_params
from ui.sidebar import show_server_state, sidebar_facts

# An emoji favicon is drawn inline; a Material one would be fetched from Google's servers.
# "auto": the sidebar is open on a projector or a laptop and collapsed on a phone, where it
# would otherwise cover the page.
st.set_page_config(page_title="Transfer Lab", page_icon="🧪", layout="wide",
                   initial_sidebar_state="auto")

pages = {p: st.Page(p.path, title=p.title, icon=p.icon, default=p.default) for p in PAGES}
page = st.navigation(list(pages.values()))
runs_slot = sidebar_facts()
with app_run():
    warn_unused_params(next(p for p, sp in pages.items() if sp is page))
    try:
        page.run()
    except StoreError as err:  # a read-only data directory or a damaged result store
        st.error(f"{err}", icon=":material/database:")
show_server_state(runs_slot)  # after the page, so the count is as fresh as the page's results
