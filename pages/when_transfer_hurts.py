"""When transfer hurts: negative transfer from a mismatched source, and domain shift of the target.

UI only: each section's settings (`ui.sections.hurts`) come from the link, this session's last
run or the defaults; Run submits the section's sweep group to the server's job manager, and the
section draws what the store holds (live while its job runs) through `ui.hurts`."""

import streamlit as st

from ui.experiments import section_settings
from ui.hurts import (live_head_starts, negative_chart, negative_form, negative_results, shift_form,
                      shift_preview, shift_results)
from ui.section_run import run_section
from ui.sections.hurts import NegativeSettings, ShiftSettings
from ui.shell import page_setup, show_link_notices

NEG_KEY, SHIFT_KEY = "hurts.negative", "hurts.shift"

page_setup()
st.title("When transfer hurts")
st.markdown(
    "Transfer learning bets that what a network learned on the **source** is useful for the "
    "**target**. This lesson loses that bet on purpose in two ways, with the small CNN and the "
    "UCI digits of the earlier lessons: a source that teaches the wrong things, and a target "
    "that no longer looks like the source. Training **from scratch** is the yardstick: it never "
    "saw the source, so whatever pretraining adds or takes away shows as the gap to it.")

neg, neg_notices = section_settings(NegativeSettings, NEG_KEY)
shift, shift_notices = section_settings(ShiftSettings, SHIFT_KEY)
show_link_notices(neg_notices + shift_notices)

# ---- negative transfer ----------------------------------------------------------------------------
st.header("Negative transfer: a source that teaches the wrong things")
st.markdown(
    "The small CNN is pretrained on a **mismatched source**, a version of MNIST in which the "
    "link between an image and its meaning is broken, then reused on the UCI digits as before: a "
    "linear probe on its frozen features, and fine-tuning. The same network fine-tuned from plain "
    "MNIST shows what a matched source gives. **Negative transfer** is when the transferred model "
    "ends up *below* training from scratch.")
run_section(neg, negative_form, NEG_KEY, "negative", lambda s: negative_chart(s, "negative_live"),
            results=negative_results)

# ---- domain shift ---------------------------------------------------------------------------------
st.header("Domain shift: the same digits, a different look")
st.markdown(
    "Now the source is plain MNIST again and the **target** changes: every UCI digit is "
    "transformed by a fixed amount, its **severity**. At each severity the lesson trains scratch, "
    "a linear probe and fine-tuning, and plots the transfer strategies' **head-start**: their "
    "accuracy minus scratch's on the same labelled examples (paired by seed).")
run_section(shift, shift_form, SHIFT_KEY, "shift", live_head_starts, before=shift_preview,
            results=shift_results)
