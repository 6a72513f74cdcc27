"""Which source? The same target and labels, features from three sources: digits, photos, none.

Words only: the two sections (`ui.lessons.sources.COMPARISON` and `EARLIER_BLOCK`: settings from
the link, this session's last run or the defaults; form; live chart; results) are drawn by
`ui.kit.section.show_section`; Run submits each section's experiment to the server's job
manager."""

import streamlit as st

from engine.core.imagenet import weights_status
from ui.kit.section import show_section
from ui.kit.shell import page_setup
from engine.experiments.lessons.sources import photo_title, target_choices
from ui.lessons.sources import BLOCK_INTRO, COMPARISON, EARLIER_BLOCK

page_setup()
st.title("Which source?")
st.markdown(
    "Pretraining helps when the source taught the network features the target needs. This "
    "lesson keeps the **target** fixed (by default the UCI optical digits, 8x8 scans upsampled "
    "to 28x28) and changes only where the frozen features come from, then trains a linear probe "
    "on them:\n"
    "- a **small CNN pretrained on MNIST**: other people's handwritten digits, the same task in "
    "a slightly different style;\n"
    "- an **ImageNet network** (EfficientNet-Lite0 unless you pick another) trained on ImageNet's "
    "1.28 million colour photographs of animals, objects and scenes at 224x224 pixels, a far "
    "bigger and stronger network, but a different world; it sees the target at the input size "
    "you choose (96 px by default, which is quick on a CPU; 224 px is its native size);\n"
    "- the **same small CNN left untrained**: random weights, no source at all (its random "
    "convolutions, pooling and ReLU still make a nonlinear map with a convolutional prior).\n\n"
    "Training the small CNN **from scratch** on the target labels is the baseline.")

comparison = show_section(COMPARISON, adjust=lambda s: s.on_known_target(target_choices())).settings

st.header("A probe on an earlier block")
photo = photo_title(comparison.imagenet)
if not weights_status(comparison.imagenet)[0]:
    st.info(f"This section needs {photo}'s weights on this server.", icon=":material/cloud_off:")
else:
    st.markdown(BLOCK_INTRO.format(photo=photo, size=comparison.input_size))
    show_section(EARLIER_BLOCK, adjust=lambda s: s.following(comparison))
