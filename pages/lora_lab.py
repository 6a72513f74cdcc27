"""The LoRA lab: exact adapter sizes on real architectures, the memory they save, and LoRA
trained on the lesson's own model beside the linear probe and fine-tuning.

Words only: the counts and estimates come from `engine.experiments.lora_presets`. The
trade-off and the merge check are sections (`ui.lessons.lora.TRADEOFF`, `MERGE`) drawn by
`ui.kit.section.show_section`: Run submits the trade-off's sweep and "Train and merge" the
merge check (`engine.experiments.lora_merge`) to the server's job manager."""

import streamlit as st

from engine.core.strategies import LORA_ALPHA
from ui.kit.exports import show_chart
from ui.kit.section import show_section
from ui.kit.shell import page_setup
from ui.lessons.lora import (MERGE, TRADEOFF, adapter_controls, count_panel, memory_controls,
                             memory_panel, preset_choice, preset_counts, published_panel,
                             rank_figure)

page_setup()
st.title("LoRA lab")
st.markdown(
    "Fine-tuning changes every weight of a network. **LoRA** (low-rank adaptation) keeps each "
    "pretrained weight matrix W frozen and learns only a correction of low rank r beside it:")
st.latex(r"W' = W + \frac{\alpha}{r}\,B A,\qquad A \in \mathbb{R}^{r \times d_{\mathrm{in}}},"
         r"\quad B \in \mathbb{R}^{d_{\mathrm{out}} \times r}")
st.markdown(
    "A projects the input down to r numbers, B projects them back up. A layer with "
    "d_in x d_out weights gains r x (d_in + d_out) trainable ones: for a 4096 x 4096 projection at "
    "r = 8 that is 65,536 instead of 16.8 million. B starts at zero, so training starts from "
    "exactly the pretrained model. The factor alpha/r was meant to keep the update about the "
    "same size when r changes, but at high ranks it shrinks the update too much and learning "
    "slows; rsLoRA (Kalajdzievski, 2023) scales by alpha/sqrt(r) instead (peft: use_rslora). A "
    "convolution gets an A with the same kernel (r x C_in x k x k) and a 1x1 B; an embedding "
    "table gets an A of r x vocabulary and a B of width x r.")

# ---- 1. Count --------------------------------------------------------------------------------
st.header("1. Count the adapter")
preset = preset_choice()
adapter = adapter_controls(preset)
count = preset_counts(preset, adapter.rank, adapter.targets)
if count is not None:
    count_panel(count, adapter)
st.markdown("**Trainable parameters against rank** (exact counts; both axes logarithmic): "
            "doubling r doubles the adapter, and it stays far below the whole model.")
show_chart(rank_figure(preset), "rank_chart", name=f"lora-trainable-parameters-{preset}")
st.caption(f"The same count on the command line: `python -m engine lora-params --preset {preset} "
           f"--rank {adapter.rank} --targets {','.join(adapter.targets) or '...'}`")

# ---- 2. Memory -------------------------------------------------------------------------------
st.header("2. Memory to fine-tune it")
memory = memory_controls(preset)
if count is not None:
    memory_panel(adapter, memory)
st.subheader("Beside the published figures")
published_panel()

# ---- 3. Train --------------------------------------------------------------------------------
st.header("3. LoRA on the lesson's model")
st.markdown(
    "The small CNN pretrained on MNIST, moved to the UCI digits, trained three ways by the same "
    "engine: the **linear probe** (only the new head), **fine-tuning** (every weight) and **LoRA** "
    f"at each rank with alpha = {LORA_ALPHA:g} on the chosen layers; A and B learn at the rate "
    "fine-tuning gives the pretrained layers, since they change those layers. LoRA also trains the new "
    "10-class head: the source's head predicts the source's classes, so the target needs a head of "
    "its own, and a frozen random head would make the comparison meaningless (peft's "
    "`modules_to_save` does the same). The head's parameters are counted in LoRA's trainable "
    "parameters below.")
lab = show_section(TRADEOFF).settings

# ---- 4. Merge --------------------------------------------------------------------------------
st.header("4. Merge the adapter into W")
st.markdown(
    "After training, (alpha/r)·B·A can be added into W once: the network is then plain again, "
    "with the original shapes and no extra work at inference. This trains one LoRA run (seed 0, "
    "the settings above) and compares the model's outputs before and after merging.")
show_section(MERGE, adjust=lambda s: s.following(lab))
