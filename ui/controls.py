"""The Transfer curves settings: the form (widgets in, `CurveSettings` out) and where the page's
settings come from and go. Nothing here trains.

The settings that trigger training sit in an `st.form` with one submit button, so changing a
widget never starts work by itself. The settings shown are the link's, else the ones this
session last used, else the defaults (`ui.experiments.section_settings`); they are kept in
`st.session_state` and in the URL, so a reload, a shared link or a return from another page
reopens them.
"""

from __future__ import annotations

from typing import Callable, Optional

import streamlit as st

from engine.core.datasets import labels_text
from engine.experiments.sweep import MAX_SEEDS, SweepSpec
from ui.experiments import section_settings
from ui.sections.curves import (CURVE_STRATEGIES, DECAY_FACTORS, DEFAULT_DECAY, LABEL_CHOICES,
                                CurveSettings, option_label)

SETTINGS_KEY = "transfer_curves.settings"  # session_state: the CurveSettings last shown
# (DEFAULT_DECAY and DECAY_FACTORS are imported from here by the depth lesson's form)


def shown_curve_settings() -> tuple[CurveSettings, list[str]]:
    """The settings the page shows and the notices about a bad link; kept in the session, so
    a link's settings are still there after a visit to another page."""
    settings, notices = section_settings(CurveSettings, SETTINGS_KEY)
    st.session_state[SETTINGS_KEY] = settings
    return settings, notices


def last_curve_experiment() -> SweepSpec:
    """The sweep of the Transfer curves settings this session last showed, else the default."""
    return st.session_state.get(SETTINGS_KEY, CurveSettings()).experiment()


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
        factor = left.select_slider(
            "Decay factor (discriminative learning rates)", options=list(DECAY_FACTORS),
            value=current.decay(), format_func=lambda f: f"{f:g}",
            help="Applies only to Discriminative learning rates: with that strategy not chosen, "
                 "this slider changes nothing. The head learns at the full rate; the top block "
                 "at rate x factor, each block below at the rate above x factor again. ULMFiT "
                 "used 1/2.6 = 0.38.")
        left.caption("The decay factor applies only when Discriminative learning rates is "
                     "among the strategies.")
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
