"""One real-browser test: the app served as users start it, driven by Chromium through Playwright.

It starts a fresh server (`python serve.py`, the command of `make run`) on a free port (the data
directory is the test session's, from conftest), opens the Transfer curves page URL directly, as
a first visitor with a bookmark would, checks the sidebar lists the declared page titles, shrinks
the settings form to a tiny sweep through the real widgets, presses Run and waits for the
curves. Then, in a 1366x768 window, it checks the page's toolbar has no Deploy button and its
menu no developer items (Streamlit shows both to visitors on localhost by default). The browser
is Debian's Chromium at /usr/bin/chromium; Playwright never downloads one. Without it the test
is skipped (`.ci/run` installs it and sets TRANSFERLAB_REQUIRE_BROWSER=1, which turns the skip
into a failure). The screenshots and the server's log are kept in test-output/.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

import pytest

from conftest import OUTPUT_DIR, ROOT
from serve import server_command

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGE_PATH = "transfer_curves"  # url path of pages/transfer_curves.py
DECLARED_TITLES = ["Home", "Transfer curves"]  # titles app.py gives st.Page
# What Streamlit's legacy pages/ discovery would show instead: the main script and file names.
LEGACY_NAMES = {"app", "home", "transfer curves", "transfer_curves"}
TINY_LABELS = ("1", "5")  # labels per class kept in the form; every other size is removed
STRATEGY_TITLES = ["From scratch", "Linear probe", "Fine-tune"]  # the form's default strategies
EXPECTED_RUNS = len(STRATEGY_TITLES) * len(TINY_LABELS) * 1  # one seed
SERVER_START_S = 90
RUN_TIMEOUT_S = 240  # the tiny sweep takes seconds on two idle cores; generous for busy CI
IDLE_AFTER_RUN_S = 30  # idle this long after Run with no chart: Run started nothing
# The frontend first probes for a base path under the page's own URL; these 404s are expected.
BENIGN_CONSOLE = re.compile(r"/_stcore/(health|host-config)$")
LAPTOP = {"width": 1366, "height": 768}  # a common laptop and projector resolution
PHONE = {"width": 390, "height": 844}  # a common phone
# The menu's developer items (their test ids), hidden by `client.toolbarMode = "viewer"`.
DEVELOPER_MENU_ITEMS = ("stMainMenuItem-rerun", "stMainMenuItem-clearCache",
                        "stMainMenuItem-autoRerun")

pytestmark = pytest.mark.timeout(420)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, base: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode} before it was healthy:\n"
                        f"{log_path.read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit was not healthy after {SERVER_START_S} s:\n"
                f"{log_path.read_text(errors='replace')[-4000:]}")


def require_chromium() -> None:
    """Skip without Debian's Chromium; fail instead where CI says the browser must be there."""
    if not CHROMIUM.exists():
        reason = (f"{CHROMIUM} is missing; install Debian's chromium (`apt-get install -y "
                  "chromium`, as .ci/run does) to run the real-browser test")
        if os.environ.get("TRANSFERLAB_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)


@contextlib.contextmanager
def streamlit_server(log_name: str, env: Optional[dict] = None) -> Iterator[str]:
    """The app's server as users start it (`python serve.py`, the command of `make run`, with
    .streamlit/config.toml's settings) on a free 127.0.0.1 port with the environment `env`
    (default: the test session's, TRANSFERLAB_HOME included); yields its base URL and always
    stops it."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = OUTPUT_DIR / log_name
    command = server_command(port, "127.0.0.1")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env or dict(os.environ), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(proc, base, log_path)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture
def server(pretrained, empty_default_store):
    """A fresh server (`python serve.py`) on a free port; yields its base URL, always stopped."""
    require_chromium()
    with streamlit_server("browser-streamlit.log") as base:
        yield base


def _wait_for_curves(page, chart, exception, app, store) -> None:
    """Wait until the chart shows every run or the app raises; fail fast when Run starts nothing.

    Training shows as a script run or a progress bar; idle for IDLE_AFTER_RUN_S with neither
    and no chart means Run trained nothing.
    """
    deadline = time.monotonic() + RUN_TIMEOUT_S
    busy = page.locator("[data-testid='stProgress']")
    idle_since = None
    while not exception.count():
        if chart.is_visible() and store.count() >= EXPECTED_RUNS:
            return
        now = time.monotonic()
        if app.get_attribute("data-test-script-state") == "notRunning" and not busy.is_visible():
            idle_since = idle_since or now
            if now - idle_since > IDLE_AFTER_RUN_S and not chart.is_visible():
                pytest.fail("Run was pressed but the app went idle without training or drawing "
                            "a chart (was the form submitted with the settings entered?)")
        else:
            idle_since = None
        if now > deadline:
            pytest.fail(f"{store.count()} of {EXPECTED_RUNS} runs stored, chart visible: "
                        f"{chart.is_visible()}, {RUN_TIMEOUT_S} s after Run")
        page.wait_for_timeout(250)


def assert_presenting(page) -> None:
    """The page is idle in presentation mode: no sidebar (nor its toggle), no form."""
    from playwright.sync_api import expect

    expect(page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")
           ).to_be_attached(timeout=120_000)
    assert page.locator("[data-testid='stException']").count() == 0
    expect(page.locator("[data-testid='stSidebar']:visible")).to_have_count(0)  # retried: the
    expect(page.locator("[data-testid='stExpandSidebarButton']:visible")).to_have_count(0)  # page
    expect(page.locator("[data-testid='stForm']")).to_have_count(0)  # may still be drawing
    assert "present=1" in page.url


def assert_viewer_toolbar(page) -> None:
    """The page's toolbar has no Deploy button, and its menu (when it has one) only viewer items:
    no Rerun, no Clear cache (which would drop the server's caches for every visitor)."""
    from playwright.sync_api import expect

    expect(page.locator("[data-testid='stToolbar']")).to_be_attached()
    expect(page.locator("[data-testid='stAppDeployButton']")).to_have_count(0)
    menu = page.locator("[data-testid='stMainMenuButton']")
    if menu.count():
        menu.click()
        expect(page.locator("[data-testid='stMainMenuList']")).to_be_visible()
        for test_id in DEVELOPER_MENU_ITEMS:
            expect(page.locator(f"[data-testid='{test_id}']")).to_have_count(0)
        page.keyboard.press("Escape")


def test_transfer_curves_in_a_real_browser(server, empty_default_store):
    from playwright.sync_api import expect, sync_playwright

    from engine.core.store import ResultStore

    store = ResultStore(empty_default_store)  # the store the server writes to
    problems: list[str] = []  # console errors and uncaught page errors, gathered throughout
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})

        def on_console(message) -> None:
            if message.type == "error" and not BENIGN_CONSOLE.search(message.location.get("url", "")):
                problems.append(f"console error: {message.text} ({message.location.get('url')})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        try:
            app = page.locator("[data-testid='stApp']")
            idle = page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")

            # A first visitor opens the lesson's URL directly on a fresh server.
            page.goto(f"{server}/{PAGE_PATH}")
            expect(idle).to_be_attached(timeout=120_000)
            expect(page.get_by_role("heading", name="Transfer curves", level=1)).to_be_visible()
            assert "Transfer Lab" in page.title()
            nav = page.locator("[data-testid='stSidebarNavLink'] [data-testid='stMarkdownContainer']")
            try:  # give the navigation time to render; what it shows is checked below
                expect(nav.filter(has_text=re.compile(r"^Transfer curves$"))).to_have_count(1, timeout=15_000)
            except AssertionError:
                pass
            nav_labels = [label.strip() for label in nav.all_inner_texts()]

            # Shrink the form to a tiny sweep: every strategy, 1 and 5 labels per class, one seed.
            form = page.locator("[data-testid='stForm']").filter(has_text="Labels per class").first
            labels = form.locator("[data-testid='stMultiSelect']").filter(has_text="Labels per class")
            expect(labels.locator("[data-tag]").first).to_be_visible()  # tags render after the run ends
            for tag in labels.locator("[data-tag] [title]").all_inner_texts():
                if tag not in TINY_LABELS:
                    labels.get_by_role("button", name=f"Remove {tag}", exact=True).click()
            expect(labels.locator("[data-tag] [title]")).to_have_text(list(TINY_LABELS))
            strategies = form.locator("[data-testid='stMultiSelect']").filter(has_text="Strategies")
            expect(strategies.locator("[data-tag] [title]")).to_have_text(STRATEGY_TITLES)
            seeds = form.get_by_role("spinbutton", name="Seeds", exact=True)
            seeds.fill("1")
            seeds.press("Tab")
            expect(seeds).to_have_value("1")

            chart = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").first
            exception = page.locator("[data-testid='stException']")
            # the store is empty: the default settings show the lesson pack, marked precomputed
            expect(page.get_by_text("Precomputed results from the lesson pack")).to_be_visible()
            form.locator("[data-testid='stFormSubmitButton'] button").click()
            # predict first hides the new settings' results: a teacher shows them without predicting
            expect(page.get_by_text(re.compile(r"^Showing: .* · 1 seed · "))).to_be_visible(timeout=60_000)
            expect(idle).to_be_attached(timeout=60_000)  # the rerun's stale elements are gone
            page.get_by_role("button", name="Show the results").click()

            # The chart appears when the first run finishes; then the script trains the rest.
            _wait_for_curves(page, chart, exception, app, store)
            # the job has ended once the live panel is gone and the final results are drawn
            expect(page.get_by_text(re.compile(r"^At \d+ labels? per class,"))).to_be_visible(
                timeout=RUN_TIMEOUT_S * 1000)
            expect(page.locator("[data-testid='stProgress']")).to_have_count(0)
            expect(idle).to_be_attached(timeout=RUN_TIMEOUT_S * 1000)
            assert exception.count() == 0, "the app raised:\n" + "\n".join(exception.all_inner_texts())
            legend = chart.locator(".legendtext")  # SVG text, one per strategy's curve
            for title in STRATEGY_TITLES:
                expect(legend.filter(has_text=title)).to_have_count(1)
            chart.scroll_into_view_if_needed()  # the app scrolls inside its own container
            page.screenshot(path=str(OUTPUT_DIR / "browser-transfer-curves.png"))

            # On a laptop-sized window, as a student sees it: a viewer's toolbar only.
            page.set_viewport_size(LAPTOP)
            assert_viewer_toolbar(page)
            page.screenshot(path=str(OUTPUT_DIR / "browser-toolbar-1366x768.png"))
            expect(page.locator("[data-testid='stSidebar']")).to_be_visible()  # open on a laptop

            # On a phone the sidebar starts collapsed instead of covering the lesson.
            phone = browser.new_page(viewport=PHONE)
            phone.goto(f"{server}/transfer_curves")
            expect(phone.get_by_role("heading", name="Transfer curves")).to_be_visible(timeout=60_000)
            expect(phone.locator("[data-testid='stSidebar']")).not_to_be_visible()
            phone.screenshot(path=str(OUTPUT_DIR / "browser-phone-390x844.png"))
        except BaseException:
            try:
                page.screenshot(path=str(OUTPUT_DIR / "browser-failure.png"), full_page=True)
            except Exception:  # keep the original failure, not the screenshot's
                pass
            raise
        finally:
            browser.close()

    assert "Home" in nav_labels and "Transfer curves" in nav_labels and \
        not LEGACY_NAMES.intersection(nav_labels), (
            f"the sidebar lists {nav_labels}, expected the declared titles {DECLARED_TITLES}: "
            "on a fresh server Streamlit's legacy pages/ discovery ran the page without app.py")
    assert store.count() == EXPECTED_RUNS
    assert not problems, "the browser reported errors:\n" + "\n".join(problems)
