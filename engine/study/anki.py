"""Export a flashcard deck to Anki: an `.apkg` file built with `genanki`, with a learner's
review history where Anki can take it.

Ids are stable, so importing a newer export into Anki updates the same deck and notes instead
of duplicating them: the note model has one fixed id, a deck's id is derived from its slug,
and each note's guid from its card id. Card texts are the deck's Markdown; the few forms the
decks use (bold, inline code, bullet lines, line breaks) become HTML, and everything else is
escaped, so no card text is read as markup by Anki. Each note carries the card's source (the
publication its claim rests on) in a field shown under the answer.

With a learner's history (`engine.study.srs.CardHistory` by card id), the collection inside the
package also gets what Anki keeps of it, which genanki does not write. Each reviewed card's
scheduling goes into the `cards` table: type and queue (learning, review, relearning), due (a
review card's day number counted from the collection's creation `crt`, a learning card's Unix
time in seconds), interval in days, ease (Anki's starting 250% once a card has left learning;
FSRS in Anki does not use it), reviews, lapses and the learning steps left. Each review becomes
a `revlog` row: its time in ms as id, the button (our Again, Hard, Good, Easy are Anki's 1-4),
the interval it set and the one before (days, or negative seconds while learning), and the
kind (learning, review, relearning) from the state the card was in. Unreviewed cards stay new.
What does not carry over: the FSRS parameters and desired retention (Anki applies its own and,
with FSRS on, recomputes each card's memory state from the reviews), and the time taken on
each answer (never measured here, written as 0). Anki counts days in the importer's local time
with a 4 am rollover, this file in UTC, so a due date can move by one day.

Not here: loading decks (`engine.study.content`), the learner's progress (`engine.study.srs`)
or the download button (the flashcards page).
"""

from __future__ import annotations

import hashlib
import html
import io
import itertools
import json
import re
import sqlite3
import tempfile
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping, Optional

import genanki
from fsrs import Rating, State

from engine.study.content import Deck
from engine.study.srs import CardHistory, Review

MODEL_ID = 1_607_392_931  # fixed forever: Anki matches notes of later exports to this model
MODEL_NAME = "Transfer Lab card"
GUID_NAMESPACE = "transferlab"
FIELDS = ("Front", "Back", "CardId", "Source")  # a new field goes last
CSS = (".card { font-family: sans-serif; font-size: 20px; text-align: left; color: #222; "
       "background: #fff; } code { font-family: monospace; background: #f2f2f2; } "
       ".source { margin-top: 1em; font-size: 15px; color: #555; }")

MODEL = genanki.Model(
    MODEL_ID, MODEL_NAME, fields=[{"name": f} for f in FIELDS],
    templates=[{"name": "Front to back", "qfmt": "{{Front}}",
                "afmt": "{{FrontSide}}<hr id=answer>{{Back}}"
                        "{{#Source}}<div class=source>Source: {{Source}}</div>{{/Source}}"}],
    css=CSS)

DAY = timedelta(days=1)
ROLLOVER_HOUR = 4  # Anki's default start of a new day (its `rollover` setting), here in UTC
STARTING_EASE = 2500  # Anki's starting ease, 250% in permille, once a card has left learning
CARD_TYPE = {State.Learning: 1, State.Review: 2, State.Relearning: 3}  # Anki's cards.type
LEARN_QUEUE, REVIEW_QUEUE, DAY_LEARN_QUEUE = 1, 2, 3  # Anki's cards.queue
REVLOG_KIND = {"new": 0, "learning": 0, "review": 1, "relearning": 2}  # Anki's revlog.type,
# from the state the card was in before the review
ANKI_EASE = {Rating.Again: 1, Rating.Hard: 2, Rating.Good: 3, Rating.Easy: 4}  # revlog.ease


def deck_id(deck_slug: str) -> int:
    """A stable Anki deck id from a deck's slug, in the range Anki's own ids use (2^30..2^31)."""
    digest = int(hashlib.sha256(f"{GUID_NAMESPACE}:deck:{deck_slug}".encode()).hexdigest(), 16)
    return (1 << 30) + digest % (1 << 30)


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_CODE = re.compile(r"`([^`]+)`")
_ITEM = re.compile(r"^\s*(-|\d+\.)\s+(.*)$")


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    return _ITALIC.sub(r"<i>\1</i>", _BOLD.sub(r"<b>\1</b>", _CODE.sub(r"<code>\1</code>", text)))


def markdown_to_html(text: str) -> str:
    """The decks' Markdown subset as HTML: paragraphs, '-' and '1.' lists, **bold**, *italic*
    and `code`. Every other character is escaped, so nothing in a card is read as markup."""
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    list_tag = ""

    def flush() -> None:
        nonlocal list_tag
        if paragraph:
            blocks.append(_inline(" ".join(paragraph)))
            paragraph.clear()
        if items:
            blocks.append(f"<{list_tag}>" + "".join(f"<li>{_inline(i)}</li>" for i in items)
                          + f"</{list_tag}>")
            items.clear()

    for line in text.strip().splitlines():
        match = _ITEM.match(line)
        if match:
            tag = "ul" if match.group(1) == "-" else "ol"
            if paragraph or (items and tag != list_tag):
                flush()
            list_tag = tag
            items.append(match.group(2).strip())
        elif not line.strip():
            flush()
        else:
            if items:
                flush()
            paragraph.append(line.strip())
    flush()
    return "<br><br>".join(b for b in blocks)


def build_package(deck: Deck) -> genanki.Package:
    anki_deck = genanki.Deck(deck_id(deck.id), f"Transfer Lab::{deck.title}",
                             description=html.escape(deck.description))
    for card in deck.cards:
        anki_deck.add_note(genanki.Note(
            model=MODEL, fields=[markdown_to_html(card.front), markdown_to_html(card.back),
                                 card.id, html.escape(card.source, quote=False)],
            tags=["transferlab", deck.id, *card.tags],
            guid=genanki.guid_for(GUID_NAMESPACE, card.id)))
    return genanki.Package(anki_deck)


def anki_day(moment: datetime, crt: int) -> int:
    """Anki's day number of `moment`: days since the collection's first rollover, 4 am (UTC
    here) on the day of its creation stamp `crt`."""
    start = datetime.fromtimestamp(crt, timezone.utc).replace(hour=ROLLOVER_HOUR, minute=0,
                                                              second=0, microsecond=0)
    return (moment - start) // DAY


def revlog_rows(reviews: tuple[Review, ...]) -> list[tuple[int, int, int, int, int, int]]:
    """(id in ms, ease, ivl, lastIvl, factor, type) for each review, oldest first. The state
    after a review follows from the interval it set: whole days graduate a card to review, and
    the (re)learning steps are minutes, so a shorter interval keeps it learning, or relearning
    once it has lapsed."""
    rows, state, last = [], "new", 0
    for review in reviews:
        delta, kind = review.due - review.reviewed_at, REVLOG_KIND[state]
        if delta >= DAY:
            state, ivl = "review", round(delta / DAY)
        else:
            state = "learning" if state in ("new", "learning") else "relearning"
            ivl = -round(delta.total_seconds())
        rows.append((round(review.reviewed_at.timestamp() * 1000), ANKI_EASE[review.rating],
                     ivl, last, 0 if state == "learning" else STARTING_EASE, kind))
        last = ivl
    return rows


def card_schedule(history: CardHistory, crt: int, now: datetime) -> dict[str, int]:
    """The `cards` columns that hold a reviewed card's scheduling, from its FSRS state. A
    learning card due before the next day starts waits in the learning queue (due in Unix
    seconds), a later one in the day-learning queue (due as a day number)."""
    card, rows = history.card, revlog_rows(history.reviews)
    if card.state == State.Review:
        queue, due = REVIEW_QUEUE, anki_day(card.due, crt)
        ivl = round((card.due - card.last_review) / DAY)
    else:
        today = anki_day(card.due, crt) <= anki_day(now, crt)
        queue = LEARN_QUEUE if today else DAY_LEARN_QUEUE
        due = int(card.due.timestamp()) if today else anki_day(card.due, crt)
        ivl = max(1, history.graduating_days or 0) if card.state == State.Relearning else 0
    return {"type": CARD_TYPE[card.state], "queue": queue, "due": due, "ivl": ivl,
            "factor": 0 if card.state == State.Learning else STARTING_EASE, "reps": len(rows),
            "lapses": sum(1 for r in rows if r[5] == REVLOG_KIND["review"] and r[1] == 1),
            "left": history.steps_left}


def add_history(con: sqlite3.Connection, histories: Mapping[str, CardHistory],
                timestamp: float) -> int:
    """Write each reviewed card's scheduling and reviews into the collection genanki wrote;
    returns how many cards got them. The collection is then marked as Anki's v2 scheduler
    (the one FSRS runs on): Anki would otherwise upgrade it from v1 on import and renumber the
    buttons of learning reviews, which had three in v1."""
    reviewed = {i: h for i, h in histories.items() if h.reviews}
    if not reviewed:
        return 0
    crt, conf = con.execute("SELECT crt, conf FROM col").fetchone()
    con.execute("UPDATE col SET conf = ?", (json.dumps(
        {**json.loads(conf), "schedVer": 2, "rollover": ROLLOVER_HOUR}),))
    now, used, written = datetime.fromtimestamp(timestamp, timezone.utc), set(), 0
    for card_id, history in reviewed.items():
        found = con.execute("SELECT cards.id FROM cards JOIN notes ON cards.nid = notes.id "
                            "WHERE notes.guid = ?",
                            (genanki.guid_for(GUID_NAMESPACE, card_id),)).fetchone()
        if found is None:
            continue  # not a card of this deck
        schedule = card_schedule(history, crt, now)
        con.execute("UPDATE cards SET " + ", ".join(f"{k} = ?" for k in schedule)
                    + ", mod = ? WHERE id = ?", (*schedule.values(), int(timestamp), found[0]))
        for ms, ease, ivl, last, factor, kind in revlog_rows(history.reviews):
            while ms in used:  # two reviews in one millisecond: ids stay unique
                ms += 1
            used.add(ms)
            con.execute("INSERT INTO revlog (id, cid, usn, ease, ivl, lastIvl, factor, time, "
                        "type) VALUES (?, ?, -1, ?, ?, ?, ?, 0, ?)",
                        (ms, found[0], ease, ivl, last, factor, kind))
        written += 1
    return written


def export_apkg(deck: Deck, timestamp: Optional[float] = None,
                histories: Optional[Mapping[str, CardHistory]] = None) -> bytes:
    """The deck as the bytes of an `.apkg` file: a zip holding the SQLite collection
    (`collection.anki2`) and an empty media list, as `genanki.Package.write_to_file` writes it,
    but with the collection in a temporary folder that is removed afterwards. `timestamp`
    fixes the notes' creation times (seconds since the epoch); `histories` (card id -> a
    learner's `CardHistory`) adds the reviewed cards' scheduling and reviews."""
    timestamp = time.time() if timestamp is None else timestamp
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="transferlab-apkg-") as folder:
        path = Path(folder) / "collection.anki2"
        con = sqlite3.connect(path)
        try:
            build_package(deck).write_to_db(con.cursor(), timestamp,
                                            itertools.count(int(timestamp * 1000)))
            add_history(con, histories or {}, timestamp)
            con.commit()
        finally:
            con.close()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(path, "collection.anki2")
            z.writestr("media", "{}")
    return buffer.getvalue()


def apkg_file_name(deck: Deck) -> str:
    return f"transferlab-{deck.id}.apkg"
