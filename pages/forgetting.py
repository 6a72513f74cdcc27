"""Forgetting and what fine-tuning changes: catastrophic forgetting with four mitigations, and
per-layer diagnostics (linear probes, CKA) of where fine-tuning changed the network.

UI only: each section's form builds a frozen config (`engine.experiments.forgetting.ForgettingConfig`,
`engine.experiments.diagnostics.DiagnosticsConfig`), Run submits it to the server's job manager, and the
section draws what the store holds (live while its job runs)."""

import streamlit as st

from engine.core.datasets import ALL_LABELS
from engine.experiments.diagnostics import DiagnosticsConfig, stored_units
from engine.experiments.forgetting import ForgettingConfig, stored_arms
from engine.core.store import ResultStore
from ui.curves import plural
from ui.experiments import QueryReader, active, ended_note, live_panel, submit_job
from ui.forgetting import (cka_figure, change_table, diagnostics_reading, forgetting_figure,
                           forgetting_reading, forgetting_table, probe_figure)
from ui.shell import page_setup, show_link_notices

F_LABELS, D_LABELS, PROBE_LABELS = (10, 20, 50, ALL_LABELS), (5, 10, 20, 50, ALL_LABELS), (5, 10, 20, ALL_LABELS)
LRS, LOW_MULTS = (1e-3, 3e-3, 1e-2), (0.3, 0.1, 0.03)
LAMBDAS = (0.0, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0)
BACKBONE_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
F_KEY, D_KEY = "forgetting.config", "forgetting.diagnostics"
F_PARAMS = ("f_labels", "f_epochs", "f_lr", "f_low", "f_freeze", "f_lambda", "f_replay", "f_seed")
D_PARAMS = ("d_labels", "d_lrs", "d_probe")


def size_text(k: int) -> str:
    return "all" if k == ALL_LABELS else str(k)


page_setup()
st.title("Forgetting, and what fine-tuning changes")
st.markdown(
    "Fine-tuning optimises the network for the target and nothing else. This lesson watches what "
    "that does to the task the network was pretrained on, tries four standard remedies, then "
    "looks inside the network to see which layers fine-tuning actually rewrote.")

params = st.query_params.to_dict()
query = QueryReader(params)
url_f = dict(labels_per_class=query.size("f_labels", F_LABELS, ALL_LABELS),
             epochs=query.integer("f_epochs", 2, 15, 8), lr=query.numbers("f_lr", LRS, (3e-3,))[0],
             low_lr_mult=query.numbers("f_low", LOW_MULTS, (0.1,))[0],
             freeze_blocks=query.integer("f_freeze", 1, 3, 2),
             ewc_lambda=query.numbers("f_lambda", LAMBDAS, (1000.0,))[0],
             replay_fraction=query.number("f_replay", 0, 0.9, 0.25), seed=query.integer("f_seed", 0, 9, 0))
url_d = dict(labels_per_class=query.size("d_labels", D_LABELS, 20),
             backbone_lrs=query.numbers("d_lrs", BACKBONE_LRS, (3e-4, 3e-3)),
             probe_labels_per_class=query.size("d_probe", PROBE_LABELS, 10))
try:
    f_config = ForgettingConfig(**url_f)
    d_config = DiagnosticsConfig(**url_d)
except ValueError as err:
    query.notices.append(str(err))
    f_config, d_config = ForgettingConfig(), DiagnosticsConfig()
if not any(k in params for k in F_PARAMS):
    f_config = st.session_state.get(F_KEY, f_config)
if not any(k in params for k in D_PARAMS):
    d_config = st.session_state.get(D_KEY, d_config)
show_link_notices(query.notices)

# ---- catastrophic forgetting ----------------------------------------------------------------------
st.header("Catastrophic forgetting")
st.markdown(
    "The small CNN pretrained on MNIST keeps its **MNIST head** (frozen) beside a new head for the "
    "UCI digits. After every epoch of fine-tuning both tasks are scored: MNIST on the held-out "
    "images the pretraining never trained on, UCI on its test split. The MNIST head never "
    "changes, so any drop in MNIST accuracy comes from the shared layers moving under it: that "
    "is **forgetting**. Each *arm* fine-tunes the same starting point in its own way.")
with st.form("forgetting_settings"):
    a, b, c = st.columns(3)
    f_labels = a.select_slider("Target labels per class", F_LABELS, f_config.labels_per_class,
                               format_func=size_text)
    epochs = b.slider("Epochs", 2, 15, f_config.epochs)
    lr = c.select_slider("Learning rate", LRS, f_config.lr,
                         format_func="{:g}".format,
                         help="Of every layer in plain fine-tuning, and of the new head in every arm.")
    a, b, c, d = st.columns(4)
    low = a.select_slider("Lower learning rate: factor", LOW_MULTS, f_config.low_lr_mult,
                          format_func="{:g}".format)
    freeze = b.slider("Frozen early blocks", 1, 3, f_config.freeze_blocks)
    lam = c.select_slider("EWC λ", LAMBDAS, f_config.ewc_lambda, format_func="{:g}".format,
                          help="0 makes EWC plain fine-tuning.")
    replay = d.slider("Replay fraction", 0.0, 0.9, float(f_config.replay_fraction), 0.05,
                      help="Share of each batch that is MNIST training images.")
    seed = st.number_input("Seed", 0, 9, f_config.seed, help="Target labels drawn, new head, "
                           "batch order.", width=160)
    run_f = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
f_notes = st.container()
if run_f:
    try:
        f_config = ForgettingConfig(labels_per_class=f_labels, epochs=epochs, lr=lr, low_lr_mult=low,
                                    freeze_blocks=freeze, ewc_lambda=lam, replay_fraction=round(replay, 2),
                                    seed=int(seed))
    except ValueError as err:
        f_notes.error(f"These settings cannot run: {err}.", icon=":material/error:")
    else:
        st.session_state[F_KEY] = f_config
        st.query_params.update({"f_labels": size_text(f_config.labels_per_class),
                                "f_epochs": str(epochs), "f_lr": f"{lr:g}", "f_low": f"{low:g}",
                                "f_freeze": str(freeze), "f_lambda": f"{lam:g}",
                                "f_replay": f"{f_config.replay_fraction:g}", "f_seed": str(seed)})
        submit_job(f_config, f_notes)


def draw_forgetting(records: dict, key: str) -> None:
    left, right = st.columns(2)
    left.plotly_chart(forgetting_figure(records, "source"), key=f"{key}_source")
    right.plotly_chart(forgetting_figure(records, "target"), key=f"{key}_target")


def draw_forgetting_live() -> None:
    records = stored_arms(f_config, ResultStore())
    if records:
        draw_forgetting(records, "forgetting_live")


f_records = stored_arms(f_config, ResultStore())
if active(f_config):
    live_panel(f_config, "forgetting", "arm", draw_forgetting_live)
elif not f_records:
    ended_note(f_config, f_notes)
    st.info(f"None of the {plural(len(f_config.arms), 'arm')} of these settings is stored yet. "
            "Press Run (about a minute on two CPU cores).", icon=":material/info:")
else:
    ended_note(f_config, f_notes)
    if len(f_records) < len(f_config.arms):
        missing = plural(len(f_config.arms) - len(f_records), "arm")
        f_notes.warning(f"{missing} of these settings not stored yet; press Run to train only "
                        "what is missing.", icon=":material/warning:")
    draw_forgetting(f_records, "forgetting")
    st.dataframe(forgetting_table(f_records, f_config))
    st.markdown(forgetting_reading(f_records))
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
with st.form("diagnostics_settings"):
    a, b, c = st.columns(3)
    d_labels = a.select_slider("Fine-tune labels per class", D_LABELS, d_config.labels_per_class,
                               format_func=size_text)
    d_lrs = b.multiselect("Learning rates of the pretrained layers", BACKBONE_LRS,
                          default=list(d_config.backbone_lrs), format_func="{:g}".format,
                          help="One fine-tune per rate; the new head trains at 0.003.")
    d_probe = c.select_slider("Probe labels per class", PROBE_LABELS,
                              d_config.probe_labels_per_class, format_func=size_text)
    run_d = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
d_notes = st.container()
if run_d:
    try:
        d_config = DiagnosticsConfig(labels_per_class=d_labels, backbone_lrs=tuple(d_lrs),
                                     probe_labels_per_class=d_probe)
    except ValueError as err:
        d_notes.error(f"These settings cannot run: {err}.", icon=":material/error:")
    else:
        st.session_state[D_KEY] = d_config
        st.query_params.update({"d_labels": size_text(d_labels), "d_probe": size_text(d_probe),
                                "d_lrs": ",".join(f"{v:g}" for v in d_config.backbone_lrs)})
        submit_job(d_config, d_notes)

d_records = stored_units(d_config, ResultStore())
if active(d_config):
    live_panel(d_config, "diagnostics", "model")
elif not d_records:
    ended_note(d_config, d_notes)
    st.info(f"Nothing of these settings is stored yet ({plural(len(d_config.unit_names()), 'model')} "
            "to train and probe). Press Run.", icon=":material/info:")
else:
    ended_note(d_config, d_notes)
    st.subheader("Linear probe on each layer")
    st.plotly_chart(probe_figure(d_records), key="probes")
    st.subheader("Similarity before against after fine-tuning")
    st.plotly_chart(cka_figure(d_records), key="cka")
    table = change_table(d_records)
    if not table.empty:
        st.dataframe(table)
    st.markdown(diagnostics_reading(d_records, d_config))
    st.markdown(
        "What to look for: early blocks compute edges and stroke pieces, as useful for UCI digits "
        "as for MNIST, so fine-tuning has little reason to change them; later blocks combine them "
        "into MNIST's particular shapes, so the target's gradient reshapes them most, and more "
        "so at a higher learning rate. Where CKA falls is where the source's representation was "
        "overwritten, which is where forgetting comes from, and why freezing only the early "
        "blocks does not prevent it.")
