"""Class mode's store: a teacher opens a class, students join it anonymously and send their
Predict-first entries and quiz answers, and the teacher's view reads them back pooled.

No accounts. A class has a short code (`CODE_LENGTH` characters from `CODE_ALPHABET`, which
leaves out look-alikes such as 0/O and 1/I/L) that students type or scan, and a secret teacher
token that only the teacher's secret link carries; the file keeps only the token's SHA-256, so
reading the file does not give the teacher's view away. A student is a random id (`STUDENT_ID`): no
name is ever asked for or stored, so nothing a student sends can be shown with a name.

A class is attached to one curves experiment, on Transfer curves (digits) or on Transfer on
text (one of the shipped corpora, `target`): its strategies, labels per class and seeds, the
fields those lessons' settings choose (`Classroom.spec()` its `SweepSpec` or `TextSweepSpec`,
`Classroom.lesson` the lesson's name), and to one list of quiz questions (a question set's id and the ids drawn from it), so every student predicts the
same strategies and sizes and answers the same questions. A student's predictions are replaced
by each new save (their latest guesses count); only a student's first answer to a question
counts (a retry comes after the explanation, so it says nothing about what they thought).

Blind until revealed: a class starts with `revealed` false, and while it is, the app keeps the
runs' results and the quiz's right answers from its students (they predict and answer blind);
the teacher's `reveal` sets it for every student at once (the token or the teacher's browser is
required).

Files: a folder per class, `<home>/classes/<CODE>/`, with its own lock: a header and a journal
of one line per entry, each with a last good copy (`ClassStore` says how), so students sending
at once never lose an entry nor wait for another class, a damaged file is read from its copy,
and the classes survive a server restart. Everything read back is validated; a file that cannot
be used is a `ClassError` with a sentence, never a crash.

Who is who: the teacher holds a secret token (its SHA-256 is kept) and the browser that opened
the class (a hash of its visitor id, `engine.core.quotas`); a student is the random id they
joined under, with a hash of their browser's visitor id, so the same browser finds its id
again and no link has to carry it.

Expiry: a class lasts `MIN_HOURS` to `MAX_HOURS` hours (`DEFAULT_HOURS` unless the teacher
says), one nobody joined ends `EMPTY_MINUTES` after it opened; after that joining and sending
are refused and `purge_expired()` (run whenever a class is opened) removes it. Caps:
`MAX_STUDENTS` per class, `MAX_PREDICTIONS` and `MAX_ANSWERS` per student, `MAX_CLASS_BYTES` per
journal, `MAX_OPEN_CLASSES` on the server, and per visitor and address the quotas of
`engine.core.quotas` (open classes, joins, wrong codes, students from one address, sends); over
one the request is refused with a sentence (`ClassFull`, `QuotaError`). The clock is injectable,
for tests.

Nothing here draws, trains or knows the quiz's wording (the app checks an answer against its
question before sending its option's position).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping, Optional

from filelock import FileLock, Timeout

from engine.core import quotas
from engine.core.datasets import ALL_LABELS
from engine.core.quotas import NOBODY, QuotaError, Who, Window
from engine.core.store import home_dir, write_atomic
from engine.core.text import TEXT_DATASETS
from engine.experiments.sweep import SweepSpec
from engine.experiments.text_sweep import TextSweepSpec
from engine.study.content import ID_PATTERN, MAX_OPTIONS
from engine.study.predictions import check_prediction

FORMAT = 2  # the header's version (1: one file per class with its students, read and migrated)
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: easy to read off a projector
CODE_LENGTH = 6  # 31**6, about 900 million codes
CODE = re.compile(f"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")
STUDENT_ID = re.compile(r"^[0-9a-f]{16}$")  # what secrets.token_hex(8) writes
TEACHER_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")  # what secrets.token_urlsafe(24) writes
MIN_HOURS, MAX_HOURS, DEFAULT_HOURS = 1, 8, 2  # how long a class lasts
MAX_STUDENTS = 300  # students who may join one class
CURVES_LESSON, TEXT_LESSON = "transfer_curves", "transfer_on_text"  # the lessons a class predicts on
MAX_PREDICTIONS = 64  # predictions per student (6 strategies x 4 sizes is the most asked)
MAX_ANSWERS = 100  # quiz answers per student (at most MAX_QUESTIONS count)
MAX_QUESTIONS = 100  # questions a class's quiz may ask
MAX_CLASS_BYTES = 1_000_000  # one class's journal; 300 full students take about a third of it
MAX_HEADER_BYTES = 100_000  # a class's header (100 question ids take about 7 kB)
COMPACT_BYTES = 600_000  # a longer journal is rewritten with one line per student first
GOOD_COPY_EVERY = 8_000  # bytes appended between two refreshes of the journal's last good copy
MAX_OPEN_CLASSES = 100  # classes open at once on one server
MAX_DEVICES = 8  # browsers besides the opener's where the teacher's secret link was opened
EMPTY_MINUTES = 30  # a class nobody has joined ends this long after it opened
LOCK_TIMEOUT_S = 10.0  # waiting longer for a class's lock is reported, not waited out


class ClassError(ValueError):
    """A class that cannot be used (unknown, ended, damaged) or a request it refuses; the
    message is a full sentence for the page."""


class ClassFull(ClassError):
    """A cap is reached: students, entries, bytes, or open classes."""


class ClassGone(ClassError):
    """No open class has the code: it never existed, or it has ended."""


class ClassDamaged(ClassError):
    """The class's files cannot be read now (damaged beyond their good copies)."""


def normalize_code(text: str) -> str:
    """A typed code as stored: upper case, without spaces or dashes ('k7m x3p' -> 'K7MX3P').
    ValueError says what a code looks like."""
    code = re.sub(r"[\s-]", "", str(text)).upper()
    if not CODE.fullmatch(code):
        raise ValueError(f"a class code is {CODE_LENGTH} letters and digits, like K7MX3P "
                         "(no 0, O, 1, I or L)")
    return code


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_hash(key: str) -> str:
    """What a class keeps of a visitor's or an address's quota key: enough to count them, not
    to tell who they are."""
    return hashlib.sha256(f"transferlab-class/{key}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Student:
    joined_at: float  # seconds since the epoch
    predictions: tuple[tuple[str, int, float], ...] = ()  # (strategy, labels per class, %)
    answers: tuple[tuple[str, int], ...] = ()  # (question id, position among its options)
    visitor: str = ""  # a hash of the visitor who joined (`key_hash`; "" when unknown)
    address: str = ""  # a hash of their address

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
    owner: str = ""  # a hash of the visitor who opened it (`key_hash`)
    owner_address: str = ""  # a hash of their address
    devices: tuple[str, ...] = ()  # hashes of the teacher's other browsers (a secret link opened there)
    damaged: int = 0  # entries of its journal that could not be read and were left out
    recovered: bool = False  # its header was read from the last good copy
    # "" for Transfer curves' digits (every class opened before text classes); else the
    # shipped text corpus (TEXT_DATASETS) of a Transfer on text experiment
    target: str = ""

    @property
    def lesson(self) -> str:
        """The lesson whose Predict first the class pools: its page's name."""
        return TEXT_LESSON if self.target else CURVES_LESSON

    def spec(self) -> SweepSpec | TextSweepSpec:
        if self.target:
            return TextSweepSpec(target=self.target, strategies=self.strategies,
                                 labels_per_class=self.labels_per_class, seeds=self.seeds)
        return SweepSpec(strategies=self.strategies, labels_per_class=self.labels_per_class,
                         seeds=self.seeds)

    def is_teacher(self, token: Optional[str]) -> bool:
        return token is not None and hmac.compare_digest(self.teacher, token_hash(str(token)))

    def owned_by(self, who: Who) -> bool:
        """Whether `who` is the teacher's browser: the one that opened the class, or one where
        the teacher's secret link was opened (a visitor cookie is required)."""
        return bool(who.visitor) and key_hash(who.visitor_key) in (self.owner, *self.devices)

    def expired(self, now: float) -> bool:
        """Ended: its time is up, or nobody joined within EMPTY_MINUTES of its opening."""
        return now >= self.expires_at or (not self.students and now >= self.empty_until)

    @property
    def empty_until(self) -> float:
        return self.created_at + EMPTY_MINUTES * 60

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

    def header_json(self) -> dict:
        """The class without its students: its `class.json` (format 2)."""
        return {"format": FORMAT, "code": self.code, "teacher": self.teacher,
                "created_at": self.created_at, "expires_at": self.expires_at,
                "experiment": {"strategies": list(self.strategies),
                               "labels_per_class": list(self.labels_per_class),
                               "seeds": self.seeds, **({"target": self.target} if self.target
                                                       else {})},
                "quiz": {"set": self.question_set, "questions": list(self.questions)},
                "revealed": self.revealed, "owner": self.owner,
                "owner_address": self.owner_address, "devices": list(self.devices)}


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
        if (not ID_PATTERN.fullmatch(question) or isinstance(position, bool)
                or not isinstance(position, int) or not 0 <= position < MAX_OPTIONS):
            raise ValueError("an answer is not a question id and an option's position")
    return Student(_number(raw["joined_at"], "a join time"), tuple(checked),
                   tuple(answers.items()))


def parse_classroom(raw, code: str) -> Classroom:
    """A class's JSON as a `Classroom`: a header (format 2, no students) or a whole class file
    of format 1 (students inside); ValueError names what is wrong."""
    if not isinstance(raw, dict) or raw.get("format") not in (1, FORMAT):
        raise ValueError(f"it is not a class file of format {FORMAT}")
    if raw.get("format") == FORMAT:
        raw = {**raw, "students": {}}
    owner, owner_address = raw.get("owner", ""), raw.get("owner_address", "")
    devices = raw.get("devices", [])
    if not isinstance(devices, list) or len(devices) > MAX_DEVICES or not all(
            isinstance(h, str) and re.fullmatch(r"[0-9a-f]{0,16}", h)
            for h in (owner, owner_address, *devices)):
        raise ValueError("its owner is not a visitor's hash")
    if raw.get("code") != code:
        raise ValueError("its code does not match its file name")
    experiment, quiz, students = raw.get("experiment"), raw.get("quiz"), raw.get("students")
    if not (isinstance(experiment, dict) and isinstance(quiz, dict) and isinstance(students, dict)):
        raise ValueError("its experiment, quiz or students are missing")
    teacher = raw.get("teacher")
    if not isinstance(teacher, str) or not re.fullmatch(r"[0-9a-f]{64}", teacher):
        raise ValueError("its teacher token is missing")
    if len(students) > MAX_STUDENTS or not all(STUDENT_ID.fullmatch(str(s)) for s in students):
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
                         {sid: _student(s) for sid, s in students.items()}, revealed, owner,
                         owner_address, tuple(devices))
        target = experiment.get("target", "")  # absent in every class of the digits
        if target and target not in TEXT_DATASETS:
            raise ValueError("its experiment's corpus is not one the app ships")
        room = replace(room, target=target)
        check_quiz(room.question_set, room.questions)
        room.spec()  # validates the experiment (ValueError)
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"a field is missing or of the wrong type ({err})") from err
    return room


def check_quiz(question_set: str, questions: Iterable[str]) -> None:
    questions = list(questions)
    if not isinstance(question_set, str) or not ID_PATTERN.fullmatch(question_set):
        raise ValueError("the quiz's question set is not a set id")
    if not questions or len(questions) > MAX_QUESTIONS or len(set(questions)) != len(questions):
        raise ValueError(f"a class asks from 1 to {MAX_QUESTIONS} different questions")
    if not all(isinstance(q, str) and ID_PATTERN.fullmatch(q) for q in questions):
        raise ValueError("a class's questions must be question ids")


@dataclass
class _Folded:
    """A class's journal as read so far (the store's in-process cache; the files decide)."""

    signature: tuple  # the header's creation time, the good copy's (inode, size, mtime), the journal's inode
    offset: int  # journal bytes folded so far (always at a line's end)
    students: dict[str, Student]
    damaged: int = 0


_FOLDED: dict[str, _Folded] = {}
_FOLDED_LOCK = threading.Lock()
_JOINS, _WRONG, _SENDS = Window(60.0), Window(60.0), Window(60.0)  # per key, per minute


def _stat(path: Path):
    try:
        return path.stat()
    except OSError:
        return None


class ClassStore:
    """The classes of one data directory (`<home>/classes` unless `folder` is given). `clock`
    gives the time in seconds since the epoch (tests pass their own).

    Each class is a folder, `classes/<CODE>/`: `class.json` (the header: code, teacher token's
    hash, times, experiment, quiz, revealed, the hashes of who opened it) and its last good copy
    `class.good.json`; `entries.jsonl`, a journal with one line per join, predictions save or
    answer, appended under the class's own lock file (`.lock`), so one answer writes one line
    (not the class) and classes never wait for each other; and `entries.good.jsonl`, a copy of
    the journal refreshed every GOOD_COPY_EVERY bytes. Reading folds the good copy, then the
    journal (the same entries twice change nothing: a join is idempotent, the latest
    predictions win, the first answer counts); a line that cannot be read is skipped and
    counted (`Classroom.damaged`), and the next write rewrites the journal clean. A damaged
    header is read from its good copy (`Classroom.recovered`). A journal over COMPACT_BYTES is
    rewritten with one line per student. The server keeps what it has folded and reads only
    the lines appended since, so a class of 300 costs a few lines per request, not the class.

    Quotas (`engine.core.quotas`, with the visitor `who` the pages pass): open classes per
    visitor and per address, joins per minute, students per address in one class, wrong codes
    per minute, sends per minute. Over one, QuotaError (a ValueError) with a sentence."""

    def __init__(self, folder: Optional[Path | str] = None,
                 clock: Callable[[], float] = time.time):
        self.folder = Path(folder) if folder is not None else home_dir() / "classes"
        self.clock = clock

    # ---- files -----------------------------------------------------------------------------

    def _dir(self, code: str) -> Path:
        return self.folder / code

    def _locked(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return FileLock(str(path), timeout=LOCK_TIMEOUT_S).acquire()
        except Timeout as err:
            raise ClassBusy("The class store is busy; try again in a moment.") from err

    def _class_lock(self, code: str):
        return self._locked(self._dir(code) / ".lock")

    def _folder_lock(self):
        return self._locked(self.folder / ".lock")

    def _write_header(self, room: Classroom) -> None:
        data = json.dumps(room.header_json(), separators=(",", ":")).encode()
        folder = self._dir(room.code)
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("class.json", "class.good.json"):
            write_atomic(folder / name, lambda f: f.write(data))

    def _read_header(self, code: str) -> Classroom:
        folder, reasons = self._dir(code), []
        for name in ("class.json", "class.good.json"):
            path = folder / name
            try:
                if path.stat().st_size > MAX_HEADER_BYTES:
                    raise ValueError("it is larger than a class may be")
                room = parse_classroom(json.loads(path.read_text(encoding="utf-8")), code)
            except FileNotFoundError:
                reasons.append("it is missing")
                continue
            except (OSError, UnicodeDecodeError, ValueError) as err:
                reasons.append(str(err))
                continue
            return replace(room, recovered=name != "class.json")
        if not folder.is_dir():
            raise ClassGone(f"No open class has the code {code}: check the code, or the class "
                            f"has ended (a class lasts at most {MAX_HOURS} hours).")
        raise ClassDamaged(f"The file of class {code} is damaged, and so is its last good copy "
                         f"({reasons[0]}).")

    def _fold(self, room: Classroom) -> Classroom:
        """`room` with its students, from the good copy and the journal (new lines only, when
        this process has read the class before)."""
        folder = self._dir(room.code)
        journal, good = folder / "entries.jsonl", folder / "entries.good.jsonl"
        gstat, jstat = _stat(good), _stat(journal)
        signature = (room.created_at, (gstat.st_ino, gstat.st_size, gstat.st_mtime_ns)
                     if gstat else None, jstat.st_ino if jstat else None)
        key = str(folder)
        with _FOLDED_LOCK:
            folded = _FOLDED.get(key)
            if folded is None or folded.signature != signature or \
                    (jstat is not None and jstat.st_size < folded.offset):
                folded = _Folded(signature, 0, {})
                if gstat is not None:
                    self._fold_bytes(room, folded, _read_from(good, 0), count_offset=False)
            if jstat is not None and jstat.st_size > folded.offset:
                self._fold_bytes(room, folded, _read_from(journal, folded.offset))
            if len(_FOLDED) > 256:
                _FOLDED.clear()
            _FOLDED[key] = folded
            return replace(room, students=dict(folded.students), damaged=folded.damaged)

    def _fold_bytes(self, room: Classroom, folded: _Folded, data: bytes,
                    count_offset: bool = True) -> None:
        end = data.rfind(b"\n") + 1  # a line still being written waits for its end
        for line in data[:end].splitlines():
            if line.strip() and not _apply(room, folded.students, line):
                folded.damaged += 1
        if count_offset:
            folded.offset += end

    def _append(self, room: Classroom, entry: dict) -> None:
        """Write one journal line for `room` (its lock held): compacting first when the
        journal is long or has damaged lines, refreshing the good copy every so often."""
        folder = self._dir(room.code)
        journal, good = folder / "entries.jsonl", folder / "entries.good.jsonl"
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
        size = (_stat(journal).st_size if journal.exists() else 0)
        if room.damaged or size + len(line) > COMPACT_BYTES:
            size = self._compact(room)
        if size + len(line) > MAX_CLASS_BYTES:
            raise ClassFull(f"Class {room.code} holds as much as one class may "
                            f"({MAX_CLASS_BYTES // 1000:,} kB); nothing more can be added.")
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        gstat = _stat(good)
        if gstat is None or size + len(line) - gstat.st_size >= GOOD_COPY_EVERY:
            data = _read_from(journal, 0)
            write_atomic(good, lambda f: f.write(data[:data.rfind(b"\n") + 1]))

    def _compact(self, room: Classroom) -> int:
        """Rewrite the journal (and its good copy) as one line per student; returns its size."""
        folder = self._dir(room.code)
        data = b"".join((json.dumps({"kind": "student", "student": sid, **s.to_json(),
                                     "visitor": s.visitor, "address": s.address},
                                    separators=(",", ":")) + "\n").encode()
                        for sid, s in room.students.items())
        for name in ("entries.jsonl", "entries.good.jsonl"):
            write_atomic(folder / name, lambda f: f.write(data))
        return len(data)

    def _migrate(self, code: str) -> None:
        """A class of format 1 (one file, `classes/<CODE>.json`) as a folder of format 2."""
        old = self.folder / f"{code}.json"
        if not old.exists() or self._dir(code).is_dir():
            return
        with self._folder_lock():
            if not old.exists() or self._dir(code).is_dir():
                return
            try:
                room = parse_classroom(json.loads(old.read_text(encoding="utf-8")), code)
            except (OSError, ValueError) as err:
                raise ClassError(f"The file of class {code} is damaged: {err}.") from err
            self._write_header(room)
            self._compact(room)
            old.unlink(missing_ok=True)

    # ---- reading -----------------------------------------------------------------------------

    def load(self, code: str, allow_expired: bool = False) -> Classroom:
        """The class with `code` (typed or linked; `normalize_code` reads it). ClassError when
        none is open under it, its files are damaged beyond their good copies, or it has ended
        (its files are then removed; `allow_expired` reads it anyway)."""
        code = normalize_code(code)
        self._migrate(code)
        room = self._fold(self._read_header(code))
        if room.expired(self.clock()) and not allow_expired:
            shutil.rmtree(self._dir(room.code), ignore_errors=True)  # nothing writes to it now
            raise ClassGone(f"Class {room.code} has ended: it no longer takes students or "
                             "answers, and its entries were deleted from the server.")
        return room

    def find(self, code: str, who: Who = NOBODY, allow_expired: bool = False) -> Classroom:
        """`load` for a code a visitor typed or linked: wrong codes count against them, and
        too many in a minute refuse even a right one for a while (codes are not guessed)."""
        limits = quotas.per_keys(who, "WRONG_CODES_PER_MINUTE", "WRONG_CODES_PER_ADDRESS_MINUTE")
        full = _WRONG.full(limits)
        if full:
            raise QuotaError(f"Too many wrong class codes from you in the last minute; try "
                             f"again in {full}")
        try:
            return self.load(code, allow_expired)
        except ClassGone as err:
            if str(err).startswith("No open class"):
                _WRONG.add(limits)
            raise

    def codes(self) -> list[str]:
        """The codes of the classes with a folder here (open, or ended and not yet purged)."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and CODE.fullmatch(p.name))

    def purge_expired(self) -> int:
        """Remove the classes that have ended (and damaged ones older than the longest class);
        returns how many were removed."""
        removed, now = 0, self.clock()
        if not self.folder.is_dir():
            return 0
        for old in self.folder.glob("*.json"):  # classes of format 1
            try:
                self._migrate(old.stem)
            except (ClassError, ValueError):
                if old.stat().st_mtime < now - MAX_HOURS * 3600:
                    old.unlink(missing_ok=True)
        for code in self.codes():
            try:
                ended = self._fold(self._read_header(code)).expired(now)
            except ClassError:
                ended = (self._dir(code) / ".lock").exists() and \
                    (self._dir(code) / ".lock").stat().st_mtime < now - MAX_HOURS * 3600
            if ended:
                shutil.rmtree(self._dir(code), ignore_errors=True)
                removed += 1
        return removed

    # ---- the teacher ---------------------------------------------------------------------------

    def open_class(self, spec: SweepSpec | TextSweepSpec, question_set: str, questions: Iterable[str],
                   hours: float = DEFAULT_HOURS, who: Who = NOBODY) -> tuple[Classroom, str]:
        """Open a class on `spec`'s strategies, sizes and seeds and the quiz `questions` of
        `question_set`, lasting `hours`; returns it and the teacher's token (shown to the
        teacher, never in a projected address bar). ValueError for bad settings, ClassFull over
        MAX_OPEN_CLASSES, QuotaError over the visitor's or the address's open classes."""
        if isinstance(hours, bool) or not MIN_HOURS <= hours <= MAX_HOURS:
            raise ValueError(f"a class lasts from {MIN_HOURS} to {MAX_HOURS} hours")
        target = ""
        if isinstance(spec, TextSweepSpec):
            if spec.target not in TEXT_DATASETS:  # an upload may be gone before the class ends
                raise ValueError("a class predicts on one of the corpora the app ships, not on "
                                 "uploaded sentences")
            target = spec.target
        elif spec != SweepSpec(strategies=spec.strategies, labels_per_class=spec.labels_per_class,
                               seeds=spec.seeds):
            raise ValueError("a class predicts on Transfer curves' own source and target")
        questions = tuple(questions)
        check_quiz(question_set, questions)
        token = secrets.token_urlsafe(24)
        owner, address = key_hash(who.visitor_key), key_hash(who.address_key)
        self.purge_expired()
        with self._folder_lock():
            rooms = []
            for code in self.codes():
                try:
                    rooms.append(self._read_header(code))
                except ClassError:
                    rooms.append(None)
            if len(rooms) >= MAX_OPEN_CLASSES:
                raise ClassFull(f"This server has {MAX_OPEN_CLASSES} open classes, the most it "
                                "keeps; try again when one has ended.")
            mine = sum(1 for r in rooms if r is not None and r.owner == owner)
            if not who.exempt and mine >= quotas.limit("CLASSES"):
                raise QuotaError(f"You have {plural_classes(mine)} open, the most one visitor "
                                 "may have: end one from its teacher view, or wait until it ends")
            here = sum(1 for r in rooms if r is not None and r.owner_address == address)
            if not who.exempt and who.visitor and here >= quotas.limit("CLASSES_PER_ADDRESS"):
                raise QuotaError(f"Your network address has {plural_classes(here)} open, the "
                                 "most one address may have: end one, or wait until it ends")
            code = self._new_code()
            now = self.clock()
            room = Classroom(code, token_hash(token), now, now + hours * 3600, spec.strategies,
                             spec.labels_per_class, spec.seeds, question_set, questions,
                             owner=owner, owner_address=address, target=target)
            self._write_header(room)
        return room, token

    def _new_code(self) -> str:
        while True:
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if not self._dir(code).exists() and not (self.folder / f"{code}.json").exists():
                return code

    def _teacher(self, code: str, token: Optional[str], who: Who) -> Classroom:
        room = self.load(code, allow_expired=True)
        if not (room.is_teacher(token) or room.owned_by(who)):
            raise ClassError(f"This link is not the teacher's link of class {room.code}.")
        return room

    def reveal(self, code: str, token: Optional[str], revealed: bool = True,
               who: Who = NOBODY) -> Classroom:
        """Show (or hide again) the results and the right answers to every student of the open
        class; the teacher's token (or browser, `who`) is required. Returns the class as written."""
        code = normalize_code(code)
        with self._class_lock(code):
            room = self._teacher(code, token, who)
            self.load(code)  # ended: said, and removed
            room = replace(room, revealed=bool(revealed))
            self._write_header(room)
            return room

    def adopt(self, code: str, token: str, who: Who) -> Classroom:
        """The teacher's secret link opened in browser `who`: that browser is the teacher's
        from now on (a reload there keeps the teacher's view, with no token in the address)."""
        code = normalize_code(code)
        with self._class_lock(code):
            room = self._teacher(code, token, NOBODY)
            if who.visitor and not room.owned_by(who):
                devices = (*room.devices, key_hash(who.visitor_key))[-MAX_DEVICES:]
                room = replace(room, devices=devices)
                self._write_header(room)
            return room

    def rekey(self, code: str, who: Who) -> str:
        """A new secret teacher link for the teacher's browser `who` (the old link stops
        opening the teacher's view); returns the new token."""
        code = normalize_code(code)
        with self._class_lock(code):
            room = self._teacher(code, None, who)
            token = secrets.token_urlsafe(24)
            self._write_header(replace(room, teacher=token_hash(token)))
            return token

    def close(self, code: str, token: Optional[str], who: Who = NOBODY) -> None:
        """End the class now (the teacher's token or browser is required): its files go."""
        code = normalize_code(code)
        with self._class_lock(code):
            self._teacher(code, token, who)
            shutil.rmtree(self._dir(code), ignore_errors=True)

    # ---- students ------------------------------------------------------------------------------

    def join(self, code: str, who: Who = NOBODY) -> str:
        """Add an anonymous student to the open class; returns their random id. A visitor
        (their browser's cookie) who has joined already gets their id back, not a new one."""
        room = self.find(code, who)
        _JOINS.take(quotas.per_keys(who, "JOINS_PER_MINUTE", "JOINS_PER_ADDRESS_MINUTE"),
                    "You have joined classes too often in the last minute")
        visitor, address = key_hash(who.visitor_key), key_hash(who.address_key)
        with self._class_lock(room.code):
            room = self.load(room.code)
            if who.visitor:
                for sid, student in room.students.items():
                    if student.visitor == visitor:
                        return sid
            if len(room.students) >= MAX_STUDENTS:
                raise ClassFull(f"Class {room.code} is full: {MAX_STUDENTS} students have "
                                "joined it.")
            most = quotas.limit("STUDENTS_PER_ADDRESS")
            if not who.exempt and \
                    sum(1 for s in room.students.values() if s.address == address) >= most:
                raise ClassFull(f"Class {room.code} has {most} students from your network "
                                "address, the most one address may add.")
            student_id = secrets.token_hex(8)
            self._append(room, {"kind": "join", "student": student_id, "at": self.clock(),
                                "visitor": visitor, "address": address})
            return student_id

    def member(self, room: Classroom, who: Who) -> Optional[str]:
        """The id under which visitor `who` (with a cookie) joined `room`, if they did."""
        if not who.visitor:
            return None
        visitor = key_hash(who.visitor_key)
        return next((sid for sid, s in room.students.items() if s.visitor == visitor), None)

    def _send(self, code: str, student_id: str, who: Who, entry: Callable[[Classroom, Student], Optional[dict]]) -> Classroom:
        """Append `entry(room, student)` for a student of the open class (None: nothing)."""
        _SENDS.take(quotas.per_keys(who, "SENDS_PER_MINUTE"),
                    "You have sent to your class too often in the last minute")
        code = normalize_code(code)
        with self._class_lock(code):
            room = self.load(code)
            student = room.students.get(student_id)
            if student is None:
                raise ClassError(f"You are not among the students of class {room.code}: join "
                                 "it again with its code.")
            line = entry(room, student)
            if line is not None:
                self._append(room, {"student": student_id, "at": self.clock(), **line})
            return room

    def send_predictions(self, code: str, student_id: str,
                         predictions: Mapping[tuple[str, int], float], who: Who = NOBODY) -> int:
        """Replace the student's predictions with `predictions` ((strategy, labels per class)
        -> %) for the class's strategies and sizes; returns how many were kept. ValueError for
        a prediction outside the class's experiment or not a percentage."""
        if len(predictions) > MAX_PREDICTIONS:
            raise ClassFull(f"A student sends at most {MAX_PREDICTIONS} predictions.")

        def entry(room: Classroom, student: Student) -> dict:
            entries = [[s, int(k), v] for (s, k), v in sorted(predictions.items())]
            for strategy, k, value in entries:
                check_prediction(value)
                if not _predictable(room, strategy, k):
                    sizes = [k for k in room.labels_per_class if k != ALL_LABELS]
                    raise ValueError(f"class {room.code} predicts {', '.join(room.strategies)} "
                                     f"at {', '.join(map(str, sizes))} labels per class")
            return {"kind": "predictions", "predictions": entries}

        self._send(code, student_id, who, entry)
        return len(predictions)

    def send_answer(self, code: str, student_id: str, question_id: str, position: int,
                    who: Who = NOBODY) -> bool:
        """Record the student's answer to one of the class's questions (the chosen option's
        position among the question's options, as written). Only a first answer counts:
        returns False, changing nothing, when the student has answered it already."""
        if isinstance(position, bool) or not isinstance(position, int) \
                or not 0 <= position < MAX_OPTIONS:
            raise ValueError("an answer is the position of one of the question's options")
        first = []

        def entry(room: Classroom, student: Student) -> Optional[dict]:
            if question_id not in room.questions:
                raise ValueError(f"class {room.code} does not ask this question")
            if question_id in dict(student.answers):
                return None
            first.append(True)
            return {"kind": "answer", "question": question_id, "position": position}

        self._send(code, student_id, who, entry)
        return bool(first)


class ClassBusy(ClassError):
    """A class's lock could not be had in time: worth trying again (the pages do, by themselves)."""


def plural_classes(n: int) -> str:
    return f"{n} class" if n == 1 else f"{n} classes"


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(MAX_CLASS_BYTES + 1)
    except OSError:
        return b""


def _predictable(room: Classroom, strategy: str, k: int) -> bool:
    return strategy in room.strategies and k in room.labels_per_class and k != ALL_LABELS


def _apply(room: Classroom, students: dict[str, Student], line: bytes) -> bool:
    """Fold one journal line into `students`; False when it cannot be read (it changes
    nothing then)."""
    try:
        entry = json.loads(line)
        kind, sid = entry["kind"], entry["student"]
        if not isinstance(sid, str) or not STUDENT_ID.fullmatch(sid):
            return False
        if kind == "student":  # a compacted student: the whole entry
            raw = {k: entry[k] for k in ("joined_at", "predictions", "answers")}
            student = _student(raw)
            if sid not in students and len(students) >= MAX_STUDENTS:
                return False
            students[sid] = replace(student, visitor=_hash_field(entry, "visitor"),
                                    address=_hash_field(entry, "address"))
            return True
        if kind == "join":
            if sid not in students:
                if len(students) >= MAX_STUDENTS:
                    return False
                students[sid] = Student(_number(entry["at"], "a join time"),
                                        visitor=_hash_field(entry, "visitor"),
                                        address=_hash_field(entry, "address"))
            return True
        student = students.get(sid)
        if student is None:
            return False
        if kind == "predictions":
            raw = entry["predictions"]
            if not isinstance(raw, list) or len(raw) > MAX_PREDICTIONS:
                return False
            checked = []
            for item in raw:
                strategy, k, value = item
                if not (isinstance(strategy, str) and isinstance(k, int) and not isinstance(k, bool)
                        and _predictable(room, strategy, k)):
                    return False
                checked.append((strategy, k, check_prediction(value)))
            students[sid] = replace(student, predictions=tuple(checked))
            return True
        if kind == "answer":
            question, position = entry["question"], entry["position"]
            if question not in room.questions or isinstance(position, bool) \
                    or not isinstance(position, int) or not 0 <= position < MAX_OPTIONS:
                return False
            if question not in dict(student.answers) and len(student.answers) < MAX_ANSWERS:
                students[sid] = replace(student, answers=(*student.answers, (question, position)))
            return True
    except (ValueError, TypeError, KeyError):
        return False
    return False


def _hash_field(entry: dict, name: str) -> str:
    value = entry.get(name, "")
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{0,16}", value):
        raise ValueError(f"a {name} is not a hash")
    return value
