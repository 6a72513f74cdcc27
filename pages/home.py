"""Home: what transfer learning is, the three strategies, and the lesson path."""

import streamlit as st

from engine.core.device import describe_device
from engine.core.strategies import STRATEGIES
from ui.lessons import LESSONS
from ui.shell import page_setup

page_setup()

st.title("Transfer Lab")
st.markdown(
    "Learn transfer learning by running real experiments. Every accuracy and curve in this app "
    "comes from a real training run, never from a drawing or a simulation; on a first visit a "
    "lesson may show a precomputed lesson pack, runs trained ahead of time by the same code and "
    "marked as such, until you press Run. The LoRA lab's parameter counts are exact counts of "
    "the models; its memory figures are estimates from formulas, not measurements. Every sentence "
    "that states a result is chosen from the runs on screen, by one stated rule for when a "
    "difference counts."
)

st.header("What transfer learning is")
st.markdown(
    "A network trained on plenty of labelled data for one task, the **source**, learns a "
    "hierarchy of features: its first layers respond to edges, strokes and textures, later "
    "layers combine them into parts and whole shapes. Much of that hierarchy is useful beyond "
    "the source. "
    "**Transfer learning** reuses it for a new task, the **target**: keep the pretrained layers, "
    "replace the output layer with a new one for the target's classes, and train on the "
    "target's labels.\n\n"
    "When labels are scarce this matters most. A network trained from random weights must learn "
    "edges, parts and shapes from a handful of examples; a pretrained one only has to learn "
    "how to combine features it already has. The difference in test accuracy is the "
    "**head start** that pretraining buys; it usually shrinks as the number of labels grows."
)

st.header("Three ways to train on the target")
for column, name in zip(st.columns(3), ("scratch", "probe", "finetune")):
    strategy = STRATEGIES[name]
    with column.container(border=True):
        st.subheader(strategy.label)
        st.markdown(strategy.description)
        st.caption("Starts from pretrained weights." if strategy.uses_pretrained
                   else "Uses no pretraining: the baseline.")

st.header("Lesson path")
for number, lesson in enumerate(LESSONS, start=1):
    with st.container(border=True):
        st.page_link(lesson.path, label=f"{number}. {lesson.title}", icon=lesson.icon)
        st.markdown(lesson.summary)

st.header("Where the training runs")
st.markdown(
    f"This app trains on **{describe_device()}**: the engine picks CUDA when a GPU is "
    "available, otherwise the CPU, where everything still runs, only more slowly. Finished runs "
    "are stored, so nothing is trained twice."
)
