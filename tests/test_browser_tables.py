"""Tables, presentation mode and the handout on a phone, in a real browser.

One server (`python serve.py`, as users start it) with a data directory of its own: the
session's pretrained checkpoint copied in, no results stored, no downloaded weights, so
Transfer curves shows its precomputed lesson pack. On a 390x844 window (a phone), every table
of the pages reachable cheaply fits the window: no column cut, no sideways scrolling, and a
compact table shows its phone form (one paragraph per row) instead of its wide grid. Those
tables: Transfer curves' "Every run" (the pack), How much to train's parameter groups, the
LoRA lab's breakdown, memory terms, published figures and trade-off (its smallest run: rank 1,
1 label, 1 seed), Data and models' backbones, Flashcards' decks. At 1366x768 the same tables
show their wide forms, every column in its box. Presentation mode on the phone has no
horizontal overflow, body text between MIN_PHONE_TEXT_PX and MAX_PHONE_TEXT_PX and chart text
of at least 12 px; at 1366x768 its text stays projector-sized. The handout printed to PDF
holds every row of "Every run" (the PDF's text is read with `pdf_text`, the standard library
only).

Helpers (server, browser, table and chart checks) are tests/test_browser.py's and
tests/test_browser_pages.py's. Screenshots go to test-output/.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path

import pytest

from conftest import OUTPUT_DIR
from test_browser import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PHONE, require_chromium, streamlit_server
from test_browser_pages import (LOAD_TIMEOUT_MS, Lab, _chart_problems, _idle, _no_exception,
                                _table_problems, lora_lab)

pytestmark = pytest.mark.timeout(300)
MIN_PHONE_TEXT_PX, MAX_PHONE_TEXT_PX = 15, 20  # presentation mode's body text on a phone
MIN_PROJECTOR_TEXT_PX = 22  # and on a 1366 x 768 projector (1.4rem)

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


def test_the_handout_prints_every_run(phone):
    from playwright.sync_api import expect

    from engine.experiments.stats import point_label, strategy_label
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
    page.get_by_role("heading", name="Every run").scroll_into_view_if_needed()
    page.screenshot(path=str(OUTPUT_DIR / "tables-handout-390x844.png"))
    page.emulate_media(media="print")
    try:  # on paper: the wide form, an HTML table of every run
        printed = page.locator("[class*='st-key-table_wide_runs'] [data-testid='stTable']")
        expect(printed).to_be_visible()
        expect(printed.locator("tbody tr")).to_have_count(len(records))
        assert page.evaluate(FORMS_JS) == [1, 0]
        pdf = page.pdf(path=str(OUTPUT_DIR / "tables-handout.pdf"), format="A4")
    finally:
        page.emulate_media(media="screen")
    text = re.sub(r"\s+", "", pdf_text(pdf))
    assert "Everyrun" in text and "Testaccuracy(%)" in text
    missing = []
    for _, run in records.iterrows():
        row = [strategy_label(run["strategy"]), point_label(int(run["labels_per_class"]),
                                                             bool(run["all_labels"])),
               str(int(run["n_train"])), str(int(run["seed"])), f"{run['test_accuracy']:.1f}",
               f"{run['train_seconds']:.2f}", str(run["device"])]
        if re.sub(r"\s+", "", "".join(row)) not in text:
            missing.append(" | ".join(row))
    assert not missing, f"{len(missing)} of {len(records)} runs not in the printed handout: {missing[:5]}"


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


# --- the text of a PDF, as Chromium writes it ---------------------------------------------------

def _stream(body: bytes) -> bytes:
    """An object's stream, inflated. The end-of-line before `endstream` is left in the data: a
    compressed stream may itself end in a carriage return, and a decompressor stops at the end
    of its stream anyway (what follows becomes its unused data)."""
    match = re.search(rb"stream\r?\n(.*?)endstream", body, re.S)
    if match is None:
        return b""
    data = match.group(1)
    if b"/FlateDecode" in body[:match.start()]:
        return zlib.decompressobj().decompress(data)
    return data.removesuffix(b"\n").removesuffix(b"\r")


def _cmap(data: bytes) -> dict[bytes, str]:
    """A ToUnicode CMap: glyph code (bytes) -> text."""
    def text(hexa: bytes) -> str:
        return bytes.fromhex(hexa.decode()).decode("utf-16-be", "replace")

    out = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for code, value in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[bytes.fromhex(code.decode())] = text(value)
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, value in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            first, width = int(lo, 16), len(lo) // 2
            start = bytes.fromhex(value.decode()).decode("utf-16-be", "replace")
            for i in range(int(hi, 16) - first + 1):
                out[(first + i).to_bytes(width, "big")] = start[:-1] + chr(ord(start[-1]) + i)
    return out


def pdf_text(pdf: bytes) -> str:
    """The text a PDF draws, in drawing order (enough for Chromium's: uncompressed objects,
    Flate streams, fonts with ToUnicode maps, strings as <hex> in Tj and TJ)."""
    objects = {int(n): body for n, body in re.findall(rb"(\d+) 0 obj(.*?)endobj", pdf, re.S)}
    fonts = {}  # font object -> its code -> text map
    for number, body in objects.items():
        ref = re.search(rb"/ToUnicode (\d+) 0 R", body)
        if ref:
            fonts[number] = _cmap(_stream(objects[int(ref.group(1))]))
    names = {}  # resource name (/F4) -> code -> text
    for body in objects.values():
        for block in re.findall(rb"/Font\s*<<(.*?)>>", body, re.S):
            for name, number in re.findall(rb"/([\w.+-]+) (\d+) 0 R", block):
                names[name] = fonts.get(int(number), {})
    words = []
    for body in objects.values():
        if b"stream" not in body or re.search(rb"/Subtype\s*/Image|/Length1|/ToUnicode", body):
            continue  # an image, a font file or a font: no text drawn
        try:
            content = _stream(body)
        except zlib.error:
            continue
        if not re.search(rb"\bBT\b", content):
            continue
        cmap: dict[bytes, str] = {}
        for match in re.finditer(rb"/([\w.+-]+)\s+[\d.]+\s+Tf|<([0-9A-Fa-f]*)>|\bT[Jj]\b", content):
            if match.group(1):
                cmap = names.get(match.group(1), {})
            elif match.group(2) is not None:
                digits = match.group(2).decode()
                raw = bytes.fromhex(digits + "0" * (len(digits) % 2))  # an odd last digit: 0
                width = len(next(iter(cmap), b"\0\0")) or 2
                words.append("".join(cmap.get(raw[i:i + width], "") for i in range(0, len(raw), width)))
            else:
                words.append(" ")
    return "".join(words)
