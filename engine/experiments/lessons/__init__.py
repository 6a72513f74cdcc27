"""Each lesson section's settings and the experiments they run, one module per lesson.

A section's settings are a frozen dataclass that reads and writes the section's link parameters
(`PARAMS`, `from_query`, `to_query`, parsed by `links.QueryReader`), names the engine
experiment it runs (`experiment()`), reads what the store holds of it (`records(store)`) and
the sentences those runs support (`readings(store)`, from `engine.experiments.readings`). Plain Python: the app's pages and the command
line (`python -m engine lesson NAME`) share them; `LESSONS` lists every lesson's sections.
"""
