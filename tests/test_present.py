"""Presentation mode (`?present=1`), the printable handout (`?handout=1`) and the chart exports in
the page, on the Transfer curves lesson with its precomputed lesson pack (nothing trains).

AppTest: presentation mode draws no sidebar and no form, holds the results behind one "Show the
results" and then draws a larger chart (and a copy a little larger than normal for a phone)
and the verdict; the handout lists the settings and shows the verdict, the chart as an image
and every run as a table that prints; the normal page offers both links and a download row
under the chart. One real-browser test (Debian's Chromium, as tests/test_browser.py) checks at
1366x768 and 390x844 that the export buttons are in sight and a download is a valid PNG, that
presentation mode, entered through the page's own link, opens at the title, hides the sidebar
and the forms after every button and a reload, enlarges the chart and leaves no flag behind on
"Exit presentation", and prints the handout to PDF.
"""

from __future__ import annotations

import json
import re
import struct
import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import OUTPUT_DIR
from test_browser import (BENIGN_CONSOLE, CHROMIUM, CHROMIUM_ARGS, LAPTOP, PHONE, assert_presenting,
                          require_chromium, streamlit_server)
from tests.test_pages import APP, CURVES, TIMEOUT, texts
from ui.kit.chart_image import SCALE, WIDTH
from ui.kit.figures import FONT
from ui.kit.present import FONT_FACTOR, MIN_HEIGHT, PHONE_FONT_FACTOR

VERDICT = re.compile(r"^#### At \d+ labels? per class")  # the head-start sentence, as a heading


def open_curves(**params: str) -> AppTest:
    """The Transfer curves page opened from a link with `params`, on an empty store: the page
    shows the lesson pack's runs of the default settings."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(CURVES).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def labels(elements) -> list[str]:
    return [e.proto.label for e in elements]


def test_present_mode_hides_the_frame_and_shows_results_when_the_teacher_asks(empty_default_store):
    at = open_curves(present="1")
    assert not at.sidebar.children, "the sidebar has content in presentation mode"
    assert not at.get("form"), "a form is drawn in presentation mode"
    assert not at.get("download_button") and not at.number_input  # no downloads, no predictions
    assert "Labels per class:" in texts(at.markdown)  # the link's settings, listed
    assert not charts(at) and not any(VERDICT.match(m.value) for m in at.markdown)
    (reveal,) = [b for b in at.button if b.label == "Show the results"]
    assert "Exit presentation" in labels(at.button)

    reveal.click().run()
    assert not at.exception
    chart, phone = charts(at)  # for a projector, and for a phone (the window picks one)
    assert chart["layout"]["height"] >= MIN_HEIGHT
    assert chart["layout"]["font"]["size"] == FONT["size"] * FONT_FACTOR
    assert phone["layout"]["font"]["size"] == FONT["size"] * PHONE_FONT_FACTOR > FONT["size"]
    assert phone["layout"]["height"] < MIN_HEIGHT
    assert any(VERDICT.match(m.value) for m in at.markdown)
    assert not [b for b in at.button if b.label == "Show the results"]


def test_the_handout_lists_the_settings_and_shows_the_verdict_and_the_chart(empty_default_store):
    at = open_curves(handout="1", labels="all,1,2,5,10,20,50", seeds="5")  # the pack's settings
    assert not at.sidebar.children and not at.get("form")
    settings = next(m.value for m in at.markdown if m.value.startswith("**Settings**"))
    assert "- Labels per class: 1, 2, 5, 10, 20, 50, all" in settings and "- Seeds: 5" in settings
    assert "- Strategies: From scratch, Linear probe, Fine-tune" in settings
    assert any(VERDICT.match(m.value) for m in at.markdown)
    assert at.get("image") and not charts(at)  # the chart as a still image, whole in print
    # every point's mean as an HTML table, which prints whole (a sortable grid would not
    # print, and 105 runs would take three pages), and where every run is
    assert not at.dataframe
    (means,) = [t for t in at.table if "Labels per class" in t.value.columns]
    assert list(means.value.columns) == ["Labels per class", "From scratch", "Linear probe",
                                         "Fine-tune"]
    assert len(means.value) == 7  # the pack's label counts
    assert all(re.fullmatch(r"\d+\.\d ± \d+\.\d", v) for v in means.value["Fine-tune"])
    assert any("Every run (105) is listed" in c.value for c in at.caption)
    assert not [s for s in at.subheader if s.value == "Step 1: pretraining on the source"]
    assert not [label for label in labels(at.get("download_button")) if label == "Download PNG"]
    assert "Back to the lesson" in labels(at.button)


def test_the_view_sticks_until_its_exit_button_which_leaves_no_flag(empty_default_store):
    """Presentation mode is a state of the session: a rerun whose link lost the flag (a link
    inside the app, a button's rerun) stays in it, the flag is written back to the address bar
    (a reload keeps the view), and only "Exit presentation" leaves it, flag and all."""
    at = open_curves(present="1", seeds="5")
    del at.query_params["present"]  # as the in-app link leaves the address bar
    at.run()
    assert at.query_params.get("present") == "1", at.query_params  # written back
    assert not at.get("form") and not at.sidebar.children
    at.button(key="present_reveal").click().run()
    assert charts(at) and not at.get("form") and not at.sidebar.children  # still presenting
    assert at.query_params.get("present") == "1"
    at.button(key="view_exit").click().run()
    assert not at.exception
    assert "present" not in at.query_params and at.get("form") and at.sidebar.children
    at.run()  # and it stays out
    assert at.get("form") and at.sidebar.children
    assert at.query_params.get("seeds") == "5", "leaving the view kept the page's settings"


def test_a_link_to_the_other_view_switches_and_drops_the_first_flag(empty_default_store):
    at = open_curves(present="1")
    at.query_params["handout"] = "1"
    del at.query_params["present"]
    at.run()
    assert "present" not in at.query_params and at.query_params.get("handout") == "1"
    assert "Back to the lesson" in labels(at.button)


def test_the_normal_page_links_both_views_and_exports_its_chart(empty_default_store):
    at = open_curves()
    links = {link.proto.label: link.proto for link in at.get("page_link")}
    assert {"Present to a class", "Printable handout"} <= set(links)
    assert "present=1" in links["Present to a class"].query_string
    assert "strategies=" in links["Printable handout"].query_string
    at.button(key="predict.reveal").click().run()
    assert charts(at) and at.sidebar.children
    assert {"Download PNG", "Download SVG", "Download CSV"} <= set(labels(at.get("download_button")))


def test_a_bad_view_flag_is_named_and_the_normal_page_drawn(empty_default_store):
    at = open_curves(present="yes")
    assert any("present" in w.value and "link" in w.value for w in at.warning)
    assert at.get("form") and at.sidebar.children


# --- the real browser -----------------------------------------------------------------------------

def _idle(page) -> None:
    from playwright.sync_api import expect

    expect(page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")).to_be_attached(
        timeout=120_000)
    assert page.locator("[data-testid='stException']").count() == 0


def _in_sight(page, locator) -> None:
    """`locator` scrolled to, visible and inside the window's width."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert locator.is_visible() and box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"] + 1


@pytest.mark.timeout(300)
def test_exports_and_views_in_a_real_browser(empty_default_store):
    from playwright.sync_api import expect, sync_playwright

    require_chromium()
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with streamlit_server("present-streamlit.log") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=LAPTOP, accept_downloads=True)
        page.set_default_timeout(30_000)
        page.on("console", lambda m: problems.append(m.text) if m.type == "error"
                and not BENIGN_CONSOLE.search(m.location.get("url", "")) else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        try:
            page.goto(f"{base}/transfer_curves")
            _idle(page)
            page.get_by_role("button", name="Show the results").click()
            row = page.locator(".st-key-exports_transfer_curve")
            expect(row).to_be_visible(timeout=60_000)
            for size in (LAPTOP, PHONE):
                page.set_viewport_size(size)
                for name in ("Download PNG", "Download SVG", "Download CSV"):
                    _in_sight(page, row.get_by_role("button", name=name))
            started = time.perf_counter()
            with page.expect_download() as download:
                row.get_by_role("button", name="Download PNG").click()
            png = open(download.value.path(), "rb").read()
            print(f"one PNG export, click to file: {time.perf_counter() - started:.2f} s")
            assert download.value.suggested_filename == "transfer-curves-uci-digits.png"
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            assert struct.unpack(">II", png[16:24]) == (WIDTH * SCALE, 500 * SCALE)

            page.set_viewport_size(LAPTOP)
            page.goto(f"{base}/transfer_curves")
            _idle(page)
            page.mouse.wheel(0, 400)  # the link sits below the page's title: scrolled to it
            page.get_by_role("link", name="Present to a class").click()
            expect(page).to_have_url(re.compile(r"[?&]present=1"))  # a reload keeps the view
            expect(page.get_by_role("button", name="Show the results")).to_be_visible()
            _idle(page)
            title = page.get_by_role("heading", name="Transfer curves", level=1).bounding_box()
            assert 0 <= title["y"] < LAPTOP["height"] / 2, title  # it opens at the title
            assert_presenting(page)
            page.get_by_role("button", name="Show the results").click()
            chart = page.locator("[data-testid='stPlotlyChart']").first
            expect(chart).to_be_visible(timeout=60_000)
            assert_presenting(page)  # a button's rerun stays in the view
            assert chart.bounding_box()["height"] >= MIN_HEIGHT - 1
            page.screenshot(path=str(OUTPUT_DIR / "present-1366x768.png"))
            page.reload()
            expect(page.get_by_role("button", name="Show the results")).to_be_visible(timeout=60_000)
            assert_presenting(page)
            page.get_by_role("button", name="Exit presentation").click()
            expect(page.locator("[data-testid='stForm']").first).to_be_visible(timeout=60_000)
            assert "present=" not in page.url and "strategies=" in page.url

            page.goto(f"{base}/transfer_curves?handout=1")
            _idle(page)
            expect(page.locator("[data-testid='stImage']").first).to_be_visible(timeout=60_000)
            page.emulate_media(media="print")
            assert not page.locator("[data-testid='stHeader']").is_visible()
            pdf = page.pdf(path=str(OUTPUT_DIR / "handout.pdf"), format="A4", print_background=True)
            assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2
        finally:
            browser.close()
    assert not problems, problems
