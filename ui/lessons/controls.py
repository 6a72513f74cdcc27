"""The Transfer curves section: its form (widgets in, `CurveSettings` out) and its declaration
(`CURVES`, what `ui.kit.section.show_section` draws). Nothing here trains.

The settings that trigger training sit in an `st.form` with one submit button, so changing a
widget never starts work by itself. The settings shown are the link's, else the ones this
session last used, else the defaults (`ui.kit.section.show_section`); they are kept in
`st.session_state` and in the URL, so a reload, a shared link or a return from another page
reopens them.
"""

from __future__ import annotations

from typing import Callable, Optional

import streamlit as st

from engine.core.datasets import labels_text
from engine.experiments.sweep import MAX_SEEDS
from ui.kit.section import Section
from ui.kit.shell import HANDOUT, page_view
from ui.lessons.curves import (curve_results, describe_spec, lesson_data_facts, live_curves,
                               pretraining_panel, stored_pretraining)
from ui.lessons.predict import hidden_results, prediction_panel, results_shown, saved_predictions
from engine.experiments.lessons.curves import (CURVE_STRATEGIES, DECAY_FACTORS, LABEL_CHOICES,
                                CurveSettings, option_label)



def last_curve_settings() -> CurveSettings:
    """The Transfer curves settings this session last showed, else the default."""
    return st.session_state.get(CURVES.key, CurveSettings())


def curve_controls(current: CurveSettings) -> Optional[Callable[[], CurveSettings]]:
    """The transfer-curve settings form, showing `current`. When Run is pressed, what builds
    the chosen settings (a ValueError says why they cannot run); None otherwise."""
    with st.form("curve_settings", border=True):
        left, right = st.columns(2)
        options = left.multiselect(
            "Strategies", options=list(CURVE_STRATEGIES), format_func=option_label,
            default=current.options(),
            help="Each strategy gets its own curve. From scratch is the baseline the others "
                 "are measured against. The last three refine fine-tuning block by block: see "
                 "the lesson 'How much of the network to train'.")
        # folded away unless the settings shown use it (a form cannot hide it as the choice
        # of strategies changes, so it waits, closed, under a title that says what it is for)
        with left.expander("Decay factor, for Discriminative learning rates only",
                           expanded="discriminative" in current.options()):
            factor = st.select_slider(
                "Decay factor (discriminative learning rates)", options=list(DECAY_FACTORS),
                value=current.decay(), format_func=lambda f: f"{f:g}",
                help="Applies only to Discriminative learning rates: with that strategy not "
                     "chosen, this slider changes nothing. The head learns at the full rate; the "
                     "top block at rate x factor, each block below at the rate above x factor "
                     "again. ULMFiT used 1/2.6 = 0.38.")
        labels = right.multiselect(
            "Labels per class", options=list(LABEL_CHOICES), format_func=labels_text,
            default=list(current.labels_per_class),
            help="How many labelled target examples each class gets: the points of each curve. "
                 "'all' uses every training example outside the test split.")
        seeds = left.number_input("Seeds", min_value=1, max_value=MAX_SEEDS,
                                  value=int(current.seeds), step=1, width=160)
        left.caption("Seeds: repeats of every point, each with its own label draw, initial "
                     "weights and batch order. A curve is their mean; with two or more seeds, "
                     "its band is ±1 standard deviation (one seed has no spread to show).")
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if not run:
        return None
    return lambda: CurveSettings.from_form(options, factor, labels, seeds)


def _before_results(settings: CurveSettings) -> None:
    """Predict first, the pretraining, and the heading of the results."""
    spec = settings.experiment()
    prediction_panel(spec)  # the learner's own guesses, before or after running
    if page_view() != HANDOUT:  # on paper: the settings, the chart and its readings
        pretraining_panel(spec, stored_pretraining(spec))
    st.subheader("Step 2: train on the target and compare")
    st.caption(f"Showing: {describe_spec(spec)}")


def _live(settings: CurveSettings) -> None:
    """The curves so far, unless predict first still hides them."""
    spec = settings.experiment()
    if results_shown(spec, saved_predictions(spec)):
        live_curves(settings)
        st.caption("Training: the curves fill in here, under the settings, as each run is stored.")
    else:
        hidden_results(spec)


def _results(settings: CurveSettings, notes) -> None:
    spec = settings.experiment()
    predictions = saved_predictions(spec)
    curve_results(settings, predictions, notes, results_shown(spec, predictions))


CURVES = Section("transfer_curves", "curves", CurveSettings, curve_controls, live=_live,
                 results=_results, above=lambda s: lesson_data_facts(s.experiment()),
                 before=_before_results)
SECTIONS = (CURVES,)
