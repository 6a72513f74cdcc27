"""Design a pipeline: the five-step exercise as a guided form, exported as Markdown.

UI only: `engine.study.pipeline` validates the answers and writes the document. What the learner
types is only shown back as plain text (a code block) and written into their download."""

from dataclasses import asdict

import streamlit as st

from engine.study.pipeline import (MAX_CHARS, STRATEGIES, TASKS, PipelinePlan, missing_steps,
                             plan_markdown)
from ui.shell import page_setup

PLAN_KEY = "pipeline.plan"  # session_state: the answers so far, kept while moving between pages


def main() -> None:
    st.title("Design a pipeline")
    st.markdown(
        "Plan a transfer learning project from start to finish, in five steps. There is no single "
        "right answer: what matters is that each choice follows from the one before. Your answers "
        "stay in this browser session; download them as a Markdown file when you are done.")

    saved: dict = st.session_state.setdefault(PLAN_KEY, asdict(PipelinePlan()))
    answers: dict = {}


    def text(name: str, label: str, help: str, area: bool = True) -> str:
        widget = st.text_area if area else st.text_input
        kwargs = {"height": 100} if area else {}
        value = widget(label, value=saved.get(name, ""), max_chars=MAX_CHARS, help=help,
                       key=f"pipeline.{name}", **kwargs)
        answers[name] = value
        return value


    st.subheader("1. Choose a task")
    options = list(TASKS)
    choice = st.radio("Target task", options, format_func=TASKS.get, key="pipeline.task_choice",
                      index=next((i for i, k in enumerate(options) if TASKS[k] == saved["task"]),
                                 len(options) - 1 if saved["task"] else 0))
    if choice == "own":
        own = saved["task"] if saved["task"] not in TASKS.values() else ""
        answers["task"] = st.text_input("Your task", value=own, max_chars=MAX_CHARS,
                                        key="pipeline.task_own", placeholder="e.g. sort bird calls "
                                        "by species")
    else:
        answers["task"] = TASKS[choice]

    st.subheader("2. Pick a pretrained backbone")
    st.caption("Name a publicly available model. What did it pretrain on, and why should that "
               "help here? Images suggest an ImageNet network (ResNet, EfficientNet, ViT) or one "
               "pretrained closer to your images; short texts suggest a pretrained text encoder "
               "(a BERT-style model).")
    text("backbone", "Backbone", "A model you could download today.", area=False)
    text("backbone_why", "What it pretrained on, and why that transfers",
         "Which features of the source are likely to be useful for your target?")

    st.subheader("3. Labels and strategy")
    st.caption("Rules of thumb: fewer than about 1,000 labels, freeze the backbone and train a "
               "head; thousands, fine-tune the later layers or use LoRA; tens of thousands, full "
               "fine-tuning with small learning rates. The Strategy advisor page applies these "
               "rules to your numbers.")
    left, right = st.columns(2)
    answers["labels"] = int(left.number_input(
        "Labelled examples you could realistically collect", min_value=0, max_value=10**9,
        value=int(saved.get("labels", 0)), step=100, key="pipeline.labels"))
    answers["strategy"] = right.selectbox(
        "Strategy", ["", *STRATEGIES], key="pipeline.strategy",
        index=([""] + list(STRATEGIES)).index(saved.get("strategy", "")),
        format_func=lambda s: s or "Choose one")
    text("strategy_why", "Why this strategy for that many labels?",
         "Tie it to the number of labels, the domain gap and your compute.")

    st.subheader("4. The biggest domain-shift risk")
    text("shift_risk", "How does your target data differ from the pretraining data?",
         "Viewpoint, colour, resolution, vocabulary, sensor, population, time: what changes?")

    st.subheader("5. A failure mode to test before deploying")
    text("failure_mode", "What could go wrong once the model is in use?",
         "For example: it fails on images from a new device, or on a class that is rare in "
         "training.")
    text("detection", "How would you detect it before deploying?",
         "Which held-out slice, test or measurement would reveal it?")

    try:
        plan = PipelinePlan(**answers)
    except ValueError as err:
        st.error(f"Not saved: {err}.", icon=":material/error:")
        return
    st.session_state[PLAN_KEY] = asdict(plan)

    st.divider()
    missing = missing_steps(plan)
    if missing:
        st.warning("Still to answer: " + "; ".join(missing) + ".", icon=":material/edit_note:")
    else:
        st.success("All five steps answered.", icon=":material/task_alt:")
    document = plan_markdown(plan)
    st.download_button("Download your plan (Markdown)", data=document,
                       file_name="transfer-pipeline.md", mime="text/markdown", on_click="ignore",
                       icon=":material/download:", type="primary" if not missing else "secondary")
    with st.expander("Preview the Markdown"):
        st.code(document, language="markdown")


page_setup()
main()
