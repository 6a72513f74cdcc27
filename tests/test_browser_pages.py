"""Every page of the app in a real browser, on one server, with one tab.

One server, started as users start it (`python serve.py`, through test_browser's
`streamlit_server`), serves the whole module, from a data directory of its own that starts with
the session's pretrained checkpoint (copied, so nothing is pretrained again) and no downloaded
weights or datasets. For each page in `ui.catalog.PAGES` the test opens it from the
sidebar's navigation, changes a control, runs the smallest experiment the page offers (one
label count, one seed, the fewest strategies, ranks or severity levels), waits for the
background job to end and its result to be drawn, and checks that no exception box and no
browser console error appeared. Pages that offer downloads only show their offline message
here: nothing is downloaded. Then a malformed link is opened, and the live server is asked to
take an upload without its XSRF token and to answer a foreign Origin.

The tab is a 1366x768 window (a laptop, a classroom projector). Pressing Run is followed by a
check that the job's progress bar shows inside the window as it is, without scrolling the user
did not do (the app may scroll it into view). The Forgetting page runs both its sections (the
diagnostics' form is at the foot of a long page). Once the page's jobs have ended, the page is
taken at 1366x768 and then, by resizing the same tab, at 390x844 (a phone), and each time: no
table column is cut (a table fits its box at 1366 px; on a phone it may scroll sideways, inside
a box that stays in the window), no chart text is under 12 px on screen or runs past its
chart's edge (every SVG text of every plotly chart, ticks, legends, titles and annotations),
each legend stays within its chart's width and leaves the plot most of its height, and the
toolbar has no Deploy button and no developer menu items. On the phone, every prediction box
of Predict first shows its own label, and every Run of every page (`PHONE_RUNS`) is pressed
again after a change that needs new runs (stored settings start no job, so no progress would
show): its progress must show in the window too, and the job is then cancelled, so the phone's
check trains next to nothing. Screenshots of each page at both sizes, and of the progress right
after each Run, go to test-output/.

Chromium is Debian's, as in tests/test_browser.py (skipped without it, unless CI requires it).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from conftest import OUTPUT_DIR
from engine.experiments.diagnostics import DiagnosticsConfig
from engine.experiments.forgetting import ForgettingConfig, ForgettingSeeds
from engine.experiments.sweep import UNTRAINED, SweepSpec
from test_browser_class import classroom  # the Class page's check
from test_browser import (BENIGN_CONSOLE, CHROMIUM, CHROMIUM_ARGS, LAPTOP, PHONE, assert_viewer_toolbar,
                          require_chromium, streamlit_server)
from engine.experiments.lessons.depth import LearningRateSettings, depth_specs
from engine.experiments.lessons.hurts import SHIFT_SLIDERS, shift_group, shift_levels
from ui.catalog import PAGES, SECTIONS
from engine.experiments.lessons.lora import LabSettings

pytestmark = pytest.mark.timeout(300)  # per page; each needs seconds to a minute on two cores
JOB_TIMEOUT_S = 240  # a page's tiny experiment, training in the server's worker process
LOAD_TIMEOUT_MS = 120_000  # the first page of a fresh server imports torch & co.
HEADINGS = {  # page path -> its title (h1)
    "pages/home.py": "Transfer Lab", "pages/transfer_curves.py": "Transfer curves",
    "pages/which_source.py": "Which source?", "pages/when_transfer_hurts.py": "When transfer hurts",
    "pages/forgetting.py": "Forgetting, and what fine-tuning changes",
    "pages/depth.py": "How much of the network to train", "pages/lora_lab.py": "LoRA lab",
    "pages/advisor.py": "Strategy advisor", "pages/pipeline.py": "Design a pipeline",
    "pages/flashcards.py": "Flashcards", "pages/quiz.py": "Quiz",
    "pages/data_models.py": "Data and models", "pages/classroom.py": "Class",
    "pages/how_called.py": "How a difference is called",
    "pages/transfer_on_text.py": "Transfer on text",
}
SIZES = {"1366x768": LAPTOP, "390x844": PHONE}  # each page is checked at both, in this order
MIN_CHART_TEXT_PX = 12  # the smallest chart text allowed on screen
# the pages whose action presses a Run that starts a background job (its progress is checked)
RUNS_A_JOB = {lesson.path for lesson in PAGES if lesson.sections}


@dataclass
class Lab:
    base: str  # the server's URL
    home: Path  # its TRANSFERLAB_HOME
    page: object  # the one Playwright page (tab)
    problems: list = field(default_factory=list)  # console errors and page errors since cleared
    shot: str = "page"  # the current page's name in screenshot files
    # after a Run: where its progress bar settled ({"top", "bottom", "height": the window's}),
    # None if no progress bar showed
    progress: Optional[dict] = None


@pytest.fixture(scope="module")
def lab(pretrained):
    from playwright.sync_api import sync_playwright

    require_chromium()
    home = Path(tempfile.mkdtemp(prefix="transferlab-browser-"))
    (home / "checkpoints").mkdir()
    for path in (pretrained.checkpoint, pretrained.checkpoint.with_suffix(".json")):
        shutil.copy2(path, home / "checkpoints" / path.name)
    # TORCH_HOME: no ImageNet weights a developer's machine may have cached, so the pages show
    # what is missing and the tiny experiments never compute ImageNet features.
    # TRANSFERLAB_SPARE_WORKER: as deployed, a worker process waits for each next experiment.
    env = dict(os.environ, TRANSFERLAB_HOME=str(home), TORCH_HOME=str(home / "torch"),
               TRANSFERLAB_SPARE_WORKER="1")
    try:
        with streamlit_server("browser-pages-streamlit.log", env) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=LAPTOP)
            page.set_default_timeout(30_000)
            state = Lab(base, home, page)

            def on_console(message) -> None:
                if message.type == "error" and not BENIGN_CONSOLE.search(message.location.get("url", "")):
                    state.problems.append(f"console error: {message.text} ({message.location.get('url')})")

            page.on("console", on_console)
            page.on("pageerror", lambda error: state.problems.append(f"page error: {error}"))
            try:
                yield state
            finally:
                browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- helpers --------------------------------------------------------------------------------------

def _exception(page):
    return page.locator("[data-testid='stException']")


def _idle(page, timeout_ms: int = LOAD_TIMEOUT_MS) -> None:
    from playwright.sync_api import expect

    expect(page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")).to_be_attached(
        timeout=timeout_ms)


def _no_exception(page) -> None:
    assert _exception(page).count() == 0, "the app raised:\n" + "\n".join(_exception(page).all_inner_texts())


def _await(page, locator, what: str, timeout_s: float = JOB_TIMEOUT_S) -> None:
    """Wait for `locator` to be visible, failing at once if the app shows an exception."""
    deadline = time.monotonic() + timeout_s
    while not (locator.count() and locator.first.is_visible()):
        _no_exception(page)
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not appear within {timeout_s:.0f} s")
        page.wait_for_timeout(250)
    _no_exception(page)


def _await_job_end(lab: Lab, spec, result, what: str) -> None:
    """The job for `spec` (a sweep, a group or an experiment) has stored every unit, its result
    is drawn and no progress bar is left. Stored results, not the page, say the job is over: a
    page can show an earlier partial result before Run's rerun starts."""
    from playwright.sync_api import expect

    from engine.infra.jobs import spec_units

    page, deadline = lab.page, time.monotonic() + JOB_TIMEOUT_S
    while (units := spec_units(spec, str(lab.home / "results.sqlite")))[0] < units[1]:
        _no_exception(page)
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: {units[0]} of {units[1]} stored after {JOB_TIMEOUT_S} s")
        page.wait_for_timeout(250)
    _await(page, result, what)
    expect(page.locator("[data-testid='stProgress']")).to_have_count(0, timeout=JOB_TIMEOUT_S * 1000)
    _idle(page)
    _no_exception(page)


def _form(page, containing: str):
    return page.locator("[data-testid='stForm']").filter(has_text=containing).first


def _keep_tags(scope, label: str, keep) -> None:
    """Remove every tag of the multiselect `label` inside `scope` except those in `keep`."""
    from playwright.sync_api import expect

    widget = scope.locator("[data-testid='stMultiSelect']").filter(has_text=label).first
    expect(widget.locator("[data-tag]").first).to_be_visible()
    for tag in widget.locator("[data-tag] [title]").all_inner_texts():
        if tag not in keep:
            widget.get_by_role("button", name=f"Remove {tag}", exact=True).click()
    expect(widget.locator("[data-tag] [title]")).to_have_text(list(keep))


def _number(scope, label: str, value: int) -> None:
    from playwright.sync_api import expect

    box = scope.get_by_role("spinbutton", name=label, exact=True)
    box.fill(str(value))
    box.press("Tab")
    expect(box).to_have_value(str(value))


def _slider_to_lowest(scope, label: str, shows: str, key: str = "Home") -> None:
    """Move the slider `label` with `key` (Home: to its lowest; ArrowRight: one step up)."""
    from playwright.sync_api import expect

    # the range input's accessible name repeats its label (aria-labelledby names it twice)
    slider = scope.locator(f"input[type='range'][aria-label='{label}']")
    slider.focus()
    slider.press(key)
    expect(slider).to_have_attribute("aria-valuetext", shows)


def _choose(page, scope, label: str, option: str) -> None:
    box = scope.get_by_role("combobox", name=label, exact=True)
    box.click()
    if box.get_attribute("aria-expanded") != "true":  # a click on a focused box may not open it
        box.press("ArrowDown")
    page.get_by_role("option", name=option, exact=True).click()


def _visit(lab: Lab, lesson) -> None:
    """Open a page as a visitor does: the first by its URL, the others from the navigation."""
    from playwright.sync_api import expect

    page = lab.page
    if page.url == "about:blank":
        page.goto(f"{lab.base}/" + ("" if lesson.default else Path(lesson.path).stem))
    else:
        nav = page.locator("[data-testid='stSidebarNavLink'] [data-testid='stMarkdownContainer']"
                           ).filter(has_text=re.compile(rf"^{re.escape(lesson.title)}$"))
        try:  # back from the last page's phone size, the sidebar opens again
            expect(page.locator("[data-testid='stSidebar']")).to_be_visible(timeout=10_000)
        except AssertionError:
            page.locator("[data-testid='stExpandSidebarButton']").click()
        more = page.locator("[data-testid='stSidebarNavViewButton']").filter(has_text="more")
        if not nav.is_visible() and more.count():  # a short window lists the first pages only
            more.click()
        nav.click()
    expect(page.get_by_role("heading", name=HEADINGS[lesson.path], level=1)).to_be_visible(
        timeout=LOAD_TIMEOUT_MS)
    _idle(page)
    _no_exception(page)
    # the navigation clears the last page's settings from the URL: no "unused settings" warning
    assert page.get_by_text("This link has settings this page does not use").count() == 0


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _png(color) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, "PNG")
    return buf.getvalue()


# --- what a visitor sees: progress after Run, tables, chart text, toolbar -----------------------

# The first progress bar's place in the window, or null when there is none.
PROGRESS_JS = """() => {
  const bar = document.querySelector("[data-testid='stProgress']");
  if (!bar) return null;
  const r = bar.getBoundingClientRect();
  return r.height ? {top: r.top, bottom: r.bottom, height: window.innerHeight} : null;
}"""

# What cuts a table's columns (st.table: HTML; st.dataframe: a canvas grid in a scrolling
# box): a box that runs past the window; columns wider than their box (at all when `fit`, else
# unless the box scrolls sideways, which keeps every column reachable); a header cell of
# st.table whose text is clipped.
TABLE_JS = """(el, fit) => {
  const problems = [], width = document.documentElement.clientWidth, box = el.getBoundingClientRect();
  const kind = el.dataset.testid, table = kind === "stTable" ? el.querySelector("table") : null;
  const heads = table ? [...table.querySelectorAll("thead th")].map(th => th.innerText.trim()) : [];
  const name = `${kind} [${heads.join(" | ") || el.innerText.trim().split("\\n").slice(0, 4).join(" | ")}]`;
  if (box.left < -1 || box.right > width + 1)
    return [`${name} runs past the window: ${box.left.toFixed(0)} to ${box.right.toFixed(0)} of ${width} px`];
  let scroller = el.querySelector(".dvn-scroller");
  for (let node = table && table.parentElement; node && node !== el.parentElement; node = node.parentElement) {
    scroller = node;  // st.table: the nearest box around the table that scrolls, else the element
    if (["auto", "scroll"].includes(getComputedStyle(node).overflowX)) break;
  }
  if (!scroller) return [`${name}: no table drawn`];
  const over = scroller.scrollWidth - scroller.clientWidth;
  const scrolls = ["auto", "scroll"].includes(getComputedStyle(scroller).overflowX);
  if (over > 1 && (fit || !scrolls))
    problems.push(`${name}: ${over} px of columns cut` + (scrolls ? " (it scrolls sideways)" : ""));
  for (const th of table ? table.querySelectorAll("th") : [])
    if (th.scrollWidth > th.clientWidth + 1) problems.push(`${name}: header '${th.innerText.trim()}' clipped`);
  return problems;
}"""

# What is wrong with one plotly chart on screen: each SVG text (and tspan: a superscript has
# its own size) drawn under `min` px (its computed font size times the scale of its transform
# to the screen) or running past the chart's left or right edge (a title too long for a
# phone is cut there), and a legend that leaves the chart's width or takes more than `share` of its
# height (the plot itself would be squeezed).
CHART_JS = """(chart, [min, share]) => {
  const problems = [], box = chart.getBoundingClientRect();
  const px = (a, b) => `${a.toFixed(0)} to ${b.toFixed(0)} px`;
  for (const t of chart.querySelectorAll("svg text, svg tspan")) {
    const text = (t.textContent || "").trim();
    const style = getComputedStyle(t);
    if (!text || style.display === "none" || style.visibility === "hidden") continue;
    const m = t.getScreenCTM();
    const size = parseFloat(style.fontSize) * (m ? Math.sqrt(Math.abs(m.a * m.d - m.b * m.c)) : 1);
    if (size < min - 0.01) problems.push(`'${text.slice(0, 40)}' at ${size.toFixed(1)} px`);
    const r = t.getBoundingClientRect();  // the chart's edge cuts what runs past it
    if (r.width && (r.left < box.left - 1 || r.right > box.right + 1))
      problems.push(`'${text.slice(0, 40)}' (${px(r.left, r.right)}) runs past the chart (${px(box.left, box.right)})`);
  }
  const legend = chart.querySelector("g.legend");
  if (legend) {
    const r = legend.getBoundingClientRect();
    if (r.left < box.left - 1 || r.right > box.right + 1)
      problems.push(`the legend (${px(r.left, r.right)}) leaves the chart (${px(box.left, box.right)})`);
    if (r.height > share * box.height)
      problems.push(`the legend is ${r.height.toFixed(0)} px high, over ${share * 100}% of the ` +
                    `chart's ${box.height.toFixed(0)} px`);
  }
  return problems;
}"""
MAX_LEGEND_SHARE = 0.45  # of a chart's height, at most: the plot keeps the larger part
# Labels drawn on a chart (annotations, point labels, the title) read from the rendered SVG: none
# overlaps another text, none lies on a data line or an error bar (each line sampled every
# 2 px along its length), and the toolbar (shown on hover, top right) covers no title.
LABELS_JS = """(chart) => {
  const problems = [];
  const inner = (r, d) => ({left: r.left + d, right: r.right - d, top: r.top + d, bottom: r.bottom - d});
  const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  const kind = t => t.closest("g.annotation") ? "label" : t.closest(".textpoint") ? "label"
    : t.closest(".g-gtitle") ? "title" : t.closest(".legend") ? "legend" : "axis";
  const texts = [...chart.querySelectorAll("svg text")]
    .filter(t => (t.textContent || "").trim() && getComputedStyle(t).display !== "none")
    .map(t => ({text: t.textContent.trim().slice(0, 40), kind: kind(t), box: t.getBoundingClientRect()}))
    .filter(t => t.box.width > 0);
  for (let i = 0; i < texts.length; i++) for (let j = i + 1; j < texts.length; j++) {
    const [a, b] = [texts[i], texts[j]];
    if (a.kind === b.kind && a.kind !== "label") continue;  // ticks and legend: plotly spaces them
    if (meet(inner(a.box, 1), inner(b.box, 1))) problems.push(`'${a.text}' overlaps '${b.text}'`);
  }
  const labels = texts.filter(t => t.kind === "label");
  for (const path of chart.querySelectorAll(".scatterlayer .js-line, .errorbar path")) {
    const m = path.getScreenCTM();
    let length = 0;
    try { length = path.getTotalLength(); } catch (err) { continue; }
    for (const label of labels) {
      const box = inner(label.box, 1);
      for (let d = 0; d <= length; d += 2) {
        const p = path.getPointAtLength(d);
        const x = m.a * p.x + m.c * p.y + m.e, y = m.b * p.x + m.d * p.y + m.f;
        if (x > box.left && x < box.right && y > box.top && y < box.bottom) {
          problems.push(`'${label.text}' lies on a line of the data`); break; }
      }
    }
  }
  const bar = chart.querySelector(".modebar");
  if (bar) {
    const box = bar.getBoundingClientRect();
    for (const t of texts.filter(t => t.kind === "title"))
      if (box.width && meet(box, inner(t.box, 1))) problems.push(`the toolbar covers the title '${t.text}'`);
  }
  return problems;
}"""

# Every Predict first box on show (its number input) with a label that is not on screen.
PREDICTION_LABELS_JS = """(form) => {
  const unlabelled = [], labels = [];
  for (const box of form.querySelectorAll("[data-testid='stNumberInput']")) {
    const label = box.querySelector("[data-testid='stWidgetLabel']");
    const r = label ? label.getBoundingClientRect() : null;
    const shown = r && r.width > 20 && r.height > 8 && r.left >= 0 && r.right <= window.innerWidth
      && getComputedStyle(label).visibility !== "hidden";
    if (shown) labels.push(label.innerText.trim());
    else unlabelled.push(box.querySelector("input").getAttribute("aria-label"));
  }
  return {labels, unlabelled};
}"""


def _press_run(lab: Lab, button, section: str = "") -> None:
    """Press Run as a visitor does (the click scrolls the button into view if it is not), then
    note where the job's progress bar settles, in the window as it is (`lab.progress`), and
    take a screenshot of that moment (named after the page, and `section` when it has several)."""
    page = lab.page
    button.click()
    deadline, seen = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        _no_exception(page)
        now = page.evaluate(PROGRESS_JS)
        if seen and not now:  # the job has ended already: where the bar was last
            break
        seen = (seen if now in seen[-1:] else []) + ([now] if now else [])
        if len(seen) == 3:  # in one place for 0.3 s: the page has settled
            break
        page.wait_for_timeout(150)
    lab.progress = seen[-1] if seen else None
    size = page.viewport_size
    name = f"{lab.shot}-{section}" if section else lab.shot
    page.screenshot(path=str(OUTPUT_DIR / f"browser-page-{name}-run-{size['width']}x{size['height']}.png"))


def _assert_progress_in_sight(lab: Lab) -> None:
    bar = lab.progress
    assert bar is not None, "no progress bar showed after Run"
    assert 0 <= bar["top"] and bar["bottom"] <= bar["height"], (
        f"after Run the job's progress bar is at {bar['top']:.0f} to {bar['bottom']:.0f} px, "
        f"outside the {bar['height']} px high window: the visitor has to scroll to see it")


def _each_shown(page, selector: str, drawn, check) -> list[str]:
    """`check(i, element)`'s problems for every element of `selector` on show, each scrolled
    into view and waited for with `drawn(element)` first (a grid or chart draws when seen)."""
    problems = []
    found = page.locator(selector)
    for i in range(found.count()):
        element = found.nth(i)
        if not element.is_visible():  # in a closed expander or tab
            continue
        element.scroll_into_view_if_needed()
        drawn(element)
        problems += check(i, element)
    return problems


def _table_problems(page, fit: bool) -> list[str]:
    """What cuts the columns of every table on show (TABLE_JS)."""
    from playwright.sync_api import expect

    def drawn(table):
        if table.get_attribute("data-testid") == "stDataFrame":
            expect(table.locator(".dvn-scroller")).to_be_attached(timeout=30_000)

    return _each_shown(page, "[data-testid='stTable'], [data-testid='stDataFrame']", drawn,
                       lambda i, table: table.evaluate(TABLE_JS, fit))


def _chart_problems(page) -> list[str]:
    """Chart text under MIN_CHART_TEXT_PX, legends over MAX_LEGEND_SHARE, and labels that
    overlap text or lines or sit under the toolbar (LABELS_JS), in every chart on show."""
    from playwright.sync_api import expect

    def drawn(chart):
        expect(chart.locator(".js-plotly-plot .main-svg").first).to_be_attached(timeout=30_000)

    def check(i, chart):
        plot = chart.locator(".js-plotly-plot").first
        found = plot.evaluate(CHART_JS, [MIN_CHART_TEXT_PX, MAX_LEGEND_SHARE])
        found += plot.evaluate(LABELS_JS)
        return [f"chart {i + 1}: {problem}" for problem in found]

    return _each_shown(page, "[data-testid='stPlotlyChart']", drawn, check)


def _cancel_jobs(lab: Lab) -> None:
    """Press Cancel in every job box, as a visitor would, until no progress bar is left; each
    cancelled job's note says what it kept. A job that ends before its Cancel is pressed just
    ends (its box goes; its note says what it trained)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout, expect

    page, deadline, cancelled = lab.page, time.monotonic() + JOB_TIMEOUT_S, 0
    while page.locator("[data-testid='stProgress']").count():
        _no_exception(page)
        if time.monotonic() > deadline:
            pytest.fail(f"a job still shows its progress {JOB_TIMEOUT_S} s after Cancel")
        button = page.get_by_role("button", name="Cancel", exact=True)
        if button.count():
            try:
                button.first.click(timeout=5_000)
                cancelled += 1
            except PlaywrightTimeout:  # the box went between the count and the click
                pass
        page.wait_for_timeout(250)
    _idle(page)
    _no_exception(page)
    if cancelled:  # the note of the cancelled job, or of one that finished as Cancel was pressed
        ended = re.compile(r"^(Cancelled: \d+ of |Trained \d+ new )")
        expect(page.get_by_text(ended).first).to_be_visible()


def _run_on_a_phone(lab: Lab, lesson) -> None:
    """Each Run of the page pressed at 390x844 after a change that needs new runs (settings
    already stored start no job, so no progress would show): the job's progress shows in the
    window; then the job is cancelled, so the phone's check trains next to nothing."""
    runs = [PHONE_RUNS[s.key] for s in lesson.sections if isinstance(PHONE_RUNS.get(s.key), tuple)]
    for section, (containing, change) in enumerate(runs, start=1):
        form = _form(lab.page, containing)
        change(form)
        _press_run(lab, form.get_by_role("button", name="Run"), f"{section}" if len(runs) > 1 else "")
        _assert_progress_in_sight(lab)
        _cancel_jobs(lab)


# Every tag of every visible multiselect lies inside its box (none scrolled or cut out of sight).
MULTISELECT_JS = """() => {
  const problems = [];
  for (const box of document.querySelectorAll("[data-testid='stMultiSelect'] .react-aria-ComboBox > div")) {
    if (!box.offsetParent) continue;
    const b = box.getBoundingClientRect();
    for (const tag of box.querySelectorAll("[data-tag]")) {
      const r = tag.getBoundingClientRect();
      if (r.left < b.left - 1 || r.right > b.right + 1 || r.top < b.top - 1 || r.bottom > b.bottom + 1)
        problems.push(`the multiselect choice "${tag.innerText.trim()}" lies outside its box`);
    }
  }
  return problems;
}"""


def _check_sizes(lab: Lab, lesson) -> None:
    """The page at each of SIZES, resizing the one tab: tables, chart text, the toolbar, on a
    phone Predict first's labels; a screenshot of each, at the first chart (or the top)."""
    from playwright.sync_api import expect

    page = lab.page
    for name, size in SIZES.items():
        page.set_viewport_size(size)
        page.wait_for_timeout(400)  # charts and tables follow the new width
        _idle(page)
        problems = _table_problems(page, size is LAPTOP)
        problems += _chart_problems(page)
        problems += page.evaluate(MULTISELECT_JS)
        assert not problems, f"at {name}:\n" + "\n".join(problems)
        assert_viewer_toolbar(page)
        if lesson.path == "pages/transfer_curves.py" and size is PHONE:
            form = page.locator("[data-testid='stForm']").filter(has_text="Save my predictions").first
            expect(form).to_be_visible()
            shown = form.evaluate(PREDICTION_LABELS_JS)
            assert shown["labels"] and not shown["unlabelled"], shown
            assert all(re.fullmatch(r".+ at \d+ labels? per class \(%\)", t) for t in shown["labels"]), shown
        first = page.locator("[data-testid='stPlotlyChart']")
        if first.count() and first.first.is_visible():
            first.first.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
        page.screenshot(path=str(OUTPUT_DIR / f"browser-page-{lab.shot}-{name}.png"))
        if size is PHONE and lesson.path in RUNS_A_JOB:
            _run_on_a_phone(lab, lesson)
    page.set_viewport_size(LAPTOP)


# --- one function per page: change a control, run the smallest experiment, check the result ------

def home(lab: Lab) -> None:
    from playwright.sync_api import expect

    page = lab.page
    # the lesson path, practice and tools link every other page (the page has no control to change)
    expect(page.locator("[data-testid='stPageLink']")).to_have_count(len(PAGES) - 1)
    assert "Transfer Lab" in page.title()


def transfer_curves(lab: Lab) -> None:
    page = lab.page
    form = _form(page, "Labels per class")
    _keep_tags(form, "Strategies", ["From scratch", "Linear probe"])
    _keep_tags(form, "Labels per class", ["1"])
    _number(form, "Seeds", 1)
    _press_run(lab, form.locator("[data-testid='stFormSubmitButton'] button"))
    # predict first hides the new settings' results: a teacher shows them without predicting
    _await(page, page.get_by_text(re.compile(r"^Showing: From scratch, Linear probe · labels per class 1 ")),
           "the new settings", 60)
    page.get_by_role("button", name="Show the results").click()
    _await_job_end(lab, SweepSpec(strategies=("scratch", "probe"), labels_per_class=(1,), seeds=1),
                   page.get_by_text(re.compile(r"^At 1 label per class, the linear probe")),
                   "the head-start sentence")
    from playwright.sync_api import expect

    page.locator("[data-testid='stPlotlyChart']").first.scroll_into_view_if_needed()
    chart = page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot").first
    legend = chart.locator(".legendtext")
    expect(legend).to_have_count(2, timeout=30_000)  # a chart below the fold draws when seen
    assert sorted(legend.all_text_contents()) == ["From scratch", "Linear probe"]


def which_source(lab: Lab) -> None:
    page = lab.page
    form = _form(page, "ImageNet network")
    # ResNet-18's weights are not on this server: the page says so and runs without it
    _choose(page, form, "ImageNet network", "ResNet-18 (ImageNet, torchvision) (weights not downloaded)")
    _keep_tags(form, "Labels per class", ["1"])
    _number(form, "Seeds", 1)
    _press_run(lab, form.get_by_role("button", name="Run"))
    for spec in (SweepSpec(strategies=("scratch", "probe"), labels_per_class=(1,), seeds=1),
                 SweepSpec(source=UNTRAINED, strategies=("probe",), labels_per_class=(1,), seeds=1)):
        _await_job_end(lab, spec, page.get_by_role("heading", name="At 1 label per class"),
                       "the comparison")
    assert page.get_by_text(re.compile(r"ResNet-18 .* is not available on this server: weights not "
                                       r"downloaded: resnet18-f37072fd\.pth")).is_visible()
    page.locator("[data-testid='stPlotlyChart']").first.scroll_into_view_if_needed()


def when_transfer_hurts(lab: Lab) -> None:
    page = lab.page
    form = _form(page, "Severity levels above 0")
    _slider_to_lowest(form, "Severity levels above 0", "2")
    _keep_tags(form, "Labels per class", ["1"])
    _number(form, "Seeds", 1)
    _press_run(lab, form.get_by_role("button", name="Run"))
    highest = SHIFT_SLIDERS["rotate"][1]  # the form's default for the default transform
    group = shift_group("rotate", shift_levels("rotate", highest, 2), (1,), 1)
    _await_job_end(lab, group, page.get_by_role("heading", name="Reading the plot"),
                   "the head-start chart")
    page.locator("[data-testid='stPlotlyChart']").last.scroll_into_view_if_needed()


def forgetting(lab: Lab) -> None:
    """Both sections, each at its smallest settings: the forgetting arms, then the per-layer
    diagnostics (one fine-tune), whose form is at the foot of a long page."""
    page = lab.page
    form = _form(page, "Replay fraction")
    _slider_to_lowest(form, "Target labels per class", "10")
    _slider_to_lowest(form, "Epochs", "2")
    _number(form, "Seeds", 1)
    _press_run(lab, form.get_by_role("button", name="Run"), "arms")
    _await_job_end(lab, ForgettingSeeds(ForgettingConfig(labels_per_class=10, epochs=2), 1),
                   page.get_by_role("heading", name="How each remedy works"), "the forgetting arms")
    _assert_progress_in_sight(lab)
    form = _form(page, "Probe labels per class")
    _slider_to_lowest(form, "Fine-tune labels per class", "5")
    _keep_tags(form, "Learning rates of the pretrained layers", ["0.003"])
    _slider_to_lowest(form, "Probe labels per class", "5")
    _press_run(lab, form.get_by_role("button", name="Run"), "diagnostics")
    _await_job_end(lab, DiagnosticsConfig(labels_per_class=5, backbone_lrs=(3e-3,), probe_labels_per_class=5),
                   page.get_by_text(re.compile(r"^What to look for")), "the diagnostics")
    page.get_by_role("heading", name="Linear probe on each layer").scroll_into_view_if_needed()


def depth(lab: Lab) -> None:
    page = lab.page
    form = _form(page, "Run both experiments")
    _slider_to_lowest(form, "Labels per class", "1")
    _slider_to_lowest(form, "Seeds", "1")
    _press_run(lab, form.get_by_role("button", name="Run both experiments"))
    for spec in depth_specs(1, 1):
        _await_job_end(lab, spec, page.get_by_text(re.compile(r"^In your run the highest mean is at k = \d")),
                       "the freeze-depth result")
    # section 4, the learning rates: one label per class, one seed (two fine-tunes)
    form = _form(page, "Lower learning rate")
    _keep_tags(form, "Labels per class", ["1"])
    _number(form, "Seeds", 1)
    _press_run(lab, form.get_by_role("button", name="Run"), "learning_rate")
    _await_job_end(lab, LearningRateSettings(labels_per_class=(1,), seeds=1).experiment(),
                   page.get_by_text(re.compile(r"^Fine-tuning at lr 0\.001 has too few seeds")),
                   "the learning-rate reading")
    # freeze depth, copied layers, the two learning rates
    assert page.locator("[data-testid='stPlotlyChart']").count() == 3
    page.locator("[data-testid='stPlotlyChart']").first.scroll_into_view_if_needed()


def lora_lab(lab: Lab) -> None:
    from playwright.sync_api import expect

    page = lab.page
    _number(page, "Rank r", 4)  # the counts follow at once, nothing trains
    _idle(page)
    expect(page.locator("[data-testid='stMetric']").filter(has_text="Scaling alpha/r")).to_contain_text("4")
    form = _form(page, "LoRA ranks")
    _choose(page, form, "Labels per class", "1")
    _number(form, "Seeds", 1)
    _keep_tags(form, "LoRA ranks", ["1"])
    _press_run(lab, form.get_by_role("button", name="Run"))
    _await_job_end(lab, LabSettings(labels_per_class=1, seeds=1, ranks=(1,)).experiment(),
                   page.get_by_text(re.compile(r"^The highest LoRA mean here is")), "the trade-off")
    page.get_by_text(re.compile(r"^The highest LoRA mean here is")).scroll_into_view_if_needed()


OWN_TEXT = {"glad": ["what a lovely day", "I loved every minute", "a warm and kind welcome",
                     "the best meal in years", "such a happy ending", "great fun for all"],
            "sad": ["what a grim day", "I hated every minute", "a cold and rude welcome",
                    "the worst meal in years", "such a bleak ending", "no fun at all"]}


def transfer_on_text(lab: Lab) -> None:
    """Predict first hides the curves until a prediction is saved; then the shipped curves show
    from the sections pack; the visitor's own sentences (one text file per class) upload
    through the real file input, and a tiny Run on them (the probe and LoRA, 1 label per class,
    one seed) computes their MiniLM features in the worker and tunes the transformer with LoRA
    once."""
    from playwright.sync_api import expect

    from engine.experiments.lessons.text import TextCurveSettings

    page = lab.page
    _await(page, page.get_by_text(re.compile(r"^Predict first: the curves, their reading and the "
                                                 r"error table")), "the hidden curves", 60)
    box = page.get_by_role("spinbutton", name="Linear probe at 1 label per class (%)", exact=True)
    box.fill("70")
    box.press("Tab")
    expect(box).to_have_value("70.0")
    page.get_by_role("button", name="Save my predictions").click()
    _await(page, page.get_by_text(re.compile(r"^Your predictions against the runs")),
           "the prediction's report", 60)
    page.get_by_text("Use your own sentences").click()
    uploader = page.locator("[data-testid='stFileUploader']").first
    uploader.locator("input[type='file']").set_input_files(files=[
        {"name": f"{side}.txt", "mimeType": "text/plain",
         "buffer": "\n".join(f"{s}, number {i}" for s in lines for i in (1, 2)).encode()}
        for side, lines in OWN_TEXT.items()])
    _await(page, uploader.get_by_text("sad.txt"), "the uploaded files' names", 60)
    page.get_by_role("button", name="Use these sentences").click()
    _await(page, page.get_by_text(re.compile(r"^24 sentences in 2 classes: glad \(12\)")),
           "the import", 60)
    stored = list((lab.home / "uploads").glob("text-*.json"))
    assert len(stored) == 1
    corpus = "text:" + stored[0].stem.removeprefix("text-")
    form = _form(page, "Corpus")
    _choose(page, form, "Corpus", "Your sentences: glad.txt, sad.txt")
    _keep_tags(form, "Strategies", ["Linear probe (MiniLM, frozen)"])
    _choose(page, form, "Strategies", "LoRA r=8 (MiniLM adapts)")
    page.keyboard.press("Escape")  # the list stays open over the form otherwise
    _keep_tags(form, "Labels per class", ["1"])
    _number(form, "Seeds", 1)
    _press_run(lab, form.get_by_role("button", name="Run"))
    with pytest.MonkeyPatch.context() as patch:  # the upload is in the server's data directory
        patch.setenv("TRANSFERLAB_HOME", str(lab.home))
        spec = TextCurveSettings(corpus, ("probe", "lora"), (1,), 1).experiment()
        spec.units()  # reads the sentences once (kept for this process)
    _await_job_end(lab, spec,
                   page.get_by_text(re.compile(r"^No run of training from scratch is stored")),
                   "the text reading")
    page.locator("[data-testid='stPlotlyChart']").first.scroll_into_view_if_needed()


def advisor(lab: Lab) -> None:
    page = lab.page
    _number(page, "Labelled examples", 50)
    page.get_by_role("button", name="Recommend a strategy").click()
    heading = page.get_by_role("heading", name=re.compile(r"^Recommended: "))
    _await(page, heading, "the advice", 60)
    advice = heading.inner_text()
    page.reload()  # the situation and the advice survive a reload (they are in the link)
    _await(page, page.get_by_role("heading", name=advice), "the advice after a reload", 60)
    from playwright.sync_api import expect

    expect(page.get_by_role("spinbutton", name="Labelled examples")).to_have_value("50")
    assert page.get_by_text("settings this page does not use").count() == 0


def pipeline(lab: Lab) -> None:
    from playwright.sync_api import expect

    page = lab.page
    warning = page.locator("[data-testid='stAlertContentWarning']").filter(has_text="Still to answer")
    expect(warning).to_contain_text("2. Backbone")
    page.get_by_role("textbox", name="Backbone", exact=True).fill("ResNet-18")
    page.get_by_role("textbox", name="Backbone", exact=True).press("Tab")
    why = page.get_by_role("textbox", name="What it pretrained on, and why that transfers")
    why.fill("ImageNet photos: edges and textures transfer to bird photos.")
    why.press("Tab")
    _idle(page)
    expect(warning).not_to_contain_text("2. Backbone")
    # words typed and never left (no Tab, no click elsewhere) are saved after a pause in typing
    risk = page.get_by_role("textbox", name="How does your target data differ from the pretraining data?")
    risk.click()
    risk.press_sequentially("Field photos at dusk.", delay=20)
    page.wait_for_timeout(1500)  # a pause in typing
    _idle(page)
    expect(page).to_have_url(re.compile(r"[?&]plan="))
    page.reload()
    expect(page.get_by_role("textbox", name="How does your target data differ from the pretraining data?")
           ).to_have_value("Field photos at dusk.", timeout=LOAD_TIMEOUT_MS)
    expect(page.get_by_role("textbox", name="Backbone", exact=True)).to_have_value("ResNet-18")


def flashcards(lab: Lab) -> None:
    page = lab.page
    name = page.get_by_role("textbox", name="Your name", exact=True)
    name.fill("Ada")
    name.press("Enter")
    _await(page, page.get_by_role("button", name="Show answer"), "the first card", 60)
    page.get_by_role("button", name="Show answer").click()
    _await(page, page.get_by_role("button", name=re.compile(r"^Good · ")), "the grades", 60)
    page.get_by_role("button", name=re.compile(r"^Good · ")).click()
    _await(page, page.locator("[data-testid='stCaptionContainer']").filter(has_text="this card comes back in"),
           "the note on the graded card", 60)


def quiz(lab: Lab) -> None:
    page = lab.page
    page.get_by_role("button", name="Start the quiz").click()
    _await(page, page.get_by_role("button", name="Check answer"), "the first question", 60)
    page.locator("[data-testid='stRadio'] label").filter(has=page.locator("input[type='radio']")).first.click()
    page.get_by_role("button", name="Check answer").click()
    _await(page, page.get_by_text(re.compile(r"^(Correct\.|Not quite\. The answer is)")),
           "the verdict", 60)


def data_models(lab: Lab) -> None:
    page = lab.page
    # offline: every downloadable dataset says what is missing; nothing is downloaded here
    assert page.get_by_text(re.compile(r"not downloaded: missing dermamnist\.npz")).is_visible()
    assert page.get_by_text(re.compile(r"not downloaded: missing pneumoniamnist\.npz")).is_visible()
    uploader = page.locator("[data-testid='stFileUploader']").filter(has_text="Image folders (zip)")
    form = _form(page, "Image folders (zip)")
    # a zip that climbs out of its folder is refused with its name, through the real upload path
    bad = _zip({"cats/a.png": _png((255, 0, 0)), "dogs/a.png": _png((0, 0, 255)),
                "../../etc/evil.png": _png((0, 0, 0))})
    _import_zip(page, uploader, form, "evil.zip", bad)
    _await(page, page.get_by_text(re.compile(r"This upload was refused\. .*\.\./\.\./etc/evil\.png")),
           "the refusal", 60)
    good = _zip({f"{c}/{i}.png": _png(color) for c, color in (("cats", (255, 0, 0)),
                                                                ("dogs", (0, 0, 255))) for i in range(3)})
    _import_zip(page, uploader, form, "pets.zip", good)
    _await(page, page.get_by_text(re.compile(r"^pets\.zip is imported: 6 images in 2 classes")),
           "the import", 60)
    assert len(list((lab.home / "uploads").glob("*.npz"))) == 1  # only the good zip is stored


def how_called(lab: Lab) -> None:
    """The rule's page: the interval widths table (from the t distribution) and the rule."""
    page = lab.page
    _await(page, page.get_by_text(re.compile(r"^A paired 95% interval reaches")), "the widths' caption", 60)
    assert page.get_by_text(re.compile(r"^How a difference is called: a gap between two")).is_visible()
    assert page.get_by_text("4.30").count() >= 1  # t(0.975, 2 degrees of freedom), 3 seeds


def _import_zip(page, uploader, form, name: str, data: bytes) -> None:
    """Upload `data` as the zip `name` through the real file input, then press Import."""
    uploader.locator("input[type='file']").set_input_files(
        files=[{"name": name, "mimeType": "application/zip", "buffer": data}])
    _await(page, uploader.get_by_text(name), "the uploaded file's name", 60)
    form.get_by_role("button", name="Import").click()


def _seeds(value: int, label: str = "Seeds"):
    return lambda form: _number(form, label, value)


# On a phone, a declared section's Run (`ui.catalog.SECTIONS`, by key): (text that finds its
# form, the change that asks for runs not stored yet), or why it is not pressed again there; a
# section not listed is drawn at both sizes but not pressed again on the phone.
# One more seed, or a new seed, is the smallest such change; the job is cancelled once its
# progress has shown.
PHONE_RUNS = {
    "transfer_curves.curves": ("Labels per class", _seeds(2)),
    "which_source.comparison": ("ImageNet network", _seeds(2)),
    "which_source.earlier_block": "it needs ImageNet weights, which this server does not have",
    "when_transfer_hurts.negative": "its first Run pretrains a mismatched source for minutes; "
                                    "the shift section's Run shows the same job box",
    "when_transfer_hurts.shift": ("Severity levels above 0", _seeds(2)),
    "forgetting.forgetting": ("Replay fraction", _seeds(1, "First seed")),
    "forgetting.diagnostics": ("Probe labels per class",
                               lambda form: _slider_to_lowest(form, "Probe labels per class", "10",
                                                              "ArrowRight")),
    "depth.depth": ("Run both experiments",
                    lambda form: _slider_to_lowest(form, "Seeds", "2", "ArrowRight")),
    "lora_lab.tradeoff": ("LoRA ranks", _seeds(2)),
    "lora_lab.merge": "its job box is the trade-off's; tests/test_lora_page.py presses it",
    "transfer_on_text.curves": ("Corpus", _seeds(2)),
}

ACTIONS = {f"pages/{f.__name__}.py": f for f in (
    home, transfer_curves, which_source, when_transfer_hurts, forgetting, depth, lora_lab,
    transfer_on_text, advisor, pipeline, flashcards, quiz, data_models, classroom, how_called)}


def test_every_page_has_a_browser_check():
    assert set(ACTIONS) == {p.path for p in PAGES} and RUNS_A_JOB <= set(ACTIONS)
    # the phone runs name declared sections; every page with a section is run on a phone too
    assert set(PHONE_RUNS) <= {section.key for section in SECTIONS}
    assert all(any(isinstance(PHONE_RUNS.get(s.key), tuple) for s in lesson.sections)
               for lesson in PAGES if lesson.sections)


@pytest.mark.parametrize("lesson", PAGES, ids=lambda p: Path(p.path).stem)
def test_every_page_in_a_real_browser(lab, lesson):
    lab.problems.clear()
    lab.shot, lab.progress = Path(lesson.path).stem, None
    page = lab.page
    page.set_viewport_size(LAPTOP)  # whatever size the last page's check ended at
    try:
        _visit(lab, lesson)
        ACTIONS[lesson.path](lab)
        _idle(page)
        _no_exception(page)
        if lesson.path in RUNS_A_JOB:
            _assert_progress_in_sight(lab)
        _check_sizes(lab, lesson)
    except BaseException:
        try:
            page.screenshot(path=str(OUTPUT_DIR / f"browser-page-{lab.shot}-failure.png"))
        except Exception:  # keep the original failure, not the screenshot's
            pass
        raise
    assert not lab.problems, "the browser reported errors:\n" + "\n".join(lab.problems)


def test_a_malformed_link_in_a_real_browser(lab):
    """A hand-edited link: stray separators, a key without a value, a bad value, a long key."""
    from playwright.sync_api import expect

    lab.problems.clear()
    page = lab.page
    page.goto(f"{lab.base}/transfer_curves?%zz&strategies&labels=1,,2&&=&seeds=99&{'k' * 3000}=1")
    expect(page.get_by_role("heading", name="Transfer curves", level=1)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    _idle(page)
    _no_exception(page)
    notices = page.locator("[data-testid='stAlertContentWarning']").filter(has_text="link")
    expect(notices.first).to_be_visible()
    texts = notices.all_inner_texts()
    assert any("does not use" in t for t in texts) and any("seeds must be" in t for t in texts)
    assert all(len(t) < 600 for t in texts), [len(t) for t in texts]
    page.screenshot(path=str(OUTPUT_DIR / "browser-page-malformed-link.png"))
    assert not lab.problems, "the browser reported errors:\n" + "\n".join(lab.problems)


def test_the_live_server_refuses_uploads_without_xsrf_and_foreign_origins(lab):
    """The server's effective settings, as a client sees them: XSRF protection refuses an upload
    that does not carry the page's token, and CORS grants no other origin."""
    put = urllib.request.Request(f"{lab.base}/_stcore/upload_file/some-session/some-file",
                                 data=b"--x\r\n", method="PUT",
                                 headers={"Content-Type": "multipart/form-data; boundary=x"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(put, timeout=10)
    assert refused.value.code == 403
    foreign = urllib.request.Request(f"{lab.base}/_stcore/health",
                                     headers={"Origin": "https://evil.example.org"})
    with urllib.request.urlopen(foreign, timeout=10) as response:
        assert response.status == 200
        allowed = response.headers.get("Access-Control-Allow-Origin")
    assert allowed not in ("*", "https://evil.example.org"), allowed


def test_the_label_check_finds_labels_on_lines_and_under_the_toolbar(lab, tmp_path):
    """LABELS_JS on two charts drawn by plotly.js itself (from the plotly package, offline): a
    label written over a line and a title under the toolbar are found; the same chart with the
    line named in the legend and the title placed by `titled` is clean."""
    import plotly.graph_objects as go

    from ui.kit.figures import chart_layout, reference_line, titled

    bad = go.Figure(go.Scatter(x=[0, 1, 2], y=[0, 1, 0], mode="lines", name="data"))
    bad.add_hline(y=0.5, annotation_text="a label across the data's line",
                  annotation_position="top left")
    bad.update_layout(title="A title long enough to reach the toolbar of a narrow chart")
    good = go.Figure(go.Scatter(x=[0, 1, 2], y=[0, 1, 0], mode="lines", name="data"))
    reference_line(good, 0.5, "the same line, named in the legend")
    titled(good, "A title long enough to reach the toolbar of a narrow chart")
    found = {}
    page = lab.page.context.browser.new_page(viewport={"width": 420, "height": 700})  # the
    try:  # module's browser (a second Playwright in this process would clash with its loop)
        for name, fig in (("bad", chart_layout(bad, 420)), ("good", chart_layout(good, 420, top=60))):
            path = tmp_path / f"{name}.html"
            fig.write_html(path, include_plotlyjs=True, full_html=True,
                           config={"displayModeBar": True}, default_width="400px")
            page.goto(path.as_uri())
            page.locator(".js-plotly-plot .main-svg").first.wait_for()
            page.locator(".js-plotly-plot").first.hover()  # the toolbar shows on hover
            found[name] = page.locator(".js-plotly-plot").first.evaluate(LABELS_JS)
    finally:
        page.close()
    assert any("lies on a line of the data" in p for p in found["bad"]), found["bad"]
    assert any("toolbar covers the title" in p for p in found["bad"]), found["bad"]
    assert found["good"] == [], found["good"]
