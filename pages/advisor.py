"""Strategy advisor: a team's situation in, a recommended transfer strategy with its reasons out,
and links to the experiments in this app that show the effect.

UI only: the decision rules are `engine.study.advisor.advise`, a pure function."""

import streamlit as st

from engine.study.advisor import (COMPUTE, DOMAINS, MAX_EXAMPLES, MAX_TASKS, MODEL_SIZES, STORAGE,
                            AdvisorInputs, advise)
from ui.shell import page_setup

INPUTS_KEY = "advisor.inputs"  # session_state: the last valid AdvisorInputs
PAGES = {"transfer_curves": ("pages/transfer_curves.py", ":material/show_chart:"),
         "which_source": ("pages/which_source.py", ":material/compare_arrows:")}


def main() -> None:
    st.title("Strategy advisor")
    st.markdown(
        "Describe your situation and get a recommended way to reuse a pretrained model, with the "
        "reasons behind it. The advice follows the usual rules of thumb: how many labelled "
        "examples you have, how far your data is from what the model was pretrained on, what "
        "compute and storage you can use, and how many tasks the model must serve. Rules of thumb "
        "are a starting point; the experiments linked below let you see them at work.")

    current = st.session_state.get(INPUTS_KEY) or AdvisorInputs(500, classes=5, domain="related")
    with st.form("advisor_form", border=True):
        left, right = st.columns(2)
        labelled = left.number_input(
            "Labelled examples", min_value=0, max_value=MAX_EXAMPLES,
            value=current.labelled_examples, step=100,
            help="Labelled examples of your target task that you have now, all classes together.")
        classes = right.number_input("Classes", min_value=2, max_value=100_000,
                                     value=current.classes, step=1,
                                     help="How many classes the target task has.")
        domain = st.radio("How far is your data from the pretraining data?", list(DOMAINS),
                          index=list(DOMAINS).index(current.domain), format_func=DOMAINS.get)
        size = st.radio("Pretrained model", list(MODEL_SIZES),
                        index=list(MODEL_SIZES).index(current.model_size),
                        format_func=MODEL_SIZES.get)
        left, right = st.columns(2)
        compute = left.selectbox("Compute", list(COMPUTE),
                                 index=list(COMPUTE).index(current.compute),
                                 format_func=COMPUTE.get)
        tasks = right.number_input("Tasks the model must serve", min_value=1, max_value=MAX_TASKS,
                                   value=current.tasks, step=1,
                                   help="Separate tasks, or per-customer variants, that the same "
                                        "pretrained model is adapted to.")
        storage = st.radio("Storage", list(STORAGE), index=list(STORAGE).index(current.storage),
                           format_func=STORAGE.get)
        asked = st.form_submit_button("Recommend a strategy", type="primary",
                                      icon=":material/recommend:")

    if asked:
        try:
            current = AdvisorInputs(int(labelled), classes=int(classes), domain=domain,
                                    model_size=size, compute=compute, storage=storage,
                                    tasks=int(tasks))
        except ValueError as err:
            st.error(f"These inputs cannot be used: {err}.", icon=":material/error:")
            return
        st.session_state[INPUTS_KEY] = current
    elif INPUTS_KEY not in st.session_state:
        st.info("Set your situation and press **Recommend a strategy**.", icon=":material/info:")
        return

    advice = advise(current)
    with st.container(border=True):
        st.caption(f"For {current.labelled_examples:,} labelled examples in {current.classes:,} "
                   f"classes (about {current.per_class:,} per class), {current.tasks:,} "
                   f"task{'s' if current.tasks != 1 else ''}")
        st.subheader(f"Recommended: {advice.title}")
        st.markdown("**Why**\n" + "\n".join(f"- {reason}" for reason in advice.reasons))
        st.markdown("**Watch out**\n" + "\n".join(f"- {caution}" for caution in advice.cautions))

    st.subheader("See it in an experiment")
    for link in advice.links:
        path, icon = PAGES[link.page]
        st.page_link(path, label=link.label, icon=icon, query_params=link.query())
        st.caption(link.why + " The link opens the page with these settings; press Run there.")

    st.subheader("Then design your own")
    st.markdown("The **Design a pipeline** exercise walks through the same decisions for a task "
                "of your choice and gives you a Markdown write-up to keep.")
    st.page_link("pages/pipeline.py", label="Design a pipeline", icon=":material/account_tree:")


page_setup()
main()
