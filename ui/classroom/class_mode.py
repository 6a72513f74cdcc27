"""Class mode in the app: the Class page's forms and views, the banner a student sees on every
page, and what Predict first (on Transfer curves and Transfer on text) and the Quiz page announce,
passed on to the student's class.

Who is who is kept in the session (`LINK_KEY`) and known by the browser, never by a link: the
address bar shows only `?class=CODE` (the join link; the QR code carries it). A student is the
random id they joined under (no name is ever asked), found again after a reload by their
browser's visitor cookie (`ui.kit.visitor`); the teacher is the browser that opened the class,
or one where the teacher's secret link (`?class=CODE&teacher=TOKEN`, shown on request, never in
a projected address bar) was opened: the token is checked, that browser becomes the teacher's,
and the token is taken out of the URL at once. Whoever opens a page link a student copied is
not that student.

Privacy rule: a student's view shows only that student's own entries; the teacher's view shows
counts and distributions pooled over the class, never a student's id or anything that tells
one student's entries apart. The class store itself is `engine.study.classroom` (files, caps,
expiry); this module draws and sends, nothing else.
"""

from __future__ import annotations

import contextlib
import io
import random
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, TypeVar
from urllib.parse import urlencode, urlsplit

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core.datasets import labels_per_class_text
from engine.experiments.stats import strategy_label, summarize
from engine.core.quotas import QuotaError
from engine.core.text import text_title
from engine.study.classroom import (CODE, CURVES_LESSON, DEFAULT_HOURS, EMPTY_MINUTES, MAX_HOURS,
                                    MAX_QUESTIONS, MIN_HOURS, TEACHER_TOKEN, TEXT_LESSON, ClassBusy,
                                    ClassDamaged, Classroom, ClassStore, normalize_code)
from engine.study.content import Content, Question
from ui.kit.section import Section
from ui.lessons.controls import CURVES
from ui.lessons.text import TEXT_CURVES
from ui.kit.text import plural
from ui.lessons.curves import describe_spec
from engine.experiments.lessons.links import MAX_QUERY_VALUE, link_text
from ui.kit.events import (EARLIER_PREDICTIONS, PREDICTIONS_SAVED, QUESTION_ANSWERED, RESULTS_HELD,
                           TEACHING, listen)
from ui.kit.visitor import who
from ui.kit.exports import show_chart
from ui.kit.jobs import packed, stored
from ui.kit.figures import rgba, chart_layout, strategy_color
from ui.lessons.predict import prediction_sizes
from ui.study.quiz import ALL, QUIZ_KEY, QuestionSet, new_round
from engine.experiments.lessons.curves import CurveSettings
from engine.experiments.lessons.text import TextCurveSettings

from ui.study.learner import loaded_content, study_content

T = TypeVar("T")

CLASS_PAGE = "pages/classroom.py"
PARAMS = ("class", "teacher", "student")  # the Class page's link keys
LINK_KEY = "classroom.link"  # session_state: the ClassLink this session uses
SCANNED_KEY = "classroom.scanned"  # session_state: this browser's classes were looked up once
OUTBOX_KEY = "classroom.outbox"  # session_state: entries waiting to be sent (the store was busy)
OUTBOX_SECONDS = 3  # how often a page with a waiting entry tries again
# what makes an entry wait and be sent again (a class that is gone is said, not retried)
RETRIED = (ClassBusy, ClassDamaged, QuotaError, OSError)
REFRESH_SECONDS = 5  # how often the teacher's view reads the class again
# the teacher's switch, kept in the class: the runs' means on the charts and the right answers
# marked, both hidden until the class has predicted and answered (the view is projected), and
# on every student's page the curves, the verdicts and the right answers (blind until then)
REVEAL = "Show the results and the right answers"
QR_PIXELS = 320  # the QR code's width on the page: readable from the back of a room
# the code in letters a room can read off a projector (the metric's value is 2.25rem otherwise)
CODE_CSS = ("<style>.st-key-class_code [data-testid='stMetricValue'] "
            "{font-size: 4.5rem; letter-spacing: 0.12em; font-family: monospace;}</style>")


@dataclass(frozen=True)
class ClassLink:
    """Who this session is in a class: a code, and a student's id, or the teacher (by the
    secret token this session holds, or by this browser, `owner`)."""

    code: str
    student: Optional[str] = None
    teacher: Optional[str] = None  # the secret token, when this session was given it
    owner: bool = False  # this browser opened the class, or had the teacher's link opened in it

    @property
    def is_teacher(self) -> bool:
        return bool(self.teacher) or self.owner

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> tuple[Optional["ClassLink"], list[str]]:
        """The link's class and teacher's token (None when it names no usable class) and
        notices about bad values. A student's id is never read from a link (whoever opened
        it would be that student): a student is known by their browser."""
        notices, values = [], {}
        for key, pattern in (("class", CODE), ("teacher", TEACHER_TOKEN)):
            value = params.get(key)
            if value is None:
                continue
            if len(value) > MAX_QUERY_VALUE:
                notices.append(f"the link's '{key}' value is too long; it was ignored")
            elif key == "class":
                try:
                    values[key] = normalize_code(value)
                except ValueError:
                    notices.append(f"class {link_text(value)} is not a class code; it was ignored")
            elif pattern.fullmatch(value):
                values[key] = value
            else:
                notices.append(f"{key} {link_text(value)} is not one this page writes; it was "
                               "ignored")
        if "student" in params:
            notices.append("a student's id no longer travels in links, so this one was ignored: "
                           "this browser is recognised once it has joined the class")
        if "class" not in values:
            return None, notices
        return cls(values["class"], teacher=values.get("teacher")), notices

    def to_query(self) -> dict[str, str]:
        """What the address bar shows: the class's code only (it is on the projector anyway)."""
        return {"class": self.code}


def class_store() -> ClassStore:
    return ClassStore()


def current_link() -> tuple[Optional[ClassLink], list[str]]:
    """The Class page's class: the link's when it names one (a teacher's token in it is
    checked, kept in the session, and taken out of the address bar), else this session's,
    else the class this browser joined or opened; kept in the session and its code in the URL."""
    link, notices = ClassLink.from_query(st.query_params.to_dict())
    session = st.session_state.get(LINK_KEY)
    if link is None:
        link = session if isinstance(session, ClassLink) else _recognised()
    elif isinstance(session, ClassLink) and session.code == link.code and not link.teacher:
        link = session
    else:
        link = _identify(link)
    use_link(link)
    return link, notices


def _identify(link: ClassLink) -> ClassLink:
    """Who this browser is in the class a link names: the teacher (a valid token, which makes
    this browser the teacher's too, or the browser that opened it), a student who joined from
    this browser, or nobody yet. Wrong codes count against the visitor (`ClassStore.find`)."""
    visitor = who()
    try:
        room = class_store().find(link.code, visitor, allow_expired=True)
    except ValueError:
        return link  # the page says why
    if link.teacher and room.is_teacher(link.teacher):
        with contextlib.suppress(ValueError):
            class_store().adopt(room.code, link.teacher, visitor)
        return link
    if link.teacher:
        return link  # a wrong token: the page says so and opens the students' view
    if room.owned_by(visitor):
        return ClassLink(room.code, owner=True)
    student = class_store().member(room, visitor)
    return ClassLink(room.code, student=student)


def _recognised() -> Optional[ClassLink]:
    """The open class this browser (its visitor cookie) opened or joined, looked up once per
    session; None without a cookie or a class."""
    if st.session_state.get(SCANNED_KEY):
        return None
    st.session_state[SCANNED_KEY] = True
    visitor = who()
    if not visitor.visitor:
        return None
    store, found = class_store(), []
    for code in store.codes():
        try:
            room = store.load(code, allow_expired=True)  # an ended one is said where it is opened
        except ValueError:
            continue
        if room.owned_by(visitor):
            found.append((room.created_at, ClassLink(room.code, owner=True)))
        elif (student := store.member(room, visitor)) is not None:
            found.append((room.created_at, ClassLink(room.code, student=student)))
    return max(found, key=lambda f: f[0])[1] if found else None


def use_link(link: Optional[ClassLink]) -> None:
    """Make `link` this session's class (None: no class) and put its code in the page's URL
    (the link's other parameters are left as they are; a teacher's token or a student's id is
    taken out)."""
    if link is None:
        st.session_state.pop(LINK_KEY, None)
    else:
        st.session_state[LINK_KEY] = link
    query = link.to_query() if link is not None else {}
    for key in PARAMS:
        if key not in query:
            st.query_params.pop(key, None)
        elif st.query_params.get(key) != query[key]:
            st.query_params[key] = query[key]


def join_url(page_url: Optional[str], code: str) -> str:
    """The link students open: this page's URL as the browser sees it, with the class code."""
    parts = urlsplit(page_url or "")
    base = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else "classroom"
    return f"{base}?{urlencode({'class': code})}"


@st.cache_data(max_entries=64, show_spinner=False)
def qr_png(url: str) -> bytes:
    """The QR code of `url` as a PNG (segno: pure Python), black on white with a quiet zone."""
    import segno

    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=10, border=3)
    return buffer.getvalue()


def time_left(room: Classroom, now: float, until: Optional[float] = None) -> str:
    """How long until the class ends ('1 h 05 min', '12 min'), or until `until`."""
    minutes = max(0, int((room.expires_at if until is None else until) - now) // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


@dataclass(frozen=True)
class ClassLesson:
    """A lesson a class predicts on: its page, its title, and its curves section (the session
    key and settings its Predict first reads)."""

    page: str
    title: str
    section: Section
    settings: Callable[[Classroom], Any]  # the class's experiment as the section's settings


LESSONS = {
    CURVES_LESSON: ClassLesson("pages/transfer_curves.py", "Transfer curves", CURVES,
                               lambda r: CurveSettings(r.strategies, r.labels_per_class, r.seeds)),
    TEXT_LESSON: ClassLesson("pages/transfer_on_text.py", "Transfer on text", TEXT_CURVES,
                             lambda r: TextCurveSettings(r.target, r.strategies,
                                                         r.labels_per_class, r.seeds)),
}


def class_lesson(room: Classroom) -> ClassLesson:
    return LESSONS[room.lesson]


def class_settings(room: Classroom):
    """The class's experiment as its lesson's settings (ValueError if the lesson no longer
    offers it)."""
    return class_lesson(room).settings(room)


def describe_class(room: Classroom) -> str:
    """The class's experiment in one line, its corpus first on text."""
    corpus = f"{text_title(room.target)}: " if room.target else ""
    return corpus + describe_spec(room.spec())


def quiz_sets(library: Content) -> dict[str, QuestionSet]:
    """The question sets a class may ask from: all questions, and each bank."""
    sets = {ALL: QuestionSet("All questions", library.questions)}
    sets.update({b.id: QuestionSet(b.title, b.questions) for b in library.banks})
    return sets


def class_questions(room: Classroom, library: Content) -> list[Question]:
    """The class's questions that the quiz still has, in the class's order."""
    by_id = {q.id: q for q in library.questions}
    return [by_id[i] for i in room.questions if i in by_id]


# --- sending a student's entries (Predict first's and the quiz's events) ---------------------

def _member() -> Optional[ClassLink]:
    """This session's student link: kept in the session, or recognised by the browser."""
    link = st.session_state.get(LINK_KEY)
    if link is None:
        link = _recognised()
        if link is not None:
            st.session_state[LINK_KEY] = link
    return link if isinstance(link, ClassLink) and link.student else None


def _deliver(link: ClassLink, item: tuple) -> None:
    """Send one outbox item to the class store (ValueError says why not)."""
    if item[0] == "predictions":
        class_store().send_predictions(link.code, link.student, item[1], who())
    else:
        class_store().send_answer(link.code, link.student, item[1], item[2], who())


def _send(link: ClassLink, item: tuple) -> Optional[str]:
    """Send `item` now; when the store is busy or the visitor sends too fast, keep it in the
    session's outbox, which this page sends again by itself (`outbox`). Returns why it was
    not sent, or None when it was."""
    try:
        _deliver(link, item)
    except RETRIED as err:
        outbox = st.session_state.setdefault(OUTBOX_KEY, [])
        outbox[:] = [i for i in outbox if i[:2] != item[:2]] + [item]
        return f"Not sent to your class yet ({err}); this page sends it again by itself."
    except ValueError as err:
        return f"Not sent to your class: {err}"
    return None


@st.fragment(run_every=OUTBOX_SECONDS)
def outbox(link: ClassLink) -> None:
    """While some of this student's entries wait to be sent: try again every few seconds,
    say how many wait, and rerun the page once they are all sent."""
    waiting = st.session_state.get(OUTBOX_KEY) or []
    for item in list(waiting):
        try:
            _deliver(link, item)
        except RETRIED:
            break
        except ValueError as err:  # it can never be sent (the class ended, ...): said, dropped
            st.session_state[OUTBOX_KEY] = waiting = [i for i in waiting if i != item]
            st.toast(f"Not sent to your class: {err}", icon=":material/error:")
            continue
        st.session_state[OUTBOX_KEY] = waiting = [i for i in waiting if i != item]
    if waiting:
        st.warning(f"{plural(len(waiting), 'entry', 'entries')} for class {link.code} "
                   "wait to be sent (the class store is busy); this page tries again every "
                   f"{OUTBOX_SECONDS} s.", icon=":material/schedule_send:")
    else:
        st.toast(f"Sent to class {link.code}.", icon=":material/send:")
        st.rerun(scope="app")


def send_predictions(predictions: Mapping[tuple[str, int], float],
                     lesson: str = CURVES_LESSON) -> Optional[str]:
    """When this learner is in a class that predicts on `lesson`: send their saved predictions
    for the class's strategies and sizes (replacing what they sent before), and say so, or why
    not, where called."""
    link = _member()
    if link is None:
        return None
    try:
        room = class_store().load(link.code)
    except RETRIED:  # unreadable for now: they wait, and the store checks them when sent
        st.warning(_send(link, ("predictions", dict(predictions))), icon=":material/groups:")
        return None
    except ValueError as err:
        st.error(f"Not sent to your class: {err}", icon=":material/groups:")
        return None
    if room.lesson != lesson:
        st.caption(f"Kept in this session only: your class {room.code} predicts on "
                   f"{class_lesson(room).title}.")
        return None
    sizes = prediction_sizes(room.spec())
    mine = {key: v for key, v in predictions.items() if key[0] in room.strategies and key[1] in sizes}
    if not mine:
        st.warning(f"None of these predictions is one your class {room.code} asks for "
                   f"({describe_class(room)}): open the class's settings from the "
                   "Class page.", icon=":material/groups:")
        return None
    notice = _send(link, ("predictions", mine))
    if notice:
        st.warning(notice, icon=":material/groups:")
    else:
        st.caption(f"Sent {plural(len(mine), 'prediction')} to class {room.code}, without your "
                   "name.")
    return None


def send_answer(question_id: str, choice: str) -> Optional[str]:
    """When this learner is in a class and the question is one of the class's: send the
    chosen option (only a first answer counts). Returns a notice when it was not sent (yet)."""
    link = _member()
    if link is None:
        return None
    question = next((q for q in study_content().questions if q.id == question_id), None)
    if question is None or choice not in question.options:
        return None
    try:
        if question_id not in class_store().load(link.code).questions:
            return None
    except RETRIED:
        pass  # unreadable for now: it waits in the outbox, and the store checks it when sent
    except ValueError as err:
        return f"Not sent to your class: {err}"
    return _send(link, ("answer", question_id, question.options.index(choice)))


def _open_room() -> Optional[tuple[ClassLink, Classroom]]:
    """This session's student and their open class; None outside a class, or when the class
    cannot be read (the Class page says why)."""
    link = _member()
    if link is None:
        return None
    try:
        return link, class_store().load(link.code)
    except ValueError:
        return None


def held_for_class(question_id: Optional[str] = None,
                   lesson: Optional[str] = None) -> Optional[str]:
    """Blind until revealed: why this student may not see the results of `lesson`'s Predict
    first (or the right answer to one of the class's questions) yet; None when the teacher has
    revealed them, or the lesson or question is not the class's, or the learner is in no open
    class."""
    found = _open_room()
    if found is None:
        return None
    room = found[1]
    if room.revealed or (question_id is not None and question_id not in room.questions) \
            or (question_id is None and lesson != room.lesson):
        return None
    what = "the right answers" if question_id is not None else "the results"
    return f"Your class {room.code} sees {what} when your teacher shows them."


def earlier_predictions(lesson: str = CURVES_LESSON) -> Optional[dict[tuple[str, int], float]]:
    """The predictions this student sent to their class, when it predicts on `lesson` (a reload
    keeps them on the page)."""
    found = _open_room()
    if found is None or found[1].lesson != lesson:
        return None
    student = found[1].students.get(found[0].student)
    return {(s, k): v for s, k, v in student.predictions} if student else None


def teaching() -> bool:
    """Whether this session is a class's teacher (their Cancel stops a job outright)."""
    link = st.session_state.get(LINK_KEY)
    return isinstance(link, ClassLink) and link.is_teacher


def reveal_switch(link: ClassLink, room: Classroom) -> bool:
    """The teacher's switch, kept in the class (so every student's page follows it, and the
    teacher's other devices too); returns whether the class is revealed."""
    key = "class.reveal"
    if st.session_state.get(key) != room.revealed:
        st.session_state[key] = room.revealed  # set elsewhere (another device) since this run
    st.toggle(REVEAL, key=key, on_change=_set_reveal, args=(link, key),
              help="Draws the runs' mean on each chart and marks the right answer to each quiz "
                   "question, here and on every student's page (students predict and answer "
                   "blind until then). Keep it off while the class is still predicting and "
                   "answering.")
    return bool(st.session_state[key])


def _set_reveal(link: ClassLink, key: str) -> None:
    try:
        class_store().reveal(link.code, link.teacher, bool(st.session_state[key]), who())
    except ValueError as err:
        st.session_state[key] = not st.session_state[key]
        st.toast(f"Not changed: {err}", icon=":material/error:")


def class_banner(page_path: str) -> None:
    """On every page but the Class page itself: which class this student is in (known from
    the session, or from this browser once it has joined: no id travels in a link), and their
    entries that still wait to be sent."""
    if page_path == CLASS_PAGE:
        return
    link = _member()
    if link is None:
        return
    try:  # as it is, ended or not: the Class page says it ended, and removes it
        where = class_lesson(class_store().load(link.code, allow_expired=True)).title
    except ValueError:
        where = "the class's lesson"
    st.info(f"You are in class **{link.code}**: your saved predictions on {where} and "
            "your answers to the class's quiz questions are sent to it, without your name. "
            "The Class page shows what you sent.", icon=":material/groups:")
    if st.session_state.get(OUTBOX_KEY):
        outbox(link)


# --- the Class page without a class: join one, or open one -----------------------------------

def join_form() -> None:
    """A student types the code; Join adds them to the class anonymously."""
    with st.form("class.join", border=True):
        st.markdown("#### Join a class")
        code = st.text_input("Class code", max_chars=12, placeholder="e.g. K7MX3P",
                             key="class.code")
        joined = st.form_submit_button("Join", type="primary", icon=":material/login:")
    if joined:
        join(code)


def join(code: str) -> None:
    """Join the class `code` as a new anonymous student, or say why not."""
    try:
        code = normalize_code(code)
        student = class_store().join(code, who())
        room = class_store().load(code)
    except ValueError as err:
        st.error(f"Not joined: {err}.".replace("..", "."), icon=":material/error:")
        return
    use_link(ClassLink(code, student=student))
    try:  # the class's lesson page opens them
        st.session_state[class_lesson(room).section.key] = class_settings(room)
    except ValueError:
        pass
    st.rerun()


def open_form(library: Content) -> None:
    """A teacher opens a class on the settings this session last showed on Transfer curves or
    on Transfer on text (each lesson's default until changed there); the one page of the two
    this session has shown is chosen to begin with."""
    specs = {name: st.session_state.get(lesson.section.key,
                                        lesson.section.settings()).experiment()
             for name, lesson in LESSONS.items()}

    def choice(name: str) -> str:
        spec = specs[name]
        corpus = f" on {text_title(spec.target)}" if name == TEXT_LESSON else ""
        return f"**{LESSONS[name].title}**{corpus}: {describe_spec(spec)}"

    sets = quiz_sets(library)
    with st.form("class.open", border=True):
        st.markdown("#### Open a class")
        shown = [name for name, lesson in LESSONS.items() if lesson.section.key in st.session_state]
        lesson = st.radio("Experiment", list(LESSONS), format_func=choice, key="class.lesson",
                          index=list(LESSONS).index(shown[0]) if len(shown) == 1 else 0)
        st.caption("The settings you last showed on each page (the lesson's default until you "
                   "change them there). Every student predicts these strategies and sizes on "
                   "that page.")
        set_id = st.selectbox("Quiz questions from", list(sets), key="class.set",
                              format_func=lambda s: f"{sets[s].title} "
                                                    f"({len(sets[s].questions)} questions)")
        left, right = st.columns(2)
        count = left.number_input("Questions", min_value=1, max_value=MAX_QUESTIONS, value=5,
                                  step=1, key="class.questions",
                                  help="Drawn at random from the set once; every student gets "
                                       "the same ones.")
        hours = right.select_slider("The class lasts (hours)", range(MIN_HOURS, MAX_HOURS + 1),
                                    value=DEFAULT_HOURS, key="class.hours",
                                    help="Then joining and sending stop and the class's "
                                         "entries are deleted from the server.")
        opened = st.form_submit_button("Open the class", type="primary",
                                       icon=":material/co_present:")
    if opened:
        pool = sets[set_id].questions
        order = {q.id: i for i, q in enumerate(pool)}
        drawn = sorted(random.sample([q.id for q in pool], min(int(count), len(pool))),
                       key=order.get)
        try:
            room, token = class_store().open_class(specs[lesson], set_id, drawn, hours, who())
        except ValueError as err:
            st.error(f"Not opened: {err}", icon=":material/error:")
            return
        use_link(ClassLink(room.code, teacher=token))
        st.rerun()


# --- a student's view -------------------------------------------------------------------------

def student_view(link: ClassLink, room: Classroom, library: Content, now: float) -> None:
    """What a student sees of their class: where to predict and answer, and their own entries."""
    student = room.students.get(link.student) if link.student else None
    if student is None:
        st.markdown(f"### Class {room.code}")
        st.markdown("Join to send your predictions and quiz answers to this class. You stay "
                    "anonymous: no name is asked, and nobody else sees your entries.")
        if st.button(f"Join class {room.code}", type="primary", icon=":material/login:"):
            join(room.code)
        return
    st.success(f"You are in class **{room.code}** (it ends in {time_left(room, now)}). Your "
               "entries are sent without your name; only you see them here.",
               icon=":material/groups:")
    st.markdown(f"#### 1. Predict on {class_lesson(room).title}")
    st.markdown(f"Your class's experiment: {describe_class(room)}. Open it, write your "
                "predictions in **Predict first** and press **Save my predictions**.")
    curves_link(room)
    questions = class_questions(room, library)
    st.markdown(f"#### 2. Answer the class's quiz ({plural(len(questions), 'question')})")
    st.caption("Your first answer to each question is the one sent.")
    if st.button("Start the class's quiz", icon=":material/quiz:", disabled=not questions):
        set_id = room.question_set if room.question_set in quiz_sets(library) else ALL
        st.session_state[QUIZ_KEY] = new_round(tuple(questions), set_id, len(questions), True,
                                               random.Random())
        st.switch_page("pages/quiz.py")
    own_entries(student.predictions, dict(student.answers), questions)
    if st.button("Leave the class", icon=":material/logout:"):
        use_link(None)
        st.rerun()


def own_entries(predictions, answers: dict[str, int], questions: list[Question]) -> None:
    """The student's own predictions and answers, as sent."""
    st.markdown("#### What you sent")
    if predictions:
        st.markdown("**Your predictions**\n\n" + "\n".join(
            f"- {strategy_label(s)} at {labels_per_class_text(k)}: **{v:.1f}%**"
            for s, k, v in predictions))
    else:
        st.caption("No predictions sent yet.")
    answered = [(q, q.options[answers[q.id]]) for q in questions
                if q.id in answers and answers[q.id] < len(q.options)]
    if answered:
        st.markdown("**Your quiz answers**\n\n" + "\n".join(f"- {q.prompt} — *{choice}*"
                                                            for q, choice in answered))
    else:
        st.caption("No quiz answers sent yet.")


def curves_link(room: Classroom) -> None:
    """A link to the class's lesson page with its experiment (its settings in the link)."""
    lesson = class_lesson(room)
    try:
        query = class_settings(room).to_query()
    except ValueError:  # settings the page can no longer write: open it with its defaults
        query = None
    st.page_link(lesson.page, label=f"Open the class's {lesson.title}",
                 icon=":material/show_chart:", query_params=query)


# --- the teacher's view -----------------------------------------------------------------------

def teacher_header(link: ClassLink, room: Classroom, now: float) -> None:
    """The code and the QR code of the join link, big enough for a projector; the teacher's
    own link; End the class."""
    url = join_url(st.context.url, room.code)
    left, right = st.columns([3, 2])
    with left, st.container(key="class_code"):
        st.html(CODE_CSS)
        st.metric("Class code", room.code)
        st.markdown(f"Students open **{url}** or scan the code, or type the code on this page.")
        host = urlsplit(url).hostname or ""
        if host in ("localhost", "127.0.0.1", "::1", ""):
            st.warning("Phones cannot open a localhost link: open this page by the server's "
                       "network address (e.g. http://192.168.1.20:8501) and the link follows.",
                       icon=":material/wifi_off:")
        ends = f"Ends in {time_left(room, now)}"
        if not room.students:
            ends = (f"Ends in {time_left(room, now, room.empty_until)} if nobody joins it (a "
                    f"class without students ends {EMPTY_MINUTES} min after it opened)")
        st.caption(f"{ends}; then its entries are deleted. Experiment: "
                   f"{describe_class(room)}.")
        with st.expander("Your teacher link, for another device", icon=":material/key:"):
            teacher_link(link, url)
            if st.button("End the class now", icon=":material/stop_circle:"):
                end_class(link)
    if url.startswith("http"):
        right.image(qr_png(url), width=QR_PIXELS, caption=f"Join class {room.code}")


def teacher_link(link: ClassLink, url: str) -> None:
    """The teacher's secret link, only when asked for (it is never in the address bar): this
    browser reopens the teacher's view by itself; the link opens it on another device."""
    st.markdown("This browser reopens this view by itself after a reload or a server restart. "
                "To open it on another device, use your secret link there: anyone holding it "
                "sees the class's results and can end the class, so never project it.")
    if link.teacher:
        if st.toggle("Show my secret link", key="class.show_link"):
            st.code(f"{url}&{urlencode({'teacher': link.teacher})}", language=None)
    elif st.button("Make a secret link", icon=":material/key:",
                   help="A new link for another device; a link made before stops working."):
        try:
            token = class_store().rekey(link.code, who())
        except ValueError as err:
            st.error(f"{err}", icon=":material/error:")
            return
        use_link(replace(link, teacher=token))
        st.session_state["class.show_link"] = True
        st.rerun()



def end_class(link: ClassLink) -> None:
    """Remove the class now (its entries too), or say why it could not be."""
    try:
        class_store().close(link.code, link.teacher, who())
    except ValueError as err:
        st.error(f"{err}", icon=":material/error:")
        return
    use_link(None)
    st.rerun()


@st.fragment(run_every=REFRESH_SECONDS)
def class_results(code: str) -> None:
    """The class's pooled entries, read again every REFRESH_SECONDS: how many joined and sent,
    the predictions against the runs (once the class is revealed), and the answers per
    question."""
    try:
        room = class_store().load(code, allow_expired=True)
    except ValueError as err:
        st.error(f"{err}", icon=":material/error:")
        return
    reveal = room.revealed
    if room.recovered or room.damaged:
        st.warning("Part of this class's file was damaged on the server: "
                   + ("its settings were read from their last good copy. " if room.recovered else "")
                   + (f"{plural(room.damaged, 'entry', 'entries')} could not be read and "
                      "are left out (the last good copy fills in what it has). "
                      if room.damaged else "")
                   + "Everything else is shown, and new entries are recorded as usual.",
                   icon=":material/healing:")
    library = loaded_content("The quiz questions")
    students = list(room.students.values())
    with st.container(horizontal=True, gap="large"):  # one row that wraps, also on a phone
        st.metric("Students joined", len(students), width="content")
        st.metric("Sent predictions", sum(bool(s.predictions) for s in students), width="content")
        st.metric("Sent quiz answers", sum(bool(s.answers) for s in students), width="content")
    st.subheader("The class's predictions")
    class_predictions(room, reveal)
    if library is not None:
        st.subheader("The class's answers")
        class_answers(room, class_questions(room, library), reveal)


def class_runs(room: Classroom) -> pd.DataFrame:
    """The runs of the class's experiment, found as its lesson's page finds them: the store,
    else the sections pack (precomputed by the same code); where they come from, and what is
    missing, in a caption."""
    settings, title = class_settings(room), class_lesson(room).title
    records, total = stored(settings), len(settings.experiment().units())
    pack = packed(settings)
    if pack is not None:
        st.caption(f"The runs' means come from the lesson pack where this server has not "
                   f"trained them: {pack['units']} of {plural(pack['total'], 'run')} trained ahead "
                   f"of time by the same code on {pack.get('device', '?')} on "
                   f"{str(pack.get('built_at', ''))[:10]}. Running them on {title} "
                   "stores this server's own.")
    elif len(records) < total:
        st.caption(f"{len(records)} of {plural(total, 'run')} of the class's experiment are "
                   "stored so far: a size or strategy without runs has no mean yet.")
    return records


def measured_means(room: Classroom, reveal: bool) -> dict[tuple[str, int], tuple[float, int]]:
    """(strategy, size) -> (mean test accuracy, seeds) of the class's experiment's runs;
    nothing when they are hidden or none is stored (each said on the page)."""
    spec = room.spec()
    if not reveal:
        st.caption("The runs' results are hidden, so the class predicts without them: turn on "
                   f"**{REVEAL}** above to draw them.")
        return {}
    records = class_runs(room)
    if records.empty:
        st.info(f"None of the {plural(len(spec.units()), 'run')} of the class's experiment "
                f"is stored yet, so there is nothing to compare with: open it on "
                f"{class_lesson(room).title} "
                "and press Run.", icon=":material/info:")
        curves_link(room)
        return {}
    summary = summarize(records)
    return {(s, size.count): (float(m), int(n)) for s, size, m, n in
            zip(summary["strategy"], summary["size"], summary["mean"], summary["seeds"])
            if not size.every}


def in_pairs(items: Sequence[T]) -> Iterator[tuple[T, Any]]:
    """Each item with its cell, in rows of two columns, so a phone stacks them in order."""
    for i, item in enumerate(items):
        if i % 2 == 0:
            columns = st.columns(2)
        yield item, columns[i % 2]


def class_predictions(room: Classroom, reveal: bool) -> None:
    """One chart per size the class predicts: each strategy's predictions as a box with every
    point, and the runs' mean where it is stored and shown."""
    spec = room.spec()
    sizes = prediction_sizes(spec)
    measured = measured_means(room, reveal)
    pooled = room.predictions()
    if not pooled:
        st.caption(f"No predictions yet: students save them on {class_lesson(room).title}.")
        return
    for k, cell in in_pairs(sizes):
        entries = {s: [v for ps, pk, v in pooled if ps == s and pk == k] for s in spec.strategies}
        figure = prediction_figure(k, entries, {s: measured.get((s, k)) for s in spec.strategies})
        show_chart(figure, f"class.predictions.{k}", name=f"class-predictions-{k}-labels",
                   area=cell)


def prediction_figure(k: int, entries: Mapping[str, list[float]],
                      measured: Mapping[str, Optional[tuple[float, int]]]) -> go.Figure:
    """The class's predictions at `k` labels per class: per strategy a box of its predictions
    with every one drawn as a point (its count under its name), in the strategy's colour, and
    the runs' mean as a black bar where given."""
    fig, order = go.Figure(), list(entries)
    shown_measured = False
    for strategy, values in entries.items():
        color, name = strategy_color(strategy, order), f"{strategy_label(strategy)}<br>({len(values)})"
        fig.add_trace(go.Box(
            y=values, x=[name] * len(values), name=name, boxpoints="all", jitter=0.5, pointpos=0,
            marker={"color": color, "size": 9, "opacity": 0.8}, line={"color": color},
            fillcolor=rgba(color, 0.15), showlegend=False,
            hovertemplate=f"<b>{strategy_label(strategy)}</b><br>predicted: %{{y:.1f}}%"
                          "<extra></extra>"))
        if measured.get(strategy) is not None:
            mean, seeds = measured[strategy]
            fig.add_trace(go.Scatter(
                x=[name], y=[mean], mode="markers", name="the runs' mean",
                legendgroup="measured", showlegend=not shown_measured,
                marker={"symbol": "line-ew", "size": 46, "line": {"width": 5, "color": "#1A1A1A"}},
                hovertemplate=f"<b>{strategy_label(strategy)}</b><br>the runs' mean: "
                              f"{mean:.1f}% over {plural(seeds, 'seed')}<extra></extra>"))
            shown_measured = True
    names = [f"{strategy_label(s)}<br>({len(v)})" for s, v in entries.items()]
    fig.add_trace(go.Scatter(x=names, y=[None] * len(names), mode="markers", showlegend=False,
                             hoverinfo="skip"))  # every strategy on the axis, predicted or not
    fig.update_yaxes(title="test accuracy (%)", range=[0, 101])
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=names)
    fig.update_layout(title=labels_per_class_text(k), hovermode="closest")
    return chart_layout(fig, 420, top=50)


def class_answers(room: Classroom, questions: list[Question], reveal: bool) -> None:
    """Per class question, in the quiz's words: how many students picked each option, the
    right one marked when `reveal` (else the projector would give it away)."""
    if not questions:
        st.caption("The quiz no longer has this class's questions.")
        return
    if not reveal:
        st.caption(f"The right answers are not marked yet: turn on **{REVEAL}** above once the "
                   "class has answered.")
    for i, (question, cell) in enumerate(in_pairs(questions)):
        counts = room.answer_counts(question.id, len(question.options))
        total = sum(counts)
        right = counts[question.options.index(question.answer)]
        with cell.container(border=True):
            st.markdown(f"**{i + 1}. {question.prompt}**")
            right_text = f" · {right} right" if reveal else ""
            st.caption(f"{plural(total, 'answer')}{right_text}" if total else "No answers yet.")
            for option, count in zip(question.options, counts):
                mark = "✓ right answer: " if reveal and option == question.answer else ""
                st.progress(count / total if total else 0.0, text=f"{mark}{option} — **{count}**")


# Predict first and the quiz announce their learner's actions; class mode passes them on.
listen(PREDICTIONS_SAVED, send_predictions)
listen(QUESTION_ANSWERED, send_answer)
listen(RESULTS_HELD, held_for_class)
listen(EARLIER_PREDICTIONS, earlier_predictions)
listen(TEACHING, teaching)
