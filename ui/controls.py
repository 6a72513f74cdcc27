"""Settings forms: widgets in, a frozen engine config out. Nothing here trains.

The settings that trigger training sit in an `st.form` with one submit button, so changing a
widget never starts work by itself. The last valid spec is remembered in `st.session_state`,
so it survives moving between pages and the form reopens with it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional

import streamlit as st

from engine.datasets import ALL_LABELS
from engine.plots import strategy_label
from engine.sweep import DEFAULT_LABELS, MAX_SEEDS, SweepSpec

CURVE_STRATEGIES = ("scratch", "probe", "finetune")  # the strategies this lesson compares
LABEL_CHOICES = DEFAULT_LABELS  # labelled-set sizes offered; ALL_LABELS (0) is "all"
SPEC_KEY = "transfer_curves.spec"  # session_state key of the last valid spec


def label_choice_text(k: int) -> str:
    return "all" if k == ALL_LABELS else str(k)


def last_curve_spec() -> SweepSpec:
    """The spec the page shows: the last one submitted in this session, else the default."""
    return st.session_state.get(SPEC_KEY) or SweepSpec()


def remember_curve_spec(spec: SweepSpec) -> None:
    st.session_state[SPEC_KEY] = spec


def curve_controls(current: SweepSpec) -> Optional[SweepSpec]:
    """The transfer-curve settings form, showing `current`.

    Returns the new spec when Run is pressed and None otherwise. Raises ValueError (from
    `SweepSpec`'s validation) when Run is pressed with settings that cannot run.
    """
    with st.form("curve_settings", border=True):
        left, right = st.columns(2)
        strategies = left.multiselect(
            "Strategies", options=list(CURVE_STRATEGIES), format_func=strategy_label,
            default=[s for s in current.strategies if s in CURVE_STRATEGIES],
            help="Each strategy gets its own curve. From scratch is the baseline the others "
                 "are measured against.")
        labels = right.multiselect(
            "Labels per class", options=list(LABEL_CHOICES), format_func=label_choice_text,
            default=[k for k in current.labels_per_class if k in LABEL_CHOICES],
            help="How many labelled target examples each class gets: the points of each curve. "
                 "'all' uses every training example outside the test split.")
        seeds = left.number_input("Seeds", min_value=1, max_value=MAX_SEEDS,
                                  value=int(current.seeds), step=1, width=160)
        left.caption("Seeds: repeats of every point, each with its own label draw, initial "
                     "weights and batch order. A curve is their mean; its band is ±1 standard "
                     "deviation.")
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if not run:
        return None
    return replace(current, strategies=tuple(strategies), labels_per_class=tuple(labels),
                   seeds=int(seeds))
