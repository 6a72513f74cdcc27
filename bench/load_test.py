"""Classroom load test: N sessions press Run on the same default sweep of one server.

    python bench/load_test.py --sessions 30            # the figure recorded in RESULTS.md
    python bench/load_test.py --sessions 1             # one user: press Run to finished curve
    python bench/load_test.py --quick                  # 5 sessions, a smoke check
    python bench/load_test.py --sessions 1 --attach 8501 --log make-run.log
                                                       # drive a server `make run` started

It starts the server as `make run` does (`python serve.py`, with .streamlit/config.toml's
settings) on a free 127.0.0.1 port with a fresh temporary TRANSFERLAB_HOME (so the one job has
to pretrain and train all 63 runs), then drives N concurrent sessions over Streamlit's own
websocket protocol, as a browser tab would: each opens the Transfer curves page, presses Predict
first's "Show the results" (as a teacher showing results without predictions), presses Run at
a random moment within `--spread` seconds, answers the live panel's once-a-second fragment
reruns, and waits until its page shows the finished curve (the full chart drawn from the store,
no longer live, not the precomputed pack). Nothing leaves 127.0.0.1.

The last line is `sessions_ok=A/N jobs_started=J p95_ms=P rss_mb=M inotify_overflows=K`:
  sessions_ok   sessions whose page showed the finished curve before --timeout
  jobs_started  jobs the server handed to a worker process, read from the sidebar's job line
                ("... N started since launch") that every page shows
  p95_ms        95th percentile over the served sessions of the time from pressing Run to the
                finished curve on that session's page
  rss_mb        peak resident memory of the server: its own process plus the worker processes
                it spawned, sampled every 0.2 s from /proc (Linux)
  inotify_overflows  lines of the server's log saying its file watcher's inotify queue
                overflowed (0 with the watcher off, as the config file sets it)
With one session, a line `press-Run-to-finished-curve: S s` gives that session's time.

`--abuse` adds one hostile visitor beside the class, from another address (127.0.0.2; the
class's sessions come from 127.0.0.1) and as a script would: in a loop until the class is
served, with a fresh visitor cookie every other round and none otherwise, it opens a class,
presses Run on a crafted link (840 runs, refused) and on a link of its own within its quota (a
new job each round, which takes turns with the class's), joins a class with a guessed code,
starts a quiz and sends an answer that is not an option. Its line `hostile: ...` counts each
outcome; the class's figures are the same as without it, so the two p95s compare.

`--attach PORT` starts no server: it drives the one already listening on 127.0.0.1:PORT (say,
`TRANSFERLAB_HOME=$(mktemp -d) make run PORT=8611 ADDRESS=127.0.0.1 > make-run.log 2>&1`), so the
figure is the user's own path, and counts the overflow lines of `--log` (that server's output).
Its memory is sampled from the process listening on PORT when /proc shows it, else reported as 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from common import ROOT
from serve import server_command

PAGE = "transfer_curves"  # the page's URL path
JOBS_LINE = re.compile(r"(\d+) started since launch")
OVERFLOW_LINE = re.compile(r"inotify queue overflow", re.IGNORECASE)  # the file watcher's


# ---- the server ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, home: str) -> subprocess.Popen:
    """The server as `make run` starts it, on 127.0.0.1:`port`, logging to `home`/server.log."""
    env = dict(os.environ, TRANSFERLAB_HOME=home)
    with open(Path(home) / "server.log", "w") as log:
        return subprocess.Popen(server_command(port, "127.0.0.1"), cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def overflow_lines(home: str) -> int:
    """Lines of the server's log in which its file watcher's inotify queue overflowed."""
    return overflow_count(Path(home) / "server.log")


def overflow_count(path: Path) -> int:
    """Lines of a server log in which its file watcher's inotify queue overflowed."""
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text(errors="replace").splitlines()
               if OVERFLOW_LINE.search(line))


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("the server did not answer its health check")


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (workers and multiprocessing's helper), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class MemorySampler(threading.Thread):
    """Peak RSS of the server process alone and of the server plus its workers."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.peak_server_kb = self.peak_total_kb = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            server = rss_kb(self.pid)
            total = server + sum(rss_kb(p) for p in descendants(self.pid))
            self.peak_server_kb = max(self.peak_server_kb, server)
            self.peak_total_kb = max(self.peak_total_kb, total)
            self.stopped.wait(self.every)


# ---- one browser tab, spoken in Streamlit's websocket protocol -----------------------------------

@dataclass
class Session:
    index: int
    press_at: float  # seconds after the start of the test
    pressed: Optional[float] = None
    finished: Optional[float] = None
    jobs_started: Optional[int] = None
    error: Optional[str] = None
    full_runs: int = 0
    fragment_runs: int = 0
    endings: Counter = field(default_factory=Counter)  # script_finished statuses by name

    @property
    def latency_ms(self) -> Optional[float]:
        if self.pressed is None or self.finished is None:
            return None
        return (self.finished - self.pressed) * 1000


def rerun_msg(query: str, page_hash: str, *, trigger: Optional[str] = None,
              fragment: Optional[str] = None):
    """A rerun request as the browser sends it: the URL's query and page, widget states."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    msg.rerun_script.query_string = query
    msg.rerun_script.page_name = PAGE
    msg.rerun_script.page_script_hash = page_hash  # empty on the first request
    if trigger is not None:  # a button press: the widget's trigger value is true for one run
        state = msg.rerun_script.widget_states.widgets.add()
        state.id = trigger
        state.trigger_value = True
    if fragment is not None:
        msg.rerun_script.fragment_id = fragment
        msg.rerun_script.is_auto_rerun = True
    return msg.SerializeToString()


async def drive(session: Session, port: int, t0: float, deadline: float) -> None:
    """Open the page, press Run at `press_at`, answer fragment reruns, wait for the final curve."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.asyncio.client import connect

    query = ""
    page_hash = ""  # the page's script hash, learnt from the server's navigation message
    run_run: Optional[str] = None  # the form's submit button id
    reveal: Optional[str] = None  # Predict first's "Show the results" button, in the current run
    reveal_sent = False
    revealed = asyncio.Event()  # the results are not hidden behind Predict first any more
    timers: dict[str, asyncio.Task] = {}  # fragment id -> its auto-rerun task
    send_lock = asyncio.Lock()

    async with connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                       max_size=None, open_timeout=60, ping_interval=None) as ws:

        async def send(data: bytes) -> None:
            async with send_lock:
                await ws.send(data)

        async def auto_rerun(fragment: str, interval: float) -> None:
            while True:  # what the browser does for st.fragment(run_every=...)
                await asyncio.sleep(interval)
                await send(rerun_msg(query, page_hash, fragment=fragment))

        async def press_later() -> None:
            await asyncio.sleep(max(0.0, t0 + session.press_at - time.time()))
            await revealed.wait()  # a teacher shows the results first (no predictions)
            while run_run is None:
                await asyncio.sleep(0.1)
            session.pressed = time.time()
            await send(rerun_msg(query, page_hash, trigger=run_run))

        await send(rerun_msg(query, page_hash))
        presser = asyncio.create_task(press_later())
        texts: list[str] = []  # alerts and markdown of the current run
        final_chart = False
        seen: set[str] = set()  # fragments that asked for auto-reruns in the current run
        try:
            while time.time() < deadline:
                try:
                    data = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.time()))
                except asyncio.TimeoutError:
                    break
                msg = ForwardMsg()
                msg.ParseFromString(data)
                kind = msg.WhichOneof("type")
                if kind == "new_session":  # a run starts (a full run or a fragment rerun)
                    texts, final_chart, seen, reveal = [], False, set(), None
                elif kind == "navigation":
                    page_hash = msg.navigation.page_script_hash
                elif kind == "page_info_changed":
                    query = msg.page_info_changed.query_string
                elif kind == "auto_rerun":
                    fragment = msg.auto_rerun.fragment_id
                    seen.add(fragment)
                    if fragment not in timers:
                        timers[fragment] = asyncio.create_task(
                            auto_rerun(fragment, msg.auto_rerun.interval))
                elif kind == "stop_auto_rerun":
                    for fragment in msg.stop_auto_rerun.fragment_ids:
                        task = timers.pop(fragment, None)
                        if task is not None:
                            task.cancel()
                elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                    element = msg.delta.new_element
                    what = element.WhichOneof("type")
                    if what == "button" and element.button.is_form_submitter \
                            and element.button.label == "Run":
                        run_run = element.button.id
                    elif what == "button" and element.button.label == "Show the results":
                        reveal = element.button.id
                    elif what in ("markdown", "alert"):
                        texts.append(getattr(element, what).body)
                    elif what == "plotly_chart" and element.plotly_chart.id.endswith("-transfer_curve"):
                        final_chart = True
                elif kind == "script_finished":
                    status = msg.script_finished
                    session.endings[ForwardMsg.ScriptFinishedStatus.Name(status)] += 1
                    if status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                        session.fragment_runs += 1
                        continue
                    if status != ForwardMsg.FINISHED_SUCCESSFULLY:
                        continue
                    session.full_runs += 1
                    if reveal is not None and not reveal_sent:
                        reveal_sent = True  # press it once, as a teacher would
                        await send(rerun_msg(query, page_hash, trigger=reveal))
                        continue
                    if reveal is None:
                        revealed.set()
                    for fragment in set(timers) - seen:  # as the browser: fragments not drawn
                        timers.pop(fragment).cancel()  # by the full run stop rerunning
                    body = "\n".join(texts)
                    for text in texts:
                        match = JOBS_LINE.search(text)
                        if match:
                            session.jobs_started = int(match.group(1))
                    if (session.pressed is not None and final_chart and not timers
                            and "Precomputed" not in body and "not stored yet" not in body):
                        session.finished = time.time()
                        break
            if session.finished is None and session.error is None:
                session.error = "timed out" if time.time() >= deadline else "no finished curve"
        finally:
            presser.cancel()
            for task in timers.values():
                task.cancel()


async def drive_all(sessions: list[Session], port: int, timeout: float,
                    hostile: Optional[Counter] = None) -> None:
    t0 = time.time()
    deadline = t0 + timeout

    async def one(session: Session) -> None:
        try:
            await drive(session, port, t0, deadline)
        except Exception as err:  # one broken session is a finding, not a crash of the test
            session.error = f"{type(err).__name__}: {err}"

    done = asyncio.Event()
    attacker = asyncio.create_task(attack(port, done, hostile)) if hostile is not None else None
    await asyncio.gather(*(one(s) for s in sessions))
    done.set()
    if attacker is not None:
        await attacker


HOSTILE = "127.0.0.2"
HUGE = "strategies=scratch,probe,finetune&labels=1,2,5,10,20,50,all&seeds=20"  # 840 runs


async def attack(port: int, done: asyncio.Event, outcomes: Counter) -> None:
    """One hostile visitor, in a loop until `done`: each round a class opened, Run on a
    crafted link and on one of its own, a guessed join code, a quiz with an answer that is not
    an option. Each outcome is counted in `outcomes` ("open class: refused", ...)."""
    from st_client import Visitor

    rounds = 0
    while not done.is_set():
        rounds += 1
        visitor = await asyncio.to_thread(Visitor, port, HOSTILE, rounds % 2 == 0)
        own = f"strategies=scratch&labels=1,2,5,10,20,50&seeds={rounds % 10 + 1}"

        def said(tab, refused: str) -> str:
            return "error" if tab.exceptions else "refused" if refused in tab.texts() else "accepted"
        try:
            async with visitor.tab("classroom") as tab:
                await tab.click("Open the class")
                outcomes["open class: " + ("error" if tab.exceptions else
                                           "opened" if tab.metric("Class code") else "refused")] += 1
            for name, query in (("crafted Run", HUGE), ("own Run", own)):
                async with visitor.tab(PAGE, query) as tab:
                    await tab.click("Run")
                    outcomes[f"{name}: {said(tab, 'Not started')}"] += 1
            async with visitor.tab("classroom") as tab:
                code = "".join(random.choice("ABCDEFGHJKMNPQRSTUVWXYZ23456789") for _ in range(6))
                await tab.submit("Join", **{"Class code": code})
                outcomes["guessed code: " + ("error" if tab.exceptions else "joined"
                                             if "You are in class" in tab.texts() else "refused")] += 1
            async with visitor.tab("quiz") as tab:
                await tab.click("Start the quiz")
                radio = tab.widget("Your answer", "radio")
                await tab.rerun([(radio.widget_id, "string_value", "[x](http://example.invalid)")],
                                trigger=tab.widget("Check answer", "button").widget_id)
                outcomes[f"crafted answer: {said(tab, 'not one of this question')}"] += 1
        except Exception as err:  # noqa: BLE001  (counted: a finding, not a crash)
            outcomes[f"hostile client error: {type(err).__name__}: {str(err)[:48]}"] += 1
            await asyncio.sleep(1.0)


# ---- the report ---------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil(q/100 * n)
    return ordered[rank - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30, help="concurrent sessions (30)")
    parser.add_argument("--spread", type=float, default=20.0,
                        help="sessions press Run at random moments within this many seconds (20)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="give up on sessions not finished after this many seconds (900)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the press moments (0)")
    parser.add_argument("--quick", action="store_true", help="5 sessions, for a smoke check")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    parser.add_argument("--attach", type=int, default=None, metavar="PORT",
                        help="drive the server already on 127.0.0.1:PORT instead of starting one")
    parser.add_argument("--log", default=None,
                        help="with --attach: that server's output, to count inotify overflows")
    parser.add_argument("--abuse", action="store_true",
                        help="one hostile visitor beside the class (from 127.0.0.2)")
    args = parser.parse_args()
    if args.quick:
        args.sessions = min(args.sessions, 5)
    if args.sessions < 1:
        print("error: --sessions must be at least 1", file=sys.stderr)
        return 2

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    if args.attach is not None:
        return attached(args)
    home = tempfile.mkdtemp(prefix="transferlab-load-")
    port = free_port()
    print(f"server: 127.0.0.1:{port}, data directory {home}")
    server = start_server(port, home)
    sampler = MemorySampler(server.pid)
    try:
        wait_healthy(port, server)
        sampler.start()
        rng = random.Random(args.seed)
        sessions = [Session(i, rng.uniform(0, args.spread)) for i in range(args.sessions)]
        hostile = Counter() if args.abuse else None
        started = time.time()
        asyncio.run(drive_all(sessions, port, args.timeout, hostile))
        wall = time.time() - started
    finally:
        sampler.stopped.set()
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        overflows = overflow_lines(home)
        tracebacks = traceback_lines(home)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)

    return report(sessions, wall, sampler, overflows, hostile, tracebacks)


def traceback_lines(home: str) -> int:
    path = Path(home) / "server.log"
    return path.read_text(errors="replace").count("Traceback") if path.exists() else 0


def listening_pid(port: int) -> Optional[int]:
    """The process listening on 127.0.0.1:`port` (or every interface), from /proc (Linux)."""
    wanted = f":{port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[1].endswith(wanted) and cols[3] == "0A":  # 0A: LISTEN
                inodes.add(cols[9])
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                link = os.readlink(f"/proc/{entry}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(entry)
        except OSError:
            continue
    return None


class _NoServer:
    def poll(self):
        return None


def attached(args) -> int:
    """Drive the server already listening on --attach; count overflows in --log."""
    port = args.attach
    pid = listening_pid(port)
    print(f"server: 127.0.0.1:{port} (attached, pid {pid}), log {args.log or 'not given'}")
    wait_healthy(port, _NoServer())
    sampler = MemorySampler(pid or 0)
    if pid:
        sampler.start()
    rng = random.Random(args.seed)
    sessions = [Session(i, rng.uniform(0, args.spread)) for i in range(args.sessions)]
    started = time.time()
    try:
        asyncio.run(drive_all(sessions, port, args.timeout))
    finally:
        sampler.stopped.set()
    wall = time.time() - started
    overflows = overflow_count(Path(args.log)) if args.log else 0
    return report(sessions, wall, sampler, overflows)


def report(sessions: list[Session], wall: float, sampler: MemorySampler, overflows: int,
           hostile: Optional[Counter] = None, tracebacks: Optional[int] = None) -> int:
    """Print the figures; 0 when every session saw its finished curve from one job (with
    --abuse: whatever jobs the hostile visitor started besides, and no traceback)."""
    served = [s for s in sessions if s.finished is not None]
    latencies = [s.latency_ms for s in served]
    jobs = max((s.jobs_started for s in sessions if s.jobs_started is not None), default=-1)
    for s in sessions:
        if s.error:
            pressed = "never pressed Run" if s.pressed is None else "pressed Run"
            print(f"session {s.index}: {s.error} ({pressed}; {s.full_runs} full page runs, "
                  f"{s.fragment_runs} fragment reruns)")
    if latencies:
        print(f"submit-to-finished-curve: min {min(latencies):.0f} ms, median "
              f"{percentile(latencies, 50):.0f} ms, max {max(latencies):.0f} ms")
    if len(sessions) == 1 and latencies:  # one user, as `make run` serves them
        print(f"press-Run-to-finished-curve: {latencies[0] / 1000:.1f} s")
    endings = sum((s.endings for s in sessions), Counter())
    print("script runs ended: " + ", ".join(f"{k} {v}" for k, v in sorted(endings.items())))
    print(f"fragment reruns answered: {sum(s.fragment_runs for s in sessions)}; "
          f"full page runs: {sum(s.full_runs for s in sessions)}; wall {wall:.1f} s")
    print(f"peak RSS: server process {sampler.peak_server_kb / 1024:.0f} MB, server plus workers "
          f"{sampler.peak_total_kb / 1024:.0f} MB")
    if hostile is not None:
        print("hostile: " + ", ".join(f"{k} {v}" for k, v in sorted(hostile.items())))
    if tracebacks is not None:
        print(f"tracebacks in the server's log: {tracebacks}")
    p95 = percentile(latencies, 95) if latencies else float("nan")
    print(f"sessions_ok={len(served)}/{len(sessions)} jobs_started={jobs} p95_ms={p95:.0f} "
          f"rss_mb={sampler.peak_total_kb / 1024:.0f} inotify_overflows={overflows}")
    one_job = jobs == 1 or hostile is not None
    return 0 if len(served) == len(sessions) and one_job and overflows == 0 and not tracebacks else 1


if __name__ == "__main__":
    sys.exit(main())
