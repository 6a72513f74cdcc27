"""The lesson pages' forms, live drawings and results, one module per lesson; each ends with
its `Section` declarations and `SECTIONS` (what `ui.kit.section.show_section` draws and
`ui.catalog` lists). May import `ui.kit`, never `ui.study`, `ui.classroom` or `ui.catalog`.
"""
