"""Every lesson's sections, by name: what `python -m engine lesson NAME` runs and the app's pages
draw (`ui.catalog` lists the same sections with their drawing code).

A lesson module declares `LESSON` (its page's file stem) and `SECTIONS` (section name ->
settings class, in page order); adding a section to a lesson's module adds it here.
"""

from __future__ import annotations

from engine.experiments.lessons import curves, depth, forgetting, hurts, lora, sources, text

LESSONS: dict[str, dict[str, type]] = {
    module.LESSON: dict(module.SECTIONS)
    for module in (curves, sources, hurts, forgetting, depth, lora, text)
}


def lesson_of(settings: type) -> str:
    """The lesson one of whose sections `settings` (a settings class) is."""
    return next(name for name, sections in LESSONS.items() if settings in sections.values())


def lesson_name(text: str) -> str:
    """A lesson's name as the command line accepts it ('which-source' or 'which_source')."""
    name = text.strip().lower().replace("-", "_")
    if name not in LESSONS:
        known = ", ".join(n.replace("_", "-") for n in LESSONS)
        raise ValueError(f"no lesson {text!r}; the lessons are {known}")
    return name
