"""Export a flashcard deck to Anki: an `.apkg` file built with `genanki`.

Ids are stable, so importing a newer export into Anki updates the same deck and notes instead
of duplicating them: the note model has one fixed id, a deck's id is derived from its slug,
and each note's guid from its card id. Card texts are the deck's Markdown; the few forms the
decks use (bold, inline code, bullet lines, line breaks) become HTML, and everything else is
escaped, so no card text is read as markup by Anki.

Not here: loading decks (`engine.study.content`) or the download button (the flashcards page).
"""

from __future__ import annotations

import hashlib
import html
import io
import itertools
import re
import sqlite3
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Optional

import genanki

from engine.study.content import Deck

MODEL_ID = 1_607_392_931  # fixed forever: Anki matches notes of later exports to this model
MODEL_NAME = "Transfer Lab card"
GUID_NAMESPACE = "transferlab"
FIELDS = ("Front", "Back", "CardId")
CSS = (".card { font-family: sans-serif; font-size: 20px; text-align: left; color: #222; "
       "background: #fff; } code { font-family: monospace; background: #f2f2f2; }")

MODEL = genanki.Model(
    MODEL_ID, MODEL_NAME, fields=[{"name": f} for f in FIELDS],
    templates=[{"name": "Front to back", "qfmt": "{{Front}}",
                "afmt": "{{FrontSide}}<hr id=answer>{{Back}}"}],
    css=CSS)


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
                                 card.id],
            tags=["transferlab", deck.id, *card.tags],
            guid=genanki.guid_for(GUID_NAMESPACE, card.id)))
    return genanki.Package(anki_deck)


def export_apkg(deck: Deck, timestamp: Optional[float] = None) -> bytes:
    """The deck as the bytes of an `.apkg` file: a zip holding the SQLite collection
    (`collection.anki2`) and an empty media list, as `genanki.Package.write_to_file` writes it,
    but with the collection in a temporary folder that is removed afterwards. `timestamp`
    fixes the notes' creation times (seconds since the epoch)."""
    timestamp = time.time() if timestamp is None else timestamp
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="transferlab-apkg-") as folder:
        path = Path(folder) / "collection.anki2"
        con = sqlite3.connect(path)
        try:
            build_package(deck).write_to_db(con.cursor(), timestamp,
                                            itertools.count(int(timestamp * 1000)))
            con.commit()
        finally:
            con.close()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(path, "collection.anki2")
            z.writestr("media", "{}")
    return buffer.getvalue()


def apkg_file_name(deck: Deck) -> str:
    return f"transferlab-{deck.id}.apkg"
