"""The sidebar facts every page shares: the compute device, the data directory, stored runs."""

from __future__ import annotations

import streamlit as st

from engine.device import describe_device
from engine.store import ResultStore, home_dir


def sidebar_facts():
    """Write the device and data directory to the sidebar; return a slot for the run count.

    app.py fills the slot with `show_stored_runs` after the page has run (one count per rerun).
    """
    with st.sidebar:
        st.markdown(f"**Device:** {describe_device()}")
        st.caption("Training uses CUDA when a GPU is available, otherwise the CPU.")
        st.markdown(f"**Data directory:** `{home_dir()}`")
        return st.empty()


def show_stored_runs(slot) -> None:
    count = ResultStore().count()
    slot.markdown(f"**Stored runs:** {count:,}")
