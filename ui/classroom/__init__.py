"""Class mode's pages and hooks (`class_mode`; its store is `engine.study.classroom`). It
listens for the learner's actions (`ui.kit.events`) instead of being imported by the pages that
make them. May import `ui.kit`, `ui.lessons` and `ui.study`.
"""
