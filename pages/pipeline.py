"""Design a pipeline: the five-step exercise as a guided form, exported as Markdown.

Layout and words only: `ui.study.pipeline` keeps the answers and draws the inputs, `engine.study.pipeline`
validates the answers and writes the document."""

import streamlit as st

from engine.study.advisor import RULES_OF_THUMB
from ui.study.pipeline import ANSWERS_KEY, PlanForm, plan_export, save_as_you_type
from ui.kit.shell import page_setup


def steps(form: PlanForm) -> None:
    st.subheader("1. Choose a task")
    form.task()

    st.subheader("2. Pick a pretrained backbone")
    st.caption("Name a publicly available model. What did it pretrain on, and why should that "
               "help here? Images suggest an ImageNet network (ResNet, EfficientNet, ViT) or one "
               "pretrained closer to your images; short texts suggest a pretrained text encoder "
               "(a BERT-style model). If you plan to train from scratch, name the architecture "
               "and say why no pretrained model is close enough to your data to start from.")
    form.text("backbone", "Backbone", "A model you could download today.", area=False)
    form.text("backbone_why", "What it pretrained on, and why that transfers",
              "Which features of the source are likely to be useful for your target?")

    st.subheader("3. Labels and strategy")
    with st.expander("Rules of thumb for this step", icon=":material/rule:"):
        st.caption(RULES_OF_THUMB)
        st.page_link("pages/advisor.py", label="The Strategy advisor applies them to your numbers",
                     icon=":material/recommend:")
    form.labels_and_strategy()
    form.text("strategy_why", "Why this strategy for that many labels?",
              "Tie it to the number of labels, the domain gap and your compute.")

    st.subheader("4. The biggest domain-shift risk")
    form.text("shift_risk", "How does your target data differ from the pretraining data?",
              "Viewpoint, colour, resolution, vocabulary, sensor, population, time: what changes?")

    st.subheader("5. A failure mode to test before deploying")
    form.text("failure_mode", "What could go wrong once the model is in use?",
              "For example: it fails on images from a new device, or on a class that is rare in "
              "training.")
    form.text("detection", "How would you detect it before deploying?",
              "Which held-out slice, test or measurement would reveal it?")


def main() -> None:
    st.title("Design a pipeline")
    st.markdown(
        "Plan a transfer learning project in five steps. There is no single right answer: what "
        "matters is that each choice follows from the one before. Download your plan as Markdown "
        "at the end.")
    st.caption("Your answers are saved under this page's link as you type (at each pause), so a "
               "reload keeps "
               "them; anyone with the link can open them.")
    form = PlanForm()
    with st.container(key=ANSWERS_KEY):
        save_as_you_type()
        steps(form)
    plan = form.plan()
    if plan is None:
        return
    st.divider()
    plan_export(plan)


page_setup()
main()
