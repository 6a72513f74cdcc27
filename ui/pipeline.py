"""The Design a pipeline page's state and widgets: the answers so far, each answer's input, the
check of the whole plan, and its Markdown export.

The state is one dict in the session (PLAN_KEY, the fields of `engine.study.pipeline.PipelinePlan`):
the inputs start from it, and once the page has drawn them `PlanForm.plan()` validates what was
typed and stores it again, so the answers survive a visit to another page. Once something is
answered, the plan is also saved as a small JSON file in the data directory (`plans/<id>.json`)
under a random id that the page's link carries (`?plan=<id>`), so a reload, or the same link in
a new tab, opens the same answers. Anyone holding the link can read them; there are no accounts.
What the learner types is only shown back as plain text (a code block) and written into their
download.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import asdict
from pathlib import Path
from typing import Mapping, Optional

import streamlit as st

from engine.core.store import home_dir
from engine.study.pipeline import (MAX_CHARS, STRATEGIES, TASKS, PipelinePlan, missing_steps,
                                   plan_markdown)
from ui.experiments import MAX_QUERY_VALUE
from ui.shell import link_text, show_link_notices

PLAN_KEY = "pipeline.plan"  # session_state: the answers so far, kept while moving between pages
PLAN_ID_KEY = "pipeline.plan_id"  # session_state: the id the answers are saved under
PLAN_PARAM = "plan"  # the link's parameter: that id
PLAN_ID = re.compile(r"^[0-9a-f]{16}$")  # what secrets.token_hex(8) writes; nothing else is read
MAX_PLAN_BYTES = 64_000  # a saved plan is a few kB; a larger file is not read


def plans_dir() -> Path:
    return home_dir() / "plans"


def link_plan_id(params: Mapping[str, str]) -> Optional[str]:
    """The plan id a link carries, when it is one this page could have written."""
    value = params.get(PLAN_PARAM)
    return value if isinstance(value, str) and PLAN_ID.match(value) else None


def link_plan_notices(params: Mapping[str, str]) -> list[str]:
    """Why a link's plan id cannot be used (too long, or not an id this page writes); [] when
    the link carries none or a usable one. The page then starts a new plan."""
    value = params.get(PLAN_PARAM)
    if value is None or link_plan_id(params):
        return []
    if len(value) > MAX_QUERY_VALUE:
        return [f"the link's '{PLAN_PARAM}' value is too long; starting a new plan"]
    return [f"{PLAN_PARAM} {link_text(value)} is not a plan id this page writes; starting a new plan"]


def load_answers(folder: Path, plan_id: str) -> dict:
    """The answers saved under `plan_id`; an empty plan when none are, or they cannot be read."""
    path = folder / f"{plan_id}.json"
    try:
        if path.stat().st_size <= MAX_PLAN_BYTES:
            return asdict(PipelinePlan(**json.loads(path.read_text(encoding="utf-8"))))
    except (OSError, ValueError, TypeError):
        pass
    return asdict(PipelinePlan())


def save_answers(folder: Path, plan_id: str, plan: PipelinePlan) -> None:
    """Write the answers under `plan_id`, whole or not at all (a temporary file, then a rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{plan_id}.json"
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(plan)), encoding="utf-8")
    temporary.replace(path)


class PlanForm:
    """The five steps' inputs, drawn where the page calls them; each remembers its answer."""

    def __init__(self, folder: Optional[Path] = None):
        self.folder = folder or plans_dir()  # where the answers are saved by id
        params = st.query_params.to_dict()
        show_link_notices(link_plan_notices(params))
        linked = link_plan_id(params)
        if linked and linked != st.session_state.get(PLAN_ID_KEY):  # a link opened anew
            st.session_state[PLAN_ID_KEY] = linked
            st.session_state[PLAN_KEY] = load_answers(self.folder, linked)
        self.plan_id: str = st.session_state.setdefault(PLAN_ID_KEY, secrets.token_hex(8))
        self.saved: dict = st.session_state.setdefault(PLAN_KEY, asdict(PipelinePlan()))
        self.answers: dict = {}  # field of PipelinePlan -> what the input holds now

    def text(self, name: str, label: str, help: str, area: bool = True) -> str:
        """A free-text answer for the plan's field `name`: a text area, or one line."""
        widget = st.text_area if area else st.text_input
        kwargs = {"height": 100} if area else {}
        value = widget(label, value=self.saved.get(name, ""), max_chars=MAX_CHARS, help=help,
                       key=f"pipeline.{name}", **kwargs)
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
            if changed or not (self.folder / f"{self.plan_id}.json").exists():
                save_answers(self.folder, self.plan_id, plan)
            if st.query_params.get(PLAN_PARAM) != self.plan_id:
                st.query_params[PLAN_PARAM] = self.plan_id
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
