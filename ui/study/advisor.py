"""The Strategy advisor page's state and sections: the situation form, the advice, and the links
to the experiments that show it.

The state is the last valid `AdvisorInputs` of the session (INPUTS_KEY), also written into the
page's link (`AdvisorInputs.to_query`), so a reload or a shared link gives the same situation
and advice: the form starts from it, and pressing Recommend replaces it when the new inputs are
valid. The decision rules are
`engine.study.advisor.advise`, a pure function; nothing here decides or trains.
"""

from __future__ import annotations

from typing import Optional

import streamlit as st

from engine.study.advisor import (COMPUTE, DOMAINS, MAX_EXAMPLES, MAX_TASKS, MODALITIES,
                                  MODEL_SIZES, STORAGE, AdvisorInputs, Recommendation)
from ui.kit.shell import show_link_notices

INPUTS_KEY = "advisor.inputs"  # session_state: the last valid AdvisorInputs
DEFAULT_INPUTS = AdvisorInputs(500, classes=5, domain="related")  # what the form shows first


def _situation_form(current: AdvisorInputs) -> Optional[dict]:
    """The form, filled with `current`; the values it holds when Recommend was pressed, else None."""
    with st.form("advisor_form", border=True):
        left, middle = st.columns(2)
        labelled = left.number_input(
            "Labelled examples", min_value=0, max_value=MAX_EXAMPLES,
            value=current.labelled_examples, step=100,
            help="Labelled examples of your target task that you have now, all classes together.")
        classes = middle.number_input("Classes", min_value=2, max_value=100_000,
                                      value=current.classes, step=1,
                                      help="How many classes the target task has.")
        # radio buttons like the questions below: the kinds' names wrap instead of being cut
        modality = st.radio("Kind of data", list(MODALITIES),
                            index=list(MODALITIES).index(current.modality),
                            format_func=MODALITIES.get,
                            help="What one example of your target task is.")
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
    if not asked:
        return None
    return dict(labelled_examples=labelled, classes=classes, domain=domain, model_size=size,
                compute=compute, storage=storage, tasks=tasks, modality=modality)


def situation() -> Optional[AdvisorInputs]:
    """Draws the form and gives the situation to advise on: the one just submitted, else the
    session's last one; None (after saying why) when there is none or the new one is invalid."""
    if INPUTS_KEY not in st.session_state:  # a new session: the link's situation, if any
        linked, notices = AdvisorInputs.from_query(st.query_params.to_dict())
        show_link_notices(notices)
        if linked is not None:
            st.session_state[INPUTS_KEY] = linked
    current = st.session_state.get(INPUTS_KEY) or DEFAULT_INPUTS
    values = _situation_form(current)
    if values is None:
        if INPUTS_KEY not in st.session_state:
            st.info("Set your situation and press **Recommend a strategy**.",
                    icon=":material/info:")
            return None
        return current
    try:
        counts = {k: int(values.pop(k)) for k in ("labelled_examples", "classes", "tasks")}
        current = AdvisorInputs(**counts, **values)
    except ValueError as err:
        st.error(f"These inputs cannot be used: {err}.", icon=":material/error:")
        return None
    st.session_state[INPUTS_KEY] = current
    st.query_params.update(current.to_query())  # a reload keeps the situation
    return current


def situation_text(inputs: AdvisorInputs) -> str:
    """The situation in one line: labels, classes, labels per class and tasks."""
    per_class = (f"about {inputs.per_class:,} per class" if inputs.per_class else
                 "none yet" if inputs.labelled_examples == 0 else "fewer than one per class")
    tasks = f"{inputs.tasks:,} task{'s' if inputs.tasks != 1 else ''}"
    return (f"For {inputs.labelled_examples:,} labelled examples in {inputs.classes:,} classes "
            f"({per_class}), {tasks}")


def advice_card(inputs: AdvisorInputs, advice: Recommendation) -> None:
    """The situation in one line, the recommended strategy, its reasons and its cautions."""
    with st.container(border=True):
        st.caption(situation_text(inputs))
        st.subheader(f"Recommended: {advice.title}")
        st.markdown("**Why**\n" + "\n".join(f"- {reason}" for reason in advice.reasons))
        st.markdown("**Watch out**\n" + "\n".join(f"- {caution}" for caution in advice.cautions))


def experiment_links(advice: Recommendation) -> None:
    """A link per experiment that shows the advice, opening its page with these settings."""
    st.caption("Each link opens the page with these settings; press Run there.")
    for link in advice.links:
        with st.container(border=True):  # a lesson's page is pages/<its name>.py
            st.page_link(f"pages/{link.page}.py", label=f"**{link.label}**",
                         icon=":material/science:", query_params=link.query())
            st.caption(link.why)
