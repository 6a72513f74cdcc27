"""When transfer hurts: negative transfer from a mismatched source, and domain shift of the target.

UI only: each section's form builds a `SweepGroup` (`ui.hurts`), Run submits it to the server's
job manager, and the section draws what the store holds (live while its job runs)."""

import streamlit as st

from engine.core.shifts import SEVERITY_SHIFTS, SHIFTS
from engine.experiments.sweep import MAX_SEEDS
from ui.curves import curve_figure, plural
from ui.experiments import QueryReader, active, ended_note, labels_text, live_panel, submit_job
from ui.hurts import (GAP, MISMATCHED, SHIFT_SLIDERS, WHY_KIND, WHY_NEGATIVE, WHY_SHIFT,
                      group_records, head_start_figure, head_starts, negative_curves,
                      negative_group, negative_table, negative_verdict, preview_strip,
                      shift_group, shift_levels, shift_reading, source_accuracy, stored_runs,
                      total_runs)
from ui.shell import page_setup, show_link_notices

LABELS = (1, 2, 5, 10, 20, 50)
NEG_KEY, SHIFT_KEY = "hurts.negative", "hurts.shift"
NEG_PARAMS = ("neg", "neg_labels", "neg_seeds")
SHIFT_PARAMS = ("shift", "shift_max", "shift_steps", "shift_labels", "shift_seeds")

page_setup()
st.title("When transfer hurts")
st.markdown(
    "Transfer learning bets that what a network learned on the **source** is useful for the "
    "**target**. This lesson loses that bet on purpose in two ways, with the small CNN and the "
    "UCI digits of the earlier lessons: a source that teaches the wrong things, and a target "
    "that no longer looks like the source. Training **from scratch** is the yardstick: it never "
    "saw the source, so whatever pretraining adds or takes away shows as the gap to it.")

# Settings: the URL (a reload or a shared link), else this session's last run, else the defaults.
params = st.query_params.to_dict()
query = QueryReader(params)
neg = {"shift": query.choice("neg", tuple(MISMATCHED), "permuted"),
       "labels": query.labels("neg_labels", LABELS, (1, 5, 20)),
       "seeds": query.integer("neg_seeds", 1, MAX_SEEDS, 2)}
if not any(k in params for k in NEG_PARAMS):
    neg = st.session_state.get(NEG_KEY, neg)
url_kind = query.choice("shift", SEVERITY_SHIFTS, "rotate")
sh = {"kind": url_kind,
      "highest": query.number("shift_max", SHIFT_SLIDERS[url_kind][0], SHIFTS[url_kind].max_severity,
                              SHIFT_SLIDERS[url_kind][1]),
      "steps": query.integer("shift_steps", 2, 5, 3),
      "labels": query.labels("shift_labels", LABELS, (1, 20)),
      "seeds": query.integer("shift_seeds", 1, 5, 2)}
if not any(k in params for k in SHIFT_PARAMS):
    sh = st.session_state.get(SHIFT_KEY, sh)
show_link_notices(query.notices)

# ---- negative transfer ----------------------------------------------------------------------------
st.header("Negative transfer: a source that teaches the wrong things")
st.markdown(
    "The small CNN is pretrained on a **mismatched source**, a version of MNIST in which the "
    "link between an image and its meaning is broken, then reused on the UCI digits as before: a "
    "linear probe on its frozen features, and fine-tuning. The same network fine-tuned from plain "
    "MNIST shows what a matched source gives. **Negative transfer** is when the transferred model "
    "ends up *below* training from scratch.")
with st.form("negative_settings"):
    shift = st.radio("Mismatched source", list(MISMATCHED), format_func=MISMATCHED.get,
                     index=list(MISMATCHED).index(neg["shift"]), horizontal=True,
                     help="Scrambled pixels: every MNIST image's pixels moved by one fixed "
                          "permutation. Random labels: MNIST's labels shuffled among its images.")
    left, right = st.columns(2)
    labels = left.multiselect("Labels per class", LABELS, default=list(neg["labels"]), key="neg_labels")
    seeds = right.number_input("Seeds", 1, MAX_SEEDS, neg["seeds"], key="neg_seeds")
    run_negative = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
neg_notes = st.container()
if run_negative and not labels:
    neg_notes.error("Choose at least one labelled-set size.", icon=":material/error:")
elif run_negative:
    neg = {"shift": shift, "labels": tuple(sorted(labels)), "seeds": int(seeds)}
    st.session_state[NEG_KEY] = neg
    st.query_params.update({"neg": shift, "neg_labels": labels_text(neg["labels"]),
                            "neg_seeds": str(neg["seeds"])})
    submit_job(negative_group(**neg), neg_notes)

group, curves = negative_group(**neg), negative_curves(neg["shift"])
bad = MISMATCHED[neg["shift"]]


def draw_negative(key: str) -> None:
    records = group_records(group, curves)
    if not records.empty:
        present = set(records["strategy"])
        st.plotly_chart(curve_figure(records, [c.label for c in curves if c.label in present]),
                        key=key)


records = group_records(group, curves)
total = total_runs(group)
if active(group):
    live_panel(group, "negative", "run", lambda: draw_negative("negative_live"))
elif records.empty:
    ended_note(group, neg_notes)
    st.info(f"None of the {plural(total, 'run')} of these settings is stored yet. Press Run: the "
            "first run pretrains the small CNN on the mismatched source once (about 10 s on two "
            "idle CPU cores).", icon=":material/info:")
else:
    ended_note(group, neg_notes)
    if len(records) < total:
        neg_notes.warning(f"{total - len(records)} of {plural(total, 'run')} are not stored yet; "
                          "press Run to train only those.", icon=":material/warning:")
    st.caption("Lines: mean test accuracy on the UCI digits over seeds; bands: ±1 standard "
               "deviation; log x axis.")
    draw_negative("negative")
    table = negative_table(records, curves)
    st.dataframe(table.rename_axis("labels per class"))
    if GAP in table:
        st.markdown(negative_verdict(table, bad))
    accuracy = source_accuracy(group.specs[1].source)
    if accuracy is not None:
        st.markdown(f"Pretraining on {bad} reached **{accuracy:.1f}%** on held-out images of its "
                    "own task (chance is 10%).")
    st.subheader("Why it hurts")
    st.markdown(WHY_NEGATIVE[neg["shift"]])
    st.markdown("Pretraining is a bet that the source and the target share structure. When they "
                "do not, the transferred weights are a handicap, and only a **from-scratch "
                "baseline** shows it: run one before trusting a transfer.")

# ---- domain shift ---------------------------------------------------------------------------------
st.header("Domain shift: the same digits, a different look")
st.markdown(
    "Now the source is plain MNIST again and the **target** changes: every UCI digit is "
    "transformed by a fixed amount, its **severity**. At each severity the lesson trains scratch, "
    "a linear probe and fine-tuning, and plots the transfer strategies' **head-start**: their "
    "accuracy minus scratch's on the same labelled examples (paired by seed).")
kind = st.selectbox("Transform", SEVERITY_SHIFTS, index=SEVERITY_SHIFTS.index(sh["kind"]),
                    format_func=lambda k: SHIFTS[k].title, key="shift_kind",
                    help="Changing it redraws the form below; nothing trains until you press Run.")
step, default_high = SHIFT_SLIDERS[kind]
unit = f" ({SHIFTS[kind].unit})" if SHIFTS[kind].unit else ""
with st.form("shift_settings"):
    highest = st.slider(f"Highest severity{unit}", step, SHIFTS[kind].max_severity,
                        float(sh["highest"] if kind == sh["kind"] else default_high), step,
                        help="The severities run evenly from 0 (the plain target) to this.")
    steps = st.slider("Severity levels above 0", 2, 5, sh["steps"])
    left, right = st.columns(2)
    shift_labels = left.multiselect("Labels per class", LABELS, default=list(sh["labels"]),
                                    key="shift_labels")
    shift_seeds = right.number_input("Seeds", 1, 5, sh["seeds"], key="shift_seeds")
    run_shift = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
shift_notes = st.container()
if run_shift and not shift_labels:
    shift_notes.error("Choose at least one labelled-set size.", icon=":material/error:")
elif run_shift:
    sh = {"kind": kind, "highest": float(highest), "steps": int(steps),
          "labels": tuple(sorted(shift_labels)), "seeds": int(shift_seeds)}
    st.session_state[SHIFT_KEY] = sh
    st.query_params.update({"shift": kind, "shift_max": f"{sh['highest']:g}",
                            "shift_steps": str(sh["steps"]), "shift_seeds": str(sh["seeds"]),
                            "shift_labels": labels_text(sh["labels"])})
    submit_job(shift_group(kind, shift_levels(kind, sh["highest"], sh["steps"]), sh["labels"],
                           sh["seeds"]), shift_notes)

levels = shift_levels(sh["kind"], sh["highest"], sh["steps"])
shifts = shift_group(sh["kind"], levels, sh["labels"], sh["seeds"])
fmt = SHIFTS[sh["kind"]].format_severity
st.caption(f"The target at each severity of these settings ({SHIFTS[sh['kind']].title.lower()}), "
           "one test image per class:")
for column, level in zip(st.columns(len(levels)), levels):
    column.image(preview_strip(sh["kind"], level), caption=f"severity {fmt(level)}", width="stretch")

frame = head_starts(shifts, levels)
if active(shifts):
    live_panel(shifts, "shift", "run", lambda: st.plotly_chart(
        head_start_figure(head_starts(shifts, levels), sh["kind"]), key="shift_live"))
elif frame.empty:
    ended_note(shifts, shift_notes)
    runs = plural(total_runs(shifts), "run")
    st.info(f"No severity of these settings has its runs stored yet ({runs} in all). Press Run.",
            icon=":material/info:")
else:
    ended_note(shifts, shift_notes)
    missing = total_runs(shifts) - stored_runs(shifts)
    if missing:
        shift_notes.warning(f"{plural(missing, 'run')} of these settings not stored yet; press "
                            "Run to train only what is missing.", icon=":material/warning:")
    st.plotly_chart(head_start_figure(frame, sh["kind"]), key="shift")
    st.caption("Each point: mean over seeds of (strategy accuracy − scratch accuracy) on the same "
               "labelled examples; error bars: ±1 standard deviation of that difference.")
    st.markdown(shift_reading(frame, sh["kind"]))
    st.subheader("Reading the plot")
    st.markdown(WHY_SHIFT)
    st.markdown(WHY_KIND[sh["kind"]])
