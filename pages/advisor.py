"""Strategy advisor: a team's situation in, a recommended transfer strategy with its reasons out,
and links to the experiments in this app that show the effect.

Layout and words only: `ui.study.advisor` keeps the situation and draws the form, the advice and the
links; the decision rules are `engine.study.advisor.advise`, a pure function."""

import streamlit as st

from engine.study.advisor import RULES_OF_THUMB, advise
from ui.study.advisor import advice_card, experiment_links, situation
from ui.kit.shell import page_setup


def main() -> None:
    st.title("Strategy advisor")
    st.markdown(
        "Describe your project and get a recommended way to reuse a pretrained model, with the "
        "reasons behind it and a link to the experiment in this app that shows it at work.")
    with st.expander("The rules of thumb behind the advice", icon=":material/rule:"):
        st.caption(RULES_OF_THUMB)
        st.caption("They weigh how many labelled examples you have, how far your data is from "
                   "the pretraining data, your compute and storage, and how many tasks the "
                   "model serves. They are a starting point, not a guarantee.")
    inputs = situation()
    if inputs is None:
        return
    advice = advise(inputs)
    advice_card(inputs, advice)

    st.subheader("See it in an experiment")
    experiment_links(advice)

    st.subheader("Then design your own")
    st.markdown("The **Design a pipeline** exercise walks through the same decisions for a task "
                "of your choice and gives you a Markdown write-up to keep.")
    st.page_link("pages/pipeline.py", label="Design a pipeline", icon=":material/account_tree:")


page_setup()
main()
