"""Which source? The same target and labels, features from three sources: digits, photos, none.

UI only: the settings (`ui.sections.sources`) come from the link, this session's last run or the
defaults; Run submits the comparison to the server's job manager, and the page draws what the
store holds (live while the job runs) through `ui.sources`, then the section that probes the
ImageNet network on an earlier block."""

import streamlit as st

from ui.experiments import section_settings
from ui.section_run import run_section
from ui.sections.sources import SourceSettings, target_choices
from ui.shell import page_setup, show_link_notices
from ui.sources import (comparison_results, earlier_block_section, live_chart, missing_weights_note,
                        source_form)

STATE_KEY = "which_source.settings"

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

targets = target_choices()
settings, notices = section_settings(SourceSettings, STATE_KEY)
settings = settings.on_known_target(targets)
show_link_notices(notices)

section = run_section(settings, lambda current: source_form(current, targets), STATE_KEY,
                      "comparison", live_chart, before=missing_weights_note,
                      results=comparison_results)
earlier_block_section(section.settings)
