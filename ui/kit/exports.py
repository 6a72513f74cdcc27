"""Every chart with its exports: the chart as PNG and SVG, and the runs behind it as CSV.

`show_chart(fig, key, runs, name)` is the one way a page draws a chart: the chart (enlarged in
presentation mode, a still image in the printable handout, `ui.kit.present`) and under it a row of
downloads whose file names say what the chart is (`transfer-curves-digits.png`). The images are
drawn only when their button is pressed (Streamlit calls the download's function then, outside
the page's script run), by `ui.kit.chart_image` (matplotlib: no browser, so it works offline and on
a fresh machine; why not kaleido is said there). When a chart cannot be drawn as an image the
row says why, and the CSV still works. The CSV has one row per run with the columns a student
wants first (strategy, labels per class, seed, test accuracy, ...), then everything else the
records hold; a chart with no runs behind it (exact counts, estimates) exports its points.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Optional

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from engine.experiments.stats import failed_note, strategy_label
from ui.kit.chart_image import ChartImageError, render, unsupported
from ui.kit.present import present_chart
from ui.kit.shell import HANDOUT, PRESENT, page_view

# The columns a student reads first, in this order, when the records have them
FIRST_COLUMNS = ("unit", "curve", "strategy", "strategy_name", "labels_per_class", "all_labels",
                 "n_train", "seed", "test_accuracy", "train_seconds", "device")
STILL_CACHE = 32  # handout images kept, by figure
STILL_WIDTH = 760  # CSS pixels of a handout's chart: about a printed page's width, text to scale


def file_stem(name: str) -> str:
    """A chart's name as a file name: 'Transfer curves: digits' -> 'transfer-curves-digits'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80] or "chart"


def runs_frame(runs: Any) -> pd.DataFrame:
    """The records behind a chart as a table: a DataFrame, a list of records, or records by
    name (a forgetting arm, a model), each a row. A record's lists of one length (a value per
    epoch) become a row each, with its other values repeated; other lists are joined with
    '; ' and nested records written as JSON. 'strategy_name' is added beside 'strategy'."""
    if isinstance(runs, pd.DataFrame):
        frame = runs.copy()
    elif isinstance(runs, Mapping):
        frame = pd.DataFrame([{"unit": name, **dict(record)} for name, record in runs.items()])
    else:
        frame = pd.DataFrame([dict(record) for record in runs])
    frame = _long_lists(frame.reset_index(drop=True))
    if "strategy" in frame and "strategy_name" not in frame:
        frame.insert(0, "strategy_name", frame["strategy"].map(lambda s: strategy_label(str(s))))
    first = [c for c in FIRST_COLUMNS if c in frame]
    return frame[first + [c for c in frame.columns if c not in first]]


def _is_list(value: Any) -> bool:
    """A list, a tuple or a one-dimensional array."""
    return isinstance(value, (list, tuple)) or (getattr(value, "ndim", None) == 1
                                                and hasattr(value, "tolist"))


def _long_lists(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of lists: the largest set of columns whose lists have the same lengths row by
    row (a value per epoch) is exploded together, the rest joined as text; dicts become JSON."""
    listed = [c for c in frame.columns if frame[c].map(_is_list).any()]
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, dict)).any():
            frame[column] = frame[column].map(lambda v: json.dumps(v, default=str)
                                              if isinstance(v, dict) else v)
    if not listed:
        return frame
    lengths = {c: tuple(len(v) if _is_list(v) else -1 for v in frame[c]) for c in listed}
    groups = list(dict.fromkeys(lengths.values()))  # the columns of one length row by row...
    widest = max(groups, key=lambda ls: (list(lengths.values()).count(ls), sum(ls)))
    together = [c for c in listed if lengths[c] == widest]  # ...the most of them, exploded
    for column in listed:
        if column not in together:
            frame[column] = frame[column].map(
                lambda v: "; ".join(map(str, list(v))) if _is_list(v) else v)
    frame = frame.copy()
    for column in together:
        frame[column] = frame[column].map(lambda v: list(v) if _is_list(v) else [v])
    return frame.explode(together, ignore_index=True)


def figure_frame(fig: go.Figure) -> pd.DataFrame:
    """The points a chart plots, one row each: series, x, y and the ± error where shown (the
    bands of ±1 std are left out: their points are the error)."""
    rows = []
    for trace in fig.data:
        if getattr(trace, "fill", None) == "toself":
            continue
        error = getattr(trace, "error_y", None)
        shown = error is not None and error.visible and error.array is not None
        spread = list(error.array) if shown else []
        points = zip(getattr(trace, "x", None) or (), getattr(trace, "y", None) or ())
        for i, (x, y) in enumerate(points):
            row = {"series": trace.name or "", "x": x, "y": y}
            if spread:
                row["error (±)"] = spread[i] if i < len(spread) else None
            rows.append(row)
    return pd.DataFrame(rows, columns=["series", "x", "y"] if not rows else None)


def chart_csv(fig: go.Figure, runs: Any = None) -> str:
    """The CSV of a chart: its runs (`runs_frame`), or its points when it has none."""
    frame = figure_frame(fig) if runs is None else runs_frame(runs)
    return frame.to_csv(index=False)


LIVE = "_live"  # in a chart's key: a live panel redraws it every second while a job runs


def show_chart(fig: go.Figure, key: str, runs: Any = None, name: str = "chart", area=None,
               downloads: Optional[bool] = None) -> None:
    """Draw `fig` (widget key `key`) in `area` (the page by default), then its downloads: PNG,
    SVG (drawn when pressed) and the CSV of `runs` (or of the plotted points), as files named
    after `name`. Presentation mode draws it larger and without downloads; the handout draws
    a still image. A chart whose key holds LIVE has no downloads unless `downloads` says so:
    its buttons would be replaced every second under the pointer, and the finished chart has
    them. Runs of `runs` that failed (`engine.experiments.stats.failed_runs`), which the chart
    leaves out, are named under it."""
    view, downloads = page_view(), (LIVE not in key) if downloads is None else downloads
    with (area if area is not None else st).container():
        if view == HANDOUT:
            _still(fig, key)
        else:
            present_chart(fig, key) if view == PRESENT else st.plotly_chart(fig, key=key)
        if downloads and not view:
            download_row(fig, key, runs, name)
        note = failed_note(runs) if isinstance(runs, pd.DataFrame) else None
        if note:  # the chart leaves them out: say which, and why
            st.warning(note, icon=":material/report:")


def download_row(fig: go.Figure, key: str, runs: Any, name: str) -> None:
    """The buttons under a chart; why there is no image, when there cannot be one."""
    stem, problem = file_stem(name), unsupported(fig)
    with st.container(horizontal=True, key=f"exports_{key}", gap="small"):
        if problem is None:
            st.download_button("Download PNG", data=lambda: render(fig, "png"),
                               file_name=f"{stem}.png", mime="image/png", key=f"{key}_png",
                               on_click="ignore", icon=":material/image:",
                               help="The chart as a picture for slides and documents.")
            st.download_button("Download SVG", data=lambda: render(fig, "svg"),
                               file_name=f"{stem}.svg", mime="image/svg+xml", key=f"{key}_svg",
                               on_click="ignore", icon=":material/draw:",
                               help="The chart as a vector drawing: sharp at any size, editable.")
        st.download_button("Download CSV", data=lambda: chart_csv(fig, runs), file_name=f"{stem}.csv",
                           mime="text/csv", key=f"{key}_csv", on_click="ignore",
                           icon=":material/table_view:",
                           help="The numbers behind the chart, for a spreadsheet: one row per "
                                "run when the chart is made of runs, else one per point.")
    if problem is not None:
        st.caption(f"No PNG or SVG of this chart: {problem}. Its CSV has the numbers.")


@st.cache_data(max_entries=STILL_CACHE, show_spinner=False)
def _png_of(figure_json: str) -> bytes:
    return render(go.Figure(json.loads(figure_json)), "png", width=STILL_WIDTH)


def _still(fig: go.Figure, key: str) -> None:
    """The chart as a still image that prints whole; the interactive chart and the reason
    when it cannot be drawn as one."""
    try:
        st.image(_png_of(fig.to_json()), width="stretch")
    except Exception as err:  # noqa: BLE001  (ChartImageError, or a failure: the chart still shows)
        st.plotly_chart(fig, key=key)
        reason = err if isinstance(err, ChartImageError) else f"its image could not be drawn ({err})"
        st.caption(f"This chart is shown as on screen, not as an image: {reason}.")
