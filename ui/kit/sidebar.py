"""The sidebar facts every page shares: the compute device, the data directory (its path shown
only on the server's own machine: it is the operator's business), stored runs and the server's
background jobs (the same numbers for every session of the server)."""

from __future__ import annotations

import streamlit as st

from engine.core.device import describe_device
from engine.core.store import StoreError, home_dir
from ui.kit.jobs import job_manager, stored_count
from ui.kit.visitor import on_this_machine


def sidebar_facts():
    """Write the device and data directory to the sidebar; return a slot for the run count.

    app.py fills the slot with `show_server_state` after the page has run (one count per rerun).
    """
    with st.sidebar:
        st.markdown(f"**Device:** {describe_device()}")
        st.caption("Training uses CUDA when a GPU is available, otherwise the CPU.")
        try:
            path = home_dir()
            if on_this_machine():
                st.markdown(f"**Data directory:** `{path}`")
        except StoreError as err:  # read-only or impossible to create: said here, every page
            st.error(str(err), icon=":material/folder_off:")
        return st.empty()


def show_server_state(slot) -> None:
    """Stored runs, and the job line: running and queued sweeps, jobs started since launch."""
    try:
        home_dir()
    except StoreError:  # sidebar_facts has said what is wrong with the data directory
        return
    try:
        count = stored_count()
        load = job_manager().load()
    except StoreError as err:  # a damaged store: said on every page, whatever the page reads
        slot.error(str(err), icon=":material/database:")
        return
    with slot.container():
        st.markdown(f"**Stored runs:** {count:,}")
        st.markdown(f"**Server jobs:** {load['running']} running · {load['queued']} queued · "
                    f"{load['started']} started since launch")
