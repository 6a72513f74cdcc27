"""The LoRA lab: exact adapter sizes on real architectures, the memory they save, and LoRA
trained on the lesson's own model beside the linear probe and fine-tuning.

UI only: the counts and estimates come from `engine.experiments.lora_presets`; Run submits one sweep to the
server's job manager; the merge check trains one run through the engine."""

import streamlit as st

from engine.infra.jobs import JobLimitError
from engine.core.lora import PUBLISHED, LoraError
from engine.experiments.lora_presets import PRESETS, count_preset, memory_estimates, merge_check, preset_architecture
from engine.core.store import ResultStore
from engine.core.strategies import LORA_ALPHA, get_strategy, lora_layer_names, lora_name
from engine.experiments.sweep import MAX_SEEDS, plan_runs, stored_records
from ui.curves import plural
from ui.jobs import job_manager, session_id
from ui.lora import (DEFAULT_PRESET, LABEL_CHOICES, RANK_CHOICES, LabSettings, bytes_text, count_text,
                     lab_spec, live_tradeoff, memory_figure, memory_table, preset_counts, rank_figure,
                     settings_from, settings_from_query, target_label, tradeoff_figure,
                     tradeoff_sentence, tradeoff_table)
from ui.shell import page_setup, show_link_notices

STATE_KEY = "lora_lab.settings"
PRESET_KEY = "lora_lab.preset"


@st.cache_data(max_entries=16, show_spinner="Training one LoRA run and merging it…")
def cached_merge_check(strategy: str, labels_per_class: int):
    return merge_check(strategy, labels_per_class, seed=0)


page_setup()
st.title("LoRA lab")
st.markdown(
    "Fine-tuning changes every weight of a network. **LoRA** (low-rank adaptation) keeps each "
    "pretrained weight matrix W frozen and learns only a correction of low rank r beside it:")
st.latex(r"W' = W + \frac{\alpha}{r}\,B A,\qquad A \in \mathbb{R}^{r \times d_{\mathrm{in}}},"
         r"\quad B \in \mathbb{R}^{d_{\mathrm{out}} \times r}")
st.markdown(
    "A projects the input down to r numbers, B projects them back up. A layer with "
    "d_in x d_out weights gains r x (d_in + d_out) trainable ones: for a 4096 x 4096 projection at "
    "r = 8 that is 65,536 instead of 16.8 million. B starts at zero, so training starts from "
    "exactly the pretrained model. With alpha held fixed, the factor alpha/r keeps the update "
    "about the same size when r changes, so the learning rate need not be tuned again. A convolution gets an A with the same kernel (r x C_in x k x k) and a "
    "1x1 B; an embedding table gets an A of r x vocabulary and a B of width x r.")

# ---- 1. Count --------------------------------------------------------------------------------
st.header("1. Count the adapter")
url_preset = st.query_params.get("preset")
if url_preset is not None and url_preset not in PRESETS:
    st.warning("This link's architecture is not one the lab knows; showing GPT-3 175B.",
               icon=":material/link_off:")
if PRESET_KEY not in st.session_state:  # a link opens its architecture; later, the widget rules
    st.session_state[PRESET_KEY] = url_preset if url_preset in PRESETS else DEFAULT_PRESET
preset = st.selectbox("Architecture", list(PRESETS), format_func=lambda n: PRESETS[n].title,
                      key=PRESET_KEY)
if preset != DEFAULT_PRESET or "preset" in st.query_params:
    st.query_params["preset"] = preset
arch = preset_architecture(preset)
names = arch.target_names()
left, mid, right = st.columns([1, 1, 3])
rank = left.number_input("Rank r", min_value=1, max_value=1024, value=8, step=1)
alpha = mid.number_input("alpha", min_value=0.5, max_value=1024.0, value=16.0, step=1.0,
                         help="Scales the update by alpha / r. It changes no count.")
targets = right.multiselect("Target modules", names, default=list(PRESETS[preset].default_targets),
                            key=f"lora_targets_{preset}", format_func=target_label,
                            help="Names matched as peft matches target_modules: a module whose "
                                 "path is the name or ends with '.' + the name.")
st.caption(f"{PRESETS[preset].title}: {PRESETS[preset].about}. Built from its architecture "
           "(no weights downloaded); every number below is counted from its module shapes.")
count = preset_counts(preset, int(rank), targets)
if count is not None:
    c = st.columns(4)
    c[0].metric("Trainable (LoRA)", count_text(count.trainable), help=f"{count.trainable:,}")
    c[1].metric("Total with the adapter", count_text(count.total), help=f"{count.total:,}")
    c[2].metric("Trainable share", f"{count.percent:.4g}%")
    c[3].metric("Scaling alpha/r", f"{alpha / rank:.4g}")
    st.markdown(
        f"Exactly **{count.trainable:,}** trainable parameters out of **{count.total:,}** "
        f"(peft's `get_nb_trainable_parameters()` reports the same pair). On disk the adapter takes "
        f"**{bytes_text(count.trainable * 2)}** in fp16 ({bytes_text(count.trainable * 4)} in fp32) "
        f"against **{bytes_text(count.base_total * 2)}** for the full checkpoint in fp16 "
        f"({bytes_text(count.base_total * 4)} in fp32): "
        f"{count.base_total / count.trainable:,.0f} times smaller. (Tensor data only; a file's "
        "header adds a few kilobytes.)")
    st.dataframe(count.breakdown(), hide_index=True, column_config={
        k: st.column_config.NumberColumn(format="localized")
        for k in ("count", "weights each", "LoRA each", "LoRA total")})
st.markdown("**Trainable parameters against rank** (exact counts; both axes logarithmic): "
            "doubling r doubles the adapter, and it stays far below the whole model.")
st.plotly_chart(rank_figure(preset), key="rank_chart")
st.caption(f"The same count on the command line: `python -m engine lora-params --preset {preset} "
           f"--rank {int(rank)} --targets {','.join(targets) or '...'}`")

# ---- 2. Memory -------------------------------------------------------------------------------
st.header("2. Memory to fine-tune it")
t = PRESETS[preset].transformer
left, mid, right, far = st.columns(4)
weights = left.radio("Weights", ["bf16", "fp32"], horizontal=True)
batch = mid.number_input("Batch size", min_value=1, max_value=4096, value=1, step=1)
seq = right.number_input("Sequence length (tokens)", min_value=1, max_value=131072,
                         value=min(512, t.seq) if t else 512, step=1,
                         disabled=t is None or t.fixed_seq,
                         help="Transformers only; ViT always reads 197 tokens.")
checkpointing = far.toggle("Gradient checkpointing", value=True, disabled=t is None,
                           help="Keep only each block's input and recompute the rest in the "
                                "backward pass (transformers here).")
if count is not None:
    estimates = memory_estimates(preset, int(rank), targets, weights, int(batch), int(seq), checkpointing)
    st.plotly_chart(memory_figure(estimates), key="memory_chart")
    with st.expander("Every term and its assumption"):
        st.dataframe(memory_table(estimates), hide_index=True)
    st.markdown(
        "Full fine-tuning pays for a gradient and two Adam moments for every weight, about 16 "
        "bytes a weight. LoRA pays them only for A and B, so a frozen 16-bit model costs 2 bytes a "
        "weight. QLoRA also stores the frozen linear layers in 4-bit NormalFloat, about half a "
        "byte a weight. The activations are the same for all three: the gradient still has to flow "
        "back through every frozen layer to reach the adapters, so the same activations are kept.")

st.subheader("Beside the published figures")
gpt3 = count_preset("gpt3-175b", 4, ["q_proj", "v_proj"])
g = memory_estimates("gpt3-175b", 4, ["q_proj", "v_proj"], "bf16", 1, 2048, True)
q65 = memory_estimates("llama-65b", 8, ["q_proj", "v_proj"], "bf16", 1, 512, True)[2]
st.table({
    "Published figure": [p.what for p in PUBLISHED.values()],
    "As published": [p.stated for p in PUBLISHED.values()],
    "This lab's estimate": [
        f"{bytes_text(g[0].total)} (bf16 weights, fp32 master copy and Adam, 2048 tokens)",
        f"{bytes_text(g[1].total)} (bf16 frozen weights, r = 4 on Wq and Wv)",
        f"{bytes_text(gpt3.base_total * 2)} ({gpt3.base_total:,} weights in fp16)",
        f"{bytes_text(gpt3.trainable * 2)} ({gpt3.trainable:,} LoRA weights in fp16)",
        f"{bytes_text(q65.total)} (LLaMA 65B, r = 8 on q and v, 512 tokens, checkpointing)"],
    "Source": [p.source for p in PUBLISHED.values()]})
st.markdown(
    f"The paper's 1.2 TB for full fine-tuning works out at "
    f"{PUBLISHED['gpt3_full_train'].value / gpt3.base_total:.1f} bytes a weight, less than the 16 "
    "assumed here (bf16 weights and gradients, an fp32 master copy, fp32 Adam moments). The paper "
    "does not list its terms, so the gap is one of assumptions about how the optimizer state is "
    "stored. The frozen 16-bit model behind the 350 GB and the 35 MB adapter match the exact "
    f"counts here, and the QLoRA estimate for LLaMA 65B, {bytes_text(q65.total)}, "
    f"{'fits' if q65.total < PUBLISHED['qlora_65b'].value else 'does not fit'} in one 48 GB GPU.")

# ---- 3. Train --------------------------------------------------------------------------------
st.header("3. LoRA on the lesson's model")
st.markdown(
    "The small CNN pretrained on MNIST, moved to the UCI digits, trained three ways by the same "
    "engine: the **linear probe** (only the new head), **fine-tuning** (every weight) and **LoRA** "
    f"at each rank with alpha = {LORA_ALPHA:g} on the chosen layers; A and B learn at the rate "
    "fine-tuning gives the pretrained layers, since they change those layers. LoRA also trains the new "
    "10-class head: the source's head predicts the source's classes, so the target needs a head of "
    "its own, and a frozen random head would make the comparison meaningless (peft's "
    "`modules_to_save` does the same). The head's parameters are counted in LoRA's trainable "
    "parameters below.")
from_url, notices = settings_from_query({k: v for k, v in st.query_params.to_dict().items()
                                         if k in ("labels", "seeds", "ranks", "layers")})
settings = from_url or st.session_state.get(STATE_KEY) or LabSettings()
show_link_notices(notices)
with st.form("lora_settings", border=True):
    left, right = st.columns(2)
    labels = left.selectbox("Labels per class", LABEL_CHOICES,
                            index=LABEL_CHOICES.index(settings.labels_per_class))
    seeds = right.number_input("Seeds", min_value=1, max_value=MAX_SEEDS, value=settings.seeds, step=1)
    ranks = left.multiselect("LoRA ranks", RANK_CHOICES, default=list(settings.ranks))
    layers = right.multiselect("Layers LoRA wraps", lora_layer_names(),
                               default=list(settings.layers or lora_layer_names()))
    run = st.form_submit_button("Run", type="primary", icon=":material/play_arrow:")
notes = st.container()
if run:
    try:
        settings = settings_from(labels, seeds, ranks, layers)
        spec = lab_spec(settings)
    except ValueError as err:
        notes.error(f"These settings cannot run: {err}.", icon=":material/error:")
    else:
        st.session_state[STATE_KEY] = settings
        st.query_params.update(settings.to_query())
        try:
            job = job_manager().submit(spec, session_id())
        except (ValueError, JobLimitError) as err:
            notes.error(f"Not started: {err}.", icon=":material/error:")
        else:
            if not job.active:
                notes.success("Every run of these settings was already stored: nothing was "
                              "retrained.", icon=":material/check_circle:")
spec = lab_spec(settings)
job = job_manager().status(spec.key())
if job is not None and job.active:
    live_tradeoff(spec)
else:
    records = stored_records(spec, ResultStore())
    total = len(plan_runs(spec))
    if records.empty:
        st.info(f"None of the {plural(total, 'run')} of these settings is stored yet: press Run.",
                icon=":material/info:")
    else:
        if len(records) < total:
            notes.warning(f"{total - len(records)} of {plural(total, 'run')} are not stored yet; "
                          "press Run to train only the missing ones.", icon=":material/warning:")
        table = tradeoff_table(records)
        st.plotly_chart(tradeoff_figure(table), key="lora_tradeoff")
        st.markdown(tradeoff_sentence(table))
        st.dataframe(table.drop(columns=["strategy", "rank"]), hide_index=True, column_config={
            "Trainable parameters": st.column_config.NumberColumn(format="localized"),
            "% of the model": st.column_config.NumberColumn(format="%.2f"),
            "Mean test accuracy (%)": st.column_config.NumberColumn(format="%.1f"),
            "± std": st.column_config.NumberColumn(format="%.1f")})
        st.caption(f"{settings.labels_per_class} labels per class; points are means over seeds, "
                   "bars ±1 standard deviation (none with one seed). Gaps smaller than the bars are "
                   "run-to-run noise. Trainable parameters are counted on the built model.")

# ---- 4. Merge --------------------------------------------------------------------------------
st.header("4. Merge the adapter into W")
st.markdown(
    "After training, (alpha/r)·B·A can be added into W once: the network is then plain again, "
    "with the original shapes and no extra work at inference. This trains one LoRA run (seed 0, "
    "the settings above) and compares the model's outputs before and after merging.")
with st.form("merge_settings", border=True):
    merge_rank = st.selectbox("Rank", RANK_CHOICES, index=RANK_CHOICES.index(4))
    merge = st.form_submit_button("Train and merge", icon=":material/merge:")
if merge:
    name = lora_name(merge_rank, settings.layers)
    try:
        check = cached_merge_check(name, settings.labels_per_class)
    except LoraError as err:
        st.warning(f"{err}.", icon=":material/hourglass_empty:")
    else:
        c = st.columns(4)
        c[0].metric("Largest output difference", f"{check.max_abs_diff:.2e}",
                    help=f"max |logits before − after merging| over {check.test_images:,} test images")
        c[1].metric("Accuracy with adapter", f"{check.accuracy:.1f}%")
        c[2].metric("Accuracy merged", f"{check.merged_accuracy:.1f}%")
        c[3].metric("Adapter on disk (fp32)", bytes_text(check.lora_bytes))
        st.markdown(
            f"{get_strategy(name).label}: the adapter's {check.lora_params:,} numbers take "
            f"{check.lora_bytes:,} bytes as a safetensors file in fp32 ({check.lora_bytes_fp16:,} in "
            f"fp16); the new head adds {check.head_bytes:,}; the whole merged model takes "
            f"{check.full_bytes:,}. The outputs differ only by floating-point rounding.")
