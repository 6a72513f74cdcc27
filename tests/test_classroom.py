"""Class mode: the class store (codes, expiry, caps, concurrent students, damaged files, a
restart) and the Class page in AppTest (open a class, join it, send, the teacher's view with the
runs' results or the note that there are none yet).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from engine.experiments.sweep import SweepSpec
from engine.study import classroom
from engine.core.quotas import LOCAL, Who
from engine.study.classroom import (CODE, ClassError, ClassFull, ClassStore, normalize_code)
from ui.classroom.class_mode import LINK_KEY
from ui.kit.visitor import WHO_KEY

APP = ROOT / "app.py"
PAGE = "pages/classroom.py"
TIMEOUT = 180
TINY = SweepSpec(strategies=("scratch", "probe"), labels_per_class=(1, 2), seeds=1)
QUESTIONS = ("q-hierarchy", "q-probe-trains")


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    return ClassStore(tmp_path / "classes", clock=clock)


def opened(store, hours=2, spec=TINY):
    return store.open_class(spec, "concepts", QUESTIONS, hours)


# --- codes and tokens ---------------------------------------------------------------------------

def test_codes_are_short_unambiguous_and_typed_loosely(store):
    codes = {opened(store)[0].code for _ in range(20)}
    assert len(codes) == 20 and all(CODE.fullmatch(c) and len(c) == 6 for c in codes)
    assert not set("".join(codes)) & set("0O1IL")
    assert normalize_code(" k7m-x3p ") == "K7MX3P"
    for bad in ("K7MX3", "K7MX3PP", "K0MX3P", "K7MX1P", "", "../../x"):
        with pytest.raises(ValueError, match="6 letters and digits"):
            normalize_code(bad)


def test_the_teacher_token_is_not_stored_and_opens_only_its_class(store):
    room, token = opened(store)
    other, other_token = opened(store)
    raw = (store.folder / room.code / "class.json").read_text()
    assert token not in raw and room.is_teacher(token)
    assert not room.is_teacher(other_token) and not room.is_teacher("x" * 32)
    with pytest.raises(ClassError, match="not the teacher's link"):
        store.close(room.code, other_token)
    store.close(room.code, token)
    with pytest.raises(ClassError, match="No open class has the code"):
        store.load(room.code)
    assert store.load(other.code).code == other.code


# --- entries ------------------------------------------------------------------------------------

def test_students_send_predictions_and_first_answers(store):
    room, _ = opened(store)
    a, b = store.join(room.code), store.join(room.code.lower())
    assert a != b and re.fullmatch(r"[0-9a-f]{16}", a)
    assert store.send_predictions(room.code, a, {("probe", 1): 60.0, ("scratch", 2): 20}) == 2
    store.send_predictions(room.code, a, {("probe", 1): 70.0})  # replaces a's earlier guesses
    store.send_predictions(room.code, b, {("probe", 1): 40.0, ("probe", 2): 55.5})
    assert store.send_answer(room.code, a, "q-hierarchy", 0)
    assert not store.send_answer(room.code, a, "q-hierarchy", 2)  # a retry does not count
    assert store.send_answer(room.code, b, "q-hierarchy", 2)
    room = store.load(room.code)
    assert sorted(room.predictions()) == [("probe", 1, 40.0), ("probe", 1, 70.0),
                                          ("probe", 2, 55.5)]
    assert room.answer_counts("q-hierarchy", 4) == [1, 0, 1, 0]
    assert room.answer_counts("q-probe-trains", 4) == [0, 0, 0, 0]
    assert sum(s.sent for s in room.students.values()) == 2


@pytest.mark.parametrize("entry, match", [
    ({("finetune", 1): 50.0}, "predicts scratch, probe"),  # not a class strategy
    ({("probe", 5): 50.0}, "at 1, 2 labels per class"),  # not a class size
    ({("probe", 1): 101.0}, "percentage"),
])
def test_a_prediction_outside_the_class_is_refused(store, entry, match):
    room, _ = opened(store)
    student = store.join(room.code)
    with pytest.raises(ValueError, match=match):
        store.send_predictions(room.code, student, entry)
    assert store.load(room.code).predictions() == []


def test_answers_and_students_outside_the_class_are_refused(store):
    room, _ = opened(store)
    student = store.join(room.code)
    with pytest.raises(ValueError, match="does not ask this question"):
        store.send_answer(room.code, student, "q-not-asked", 0)
    with pytest.raises(ValueError, match="position"):
        store.send_answer(room.code, student, "q-hierarchy", 9)
    with pytest.raises(ClassError, match="not among the students"):
        store.send_answer(room.code, "0123456789abcdef", "q-hierarchy", 0)


# --- expiry -------------------------------------------------------------------------------------

def test_an_ended_class_refuses_and_is_removed(store, clock):
    room, _ = opened(store, hours=1)
    student = store.join(room.code)
    clock.now += 3600 - 1
    store.send_answer(room.code, student, "q-hierarchy", 1)
    clock.now += 1
    with pytest.raises(ClassError, match="has ended"):
        store.send_answer(room.code, student, "q-probe-trains", 1)
    assert not (store.folder / room.code).exists()
    with pytest.raises(ClassError, match="No open class"):
        store.join(room.code)


def test_opening_a_class_purges_the_ended_ones(store, clock):
    short, _ = opened(store, hours=1)
    long, _ = opened(store, hours=8)
    empty, _ = opened(store, hours=8)  # nobody joins it
    for room in (short, long):
        store.join(room.code)
    clock.now += 2 * 3600
    fresh, _ = opened(store)
    assert set(store.codes()) == {long.code, fresh.code}
    store.join(fresh.code)
    clock.now += 7 * 3600
    assert store.purge_expired() == 2
    assert not store.codes() and not list(store.folder.iterdir())[1:]  # the folder's lock only


def test_a_class_nobody_joins_ends_early(store, clock):
    room, _ = opened(store, hours=8)
    clock.now += classroom.EMPTY_MINUTES * 60 - 1
    assert store.load(room.code).code == room.code
    clock.now += 1
    with pytest.raises(ClassError, match="has ended"):
        store.load(room.code)
    joined, _ = opened(store, hours=8)
    store.join(joined.code)
    clock.now += 3 * 3600
    assert len(store.load(joined.code).students) == 1


@pytest.mark.parametrize("hours", [0, 0.5, 9, True])
def test_a_class_lasts_one_to_eight_hours(store, hours):
    with pytest.raises(ValueError, match="from 1 to 8 hours"):
        opened(store, hours=hours)


# --- caps ---------------------------------------------------------------------------------------

def test_caps_on_students_open_classes_entries_and_bytes(store, monkeypatch):
    monkeypatch.setattr(classroom, "MAX_STUDENTS", 2)
    room, _ = opened(store)
    first = store.join(room.code)
    store.join(room.code)
    with pytest.raises(ClassFull, match="is full: 2 students"):
        store.join(room.code)
    with pytest.raises(ClassFull, match="at most 64 predictions"):
        store.send_predictions(room.code, first, {("probe", k): 1.0 for k in range(1, 66)})
    monkeypatch.setattr(classroom, "MAX_OPEN_CLASSES", 2)
    opened(store)
    with pytest.raises(ClassFull, match="2 open classes"):
        opened(store)
    monkeypatch.setattr(classroom, "MAX_CLASS_BYTES",
                        len((store.folder / room.code / "entries.jsonl").read_bytes()) + 10)
    with pytest.raises(ClassFull, match="holds as much as one class may"):
        store.send_predictions(room.code, first, {("probe", 1): 50.0, ("probe", 2): 60.0})
    assert store.load(room.code).predictions() == []  # nothing half-written


# --- files: concurrency, damage, restart --------------------------------------------------------

def test_concurrent_students_lose_nothing(store):
    room, _ = opened(store)
    errors = []

    def student(i: int) -> None:
        try:
            sid = store.join(room.code)
            store.send_predictions(room.code, sid, {("probe", 1): float(i)})
            store.send_answer(room.code, sid, "q-hierarchy", i % 4)
        except Exception as err:  # reported below, with the thread's number
            errors.append((i, err))

    threads = [threading.Thread(target=student, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    room = ClassStore(store.folder, clock=store.clock).load(room.code)
    assert len(room.students) == 24
    assert sorted(v for _, _, v in room.predictions()) == [float(i) for i in range(24)]
    assert room.answer_counts("q-hierarchy", 4) == [6, 6, 6, 6]


def test_a_restart_reads_the_same_class(store, clock):
    room, token = opened(store)
    student = store.join(room.code)
    store.send_predictions(room.code, student, {("scratch", 2): 33.0})
    again = ClassStore(store.folder, clock=clock).load(room.code)
    assert again == store.load(room.code)
    assert again.is_teacher(token) and again.spec() == TINY


@pytest.mark.parametrize("content", [b"\x00not json", b"[1, 2]", b"{" + b" " * 1_100_000 + b"}",
                                     None])
def test_a_damaged_class_file_is_read_from_its_last_good_copy(store, content):
    room, token = opened(store)
    student = store.join(room.code)
    store.send_answer(room.code, student, "q-hierarchy", 1)
    path = store.folder / room.code / "class.json"
    if content is None:  # valid JSON, one field of the wrong type
        raw = json.loads(path.read_text())
        raw["experiment"]["seeds"] = "many"
        content = json.dumps(raw).encode()
    path.write_bytes(content)
    again = store.load(room.code)
    assert again.recovered and again.is_teacher(token) and len(again.students) == 1
    assert store.send_answer(room.code, student, "q-probe-trains", 0)  # it still takes answers
    (store.folder / room.code / "class.good.json").write_bytes(b"garbage")
    with pytest.raises(ClassError, match="is damaged, and so is its last good copy"):
        store.load(room.code)


def test_damaged_entries_are_skipped_and_the_good_copy_fills_in(store):
    room, _ = opened(store)
    students = [store.join(room.code) for _ in range(3)]
    for i, sid in enumerate(students):
        store.send_answer(room.code, sid, "q-hierarchy", i)
    journal = store.folder / room.code / "entries.jsonl"
    with open(journal, "ab") as fh:
        fh.write(b'{"kind": "answer", "student": "zz"}\n\x00\xffbroken\n')
    damaged = store.load(room.code)
    assert damaged.damaged == 2 and damaged.answer_counts("q-hierarchy", 4) == [1, 1, 1, 0]
    store.send_answer(room.code, students[0], "q-probe-trains", 3)  # the write cleans it up
    clean = store.load(room.code)
    assert clean.damaged == 0 and clean.answer_counts("q-probe-trains", 4) == [0, 0, 0, 1]
    journal.write_bytes(b"\x00" * 500)  # the journal overwritten: its good copy stands
    assert store.load(room.code).answer_counts("q-hierarchy", 4) == [1, 1, 1, 0]


def test_a_class_file_of_format_1_is_moved_to_a_folder(store, clock):
    room, token = opened(store)
    store.join(room.code)
    old = store.load(room.code)
    store.folder.joinpath(f"{room.code}.json").write_text(json.dumps({
        **{k: v for k, v in old.header_json().items() if k not in ("owner", "owner_address")},
        "format": 1, "students": {sid: s.to_json() for sid, s in old.students.items()}}))
    import shutil
    shutil.rmtree(store.folder / room.code)
    moved = store.load(room.code)
    assert moved.is_teacher(token) and set(moved.students) == set(old.students)
    assert not (store.folder / f"{room.code}.json").exists()


def test_three_hundred_students_answering_at_once_are_all_recorded(store):
    """Each answer appends a line under its class's lock; nothing is refused as busy."""
    room, _ = opened(store)
    sids = [store.join(room.code) for _ in range(300)]
    for i, sid in enumerate(sids):
        store.send_predictions(room.code, sid, {("probe", 1): float(i % 100), ("scratch", 2): 5.0})
    errors, start = [], threading.Barrier(300)

    def answer(i: int, sid: str) -> None:
        try:
            start.wait()
            store.send_answer(room.code, sid, "q-hierarchy", i % 4)
        except Exception as err:  # noqa: BLE001  (counted below)
            errors.append(err)
    threads = [threading.Thread(target=answer, args=(i, s)) for i, s in enumerate(sids)]
    began = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.time() - began
    assert not errors, errors[:3]
    assert ClassStore(store.folder, clock=store.clock).load(room.code).answer_counts(
        "q-hierarchy", 4) == [75, 75, 75, 75]
    assert took < 30, f"300 answers took {took:.1f} s"


def test_the_teacher_reveals_for_the_whole_class(store):
    room, token = opened(store)
    assert not room.revealed and not store.load(room.code).revealed  # blind to begin with
    with pytest.raises(ClassError, match="not the teacher's link"):
        store.reveal(room.code, "x" * 32)
    assert store.reveal(room.code, token).revealed and store.load(room.code).revealed
    assert not store.reveal(room.code, token, False).revealed  # and hidden again
    path = store.folder / room.code / "class.json"
    raw = json.loads(path.read_text())
    del raw["revealed"]  # a class opened before the switch was kept in the class
    path.write_text(json.dumps(raw))
    assert not store.load(room.code).revealed
    raw["revealed"] = "yes"
    path.write_text(json.dumps(raw))
    read = store.load(room.code)  # refused; its good copy is read instead
    assert read.recovered and not read.revealed


# --- the join link and the QR code --------------------------------------------------------------

def test_the_join_link_follows_the_browser_url_and_the_qr_code_is_a_png():
    from ui.classroom.class_mode import join_url, qr_png

    assert join_url("http://192.168.1.20:8501/classroom", "K7MX3P") == \
        "http://192.168.1.20:8501/classroom?class=K7MX3P"
    assert join_url("https://lab.example.org/tl/classroom", "K7MX3P") == \
        "https://lab.example.org/tl/classroom?class=K7MX3P"
    assert join_url(None, "K7MX3P") == "classroom?class=K7MX3P"
    png = qr_png("http://192.168.1.20:8501/classroom?class=K7MX3P")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 200


# --- the page -----------------------------------------------------------------------------------

def open_class_page(params: dict | None = None, visitor: Who | None = None) -> AppTest:
    """The Class page in a new session (a browser's tab), as `visitor` (its cookie's id)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(params or {})
    if visitor is not None:
        at.session_state[WHO_KEY] = visitor
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def browser(name: str) -> Who:
    """A browser with its own visitor cookie, on the server's own machine."""
    return Who(hashlib.sha256(name.encode()).hexdigest()[:16], LOCAL)


def link_of(at: AppTest):
    return at.session_state[LINK_KEY] if LINK_KEY in at.session_state else None


def test_a_teacher_opens_a_class_and_students_join_it(empty_default_store):
    at = open_class_page(visitor=browser("teacher"))
    assert at.title[0].value == "Class"
    next(n for n in at.number_input if n.label == "Questions").set_value(3)
    button(at, "Open the class").click().run()
    assert not at.exception, [e.value for e in at.exception]
    code = at.query_params["class"]
    assert "teacher" not in at.query_params  # never in the (projected) address bar
    token = link_of(at).teacher
    metric = next(m for m in at.metric if m.label == "Class code")
    assert metric.value == code and CODE.fullmatch(code)
    assert token not in texts(at.code)  # the secret link only on request
    next(t for t in at.toggle if t.label == "Show my secret link").set_value(True).run()
    assert token in texts(at.code)
    room = ClassStore().load(code)
    assert len(room.questions) == 3 and room.spec() == SweepSpec()  # the lesson's default
    assert {m.label: m.value for m in at.metric}["Students joined"] == "0"

    student = open_class_page({"class": code.lower()}, browser("student 1"))
    assert token not in texts(student.main.markdown) + texts(student.code)
    button(student, f"Join class {code}").click().run()
    sid = link_of(student).student
    assert sid in ClassStore().load(code).students
    assert set(student.query_params) == {"class"}  # no id in the address bar either
    assert f"You are in class **{code}**" in texts(student.success)

    typed = open_class_page(visitor=browser("student 2"))  # a second student types the code
    next(t for t in typed.text_input if t.label == "Class code").input(f" {code[:3]}-{code[3:]} ")
    next(b for b in typed.button if b.label == "Join").click().run()
    assert link_of(typed).student not in (None, sid)
    at.run()
    assert {m.label: m.value for m in at.metric}["Students joined"] == "2"

    again = open_class_page({"class": code}, browser("teacher"))  # the teacher's browser, reloaded
    assert link_of(again).is_teacher and any(m.label == "Class code" for m in again.metric)
    back = open_class_page(visitor=browser("student 1"))  # a reload with no class in the URL
    assert link_of(back).student == sid


def test_the_secret_link_opens_the_teacher_view_on_another_device(empty_default_store):
    store = ClassStore()
    room, token = store.open_class(TINY, "concepts", QUESTIONS, 2, browser("laptop"))
    tablet = open_class_page({"class": room.code, "teacher": token}, browser("tablet"))
    assert link_of(tablet).is_teacher and "teacher" not in tablet.query_params
    reloaded = open_class_page({"class": room.code}, browser("tablet"))  # no token any more
    assert link_of(reloaded).is_teacher
    stranger = open_class_page({"class": room.code}, browser("stranger"))
    assert not link_of(stranger).is_teacher and any(b.label == f"Join class {room.code}"
                                                   for b in stranger.button)
    laptop = open_class_page({"class": room.code}, browser("laptop"))
    button(laptop, "Make a secret link").click().run()
    fresh = link_of(laptop).teacher
    assert fresh != token and fresh in texts(laptop.code)
    old = open_class_page({"class": room.code, "teacher": token}, browser("old link"))
    assert "not the teacher's link" in texts(old.error) and not link_of(old).is_teacher


def test_a_students_view_shows_only_their_own_entries(empty_default_store):
    store = ClassStore()
    room, _ = store.open_class(TINY, "concepts", QUESTIONS, 2)
    me, other = store.join(room.code, browser("me")), store.join(room.code, browser("other"))
    store.send_predictions(room.code, me, {("probe", 1): 61.5})
    store.send_predictions(room.code, other, {("probe", 1): 87.25, ("scratch", 2): 12.75})
    store.send_answer(room.code, other, "q-probe-trains", 1)
    at = open_class_page({"class": room.code}, browser("me"))
    shown = texts(at.main.markdown) + texts(at.main.caption)
    assert "- Linear probe at 1 label per class: **61.5%**" in shown
    assert "87.2" not in shown and "12.7" not in shown and "No quiz answers sent yet" in shown
    assert not at.main.get("metric")  # no class counts either


def test_a_students_predictions_and_answers_reach_the_class(empty_default_store):
    """The Transfer curves and Quiz pages send a joined student's entries to the class."""
    store = ClassStore()
    room, _ = store.open_class(SweepSpec(), "concepts", QUESTIONS, 2)
    at = open_class_page({"class": room.code}, browser("a student"))
    button(at, f"Join class {room.code}").click().run()
    sid = link_of(at).student
    at.switch_page("pages/transfer_curves.py").run()
    assert f"You are in class **{room.code}**" in texts(at.info)  # the banner
    inputs = {n.label: n for n in at.number_input}
    inputs["Linear probe at 1 label per class (%)"].set_value(42.0)
    inputs["From scratch at 10 labels per class (%)"].set_value(30.0)
    button(at, "Save my predictions").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Sent 2 predictions to class {room.code}, without your name." in texts(at.caption)
    sent = store.load(room.code).students[sid]
    assert sorted(sent.predictions) == [("probe", 1, 42.0), ("scratch", 10, 30.0)]

    at.switch_page(PAGE).run()
    button(at, "Start the class's quiz").click().run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page("pages/quiz.py").run()  # AppTest reruns its own page, not the one switched to
    from engine.study.content import load_content

    questions = {q.id: q for q in load_content().questions}
    for _ in QUESTIONS:
        prompt = next(m.value for m in at.markdown if m.value.startswith("#### "))[5:]
        question = next(q for q in questions.values() if q.prompt == prompt)
        radio = next(r for r in at.radio if r.label == "Your answer")
        radio.set_value(question.options[1])
        button(at, "Check answer").click().run()
        assert not at.exception, [e.value for e in at.exception]
        next(b for b in at.button if b.label in ("Next question", "See your score")).click().run()
    answers = dict(store.load(room.code).students[sid].answers)
    assert answers == {"q-hierarchy": 1, "q-probe-trains": 1}


def test_a_reloaded_page_keeps_the_student_and_a_copied_link_does_not(empty_default_store):
    """A student is known by their browser: a reload of Transfer curves (a new session, no
    class in the URL) still shows the banner and still sends. An old link carrying a student's
    id makes nobody that student, and the teacher's browser gets no banner."""
    store = ClassStore()
    room, token = store.open_class(SweepSpec(), "concepts", QUESTIONS, 2, browser("teacher"))
    sid = store.join(room.code, browser("student"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state[WHO_KEY] = browser("student")
    at.run()
    at.switch_page("pages/transfer_curves.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"You are in class **{room.code}**" in texts(at.info)
    assert "student" not in at.query_params
    inputs = {n.label: n for n in at.number_input}
    inputs["Linear probe at 1 label per class (%)"].set_value(55.0)
    button(at, "Save my predictions").click().run()
    assert sorted(store.load(room.code).students[sid].predictions) == [("probe", 1, 55.0)]

    for visitor, params in ((browser("someone else"), {"class": room.code, "student": sid}),
                            (Who(None, LOCAL), {"class": room.code, "student": sid}),
                            (browser("teacher"), {"class": room.code})):
        other = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        other.query_params.update(params)
        other.session_state[WHO_KEY] = visitor
        other.run()
        other.switch_page("pages/transfer_curves.py").run()
        assert not other.exception, [e.value for e in other.exception]
        assert f"You are in class **{room.code}**" not in texts(other.info)
    copied = open_class_page({"class": room.code, "student": sid}, browser("someone else"))
    assert "a student's id no longer travels in links" in texts(copied.warning)
    assert link_of(copied).student is None


def test_the_teacher_view_draws_the_class_against_the_runs_once_stored(pretrained,
                                                                       empty_default_store,
                                                                       monkeypatch, tmp_path):
    from engine.core.store import ResultStore
    from engine.experiments.protocol import run_experiment
    from engine.infra import packs

    monkeypatch.setattr(packs, "SECTIONS_PACK", tmp_path / "no-pack.json")  # nothing shipped

    store = ClassStore()
    room, token = store.open_class(TINY, "concepts", QUESTIONS, 2)
    for value, answer in ((40.0, 0), (55.0, 0), (70.0, 2)):
        sid = store.join(room.code)
        store.send_predictions(room.code, sid, {("probe", 1): value, ("scratch", 1): value / 2})
        store.send_answer(room.code, sid, "q-hierarchy", answer)
    at = open_class_page({"class": room.code, "teacher": token})
    assert {m.label: m.value for m in at.metric}["Sent predictions"] == "3"
    next(t for t in at.toggle if t.label == "Show the results and the right answers").set_value(True).run()
    assert "None of the 4 runs of the class's experiment is stored yet" in texts(at.info)
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == 2  # one per size predicted: 1 and 2 labels per class
    probe_box = next(t for t in charts[0]["data"] if t["type"] == "box" and "Linear probe" in t["name"])
    assert sorted(probe_box["y"]) == [40.0, 55.0, 70.0] and "(3)" in probe_box["name"]
    assert not any(t.get("name") == "the runs' mean" for c in charts for t in c["data"])
    # the answers, in the quiz's words, the right one marked
    bars = [p for p in at.get("progress")]
    marked = [p.proto.text for p in bars if p.proto.text.startswith("✓ right answer: ")]
    assert any("first convolutional layers" in t and "**2**" in t for t in marked)

    run_experiment(TINY, ResultStore(empty_default_store))
    at.run()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    means = [t for t in charts[0]["data"] if t.get("name") == "the runs' mean"]
    assert len(means) == 2  # scratch and probe at 1 label per class, from the stored runs
    from engine.experiments.sweep import stored_records

    stored = stored_records(TINY, ResultStore(empty_default_store))
    probe = stored[(stored["strategy"] == "probe") & (stored["labels_per_class"] == 1)]
    assert any(abs(t["y"][0] - float(probe["test_accuracy"].mean())) < 1e-9 for t in means)


@pytest.mark.parametrize("params, message", [
    ({"class": "ZZZZZZ"}, "No open class has the code ZZZZZZ"),
    ({"class": "not a code"}, "is not a class code"),
    ({"class": "ZZZZZZ", "teacher": "<b>"}, "is not one this page writes"),
])
def test_unknown_or_malformed_links_say_so(params, message):
    at = open_class_page(params)
    assert message in texts(at.error) + texts(at.warning)
    assert any(b.label == "Join" for b in at.button)  # the page goes on: join or open


def test_a_damaged_class_file_is_a_message_that_keeps_the_link(empty_default_store):
    store = ClassStore()
    room, token = store.open_class(TINY, "concepts", QUESTIONS, 2)
    for name in ("class.json", "class.good.json"):
        (store.folder / room.code / name).write_text("{ damaged", encoding="utf-8")
    at = open_class_page({"class": room.code, "teacher": token})
    assert f"The file of class {room.code} is damaged" in texts(at.error)
    assert "keeps your place" in texts(at.error) and link_of(at).teacher == token


def test_an_ended_class_is_said_and_removed_when_its_link_is_opened(empty_default_store):
    store = ClassStore()
    room, _ = store.open_class(TINY, "concepts", QUESTIONS, 2)
    store.join(room.code, browser("student"))
    for name in ("class.json", "class.good.json"):
        path = store.folder / room.code / name
        raw = json.loads(path.read_text())
        raw["expires_at"] = raw["created_at"] - 1  # it ended a second after it opened, long ago
        path.write_text(json.dumps(raw))
    at = open_class_page({"class": room.code}, browser("student"))
    assert f"Class {room.code} has ended" in texts(at.error)
    assert not path.exists() and "class" not in at.query_params
    assert any(b.label == "Join" for b in at.button)


def _student_on_curves(room, visitor) -> AppTest:
    """A joined student's Transfer curves page, opened in their browser (a new session)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state[WHO_KEY] = visitor
    at.run()
    at.switch_page("pages/transfer_curves.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_class_predicts_blind_until_the_teacher_reveals(empty_default_store):
    """Saving predictions does not unlock the curves or the head start of a student in a class
    until the teacher reveals them (no Skip, no Show the results either); the teacher's switch
    unlocks them for the student, and a reload keeps the student's saved predictions."""
    store = ClassStore()
    room, token = store.open_class(SweepSpec(), "concepts", QUESTIONS, 2)
    store.join(room.code, browser("student"))
    at = _student_on_curves(room, browser("student"))
    assert not at.get("plotly_chart")
    labels = [b.label for b in at.button]
    assert "Skip" not in labels and "Show the results" not in labels
    inputs = {n.label: n for n in at.number_input}
    inputs["Linear probe at 1 label per class (%)"].set_value(48.0)
    button(at, "Save my predictions").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Sent 1 prediction to class {room.code}" in texts(at.caption)
    assert not at.get("plotly_chart"), "saved predictions showed a blind class the curves"
    assert f"Blind until revealed: Your class {room.code} sees the results" in texts(at.info)
    assert not any(m.value.startswith("#### At ") for m in at.markdown)  # no head start either

    again = _student_on_curves(room, browser("student"))  # a reload: a new session
    inputs = {n.label: n for n in again.number_input}
    assert inputs["Linear probe at 1 label per class (%)"].value == 48.0
    assert not again.get("plotly_chart")

    store.reveal(room.code, token)
    again.run()  # what the page's own wait does once the teacher has revealed
    assert again.get("plotly_chart") and "Blind until revealed" not in texts(again.info)
    assert any(m.value.startswith("#### At ") for m in again.markdown)


def test_a_class_answers_blind_until_the_teacher_reveals(empty_default_store):
    from engine.study.content import load_content

    store = ClassStore()
    room, token = store.open_class(SweepSpec(), "concepts", QUESTIONS[:1], 2)
    sid = store.join(room.code, browser("student"))
    at = open_class_page({"class": room.code}, browser("student"))
    button(at, "Start the class's quiz").click().run()
    at.switch_page("pages/quiz.py").run()
    question = {q.id: q for q in load_content().questions}[QUESTIONS[0]]
    wrong = next(o for o in question.options if o != question.answer)
    next(r for r in at.radio if r.label == "Your answer").set_value(wrong)
    button(at, "Check answer").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at.info) + texts(at.error) + texts(at.success)
    assert f"Sent. You picked: *{wrong}*" in shown
    assert question.answer not in shown and question.explanation not in shown
    assert dict(store.load(room.code).students[sid].answers) == {
        QUESTIONS[0]: question.options.index(wrong)}
    button(at, "See your score").click().run()
    assert not at.get("metric") and question.answer not in texts(at.markdown)

    store.reveal(room.code, token)
    at.run()
    assert next(m for m in at.metric if m.label == "Score").value == "0 of 1"
    assert question.answer in texts(at.markdown)


# --- a class on Transfer on text ------------------------------------------------------------------

def test_a_text_class_keeps_its_corpus_and_refuses_what_it_cannot_predict(store, clock):
    from engine.experiments.lessons.text import TextCurveSettings
    from engine.experiments.text_sweep import TextSweepSpec

    spec = TextCurveSettings(target="tweets", strategies=("scratch", "probe"),
                             labels_per_class=(1, 5), seeds=3).experiment()
    room, _ = store.open_class(spec, "concepts", QUESTIONS, 2)
    again = store.load(room.code)  # as read back from its file
    assert again.lesson == "transfer_on_text" and again.target == "tweets"
    assert again.spec() == spec and isinstance(again.spec(), TextSweepSpec)
    sid = store.join(room.code)
    assert store.send_predictions(room.code, sid, {("probe", 5): 70.0}) == 1
    with pytest.raises(ValueError, match="predicts scratch, probe at 1, 5 labels per class"):
        store.send_predictions(room.code, sid, {("finetune", 5): 70.0})
    # a class of the digits has no target in its file and stays one (classes opened before)
    digits, _ = opened(store)
    header = json.loads((store.folder / digits.code / "class.json").read_text())
    assert "target" not in header["experiment"] and store.load(digits.code).lesson == "transfer_curves"
    # a corpus the app does not ship: refused when opened, and a damaged file when read
    upload = object.__new__(TextSweepSpec)  # an upload's name, as a spec holds it
    for field in dataclasses.fields(spec):
        object.__setattr__(upload, field.name, getattr(spec, field.name))
    object.__setattr__(upload, "target", "text:0123456789abcdef")
    with pytest.raises(ValueError, match="not on uploaded sentences"):
        store.open_class(upload, "concepts", QUESTIONS, 2)
    for name in ("class.json", "class.good.json"):
        path = store.folder / room.code / name
        raw = json.loads(path.read_text())
        raw["experiment"]["target"] = "../../etc/passwd"
        path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="damaged"):
        ClassStore(store.folder, clock=clock).load(room.code)


def _student_on(page: str, visitor) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state[WHO_KEY] = visitor
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_text_class_pools_the_predictions_of_transfer_on_text(empty_default_store):
    """A class opened on Transfer on text: the text page predicts blind and sends to it; the
    Transfer curves page neither holds its results nor sends; the teacher's view names the
    corpus and draws the class's predictions, then the runs' means (the sections pack's)."""
    from engine.experiments.lessons.text import TextCurveSettings

    store = ClassStore()
    room, token = store.open_class(TextCurveSettings().experiment(), "concepts", QUESTIONS, 2)
    sid = store.join(room.code, browser("text class student"))

    curves = _student_on("pages/transfer_curves.py", browser("text class student"))
    assert "Blind until revealed" not in texts(curves.info)
    assert "Transfer on text" in texts(curves.info)  # the banner names the class's lesson
    inputs = {n.label: n for n in curves.number_input}
    inputs["Linear probe at 1 label per class (%)"].set_value(48.0)
    button(curves, "Save my predictions").click().run()
    assert not curves.exception, [e.value for e in curves.exception]
    assert (f"Kept in this session only: your class {room.code} predicts on Transfer on text"
            in texts(curves.caption))
    assert not store.load(room.code).students[sid].predictions

    text = _student_on("pages/transfer_on_text.py", browser("text class student"))
    assert f"Blind until revealed: Your class {room.code} sees the results" in texts(text.info)
    assert "Skip" not in [b.label for b in text.button]
    inputs = {n.label: n for n in text.number_input}
    inputs["Linear probe at 5 labels per class (%)"].set_value(71.0)
    button(text, "Save my predictions").click().run()
    assert not text.exception, [e.value for e in text.exception]
    assert f"Sent 1 prediction to class {room.code}" in texts(text.caption)
    assert store.load(room.code).students[sid].predictions == (("probe", 5, 71.0),)
    again = _student_on("pages/transfer_on_text.py", browser("text class student"))  # a reload
    assert {n.label: n for n in again.number_input}[
        "Linear probe at 5 labels per class (%)"].value == 71.0

    teacher = open_class_page({"class": room.code, "teacher": token})
    assert "Amazon product reviews: From scratch, Linear probe" in texts(teacher.caption)
    next(t for t in teacher.toggle
         if t.label == "Show the results and the right answers").set_value(True).run()
    charts = [json.loads(c.proto.spec) for c in teacher.get("plotly_chart")]
    five = next(c for c in charts if c["layout"]["title"]["text"] == "5 labels per class")
    probe_box = next(t for t in five["data"] if t["type"] == "box" and "Linear probe" in t["name"])
    assert list(probe_box["y"]) == [71.0]
    means = [t for t in five["data"] if t.get("name") == "the runs' mean"]
    assert len(means) == 2  # scratch and probe, from the sections pack's text runs
    assert "from the lesson pack" in texts(teacher.caption)
    text.run()  # what the student's page does by itself once revealed
    assert text.get("plotly_chart") and "Blind until revealed" not in texts(text.info)


def test_a_teacher_opens_a_class_on_transfer_on_text(empty_default_store):
    at = open_class_page(visitor=browser("text teacher"))  # a browser with no class open
    radio = next(r for r in at.radio if r.label == "Experiment")
    assert radio.options[1].startswith("**Transfer on text** on Amazon product reviews: ")
    assert radio.value == "transfer_curves"  # neither page shown yet: the first
    at.switch_page("pages/transfer_on_text.py").run()
    at.switch_page(PAGE).run()  # back from the text page, the only one shown: it is chosen
    radio = next(r for r in at.radio if r.label == "Experiment")
    assert radio.value == "transfer_on_text"
    button(at, "Open the class").click().run()
    assert not at.exception, [e.value for e in at.exception]
    room = ClassStore().load(at.query_params["class"])
    assert room.lesson == "transfer_on_text" and room.target == "amazon_reviews"
    student = open_class_page({"class": room.code}, browser("text student"))
    button(student, f"Join class {room.code}").click().run()
    assert "#### 1. Predict on Transfer on text" in texts(student.markdown)
    link = next(p for p in student.get("page_link") if "Transfer on text" in p.proto.label)
    assert link.proto.page.endswith("transfer_on_text")
