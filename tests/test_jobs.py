"""Background jobs: one job per distinct sweep, caps, cancel, crash safety, concurrent writers."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from engine.infra.jobs import JobLimitError, JobManager
from engine.core.store import ResultStore
from engine.experiments.sweep import SweepSpec, plan_runs, stored_records

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout=240.0, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    raise AssertionError("timed out waiting")


@pytest.fixture
def manager(tmp_path, pretrained):
    mgr = JobManager(tmp_path / "jobs.sqlite", max_workers=1, threads_per_worker=1, per_session_cap=1)
    yield mgr
    mgr.shutdown()


def test_identical_specs_from_two_sessions_share_one_job(manager):
    spec = SweepSpec(strategies=("probe",), labels_per_class=(1, 2), seeds=2)
    a = manager.submit(spec, "session-a")
    b = manager.submit(spec, "session-b")
    assert a.job_id == b.job_id and b.watchers == 2 and manager.jobs_started == 1
    wait_for(lambda: manager.status(a.job_id).state == "done")
    done = manager.status(a.job_id)
    assert (done.done, done.total, done.trained) == (4, 4, 4) and done.error is None
    assert len(stored_records(spec, ResultStore(manager.store_path))) == 4
    again = manager.submit(spec, "session-c")  # everything stored: finished at once, no worker
    assert again.state == "done" and manager.jobs_started == 1


def test_caps_and_queue_position(manager):
    first = SweepSpec(strategies=("scratch",), labels_per_class=(1, 2, 5), seeds=2)
    second = SweepSpec(strategies=("probe",), labels_per_class=(5,), seeds=1)
    manager.submit(first, "alice")
    with pytest.raises(JobLimitError, match="already have 1"):
        manager.submit(second, "alice")
    queued = manager.submit(second, "bob")
    assert queued.state == "queued" and queued.queue_position == 1
    manager.cancel(queued.job_id)
    assert manager.status(queued.job_id).state == "cancelled"


def test_cancel_kills_the_worker_and_keeps_finished_runs(manager):
    spec = SweepSpec(strategies=("scratch",), labels_per_class=(1, 2, 5, 10, 20, 50), seeds=2)
    job = manager.submit(spec, "s")
    wait_for(lambda: manager.status(job.job_id).trained >= 2)
    proc = manager._procs[job.job_id][0]
    assert manager.cancel(job.job_id)
    assert not proc.is_alive()
    status = manager.status(job.job_id)
    store = ResultStore(manager.store_path)
    kept = len(stored_records(spec, store))
    assert status.state == "cancelled" and 2 <= kept < status.total and status.done == kept
    time.sleep(1.0)
    assert len(stored_records(spec, store)) == kept  # nothing trains after the cancel
    resumed = manager.submit(spec, "s")
    wait_for(lambda: manager.status(resumed.job_id).state == "done")
    assert manager.status(resumed.job_id).trained == status.total - kept


def test_a_killed_worker_is_replaced_once_then_reported(manager):
    """A worker killed from outside (the kernel's OOM killer, an operator) is replaced once by a
    worker that trains only the missing runs; killed again, the job ends as failed with the exit
    code. Finished runs stay in the store throughout, and a resubmit trains only the rest."""
    spec = SweepSpec(strategies=("scratch",), labels_per_class=(1, 2, 5, 10, 20, 50), seeds=2)
    job = manager.submit(spec, "s")
    store = ResultStore(manager.store_path)

    def kill_after(n_stored):
        wait_for(lambda: manager.status(job.job_id).state == "running"
                 and job.job_id in manager._procs
                 and len(stored_records(spec, store)) >= n_stored)
        proc = manager._procs[job.job_id][0]
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)

    kill_after(2)
    wait_for(lambda: manager.status(job.job_id).restarts == 1, timeout=30)
    assert "stopped unexpectedly" in manager.status(job.job_id).message
    kill_after(len(stored_records(spec, store)) + 1)  # the new worker trains on from the store
    wait_for(lambda: manager.status(job.job_id).state == "failed", timeout=30)
    failed = manager.status(job.job_id)
    assert "stopped unexpectedly" in failed.error and str(-signal.SIGKILL) in failed.error
    kept = len(stored_records(spec, store))
    assert failed.done == kept and 3 <= kept < failed.total
    assert manager.load() == {"running": 0, "queued": 0, "started": 2}
    resumed = manager.submit(spec, "s")
    wait_for(lambda: manager.status(resumed.job_id).state == "done")
    assert manager.status(resumed.job_id).trained == failed.total - kept
    assert manager.load()["started"] == 3


def test_sigkill_mid_sweep_loses_no_finished_run(tmp_path, pretrained):
    store_path = tmp_path / "crash.sqlite"
    args = [sys.executable, "-m", "engine", "sweep", "--strategies", "scratch", "--labels", "1,2,5",
            "--seeds", "3", "--store", str(store_path), "--no-progress"]
    proc = subprocess.Popen(args, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: store_path.exists() and ResultStore(store_path).count() >= 2, interval=0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    con = sqlite3.connect(store_path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    kept = ResultStore(store_path).count()
    assert 2 <= kept < 9
    rerun = subprocess.run(args, cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"runs: {9 - kept} trained, {kept} reused" in rerun.stdout


WRITER = """
import sys
from engine.core.store import ResultStore
store = ResultStore(sys.argv[1])
for i in range(150):
    store.put({"run_key": f"{sys.argv[2]}-{i}", "strategy": "probe", "labels_per_class": 1, "seed": i,
               "test_accuracy": 50.0, "n_train": 10, "all_labels": False})
"""


def test_store_stays_consistent_with_concurrent_writers(tmp_path):
    path = tmp_path / "shared.sqlite"
    ResultStore(path)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{k}"], cwd=ROOT) for k in range(3)]
    assert [p.wait(120) for p in procs] == [0, 0, 0]
    store = ResultStore(path)
    assert store.count() == 450
    assert len(store.get_many(f"w1-{i}" for i in range(150))) == 150


def test_plan_is_what_the_job_counts():
    spec = SweepSpec(strategies=("probe", "scratch"), labels_per_class=(1, 2), seeds=3)
    assert len(plan_runs(spec)) == 12


def test_workers_do_not_rerun_the_servers_main_script(tmp_path, monkeypatch, manager):
    """Under `streamlit run`, `__main__` is the app script; a spawned worker must not import it
    again (it would draw pages and build a job manager of its own before training)."""
    import types

    marker = tmp_path / "main-was-imported"
    script = tmp_path / "fake_app.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    spec = SweepSpec(strategies=("probe",), labels_per_class=(1,), seeds=1)
    job = manager.submit(spec, "s")
    wait_for(lambda: manager.status(job.job_id).state != "running", timeout=120)
    assert manager.status(job.job_id).state == "done"
    assert sys.modules["__main__"] is fake_main  # restored after the spawn
    assert not marker.exists()


def _spare(mgr):
    with mgr._lock:
        return mgr._spare


def test_a_spare_worker_waits_while_idle_and_takes_the_next_job(tmp_path, pretrained, monkeypatch):
    mgr = JobManager(tmp_path / "jobs.sqlite", max_workers=1, threads_per_worker=1, spare_worker=True)
    try:
        wait_for(lambda: _spare(mgr) is not None, timeout=30)
        spare_pid = _spare(mgr)[0].pid
        # the data directory changed after the spare started: the job must use the new one
        # (it finds no pretrained backbone there, so it pretrains one into it)
        elsewhere = tmp_path / "home-now"
        monkeypatch.setenv("TRANSFERLAB_HOME", str(elsewhere))
        spec = SweepSpec(strategies=("probe",), labels_per_class=(1,), seeds=2)
        job = mgr.submit(spec, "s")
        with mgr._lock:
            assert mgr._procs[job.job_id][0].pid == spare_pid  # the waiting process took it
        wait_for(lambda: mgr.status(job.job_id).state == "done", timeout=120)
        assert mgr.status(job.job_id).trained == 2 and mgr.jobs_started == 1
        ended = mgr.status(job.job_id)  # the pretraining reported its steps, to the last one
        assert ended.pretrain_total > 100 and ended.pretrain_done == ended.pretrain_total
        assert len(stored_records(spec, ResultStore(mgr.store_path))) == 2
        assert list((elsewhere / "checkpoints").glob("small_cnn-mnist5k-*.pt"))
        # idle again: a new spare is started; a job submitted now runs in it, and cancelling
        # it kills that process like any worker
        wait_for(lambda: _spare(mgr) is not None and _spare(mgr)[0].pid != spare_pid, timeout=30)
        second = _spare(mgr)[0]
        long_job = mgr.submit(SweepSpec(strategies=("scratch",), labels_per_class=(50,), seeds=3), "s")
        assert mgr.cancel(long_job.job_id)
        second.join(10)
        assert not second.is_alive()
    finally:
        mgr.shutdown()
    assert _spare(mgr) is None and not second.is_alive()


def test_a_spare_worker_that_died_is_replaced_by_a_fresh_worker(tmp_path, pretrained):
    mgr = JobManager(tmp_path / "jobs.sqlite", max_workers=1, threads_per_worker=1, spare_worker=True)
    try:
        wait_for(lambda: _spare(mgr) is not None, timeout=30)
        with mgr._lock:  # kill it and submit before the monitor notices
            proc = mgr._spare[0]
            proc.kill()
            proc.join(10)
            job = mgr.submit(SweepSpec(strategies=("probe",), labels_per_class=(2,), seeds=1), "s")
            assert mgr._procs[job.job_id][0].pid != proc.pid
        wait_for(lambda: mgr.status(job.job_id).state == "done", timeout=120)
        assert mgr.status(job.job_id).trained == 1
    finally:
        mgr.shutdown()


def test_spare_workers_that_keep_dying_are_not_started_again(tmp_path, pretrained):
    mgr = JobManager(tmp_path / "jobs.sqlite", max_workers=1, threads_per_worker=1, spare_worker=True)
    try:
        killed = set()
        for _ in range(3):
            wait_for(lambda: _spare(mgr) is not None and _spare(mgr)[0].pid not in killed, timeout=30)
            proc = _spare(mgr)[0]
            killed.add(proc.pid)
            proc.kill()
            proc.join(10)
        wait_for(lambda: not mgr.spare_worker, timeout=10)
        time.sleep(0.5)
        assert _spare(mgr) is None
        job = mgr.submit(SweepSpec(strategies=("probe",), labels_per_class=(1,), seeds=1), "s")
        wait_for(lambda: mgr.status(job.job_id).state == "done", timeout=120)  # a fresh worker
    finally:
        mgr.shutdown()


def test_the_job_box_shows_pretraining_progress_in_steps():
    """While a job pretrains, its box's bar follows the pretraining's steps (an empty bar of
    stored runs for the whole pretraining said nothing)."""
    from streamlit.testing.v1 import AppTest

    def box():
        import time

        from engine.experiments.sweep import SweepSpec
        from engine.infra.jobs import JobStatus
        from ui.kit.section import job_box

        job_box(JobStatus("k", SweepSpec(), "running", done=0, total=105, trained=0,
                          stage="pretrain", message="pretraining on mnist5k: loss 0.412",
                          submitted_at=time.time(), started_at=time.time(),
                          pretrain_done=120, pretrain_total=568), "curves", "run", "mnist5k")

    at = AppTest.from_function(box, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Pretraining the backbone on" in at.markdown[0].value
    bar = at.get("progress")[0]
    assert bar.value == round(100 * 120 / 568)  # percent, as Streamlit keeps it
    assert bar.proto.text.startswith("step 120 of 568 · pretraining on mnist5k")


def test_the_eta_counts_only_the_runs_time_and_never_guesses_first():
    """A first Run pretrains for minutes before its first run: the ETA is the rate of the runs
    since they started (126 s of pretraining once made it 67 min for a 36-second sweep), and
    there is none until one of them has finished."""
    import time

    from engine.infra.jobs import JobStatus

    now = time.time()
    job = JobStatus("k", SweepSpec(), "running", done=2, total=10, trained=2, stage="run",
                    message="", submitted_at=now - 140, started_at=now - 140,
                    runs_since=now - 10, trained_before=0)
    assert job.eta_seconds() == pytest.approx(10 / 2 * 8, abs=1.0)  # not 140 / 2 * 8
    assert replace(job, runs_since=None).eta_seconds() is None  # pretraining, or not started
    assert replace(job, trained_before=2).eta_seconds() is None  # no run of this stretch yet


def test_worker_niceness_reads_its_setting(monkeypatch):
    from engine.infra.jobs import NICENESS_ENV, WORKER_NICENESS, worker_niceness

    for value, expected in [(None, WORKER_NICENESS), ("0", 0), ("5", 5), ("40", 19), ("-3", 0),
                            ("high", WORKER_NICENESS)]:
        if value is None:
            monkeypatch.delenv(NICENESS_ENV, raising=False)
        else:
            monkeypatch.setenv(NICENESS_ENV, value)
        assert worker_niceness() == expected, value


def test_worker_threads_follow_their_setting(monkeypatch):
    from engine.infra.jobs import THREADS_ENV, default_workers

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert default_workers() == (4, 2)  # two cores per worker
    for value, threads in (("1", 1), ("3", 3), ("0", 1), ("many", 2)):
        monkeypatch.setenv(THREADS_ENV, value)
        assert default_workers() == (4, threads), value
