"""Flashcards: study the decks with spaced repetition (FSRS), one card at a time.

UI only: `engine.study.srs.SrsStore` schedules and stores each learner's progress, `engine.study.content`
holds the decks, `engine.study.anki` builds the Anki export."""

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from engine.study.anki import apkg_file_name, export_apkg
from engine.study.content import ContentError
from engine.study.srs import MAX_RETENTION, MIN_RETENTION, RATINGS, SrsStore, interval_text
from engine.core.store import StoreError
from ui.shell import page_setup
from ui.study import learner_name, runs_caption, runs_deck, study_content, your_run_questions

DECK_KEY = "flashcards.deck"  # session_state: the chosen deck id
REVEALED_KEY = "flashcards.revealed"  # session_state: id of the card whose back is showing
LAST_KEY = "flashcards.last"  # session_state: what the last grade did, said once


def main() -> None:
    st.title("Flashcards")
    st.markdown(
        "Each card shows a question. Answer it in your head, press **Show answer**, then grade how "
        "well you remembered: **Again** (forgot), **Hard**, **Good** or **Easy**. The scheduler "
        "(FSRS, the algorithm Anki also offers) estimates how long you will remember each card and "
        "brings it back just before you would forget it: soon after a miss, days or weeks later "
        "after easy successes.")

    try:
        library = study_content()
    except ContentError as err:
        st.error(f"The flashcard decks could not be loaded: {err}", icon=":material/error:")
        return

    learner = learner_name()
    if learner is None:
        return

    try:
        store = SrsStore()
    except StoreError as err:  # a damaged or unwritable progress file: said, never replaced
        st.error(str(err), icon=":material/database:")
        return
    spec, records, run_qs = your_run_questions()
    decks = {d.id: d for d in library.decks}
    mine = runs_deck(spec, run_qs)
    if mine is not None:
        decks[mine.id] = mine
    now = datetime.now(timezone.utc)
    counts = {d.id: store.counts(learner, [c.id for c in d.cards], now) for d in decks.values()}
    st.dataframe(pd.DataFrame({
        "Deck": [d.title for d in decks.values()],
        "Due now": [counts[i].due for i in decks], "New": [counts[i].new for i in decks],
        "Learning": [counts[i].learning for i in decks], "Cards": [counts[i].total for i in decks],
    }), hide_index=True)
    if st.session_state.get(DECK_KEY) not in decks:
        st.session_state[DECK_KEY] = next(iter(decks))
    deck_id = st.selectbox("Deck to study", list(decks), key=DECK_KEY,
                           format_func=lambda d: decks[d].title)
    deck = decks[deck_id]
    st.caption(deck.description if deck_id != "your-runs" else runs_caption(spec, records))
    count = counts[deck_id]
    new, due, learning, later = st.columns(4)
    new.metric("New", count.new, help="Cards you have not studied yet.")
    due.metric("Due now", count.due, help="Cards you have seen that are ready for review.")
    learning.metric("Learning", count.learning, help="Seen just now and coming back within "
                    "minutes, before their first interval of days.")
    later.metric("Not due yet", count.later, help="Cards scheduled days or more ahead.")

    with st.expander("Scheduling and your progress"):
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
        st.caption(f"Progress is stored in `{store.path}` under the name you typed.")
        sure = st.checkbox("I want to start this deck over", key="flashcards.sure")
        if st.button("Forget my progress on this deck", key="flashcards.forget",
                     disabled=not sure):
            removed = store.forget(learner, [c.id for c in deck.cards])
            st.session_state[REVEALED_KEY] = None
            st.session_state[LAST_KEY] = f"Progress on {removed} card(s) of this deck was cleared."
            st.rerun()

    st.download_button(
        f"Export this deck to Anki (.apkg, {len(deck.cards)} cards)",
        data=lambda: export_apkg(deck), file_name=apkg_file_name(deck),
        mime="application/octet-stream", on_click="ignore", icon=":material/download:",
        help="A file Anki imports (File > Import). Importing a newer export updates the same notes "
             "instead of duplicating them. Your progress here is not included.")


    def reveal(card_id: str) -> None:
        st.session_state[REVEALED_KEY] = card_id


    def grade(card_id: str, name: str) -> None:
        card = store.review(learner, card_id, RATINGS[name])
        st.session_state[REVEALED_KEY] = None
        st.session_state[LAST_KEY] = (f"Graded **{name}**: this card comes back in "
                                      f"{interval_text(card.due - datetime.now(timezone.utc))}.")


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
            st.button("Show answer", type="primary", key="flashcards.reveal", on_click=reveal,
                      args=(card_id,), icon=":material/visibility:")
            return
        st.divider()
        st.markdown(card.back)
        st.caption("How well did you remember it? Each button shows when the card would come back.")
        intervals = store.preview(learner, card_id, now)
        for column, (name, rating) in zip(st.columns(4), RATINGS.items()):
            column.button(f"{name} · {interval_text(intervals[rating])}", key=f"flashcards.{name}",
                          on_click=grade, args=(card_id, name), width="stretch")


page_setup()
main()
