"""When transfer hurts: negative transfer from a mismatched source, and domain shift of the target.

Words only: each section (`ui.lessons.hurts.NEGATIVE`, `SHIFT`: settings from the link, this
session's last run or the defaults; form; live chart; results) is drawn by
`ui.kit.section.show_section`; Run submits the section's sweep group to the server's job
manager."""

import streamlit as st

from ui.kit.section import show_section
from ui.kit.shell import page_setup
from ui.lessons.hurts import NEGATIVE, SHIFT
page_setup()
st.title("When transfer hurts")
st.markdown(
    "Transfer learning bets that what a network learned on the **source** is useful for the "
    "**target**. This lesson loses that bet on purpose in two ways, with the small CNN and the "
    "UCI digits of the earlier lessons: a source that teaches the wrong things, and a target "
    "that no longer looks like the source. Training **from scratch** is the yardstick: it never "
    "saw the source, so whatever pretraining adds or takes away shows as the gap to it.")

# ---- negative transfer ----------------------------------------------------------------------------
st.header("Negative transfer: a source that teaches the wrong things")
st.markdown(
    "The small CNN is pretrained on a **mismatched source**, a version of MNIST in which the "
    "link between an image and its meaning is broken, then reused on the UCI digits as before: a "
    "linear probe on its frozen features, and fine-tuning. The same network fine-tuned from plain "
    "MNIST shows what a matched source gives. **Negative transfer** is when the transferred model "
    "ends up *below* training from scratch.")
show_section(NEGATIVE)

# ---- domain shift ---------------------------------------------------------------------------------
st.header("Domain shift: the same digits, a different look")
st.markdown(
    "Now the source is plain MNIST again and the **target** changes: every UCI digit is "
    "transformed by a fixed amount, its **severity**. At each severity the lesson trains scratch, "
    "a linear probe and fine-tuning, and plots the transfer strategies' **head-start**: their "
    "accuracy minus scratch's on the same labelled examples (paired by seed).")
show_section(SHIFT)
