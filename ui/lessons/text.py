"""The "Transfer on text" lesson's form, chart and readings: words from scratch against a linear
probe on frozen MiniLM sentence features, over labels per class, on one of the four sentiment
corpora, with the majority-class baseline drawn. The settings and their text sweep are
`engine.experiments.lessons.text`; nothing here trains."""

from __future__ import annotations

from typing import Callable, Optional

import plotly.graph_objects as go
import streamlit as st

from engine.core.datasets import labels_text
from engine.core.text import TEXT_DATASETS
from engine.experiments.lessons.links import MAX_SEEDS
from engine.experiments.lessons.text import TEXT_LABEL_CHOICES, TextCurveSettings
from engine.experiments.readings.curves import sweep_readings
from engine.experiments.text_sweep import LORA_RANK, TEXT_STRATEGIES, majority_baseline
from ui.kit.exports import show_chart
from ui.kit.figures import reference_line
from ui.kit.jobs import stored
from ui.kit.readings import show_readings
from ui.kit.section import Section, missing_note
from ui.kit.text import plural
from ui.lessons.curves import chart_caption, curve_figure


STRATEGY_NAMES = {"scratch": "From scratch (words)", "probe": "Linear probe (MiniLM, frozen)",
                  "lora": f"LoRA r={LORA_RANK} (MiniLM adapts)", "finetune": "Fine-tune (all of MiniLM)"}


def text_form(current: TextCurveSettings) -> Optional[Callable[[], TextCurveSettings]]:
    """The corpus, the labelled-set sizes and the seeds, showing `current`."""
    with st.form("text_settings", border=True):
        top_left, top_right = st.columns([2, 4])
        names = list(TEXT_DATASETS)
        target = top_left.selectbox("Corpus", names, index=names.index(current.target),
                                    format_func=lambda n: TEXT_DATASETS[n].title)
        strategies = top_right.multiselect(
            "Strategies", TEXT_STRATEGIES, default=list(current.strategies),
            format_func=STRATEGY_NAMES.get,
            help="LoRA and fine-tuning train the transformer itself: about 15 s a run on two "
                 "cores (30 steps of 16 sentences), where the probe's runs take a moment once "
                 "the corpus's features are computed.")
        mid, right = st.columns([4, 1])
        labels = mid.multiselect("Labels per class", TEXT_LABEL_CHOICES,
                                 default=list(current.labels_per_class), format_func=labels_text,
                                 help="Sentences with their label per side (negative, positive) "
                                      "the classifier learns from; 'all' is every one outside "
                                      "the test sentences.")
        seeds = right.number_input("Seeds", 1, MAX_SEEDS, current.seeds, key="text_seeds_input",
                                   help="Label draws per point. With every label the draw is "
                                        "the same, so 'all' is trained once.")
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    return (lambda: TextCurveSettings(target, tuple(strategies), tuple(labels), int(seeds))) \
        if run else None


def text_chart(settings: TextCurveSettings, key: str):
    """Both curves from what is stored, with the majority-class line; their runs."""
    records = stored(settings)
    if not records.empty:
        figure = go.Figure(curve_figure(records, settings.experiment().strategies))  # a copy
        reference_line(figure, majority_baseline(settings.target),
                       "always the commoner side (majority class)")
        show_chart(figure, key, runs=records, name=f"text-curves-{settings.target}")
    return records


def text_results(settings: TextCurveSettings, notes) -> None:
    """The chart and the reading, or an invitation to press Run."""
    total = len(settings.experiment().units())
    records = text_chart(settings, "text_curves")
    if records.empty:
        st.info(f"None of the {plural(total, 'run')} of these settings is stored yet. Press Run.",
                icon=":material/info:")
        return
    missing_note(len(records), total, notes)
    st.caption(chart_caption(int(records["seed"].nunique())) + " From scratch: words counted "
               "from the labelled sentences alone (TF-IDF of words and word pairs). Linear "
               "probe: MiniLM's frozen sentence features. Both end in the same logistic "
               "regression.")
    show_readings(sweep_readings(records), settings, "text_curves")


TEXT_CURVES = Section("transfer_on_text", "curves", TextCurveSettings, text_form,
                      live=lambda s: text_chart(s, "text_curves_live"), results=text_results)
SECTIONS = (TEXT_CURVES,)
