"""Presentation mode and the printable handout: what a lesson page hides and enlarges in each.

A teacher opens a lesson's link with `?present=1` for the projector or `?handout=1` to print;
`ui.kit.shell.view_links` writes both links under the page's first experiment form, carrying the
settings, so the page shows the same experiment. app.py asks `sticky_view` for the view of each
script run, runs the page inside `ui.kit.shell.app_run(view)`, and calls `frame`.

A view is a state that sticks: once a link asks for it (through `QueryReader`: a bad value is
named in a notice and the normal page drawn), the session keeps it for every later script run,
whatever button was pressed and whichever page is opened, and keeps its flag in the address bar
(a reload opens it again), until the view's own "Exit presentation" / "Back to the lesson"
button, which removes both. Entering a view scrolls the page to its title.

Presentation: no sidebar (nor its toggle) and no Streamlit header; no forms (each section lists
the settings from the link instead, `settings_text`), no prediction inputs, no download rows;
charts taller with larger text (`enlarge`), verdicts and text large; and the results behind one
large "Show the results" button (`results_gate`) until the teacher presses it, so the class
predicts first. A small "Exit presentation" button returns to the normal page.

On a phone (a window up to 640 px wide) presentation mode keeps the same page with text about
a quarter smaller than on a projector (still larger than the normal page's) and each chart
drawn for the phone's width at its normal height, its text 15% larger than the normal page's
(`present_chart`: both charts are sent and the window's width picks one), so nothing is cut.

Handout: the page with its settings as a list, its charts as still images (`ui.kit.exports`), its
tables (`ui.kit.tables`: on paper always the full table, rows never split across pages) and its
verdicts, no sidebar, forms or buttons; `@media print` rules drop Streamlit's header and
toolbar and keep each chart whole on a page, so the browser's Print gives clean pages.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from engine.core.datasets import labels_text
from engine.core.text import USER_TEXT_PREFIX, TEXT_DATASETS, text_title
from engine.experiments.stats import strategy_label
from ui.kit.shell import HANDOUT, PRESENT, VIEW_PARAMS, current_page, page_view
from ui.kit.text import plain

VIEW_KEY = "present.view"  # session_state: the view this session stays in ("" or absent: none)
REVEALED_KEY = "present.revealed"  # session_state: pages whose results the teacher has shown
HEIGHT_FACTOR = 1.3  # a chart in presentation mode is this much taller (at least MIN_HEIGHT)
MIN_HEIGHT = 640  # pixels: most of a 1366 x 768 projector, with the chart's caption in sight
FONT_FACTOR = 1.5  # chart text in presentation mode: 16 px becomes 24 px, ticks 14 px 21 px
LINE_FACTOR = 1.3  # lines and markers in presentation mode
# On a phone (640 px wide or less) presentation mode draws each chart a little larger than the
# normal page does, laid out for the phone's width: text 16 px becomes 18 px, ticks 14 px 16 px.
PHONE_FONT_FACTOR = 1.15
# Readable names of settings fields (others: the field name with spaces)
FIELD_NAMES = {"labels_per_class": "Labels per class", "lr": "Learning rate",
               "backbone_lrs": "Learning rates of the pretrained layers",
               "low_lr_mult": "Lower learning rate, as a factor", "ewc_lambda": "EWC λ",
               "imagenet": "ImageNet network", "kind": "Shift", "highest": "Highest severity",
               "steps": "Severity steps", "probe_labels_per_class": "Probe labels per class",
               "freeze_blocks": "Frozen blocks", "replay_fraction": "Replay share of each batch",
               "layers": "Layers LoRA wraps", "shift": "Mismatched source",
               "added": "Target labels per class added", "source": "Trained on",
               "targets": "Tested on", "ranks": "LoRA ranks"}
EMPTY_VALUES = {"layers": "every one"}  # what an empty choice means (else "none")


def view_from_link(reader) -> str:
    """The view a link asks for: PRESENT, HANDOUT or "" (the normal page). `reader` is the
    link's `ui.kit.section.QueryReader`; a flag other than 1 adds a notice and is ignored."""
    asked = [view for view in VIEW_PARAMS if reader.choice(view, ("1",), None) == "1"]
    return asked[0] if asked else ""


def sticky_view(reader) -> str:
    """The view of this script run: the one the link asks for, else the one this session is in
    (a button's rerun, a page opened by a link inside the app without the flag). The view's flag
    is written to the address bar on every run, so a reload keeps the view."""
    view = view_from_link(reader) or st.session_state.get(VIEW_KEY, "")
    if not view:
        return ""
    if st.session_state.get(VIEW_KEY) != view:
        st.session_state[VIEW_KEY] = view
        st.session_state[_SCROLL_KEY] = True  # entering the view: open it at the page's title
    for other in VIEW_PARAMS:
        if other != view and other in st.query_params:
            del st.query_params[other]
    # always written: a link inside the app hands the script its flag without putting it in the
    # address bar, so the flag being in `st.query_params` does not say the URL has it
    st.query_params[view] = "1"
    return view


_SCROLL_KEY = "present.scroll_to_top"  # session_state: the next view run scrolls to the title
# The page's own scrolling box (Streamlit's main area) and the window, both to the top
_SCROLL_JS = """<script>
for (const box of [document.querySelector('[data-testid="stMain"]'),
                   document.querySelector('[data-testid="stAppViewContainer"]')]) {
  if (box) { box.scrollTop = 0; }
}
window.scrollTo(0, 0);
</script>"""


def _leave_view() -> None:
    """The view's way out: the session leaves it and the address bar loses its flag."""
    st.session_state.pop(VIEW_KEY, None)
    for view in VIEW_PARAMS:
        if view in st.query_params:
            del st.query_params[view]


# Every page, every view: a multiselect shows all its choices, wrapping onto more lines, instead
# of scrolling them sideways out of sight in one line ("1 2 5 10 20 5..." on a phone, "all"
# hidden). The selectors follow Streamlit 1.67's multiselect (a react-aria ComboBox whose first
# box has a fixed height and whose tag row scrolls); tests/test_browser_pages.py checks on a
# phone that every tag lies inside its box.
MULTISELECT_CSS = """<style>
[data-testid="stMultiSelect"] .react-aria-ComboBox > div { height: auto !important; max-height: none !important; }
[data-testid="stMultiSelect"] .react-aria-ComboBox > div > div:first-child {
  flex-wrap: wrap !important; overflow: visible !important; height: auto !important; row-gap: 0.25rem; }
</style>"""


def frame(view: str) -> None:
    """The style every page shares; the view's style and its way back to the normal page
    (nothing more on the normal page)."""
    st.html(MULTISELECT_CSS)
    if not view:
        return
    if st.session_state.pop(_SCROLL_KEY, False):
        st.html(_SCROLL_JS, unsafe_allow_javascript=True, width="content")
    _hidden_chrome_style()
    if view == PRESENT:
        _present_style()
        with st.container(horizontal=True, horizontal_alignment="right", key="view_bar"):
            st.button("Exit presentation", key="view_exit", icon=":material/close:",
                      type="tertiary", on_click=_leave_view)
        return
    _handout_style()
    with st.container(horizontal=True, key="view_bar"):
        st.caption("Printable handout: print it from the browser (Ctrl+P, or ⌘P on a Mac). "
                   "Links and buttons are left out of the printed pages; the tables print "
                   "whole.")
        st.button("Back to the lesson", key="view_exit", icon=":material/arrow_back:",
                  type="tertiary", on_click=_leave_view)


def _hidden_chrome_style() -> None:
    st.html("""<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stExpandSidebarButton"], [data-testid="stSidebarNav"] { display: none !important; }
</style>""")


def _present_style() -> None:
    """Large text for the back of a classroom; the header and its menu out of the way."""
    st.html("""<style>
header[data-testid="stHeader"] { display: none !important; }
:root { --present-pad: 1rem 3rem 3rem 3rem; --present-text: 1.4rem; --present-line: 1.5;
  --present-verdict: 2.3rem; --present-caption: 1.15rem; --present-title: 3rem;
  --present-button-height: 5.5rem; --present-button-pad: 1rem 3rem;
  --present-button-text: 2.2rem; --present-button-icon: 2.4rem; }
@media (max-width: 640px) {
  :root { --present-pad: 1rem 1rem 2rem 1rem; --present-text: 1.1rem; --present-line: 1.45;
    --present-verdict: 1.5rem; --present-caption: 0.95rem; --present-title: 2rem;
    --present-button-height: 4rem; --present-button-pad: 0.75rem 1rem;
    --present-button-text: 1.5rem; --present-button-icon: 1.6rem; } }
[data-testid="stMainBlockContainer"] { max-width: 100%; padding: var(--present-pad); }
[data-testid="stMainBlockContainer"] [data-testid="stMarkdownContainer"] p,
[data-testid="stMainBlockContainer"] [data-testid="stMarkdownContainer"] li {
  font-size: var(--present-text); line-height: var(--present-line); }
[data-testid="stMainBlockContainer"] [data-testid="stMarkdownContainer"] h4 {
  font-size: var(--present-verdict); line-height: 1.3; }
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p {
  font-size: var(--present-caption); }
h1 { font-size: var(--present-title) !important; }
.st-key-present_reveal button { min-height: var(--present-button-height);
  padding: var(--present-button-pad); }
.st-key-present_reveal button p { font-size: var(--present-button-text) !important; font-weight: 600; }
.st-key-present_reveal button [data-testid="stIconMaterial"] {
  font-size: var(--present-button-icon) !important; }
@media (max-width: 640px) {
  [class*="st-key-present_wide_"] { display: none !important; } }
@media (min-width: 641px) { [class*="st-key-present_phone_"] { display: none !important; } }
.st-key-view_bar p { font-size: 1rem !important; }
.stDownloadButton { display: none !important; }
/* a page link in large text wraps instead of being cut off with an ellipsis on a phone */
[data-testid="stPageLink"] a, [data-testid="stPageLink"] p, [data-testid="stPageLink"] span {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  height: auto !important; }
</style>""")


def _handout_style() -> None:
    """Clean printed pages: no Streamlit chrome, links or buttons, no chart cut by a page. On
    screen the page is about as narrow as a printed one, a preview of the print. A table
    prints whole (`ui.kit.tables`): on one page when it fits, else over pages, row by row."""
    st.html("""<style>
[data-testid="stMainBlockContainer"] { max-width: 48rem !important; }
@media print {
  header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
  [data-testid="stStatusWidget"], .st-key-view_bar, [data-testid="stPageLink"],
  .stButton, .stDownloadButton, [data-testid="stBaseButton-secondary"],
  [data-testid="stSlider"] { display: none !important; }
  html, body, .stApp, [data-testid="stAppViewContainer"], [data-testid="stMain"] {
    height: auto !important; overflow: visible !important; position: static !important; }
  [data-testid="stMainBlockContainer"] { max-width: 100% !important; padding: 0 !important; }
  [data-testid="stImage"], [data-testid="stPlotlyChart"], [data-testid="stTable"],
  [data-testid="stExpander"], [data-testid="stAlert"] {
    break-inside: avoid; page-break-inside: avoid; }
  [data-testid="stImage"] img { max-width: 100% !important; height: auto !important;
    max-height: 9.5cm; width: auto !important; }
  h1, h2, h3, h4 { break-after: avoid; page-break-after: avoid; }
  /* paper is smaller than a screen: text a little smaller, a collapsed section left out */
  html { font-size: 13px !important; }
  [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {
    break-inside: avoid; page-break-inside: avoid; }
  [data-testid="stExpander"]:has(details:not([open])) { display: none !important; }
}
</style>""")


def results_gate() -> None:
    """In presentation mode, until the teacher shows them: one large "Show the results" button
    where the page's results start, and nothing of the page below it (the script run stops
    here). Elsewhere, and once shown, nothing."""
    if page_view() != PRESENT or revealed():
        return
    st.info("The class predicts first: what will the chart show? Then show the results.",
            icon=":material/psychology:")
    st.button("Show the results", key="present_reveal", type="primary", icon=":material/visibility:",
              on_click=_reveal, args=(_page_id(),), width="stretch")
    st.stop()


def revealed() -> bool:
    """True once the teacher has shown this page's results in presentation mode."""
    return _page_id() in st.session_state.get(REVEALED_KEY, set())


def _reveal(page: str) -> None:
    st.session_state.setdefault(REVEALED_KEY, set()).add(page)


def _page_id() -> str:
    """This page and the settings in its link: new settings are predicted afresh."""
    params = sorted((k, v) for k, v in st.query_params.to_dict().items() if k not in VIEW_PARAMS)
    return f"{getattr(current_page(), 'url_path', '')}?{params}"


def present_chart(fig: go.Figure, key: str) -> None:
    """A chart in presentation mode: enlarged for a projector (`enlarge`), and a copy for a
    phone, text PHONE_FONT_FACTOR times larger and the normal height, that plotly lays out for
    the phone's width; the CSS of `_present_style` shows the one that fits the window."""
    with st.container(key=f"present_wide_{key}"):
        st.plotly_chart(enlarge(fig), key=key)
    with st.container(key=f"present_phone_{key}"):
        st.plotly_chart(enlarge(fig, PHONE_FONT_FACTOR, 1.0, 0, PHONE_FONT_FACTOR),
                        key=f"{key}_phone")


def enlarge(fig: go.Figure, font: float = FONT_FACTOR, height: float = HEIGHT_FACTOR,
            min_height: int = MIN_HEIGHT, line: float = LINE_FACTOR) -> go.Figure:
    """A copy of `fig` for a projector: `height` times taller (at least `min_height` px), every
    text `font` times larger, lines and markers `line` times wider. The input figure is left
    unchanged (figures may be shared between sessions)."""
    out = go.Figure(fig)
    out.update_layout(height=max(int((fig.layout.height or 500) * height), min_height),
                      font_size=(fig.layout.font.size or 12) * font)
    out.for_each_xaxis(lambda axis: _larger_axis(axis, font))
    out.for_each_yaxis(lambda axis: _larger_axis(axis, font))
    legend = out.layout.legend
    if legend.font and legend.font.size:
        legend.font.size *= font
    if legend.title and legend.title.font and legend.title.font.size:
        legend.title.font.size *= font
    for note in out.layout.annotations:
        if note.font and note.font.size:
            note.font.size *= font
    for trace in out.data:
        if getattr(trace, "textfont", None) is not None and trace.textfont.size:
            trace.textfont.size *= font
        size = getattr(getattr(trace, "marker", None), "size", None)
        if isinstance(size, (int, float)):
            trace.marker.size = size * line
        width = getattr(getattr(trace, "line", None), "width", None)
        if isinstance(width, (int, float)) and width > 0:
            trace.line.width = width * line
    return out


def _larger_axis(axis, font: float) -> None:
    if axis.tickfont and axis.tickfont.size:
        axis.tickfont.size *= font
    if axis.title and axis.title.font and axis.title.font.size:
        axis.title.font.size *= font


def settings_items(settings: Any) -> list[tuple[str, str]]:
    """A section's settings as (name, value) in words: 'Labels per class', '1, 5, all'.
    A field that is itself a section's settings is listed by that section."""
    items = []
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            continue
        name = FIELD_NAMES.get(f.name, f.name.replace("_", " ").capitalize())
        items.append((name, _value_text(f.name, value)))
    return items


def _value_text(name: str, value: Any) -> str:
    values = list(value) if isinstance(value, (tuple, list)) else [value]
    if "labels" in name:
        return ", ".join(labels_text(int(v)) for v in values)
    if name == "strategies":
        return ", ".join(strategy_label(v) for v in values)
    if values and all(isinstance(v, str) and (v in TEXT_DATASETS or v.startswith(USER_TEXT_PREFIX))
                      for v in values):  # a text corpus by its title (an upload's, escaped)
        return ", ".join(TEXT_DATASETS[v].title if v in TEXT_DATASETS else plain(text_title(v))
                         for v in values)
    return (", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
            or EMPTY_VALUES.get(name, "none"))


def show_settings(settings: Any) -> None:
    """Where a section's form would be: its settings from the link, as a list in the handout
    and as one line in presentation mode."""
    items = settings_items(settings)
    if page_view() == HANDOUT:
        st.markdown("**Settings**\n\n" + "\n".join(f"- {name}: {value}" for name, value in items))
    else:
        st.markdown(" · ".join(f"**{name}:** {value}" for name, value in items))
