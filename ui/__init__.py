"""The Streamlit side of Transfer Lab, in layers that import downhill only (tests/test_layers.py):

    kit        the shared kit: frame, sections and jobs, tables, figures, exports, text
    lessons    each lesson's forms, live drawings, results and `Section` declarations
    study      flashcards, quiz, pipeline design, advisor
    classroom  class mode (listens to `kit.events`; nothing imports it but the top)
    catalog    the lesson path: every page and the sections it draws

Nothing here trains or computes results: that is the engine's job. This package lives outside
`pages/` so Streamlit's legacy page discovery never lists it as a page.
"""
