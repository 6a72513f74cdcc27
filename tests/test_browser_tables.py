"""Tables, presentation mode and the handout on a phone, in a real browser.

One server (`python serve.py`, as users start it) with a data directory of its own: the
session's pretrained checkpoint copied in, no results stored, no downloaded weights, so
Transfer curves shows its precomputed lesson pack. On a 390x844 window (a phone), every table
of the pages reachable cheaply fits the window: no column cut, no sideways scrolling, and a
compact table shows its phone form (one paragraph per row) instead of its wide grid. Those
tables: Transfer curves' "Every run" (the pack; "Means over seeds" in the handout), How much to train's parameter groups, the
LoRA lab's breakdown, memory terms, published figures and trade-off (its smallest run: rank 1,
1 label, 1 seed), Data and models' backbones, Flashcards' decks. At 1366x768 the same tables
show their wide forms, every column in its box. Presentation mode on the phone has no
horizontal overflow, body text between MIN_PHONE_TEXT_PX and MAX_PHONE_TEXT_PX and chart text
of at least 12 px; at 1366x768 its text stays projector-sized. The handout printed to PDF fits
on HANDOUT_PAGES pages, chart and verdict on the first, and holds the mean of every point (the
PDF's pages are read with tests/pdf_pages.py, the standard library only).

Helpers (server, browser, table and chart checks) are tests/test_browser.py's and
tests/test_browser_pages.py's. Screenshots go to test-output/.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import OUTPUT_DIR
from pdf_pages import pdf_pages
from test_browser import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PHONE, require_chromium, streamlit_server
from test_browser_pages import (LOAD_TIMEOUT_MS, Lab, _chart_problems, _idle, _no_exception,
                                _table_problems, lora_lab)

pytestmark = pytest.mark.timeout(300)
MIN_PHONE_TEXT_PX, MAX_PHONE_TEXT_PX = 15, 20  # presentation mode's body text on a phone
MIN_PROJECTOR_TEXT_PX = 22  # and on a 1366 x 768 projector (1.4rem)
HANDOUT_PAGES = 2  # Transfer curves' handout on A4: settings, chart and verdict, then the means

# What sticks out sideways: the page itself, and each visible phone form of a compact table.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth, problems = [];
  for (const el of [document.documentElement, document.querySelector("[data-testid='stMain']")])
    if (el && el.scrollWidth > el.clientWidth + 1)
      problems.push(`${el.tagName} ${el.dataset.testid || ""} is ${el.scrollWidth} px wide in ${el.clientWidth} px`);
  for (const el of document.querySelectorAll("[class*='st-key-table_phone_']")) {
    if (!el.offsetParent) continue;
    const r = el.getBoundingClientRect();
    if (r.left < -1 || r.right > width + 1 || el.scrollWidth > el.clientWidth + 1)
      problems.push(`the phone table ${el.className.match(/st-key-\\S+/)} runs to ${r.right.toFixed(0)} of ${width} px`);
  }
  return problems;
}"""
# The visible forms of the tables: [wide ones shown, phone ones shown].
FORMS_JS = """() => ["table_wide_", "table_phone_"].map(prefix =>
  [...document.querySelectorAll(`[class*='st-key-${prefix}']`)].filter(el => el.offsetParent).length)"""
# Font sizes (px) of the visible paragraphs and list items of the page's Markdown text.
TEXT_SIZES_JS = """() => [...document.querySelectorAll(
    "[data-testid='stMainBlockContainer'] [data-testid='stMarkdownContainer'] :is(p, li)")]
  .filter(el => el.offsetParent && el.innerText.trim() && !el.closest(".st-key-view_bar, button, [data-testid='stTable']"))
  .map(el => parseFloat(getComputedStyle(el).fontSize))"""


@pytest.fixture(scope="module")
def phone(pretrained):
    """The server (empty result store) and one Playwright tab, as tests/test_browser_pages.py's
    `Lab`."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    home = Path(tempfile.mkdtemp(prefix="transferlab-tables-"))
    (home / "checkpoints").mkdir()
    for path in (pretrained.checkpoint, pretrained.checkpoint.with_suffix(".json")):
        shutil.copy2(path, home / "checkpoints" / path.name)
    env = {**os.environ, "TRANSFERLAB_HOME": str(home),
           "TORCH_HOME": str(home / "torch"), "TRANSFERLAB_SPARE_WORKER": "0"}
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    try:
        with streamlit_server("browser-tables-streamlit.log", env) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=PHONE)
            page.set_default_timeout(30_000)
            try:
                yield Lab(base, home, page, shot="tables")
            finally:
                browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _open(page, url: str, heading: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    _idle(page)
    _no_exception(page)


def _show_results(lab) -> None:
    _reveal(lab.page)


def _reveal(page) -> None:
    """Press "Show the results" (predict first, or presentation mode's gate) and wait."""
    page.get_by_role("button", name="Show the results").click()
    _idle(page)
    _no_exception(page)


def _lora(lab) -> None:
    """The counts' tables, then the smallest trade-off (rank 1, 1 label, 1 seed) and the memory
    terms."""
    lora_lab(lab)
    _expand(lab.page, "Every term and its assumption")


def _expand(page, label: str) -> None:
    page.locator("[data-testid='stExpander'] summary").filter(has_text=label).first.click()
    _idle(page)


def _flashcards(lab) -> None:
    page = lab.page
    name = page.get_by_role("textbox", name="Your name", exact=True)
    name.fill("Ada")
    name.press("Enter")
    _idle(page)
    _expand(page, "Every deck")


# page path -> (its title, what to do before its tables show (at 1366 x 768), the fewest tables
# it then shows on a phone)
PAGES = {
    "transfer_curves": ("Transfer curves", _show_results, 1),
    "depth": ("How much of the network to train", None, 1),
    "lora_lab": ("LoRA lab", _lora, 4),
    "data_models": ("Data and models", None, 1),
    "flashcards": ("Flashcards", _flashcards, 1),
    # the LoRA trade-off's table and, once predict first lets the curves show, the error table
    "transfer_on_text": ("Transfer on text", _show_results, 2),
}


def test_presentation_mode_on_a_phone_is_not_cramped(phone):
    base, page = phone.base, phone.page
    sizes = {}
    for name, size in (("390x844", PHONE), ("1366x768", LAPTOP)):
        page.set_viewport_size(size)
        _open(page, f"{base}/transfer_curves?present=1", "Transfer curves")
        _reveal(page)
        chart = page.locator("[data-testid='stPlotlyChart']:visible").first
        chart.wait_for(state="visible", timeout=60_000)
        page.wait_for_timeout(500)
        sizes[name] = page.evaluate(TEXT_SIZES_JS)
        assert sizes[name], "no body text found"
        problems = _chart_problems(page) + page.evaluate(OVERFLOW_JS)
        box = chart.bounding_box()
        if box["x"] < -1 or box["x"] + box["width"] > size["width"] + 1:
            problems.append(f"the chart spans {box['x']:.0f} to {box['x'] + box['width']:.0f} px")
        assert not problems, f"presentation mode at {name}:\n" + "\n".join(problems)
        chart.scroll_into_view_if_needed()
        page.screenshot(path=str(OUTPUT_DIR / f"tables-present-{name}.png"))
    assert all(MIN_PHONE_TEXT_PX <= px <= MAX_PHONE_TEXT_PX for px in sizes["390x844"]), sizes
    assert all(px >= MIN_PROJECTOR_TEXT_PX for px in sizes["1366x768"]), sizes


def test_the_handout_fits_and_prints_every_points_mean(phone):
    """The handout of Transfer curves (the pack's 105 runs) prints on at most HANDOUT_PAGES A4
    pages: the settings, the chart and its head-start verdict on the first, no page without
    text, no collapsed section; instead of 105 rows, the mean ± sd of every point."""
    from playwright.sync_api import expect

    from engine.experiments.stats import summarize
    from engine.experiments.sweep import SweepSpec
    from engine.infra.packs import pack_records

    base, page = phone.base, phone.page
    records, _ = pack_records(SweepSpec())
    assert len(records) >= 20, "the lesson pack has the default sweep's runs"
    page.set_viewport_size(PHONE)
    _open(page, f"{base}/transfer_curves?handout=1", "Transfer curves")
    page.locator("[data-testid='stImage']").first.wait_for(state="visible", timeout=60_000)
    assert not page.evaluate(OVERFLOW_JS)  # on the phone's screen: the phone form
    assert page.evaluate(FORMS_JS) == [0, 1]
    page.get_by_role("heading", name="Means over seeds").scroll_into_view_if_needed()
    page.screenshot(path=str(OUTPUT_DIR / "tables-handout-390x844.png"))
    page.emulate_media(media="print")
    try:  # on paper: the wide form, an HTML table of every point
        printed = page.locator("[class*='st-key-table_wide_means'] [data-testid='stTable']")
        expect(printed).to_be_visible()
        points = summarize(records)
        expect(printed.locator("tbody tr")).to_have_count(points["labels_per_class"].nunique())
        assert page.evaluate(FORMS_JS) == [1, 0]
        assert page.locator("[data-testid='stExpander']:visible").count() == 0  # none collapsed
        pdf = page.pdf(path=str(OUTPUT_DIR / "tables-handout.pdf"), format="A4")
    finally:
        page.emulate_media(media="screen")
    pages = [re.sub(r"\s+", "", p.text) for p in pdf_pages(pdf)]
    assert 1 <= len(pages) <= HANDOUT_PAGES, f"the handout prints on {len(pages)} pages"
    assert all(pages), "a printed page is blank"
    first = pdf_pages(pdf)[0]
    assert first.images == 1, "the chart is not on the first page"
    assert "Settings" in pages[0] and re.search(r"At\d+labels?perclass", pages[0]), pages[0][:300]
    text = "".join(pages)
    assert "Meansoverseeds" in text and f"Everyrun({len(records)})" in text
    missing = [f"{row.strategy} {row.labels_per_class}" for row in points.itertuples()
               if f"{row.mean:.1f}±{row.std:.1f}" not in text]
    assert not missing, f"points not in the printed handout: {missing}"
    assert all(str(size).replace(" ", "") in text for size in points["size"])


# Last: the LoRA lab's trade-off stores runs of the default sweep's probe and fine-tune, which
# Transfer curves would then show instead of its lesson pack.
@pytest.mark.parametrize("path", list(PAGES))
def test_every_table_fits_a_phone(phone, path):
    from playwright.sync_api import expect

    page, title, (action, fewest) = phone.page, PAGES[path][0], PAGES[path][1:]
    page.set_viewport_size(LAPTOP)
    _open(page, f"{phone.base}/{path}", title)
    if action:
        action(phone)
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(400)
    tables = page.locator("[data-testid='stTable']:visible, [data-testid='stDataFrame']:visible, "
                          "[class*='st-key-table_phone_']:visible")
    expect(tables.first).to_be_visible(timeout=60_000)
    _idle(page)
    assert tables.count() >= fewest, f"{path}: {tables.count()} tables on show, expected {fewest}+"
    problems = _table_problems(page, True) + page.evaluate(OVERFLOW_JS)
    wide, narrow = page.evaluate(FORMS_JS)
    assert not wide, f"{path}: {wide} wide tables shown on a phone"
    assert not problems, f"{path} at 390x844:\n" + "\n".join(problems)
    tables.first.scroll_into_view_if_needed()
    page.screenshot(path=str(OUTPUT_DIR / f"tables-{path}-390x844.png"))
    page.set_viewport_size(LAPTOP)  # and at 1366 x 768 the wide forms, every column in its box
    page.wait_for_timeout(400)
    _idle(page)
    assert not _table_problems(page, True)
    wide, narrow = page.evaluate(FORMS_JS)
    assert not narrow and (wide or path not in ("transfer_curves", "lora_lab", "data_models"))
    page.screenshot(path=str(OUTPUT_DIR / f"tables-{path}-1366x768.png"))
