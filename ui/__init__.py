"""Small Streamlit helpers that the pages share: the lesson list, the sidebar, settings forms
that return engine configs, and display panels that turn engine results into elements.

Nothing here trains or computes results: that is the engine's job. This package lives outside
`pages/` so Streamlit's legacy page discovery never lists it as a page.
"""
