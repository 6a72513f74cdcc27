"""The sidebar facts every page shares: the compute device, the data directory, stored runs."""

from __future__ import annotations

import streamlit as st

from engine.device import describe_device
from engine.store import ResultStore, home_dir


def sidebar_facts():
    """Write the device and data directory to the sidebar; return a slot for the run count.

    The count is filled by `show_stored_runs` after the page has run, so it includes the runs
    a page has just trained.
    """
    with st.sidebar:
        st.markdown(f"**Device:** {describe_device()}")
        st.caption("Training uses CUDA when a GPU is available, otherwise the CPU.")
        st.markdown(f"**Data directory:** `{home_dir()}`")
        slot = st.empty()
    show_stored_runs(slot)
    return slot


def show_stored_runs(slot) -> None:
    count = ResultStore().count()
    slot.markdown(f"**Stored runs:** {count:,}")
