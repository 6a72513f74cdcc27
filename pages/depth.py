"""How much of the network to train: freeze depth, layer transferability, and the refinements
of fine-tuning (discriminative learning rates, gradual unfreezing, LP-FT), each with its exact
trainable weights, per-group learning rates and the PyTorch code that sets it up.

Words only: the section (`ui.lessons.depth.DEPTH`: settings from the link, this session's last
run or the defaults; form; live chart) is drawn by `ui.kit.section.show_section`, and Run
submits both sweeps as one job; the page lays out the charts, readings and configurations panel
of `ui.lessons.depth` between its words."""

import streamlit as st

from ui.kit.section import show_section
from ui.kit.shell import page_setup
from ui.lessons.depth import (BLOCKS, DEPTH, LEARNING_RATE, copy_results, freeze_results, refinements,
                              stored_summary)

page_setup()
st.title("How much of the network to train")
st.markdown(
    "A network trained on a large source learns **general features in its early layers** (edges, "
    "strokes, blobs) and **task-specific ones in its late layers** (which combination of parts "
    "makes a 7). That suggests keeping the early layers as they are and retraining the late "
    "ones, giving early layers smaller learning rates, or letting them join training last. "
    "Here each of those claims is a real experiment on the small CNN pretrained on MNIST "
    "(blocks, input side first: conv1, conv2, conv3, fc), transferred to the UCI digits.")

section = show_section(DEPTH)
settings, running = section.settings, section.running
summary = None if running else stored_summary(settings)

st.header("1. Freeze depth")
st.markdown(
    f"Fine-tune only the **last k blocks** and keep the first {BLOCKS} − k frozen: k = 0 is a "
    f"linear probe (only the new head learns), k = {BLOCKS} is full fine-tuning. Bars: the "
    "weights that train, an exact count.")
freeze_results(summary, settings, running)

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
copy_results(summary, settings)

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
refinements()

st.header("4. Does a lower fine-tuning learning rate help at few labels?")
st.markdown(
    "Fine-tuning moves every pretrained weight, and with a handful of labelled images a large "
    "step can pull the network towards whatever separates those few examples. A common remedy "
    "is simply a lower learning rate. Here fine-tuning from MNIST runs twice on the same "
    "labelled images and seeds, at the rate every lesson uses and at a lower one (the head at "
    "the rate shown, the pretrained layers at a tenth of it), with the same number of steps.")
show_section(LEARNING_RATE)
