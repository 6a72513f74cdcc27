"""Predict first, on the Transfer curves and Transfer on text pages: the learner types the
accuracy they expect for each strategy at a few labelled-set sizes, and once runs are stored
the chart and a few sentences compare prediction with result. A `Topic` says which page's
predictions these are (their session keys, what guessing scores there, the lesson's name, which
a class that predicts on that lesson pools them under).

Until the learner has saved predictions for the settings shown, or chosen to see the results
without them (Skip in the form; Show the results, for a teacher, where the results would be),
that experiment's curves and head-start sentence stay hidden (`results_shown`). A student in a
class predicts blind: while the class holds the results back (`ui.kit.held`), neither saving
nor Skip shows them, and the page shows them by itself once the teacher reveals them.
Predictions and those choices are the learner's own, kept in their session (`PREDICTIONS_KEY`,
`REVEALED_KEY`); a new session (a reload) starts from the predictions the learner saved before
where someone kept them (a class does: `ui.kit.events.EARLIER_PREDICTIONS`).
`engine.study.predictions` does the comparison and `ui.kit.figures` draws them onto the figure.
Nothing here trains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core.datasets import ALL_LABELS, labels_per_class_text
from engine.experiments.stats import strategy_label
from engine.study.predictions import check_prediction, compare, comparison_sentences
from engine.experiments.sweep import SweepSpec
from ui.kit.events import EARLIER_PREDICTIONS, PREDICTIONS_SAVED, emit
from ui.kit.figures import with_predictions
from ui.kit.held import held_back, wait_for_reveal
from ui.kit.shell import page_view

PREDICTIONS_KEY = "transfer_curves.predictions"  # session_state: {(strategy, k): accuracy %}
# session_state: keys of the experiments whose results the learner chose to see unpredicted
REVEALED_KEY = "transfer_curves.revealed"
MAX_SIZES = 4  # labelled-set sizes offered for predictions


@dataclass(frozen=True)
class Topic:
    """Whose predictions: a page's session keys, widget keys and words."""

    predictions_key: str  # session_state: {(strategy, k): accuracy %}
    revealed_key: str  # session_state: experiments whose results the learner chose to see
    widgets: str  # prefix of the form's widget keys ("" for Transfer curves, as before)
    chance: Callable[[object], str]  # spec -> what guessing scores there, in words
    lesson: str  # the page's name: a class predicting on this lesson pools the predictions
    hidden: str = "the curves and the head start"  # what Predict first hides, in words


CURVES_TOPIC = Topic(PREDICTIONS_KEY, REVEALED_KEY, "",
                     lambda spec: "10% is guessing among the ten digits", "transfer_curves")


def prediction_sizes(spec: SweepSpec) -> list[int]:
    """Up to MAX_SIZES of the spec's labels per class: the two smallest (where pretraining
    matters most), the largest, and one from the middle. 'all' is left out: its size is only
    known once the run has drawn it."""
    sizes = [k for k in spec.labels_per_class if k != ALL_LABELS]
    if len(sizes) <= MAX_SIZES:
        return sizes
    middle = sizes[2:-1]
    return [sizes[0], sizes[1], middle[len(middle) // 2], sizes[-1]]


def _reveal(key: str, topic: Topic = CURVES_TOPIC) -> None:
    st.session_state.setdefault(topic.revealed_key, set()).add(key)


def _saved(topic: Topic = CURVES_TOPIC) -> dict:
    """This session's saved predictions, {(strategy, k): %}; a new session starts from the
    ones the learner saved earlier (`EARLIER_PREDICTIONS`, a class's), if any."""
    if topic.predictions_key not in st.session_state:
        earlier: dict = {}
        for found in emit(EARLIER_PREDICTIONS, lesson=topic.lesson):
            earlier.update(found)
        st.session_state[topic.predictions_key] = earlier
    return st.session_state[topic.predictions_key]


def _held(topic: Topic) -> Optional[str]:
    """Why a class holds these results back (only on the lesson the class predicts on)."""
    return held_back(lesson=topic.lesson) or None


def results_shown(spec: SweepSpec, predictions: dict, topic: Topic = CURVES_TOPIC) -> bool:
    """True when the spec's results may be drawn: the learner saved predictions for it, chose
    to see them without predicting, or it has no size to predict, and no class holds them
    back. In presentation mode and the handout always (presentation mode holds them back
    itself, `ui.kit.present.results_gate`)."""
    if page_view():
        return True
    return ((bool(predictions) or not prediction_sizes(spec)
             or spec.key() in st.session_state.get(topic.revealed_key, set()))
            and not _held(topic))


def hidden_results(spec: SweepSpec, topic: Topic = CURVES_TOPIC) -> None:
    """Where the spec's results would be, while they are hidden: why, and Show the results
    (for a teacher showing them to a class without predictions); in a class that holds them
    back, only why, and the page waits for the teacher's reveal."""
    held = _held(topic)
    if held:
        st.info(f"Blind until revealed: {held} {topic.hidden[0].upper()}{topic.hidden[1:]} "
                "appear here by themselves once your teacher shows them.",
                icon=":material/visibility_off:")
        wait_for_reveal(lesson=topic.lesson)
        return
    st.info(f"Predict first: {topic.hidden} of these settings stay hidden until "
            "you save your predictions above, or press Skip there.",
            icon=":material/visibility_off:")
    st.button("Show the results", key=f"{topic.widgets}predict.reveal", on_click=_reveal,
              args=(spec.key(), topic),
              icon=":material/visibility:",
              help="For a teacher showing the results to a class: shows the curves of these "
                   "settings without asking for predictions.")


def prediction_grid(strategies: Sequence[str], sizes: Sequence[int],
                    saved: dict, widgets: str = "") -> dict[tuple[str, int], float | None]:
    """One number input per strategy and size, each with its own label ('Linear probe at 5
    labels per class (%)'). On a wide screen they form a grid (sizes across, strategies down)
    and the labels are left to screen readers; on a narrow one, where the columns stack, the
    header row goes and each box shows its label."""
    # Streamlit stacks columns at 640 px and below (its `breakpoints.columns`): there each input
    # shows its label and the header row is hidden; above, the header row and the strategy
    # names label the grid, and each input's label is visually hidden, not removed.
    st.html("""<style>
@media (min-width: 641px) {
  .st-key-predict_grid [data-testid="stWidgetLabel"] {
    position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%);
    white-space: nowrap;
  }
}
@media (max-width: 640px) {
  .st-key-predict_sizes { display: none; }
}
</style>""")
    with st.container(key="predict_sizes"):
        header = st.columns(len(sizes) + 1)
        for column, k in zip(header[1:], sizes):
            column.markdown(f"**{labels_per_class_text(k)}**")
    values = {}
    with st.container(key="predict_grid"):
        for strategy in strategies:
            row = st.columns(len(sizes) + 1, vertical_alignment="center")
            row[0].markdown(f"**{strategy_label(strategy)}**")
            for column, k in zip(row[1:], sizes):
                values[(strategy, k)] = column.number_input(
                    f"{strategy_label(strategy)} at {labels_per_class_text(k)} (%)",
                    min_value=0.0, max_value=100.0, value=saved.get((strategy, k)), step=1.0,
                    format="%.1f", key=f"{widgets}predict.{strategy}.{k}", placeholder="%")
    return values


def saved_predictions(spec: SweepSpec, topic: Topic = CURVES_TOPIC) -> dict[tuple[str, int], float]:
    """The learner's saved predictions that apply to `spec` (its strategies, the sizes offered);
    none in presentation mode and the handout."""
    if page_view():
        return {}
    sizes = prediction_sizes(spec)
    return {key: v for key, v in _saved(topic).items()
            if key[0] in spec.strategies and key[1] in sizes}


def prediction_panel(spec: SweepSpec, topic: Topic = CURVES_TOPIC) -> dict[tuple[str, int], float]:
    """The predictions form for the spec's strategies; returns the saved predictions that
    apply to this spec (possibly none). Skip marks the spec's results as shown. Nothing in
    presentation mode and the handout (the class predicts aloud; a handout has no inputs)."""
    if page_view():
        return {}
    saved, held = _saved(topic), _held(topic)
    sizes = prediction_sizes(spec)
    applies = {key: v for key, v in saved.items()
               if key[0] in spec.strategies and key[1] in sizes}
    with st.expander("Predict first: how accurate will each strategy be?",
                     expanded=not applies, icon=":material/psychology:"):
        st.markdown(
            "Before you press Run, write down the test accuracy you expect, in percent: "
            f"{topic.chance(spec)}, 100% is perfect. Leave a box empty to skip it. "
            "Your predictions are drawn on the chart as dashed lines labelled **your "
            "prediction**, and once the runs are stored the page says how far off each one "
            "was. " + ("In your class, the results stay hidden until your teacher shows "
                       "them, and your saved predictions are kept with the class."
                       if held else "Until you save predictions or press Skip, the results of "
                       "these settings stay hidden. They stay in this browser session only, and go "
                       "to your class if you are in one that predicts on this page."))
        if not sizes:
            st.caption("Choose at least one number of labels per class other than 'all' to "
                       "predict.")
            return {}
        with st.form(f"{topic.widgets}predictions", border=False):
            values = prediction_grid(spec.strategies, sizes, saved, topic.widgets)
            save_column, skip_column = st.columns(2)
            save = save_column.form_submit_button("Save my predictions", icon=":material/save:")
            skip = not held and skip_column.form_submit_button(  # in a blind class, no Skip
                "Skip", icon=":material/skip_next:",
                help="See the results of these settings without predicting.")
        if skip:
            _reveal(spec.key(), topic)
        if save:
            for key, value in values.items():
                if value is None:
                    saved.pop(key, None)
                else:
                    saved[key] = check_prediction(float(value))
            applies = {key: v for key, v in saved.items()
                       if key[0] in spec.strategies and key[1] in sizes}
            st.caption(f"Saved {len(applies)} prediction{'s' if len(applies) != 1 else ''}.")
            # a learner in a class that predicts on this lesson: to the class too
            emit(PREDICTIONS_SAVED, predictions=saved, lesson=topic.lesson)
    return applies


def figure_with_predictions(figure: go.Figure, predictions: dict,
                            strategies: Sequence[str]) -> go.Figure:
    """The shared curve figure, or a copy of it with the predictions drawn on."""
    return with_predictions(figure, predictions, strategies) if predictions else figure


def prediction_report(records: pd.DataFrame, predictions: dict) -> None:
    """How far off each prediction was, for those with stored runs at their size."""
    if not predictions:
        return
    table = compare(records, predictions)
    st.markdown("##### Your predictions against the runs")
    if table.empty:
        st.caption("None of your predictions has stored runs at its size yet: press Run.")
        return
    st.markdown("\n".join(f"- {sentence}" for sentence in comparison_sentences(table)))
    waiting = len(predictions) - len(table)
    if waiting:
        st.caption(f"{waiting} more prediction{'s' if waiting != 1 else ''} will be compared "
                   "once their runs are stored.")
