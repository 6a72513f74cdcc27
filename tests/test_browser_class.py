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
    expect(page).to_have_url(re.compile(r"[?&]teacher="))
    code = re.search(r"[?&]class=([A-Z0-9]{6})", page.url).group(1)
    assert re.search(r"[?&]teacher=[\w-]{32}", page.url)
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


def _student_sends(page, base: str, code: str, value: float, asked, picks) -> str:
    """Join with the link, save a prediction on Transfer curves, answer the class's quiz;
    returns the student's own link (the Class page with their id)."""
    from playwright.sync_api import expect

    page.goto(f"{base}/classroom?class={code}")
    _idle(page)
    page.get_by_role("button", name=f"Join class {code}").click()
    expect(page.get_by_text(re.compile(rf"^You are in class {code}"))).to_be_visible(timeout=WAIT_MS)
    expect(page).to_have_url(re.compile(r"[?&]student="))
    own = page.url
    assert re.search(r"[?&]student=[0-9a-f]{16}", own)
    page.get_by_role("link", name="Open the class's Transfer curves").click()
    expect(page.get_by_role("heading", name="Transfer curves", level=1)).to_be_visible(timeout=LOAD_MS)
    expect(page.get_by_text(re.compile(rf"^You are in class {code}:"))).to_be_visible()  # banner
    box = page.get_by_role("spinbutton", name=PROBE_AT_1, exact=True)
    box.fill(f"{value:g}")
    box.press("Tab")
    page.get_by_role("button", name="Save my predictions").click()
    expect(page.get_by_text(f"Sent 1 prediction to class {code}, without your name.")
           ).to_be_visible(timeout=WAIT_MS)
    _no_exception(page)
    page.goto(own)  # a reload of the student's own link: the same student, in a new session
    page.get_by_role("button", name="Start the class's quiz").click(timeout=LOAD_MS)
    for _ in asked:
        check = page.get_by_role("button", name="Check answer")
        expect(check).to_be_visible(timeout=LOAD_MS)
        _answer(page, asked, picks)
        check.click()
        expect(page.get_by_text(re.compile(r"^(Correct\.|Not quite\.)"))).to_be_visible(timeout=WAIT_MS)
        page.get_by_role("button", name=re.compile(r"^(Next question|See your score)$")).click()
    expect(page.get_by_role("heading", name="Your score")).to_be_visible(timeout=WAIT_MS)
    _no_exception(page)
    return own


def test_a_teacher_and_three_students_in_a_real_browser():
    from playwright.sync_api import expect, sync_playwright

    from engine.study.classroom import ClassStore
    from engine.study.content import load_content

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

            teacher = context(LAPTOP)
            teacher.goto(f"{base}/classroom")
            expect(teacher.get_by_role("heading", name="Class", level=1)).to_be_visible(timeout=LOAD_MS)
            _idle(teacher)
            code = open_class(teacher, 2)
            teacher.screenshot(path=str(SHOTS / "class-teacher-open-1366x768.png"))

            room = ClassStore(home / "classes").load(code)
            questions = {q.id: q for q in load_content().questions}
            asked = [questions[i] for i in room.questions]
            # students 1 and 2 pick the right answer to every question, student 3 a wrong one
            picks = [{q.id: q.answer for q in asked} for _ in range(2)]
            picks.append({q.id: next(o for o in q.options if o != q.answer) for q in asked})
            students = [context(PHONE if i == 0 else LAPTOP) for i in range(3)]
            links = [_student_sends(page, base, code, value, asked, answers)
                     for page, value, answers in zip(students, PREDICTIONS, picks)]

            # the teacher's view refreshes on its own
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
