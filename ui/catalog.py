"""The lesson path: every page of the app, in the order a learner should take them, with the
sections each lesson page draws.

`app.py` builds its `st.Page` objects from this list and the home page links to each page
from it, so a new lesson is added in one place. The home page shows the three groups apart:
the experiments (numbered, in order), the practice pages and the tools. A page's link keys are
the union of its sections' `PARAMS` (each section's module lists them in `SECTIONS`), so a
key a section writes is never one its page calls unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.study.advisor import QUERY_FIELDS
from ui.kit.section import Section
from ui.lessons import controls, depth, forgetting, hurts, lora, sources, text


@dataclass(frozen=True)
class Lesson:
    path: str  # the page script, relative to app.py
    title: str  # the name in the navigation and on links
    icon: str  # a Material icon, ":material/<name>:"
    summary: str  # one sentence for the lesson path on the home page
    default: bool = False  # the page "/" opens
    sections: tuple[Section, ...] = ()  # the experiment sections the page draws, in order
    other_keys: tuple[str, ...] = ()  # URL parameters the page reads besides its sections'

    @property
    def query_keys(self) -> tuple[str, ...]:
        """Every URL parameter the page reads (each checks its values); any other parameter in
        a link is named in a warning and ignored."""
        keys = [k for section in self.sections for k in section.params] + list(self.other_keys)
        return tuple(dict.fromkeys(keys))


HOME = Lesson("pages/home.py", "Home", ":material/home:",
              "What transfer learning is, and the three strategies compared here.", default=True)

EXPERIMENTS: tuple[Lesson, ...] = (
    Lesson("pages/transfer_curves.py", "Transfer curves", ":material/show_chart:",
           "Pretrain a small CNN on MNIST, transfer it to other digits, and measure how much of a "
           "head start it gives at each number of labels.",
           sections=controls.SECTIONS),
    Lesson("pages/which_source.py", "Which source?", ":material/compare_arrows:",
           "Put digit features, ImageNet photo features and random features side by side on the "
           "same target, and measure whether domain match or model size matters more there.",
           sections=sources.SECTIONS),
    Lesson("pages/when_transfer_hurts.py", "When transfer hurts", ":material/trending_down:",
           "Pretrain on a source that teaches the wrong things, shift the target's look, and "
           "measure how much of the head start over training from scratch is left.",
           sections=hurts.SECTIONS),
    Lesson("pages/forgetting.py", "Forgetting", ":material/history:",
           "Measure how much of the source task fine-tuning forgets, try a lower learning rate, "
           "frozen layers, EWC or replay against it, and find the layers fine-tuning rewrote.",
           sections=forgetting.SECTIONS),
    Lesson("pages/depth.py", "How much to train", ":material/layers:",
           "Freeze the early layers or not, copy k layers Yosinski-style, discriminative learning "
           "rates, gradual unfreezing and LP-FT, each a real run with its PyTorch code.",
           sections=depth.SECTIONS),
    Lesson("pages/lora_lab.py", "LoRA lab", ":material/tune:",
           "Count a low-rank adapter's parameters, bytes and training memory on real "
           "architectures, then train LoRA at several ranks against the probe and fine-tuning.",
           sections=lora.SECTIONS, other_keys=("preset",)),
    Lesson("pages/transfer_on_text.py", "Transfer on text", ":material/article:",
           "Words learnt from scratch against a linear probe on a real transformer's sentence "
           "features (MiniLM), on movie, product, tweet and editorial sentiment.",
           sections=text.SECTIONS),
)

PRACTICE: tuple[Lesson, ...] = (
    Lesson("pages/advisor.py", "Strategy advisor", ":material/recommend:",
           "Describe your labels, domain, compute, storage and tasks; get a strategy with its "
           "reasons and the experiment that shows it.", other_keys=tuple(QUERY_FIELDS)),
    Lesson("pages/pipeline.py", "Design a pipeline", ":material/account_tree:",
           "Plan a transfer learning project in five steps and download it as Markdown.",
           other_keys=("plan",)),
    Lesson("pages/flashcards.py", "Flashcards", ":material/style:",
           "Review the key ideas with spaced repetition; your progress is kept under your name.",
           other_keys=("deck",)),
    Lesson("pages/quiz.py", "Quiz", ":material/quiz:",
           "Multiple-choice and scenario questions with explanations, including questions "
           "answered by your own runs.",
           other_keys=("quiz",)),
)

LESSONS: tuple[Lesson, ...] = (*EXPERIMENTS, *PRACTICE)  # the lesson path, in order

TOOLS: tuple[Lesson, ...] = (
    Lesson("pages/data_models.py", "Data and models", ":material/dataset:",
           "See which backbones and datasets this server has, download more, and import your "
           "own images as a new target."),
    Lesson("pages/classroom.py", "Class", ":material/groups:",
           "Open a class with a code and a QR code; students send their predictions and quiz "
           "answers, and the projector shows them pooled.",
           other_keys=("class", "teacher", "student")),
    Lesson("pages/how_called.py", "How a difference is called", ":material/functions:",
           "What a seed is, why the number of seeds matters, and the rule every result sentence "
           "here follows."),
)

PAGES: tuple[Lesson, ...] = (HOME, *LESSONS, *TOOLS)

SECTIONS: tuple[Section, ...] = tuple(s for lesson in PAGES for s in lesson.sections)


def lesson_of(section: Section) -> Lesson:
    """The page that draws `section`."""
    return next(lesson for lesson in PAGES if section in lesson.sections)
