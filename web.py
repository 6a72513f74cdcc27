"""The server's ASGI app: Streamlit's app of `app.py`, behind Transfer Lab's front door.

`python serve.py` runs `streamlit run web.py`; Streamlit finds `app` below and serves `app.py`'s
pages with the repository's `.streamlit/config.toml`, exactly as `streamlit run app.py` would,
with one middleware in front (`engine.infra.gate.Gate`): the visitor cookie quotas count under,
the security headers, and `/_stcore/metrics` for the server's own machine only.
"""

import streamlit as st
from starlette.middleware import Middleware

from engine.infra.gate import Gate

app = st.App("app.py", middleware=[Middleware(Gate)])
