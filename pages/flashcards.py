"""Flashcards: study the decks with spaced repetition (FSRS), one card at a time.

Layout and words only: `ui.study.flashcards` holds the study state and draws the sections;
`engine.study.srs.SrsStore` schedules and stores each learner's progress, `engine.study.content`
holds the decks, `engine.study.anki` builds the Anki export. The card comes right after the name
and the deck, so it shows without scrolling; the counts and settings follow it."""

from datetime import datetime, timezone

import streamlit as st

from ui.study.flashcards import (anki_export, choose_deck, deck_caption, deck_counts, deck_metrics,
                           deck_table, keep_place, open_progress, resume_place, scheduling_panel,
                           study_card, study_decks)
from ui.kit.shell import page_setup
from ui.study.learner import learner_name, loaded_content, your_runs


def main() -> None:
    st.title("Flashcards")
    st.markdown(
        "Answer each card in your head, press **Show answer**, then grade how well you "
        "remembered. The scheduler (FSRS, which Anki also offers) brings each card back just "
        "before you would forget it.")
    library = loaded_content("The flashcard decks")
    if library is None:
        return
    resume_place()
    name_column, deck_column = st.columns(2)
    with name_column:
        learner = learner_name()
    if learner is None:
        return
    store = open_progress()
    if store is None:
        return
    runs = your_runs()
    decks = study_decks(library, runs)
    with deck_column:
        deck = choose_deck(decks)
    keep_place(learner, deck)
    now = datetime.now(timezone.utc)
    study_card(store, learner, deck, now)
    deck_caption(deck, runs)
    counts = deck_counts(store, learner, decks, now)
    deck_metrics(counts[deck.id])
    with st.expander("Every deck: new, due and learning cards"):
        deck_table(decks, counts)
    with st.expander("Scheduling and your progress"):
        scheduling_panel(store, learner, deck)
    anki_export(store, learner, deck, reviewed=counts[deck.id].total - counts[deck.id].new)


page_setup()
main()
