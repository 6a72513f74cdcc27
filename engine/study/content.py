"""Lesson content: flashcard decks and quiz question banks, read from YAML files and validated.

`assets/cards/*.yaml` each hold one deck and `assets/quizzes/*.yaml` each hold one question
bank. `load_content()` reads both folders, checks every field (ids, types, unknown keys, an
answer that is one of its options, ids unique across files, a `source` that names a dated
publication) and raises `ContentError` naming the file and the item when something is wrong,
so a typo in a deck fails loudly at load time instead of showing a broken card. Everything
returned is frozen, so one loaded copy can be shared by every session.

`length_cue()` measures whether a bank can be gamed by the options' lengths alone (a learner
who always picks the longest option, or the shortest); `length_cue_problems()` says where it
can, and the content tests hold every bank to it.

This module only reads and checks content: scheduling lives in `engine.study.srs`, the Anki export in
`engine.study.anki`, and questions computed from a learner's own runs in `engine.study.run_questions`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

ASSETS = Path(__file__).resolve().parents[2] / "assets"
CARDS_DIR = ASSETS / "cards"
QUIZZES_DIR = ASSETS / "quizzes"

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")  # lower-case slug: stable keys on disk
KINDS = ("concept", "scenario", "run")  # "run": computed from the learner's own results
MIN_OPTIONS, MAX_OPTIONS = 2, 6
YEAR_PATTERN = re.compile(r"\b(19|20)\d\d\b")  # a citation names the year it appeared
MAX_SOURCE_CHARS = 300
FAR_RATIO = 1.5  # a right answer this many times longer than every other option stands out
MAX_FAR = 2  # questions allowed such a standout answer in one set


class ContentError(ValueError):
    """A deck or question file that is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Flashcard:
    id: str  # unique across every deck; the key of the learner's progress
    front: str  # the prompt (Markdown)
    back: str  # the answer (Markdown)
    tags: tuple[str, ...] = ()  # topics, carried into the Anki export
    source: str = ""  # the publication a stated or corrected claim rests on ("" when none)


@dataclass(frozen=True)
class Deck:
    id: str  # stable slug; also seeds the Anki deck id
    title: str
    description: str
    cards: tuple[Flashcard, ...]


@dataclass(frozen=True)
class Question:
    id: str  # unique across every bank
    prompt: str  # the question (Markdown)
    options: tuple[str, ...]  # the choices, in the order they are shown
    answer: str  # the correct option, exactly as written among `options`
    explanation: str  # shown after answering, right or wrong
    kind: str = "concept"  # one of KINDS
    topic: str = ""  # a short label shown with the question
    source: str = ""  # the publication a stated or corrected claim rests on ("" when none)

    def __post_init__(self):
        if self.answer not in self.options:
            raise ContentError(f"question '{self.id}': the answer is not among its options")

    def is_correct(self, choice: str | None) -> bool:
        return choice == self.answer


@dataclass(frozen=True)
class QuestionBank:
    id: str
    title: str
    description: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Content:
    decks: tuple[Deck, ...]
    banks: tuple[QuestionBank, ...]

    def deck(self, deck_id: str) -> Deck:
        for deck in self.decks:
            if deck.id == deck_id:
                return deck
        raise KeyError(deck_id)

    def bank(self, bank_id: str) -> QuestionBank:
        for bank in self.banks:
            if bank.id == bank_id:
                return bank
        raise KeyError(bank_id)

    @property
    def cards(self) -> tuple[Flashcard, ...]:
        return tuple(card for deck in self.decks for card in deck.cards)

    @property
    def questions(self) -> tuple[Question, ...]:
        return tuple(q for bank in self.banks for q in bank.questions)


def _text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ContentError(f"{where}: '{name}' must be non-empty text")
    return value.strip()


def _slug(value: Any, where: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ContentError(f"{where}: id {value!r} must be a lower-case slug "
                           "(letters, digits and '-', at most 64 characters)")
    return value


def _mapping(value: Any, where: str, required: set[str], optional: set[str]) -> dict:
    if not isinstance(value, dict):
        raise ContentError(f"{where}: expected a mapping of fields")
    missing = required - value.keys()
    if missing:
        raise ContentError(f"{where}: missing {', '.join(sorted(missing))}")
    unknown = value.keys() - required - optional
    if unknown:
        raise ContentError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    return value


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ContentError(f"{path.name}: not valid YAML ({err})") from err
    except OSError as err:
        raise ContentError(f"{path.name}: cannot be read ({err})") from err
    return data


def _source(value: Any, where: str) -> str:
    """An optional citation: absent, or text naming a dated publication."""
    if value is None:
        return ""
    text = _text(value, where, "source")
    if len(text) > MAX_SOURCE_CHARS or not YEAR_PATTERN.search(text):
        raise ContentError(f"{where}: 'source' must cite a publication with its year "
                           f"(at most {MAX_SOURCE_CHARS} characters)")
    return text


def _tags(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) and ID_PATTERN.fullmatch(t)
                                              for t in value):
        raise ContentError(f"{where}: tags must be a list of lower-case slugs")
    return tuple(value)


def parse_deck(data: Any, name: str) -> Deck:
    """One deck from a file's parsed YAML; `name` is used in error messages."""
    data = _mapping(data, name, {"id", "title", "description", "cards"}, set())
    deck_id = _slug(data["id"], name)
    if not isinstance(data["cards"], list) or not data["cards"]:
        raise ContentError(f"{name}: 'cards' must be a non-empty list")
    cards = []
    for i, raw in enumerate(data["cards"], start=1):
        where = f"{name}, card {i}"
        raw = _mapping(raw, where, {"id", "front", "back"}, {"tags", "source"})
        card_id = _slug(raw["id"], where)
        where = f"{name}, card '{card_id}'"
        cards.append(Flashcard(card_id, _text(raw["front"], where, "front"),
                               _text(raw["back"], where, "back"), _tags(raw.get("tags"), where),
                               _source(raw.get("source"), where)))
    _unique((c.id for c in cards), f"{name}: card")
    return Deck(deck_id, _text(data["title"], name, "title"),
                _text(data["description"], name, "description"), tuple(cards))


def parse_question(raw: Any, where: str) -> Question:
    raw = _mapping(raw, where, {"id", "prompt", "options", "answer", "explanation"},
                   {"kind", "topic", "source"})
    qid = _slug(raw["id"], where)
    where = f"{where.rsplit(',', 1)[0]}, question '{qid}'"
    options = raw["options"]
    if not isinstance(options, list) or not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise ContentError(f"{where}: 'options' must list {MIN_OPTIONS} to {MAX_OPTIONS} choices")
    options = tuple(_text(o, where, "options") for o in options)
    if len(set(options)) != len(options):
        raise ContentError(f"{where}: two options are the same")
    answer = _text(raw["answer"], where, "answer")
    if answer not in options:
        raise ContentError(f"{where}: the answer {answer!r} is not one of its options")
    kind = raw.get("kind", "concept")
    if kind not in KINDS:
        raise ContentError(f"{where}: kind must be one of {', '.join(KINDS)}")
    topic = raw.get("topic", "")
    if not isinstance(topic, str):
        raise ContentError(f"{where}: 'topic' must be text")
    return Question(qid, _text(raw["prompt"], where, "prompt"), options, answer,
                    _text(raw["explanation"], where, "explanation"), kind, topic.strip(),
                    _source(raw.get("source"), where))


def parse_bank(data: Any, name: str) -> QuestionBank:
    """One question bank from a file's parsed YAML."""
    data = _mapping(data, name, {"id", "title", "description", "questions"}, set())
    bank_id = _slug(data["id"], name)
    if not isinstance(data["questions"], list) or not data["questions"]:
        raise ContentError(f"{name}: 'questions' must be a non-empty list")
    questions = tuple(parse_question(raw, f"{name}, question {i}")
                      for i, raw in enumerate(data["questions"], start=1))
    _unique((q.id for q in questions), f"{name}: question")
    return QuestionBank(bank_id, _text(data["title"], name, "title"),
                        _text(data["description"], name, "description"), questions)


def _unique(ids: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ContentError(f"{what} id '{item}' is used twice")
        seen.add(item)


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ContentError(f"content folder {directory} does not exist")
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ContentError(f"content folder {directory} holds no .yaml files")
    return files


def load_decks(directory: Path = CARDS_DIR) -> tuple[Deck, ...]:
    decks = tuple(parse_deck(_read_yaml(p), p.name) for p in _files(directory))
    _unique((d.id for d in decks), "deck")
    _unique((c.id for d in decks for c in d.cards), "card")
    return decks


def load_banks(directory: Path = QUIZZES_DIR) -> tuple[QuestionBank, ...]:
    banks = tuple(parse_bank(_read_yaml(p), p.name) for p in _files(directory))
    _unique((b.id for b in banks), "question bank")
    _unique((q.id for b in banks for q in b.questions), "question")
    return banks


def load_content(cards_dir: Path = CARDS_DIR, quizzes_dir: Path = QUIZZES_DIR) -> Content:
    """Every deck and question bank, validated; raises ContentError on the first problem."""
    return Content(load_decks(cards_dir), load_banks(quizzes_dir))


# --- length cues ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LengthCue:
    """How far the options' lengths alone give away the right answers of a set of questions."""

    questions: int  # questions measured
    chance: float  # a blind guesser's expected share right: the mean of 1 / number of options
    longest_score: float  # expected share right always picking the longest option (ties split)
    shortest_score: float  # the same, always picking the shortest option
    strictly_longest: int  # questions whose right answer is longer than every other option
    far_longest: int  # ... and at least FAR_RATIO times as long as every other option

    @property
    def margin(self) -> float:
        """Two standard errors of a share over `questions` questions at `chance`: a bank whose
        answer lengths carry no information exceeds chance by more only about 1 time in 40."""
        if not self.questions:
            return 0.0
        return 2 * math.sqrt(self.chance * (1 - self.chance) / self.questions)


def _pick_score(question: Question, pick) -> float:
    """Expected credit for picking, at random among ties, an option of length pick(lengths)."""
    target = pick(len(o) for o in question.options)
    tied = [o for o in question.options if len(o) == target]
    return (question.answer in tied) / len(tied)


def length_cue(questions: Iterable[Question]) -> LengthCue:
    """Measure the length cue of a set of questions (see LengthCue)."""
    questions = tuple(questions)
    n = len(questions)
    longest = far = 0
    for q in questions:
        others = [len(o) for o in q.options if o != q.answer]
        if len(q.answer) > max(others):
            longest += 1
            far += len(q.answer) >= FAR_RATIO * max(others)
    if not n:
        return LengthCue(0, 0.0, 0.0, 0.0, 0, 0)
    return LengthCue(
        n, sum(1 / len(q.options) for q in questions) / n,
        sum(_pick_score(q, max) for q in questions) / n,
        sum(_pick_score(q, min) for q in questions) / n, longest, far)


def length_cue_problems(questions: Iterable[Question]) -> list[str]:
    """What lets a learner score above chance on these questions by length alone; [] if nothing.

    Three rules: always picking the longest (or the shortest) option must not score more than
    chance plus LengthCue.margin; the right answer may be strictly the longest option in no
    larger a share than that; and at most MAX_FAR right answers may stand out as FAR_RATIO
    times longer than every other option."""
    cue = length_cue(questions)
    ceiling = cue.chance + cue.margin
    problems = []
    if cue.longest_score > ceiling:
        problems.append(f"always picking the longest option scores {cue.longest_score:.0%} "
                        f"(chance {cue.chance:.0%}, at most {ceiling:.0%} allowed)")
    if cue.shortest_score > ceiling:
        problems.append(f"always picking the shortest option scores {cue.shortest_score:.0%} "
                        f"(chance {cue.chance:.0%}, at most {ceiling:.0%} allowed)")
    if cue.questions and cue.strictly_longest / cue.questions > ceiling:
        problems.append(f"the right answer is the longest option in {cue.strictly_longest} of "
                        f"{cue.questions} questions (at most {ceiling:.0%} allowed)")
    if cue.far_longest > MAX_FAR:
        problems.append(f"the right answer is {FAR_RATIO}x longer than every other option in "
                        f"{cue.far_longest} questions (at most {MAX_FAR} allowed)")
    return problems


# Wording cues: test-wise learners know that options with an absolute word are usually wrong
# and hedged ones usually right. A bank is fair when neither kind of word says which is which.
ABSOLUTE_WORDS = re.compile(r"\b(all|every|everything|none|nothing|never|always|cannot|can't|"
                            r"must|only|no)\b", re.I)
HEDGE_WORDS = re.compile(r"\b(usually|often|typically|may|might|some|most|tends?|generally|"
                         r"likely|can)\b", re.I)


@dataclass(frozen=True)
class WordingCue:
    """How far absolute words and hedges in the options give the right answers away."""

    options: int  # options measured, over every question
    wrong_share: float  # the share of all options that are wrong (0.75 with four options)
    absolute: int  # options with an absolute word ...
    absolute_wrong: int  # ... of which wrong
    hedged: int  # options with a hedge ...
    hedged_right: int  # ... of which right

    def excess(self, hits: int, of: int, share: float) -> float:
        """How many standard errors `hits` of `of` lies above what `share` would give."""
        if not of or share in (0.0, 1.0):
            return 0.0
        return (hits - of * share) / math.sqrt(of * share * (1 - share))


def wording_cue(questions: Iterable[Question]) -> WordingCue:
    options = [(o, o == q.answer) for q in questions for o in q.options]
    wrong = sum(not right for _, right in options)
    absolute = [right for o, right in options if ABSOLUTE_WORDS.search(o)]
    hedged = [right for o, right in options if HEDGE_WORDS.search(o)]
    return WordingCue(len(options), wrong / len(options) if options else 0.0, len(absolute),
                      sum(not r for r in absolute), len(hedged), sum(hedged))


def wording_cue_problems(questions: Iterable[Question]) -> list[str]:
    """Absolute words found in wrong options, or hedges in right ones, more often than their
    share of the options by more than two standard errors: [] when neither cue holds."""
    cue, problems = wording_cue(questions), []
    if cue.excess(cue.absolute_wrong, cue.absolute, cue.wrong_share) > 2:
        problems.append(f"{cue.absolute_wrong} of {cue.absolute} options with an absolute word "
                        f"are wrong ({cue.absolute_wrong / cue.absolute:.0%}; "
                        f"{cue.wrong_share:.0%} of all options are)")
    if cue.excess(cue.hedged_right, cue.hedged, 1 - cue.wrong_share) > 2:
        problems.append(f"{cue.hedged_right} of {cue.hedged} hedged options are right "
                        f"({cue.hedged_right / cue.hedged:.0%}; {1 - cue.wrong_share:.0%} of all "
                        "options are)")
    return problems
