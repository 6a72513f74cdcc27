"""The "Design a transfer learning pipeline" exercise: five answers in, a Markdown document out.

`PipelinePlan` holds a learner's answers to the five steps (the task; a pretrained backbone
and why it transfers; the labels they could collect and the strategy that follows; the
biggest domain-shift risk; a failure mode to test before deploying and how to detect it).
`missing_steps` says which steps are still empty and `plan_markdown` writes the plan as a
Markdown file the learner downloads. The text is the learner's own and is only ever written
into that file or shown as plain text.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

TASKS = {
    "satellite": "Classify satellite images by land use",
    "sms": "Detect spam in SMS messages",
    "plants": "Identify plant diseases from photographs of leaves",
    "own": "A task of my own",
}
STRATEGIES = ("Feature extraction (frozen backbone, new head)", "Partial fine-tuning",
              "Full fine-tuning", "LoRA or other adapters", "Zero- or few-shot prompting",
              "Training from scratch (no pretrained model)")
MAX_CHARS = 2_000  # per answer


@dataclass(frozen=True)
class PipelinePlan:
    task: str = ""  # step 1: the target task
    backbone: str = ""  # step 2: the pretrained model
    backbone_why: str = ""  # step 2: what it pretrained on, and why that transfers
    labels: int = 0  # step 3: labelled target examples you could realistically collect
    strategy: str = ""  # step 3: one of STRATEGIES
    strategy_why: str = ""  # step 3: why that strategy for that many labels
    shift_risk: str = ""  # step 4: how the target differs from the pretraining data
    failure_mode: str = ""  # step 5: what could go wrong after deployment
    detection: str = ""  # step 5: how you would detect it before deploying

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str) and len(value) > MAX_CHARS:
                raise ValueError(f"each answer has at most {MAX_CHARS:,} characters")
        if isinstance(self.labels, bool) or not isinstance(self.labels, int) or self.labels < 0:
            raise ValueError("the number of labels must be a whole number, 0 or more")
        if self.strategy and self.strategy not in STRATEGIES:
            raise ValueError(f"the strategy must be one of: {', '.join(STRATEGIES)}")


STEPS = (
    ("1. Task", ("task",)),
    ("2. Backbone", ("backbone", "backbone_why")),
    ("3. Labels and strategy", ("labels", "strategy", "strategy_why")),
    ("4. Biggest domain-shift risk", ("shift_risk",)),
    ("5. Failure mode to test before deploying", ("failure_mode", "detection")),
)


def missing_steps(plan: PipelinePlan) -> list[str]:
    """The titles of the steps with an empty answer."""
    missing = []
    for title, names in STEPS:
        values = [getattr(plan, n) for n in names]
        if any((v <= 0) if isinstance(v, int) else not v.strip() for v in values):
            missing.append(title)
    return missing


def plan_markdown(plan: PipelinePlan) -> str:
    """The plan as a Markdown document, one section per step."""
    def text(value: str) -> str:
        return value.strip() or "_(not answered yet)_"

    return "\n".join([
        "# A transfer learning pipeline", "",
        "## 1. Task", "", text(plan.task), "",
        "## 2. Backbone", "", f"**Model:** {text(plan.backbone)}", "",
        f"**Why it transfers:** {text(plan.backbone_why)}", "",
        "## 3. Labels and strategy", "",
        f"**Labelled examples I could collect:** {plan.labels:,}", "",
        f"**Strategy:** {text(plan.strategy)}", "",
        f"**Why:** {text(plan.strategy_why)}", "",
        "## 4. Biggest domain-shift risk", "", text(plan.shift_risk), "",
        "## 5. Failure mode to test before deploying", "",
        f"**What could go wrong:** {text(plan.failure_mode)}", "",
        f"**How I would detect it:** {text(plan.detection)}", "",
    ])
