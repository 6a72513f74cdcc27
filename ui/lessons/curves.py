"""Panels of the transfer-curves lesson: engine results in, Streamlit elements out.

These helpers draw the data facts, the pretraining panel, the curves a running job has stored
so far, and the results: the chart (with the learner's predictions), the `n =` selector, the
head-start sentence and the table of runs (or, while predict first hides them, only that they
are hidden); chart figures are shared between sessions. The running job's box itself is
`ui.kit.section.live_panel`'s. Nothing here trains.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Mapping, Optional, Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.core.backbones import get_backbone
from engine.core.datasets import (TEST_FRACTION, get_dataset_info, labels_per_class_text,
                                  labels_text, load_dataset, split_target)
from engine.core.pretrain import PretrainResult, load_cached
from engine.experiments.readings import Sentence
from engine.experiments.readings.curves import head_start, sweep_readings
from engine.experiments.stats import failed_runs, label_sizes, strategy_label, summarize
from engine.experiments.sweep import SweepSpec, plan_runs
from ui.kit.exports import show_chart
from ui.kit.figures import transfer_curve_figure
from ui.kit.jobs import stored
from ui.lessons.predict import figure_with_predictions, hidden_results, prediction_report
from ui.kit.readings import show_readings
from ui.kit.tables import Compact, show_table
from ui.kit.shell import HANDOUT, page_view
from ui.kit.text import plural, seconds_text

_FIGURES: OrderedDict = OrderedDict()  # (runs and accuracies, strategies, marker) -> figure
_FIGURES_LOCK = threading.Lock()
FIGURE_CACHE_SIZE = 32


def curve_figure(records: pd.DataFrame, strategies: Sequence[str],
                 marker_n: Optional[int] = None,
                 strategy_of: Optional[Mapping[str, str]] = None) -> go.Figure:
    """`transfer_curve_figure`, built once per distinct set of results and shared by every
    session of the server. A classroom watching one job asks for the same figure once a second
    per student; building it costs tens of milliseconds, handing it out again nothing. Runs are
    identified by key and accuracy, since a lesson pack and the store hold the same run keys.
    The figure is shared: callers draw it and never change it. `strategy_of`: the engine
    strategy of each curve name that is not one, for its colour."""
    key = (tuple(zip(records["run_key"], records["test_accuracy"])), tuple(strategies), marker_n,
           tuple(sorted((strategy_of or {}).items())))
    with _FIGURES_LOCK:  # one build at a time: sessions asking for a new figure together wait
        if key in _FIGURES:  # for the first to build it instead of each building their own
            _FIGURES.move_to_end(key)
            return _FIGURES[key]
        figure = transfer_curve_figure(records, strategies, marker_n=marker_n,
                                       strategy_of=strategy_of)
        _FIGURES[key] = figure
        while len(_FIGURES) > FIGURE_CACHE_SIZE:
            _FIGURES.popitem(last=False)
        return figure


PREPROCESSING_NAMES = {"source": "Loaded from", "original_size": "Original size",
                       "scaling": "Pixel scaling", "resize": "Resizing"}


def describe_spec(spec: SweepSpec) -> str:
    """One line naming what a spec (a sweep, or a text sweep) trains, e.g. 'From scratch, Linear probe · labels per class
    1, 2 · 1 seed · 4 runs'."""
    labels = ", ".join(map(labels_text, spec.labels_per_class))
    return (f"{', '.join(strategy_label(s) for s in spec.strategies)} · labels per class {labels}"
            f" · {plural(spec.seeds, 'seed')} · {plural(len(spec.units()), 'run')}")


def lesson_data_facts(spec: SweepSpec) -> None:
    """An expander with the source, the target, its preprocessing and its fixed test split."""
    source, target = get_dataset_info(spec.source), get_dataset_info(spec.target)
    data = load_dataset(spec.target)
    split = split_target(data.y)
    with st.expander("The data: source, target, preprocessing and test split"):
        st.markdown(f"**Source: {source.title}.** {source.description}")
        st.markdown(f"**Target: {data.title}.** {target.description} Preprocessing, so the target "
                    "looks like the source to the network:")
        st.markdown("\n".join(f"- {PREPROCESSING_NAMES.get(k, k.replace('_', ' ').capitalize())}: "
                              f"`{v}`" for k, v in data.preprocessing.items()))
        st.markdown(
            f"**Test split:** {len(split.test_idx):,} images, {TEST_FRACTION:.0%} of each class, "
            "chosen once with a fixed seed and never used for training, so every run is scored on "
            f"the same images. **Training pool:** the other {len(split.pool_idx):,} images. A run "
            "with k labels per class draws k images of each class from the pool with its seed; "
            "for one seed, a larger k keeps the smaller draw and adds to it.")


def pretraining_panel(spec: SweepSpec, result: Optional[PretrainResult]) -> None:
    """What the backbone learned on the source, how long it took, and whether it was reused."""
    source, backbone = get_dataset_info(spec.source), get_backbone(spec.backbone)
    with st.container(border=True):
        st.subheader("Step 1: pretraining on the source")
        if not spec.needs_pretraining():
            st.markdown("None of the chosen strategies starts from pretrained weights, so these "
                        "runs need no pretraining.")
            return
        if result is None:
            passes = plural(spec.pretrain_epochs, "pass", "passes")
            st.info(f"No pretrained {backbone.title} for {source.title} exists yet. The first Run "
                    f"pretrains it ({passes} over the source; the job's bar follows its steps) "
                    "and caches the checkpoint; every later run reuses it.",
                    icon=":material/hourglass_empty:")
            return
        passes = plural(result.config.epochs, "pass", "passes")
        st.markdown(f"**{backbone.title}** trained on **{source.title}**: "
                    f"{result.n_source_train:,} images, {passes}.")
        accuracy, seconds, device, checkpoint = st.columns(4)
        accuracy.metric("Source accuracy", f"{result.source_accuracy:.1f}%",
                        help=f"On the {result.config.holdout_fraction:.0%} of the source held out "
                             "from pretraining.")
        seconds.metric("Pretraining time", f"{result.seconds:.1f} s")
        device.metric("Trained on", result.device.upper())
        checkpoint.metric("Checkpoint", checkpoint_state(result.created_at, time.time()),
                          help="Trained once, by the first Run that needed it (its time is "
                               "beside); every later run loads it from the cache.")
        written = datetime.fromtimestamp(result.created_at).strftime("%Y-%m-%d %H:%M")
        st.caption(f"Checkpoint `{result.checkpoint.name}`, written {written}. Its name is a hash "
                   "of everything that determines its weights, so it is trained once and reused.")


FRESH_CHECKPOINT_S = 3600  # a checkpoint younger than this says when it was trained


def checkpoint_state(created_at: float, now: float) -> str:
    """'trained 4 min ago' for a checkpoint trained within the hour (by this class's Run),
    'reused' for an older one (these runs loaded it)."""
    age = max(0.0, now - created_at)
    return f"trained {seconds_text(age)} ago" if age < FRESH_CHECKPOINT_S else "reused"


def stored_pretraining(spec: SweepSpec) -> Optional[PretrainResult]:
    """The cached backbone the spec's runs start from; None when none is cached or needed."""
    return load_cached(spec.pretrain_config()) if spec.needs_pretraining() else None


def n_selector(records: pd.DataFrame) -> int:
    """The `n =` slider over the labels-per-class values present in `records`."""
    names = {size.count: str(size) for size in sorted(set(label_sizes(records)))}
    values = sorted(names)
    if len(values) == 1:
        st.markdown(f"n = {labels_per_class_text(names[values[0]])}")
        return values[0]
    return st.select_slider(
        "n =", options=values, value=2 if 2 in values else values[0], format_func=names.get,
        help="Labelled examples per class: moves the dashed marker and the sentence below.")


def head_start_readings(records: pd.DataFrame, n: int, strategies) -> list[Sentence]:
    """The head-start sentence at `n` labels per class (in large type), then one sentence per
    transfer strategy over every size; or why there is none."""
    if "scratch" not in strategies or len(strategies) < 2:
        return [Sentence("*Choose From scratch and at least one transfer strategy to read the "
                         "head start.*")]
    first = head_start(records, n)
    if first is None:
        return [Sentence("*No head start to read at this size yet: it needs stored runs of From "
                         "scratch and of a transfer strategy here. Press Run to train the missing "
                         "runs.*")]
    return [Sentence(f"#### {first.text}", first.claims), *sweep_readings(records)]


def runs_table(records: pd.DataFrame, strategies) -> None:
    """Every run, one row each, with friendly columns, and the raw records as a CSV download.
    In presentation mode and the handout, where a hundred rows would fill a wall or three
    pages, the mean and spread of each point instead (`means_table`), and where every run is."""
    if page_view():
        means_table(records, strategies)
        return
    st.subheader("Every run")
    order = {s: i for i, s in enumerate(strategies)}
    df = (records.assign(_order=records["strategy"].map(order))
          .sort_values(["_order", "labels_per_class", "seed"], kind="stable"))
    table = pd.DataFrame({
        "Strategy": df["strategy"].map(strategy_label),
        "Labels per class": label_sizes(df).map(str).tolist(),
        "Labelled examples": df["n_train"].astype(int),
        "Seed": df["seed"].astype(int),
        "Test accuracy (%)": df["test_accuracy"].astype(float),
        "Train time (s)": df["train_seconds"].astype(float),
        "Device": df["device"],
    })
    failed = failed_runs(df)
    if failed.any():  # left out of the curves and readings: named here too
        table["Failed"] = ["failed: at chance" if f else "" for f in failed]
    show_table(table, "runs", formats={"Test accuracy (%)": ".1f", "Train time (s)": ".2f"},
               compact=Compact("{Strategy}, {Labels per class} per class, seed {Seed}"),
               sortable=True)
    st.download_button("Download the runs (CSV)", data=records.to_csv(index=False),
                       file_name="transfer_curves.csv", mime="text/csv", on_click="ignore",
                       icon=":material/download:")


def means_table(records: pd.DataFrame, strategies) -> None:
    """One row per labelled-set size, one column per strategy: the mean test accuracy over
    seeds ± its standard deviation (the chart's lines and bands, as numbers)."""
    summary = summarize(records)
    shown = [s for s in strategies if s in set(summary["strategy"])]
    sizes = sorted(set(summary["size"]))
    table = pd.DataFrame({"Labels per class": [str(size) for size in sizes]})
    for strategy in shown:
        at = summary[summary["strategy"] == strategy].set_index("size")
        table[strategy_label(strategy)] = [
            f"{at.at[size, 'mean']:.1f} ± {at.at[size, 'std']:.1f}" if size in at.index else "–"
            for size in sizes]
    st.subheader("Means over seeds")
    show_table(table, "means", compact=Compact("{Labels per class} per class"))
    seeds = int(records["seed"].nunique())
    st.caption(f"Test accuracy (%), mean ± standard deviation over {plural(seeds, 'seed')}. "
               f"Every run ({len(records)}) is listed on the lesson's page and in its CSV "
               "export.")


def live_curves(settings) -> None:
    """While the job runs: the curves of the runs stored so far, or a note that none is."""
    spec, records = settings.experiment(), stored(settings)
    if records.empty:
        st.info("No run of these settings is stored yet; the curves fill in as each run "
                "finishes.", icon=":material/hourglass_empty:")
    else:
        show_chart(curve_figure(records, spec.strategies), "transfer_curve_live")


def shown_records(settings, notes) -> pd.DataFrame:
    """The spec's stored runs (on a first visit with none stored, the lesson pack's, which
    `ui.kit.section.pack_note` announces); what is missing is said in `notes`."""
    spec = settings.experiment()
    records, total = stored(settings), len(plan_runs(spec))
    missing = total - len(records)
    if missing and not records.empty:
        notes.warning(f"{missing} of {plural(total, 'run')} of these settings are not stored "
                      "yet, so some points are missing or average fewer seeds. Press Run to "
                      "train only the missing runs.", icon=":material/warning:")
    return records


def chart_caption(seeds: int, of: str = "test accuracy") -> str:
    """What the lines (and bands) of a curve chart are, for runs of `seeds` seeds of `of`
    (on paper, the handout's still image, nothing to hover)."""
    hover = "" if page_view() == HANDOUT else " Hover a point for its numbers."
    if seeds > 1:
        return (f"Lines: mean {of} over seeds; bands: ±1 standard deviation over seeds; the x "
                f"axis is logarithmic.{hover}")
    return (f"Lines: {of} of one seed per point, so there is no spread to show (run more seeds "
            f"for bands of ±1 standard deviation); the x axis is logarithmic.{hover}")


def curve_results(settings, predictions: dict, notes, shown: bool = True) -> None:
    """The results of `spec` (`shown_records`, which notes where they come from): the chart
    with the learner's predictions, the `n =` slider, the head-start sentence, how the
    predictions fared and every run; while predict first hides them (`shown` False), only
    that they are hidden; or what to press when nothing is stored."""
    spec, chart_slot = settings.experiment(), st.empty()
    records = shown_records(settings, notes)
    if records.empty:
        chart_slot.info(f"None of the {plural(len(plan_runs(spec)), 'run')} of these settings is "
                        "stored yet. Press Run to train them; the curves fill in as each run "
                        "finishes.", icon=":material/info:")
        return
    if not shown:
        with chart_slot.container():
            hidden_results(spec)
        return
    st.caption(chart_caption(int(records["seed"].nunique())))
    n = n_selector(records)
    figure = curve_figure(records, spec.strategies, marker_n=n)
    show_chart(figure_with_predictions(figure, predictions, spec.strategies), "transfer_curve",
               runs=records, name=f"transfer-curves-{spec.target}", area=chart_slot)
    show_readings(head_start_readings(records, n, spec.strategies), settings, "curves")
    prediction_report(records, predictions)
    runs_table(records, spec.strategies)
