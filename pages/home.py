"""Home: what transfer learning is, the three strategies, the lesson path (the experiments in
order, then the practice pages) and the tools."""

import streamlit as st

from engine.core.device import describe_device
from engine.core.strategies import STRATEGIES
from ui.catalog import EXPERIMENTS, PRACTICE, TOOLS, Lesson
from ui.kit.shell import page_setup


def page_cards(pages: tuple[Lesson, ...], numbered: bool) -> None:
    """A bordered card per page: its link (numbered in lesson order when `numbered`) and the
    one sentence that says what it does."""
    for number, lesson in enumerate(pages, start=1):
        with st.container(border=True):
            title = f"{number}. {lesson.title}" if numbered else lesson.title
            st.page_link(lesson.path, label=f"**{title}**", icon=lesson.icon)
            st.markdown(lesson.summary)


page_setup()
st.title("Transfer Lab")
st.markdown(
    "Learn transfer learning by running real experiments: pretrain a network on one task, reuse "
    "it on another, and measure what the reuse buys. Start with **Transfer curves** and follow "
    "the lesson path below.")
st.caption(
    "Every accuracy and curve comes from a real training run, never a drawing or a simulation. "
    "On a first visit a lesson may show a precomputed lesson pack (runs trained ahead of time by "
    "the same code, marked as such) until you press Run. Parameter counts are exact; memory "
    "figures are estimates from formulas. Sentences that state a result are chosen by one "
    "statistical rule, quote the 95% interval they rest on, and call nothing on fewer than 3 "
    "seeds: see How a difference is called.")

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
st.markdown(f"{len(EXPERIMENTS)} experiments in order, each building on the one before; each "
            "trains real networks on this server.")
page_cards(EXPERIMENTS, numbered=True)

st.header("Practice")
st.markdown("Apply the ideas to a project of your own and check what you remember.")
page_cards(PRACTICE, numbered=False)

st.header("Tools")
page_cards(TOOLS, numbered=False)

st.header("Where the training runs")
st.markdown(
    f"This app trains on **{describe_device()}**: the engine picks CUDA when a GPU is "
    "available, otherwise the CPU, where everything still runs, only more slowly. Finished runs "
    "are stored, so nothing is trained twice."
)
