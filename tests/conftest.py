"""Shared test set-up: one private data directory per test session, pretraining done once.

TRANSFERLAB_HOME is pointed at a fresh temporary folder before any engine module is imported,
so tests never read or write a user's cache and never touch the network. The default lesson's
backbone is pretrained once per session (about 10 s on two cores) and reused by every test.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# `make test` runs three test processes on the two cores: each computes with one torch thread
# (as the app's job workers do), set before torch is imported; two threads each oversubscribed
# the cores (four test files took 104 s with two threads each, 79 s with one). A test that
# wants more sets it itself; a subprocess (a server, a job worker) inherits it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# The app's job workers run below the server's priority (niceness 10). Here the server is a test
# process sharing the cores with another test process, so a worker at 10 got about a tenth of a
# core while the other test computed: a page test's tiny job then waited on the scheduler.
os.environ.setdefault("TRANSFERLAB_WORKER_NICENESS", "0")
# and with one torch thread each, like the test processes (a worker's default is its share of
# the cores, two here, which three test processes beside it would oversubscribe)
os.environ.setdefault("TRANSFERLAB_WORKER_THREADS", "1")
SESSION_HOME = Path(tempfile.mkdtemp(prefix="transferlab-test-"))
os.environ["TRANSFERLAB_HOME"] = str(SESSION_HOME)
# the app keeps a spare worker process waiting for the next job; in-process page tests run with
# it off (tests/test_jobs.py and the real-browser test turn it on), so no test leaves one behind
os.environ["TRANSFERLAB_SPARE_WORKER"] = "0"
OUTPUT_DIR = ROOT / "test-output"  # screenshots and other artefacts kept with the test output


@pytest.fixture(scope="session")
def pretrained(tmp_path_factory, worker_id):
    """The default lesson's pretrained backbone, trained once per test run: under pytest-xdist
    the first test process that needs it trains it and leaves a copy in the run's shared
    temporary folder, and the others copy that into their own data directory (the cache then
    checks its hash as for any checkpoint)."""
    from filelock import FileLock

    from engine.core.pretrain import PretrainConfig, checkpoint_paths, pretrain

    config = PretrainConfig()
    if worker_id == "master":  # one process: nothing to share
        return pretrain(config)
    shared = tmp_path_factory.getbasetemp().parent / "pretrained"  # one folder per test run
    shared.mkdir(exist_ok=True)
    files = checkpoint_paths(config)  # the checkpoint, then its metadata (written last)
    with FileLock(str(shared / "lock")):
        if all((shared / f.name).exists() for f in files):
            files[0].parent.mkdir(parents=True, exist_ok=True)
            for f in files:
                shutil.copyfile(shared / f.name, f)
        else:
            pretrain(config)
            for f in files:
                shutil.copyfile(f, shared / f.name)
    return pretrain(config)


@pytest.fixture
def one_torch_thread():
    """Torch computes with one thread during the test; the setting is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def fresh_store(tmp_path):
    """An empty result store of the test's own."""
    from engine.core.store import ResultStore

    return ResultStore(tmp_path / "results.sqlite")


@pytest.fixture
def empty_default_store():
    """Empties the session's default store (the one pages use) before the test."""
    for suffix in ("", "-wal", "-shm"):
        path = SESSION_HOME / f"results.sqlite{suffix}"
        if path.exists():
            path.unlink()
    yield SESSION_HOME / "results.sqlite"


@pytest.fixture
def no_sections_pack(monkeypatch, tmp_path):
    """No sections pack shipped (`engine.infra.packs.SECTIONS_PACK` points at a missing file):
    a page on an empty store shows what it shows before any run exists."""
    from engine.infra import packs

    monkeypatch.setattr(packs, "SECTIONS_PACK", tmp_path / "no-sections-pack.json")


@pytest.fixture(autouse=True)
def _job_manager_for_the_current_data_directory():
    """The app's job manager (one per process, like a server's) keeps the store path of the data
    directory it was created in. A test that points TRANSFERLAB_HOME elsewhere and opens a page
    would leave every later test's jobs writing there: after such a test it is replaced."""
    yield
    jobs = sys.modules.get("ui.kit.jobs")
    if jobs is None:
        return
    manager = jobs.job_manager()
    if Path(manager.store_path).parent != Path(os.environ["TRANSFERLAB_HOME"]):
        manager.shutdown()
        jobs.job_manager.clear()


# The test files that take longest, by wall time in one `make test` on the 2-core machine
# (2026-12-07: 214, 175, 155, 84, 79, 60, 56, 56, 55, 54 and 50 s of the suite's 1,528 s), longest
# first. pytest-xdist hands each test process the next file in collection order whenever it runs
# low (`--no-loadscope-reorder` in the Makefile keeps this order), so a long file no longer starts
# last on a process that is already busy: with alphabetical order test_ray.py (175 s) started
# 330 s into the run, behind test_browser_pages.py on the same process, which finished 60 s
# after the others.
SLOW_FIRST = ("test_browser_pages.py", "test_ray.py", "test_jobs.py", "test_hurts_page.py",
              "test_which_source.py", "test_browser_tables.py", "test_fair_jobs.py",
              "test_bad_input.py", "test_readings_property.py", "test_imagenet.py",
              "test_browser_class.py")


def pytest_collection_modifyitems(session, config, items):
    """The files of SLOW_FIRST first, in its order; the others after them, as collected. The
    sort is stable, so each file's tests keep their order."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_HOME, ignore_errors=True)
