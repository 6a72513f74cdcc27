"""Flashcards: study the decks with spaced repetition (FSRS), one card at a time.

Layout and words only: `ui.flashcards` holds the study state and draws the sections;
`engine.study.srs.SrsStore` schedules and stores each learner's progress, `engine.study.content`
holds the decks, `engine.study.anki` builds the Anki export."""

from datetime import datetime, timezone

import streamlit as st

from ui.flashcards import (anki_export, choose_deck, deck_counts, deck_metrics, deck_table,
                           open_progress, scheduling_panel, study_card, study_decks)
from ui.shell import page_setup
from ui.study import learner_name, loaded_content, your_runs


def main() -> None:
    st.title("Flashcards")
    st.markdown(
        "Each card shows a question. Answer it in your head, press **Show answer**, then grade how "
        "well you remembered: **Again** (forgot), **Hard**, **Good** or **Easy**. The scheduler "
        "(FSRS, the algorithm Anki also offers) estimates how long you will remember each card and "
        "brings it back just before you would forget it: soon after a miss, days or weeks later "
        "after easy successes.")
    library = loaded_content("The flashcard decks")
    if library is None:
        return
    learner = learner_name()
    if learner is None:
        return
    store = open_progress()
    if store is None:
        return
    runs = your_runs()
    decks = study_decks(library, runs)
    now = datetime.now(timezone.utc)
    counts = deck_counts(store, learner, decks, now)
    deck_table(decks, counts)
    deck = choose_deck(decks, runs)
    deck_metrics(counts[deck.id])
    with st.expander("Scheduling and your progress"):
        scheduling_panel(store, learner, deck)
    anki_export(deck)
    study_card(store, learner, deck, now)


page_setup()
main()
