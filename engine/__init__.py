"""Transfer Lab's engine: datasets, backbones, strategies, training, sweeps and the result store.

The engine does all computation and never imports Streamlit, so the pages, the command line
(`python -m engine`) and the tests share it. Bump ENGINE_VERSION whenever a change alters the
numbers a run produces: it is part of every stored run's key, so old results are never mixed
with new ones.
"""

ENGINE_VERSION = "0.1.0"
