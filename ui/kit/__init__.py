"""The shared kit every page draws with: the frame (`shell`, `sidebar`, `present`), sections and
jobs (`section`, `jobs`), tables, figures, chart images and exports, readings, saved study
states, events, and words (`text`, Streamlit-free). Imports nothing else of `ui`.
"""
