"""Forgetting and what fine-tuning changes: catastrophic forgetting with four mitigations, and
per-layer diagnostics (linear probes, CKA) of where fine-tuning changed the network.

Words only: each section (`ui.lessons.forgetting.FORGETTING`, `DIAGNOSTICS`: settings from the link,
else this session's last run; form; live panel; results) is drawn by `ui.kit.section.show_section`; Run
submits their engine config (`ForgettingConfig`, `DiagnosticsConfig`) to the server's job
manager, and the section's panel draws what the store holds (live while its job runs)."""

import streamlit as st

from ui.kit.section import show_section
from ui.kit.shell import page_setup
from ui.lessons.forgetting import DIAGNOSTICS, FORGETTING

page_setup()
st.title("Forgetting, and what fine-tuning changes")
st.markdown(
    "Fine-tuning optimises the network for the target and nothing else. This lesson watches what "
    "that does to the task the network was pretrained on, tries four standard remedies, then "
    "looks inside the network to see which layers fine-tuning actually rewrote.")

# ---- catastrophic forgetting ----------------------------------------------------------------------
st.header("Catastrophic forgetting")
st.markdown(
    "The small CNN pretrained on MNIST keeps its **MNIST head** (frozen) beside a new head for the "
    "UCI digits. After every epoch of fine-tuning both tasks are scored: MNIST on the held-out "
    "images the pretraining never trained on, UCI on its test split. The MNIST head never "
    "changes, so any drop in MNIST accuracy comes from the shared layers moving under it: that "
    "is **forgetting**. Each *arm* fine-tunes the same starting point in its own way.")
forgetting = show_section(FORGETTING)
f_config = forgetting.settings.config()
if forgetting.shown:
    st.subheader("How each remedy works")
    st.markdown(
        "- **Lower learning rate**: the pretrained layers take smaller steps, so after the same "
        "number of epochs they are still close to where they started. They also learn the target "
        "more slowly.\n"
        "- **Freezing early layers**: the first blocks cannot change at all; only the later blocks "
        "and the head adapt. What the later blocks change can still be forgotten, and in this "
        "network they hold most of the weights.\n"
        "- **Replay**: part of every batch is MNIST images scored by the MNIST head, so the loss "
        "itself asks the network to keep the source task. It needs the source data at hand and "
        "spends part of every step on it.\n"
        "- **EWC** (elastic weight consolidation) adds a pull towards the pretrained weights θ*, "
        "stronger for the weights the source task depends on most:")
    st.latex(r"\mathcal{L} = \mathcal{L}_\text{target} + \frac{\lambda}{2}\sum_i F_i\,"
             r"(\theta_i - \theta^*_i)^2")
    st.markdown(
        f"$F_i$ is the diagonal **Fisher information** of weight $i$, estimated here on "
        f"{f_config.fisher_samples} MNIST training images: the average squared gradient of the "
        "log-probability of a class drawn from the pretrained model's own prediction. It is large "
        "where a small change of the weight would change the MNIST predictions a lot. λ sets the "
        "trade-off: 0 is plain fine-tuning; a large λ holds the important weights in place, which "
        "protects the source but leaves less freedom to fit the target.")

# ---- diagnostics -----------------------------------------------------------------------------------
st.header("Where fine-tuning changed the network")
st.markdown(
    "Two measurements of each block of the small CNN, before and after fine-tuning on the UCI "
    "digits. A **linear probe** trains a linear classifier on a block's outputs and scores it on "
    "the test split: how much of the target the block makes readable. **Linear CKA** (centred "
    "kernel alignment) compares a block's outputs for the same images before and after: 1 means "
    "the representation is unchanged up to a rotation and a uniform scale, lower means "
    "fine-tuning rewrote it.")
if show_section(DIAGNOSTICS).shown:
    st.markdown(
        "What to look for: early blocks compute edges and stroke pieces, as useful for UCI digits "
        "as for MNIST, so fine-tuning has little reason to change them; later blocks combine them "
        "into MNIST's particular shapes, so the target's gradient reshapes them most, and more "
        "so at a higher learning rate. Where CKA falls is where the source's representation was "
        "overwritten, which is where forgetting comes from. Freezing only the early blocks "
        "leaves the later ones free to move, so it protects the source only as far as the source "
        "depends on the early blocks: the freeze arm above measures how far that went here.")
