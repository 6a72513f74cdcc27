"""The Flashcards page's state and sections: the decks and their counts, the deck chooser, the
scheduling panel, the Anki export, and the card being studied.

The state of a study session is small: which card has its back showing (REVEALED_KEY) and what
the last grade did (LAST_KEY, said once). Revealing a card sets the first; grading it stores the
review through `engine.study.srs.SrsStore` (which schedules and keeps each learner's progress on
disk) and clears it. Nothing here schedules a card itself or changes how progress is stored.

The reviews live on disk under the learner's name, so they outlast any session; what a reload
would lose is the place: the name typed, the deck chosen and the card whose answer is showing.
Those are saved as a small JSON file in the data directory (`flashcards/<id>.json`, by
`ui.kit.saved`, as the pipeline's answers and a quiz round are) under a random id that the page's
link carries (`?deck=<id>`), so a reload, or the same link in a new tab, opens the same place.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

import pandas as pd
import streamlit as st

from engine.core.store import StoreError
from engine.study.anki import apkg_file_name, export_apkg
from engine.study.content import Content, Deck
from engine.study.srs import (MAX_RETENTION, MIN_RETENTION, RATINGS, DeckCounts, SrsStore,
                              check_learner, interval_text)
from ui.kit.saved import SavedStates
from ui.study.learner import NAME_KEY, RUNS_DECK_ID, YourRuns
from ui.kit.tables import show_table

DECK_KEY = "flashcards.deck"  # session_state: the chosen deck id
REVEALED_KEY = "flashcards.revealed"  # session_state: id of the card whose back is showing
LAST_KEY = "flashcards.last"  # session_state: what the last grade did, said once
PLACE_ID_KEY = "flashcards.place_id"  # session_state: the id the place is saved under
PLACE_KEY = "flashcards.place"  # session_state: the place as last saved
PLACES = SavedStates("flashcards", "deck", "flashcard session", max_bytes=2_000)


def parse_place(data: dict) -> dict:
    """A saved place (learner, deck, card showing); ValueError or TypeError when it is not one."""
    if set(data) != {"learner", "deck", "revealed"}:
        raise ValueError("a saved place has a learner, a deck and the card showing")
    check_learner(data["learner"])
    if not isinstance(data["deck"], str) or not isinstance(data["revealed"], (str, type(None))):
        raise TypeError("the deck and the card showing are ids")
    return data


def resume_place() -> None:
    """Before the name is asked: the place a link opens fills in the name, the deck and the
    card whose answer was showing (a deck that no longer exists falls back to the first)."""
    place = PLACES.opened(PLACE_ID_KEY, parse_place)
    if place is None:
        return
    st.session_state[NAME_KEY] = place["learner"]
    st.session_state.pop(f"{NAME_KEY}.input", None)  # the name input starts from it
    st.session_state[DECK_KEY] = place["deck"]
    st.session_state[REVEALED_KEY] = place["revealed"]
    st.session_state[PLACE_KEY] = place


def keep_place(learner: str, deck: Deck) -> None:
    """Save the place when it changed, and put its id in the page's link."""
    place = {"learner": learner, "deck": deck.id,
             "revealed": st.session_state.get(REVEALED_KEY)}
    place_id = PLACES.session_id(PLACE_ID_KEY)
    if st.session_state.get(PLACE_KEY) != place:
        try:
            PLACES.save(place_id, place)
        except (OSError, ValueError) as err:  # the disk, or the visitor's save limit
            st.caption(f"Your place could not be saved for a reload: {err}.")
            return
        st.session_state[PLACE_KEY] = place
    PLACES.link(place_id)


def open_progress() -> Optional[SrsStore]:
    """The learners' progress store, or None after saying why it cannot be used (a damaged or
    unwritable progress file is said, never replaced)."""
    try:
        return SrsStore()
    except StoreError as err:
        st.error(str(err), icon=":material/database:")
        return None


def study_decks(library: Content, runs: YourRuns) -> dict[str, Deck]:
    """Every deck by id: the written ones, then the one made from the learner's runs (if any)."""
    decks = {d.id: d for d in library.decks}
    mine = runs.deck()
    if mine is not None:
        decks[mine.id] = mine
    return decks


def deck_counts(store: SrsStore, learner: str, decks: dict[str, Deck],
                now: datetime) -> dict[str, DeckCounts]:
    return {i: store.counts(learner, [c.id for c in d.cards], now) for i, d in decks.items()}


def deck_table(decks: dict[str, Deck], counts: dict[str, DeckCounts]) -> None:
    show_table(pd.DataFrame({
        "Deck": [d.title for d in decks.values()],
        "Due now": [counts[i].due for i in decks], "New": [counts[i].new for i in decks],
        "Learning": [counts[i].learning for i in decks], "Cards": [counts[i].total for i in decks],
    }), "decks")


def choose_deck(decks: dict[str, Deck]) -> Deck:
    """The deck to study (the first one until the learner picks another)."""
    if st.session_state.get(DECK_KEY) not in decks:
        st.session_state[DECK_KEY] = next(iter(decks))
    deck_id = st.selectbox("Deck to study", list(decks), key=DECK_KEY,
                           format_func=lambda d: decks[d].title)
    return decks[deck_id]


def deck_caption(deck: Deck, runs: YourRuns) -> None:
    st.caption(deck.description if deck.id != RUNS_DECK_ID else runs.caption())


def deck_metrics(count: DeckCounts) -> None:
    """The deck's four counts in a row that wraps (columns would stack one per line on a phone)."""
    with st.container(horizontal=True, gap="medium"):
        st.metric("New", count.new, help="Cards you have not studied yet.", width="content")
        st.metric("Due now", count.due, help="Cards you have seen that are ready for review.",
                  width="content")
        st.metric("Learning", count.learning, help="Seen just now and coming back within "
                  "minutes, before their first interval of days.", width="content")
        st.metric("Not due yet", count.later, help="Cards scheduled days or more ahead.",
                  width="content")


def scheduling_panel(store: SrsStore, learner: str, deck: Deck) -> None:
    """The desired retention (saved as it changes), how FSRS schedules, and starting over."""
    retention = st.slider(
        "Desired retention", min_value=MIN_RETENTION, max_value=MAX_RETENTION,
        value=store.retention(learner), step=0.01, key=f"flashcards.retention.{learner}",
        help="The chance of remembering a card on the day it comes due that the scheduler aims "
             "for. Higher means shorter intervals and more reviews; 0.90 is the usual choice.")
    if abs(retention - store.retention(learner)) > 1e-9:
        store.set_retention(learner, retention)
        st.success(f"Saved: your reviews now aim at {retention:.0%} recall. It applies from "
                   "your next grade on.", icon=":material/check:")
    st.markdown(
        "FSRS keeps two numbers per card: its **stability** (the number of days after which "
        "your chance of recalling it falls to 90%) and its **difficulty** (1 to 10). Each "
        "grade updates both; the next interval is the time at which recall is predicted to "
        "drop to your desired retention. New cards first go through two short steps (1 and "
        "10 minutes) before their first interval in days.")
    st.caption("Progress is stored on this server under the name you typed; your place (the "
               "name, the deck and the card showing) is saved under this page's link, so a "
               "reload opens it again.")
    sure = st.checkbox("I want to start this deck over", key="flashcards.sure")
    if st.button("Forget my progress on this deck", key="flashcards.forget", disabled=not sure):
        removed = store.forget(learner, [c.id for c in deck.cards])
        st.session_state[REVEALED_KEY] = None
        st.session_state[LAST_KEY] = f"Progress on {removed} card(s) of this deck was cleared."
        st.rerun()


def anki_export(store: SrsStore, learner: str, deck: Deck, reviewed: int) -> None:
    """The .apkg download: the deck's cards, with `learner`'s reviews of the `reviewed` ones."""
    ids = [c.id for c in deck.cards]
    st.download_button(
        f"Export to Anki ({len(deck.cards)} cards, {reviewed} reviewed)",
        data=lambda: export_apkg(deck, histories=store.histories(learner, ids)),
        file_name=apkg_file_name(deck), mime="application/octet-stream", on_click="ignore",
        icon=":material/download:",
        help="An .apkg file of this deck that Anki imports (File > Import). What carries over: every card with its "
             "source, and for the cards you have reviewed here, each review (its time and "
             "button) and where the card stands: learning or review, its interval and its due "
             "date (to the day; Anki counts days in your time zone). Tick *Include reviews* "
             "(older Anki: *Import any learning progress*) when importing. What does not: "
             "the FSRS parameters and your desired retention (Anki uses its own settings and, "
             "with FSRS on, recomputes each card's memory from the reviews) and the time you "
             "took to answer. Importing a newer export updates the same notes instead of "
             "duplicating them; the history comes in only with cards new to your collection.")


def _reveal(card_id: str) -> None:
    st.session_state[REVEALED_KEY] = card_id


def _grade(store: SrsStore, learner: str, card_id: str, name: str) -> None:
    """Store the grade; the note gives the interval the review set, measured from the moment
    of the review, as the button did (a later clock would round 5.5 min down to 5)."""
    now = datetime.now(timezone.utc)
    card = store.review(learner, card_id, RATINGS[name], now)
    st.session_state[REVEALED_KEY] = None
    st.session_state[LAST_KEY] = (f"Graded **{name}**: this card comes back in "
                                  f"{interval_text(card.due - now)}.")


def study_card(store: SrsStore, learner: str, deck: Deck, now: datetime) -> None:
    """What the last grade did, then the deck's next card: its front, Show answer, then its back
    and the four grades (each with the interval it would give); or when the next card is due."""
    last = st.session_state.pop(LAST_KEY, None)
    if last:
        st.toast(last, icon=":material/schedule:")
        st.caption(last)
    cards = {c.id: c for c in deck.cards}
    card_id = store.next_card(learner, list(cards), now)
    if card_id is None:
        upcoming = store.next_due(learner, list(cards))
        when = (f" The next card comes due in {interval_text(upcoming - now)}."
                if upcoming is not None else "")
        st.success(f"Nothing left to study in this deck for now.{when} Pick another deck, or come "
                   "back later.", icon=":material/task_alt:")
        return
    card = cards[card_id]
    stored = store.cards(learner, [card_id]).get(card_id)
    with st.container(border=True):
        st.caption("New card" if stored is None else "Review")
        st.markdown(f"#### {card.front}")
        if st.session_state.get(REVEALED_KEY) != card_id:
            st.button("Show answer", type="primary", key="flashcards.reveal", on_click=_reveal,
                      args=(card_id,), icon=":material/visibility:")
            return
        st.divider()
        st.markdown(card.back)
        if card.source:
            st.caption(f"Source: {card.source}")
        st.caption("How well did you remember it? **Again** if you forgot. Each button shows when "
                   "the card would come back.")
        intervals = store.preview(learner, card_id, now)
        for column, (name, rating) in zip(st.columns(4), RATINGS.items()):
            column.button(f"{name} · {interval_text(intervals[rating])}", key=f"flashcards.{name}",
                          on_click=_grade, args=(store, learner, card_id, name), width="stretch")
