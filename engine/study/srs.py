"""Spaced repetition for the flashcards: FSRS scheduling and each learner's progress on disk.

Scheduling is the `fsrs` package's `Scheduler` (FSRS-6 with its published default parameters):
after every review it updates the card's stability (how many days until recall drops to the
desired retention) and difficulty, and sets the next due date. `SrsConfig` holds the few
settings a learner may change, chiefly the desired retention.

`SrsStore` keeps every learner's cards and reviews in one SQLite file in the data directory
(`flashcards.sqlite` under `TRANSFERLAB_HOME`), keyed by a learner name and a card id, so
progress survives restarts and is shared by every process of the server. A learner name is
just a label the learner picks: there are no accounts and no passwords.

Not here: the card texts (`engine.study.content`) and drawing them (the flashcards page).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Optional, Sequence

from fsrs import Card, Rating, Scheduler, State

from engine.core.store import home_dir, sqlite_transaction

RATINGS: dict[str, Rating] = {"Again": Rating.Again, "Hard": Rating.Hard,
                              "Good": Rating.Good, "Easy": Rating.Easy}
DEFAULT_RETENTION = 0.9
MIN_RETENTION, MAX_RETENTION = 0.70, 0.97
LEARN_AHEAD = timedelta(minutes=20)  # with nothing else left, learning cards due this soon show
MAX_LEARNER_CHARS = 40
LEARNER_PATTERN = re.compile(r"^[\w][\w .'\-]*$")  # letters (any script), digits, space . ' - _


@dataclass(frozen=True)
class SrsConfig:
    desired_retention: float = DEFAULT_RETENTION  # recall probability aimed for on the due date
    learning_steps: tuple[timedelta, ...] = (timedelta(minutes=1), timedelta(minutes=10))  # a
    # new card's short steps before it graduates to whole days
    relearning_steps: tuple[timedelta, ...] = (timedelta(minutes=10),)  # after a lapse
    maximum_interval_days: int = 36500  # longest gap between two reviews
    fuzz: bool = False  # random spread of long intervals; off, so a history fixes its schedule

    def __post_init__(self):
        if not isinstance(self.desired_retention, (int, float)) or not (
                MIN_RETENTION <= self.desired_retention <= MAX_RETENTION):
            raise ValueError(f"desired retention must be between {MIN_RETENTION:.2f} and "
                             f"{MAX_RETENTION:.2f}, got {self.desired_retention!r}")
        if not 1 <= self.maximum_interval_days <= 36500:
            raise ValueError("the maximum interval must be from 1 to 36,500 days")

    def scheduler(self) -> Scheduler:
        return Scheduler(desired_retention=float(self.desired_retention),
                         learning_steps=self.learning_steps,
                         relearning_steps=self.relearning_steps,
                         maximum_interval=self.maximum_interval_days,
                         enable_fuzzing=self.fuzz)


def check_learner(name: str) -> str:
    """The learner key for a typed name (trimmed, case-folded); ValueError says what is wrong."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("type a name to keep your progress under")
    name = " ".join(name.split())
    if len(name) > MAX_LEARNER_CHARS:
        raise ValueError(f"a name has at most {MAX_LEARNER_CHARS} characters")
    if not LEARNER_PATTERN.fullmatch(name):
        raise ValueError("a name may use letters, digits, spaces and . ' - _ only")
    return name.casefold()


def fsrs_card_id(card_id: str) -> int:
    """The integer id the fsrs package wants, derived from our string id (stable forever)."""
    return int(hashlib.sha256(card_id.encode()).hexdigest()[:12], 16)


def _utc(now: Optional[datetime]) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return now.astimezone(timezone.utc)


@dataclass(frozen=True)
class DeckCounts:
    """How a learner's cards of one deck stand at a moment; the first four add up to total."""
    new: int  # never reviewed
    due: int  # reviewed before and due now
    learning: int  # in the short learning or relearning steps, due within minutes, not yet
    later: int  # graduated to intervals of days, not due yet
    total: int


@dataclass(frozen=True)
class Review:
    card_id: str
    rating: Rating
    reviewed_at: datetime
    due: datetime  # when the card became due again after this review


@dataclass(frozen=True)
class CardHistory:
    """One reviewed card as an export needs it: its FSRS state now and every review."""
    card: Card  # the stored fsrs state (state, step, stability, difficulty, due, last review)
    reviews: tuple[Review, ...]  # oldest first
    steps_left: int  # (re)learning steps still to pass, the current one included; 0 in review
    graduating_days: Optional[int]  # a relearning card: its interval in days after Good at its
    # due time, as this app would schedule it; None for other states


class SrsStore:
    """Learners' progress: one fsrs card state per (learner, card), every review logged."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else home_dir() / "flashcards.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.executescript(
                "CREATE TABLE IF NOT EXISTS cards (learner TEXT NOT NULL, card_id TEXT NOT "
                "NULL, card TEXT NOT NULL, due REAL NOT NULL, PRIMARY KEY (learner, card_id));"
                "CREATE TABLE IF NOT EXISTS reviews (learner TEXT NOT NULL, card_id TEXT NOT "
                "NULL, rating INTEGER NOT NULL, reviewed_at REAL NOT NULL, due REAL NOT NULL);"
                "CREATE INDEX IF NOT EXISTS reviews_by_card ON reviews (learner, card_id);"
                "CREATE TABLE IF NOT EXISTS learners (learner TEXT PRIMARY KEY, retention "
                "REAL NOT NULL);")

    def _connect(self):
        """One transaction; a damaged or unwritable file raises StoreError (engine.core.store)."""
        return sqlite_transaction(self.path, "flashcard progress file")

    def _query(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._connect() as con:
            return con.execute(sql, args).fetchall()

    # settings -------------------------------------------------------------------------------

    def retention(self, learner: str) -> float:
        rows = self._query("SELECT retention FROM learners WHERE learner = ?",
                           (check_learner(learner),))
        return float(rows[0][0]) if rows else DEFAULT_RETENTION

    def set_retention(self, learner: str, retention: float) -> None:
        SrsConfig(desired_retention=retention)  # validates
        with self._connect() as con:
            con.execute("INSERT INTO learners (learner, retention) VALUES (?, ?) ON CONFLICT"
                        "(learner) DO UPDATE SET retention = excluded.retention",
                        (check_learner(learner), float(retention)))

    def config(self, learner: str) -> SrsConfig:
        return SrsConfig(desired_retention=self.retention(learner))

    # cards ----------------------------------------------------------------------------------

    def cards(self, learner: str, card_ids: Iterable[str]) -> dict[str, Card]:
        """The stored fsrs state of each reviewed card among `card_ids` (new cards are absent)."""
        key, ids = check_learner(learner), list(card_ids)
        found: dict[str, Card] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for card_id, text in self._query(
                    f"SELECT card_id, card FROM cards WHERE learner = ? AND card_id IN ({marks})",
                    (key, *chunk)):
                found[card_id] = Card.from_json(text)
        return found

    def card(self, learner: str, card_id: str) -> Card:
        """The card's fsrs state: the stored one, or a new card (due now) never reviewed."""
        stored = self.cards(learner, [card_id]).get(card_id)
        return stored or Card(card_id=fsrs_card_id(card_id), due=datetime(2000, 1, 1,
                                                                          tzinfo=timezone.utc))

    def review(self, learner: str, card_id: str, rating: Rating,
               now: Optional[datetime] = None) -> Card:
        """Grade one card: schedule it with FSRS, store its new state and log the review."""
        key, now = check_learner(learner), _utc(now)
        rating = Rating(rating)
        card, _ = self.config(learner).scheduler().review_card(self.card(learner, card_id),
                                                               rating, now)
        with self._connect() as con:  # one transaction: the state and its log entry together
            con.execute("INSERT OR REPLACE INTO cards (learner, card_id, card, due) "
                        "VALUES (?, ?, ?, ?)", (key, card_id, card.to_json(), card.due.timestamp()))
            con.execute("INSERT INTO reviews (learner, card_id, rating, reviewed_at, due) "
                        "VALUES (?, ?, ?, ?, ?)", (key, card_id, int(rating),
                                                   now.timestamp(), card.due.timestamp()))
        return card

    def preview(self, learner: str, card_id: str,
                now: Optional[datetime] = None) -> dict[Rating, timedelta]:
        """How long until the card is due again after each possible grade; nothing is stored."""
        now = _utc(now)
        scheduler, card = self.config(learner).scheduler(), self.card(learner, card_id)
        return {rating: scheduler.review_card(card, rating, now)[0].due - now
                for rating in Rating}

    def history(self, learner: str, card_id: str) -> list[Review]:
        rows = self._query("SELECT rating, reviewed_at, due FROM reviews WHERE learner = ? AND "
                           "card_id = ? ORDER BY reviewed_at, rowid",
                           (check_learner(learner), card_id))
        return [Review(card_id, Rating(r), datetime.fromtimestamp(at, timezone.utc),
                       datetime.fromtimestamp(due, timezone.utc)) for r, at, due in rows]

    def histories(self, learner: str, card_ids: Iterable[str]) -> dict[str, CardHistory]:
        """Every reviewed card among `card_ids` with its state and reviews (for an export)."""
        stored, config = self.cards(learner, card_ids), self.config(learner)
        found: dict[str, CardHistory] = {}
        for card_id, card in stored.items():
            steps = {State.Learning: config.learning_steps,
                     State.Relearning: config.relearning_steps}.get(card.state, ())
            graduating = None
            if card.state == State.Relearning:
                after, _ = config.scheduler().review_card(card, Rating.Good, card.due)
                graduating = round((after.due - card.due) / timedelta(days=1))
            found[card_id] = CardHistory(card, tuple(self.history(learner, card_id)),
                                         steps_left=len(steps) - (card.step or 0) if steps else 0,
                                         graduating_days=graduating)
        return found

    def counts(self, learner: str, card_ids: Sequence[str],
               now: Optional[datetime] = None) -> DeckCounts:
        now, stored = _utc(now), self.cards(learner, card_ids)
        ids = list(dict.fromkeys(card_ids))
        due = sum(1 for c in stored.values() if c.due <= now)
        learning = sum(1 for c in stored.values()
                       if c.due > now and c.state in (State.Learning, State.Relearning))
        return DeckCounts(new=len([i for i in ids if i not in stored]), due=due,
                          learning=learning, later=len(stored) - due - learning, total=len(ids))

    def next_card(self, learner: str, card_ids: Sequence[str],
                  now: Optional[datetime] = None) -> Optional[str]:
        """What to study now: the most overdue card, else the next new card in deck order,
        else a learning card due within LEARN_AHEAD; None when nothing is left for now."""
        now, stored = _utc(now), self.cards(learner, card_ids)
        due = sorted((c.due, i) for i, c in stored.items() if c.due <= now)
        if due:
            return due[0][1]
        for card_id in card_ids:
            if card_id not in stored:
                return card_id
        soon = sorted((c.due, i) for i, c in stored.items()
                      if c.state in (State.Learning, State.Relearning)
                      and c.due <= now + LEARN_AHEAD)
        return soon[0][1] if soon else None

    def next_due(self, learner: str, card_ids: Sequence[str]) -> Optional[datetime]:
        stored = self.cards(learner, card_ids)
        return min((c.due for c in stored.values()), default=None)

    def forget(self, learner: str, card_ids: Sequence[str]) -> int:
        """Delete the learner's progress on these cards (they become new); returns how many."""
        key, ids = check_learner(learner), list(card_ids)
        removed = 0
        with self._connect() as con:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                removed += con.execute(f"DELETE FROM cards WHERE learner = ? AND card_id IN "
                                       f"({marks})", (key, *chunk)).rowcount
                con.execute(f"DELETE FROM reviews WHERE learner = ? AND card_id IN ({marks})",
                            (key, *chunk))
        return removed


def interval_text(delta: timedelta) -> str:
    """'1 min', '10 min', '3 h', '4 days', '2.1 months', '1.3 years' for a grade button."""
    seconds = delta.total_seconds()
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 86400:
        return f"{round(seconds / 3600)} h"
    days = seconds / 86400
    if days < 30:
        return f"{round(days)} day" + ("" if round(days) == 1 else "s")
    if days < 365:
        return f"{days / 30:.1f} months"
    return f"{days / 365:.1f} years"
