"""The one way a page shows a results table: `show_table`.

Every table of the app goes through it, so each one fits a phone's window without sideways
scrolling, reads at a projector's 1366 x 768 and prints whole in the handout:

- the table is Streamlit's HTML table (`st.table`): headers and text wrap, numbers do not, and
  each number column has one stated format (`formats`, a Python format spec such as ".1f" or
  ","), so what a page shows is exactly the value rounded as stated; the element's data stay
  the values themselves (a Styler carries the text shown);
- a table with many columns (`compact`) is shown on a narrow screen (up to 640 px) as one
  paragraph per row: the row's name in bold, then each other column as "name: value";
- a table users sort on a wide screen (`sortable`) keeps Streamlit's sortable grid there; a
  phone and the handout get the layouts above, which print whole.

Screen widths are the browser's to know, so both layouts are sent and `TABLE_CSS` shows one
(on paper, the table). Cell text is Markdown in `st.table`: text from data (an upload's name,
its class names) is escaped (`markdown_text`) so it shows literally; only the columns named
in `markdown` hold the app's own Markdown (a status with `code`).
Not here: what a table holds (each lesson's ui module builds its DataFrame).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pandas as pd
import streamlit as st

from ui.kit.shell import HANDOUT, page_view

# The containers `show_table` draws: every table, its wide form and its phone form.
KEY, WIDE, PHONE = "table_", "table_wide_", "table_phone_"
# Constant CSS (no text from users): wrapping headers and text, unbroken numbers, tighter cells
# on a phone, and the one layout of a compact table that fits the window (on paper: the wide).
TABLE_CSS = """<style>
[class*="st-key-table_"] [data-testid="stTable"] table { width: 100%; }
[class*="st-key-table_"] [data-testid="stTable"] th,
[class*="st-key-table_"] [data-testid="stTable"] td,
[class*="st-key-table_"] [data-testid="stTable"] :is(th, td) * {
  white-space: normal; overflow-wrap: break-word; }
[class*="st-key-table_phone_"] p { margin: 0; padding: 0.4rem 0.25rem; font-size: 0.875rem;
  border-bottom: 1px solid rgba(49, 51, 63, 0.15); }
@media (max-width: 640px) {
  [class*="st-key-table_"] [data-testid="stTable"] th,
  [class*="st-key-table_"] [data-testid="stTable"] td { font-size: 0.8125rem; padding: 0.25rem 0.375rem; }
  [class*="st-key-table_wide_"] { display: none !important; } }
@media (min-width: 641px) { [class*="st-key-table_phone_"] { display: none !important; } }
@media print {
  [class*="st-key-table_phone_"] { display: none !important; }
  [class*="st-key-table_wide_"] { display: block !important; }
  [class*="st-key-table_"] [data-testid="stTable"] tr { break-inside: avoid; page-break-inside: avoid; } }
</style>"""
# What Markdown reads as syntax in a cell's text, escaped with a backslash: these characters
# anywhere, a block marker or a list number at the start, and the start of a bare link.
MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]<>|~$&])")
BLOCK_STARTS = re.compile(r"^([#>+=-])")  # a heading, a quote, a list item
LIST_NUMBERS = re.compile(r"^(\d+)([.)])(?=\s|$)")  # "1. " and "2) " start numbered lists
# Where GFM would find a bare link in the text (www.x, http://x, a@b.org) after escapes are
# read: a word joiner (invisible, U+2060) goes there, so no link is made.
BARE_LINKS = re.compile(r"(?i)(?<=www)(?=\.)|(?=://)|(?<=@)")
WORD_JOINER = "\u2060"
MISSING = "–"  # a cell with no value
NBSP = "\u00a0"  # a space that never breaks a line
SHORT_TEXT = 24  # characters: a column name or value this long or shorter keeps to one line


@dataclass(frozen=True)
class Compact:
    """How a table with many columns reads on a phone: one entry per row, its name first."""
    # the row's name, a template of column names: "{Strategy}, seed {Seed}"; those columns
    # are not repeated in the entry's "name: value" list
    title: str
    leave_out: Sequence[str] = ()  # other columns left out on a phone (constant ones)

    def title_columns(self) -> list[str]:
        return [field for _, field, _, _ in string.Formatter().parse(self.title) if field]


def markdown_text(text) -> str:
    """Text shown literally in a Markdown cell, on one line: no emphasis, link, image, formula,
    heading or list can come from it (Streamlit renders no HTML in a table)."""
    text = MARKDOWN_SPECIALS.sub(r"\\\1", " ".join(str(text).split()))
    text = BARE_LINKS.sub(WORD_JOINER, text)
    return LIST_NUMBERS.sub(r"\1\\\2", BLOCK_STARTS.sub(r"\\\1", text))


def _with_index(data: pd.DataFrame) -> pd.DataFrame:
    """`data` with its index as the first column when the index has a name (an arm, a block),
    else without it (it only numbers the rows)."""
    return data.reset_index(drop=data.index.name is None)


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def cell_texts(data: pd.DataFrame, formats: Optional[Mapping[str, str]] = None,
               markdown: Sequence[str] = ()) -> pd.DataFrame:
    """Every cell as the text the table shows, under its column's name: numbers by the column's
    format spec in `formats` (else as Python writes them), a missing value as MISSING, the
    text of a `markdown` column as it is, other text escaped for Markdown. A named index
    becomes the first column, an unnamed one goes."""
    formats, data = dict(formats or {}), _with_index(data)
    out = {}
    for name, column in data.items():
        text = _text_of(column, formats.get(str(name), ""), name in markdown)
        out[str(name)] = [MISSING if pd.isna(v) else text(v) for v in column]
    return pd.DataFrame(out, columns=list(out))


def _text_of(column: pd.Series, spec: str, markdown: bool):
    """How a column's values become text: by `spec` (numbers), as they are (the app's own
    Markdown) or escaped."""
    if _is_number(column):
        return _formatter(spec)
    return (lambda v: " ".join(str(v).split())) if markdown else markdown_text


def compact_rows(cells: pd.DataFrame, compact: Compact) -> str:
    """The phone form of a table (`cells` from `cell_texts`) as Markdown: one paragraph per
    row, its name (the title) in bold on the first line, then every other column as
    "name: value" (lines wrap between pairs, and inside a value only when it is long)."""
    named = set(compact.title_columns()) | set(compact.leave_out)
    rest = [c for c in cells.columns if c not in named]
    rows = []
    for _, row in cells.iterrows():
        details = " · ".join(_pair(markdown_text(c), row[c]) for c in rest)
        rows.append(f"**{compact.title.format(**row)}**  \n{details}")
    return "\n\n".join(rows)


def _pair(name: str, value: str) -> str:
    """'name: **value**', on one line (no-break spaces) when short; a name or value of over
    SHORT_TEXT characters breaks between its words, and such a value is not in bold."""
    name = name if len(name) > SHORT_TEXT else name.replace(" ", NBSP)
    if len(value) > SHORT_TEXT:
        return f"{name}:{NBSP}{value}"
    return f"{name}:{NBSP}**{value.replace(' ', NBSP)}**"


def styled(data: pd.DataFrame, formats: Optional[Mapping[str, str]] = None,
           markdown: Sequence[str] = ()):
    """`data` as the wide table shows it: a Styler whose display text is `cell_texts`' (each
    number column by its format, text escaped but in `markdown` columns), number cells to the
    right. Its data stay the values themselves."""
    formats = dict(formats or {})
    numbers = [n for n, c in data.items() if _is_number(c)]
    shown = {n: _text_of(c, formats.get(str(n), ""), n in markdown) for n, c in data.items()}
    if data.index.name is None:  # it only numbers the rows: not shown
        data = data.reset_index(drop=True)
    else:  # shown as is
        data = data.rename(index=lambda v: markdown_text(v) if isinstance(v, str) else v)
    styler = data.style.format(shown, na_rep=MISSING)
    if numbers:
        styler = styler.set_properties(subset=numbers, **{"text-align": "right !important"})
    return styler


def _formatter(spec: str):
    return lambda v: format(v, spec)


def show_table(data: pd.DataFrame | Mapping | Sequence[Mapping], key: str, *,
               formats: Optional[Mapping[str, str]] = None, compact: Optional[Compact] = None,
               sortable: bool = False, markdown: Sequence[str] = ()) -> None:
    """Draw `data` as a results table that fits the window (see the module's docstring).
    `key` names it on the page (unique there); `formats` maps a number column to its format
    spec; `compact` lays it out row by row on a phone; `sortable` keeps a sortable grid on a
    wide screen (not in the handout, whose tables print); `markdown` names the columns whose
    text is the app's own Markdown (`code`), shown as such."""
    data = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    wide = styled(data, formats, markdown)
    st.html(TABLE_CSS)
    with st.container(key=f"{KEY}{key}"):
        if not (compact or sortable):
            st.table(wide)
            return
        with st.container(key=f"{WIDE}{key}"):
            if sortable and page_view() != HANDOUT:
                st.dataframe(_sortable(data, formats), hide_index=True)
            else:
                st.table(wide)
        with st.container(key=f"{PHONE}{key}"):
            if compact:
                st.markdown(compact_rows(cell_texts(data, formats, markdown), compact))
            else:
                st.table(wide)


def _sortable(data: pd.DataFrame, formats: Optional[Mapping[str, str]]):
    """The wide screen's sortable grid: the same numbers in the same formats (the grid shows
    text as it is, so nothing is escaped); a sort still orders by the values."""
    data = _with_index(data)
    shown = {n: _formatter(spec) for n, spec in (formats or {}).items() if n in data}
    return data.style.format(shown, na_rep=MISSING)
