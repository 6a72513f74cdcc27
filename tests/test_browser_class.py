"""Class mode in a real browser: one teacher and three students, each in a browser context of
their own (separate cookies and sessions, as separate devices), against one server started as
users start it (test_browser's `streamlit_server`), with a data directory of its own.

The teacher opens a class on the Class page (a projector-sized window); each student opens the
join link, joins, saves a prediction on Transfer curves (the class's settings: the lesson's
default experiment) and answers the class's quiz questions. The teacher's view, which refreshes
on its own, then shows the pooled counts, the predictions against the lesson pack's runs and
the answer counts per option; a student's Class page shows that student's own entries and
nothing of the others'. Nothing trains here: the class's experiment is the default one, whose
runs the shipped lesson pack holds. `classroom` is also the Class page's check in
tests/test_browser_pages.py.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import OUTPUT_DIR
from test_browser import (BENIGN_CONSOLE, CHROMIUM, CHROMIUM_ARGS, LAPTOP, PHONE,
                          require_chromium, streamlit_server)

pytestmark = pytest.mark.timeout(300)
LOAD_MS = 120_000  # the first page of a fresh server imports torch & co.
WAIT_MS = 30_000
PREDICTIONS = (40.0, 55.0, 70.0)  # each student's Linear probe at 1 label per class
PROBE_AT_1 = "Linear probe at 1 label per class (%)"
SHOTS = Path(os.environ.get("TRANSFERLAB_CLASS_SHOTS", OUTPUT_DIR))


def _idle(page) -> None:
    from playwright.sync_api import expect

    expect(page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")
           ).to_be_attached(timeout=LOAD_MS)


def _no_exception(page) -> None:
    boxes = page.locator("[data-testid='stException']")
    assert boxes.count() == 0, "the app raised:\n" + "\n".join(boxes.all_inner_texts())


def open_class(page, questions: int) -> str:
    """On the Class page: open a class of `questions` questions; returns its code."""
    from playwright.sync_api import expect

    form = page.locator("[data-testid='stForm']").filter(has_text="Open a class")
    box = form.get_by_role("spinbutton", name="Questions", exact=True)
    box.fill(str(questions))
    box.press("Tab")
    form.get_by_role("button", name="Open the class").click()
    expect(page.get_by_text("Class code", exact=True)).to_be_visible(timeout=WAIT_MS)
    expect(page).to_have_url(re.compile(r"[?&]class=[A-Z0-9]{6}"))
    code = re.search(r"[?&]class=([A-Z0-9]{6})", page.url).group(1)
    assert "teacher=" not in page.url and "student=" not in page.url  # no secret on a projector
    expect(page.get_by_role("img", name=f"Join class {code}").or_(
        page.locator("[data-testid='stImage'] img"))).to_be_visible()
    return code


def classroom(lab) -> None:
    """tests/test_browser_pages.py's check of the Class page: a class opens with its code and
    QR code, and the teacher's view draws its (still empty) results."""
    from playwright.sync_api import expect

    page = lab.page
    code = open_class(page, 1)
    expect(page.locator("strong").filter(has_text=f"{lab.base}/classroom?class={code}")
           ).to_be_visible()
    expect(page.get_by_text("Students joined")).to_be_visible()
    _idle(page)


def _plain(text: str) -> str:
    """Text without Markdown and LaTeX marks or spaces, to match an option with its rendering."""
    return re.sub(r"[\s*_`$\\{}^\[\]]", "", text)


def _answer(page, asked, picks: dict[str, str]) -> None:
    """Answer the question showing: found among `asked` by its options on screen, the option
    to pick from `picks` (question id -> option)."""
    from playwright.sync_api import expect

    expect(page.locator("[data-testid='stRadio'] input:not([disabled])").first).to_be_attached()
    labels = page.locator("[data-testid='stRadio'] label")
    shown = [_plain(t) for t in labels.all_inner_texts()]
    question = max(asked, key=lambda q: len(set(shown) & {_plain(o) for o in q.options}))
    choice = _plain(picks[question.id])
    index = shown.index(choice) if choice in shown else next(
        i for i, t in enumerate(shown) if t not in {_plain(o) for o in question.options
                                                     if o != picks[question.id]})
    labels.nth(index).click()


IGNORED = "settings this page does not use"  # the start of the unused-link-settings warning
BLIND = "Blind until revealed"


def _nothing_lost(page) -> None:
    """No exception, and no warning that the link's settings were ignored."""
    _no_exception(page)
    assert page.get_by_text(IGNORED).count() == 0, "a link's settings were called unused"


def _kept_prediction(page, value: float) -> None:
    """The student's saved prediction is in its box (the Predict first section, collapsed once
    predictions are saved, opened to look)."""
    from playwright.sync_api import expect

    section = page.locator("[data-testid='stExpander']").filter(has_text="Predict first")
    section.locator("summary").click()
    expect(section.get_by_role("spinbutton", name=PROBE_AT_1, exact=True)
           ).to_have_value(f"{value:.1f}", timeout=LOAD_MS)


def _no_results(page) -> None:
    """A student's Transfer curves before the reveal: no chart, no head-start verdict."""
    from playwright.sync_api import expect

    expect(page.get_by_text(BLIND)).to_be_visible(timeout=WAIT_MS)
    assert page.locator("[data-testid='stPlotlyChart']").count() == 0
    assert page.get_by_role("heading", name=re.compile(r"^At \d+ labels? per class")).count() == 0


def _student_sends(page, base: str, code: str, value: float, asked, picks) -> str:
    """Join with the link, save a prediction on Transfer curves and answer the class's quiz,
    both blind (no curve, verdict, right answer or explanation shows); returns the student's
    Class page link (it carries no id: the browser's cookie says who they are). The student
    ends on the quiz's held score."""
    from playwright.sync_api import expect

    page.goto(f"{base}/classroom?class={code}")
    _idle(page)
    page.get_by_role("button", name=f"Join class {code}").click()
    expect(page.get_by_text(re.compile(rf"^You are in class {code}"))).to_be_visible(timeout=WAIT_MS)
    own = page.url
    assert "student=" not in own
    page.get_by_role("link", name="Open the class's Transfer curves").click()
    expect(page.get_by_role("heading", name="Transfer curves", level=1)).to_be_visible(timeout=LOAD_MS)
    expect(page.get_by_text(re.compile(rf"^You are in class {code}:"))).to_be_visible()  # banner
    assert page.get_by_role("button", name="Skip").count() == 0  # no way round the blind
    box = page.get_by_role("spinbutton", name=PROBE_AT_1, exact=True)
    box.fill(f"{value:g}")
    box.press("Tab")
    page.get_by_role("button", name="Save my predictions").click()
    expect(page.get_by_text(f"Sent 1 prediction to class {code}, without your name.")
           ).to_be_visible(timeout=WAIT_MS)
    _idle(page)
    _no_results(page)
    _nothing_lost(page)
    page.goto(own)  # a reload of the Class page: the same student (the cookie), a new session
    page.get_by_role("button", name="Start the class's quiz").click(timeout=LOAD_MS)
    for _ in asked:
        check = page.get_by_role("button", name="Check answer")
        expect(check).to_be_visible(timeout=LOAD_MS)
        _answer(page, asked, picks)
        check.click()
        expect(page.get_by_text(re.compile(r"^Sent\. You picked:"))).to_be_visible(timeout=WAIT_MS)
        shown = page.locator("[data-testid='stMain']").inner_text()
        assert "Correct." not in shown and "Not quite." not in shown, shown
        assert not any(q.explanation[:60] in shown for q in asked), "an explanation showed"
        page.get_by_role("button", name=re.compile(r"^(Next question|See your score)$")).click()
    expect(page.get_by_role("heading", name="Your answers")).to_be_visible(timeout=WAIT_MS)
    assert page.locator("[data-testid='stMetric']").count() == 0  # no score before the reveal
    _nothing_lost(page)
    return own


def test_a_class_period_in_a_real_browser():
    """One class period at 1366x768, one teacher and three students (one at 390x844): the
    teacher opens the class and presents Transfer curves through the page's own link; the
    students predict and answer blind; the teacher reveals, and the students' pages show the
    results by themselves; the teacher shows the results in presentation mode (no sidebar or
    form after any button) and prints the handout (its page count); every page is reloaded
    once, and nothing is lost, nor any link setting called unused."""
    from playwright.sync_api import expect, sync_playwright

    from engine.study.classroom import ClassStore
    from engine.study.content import load_content
    from pdf_pages import pdf_pages
    from test_browser import assert_presenting
    from test_browser_tables import HANDOUT_PAGES

    require_chromium()
    home = Path(tempfile.mkdtemp(prefix="transferlab-class-"))
    env = dict(os.environ, TRANSFERLAB_HOME=str(home), TRANSFERLAB_SPARE_WORKER="0")
    problems: list[str] = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with streamlit_server("browser-class-streamlit.log", env) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

            def context(viewport):
                page = browser.new_context(viewport=viewport).new_page()
                page.set_default_timeout(WAIT_MS)
                page.on("console", lambda m: problems.append(f"console: {m.text}") if (
                    m.type == "error" and not BENIGN_CONSOLE.search(m.location.get("url", ""))) else None)
                page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
                return page

            # the teacher opens the class, and presents Transfer curves from the page's link
            teacher = context(LAPTOP)
            teacher.goto(f"{base}/classroom")
            expect(teacher.get_by_role("heading", name="Class", level=1)).to_be_visible(timeout=LOAD_MS)
            _idle(teacher)
            code = open_class(teacher, 2)
            teacher.screenshot(path=str(SHOTS / "class-teacher-open-1366x768.png"))
            projector = teacher.context.new_page()
            projector.set_default_timeout(WAIT_MS)
            projector.goto(f"{base}/transfer_curves")
            _idle(projector)
            projector.get_by_role("link", name="Present to a class").click()
            expect(projector.get_by_role("button", name="Show the results")).to_be_visible(timeout=WAIT_MS)
            assert_presenting(projector)
            _nothing_lost(projector)

            # the students predict and answer, blind
            room = ClassStore(home / "classes").load(code)
            questions = {q.id: q for q in load_content().questions}
            asked = [questions[i] for i in room.questions]
            # students 1 and 2 pick the right answer to every question, student 3 a wrong one
            picks = [{q.id: q.answer for q in asked} for _ in range(2)]
            picks.append({q.id: next(o for o in q.options if o != q.answer) for q in asked})
            students = [context(PHONE if i == 0 else LAPTOP) for i in range(3)]
            links = [_student_sends(page, base, code, value, asked, answers)
                     for page, value, answers in zip(students, PREDICTIONS, picks)]
            phone = students[0]  # back to Transfer curves: their prediction kept, still blind
            phone.goto(links[0])
            phone.get_by_role("link", name="Open the class's Transfer curves").click()
            expect(phone.get_by_role("heading", name="Transfer curves", level=1)).to_be_visible(timeout=LOAD_MS)
            _idle(phone)
            _kept_prediction(phone, PREDICTIONS[0])
            _no_results(phone)

            # the teacher's view refreshes on its own; the teacher reveals
            expect(teacher.locator("[data-testid='stMetric']").filter(has_text="Students joined")
                   ).to_contain_text("3", timeout=WAIT_MS)
            expect(teacher.locator("[data-testid='stMetric']").filter(has_text="Sent predictions")
                   ).to_contain_text("3")
            expect(teacher.locator("[data-testid='stMetric']").filter(has_text="Sent quiz answers")
                   ).to_contain_text("3")
            teacher.locator("[data-testid='stCheckbox'] label").filter(
                has_text="Show the results and the right answers").click()
            right = teacher.locator("[data-testid='stProgress']").filter(has_text="✓ right answer:")
            expect(right.filter(has_text="— 2")).to_have_count(len(asked))  # two of three right
            expect(teacher.get_by_text(re.compile(r"^The runs' means come from the lesson pack"))
                   ).to_be_visible(timeout=WAIT_MS)
            chart = teacher.locator("[data-testid='stPlotlyChart']").first
            expect(chart.locator(".xtick").filter(has_text="(3)")).to_have_count(1)  # probe: 3
            expect(chart.locator(".legendtext").filter(has_text="the runs' mean")).to_have_count(1)
            _no_exception(teacher)
            chart.scroll_into_view_if_needed()
            teacher.screenshot(path=str(SHOTS / "class-teacher-predictions-1366x768.png"))
            teacher.get_by_role("heading", name="The class's answers").scroll_into_view_if_needed()
            teacher.screenshot(path=str(SHOTS / "class-teacher-answers-1366x768.png"))

            # every student's page shows the results by itself, no reload
            expect(phone.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=WAIT_MS)
            expect(phone.get_by_role("heading", name=re.compile(r"^At \d+ labels? per class"))
                   ).to_be_visible()
            phone.screenshot(path=str(SHOTS / "class-student-revealed-390x844.png"))
            for page, answers in zip(students[1:], picks[1:]):
                expect(page.get_by_role("heading", name="Your score")).to_be_visible(timeout=WAIT_MS)
                right_count = sum(answers[q.id] == q.answer for q in asked)
                expect(page.locator("[data-testid='stMetric']")).to_contain_text(
                    f"{right_count} of {len(asked)}")

            # the teacher shows the results on the projector, then prints the handout
            projector.get_by_role("button", name="Show the results").click()
            expect(projector.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=WAIT_MS)
            assert_presenting(projector)
            projector.screenshot(path=str(SHOTS / "class-projector-1366x768.png"))
            projector.get_by_role("button", name="Exit presentation").click()
            projector.get_by_role("link", name="Printable handout").click()
            expect(projector.get_by_role("button", name="Back to the lesson")).to_be_visible(timeout=WAIT_MS)
            expect(projector.locator("[data-testid='stImage']").first).to_be_visible(timeout=WAIT_MS)
            _idle(projector)
            projector.emulate_media(media="print")
            pages = pdf_pages(projector.pdf(path=str(SHOTS / "class-handout.pdf"), format="A4"))
            projector.emulate_media(media="screen")
            assert 1 <= len(pages) <= HANDOUT_PAGES, f"the handout prints on {len(pages)} pages"
            assert pages[0].images == 1 and all(page.text.strip() for page in pages)

            # every page reloaded once: nothing lost
            for page in (teacher, projector, *students):
                page.reload()
                _idle(page)
            expect(teacher.get_by_text("Class code", exact=True)).to_be_visible(timeout=WAIT_MS)
            expect(teacher.locator("[data-testid='stCheckbox']").filter(
                has_text="Show the results and the right answers").locator("input")).to_be_checked()
            expect(projector.get_by_role("button", name="Back to the lesson")).to_be_visible()
            assert "handout=1" in projector.url
            _kept_prediction(phone, PREDICTIONS[0])
            expect(phone.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=WAIT_MS)
            for page in students[1:]:
                expect(page.get_by_role("heading", name="Your score")).to_be_visible(timeout=WAIT_MS)
            for page in (teacher, projector, *students):
                _nothing_lost(page)

            # a student's Class page: their own entry, nothing of the others'
            first = students[0]
            first.goto(links[0])
            expect(first.get_by_text("What you sent")).to_be_visible(timeout=WAIT_MS)
            _idle(first)
            main = first.locator("[data-testid='stMain']").inner_text()
            assert "40.0" in main and "55.0" not in main and "70.0" not in main
            assert "Students joined" not in main
            first.get_by_text("What you sent").scroll_into_view_if_needed()
            first.screenshot(path=str(SHOTS / "class-student-own-390x844.png"))
            browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert not problems, "the browser reported errors:\n" + "\n".join(problems)
