"""The Design a pipeline page's state and widgets: the answers so far, each answer's input, the
check of the whole plan, and its Markdown export.

The state is one dict in the session (PLAN_KEY, the fields of `engine.study.pipeline.PipelinePlan`):
the inputs start from it, and once the page has drawn them `PlanForm.plan()` validates what was
typed and stores it again, so the answers survive a visit to another page. Once something is
answered, the plan is also saved as a small JSON file in the data directory (`plans/<id>.json`)
under a random id that the page's link carries (`?plan=<id>`), so a reload, or the same link in
a new tab, opens the same answers (`ui.kit.saved` keeps them, as it keeps a quiz round). Anyone
holding the link can read them; there are no accounts.
What the learner types is only shown back as plain text (a code block) and written into their
download.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

import streamlit as st

from engine.study.pipeline import (MAX_CHARS, STRATEGIES, TASKS, PipelinePlan, missing_steps,
                                   plan_markdown)
from ui.kit.saved import SavedStates

PLAN_KEY = "pipeline.plan"  # session_state: the answers so far, kept while moving between pages
PLAN_ID_KEY = "pipeline.plan_id"  # session_state: the id the answers are saved under
PLANS = SavedStates("plans", "plan", "plan", max_bytes=64_000)  # a saved plan is a few kB


def parse_answers(data: dict) -> dict:
    """Saved answers as the session keeps them; ValueError or TypeError when they are not a plan."""
    answers = asdict(PipelinePlan(**data))
    if not all(isinstance(v, str) for k, v in answers.items() if k != "labels"):
        raise TypeError("every answer but the number of labels is text")
    return answers


class PlanForm:
    """The five steps' inputs, drawn where the page calls them; each remembers its answer."""

    def __init__(self, plans: SavedStates = PLANS):
        self.plans = plans  # where the answers are saved by id
        linked = self.plans.opened(PLAN_ID_KEY, parse_answers)
        if linked is not None:  # a link opened anew
            st.session_state[PLAN_KEY] = linked
        self.plan_id: str = self.plans.session_id(PLAN_ID_KEY)
        self.saved: dict = st.session_state.setdefault(PLAN_KEY, asdict(PipelinePlan()))
        self.answers: dict = {}  # field of PipelinePlan -> what the input holds now

    def text(self, name: str, label: str, hint: str, area: bool = True) -> str:
        """A free-text answer for the plan's field `name`: a text area, or one line; `hint`
        shows in the empty box (a tooltip would need a tap on a phone)."""
        widget = st.text_area if area else st.text_input
        kwargs = {"height": 100} if area else {}
        value = widget(label, value=self.saved.get(name, ""), max_chars=MAX_CHARS,
                       placeholder=hint, key=f"pipeline.{name}", **kwargs)
        self.answers[name] = value
        return value

    def task(self) -> None:
        """Step 1: one of the suggested tasks, or the learner's own."""
        saved, options = self.saved["task"], list(TASKS)
        index = next((i for i, k in enumerate(options) if TASKS[k] == saved),
                     len(options) - 1 if saved else 0)
        choice = st.radio("Target task", options, format_func=TASKS.get,
                          key="pipeline.task_choice", index=index)
        if choice != "own":
            self.answers["task"] = TASKS[choice]
            return
        own = saved if saved not in TASKS.values() else ""
        self.answers["task"] = st.text_input("Your task", value=own, max_chars=MAX_CHARS,
                                             key="pipeline.task_own",
                                             placeholder="e.g. sort bird calls by species")

    def labels_and_strategy(self) -> None:
        """Step 3's two choices, side by side: how many labels, and which strategy."""
        left, right = st.columns(2)
        self.answers["labels"] = int(left.number_input(
            "Labelled examples you could realistically collect", min_value=0, max_value=10**9,
            value=int(self.saved.get("labels", 0)), step=100, key="pipeline.labels"))
        choices = ["", *STRATEGIES]
        self.answers["strategy"] = right.selectbox(
            "Strategy", choices, key="pipeline.strategy",
            index=choices.index(self.saved.get("strategy", "")),
            format_func=lambda s: s or "Choose one")

    def plan(self) -> Optional[PipelinePlan]:
        """The plan as typed, stored in the session and, once anything is answered (beyond the
        task chosen at first), in its file with its id in the link; None after saying why it cannot be."""
        try:
            plan = PipelinePlan(**self.answers)
        except ValueError as err:
            st.error(f"Not saved: {err}.", icon=":material/error:")
            return None
        changed = asdict(plan) != self.saved
        st.session_state[PLAN_KEY] = asdict(plan)
        untouched = (PipelinePlan(), PipelinePlan(task=TASKS[next(iter(TASKS))]))
        if plan not in untouched:  # something answered beyond the task chosen at first
            if changed or not (self.plans.folder / f"{self.plan_id}.json").exists():
                try:
                    self.plans.save(self.plan_id, asdict(plan))
                except (OSError, ValueError) as err:  # the disk, or the visitor's save limit
                    st.caption(f"Your plan could not be saved for a reload: {err}. It stays "
                               "in this tab.")
                    return plan
            self.plans.link(self.plan_id)
        return plan


def plan_export(plan: PipelinePlan) -> None:
    """What is still to answer, the download of the plan as Markdown, and its preview."""
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


# A text box hands Streamlit its value only when it loses focus (or on Ctrl+Enter), so words
# typed just before a reload were lost. In the container keyed ANSWERS_KEY, a pause in typing
# (TYPING_PAUSE_MS) blurs and refocuses the box, caret kept, which hands the value over and
# the plan is saved. The listener is added once per browser tab and acts only inside it.
TYPING_PAUSE_MS = 700
ANSWERS_KEY = "pipeline_answers"  # the container of the page's answer boxes
# (a literal: raw HTML is only ever built from constants; the key and pause written out)
_TYPE_SAVE_JS = """<script>
(() => {
  const flag = "__transferlabTypeSave_pipeline_answers";
  if (document[flag]) { return; }
  document[flag] = true;
  let timer = null;
  document.addEventListener("input", (event) => {
    const box = event.target;
    if (!box.closest || !box.closest(".st-key-pipeline_answers")) { return; }
    if (box.tagName !== "TEXTAREA" && !(box.tagName === "INPUT" && box.type === "text")) { return; }
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (document.activeElement !== box) { return; }
      const start = box.selectionStart, end = box.selectionEnd;
      box.blur();
      box.focus();
      try { box.setSelectionRange(start, end); } catch (err) { /* not a text box any more */ }
    }, 700);
  }, true);
})();
</script>"""


def save_as_you_type() -> None:
    """Inside the container ANSWERS_KEY: each pause in typing saves what the box holds."""
    st.html(_TYPE_SAVE_JS, unsafe_allow_javascript=True, width="content")
