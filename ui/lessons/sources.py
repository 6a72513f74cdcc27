"""The "Which source?" lesson's form, chart and readings.

The settings and the sweeps they run are `engine.experiments.lessons.sources`, the verdicts read from the runs
`engine.experiments.readings.sources`; here the forms that fill the settings, and what the page draws
from the store: one chart with a curve per source of features (the ImageNet network at the
input size chosen), what the comparison does and does not show, the accuracies at the smallest
labelled set and the verdict; then the section probing an earlier block. Nothing here trains.
"""

from __future__ import annotations

from typing import Callable, Optional

import pandas as pd
import streamlit as st

from engine.core.backbones import IMAGENET_SIZES, block_count
from engine.core.features import measured_passes
from engine.core.datasets import labels_per_class_text, labels_text
from engine.core.imagenet import IMAGENET_MODELS, weights_status
from engine.experiments.readings.sources import NATIVE_SIZE, block_reading, source_reading
from engine.experiments.stats import summarize
from engine.experiments.sweep import MAX_SEEDS
from engine.experiments.lessons.curve_sets import present_labels, total_runs
from ui.kit.text import plural, seconds_text
from ui.lessons.curves import chart_caption, curve_figure
from ui.kit.exports import show_chart
from ui.kit.jobs import stored
from ui.kit.section import Section, missing_note
from ui.kit.readings import show_readings
from engine.experiments.lessons.sources import (LABEL_CHOICES, EarlierBlockSettings, SourceSettings,
                                                block_choices, photo_title, target_choices)
from ui.kit.tables import show_table

SCOPE = (
    "**What this comparison shows, and what it does not.** It measures how well a linear probe "
    "separates the target's classes on each source's frozen features. The small CNN (pretrained "
    "on MNIST, or left untrained) reads the target as 28x28 grey pixels; {photo} reads it "
    "resized to {size}x{size} colour pixels{native}. The two networks differ in architecture, "
    "size, input size and pretraining data at once, so a gap between them mixes all of these; "
    "only the MNIST probe and the untrained probe share everything but the pretraining. The "
    "untrained network's **random features** are not a plain projection of the pixels: random "
    "convolutions with max-pooling and ReLU are a fixed nonlinear map that keeps the "
    "convolutional prior (local filters, tolerance to small shifts), with nothing learnt from "
    "data. Its outputs are about a hundred times smaller than a trained network's, so the probe "
    "reads them divided by their spread over the training images (one number, as one would "
    "standardise any input); read as they are, the probe barely moves in its training budget "
    "and can end at chance. And a probe measures features as they are: fine-tuning may rank "
    "the sources differently.")
SIZE_HELP = ("The side of the square images the ImageNet network sees. 224 px is its native "
             "size; smaller images put digits at a scale its filters were not trained on. The "
             "features are computed once per size and kept on disk. {cost}")


def pass_cost() -> str:
    """How long the first feature pass took on this server, per input size it has run at (its
    own measurement, `engine.core.features.measured_passes`), or that none has run yet."""
    times = {}
    for facts in measured_passes():
        shape = facts.get("input")
        if isinstance(shape, (list, tuple)) and len(shape) == 3 and "@" in str(facts.get("backbone")):
            times[int(shape[-1])] = facts  # the latest pass at each size
    if not times:
        return ("No feature pass has run on this server yet: the first Run's job line shows "
                "its progress, image by image.")
    measured = ", ".join(f"{seconds_text(f['seconds'])} at {size} px ({f['images']:,} images)"
                         for size, f in sorted(times.items()))
    return f"Measured on this server: {measured}."


def source_form(settings: SourceSettings) -> Optional[Callable[[], SourceSettings]]:
    """The settings form; when Run is pressed, what builds the chosen settings."""
    targets = target_choices()
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
        size = st.selectbox("ImageNet input size", IMAGENET_SIZES,
                            index=IMAGENET_SIZES.index(settings.input_size),
                            format_func=lambda n: f"{n} px" + (" (native)" if n == NATIVE_SIZE else ""),
                            help=SIZE_HELP.format(cost=pass_cost()))
        left, right = st.columns(2)
        labels = left.multiselect("Labels per class", options=list(LABEL_CHOICES),
                                  format_func=labels_text, default=list(settings.labels_per_class))
        seeds = right.number_input("Seeds", min_value=1, max_value=MAX_SEEDS, value=settings.seeds,
                                   step=1, width=160)
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if not run:
        return None
    return lambda: SourceSettings(tuple(labels), int(seeds), target, photo, int(size))


def missing_weights_note(settings: SourceSettings) -> None:
    """A warning when the ImageNet network is missing, then what the comparison shows."""
    ready, status = weights_status(settings.imagenet)
    if not ready:
        st.warning(f"{IMAGENET_MODELS[settings.imagenet].title} is not available on this server: "
                   f"{status}. The comparison runs without it.", icon=":material/cloud_off:")
    native = (" (its native size)" if settings.input_size == NATIVE_SIZE
              else f"; its native size is {NATIVE_SIZE}x{NATIVE_SIZE}")
    st.caption(SCOPE.format(photo=photo_title(settings.imagenet), size=settings.input_size,
                            native=native))


def draw_comparison(records: pd.DataFrame, settings: SourceSettings, key: str) -> None:
    if not records.empty:
        curves = settings.curves()
        show_chart(curve_figure(records, present_labels(records, curves),
                                strategy_of={c.label: c.strategy for c in curves}), key,
                   runs=records, name=f"which-source-{settings.target}")


def live_chart(settings: SourceSettings) -> None:
    """The chart of what is stored so far (the live panel redraws it while the job runs)."""
    draw_comparison(stored(settings), settings, "which_source_live")


def comparison_results(settings: SourceSettings, notes) -> None:
    """What the store holds for these settings: the chart, the accuracies at the smallest
    labelled set, and the reading; an invitation to press Run when nothing is stored."""
    specs = settings.specs()
    records, total = stored(settings), total_runs(specs)
    if records.empty:
        st.info(f"None of the {plural(total, 'run')} of these settings is stored yet. Press Run: "
                "the first run computes the ImageNet network's features of every target image "
                f"once; they are kept on disk for every later run. {pass_cost()}",
                icon=":material/info:")
        return
    missing_note(len(records), total, notes)
    st.caption(chart_caption(int(records["seed"].nunique())))
    draw_comparison(records, settings, "which_source")
    summary = summarize(records)
    k = int(summary["labels_per_class"].min())
    at_k = summary[summary["labels_per_class"] == k].set_index("strategy")["mean"]
    shown = [label for label in present_labels(records, settings.curves()) if label in at_k.index]
    st.subheader(f"At {labels_per_class_text(k)}")
    show_table({"Features from": shown, "Mean test accuracy": [f"{at_k[c]:.1f}%" for c in shown]},
               "at_k")
    best = max(shown, key=at_k.get)
    st.markdown(f"At {labels_per_class_text(k)} the highest mean accuracy here is that of "
                f"**{best}** ({at_k[best]:.1f}%); whether its lead counts is read below.")
    curves = settings.curves()
    reading = source_reading(records, curves[1].label, curves[2].label, settings.facts())
    if reading is not None:
        st.subheader(reading.heading)
        show_readings(reading.sentences, settings, "source")


BLOCK_INTRO = (
    "CS231n's advice for a target far from the source: train the linear classifier on an "
    "earlier layer's activations, not only on the last one's. Here {photo} (fed {size} px images) "
    "is probed twice on the same target, labels and seeds: on its last block, as above, and on "
    "an earlier feature block, whose (channels x height x width) output is average-pooled to a "
    "2x2 grid per channel. Only the new linear head trains; the earlier block's outputs are "
    "computed once per sweep.")


def block_form(settings: EarlierBlockSettings) -> Optional[Callable[[], EarlierBlockSettings]]:
    """The earlier-block form: which block; the rest follows the comparison's settings."""
    n = block_count(settings.comparison.imagenet)
    with st.form("which_source_block", border=True):
        block = st.selectbox("Earlier block", block_choices(settings.comparison.imagenet),
                             index=block_choices(settings.comparison.imagenet).index(settings.block),
                             format_func=lambda k: f"block {k} of {n}",
                             help="Feature blocks counted from the input, as on the depth page.")
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    return (lambda: EarlierBlockSettings(settings.comparison, int(block))) if run else None


def draw_blocks(settings: EarlierBlockSettings, key: str) -> pd.DataFrame:
    """The two probes' chart (both probes: one colour, two dashes); their stored runs."""
    records = stored(settings)
    if not records.empty:
        curves = settings.curves()
        show_chart(curve_figure(records, present_labels(records, curves),
                                strategy_of={c.label: c.strategy for c in curves}), key,
                   runs=records, name=f"earlier-block-probe-{settings.comparison.target}")
    return records


def block_results(settings: EarlierBlockSettings, notes) -> None:
    """The two probes' chart and the verdict read from them, or an invitation to press Run."""
    total = total_runs([settings.spec()])
    records = draw_blocks(settings, "which_source_block")
    if records.empty:
        st.info(f"None of the {plural(total, 'run')} of this probe is stored yet. Press Run.",
                icon=":material/info:")
        return
    missing_note(len(records), total, notes)
    curves = settings.curves()
    reading = block_reading(records, curves[0].label, curves[1].label, settings.block,
                            photo_title(settings.comparison.imagenet))
    if reading is not None:
        st.markdown(f"**{reading.heading}.**")
        show_readings(reading.sentences, settings.comparison, "block")


COMPARISON = Section("which_source", "comparison", SourceSettings, source_form, live=live_chart,
                     results=comparison_results, before=missing_weights_note)
EARLIER_BLOCK = Section("which_source", "earlier_block", EarlierBlockSettings, block_form,
                        live=lambda s: draw_blocks(s, "which_source_block_live"),
                        results=block_results)
SECTIONS = (COMPARISON, EARLIER_BLOCK)
