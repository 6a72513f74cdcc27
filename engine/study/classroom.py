"""Class mode's store: a teacher opens a class, students join it anonymously and send their
Predict-first entries and quiz answers, and the teacher's view reads them back pooled.

No accounts. A class has a short code (`CODE_LENGTH` characters from `CODE_ALPHABET`, which
leaves out look-alikes such as 0/O and 1/I/L) that students type or scan, and a secret teacher
token that only the teacher's link carries; the file keeps only the token's SHA-256, so reading
the file does not give the teacher's view away. A student is a random id (`STUDENT_ID`): no
name is ever asked for or stored, so nothing a student sends can be shown with a name.

A class is attached to one Transfer curves experiment (strategies, labels per class, seeds:
the fields the lesson's settings choose, `Classroom.spec()` its `SweepSpec`) and to one list of
quiz questions (a question set's id and the ids drawn from it), so every student predicts the
same strategies and sizes and answers the same questions. A student's predictions are replaced
by each new save (their latest guesses count); only a student's first answer to a question
counts (a retry comes after the explanation, so it says nothing about what they thought).

Blind until revealed: a class starts with `revealed` false, and while it is, the app keeps the
runs' results and the quiz's right answers from its students (they predict and answer blind);
the teacher's `reveal` sets it for every student at once (the token is required).

Files: one JSON file per class, `<home>/classes/<CODE>.json`, written whole through a temporary
file and a rename (`engine.core.store.write_atomic`), every read-modify-write under one lock file
for the folder (`classes/.lock`, `filelock`), so students sending at once never lose an entry,
and the classes survive a server restart. Everything read back is validated; a damaged file is
a `ClassError` with a sentence, never a crash.

Expiry: a class lasts `MIN_HOURS` to `MAX_HOURS` hours (`DEFAULT_HOURS` unless the teacher
says); after that joining and sending are refused and `purge_expired()` (run whenever a class is
opened) removes its file. Caps: `MAX_STUDENTS` per class, `MAX_PREDICTIONS` and `MAX_ANSWERS`
per student, `MAX_CLASS_BYTES` per class file, `MAX_OPEN_CLASSES` on the server; over a cap the
request is refused with a sentence (`ClassFull`). The clock is injectable, for tests.

Nothing here draws, trains or knows the quiz's wording (the app checks an answer against its
question before sending its option's position).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional

from filelock import FileLock, Timeout

from engine.core.datasets import ALL_LABELS
from engine.core.store import home_dir, write_atomic
from engine.experiments.sweep import SweepSpec
from engine.study.content import ID_PATTERN, MAX_OPTIONS
from engine.study.predictions import check_prediction

FORMAT = 1  # the file layout's version; a file of another version is refused as unreadable
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: easy to read off a projector
CODE_LENGTH = 6  # 31**6, about 900 million codes
CODE = re.compile(f"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")
STUDENT_ID = re.compile(r"^[0-9a-f]{16}$")  # what secrets.token_hex(8) writes
TEACHER_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")  # what secrets.token_urlsafe(24) writes
MIN_HOURS, MAX_HOURS, DEFAULT_HOURS = 1, 8, 2  # how long a class lasts
MAX_STUDENTS = 300  # students who may join one class
MAX_PREDICTIONS = 64  # predictions per student (6 strategies x 4 sizes is the most asked)
MAX_ANSWERS = 100  # quiz answers per student (at most MAX_QUESTIONS count)
MAX_QUESTIONS = 100  # questions a class's quiz may ask
MAX_CLASS_BYTES = 1_000_000  # one class file; 300 full students take about a third of it
MAX_OPEN_CLASSES = 100  # classes open at once on one server
LOCK_TIMEOUT_S = 10.0  # waiting longer for the folder's lock is reported, not waited out


class ClassError(ValueError):
    """A class that cannot be used (unknown, ended, damaged) or a request it refuses; the
    message is a full sentence for the page."""


class ClassFull(ClassError):
    """A cap is reached: students, entries, bytes, or open classes."""


def normalize_code(text: str) -> str:
    """A typed code as stored: upper case, without spaces or dashes ('k7m x3p' -> 'K7MX3P').
    ValueError says what a code looks like."""
    code = re.sub(r"[\s-]", "", str(text)).upper()
    if not CODE.match(code):
        raise ValueError(f"a class code is {CODE_LENGTH} letters and digits, like K7MX3P "
                         "(no 0, O, 1, I or L)")
    return code


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Student:
    joined_at: float  # seconds since the epoch
    predictions: tuple[tuple[str, int, float], ...] = ()  # (strategy, labels per class, %)
    answers: tuple[tuple[str, int], ...] = ()  # (question id, position among its options)

    @property
    def sent(self) -> bool:
        return bool(self.predictions or self.answers)

    def to_json(self) -> dict:
        return {"joined_at": self.joined_at, "predictions": [list(p) for p in self.predictions],
                "answers": dict(self.answers)}


@dataclass(frozen=True)
class Classroom:
    """One class as read back from its file (a snapshot: the file may change after)."""

    code: str  # what students type
    teacher: str  # SHA-256 of the teacher's token
    created_at: float  # seconds since the epoch
    expires_at: float  # joining and sending are refused from then on
    strategies: tuple[str, ...]  # the Transfer curves experiment: its strategies,
    labels_per_class: tuple[int, ...]  # its labelled-set sizes (ALL_LABELS: all),
    seeds: int  # and its seeds per point
    question_set: str  # the quiz's question set the questions come from
    questions: tuple[str, ...]  # the question ids every student is asked, in order
    students: Mapping[str, Student] = field(default_factory=dict)  # by random id
    revealed: bool = False  # the teacher has shown the results and the right answers

    def spec(self) -> SweepSpec:
        return SweepSpec(strategies=self.strategies, labels_per_class=self.labels_per_class,
                         seeds=self.seeds)

    def is_teacher(self, token: str) -> bool:
        return hmac.compare_digest(self.teacher, token_hash(str(token)))

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def predictions(self) -> list[tuple[str, int, float]]:
        """Every student's predictions, pooled (no student ids)."""
        return [p for student in self.students.values() for p in student.predictions]

    def answer_counts(self, question_id: str, n_options: int) -> list[int]:
        """How many students picked each option of a question (by position among its
        options); answers at a position the question does not have are left out."""
        counts = [0] * n_options
        for student in self.students.values():
            position = dict(student.answers).get(question_id)
            if position is not None and position < n_options:
                counts[position] += 1
        return counts

    def to_json(self) -> dict:
        return {"format": FORMAT, "code": self.code, "teacher": self.teacher,
                "created_at": self.created_at, "expires_at": self.expires_at,
                "experiment": {"strategies": list(self.strategies),
                               "labels_per_class": list(self.labels_per_class),
                               "seeds": self.seeds},
                "quiz": {"set": self.question_set, "questions": list(self.questions)},
                "students": {sid: s.to_json() for sid, s in self.students.items()},
                "revealed": self.revealed}


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} is not a number")
    return float(value)


def _student(raw) -> Student:
    if not isinstance(raw, dict) or set(raw) != {"joined_at", "predictions", "answers"}:
        raise ValueError("a student entry has unexpected fields")
    predictions, answers = raw["predictions"], raw["answers"]
    if not isinstance(predictions, list) or len(predictions) > MAX_PREDICTIONS:
        raise ValueError("a student's predictions are not a list of at most "
                         f"{MAX_PREDICTIONS}")
    if not isinstance(answers, dict) or len(answers) > MAX_ANSWERS:
        raise ValueError(f"a student's answers are not a mapping of at most {MAX_ANSWERS}")
    checked = []
    for entry in predictions:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], int) and not isinstance(entry[1], bool)):
            raise ValueError("a prediction is not [strategy, labels per class, accuracy]")
        checked.append((entry[0], entry[1], check_prediction(entry[2])))
    for question, position in answers.items():
        if (not ID_PATTERN.match(question) or isinstance(position, bool)
                or not isinstance(position, int) or not 0 <= position < MAX_OPTIONS):
            raise ValueError("an answer is not a question id and an option's position")
    return Student(_number(raw["joined_at"], "a join time"), tuple(checked),
                   tuple(answers.items()))


def parse_classroom(raw, code: str) -> Classroom:
    """A class file's JSON as a `Classroom`; ValueError names what is wrong."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(f"it is not a class file of format {FORMAT}")
    if raw.get("code") != code:
        raise ValueError("its code does not match its file name")
    experiment, quiz, students = raw.get("experiment"), raw.get("quiz"), raw.get("students")
    if not (isinstance(experiment, dict) and isinstance(quiz, dict) and isinstance(students, dict)):
        raise ValueError("its experiment, quiz or students are missing")
    teacher = raw.get("teacher")
    if not isinstance(teacher, str) or not re.fullmatch(r"[0-9a-f]{64}", teacher):
        raise ValueError("its teacher token is missing")
    if len(students) > MAX_STUDENTS or not all(STUDENT_ID.match(str(s)) for s in students):
        raise ValueError("its students are not valid ids")
    revealed = raw.get("revealed", False)  # absent in the files of classes opened before it
    if not isinstance(revealed, bool):
        raise ValueError("its 'revealed' is not true or false")
    lists = (experiment.get("strategies"), experiment.get("labels_per_class"),
             quiz.get("questions"))
    if not all(isinstance(items, list) for items in lists) \
            or not all(isinstance(s, str) for s in lists[0]):
        raise ValueError("its experiment or questions are not lists")
    try:
        room = Classroom(code, teacher, _number(raw.get("created_at"), "its creation time"),
                         _number(raw.get("expires_at"), "its end"), tuple(lists[0]),
                         tuple(lists[1]), experiment["seeds"], quiz["set"], tuple(lists[2]),
                         {sid: _student(s) for sid, s in students.items()}, revealed)
        check_quiz(room.question_set, room.questions)
        room.spec()  # validates the experiment (ValueError)
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"a field is missing or of the wrong type ({err})") from err
    return room


def check_quiz(question_set: str, questions: Iterable[str]) -> None:
    questions = list(questions)
    if not isinstance(question_set, str) or not ID_PATTERN.match(question_set):
        raise ValueError("the quiz's question set is not a set id")
    if not questions or len(questions) > MAX_QUESTIONS or len(set(questions)) != len(questions):
        raise ValueError(f"a class asks from 1 to {MAX_QUESTIONS} different questions")
    if not all(isinstance(q, str) and ID_PATTERN.match(q) for q in questions):
        raise ValueError("a class's questions must be question ids")


class ClassStore:
    """The classes of one data directory (`<home>/classes` unless `folder` is given). `clock`
    gives the time in seconds since the epoch (tests pass their own)."""

    def __init__(self, folder: Optional[Path | str] = None,
                 clock: Callable[[], float] = time.time):
        self.folder = Path(folder) if folder is not None else home_dir() / "classes"
        self.clock = clock

    def _path(self, code: str) -> Path:
        return self.folder / f"{code}.json"

    def _lock(self) -> FileLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.folder / ".lock"), timeout=LOCK_TIMEOUT_S)

    def _locked(self):
        try:
            return self._lock().acquire()
        except Timeout as err:
            raise ClassError("The class store is busy; try again in a moment.") from err

    def _write(self, room: Classroom) -> None:
        data = json.dumps(room.to_json(), separators=(",", ":")).encode()
        if len(data) > MAX_CLASS_BYTES:
            raise ClassFull(f"Class {room.code} holds as much as one class may "
                            f"({MAX_CLASS_BYTES // 1000:,} kB); nothing more can be added.")
        write_atomic(self._path(room.code), lambda f: f.write(data))

    def _read(self, code: str) -> Classroom:
        path = self._path(code)
        try:
            if path.stat().st_size > MAX_CLASS_BYTES:
                raise ClassError(f"The file of class {code} is larger than a class may be, so "
                                 "it was not read.")
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ClassError(f"No open class has the code {code}: check the code, or the class "
                             "has ended (a class lasts at most "
                             f"{MAX_HOURS} hours).") from None
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise ClassError(f"The file of class {code} cannot be read ({err}).") from err
        try:
            return parse_classroom(raw, code)
        except ValueError as err:
            raise ClassError(f"The file of class {code} is damaged: {err}.") from err

    def load(self, code: str, allow_expired: bool = False) -> Classroom:
        """The class with `code` (typed or linked; `normalize_code` reads it). ClassError when
        none is open under it, its file is damaged, or it has ended (its file is then removed;
        `allow_expired` reads it anyway)."""
        room = self._read(normalize_code(code))
        if room.expired(self.clock()) and not allow_expired:
            self._path(room.code).unlink(missing_ok=True)  # nothing writes to an ended class
            raise ClassError(f"Class {room.code} has ended: it no longer takes students or "
                             "answers, and its entries were deleted from the server.")
        return room

    def purge_expired(self) -> int:
        """Remove the files of classes that have ended (and of damaged ones older than the
        longest class); returns how many were removed."""
        removed, now = 0, self.clock()
        if not self.folder.is_dir():
            return 0
        with self._locked():
            for path in self.folder.glob("*.json"):
                try:
                    ended = self._read(path.stem).expired(now)
                except ClassError:
                    ended = path.stat().st_mtime < now - MAX_HOURS * 3600
                if ended:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    def open_class(self, spec: SweepSpec, question_set: str, questions: Iterable[str],
                   hours: float = DEFAULT_HOURS) -> tuple[Classroom, str]:
        """Open a class on `spec`'s strategies, sizes and seeds and the quiz `questions` of
        `question_set`, lasting `hours`; returns it and the teacher's token (shown once, in
        the teacher's link). ValueError for bad settings, ClassFull over MAX_OPEN_CLASSES."""
        if isinstance(hours, bool) or not MIN_HOURS <= hours <= MAX_HOURS:
            raise ValueError(f"a class lasts from {MIN_HOURS} to {MAX_HOURS} hours")
        questions = tuple(questions)
        check_quiz(question_set, questions)
        self.purge_expired()
        token = secrets.token_urlsafe(24)
        with self._locked():
            if len(list(self.folder.glob("*.json"))) >= MAX_OPEN_CLASSES:
                raise ClassFull(f"This server has {MAX_OPEN_CLASSES} open classes, the most it "
                                "keeps; try again when one has ended.")
            code = self._new_code()
            now = self.clock()
            room = Classroom(code, token_hash(token), now, now + hours * 3600, spec.strategies,
                             spec.labels_per_class, spec.seeds, question_set, questions)
            self._write(room)
        return room, token

    def _new_code(self) -> str:
        while True:
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if not self._path(code).exists():
                return code

    def _update(self, code: str, student_id: str,
                change: Callable[[Classroom, Student], Student]) -> Classroom:
        """Load the open class, give the student `change(room, student)`, write it back: all
        under the folder's lock, so concurrent students never overwrite each other."""
        with self._locked():
            room = self.load(code)
            student = room.students.get(student_id)
            if student is None:
                raise ClassError(f"You are not among the students of class {room.code}: join "
                                 "it again with its code.")
            students = dict(room.students)
            students[student_id] = change(room, student)
            room = Classroom(**{**room.__dict__, "students": students})
            self._write(room)
            return room

    def join(self, code: str) -> str:
        """Add an anonymous student to the open class; returns their new random id."""
        with self._locked():
            room = self.load(code)
            if len(room.students) >= MAX_STUDENTS:
                raise ClassFull(f"Class {room.code} is full: {MAX_STUDENTS} students have "
                                "joined it.")
            student_id = secrets.token_hex(8)
            students = {**room.students, student_id: Student(self.clock())}
            self._write(Classroom(**{**room.__dict__, "students": students}))
            return student_id

    def send_predictions(self, code: str, student_id: str,
                         predictions: Mapping[tuple[str, int], float]) -> int:
        """Replace the student's predictions with `predictions` ((strategy, labels per class)
        -> %) for the class's strategies and sizes; returns how many were kept. ValueError for
        a prediction outside the class's experiment or not a percentage."""
        if len(predictions) > MAX_PREDICTIONS:
            raise ClassFull(f"A student sends at most {MAX_PREDICTIONS} predictions.")

        def change(room: Classroom, student: Student) -> Student:
            sizes = [k for k in room.labels_per_class if k != ALL_LABELS]
            entries = []
            for (strategy, k), value in sorted(predictions.items()):
                if strategy not in room.strategies or k not in sizes:
                    raise ValueError(f"class {room.code} predicts {', '.join(room.strategies)} "
                                     f"at {', '.join(map(str, sizes))} labels per class")
                entries.append((strategy, int(k), check_prediction(value)))
            return Student(student.joined_at, tuple(entries), student.answers)

        self._update(code, student_id, change)
        return len(predictions)

    def send_answer(self, code: str, student_id: str, question_id: str, position: int) -> bool:
        """Record the student's answer to one of the class's questions (the chosen option's
        position among the question's options, as written). Only a first answer counts:
        returns False, changing nothing, when the student has answered it already."""
        if isinstance(position, bool) or not isinstance(position, int) \
                or not 0 <= position < MAX_OPTIONS:
            raise ValueError("an answer is the position of one of the question's options")
        first = []

        def change(room: Classroom, student: Student) -> Student:
            if question_id not in room.questions:
                raise ValueError(f"class {room.code} does not ask this question")
            if question_id in dict(student.answers):
                return student
            first.append(True)
            return Student(student.joined_at, student.predictions,
                           (*student.answers, (question_id, position)))

        self._update(code, student_id, change)
        return bool(first)

    def reveal(self, code: str, token: str, revealed: bool = True) -> Classroom:
        """Show (or hide again) the results and the right answers to every student of the open
        class; the teacher's token is required. Returns the class as written."""
        with self._locked():
            room = self.load(code)
            if not room.is_teacher(token):
                raise ClassError(f"This link is not the teacher's link of class {room.code}.")
            room = Classroom(**{**room.__dict__, "revealed": bool(revealed)})
            self._write(room)
            return room

    def close(self, code: str, token: str) -> None:
        """End the class now (the teacher's token is required): its file is removed."""
        with self._locked():
            room = self.load(code, allow_expired=True)
            if not room.is_teacher(token):
                raise ClassError(f"This link is not the teacher's link of class {room.code}.")
            self._path(room.code).unlink(missing_ok=True)
