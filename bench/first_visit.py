"""The first-visit timeline of a classroom server: when each lesson shows results, and when
its own runs finish, on a fresh data directory.

Starts the app as `make run` does (`python serve.py`, .streamlit/config.toml, a waiting worker
process) on a new, empty data directory, opens each lesson page in Chromium (1366x768) one
after the other, notes when its page shows results (the shipped lesson pack's, said to be
precomputed), presses every Run of the page (its default settings), and notes when all of the
page's runs are in the result store. Prints one line per lesson and the total.

    .venv/bin/python bench/first_visit.py

Needs Debian's chromium and Playwright (`make test` installs it). Run it on an idle machine:
the figures are wall-clock times.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from engine.core.store import ResultStore  # noqa: E402
from engine.experiments.lessons.catalog import LESSONS  # noqa: E402
from engine.experiments.protocol import all_units  # noqa: E402
from test_browser import CHROMIUM, CHROMIUM_ARGS, LAPTOP, streamlit_server  # noqa: E402

RESULTS = "Precomputed results from the lesson pack"
RUN_BUTTONS = re.compile(r"^(Run|Run both experiments|Train and merge)$")  # each section's start
TIMEOUT_S = 900


def idle(page) -> None:
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(
        state="attached", timeout=TIMEOUT_S * 1000)


def main() -> int:
    import os

    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="transferlab-first-visit-"))
    env = dict(os.environ, TRANSFERLAB_HOME=str(home))
    store = ResultStore(home / "results.sqlite")
    start = time.perf_counter()
    with streamlit_server("first-visit-streamlit.log", env) as base, sync_playwright() as p:
        print(f"server up after {time.perf_counter() - start:.1f} s (fresh data directory {home})")
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=LAPTOP)
        page.set_default_timeout(TIMEOUT_S * 1000)
        began = time.perf_counter()
        for lesson, sections in LESSONS.items():
            keys = sorted({u.key for cls in sections.values()  # sections share some units
                           for u in all_units(cls.from_query({})[0].experiment())})
            opened = time.perf_counter()
            page.goto(f"{base}/{lesson}")
            page.get_by_text(RESULTS).first.wait_for()
            shown = time.perf_counter() - opened
            idle(page)
            time.sleep(1.0)
            runs = page.get_by_role("button", name=RUN_BUTTONS)
            for i in range(runs.count()):
                cancel = page.get_by_role("button", name=re.compile(r"Cancel$"))
                before = cancel.count()
                runs.nth(i).click()
                waited = time.perf_counter()  # the job's box (with Cancel) appears
                while cancel.count() <= before and time.perf_counter() - waited < 30:
                    time.sleep(0.2)
                if cancel.count() <= before and len(store.get_many(keys)) < len(keys):
                    said = page.locator("[data-testid='stAlert']").all_inner_texts()
                    print(f"{lesson}: Run {i + 1} started no job; the page says: {said}")
                idle(page)
            while len(store.get_many(keys)) < len(keys):
                if time.perf_counter() - opened > TIMEOUT_S:
                    print(f"{lesson}: not finished after {TIMEOUT_S} s "
                          f"({len(store.get_many(keys))} of {len(keys)} units)")
                    return 1
                time.sleep(1.0)
            done = time.perf_counter() - opened
            print(f"{lesson:>20}: results shown (pack) after {shown:5.1f} s; its own "
                  f"{len(keys)} units stored after {done:6.1f} s "
                  f"(at {time.perf_counter() - began:6.1f} s of the visit)")
        browser.close()
    print(f"every lesson's own runs stored {time.perf_counter() - began:.1f} s after the first "
          "page opened")
    return 0


if __name__ == "__main__":
    sys.exit(main())
