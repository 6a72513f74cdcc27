"""The "Transfer on text" lesson's sections.

- `curves`: words from scratch, a linear probe on frozen MiniLM sentence features, LoRA and
  fine-tuning, over labels per class, on one corpus, with the majority-class baseline drawn,
  its readings, and the error table (the test sentences each method got wrong).
- `shift`: trained on one sentiment corpus and tested on the others, then adapted with a few
  of their labels, beside their own labels alone.
The settings and their experiments are `engine.experiments.lessons.text`; nothing here trains."""

from __future__ import annotations

from typing import Callable, Optional

import plotly.graph_objects as go
import streamlit as st

import pandas as pd

from engine.core.datasets import labels_per_class_text, labels_text
from engine.core.datatypes import DatasetError
from engine.core.quotas import QuotaError
from engine.core.text import (MAX_TEXT_BYTES, MAX_TEXT_SENTENCES, MIN_TEXT_PER_CLASS,
                              TEXT_DATASETS, import_text, text_title, text_uploads)
from engine.experiments.lessons.links import MAX_SEEDS
from engine.experiments.lessons.text import (ADDED_CHOICES, SENTIMENT, TEXT_LABEL_CHOICES,
                                             TRADEOFF_LABELS, TextCurveSettings, TextLoraSettings,
                                             TextShiftSettings, model_weights, rank_sort,
                                             trainable_of)
from engine.experiments.readings.lora import tradeoff_readings
from engine.experiments.readings.curves import sweep_readings
from engine.experiments.readings.text import adapt_sentence, corpus_name, shift_sentence
from engine.experiments.stats import label_sizes, strategy_label, summarize
from engine.experiments.text_sweep import (DETERMINISTIC, LORA_RANK, SOURCE_LABELS,
                                           TEXT_LORA_RANKS, TEXT_STRATEGIES, lora_rank,
                                           majority_baseline, mistakes)
from ui.kit.exports import show_chart
from ui.kit.figures import chart_layout, error_bars, reference_line, strategy_color
from ui.kit.jobs import stored
from ui.kit.readings import show_readings
from ui.kit.section import Section, stored_note
from ui.kit.shell import page_view
from ui.kit.tables import Compact, show_table
from ui.kit.text import plain, plural
from ui.kit.visitor import take_upload
from ui.lessons.lora import tradeoff_figure
from ui.lessons.predict import (Topic, figure_with_predictions, hidden_results, prediction_panel,
                                prediction_report, results_shown, saved_predictions)
from ui.lessons.curves import chart_caption, curve_figure


STRATEGY_NAMES = {"scratch": "From scratch (words)", "probe": "Linear probe (MiniLM, frozen)",
                  "lora": f"LoRA r={LORA_RANK} (MiniLM adapts)", "finetune": "Fine-tune (all of MiniLM)"}


def corpus_box(area, current: str, key: Optional[str] = None) -> str:
    """The Corpus choice: the shipped corpora and the sentences uploaded here, showing
    `current` (a link's upload that is gone still shows, and Run then says why)."""
    names = list(TEXT_DATASETS) + [u.name for u in text_uploads()]
    if current not in names:
        names.append(current)
    return area.selectbox("Corpus", names, index=names.index(current), format_func=text_title,
                          key=key)


def text_form(current: TextCurveSettings) -> Optional[Callable[[], TextCurveSettings]]:
    """The corpus, the labelled-set sizes and the seeds, showing `current`."""
    with st.form("text_settings", border=True):
        top_left, top_right = st.columns([2, 4])
        target = corpus_box(top_left, current.target)
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


def baseline(target: str) -> Optional[float]:
    """The majority-class accuracy of `target`'s test sentences; None (and a warning once on
    the page) when the corpus cannot be read here, e.g. its package is not installed: the
    stored runs still show."""
    try:
        return majority_baseline(target)
    except DatasetError as err:
        st.warning(f"{err}", icon=":material/warning:")
        return None


def _chance(spec) -> str:
    found = baseline(spec.target)
    return ("guessing scores about one in as many as there are classes" if found is None else
            f"always answering the commoner class scores {found:.1f}% on these test sentences")


TEXT_TOPIC = Topic("transfer_on_text.predictions", "transfer_on_text.revealed", "text_",
                   _chance, "transfer_on_text", "the curves, their reading and the error table")


def text_chart(settings: TextCurveSettings, key: str, predictions: Optional[dict] = None):
    """The curves from what is stored, with the majority-class line and the learner's
    predictions; their runs."""
    records = stored(settings)
    if not records.empty:
        strategies = settings.experiment().strategies
        figure = go.Figure(curve_figure(records, strategies))  # a copy
        line = baseline(settings.target)
        if line is not None:
            reference_line(figure, line, "always the commoner side (majority class)")
        show_chart(figure_with_predictions(figure, predictions or {}, strategies), key,
                   runs=records, name=f"text-curves-{settings.target}")
    return records


def text_before(settings: TextCurveSettings) -> None:
    """Predict first: the learner's guesses for these settings, before or after Run."""
    prediction_panel(settings.experiment(), TEXT_TOPIC)


def text_live(settings: TextCurveSettings) -> None:
    spec = settings.experiment()
    if results_shown(spec, saved_predictions(spec, TEXT_TOPIC), TEXT_TOPIC):
        text_chart(settings, "text_curves_live")
    else:
        hidden_results(spec, TEXT_TOPIC)


def text_results(settings: TextCurveSettings, notes) -> None:
    """The chart and the reading, or an invitation to press Run; hidden until the learner
    has predicted or skipped (Predict first)."""
    spec = settings.experiment()
    total = len(spec.units())
    predictions = saved_predictions(spec, TEXT_TOPIC)
    if not results_shown(spec, predictions, TEXT_TOPIC):
        hidden_results(spec, TEXT_TOPIC)
        return
    records = text_chart(settings, "text_curves", predictions)
    if not stored_note(records, total, notes):
        return
    st.caption(chart_caption(int(records["seed"].nunique())) + " From scratch: words counted "
               "from the labelled sentences alone (TF-IDF of words and word pairs). Linear "
               "probe: MiniLM's frozen sentence features. Both end in the same logistic "
               "regression.")
    show_readings(sweep_readings(records), settings, "text_curves")
    prediction_report(records, predictions)
    error_table(records)


ERRORS_SHOWN = 25  # rows of the error table drawn (the CSV under it holds them all)


def error_table(records: pd.DataFrame) -> None:
    """The test sentences the runs of one labelled set got wrong, with the true class and each
    strategy's answer: one size and one seed, chosen here, every strategy stored there."""
    if records.empty or page_view():
        return
    st.subheader("Which sentences does each method get wrong?")
    runs = records[records["predictions"].notna()] if "predictions" in records else records.iloc[0:0]
    if runs.empty:
        st.caption("These runs were stored before the app kept each run's answers: Run again "
                   "to see the sentences each method gets wrong.")
        return
    runs = runs.assign(size=label_sizes(runs))
    sizes = sorted(set(runs["size"]))
    left, right = st.columns([3, 1])
    chosen = left.selectbox("Labelled sentences per class", sizes, index=len(sizes) - 1,
                            key="text_errors_size", format_func=str)
    at = runs[runs["size"] == chosen]
    seeds = sorted(int(x) for x in at["seed"].unique())
    seed = right.selectbox("Seed", seeds, key="text_errors_seed") if len(seeds) > 1 else seeds[0]
    try:
        found = mistakes(at[at["seed"] == seed])
    except DatasetError as err:
        st.caption(f"The sentences cannot be listed here: {err}")
        return
    if found is None:
        st.caption("The runs here carry no answers to compare.")
        return
    counts = "; ".join(f"{strategy_label(s)} {found.wrong[s]:,}" for s in found.wrong)
    every = "both" if len(found.wrong) == 2 else f"all {len(found.wrong)}"
    both = f"; {found.wrong_by_all:,} are wrong for {every}" if len(found.wrong) > 1 else ""
    st.markdown(f"Of the {found.tested:,} test sentences, wrong answers: {counts}{both} "
                f"(one run each, {chosen.text}, seed {seed}: counts, not a comparison).")
    table = found.table.rename(columns={"sentence": "Sentence", "true class": "True class",
                                        **{s: strategy_label(s) for s in found.wrong}})
    show_table(table.head(ERRORS_SHOWN), "text_errors", sortable=True,
               compact=Compact("{Sentence}"))
    if len(table) > ERRORS_SHOWN:
        st.caption(f"The first {ERRORS_SHOWN} of {len(table):,} sentences, those some method "
                   "got right first; the CSV holds them all.")
    st.download_button("Sentences (CSV)", table.to_csv(index=False).encode(),
                       f"text-mistakes-{labels_text(chosen.setting)}-seed{seed}.csv", "text/csv",
                       icon=":material/download:", key="text_errors_csv")


def own_sentences(settings: TextCurveSettings) -> None:
    """Bring your own text: one CSV (columns text, label) or one text file per class becomes a
    corpus the form offers; refusals say why."""
    if page_view():
        return
    with st.expander("Use your own sentences", icon=":material/upload_file:"):
        st.markdown(
            "Upload **one CSV file** with a `text` and a `label` column, or **one text file per "
            "class** (the file's name is the class, one sentence a line), UTF-8. At least two "
            f"classes of {MIN_TEXT_PER_CLASS} different sentences each; at most "
            f"{MAX_TEXT_SENTENCES:,} sentences and {MAX_TEXT_BYTES // 2**20} MB. A sentence given "
            "two classes is left out. The sentences stay on this server; anyone with the "
            "page's link can train on them.")
        with st.form("own_text", border=False):
            files = st.file_uploader("Sentences", type=["csv", "txt"], accept_multiple_files=True,
                                     key="own_text_files",
                                     max_upload_size=max(1, MAX_TEXT_BYTES // 2**20))
            sent = st.form_submit_button("Use these sentences", icon=":material/upload:")
        if sent:
            try:
                take_upload()
                info = import_text([(f.name, f.getvalue()) for f in files or []])
            except (DatasetError, QuotaError) as err:
                st.error(f"These sentences were refused. {err}", icon=":material/error:")
                return
            classes = ", ".join(f"{plain(c)} ({n:,})" for c, n in zip(info.class_names, info.counts))
            dropped = (f" {plural(info.dropped, 'repeated or doubly labelled sentence')} left out."
                       if info.dropped else "")
            st.success(f"{sum(info.counts):,} sentences in {len(info.class_names)} classes: "
                       f"{classes}.{dropped} Pick **{plain(text_title(info.name))}** as the "
                       "Corpus in the form and press Run.", icon=":material/check_circle:")


TEXT_CURVES = Section("transfer_on_text", "curves", TextCurveSettings, text_form,
                      live=text_live, results=text_results, above=own_sentences,
                      before=text_before)


def shift_form(current: TextShiftSettings) -> Optional[Callable[[], TextShiftSettings]]:
    """The corpus trained on, the ones tested on, the target labels added, the seeds."""
    with st.form("shift_settings", border=True):
        left, right = st.columns([2, 4])
        source = left.selectbox("Trained on", SENTIMENT, index=SENTIMENT.index(current.source),
                                format_func=lambda n: TEXT_DATASETS[n].title,
                                help=f"{SOURCE_LABELS} labelled sentences per class of this "
                                     "corpus (a draw per seed).")
        targets = right.multiselect("Tested on", SENTIMENT, default=list(current.targets),
                                    format_func=lambda n: TEXT_DATASETS[n].title,
                                    help="The corpora the classifier is tested on (the one it "
                                         "was trained on is left out).")
        left, mid, right = st.columns([2, 3, 1])
        strategies = left.multiselect("Strategies", DETERMINISTIC, default=list(current.strategies),
                                      format_func=STRATEGY_NAMES.get)
        added = mid.multiselect("Target labels per class added", ADDED_CHOICES,
                                default=list(current.added),
                                help="0: the source's labels alone. Each other size is also "
                                     "run with the target's labels alone, for comparison.")
        seeds = right.number_input("Seeds", 1, MAX_SEEDS, current.seeds, key="shift_seeds_input")
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    if not run:
        return None
    return lambda: TextShiftSettings(source, tuple(t for t in targets if t != source),
                                     tuple(strategies), tuple(added), int(seeds))


OWN = "own"  # the x position of the target's own SOURCE_LABELS per class


def shift_figure(records: pd.DataFrame, settings: TextShiftSettings, target: str) -> go.Figure:
    """Test accuracy on `target` against the target labels per class used: with the source's
    labels (solid) and without (dashed), per strategy; the last point is the target's own
    SOURCE_LABELS per class; the majority-class line."""
    runs = records[records["target"] == target]
    source_runs = runs["train_source"].fillna("") == settings.source
    order = [str(k) for k in settings.added] + [f"{SOURCE_LABELS} ({OWN})"]
    fig = go.Figure()
    for strategy in settings.strategies:
        color, label = strategy_color(strategy), strategy_label(strategy)
        for with_source, dash in ((True, "solid"), (False, "dash")):
            part = runs[(runs["strategy"] == strategy) & (source_runs == with_source)]
            if part.empty:
                continue
            s = summarize(part).sort_values("labels_per_class")
            x = [f"{SOURCE_LABELS} ({OWN})" if k == SOURCE_LABELS else str(k)
                 for k in s["labels_per_class"]]
            name = (f"{label}, + {corpus_name(settings.source)}" if with_source
                    else f"{label}, {corpus_name(target)} alone")
            fig.add_trace(go.Scatter(
                x=x, y=s["mean"].tolist(), mode="lines+markers", name=name,
                line={"color": color, "dash": dash, "width": 3}, marker={"size": 9},
                error_y=error_bars(s["std"].fillna(0), s["seeds"]),
                hovertemplate=f"{name}<br>%{{x}} target labels per class: %{{y:.1f}}%<extra></extra>"))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order,
                     title=f"labelled {corpus_name(target)} per class")
    fig.update_yaxes(title=f"test accuracy on {corpus_name(target)} (%)", range=[40, 101])
    line = baseline(target)
    if line is not None:
        reference_line(fig, line, "always the commoner side")
    return chart_layout(fig, 480, "trained on")


def shift_target(settings: TextShiftSettings) -> str:
    """The test corpus the chart shows (chosen above it)."""
    if len(settings.targets) == 1:
        return settings.targets[0]
    return st.segmented_control("Tested on", settings.targets, default=settings.targets[0],
                                format_func=lambda n: TEXT_DATASETS[n].title,
                                key="shift_target_choice") or settings.targets[0]


def shift_chart(settings: TextShiftSettings, key: str, target: Optional[str] = None):
    records = stored(settings)
    if not records.empty:
        target = target or settings.targets[0]
        show_chart(shift_figure(records, settings, target), key, runs=records,
                   name=f"text-shift-{settings.source}-{target}")
    return records


def shift_results(settings: TextShiftSettings, notes) -> None:
    total = len(settings.experiment().units())
    records = stored(settings)
    if not stored_note(records, total, notes):
        return
    target = shift_target(settings) if not page_view() else settings.targets[0]
    shift_chart(settings, "text_shift", target)
    st.caption(f"Solid: trained on {SOURCE_LABELS} labels per class of "
               f"{corpus_name(settings.source)} plus the target labels on the x axis (0: none). "
               f"Dashed: the target's labels alone, up to {SOURCE_LABELS} per class of its own. "
               "Bars: ±1 standard deviation over seeds.")
    sentences = []
    for strategy in sorted(settings.strategies, key=lambda s: s != "probe"):
        _, sentence = shift_sentence(records, settings.source, strategy)
        if sentence is not None:
            sentences.append(sentence)
    for strategy in sorted(settings.strategies, key=lambda s: s != "probe"):
        _, sentence = adapt_sentence(records, settings.source, target, strategy)
        if sentence is not None:
            sentences.append(sentence)
    show_readings(sentences, settings, "text_shift")


TEXT_SHIFT = Section("transfer_on_text", "shift", TextShiftSettings, shift_form,
                     live=lambda s: shift_chart(s, "text_shift_live"), results=shift_results)


def lora_form(current: TextLoraSettings) -> Optional[Callable[[], TextLoraSettings]]:
    """The corpus, the labelled-set size, the LoRA ranks and the seeds."""
    with st.form("text_lora_settings", border=True):
        left, right = st.columns([3, 2])
        target = corpus_box(left, current.target, "text_lora_target")
        labels = right.selectbox("Labels per class", TRADEOFF_LABELS,
                                 index=TRADEOFF_LABELS.index(current.labels_per_class),
                                 key="text_lora_labels")
        left, right = st.columns([4, 1])
        ranks = left.multiselect("LoRA ranks", TEXT_LORA_RANKS, default=list(current.ranks),
                                 help="r: the rank of the update LoRA learns beside each query "
                                      "and value projection (6 layers, 2 each). Each rank, and "
                                      "full fine-tuning, is about 15 s a run on two cores.")
        seeds = right.number_input("Seeds", 1, MAX_SEEDS, current.seeds, key="text_lora_seeds")
        run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
    return (lambda: TextLoraSettings(target, int(labels), tuple(ranks), int(seeds))) if run else None


def model_total(records: pd.DataFrame) -> Optional[int]:
    """The weights of MiniLM and its head on the records' corpus (what fine-tuning trains),
    counted from the installed model; else fine-tuning's own count where a run has one."""
    try:
        return model_weights(str(records["target"].iloc[0]))
    except DatasetError:
        found = trainable_of(records, "finetune")
        return found or None


def lora_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: trainable weights (counted in the run), share of MiniLM, accuracy, seconds."""
    total = model_total(records)
    rows = []
    for _, row in summarize(records).iterrows():
        strategy = str(row["strategy"])
        runs = records[records["strategy"] == strategy]
        n = trainable_of(records, strategy)
        rows.append({"strategy": strategy, "Strategy": strategy_label(strategy),
                     "rank": lora_rank(strategy), "Trainable parameters": n,
                     "% of the model": 100.0 * n / total if total else float("nan"),
                     "Mean test accuracy (%)": row["mean"],
                     "± std": row["std"], "Seeds": int(row["seeds"]),
                     "Seconds per run": float(runs["train_seconds"].mean())})
    return pd.DataFrame(rows).sort_values("strategy", key=lambda c: c.map(rank_sort), kind="stable")


def lora_chart(settings: TextLoraSettings, key: str):
    records = stored(settings)
    if not records.empty:
        show_chart(tradeoff_figure(lora_table(records)), key, runs=records,
                   name=f"text-lora-{settings.target}")
    return records


def lora_results(settings: TextLoraSettings, notes) -> None:
    total = len(settings.experiment().units())
    records = lora_chart(settings, "text_lora")
    if not stored_note(records, total, notes):
        return
    table = lora_table(records)
    show_table(table.drop(columns=["strategy", "rank"]), "text_lora_table",
               formats={"Trainable parameters": ",d", "% of the model": ".3f",
                        "Mean test accuracy (%)": ".1f", "± std": ".1f",
                        "Seconds per run": ".1f"}, compact=Compact("{Strategy}"))
    st.caption(f"{labels_per_class_text(settings.labels_per_class)} of "
               f"{text_title(settings.target)}. Trainable parameters: counted in each run, the "
               "new classification head included (the probe's is its logistic regression); "
               "the model is MiniLM and that head. "
               "Seconds per run: on the machine that trained it, loading MiniLM included; the "
               "probe's is its logistic regression alone, since the corpus's MiniLM features "
               "are computed once and kept for every run.")
    total = model_total(records)
    if total is None:
        st.warning("MiniLM is not installed here, so its weights cannot be counted: "
                   "install requirements-text.txt.", icon=":material/warning:")
        return
    show_readings(tradeoff_readings(records, lambda s: trainable_of(records, s), total),
                  settings, "text_lora")


TEXT_LORA = Section("transfer_on_text", "lora", TextLoraSettings, lora_form,
                    live=lambda s: lora_chart(s, "text_lora_live"), results=lora_results)
SECTIONS = (TEXT_CURVES, TEXT_LORA, TEXT_SHIFT)
