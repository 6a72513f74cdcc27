"""Each lesson section's settings: frozen dataclasses that read and write the section's link
parameters (`ui.experiments.SectionSettings`) and name the engine experiment it runs.

Plain Python: nothing here draws or reads widgets, so settings can be built and checked
without a running page (tests build them from links). The forms that fill them and the panels that draw their results live beside the
page's other helpers in `ui/`.
"""
