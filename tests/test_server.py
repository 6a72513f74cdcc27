"""How the server starts and what outlives a cleared cache.

Every launcher (`make run`, the Dockerfile, the real-browser tests, the load benchmark) starts
the server through `serve.py`, whose only settings are where to listen: the rest, the file
watcher off and a toolbar without developer items included, is in `.streamlit/config.toml`
(checked on a fresh process in tests/test_security.py). And the server's job manager is not a
Streamlit cache entry: "Clear caches" (the menu item visitors no longer see, and the request a
client can still send) leaves its running jobs followed and cancellable.
"""

from __future__ import annotations

import re
import sys

import pytest
from streamlit.testing.v1 import AppTest

import serve
from conftest import ROOT

LAUNCHERS = ["Makefile", "Dockerfile", "tests/test_browser.py", "bench/load_test.py"]
# `streamlit run` as a command: a list's items, `python -m streamlit run`, a shell line's start
OPTION_FLAG = re.compile(r"--(server\.fileWatcherType|client\.toolbarMode|server\.headless)")
STREAMLIT_RUN = re.compile(r'"streamlit",\s*"run"|-m\s+streamlit\s+run|^\s*streamlit\s+run', re.M)


def test_the_entry_only_says_where_to_listen():
    assert serve.streamlit_command(8502) == [sys.executable, "-m", "streamlit", "run", "web.py",
                                             "--server.port=8502"]
    assert serve.streamlit_command(8502, "127.0.0.1", ["--server.baseUrlPath=lab"])[-2:] == [
        "--server.address=127.0.0.1", "--server.baseUrlPath=lab"]
    assert serve.server_command(8502, "127.0.0.1") == [
        sys.executable, str(ROOT / "serve.py"), "--port=8502", "--address=127.0.0.1"]


def test_the_entry_replaces_itself_with_streamlit_in_the_repository(monkeypatch, tmp_path):
    calls = []
    monkeypatch.chdir(tmp_path)  # started from elsewhere: the config file is still read
    monkeypatch.setattr(serve.os, "execv", lambda path, argv: calls.append((path, argv)))
    serve.main(["--port=9001", "--address", "0.0.0.0", "--server.baseUrlPath=lab"])
    assert calls == [(sys.executable, serve.streamlit_command(9001, "0.0.0.0",
                                                              ["--server.baseUrlPath=lab"]))]
    assert serve.Path.cwd() == ROOT
    with pytest.raises(SystemExit):
        serve.main(["--port=9001", "stray"])


def test_every_launcher_starts_the_server_through_the_entry():
    """The server that is tested and measured is the one users start, with the same settings."""
    for name in LAUNCHERS:
        text = (ROOT / name).read_text()
        assert "serve.py" in text or "server_command(" in text, f"{name} does not use serve.py"
        assert not STREAMLIT_RUN.search(text), f"{name} runs streamlit itself"
        assert not OPTION_FLAG.search(text), (
            f"{name} sets a server option that belongs in .streamlit/config.toml")
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert "serve.py" in recipe and "--port=$(PORT)" in recipe


def test_clearing_streamlits_caches_keeps_the_job_manager_and_its_running_job(empty_default_store):
    """What "Clear caches" does on the server (Streamlit's AppSession clears both caches) must
    not orphan a running job: the same manager, the job visible, Cancel working."""
    import streamlit as st

    from engine.experiments.sweep import SweepSpec
    from ui.kit.jobs import job_manager

    manager = job_manager()
    spec = SweepSpec(strategies=("scratch",), labels_per_class=(1, 2, 5, 10, 20, 50), seeds=3)
    job = manager.submit(spec, "a-session")
    try:
        assert job.active
        st.cache_data.clear()
        st.cache_resource.clear()
        assert job_manager() is manager
        status = job_manager().status(job.job_id)
        assert status is not None and status.active
        assert job.job_id in [j.job_id for j in job_manager().jobs() if j.active]
        # the sidebar every page shows still counts it
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
        assert not at.exception
        sidebar = [m.value for m in at.sidebar.markdown]
        assert any(re.search(r"Server jobs:\*\* [1-9]\d* running", line) for line in sidebar)
        assert job_manager().cancel(job.job_id)
        assert job_manager().status(job.job_id).state == "cancelled"
    finally:
        manager.cancel(job.job_id)


def test_the_job_manager_is_created_once_across_threads():
    """Sessions' script threads ask for it at the same moment on a fresh server."""
    import threading

    from ui.kit.jobs import job_manager

    job_manager().shutdown()  # as on a fresh server
    job_manager.clear()
    seen, barrier = [], threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        seen.append(job_manager())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 8 and all(m is seen[0] for m in seen)
