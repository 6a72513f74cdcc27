"""The "Which source?" lesson's form, chart and readings.

The settings and the sweeps they run are `ui.sections.sources`; here the form that fills them,
and what the page draws from the store: one chart with a curve per source of features, the
accuracies at the smallest labelled set, and why the winner won. Nothing here trains.
"""

from __future__ import annotations

from typing import Callable, Optional

import pandas as pd
import streamlit as st

from engine.core.backbones import feature_weights
from engine.core.datasets import labels_text
from engine.core.imagenet import IMAGENET_MODELS, weights_status
from engine.experiments.stats import summarize
from engine.experiments.sweep import MAX_SEEDS
from ui.curve_sets import curve_records, present_labels, total_runs
from ui.curves import curve_figure, plural
from ui.section_run import missing_note
from ui.sections.sources import DEFAULT_TARGET, LABEL_CHOICES, SourceSettings

WHY_DIGITS = (
    "{photo}'s feature layers hold {big:,} weights, trained on more than a million labelled "
    "photos; the small CNN's hold {small:,}, trained on 5,000 digits. Yet with very few labels the "
    "probe on MNIST features is far ahead, and the ImageNet probe can trail even training from "
    "scratch. A linear probe can only reweight the features it is given. The MNIST network's last "
    "layer already separates strokes, loops and digit shapes, so a few examples per class are "
    "enough to point the probe at the right ones. ImageNet's features describe fur, wheels, "
    "textures and colour in natural photographs; a blurry grey 8x8 digit blown up to 96x96 pixels "
    "lands in a corner of that space where the digit classes are not laid out apart, so the probe "
    "needs many more labels to find a boundary. Random features carry no knowledge at all, only a "
    "random projection of the pixels.\n\n"
    "**Domain match matters more than size.** Pretraining transfers what the source taught; when "
    "the source's world looks like the target's, a small model wins. With more labels the gaps "
    "narrow, as every strategy learns more from the target itself.")
WHY_OTHER = (
    "{photo}'s feature layers hold {big:,} weights learnt from a million photographs; the small "
    "CNN's hold {small:,} learnt from 5,000 grey digits. Which one helps depends on what the "
    "target's images look like: colour, texture and natural shapes favour ImageNet's features, pen "
    "strokes on a plain background favour the digit network's. **Domain match matters more than "
    "size**: a source helps as far as its features separate the target's classes, which is what "
    "the probe measures.")


def source_form(settings: SourceSettings,
                targets: dict[str, str]) -> Optional[Callable[[], SourceSettings]]:
    """The settings form; when Run is pressed, what builds the chosen settings."""
    with st.form("which_source_settings", border=True):
        target = st.selectbox("Target", list(targets), index=list(targets).index(settings.target),
                              format_func=targets.get,
                              help="The task every source is probed on. Download datasets or "
                                   "upload your own images on the Data and models page.")
        photo = st.selectbox(
            "ImageNet network", list(IMAGENET_MODELS),
            index=list(IMAGENET_MODELS).index(settings.imagenet),
            format_func=lambda n: IMAGENET_MODELS[n].title + ("" if weights_status(n)[0]
                                                               else " (weights not downloaded)"),
            help="EfficientNet-Lite0 works offline; torchvision's networks need their weights file.")
        left, right = st.columns(2)
        labels = left.multiselect("Labels per class", options=list(LABEL_CHOICES),
                                  format_func=labels_text, default=list(settings.labels_per_class))
        seeds = right.number_input("Seeds", min_value=1, max_value=MAX_SEEDS, value=settings.seeds,
                                   step=1, width=160)
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if not run:
        return None
    return lambda: SourceSettings(tuple(labels), int(seeds), target, photo)


def missing_weights_note(settings: SourceSettings) -> None:
    ready, status = weights_status(settings.imagenet)
    if not ready:
        st.warning(f"{IMAGENET_MODELS[settings.imagenet].title} is not available on this server: "
                   f"{status}. The comparison runs without it.", icon=":material/cloud_off:")


def draw_comparison(records: pd.DataFrame, settings: SourceSettings, key: str) -> None:
    if not records.empty:
        st.plotly_chart(curve_figure(records, present_labels(records, settings.curves())), key=key)


def live_chart(settings: SourceSettings) -> None:
    """The chart of what is stored so far (the live panel redraws it while the job runs)."""
    draw_comparison(curve_records(settings.specs(), settings.curves()), settings,
                    "which_source_live")


def comparison_results(settings: SourceSettings, notes) -> None:
    """What the store holds for these settings: the chart, the accuracies at the smallest
    labelled set, and the reading; an invitation to press Run when nothing is stored."""
    specs = settings.specs()
    records, total = curve_records(specs, settings.curves()), total_runs(specs)
    if records.empty:
        st.info(f"None of the {plural(total, 'run')} of these settings is stored yet. Press Run: "
                "the first run computes the ImageNet network's features of every target image "
                "once (about 20 s for EfficientNet-Lite0 on the UCI digits on two CPU cores); they "
                "are kept on disk for every later run.", icon=":material/info:")
        return
    missing_note(len(records), total, notes)
    st.caption("Lines: mean test accuracy over seeds; bands: ±1 standard deviation; log x axis.")
    draw_comparison(records, settings, "which_source")
    summary = summarize(records)
    k = int(summary["labels_per_class"].min())
    at_k = summary[summary["labels_per_class"] == k].set_index("strategy")["mean"]
    shown = [label for label in present_labels(records, settings.curves()) if label in at_k.index]
    st.subheader(f"At {k} label{'s' if k != 1 else ''} per class")
    st.table({"Features from": shown, "Mean test accuracy": [f"{at_k[c]:.1f}%" for c in shown]})
    best = max(shown, key=at_k.get)
    st.markdown(f"At {k} label{'s' if k != 1 else ''} per class the best features here are: "
                f"**{best.lower()}** ({at_k[best]:.1f}%).")
    facts = dict(photo=IMAGENET_MODELS[settings.imagenet].title.split(" (")[0],
                 small=feature_weights("small_cnn"), big=feature_weights(settings.imagenet))
    digits = settings.target == DEFAULT_TARGET
    st.subheader("Why the bigger network loses here" if digits else "Reading the result")
    st.markdown((WHY_DIGITS if digits else WHY_OTHER).format(**facts))
