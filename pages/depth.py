"""How much of the network to train: freeze depth, layer transferability, and the refinements
of fine-tuning (discriminative learning rates, gradual unfreezing, LP-FT), each with its exact
trainable weights, per-group learning rates and the PyTorch code that sets it up.

UI only: the form submits two sweeps to the server's job manager; charts read the store."""

import pandas as pd
import streamlit as st

from engine.study.codegen import describe_groups, strategy_code
from engine.infra.jobs import JobLimitError
from engine.experiments.stats import summarize, strategy_label
from engine.experiments.sweep import SweepSpec
from engine.core.train import TrainBudget
from ui.controls import DECAY_FACTORS, DEFAULT_DECAY, LABEL_CHOICES, label_choice_text
from ui.depth import (BLOCKS, block_label, by_k, copy_figure, copy_reading, depth_specs,
                      freeze_figure, live_depth, records_of, trainable_weights)
from ui.jobs import job_manager, session_id
from ui.shell import page_setup

STATE_KEY = "depth.settings"
SEED_CHOICES = (1, 2, 3, 5)
DEFAULT = (5, 2)  # labels per class, seeds

page_setup()
st.title("How much of the network to train")
st.markdown(
    "A network trained on a large source learns **general features in its early layers** (edges, "
    "strokes, blobs) and **task-specific ones in its late layers** (which combination of parts "
    "makes a 7). That suggests keeping the early layers as they are and retraining the late "
    "ones, giving early layers smaller learning rates, or letting them join training last. "
    "Here each of those claims is a real experiment on the small CNN pretrained on MNIST "
    "(blocks, input side first: conv1, conv2, conv3, fc), transferred to the UCI digits.")

# settings: a link's (validated), else this session's, else the default
labels, seeds = st.session_state.get(STATE_KEY, DEFAULT)
allowed = {label_choice_text(k): k for k in LABEL_CHOICES}
url_labels, url_seeds = st.query_params.get("labels"), st.query_params.get("seeds")
if url_labels is not None or url_seeds is not None:
    if url_labels in allowed and url_seeds in {str(s) for s in SEED_CHOICES}:
        labels, seeds = allowed[url_labels], int(url_seeds)
    else:
        st.warning("This link's settings are not ones this lesson offers (labels per class: one "
                   f"of {', '.join(allowed)}; seeds: one of {', '.join(map(str, SEED_CHOICES))}); "
                   "showing the default.", icon=":material/link_off:")

with st.form("depth_settings", border=True):
    left, right = st.columns(2)
    labels = left.select_slider("Labels per class", options=list(LABEL_CHOICES), value=labels,
                                format_func=label_choice_text,
                                help="The size of the labelled target set for every run here.")
    seeds = right.select_slider("Seeds", options=list(SEED_CHOICES), value=seeds,
                                help="Repeats of every point; the chart shows their mean ± 1 "
                                     "standard deviation.")
    run = st.form_submit_button("Run both experiments", type="primary",
                                icon=":material/play_arrow:")

specs = depth_specs(labels, seeds)
if run:
    st.session_state[STATE_KEY] = (labels, seeds)
    st.query_params.from_dict({"labels": label_choice_text(labels), "seeds": str(seeds)})
    try:
        started = [job_manager().submit(spec, session_id()) for spec in specs]
    except (ValueError, JobLimitError) as err:
        st.error(f"Not started: {err}.", icon=":material/error:")
    else:
        if not any(job.active for job in started):
            st.success("Every run of these settings was already stored: nothing was retrained.",
                       icon=":material/check_circle:")

running = any(j is not None and j.active for j in (job_manager().status(s.key()) for s in specs))
if running:
    live_depth(specs)
records = records_of(specs) if not running else pd.DataFrame()
summary = summarize(records) if not records.empty else None
where = f"{label_choice_text(labels)} labels per class, {seeds} seed{'s' if seeds > 1 else ''}"

st.header("1. Freeze depth")
st.markdown(
    f"Fine-tune only the **last k blocks** and keep the first {BLOCKS} − k frozen: k = 0 is a "
    f"linear probe (only the new head learns), k = {BLOCKS} is full fine-tuning. Bars: the "
    "weights that train, an exact count.")
if summary is not None and not by_k(summary, "partial").empty:
    st.caption(f"{where}. Points: mean test accuracy; whiskers: ±1 standard deviation.")
    st.plotly_chart(freeze_figure(summary), key="depth_freeze")
    rows = by_k(summary, "partial")
    best = rows.loc[rows["mean"].idxmax()]
    st.markdown(f"**In your run** the best depth is k = {int(best['k'])} "
                f"({best['mean']:.1f}%), training {trainable_weights(best['strategy']):,} of "
                f"{trainable_weights(f'partial:{BLOCKS}'):,} weights. With few labels, freezing "
                "more guards against overfitting; with many, unfreezing more lets the late "
                "layers adapt to the target.")
elif not running:
    st.info("Press **Run both experiments** to train these points.", icon=":material/info:")

st.header("2. Which layers transfer? (after Yosinski et al., 2014)")
st.markdown(
    "Copy the **first k blocks** from the pretrained network, re-initialise the blocks above "
    "them at random, and train on the target, once with the copied blocks **frozen** and once "
    "with them **fine-tuned**; k = 0 is training from scratch.\n\n"
    "**What the published experiment found** (ImageNet split into two halves of classes, an "
    "eight-layer network): with the copied layers frozen, transfer got worse the more layers "
    "were copied, because higher layers are specific to the source task, and because cutting "
    "between co-adapted middle layers leaves a split the re-initialised layers cannot repair "
    "when the copies are frozen. With the copied layers fine-tuned, performance stayed at or "
    "above the baseline at every depth; the network kept a lasting boost from its "
    "pretrained start.")
if summary is not None and not by_k(summary, "copy-frozen").empty:
    st.caption(f"{where}. Dotted line: the same network trained from scratch.")
    st.plotly_chart(copy_figure(summary), key="depth_copy")
    st.markdown(copy_reading(summary))
    st.caption("This setting differs from the paper's: a four-block network, a different "
               "target task with few labels, and short training. A small labelled set favours "
               "the frozen copies more than ImageNet's 600,000 images did.")

st.header("3. Refinements of fine-tuning")
st.markdown(
    "- **Discriminative learning rates**: the head learns at the full rate and every block "
    "down learns at the rate above it times a factor, so early, general features move least. "
    "ULMFiT divided the rate by 2.6 per layer (factor 0.38).\n"
    "- **Gradual unfreezing** (ULMFiT): the head trains alone first; then one more block joins "
    "per epoch, from the top down. Here a stage lasts an epoch, or 1/(blocks + 1) of training "
    "when the labelled set is so small that an epoch is a step or two.\n"
    "- **LP-FT**: a linear probe for the first half of training, then fine-tuning of everything. "
    "Fine-tuning then starts from a trained head instead of a random one, whose large early "
    "gradients would otherwise disturb the pretrained features.")
factor = st.select_slider("Decay factor", options=list(DECAY_FACTORS), value=DEFAULT_DECAY,
                          format_func=lambda f: f"{f:g}", key="depth_factor")
options = ["finetune", f"discriminative:{factor:g}", "gradual", "lpft",
           *(f"partial:{k}" for k in range(BLOCKS + 1)), "copy-frozen:2", "copy-tuned:2"]
chosen = st.selectbox("Configuration", options, index=1, format_func=strategy_label)
budget = TrainBudget()
groups = describe_groups(chosen, "small_cnn", budget.lr, budget.lr * budget.backbone_lr_mult)
st.table(pd.DataFrame({
    "Parameter group": [g.name for g in groups],
    "Learning rate": [f"{g.lr:.3g}" for g in groups],
    "Weights": [f"{g.parameters:,}" for g in groups],
    "Trainable at the start": [f"{g.trainable_at_start:,}" for g in groups]}))
at_start = sum(g.trainable_at_start for g in groups)
st.markdown(f"**{strategy_label(chosen)}** trains {at_start:,} weights at the start and "
            f"{trainable_weights(chosen):,} by the end, of {trainable_weights('scratch'):,}.")
with st.expander("Show the PyTorch code", icon=":material/code:"):
    st.caption("Exactly these settings: what is frozen and the optimizer's parameter groups. "
               "It runs as shown in this app's environment.")
    st.code(strategy_code(chosen, lr=budget.lr, backbone_lr=budget.lr * budget.backbone_lr_mult),
            language="python")
compare = ("scratch", "finetune", f"discriminative:{factor:g}", "gradual", "lpft")
st.page_link("pages/transfer_curves.py", icon=":material/show_chart:",
             label="Compare them over labels per class on the Transfer curves page",
             query_params={"strategies": ",".join(compare), "labels": "1,2,5,10,20,50,all",
                           "seeds": "3"})
