"""Static images (PNG, SVG) of the app's plotly charts, drawn with matplotlib: no browser needed.

Plotly's own exporter, kaleido 1.x, drives a Chromium: a laptop without Chrome cannot export
until kaleido downloads one (impossible offline), and it starts a browser per export. Measured
on the default lesson's transfer curves (2000 x 1000 PNG, two CPU cores): kaleido 1.5.0 with
Debian's Chromium 3.7-4.8 s an export; this module 0.21 s (0.4 s for the SVG; the first export
of a process about 2 s, loading fonts). matplotlib is already installed (a dependency of the
app's packages) and runs in the server process, so a fresh `make run` exports offline.

`render(fig, "png" | "svg")` redraws a figure from its traces and layout. It covers what the
lessons' figure builders use: scatter traces (lines, markers, text labels, error bars, filled
±1 std bands), bars (stacked, horizontal, labelled), a second y axis over the first, log axes
with their tick values and texts, category axes, reference lines spanning the plot with their
notes, annotations, the title and the legend (below the plot, as the page shows it). Anything
else is named by `unsupported(fig)` (the page says why there is no image) and `render` refuses
it with `ChartImageError`. SVG text stays text (searchable, editable in slides). Pure: nothing
here draws widgets or reads the store.
"""

from __future__ import annotations

import io
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import plotly.graph_objects as go

WIDTH = 1000  # CSS pixels of an exported chart; its height is the figure's own
DEFAULT_HEIGHT = 500  # plotly's default, for a figure that sets none
SCALE = 2  # PNG pixels per CSS pixel: sharp on a projector and in print
PX_TO_PT = 72 / 100  # the canvas is drawn at 100 dpi: one CSS pixel is 0.72 points
SUPPORTED_TRACES = ("scatter", "bar", "box")
DASHES = {"solid": "-", "dash": (0, (5, 3)), "dot": (0, (1.5, 2.5)), "dashdot": (0, (5, 2, 1.5, 2)),
          "longdash": (0, (10, 4)), "longdashdot": (0, (10, 3, 2, 3))}
MARKERS = {"circle": "o", "square": "s", "diamond": "D", "cross": "P", "x": "X",
           "triangle-up": "^", "triangle-down": "v", "star": "*", "hexagon": "h", "pentagon": "p"}
COLORWAY = ["#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692"]
TEXT_COLOR = "#1A1A1A"
_LOCK = threading.Lock()  # matplotlib's settings are global: one export at a time


class ChartImageError(ValueError):
    """A figure this module cannot draw; the message says why, as a sentence part."""


def unsupported(fig: go.Figure) -> Optional[str]:
    """Why `fig` cannot be exported as an image, or None when it can."""
    kinds = sorted({t.type for t in fig.data} - set(SUPPORTED_TRACES))
    if kinds:
        return f"this chart has {', '.join(kinds)} traces, which the image export does not draw"
    shapes = sorted({s.type or "path" for s in fig.layout.shapes} - {"line"})
    if shapes:
        return f"this chart has {', '.join(shapes)} shapes, which the image export does not draw"
    try:
        import matplotlib  # noqa: F401  (a dependency of the app's packages)
    except ImportError:
        return "matplotlib, which draws the images, is not installed on this server"
    return None


def image_size(fig: go.Figure, width: int = WIDTH) -> tuple[int, int]:
    """(width, height) in pixels of `fig`'s PNG drawn `width` CSS pixels wide."""
    return width * SCALE, int(fig.layout.height or DEFAULT_HEIGHT) * SCALE


def render(fig: go.Figure, fmt: str, width: int = WIDTH) -> bytes:
    """`fig` as PNG or SVG bytes, `width` CSS pixels wide (a narrower chart has relatively
    larger text, as on a printed page); `ChartImageError` when it cannot be drawn."""
    if fmt not in ("png", "svg"):
        raise ChartImageError(f"no image format {fmt!r}; use png or svg")
    problem = unsupported(fig)
    if problem:
        raise ChartImageError(problem)
    import matplotlib
    from matplotlib.figure import Figure

    height = int(fig.layout.height or DEFAULT_HEIGHT)
    settings = {"svg.fonttype": "none", "svg.hashsalt": "transferlab", "font.family": "DejaVu Sans",
                "text.color": TEXT_COLOR, "axes.labelcolor": TEXT_COLOR,
                "xtick.color": TEXT_COLOR, "ytick.color": TEXT_COLOR, "axes.unicode_minus": False}
    with _LOCK, matplotlib.rc_context(settings):
        # a hair over the exact size, so the canvas rounds to width x height pixels, not one less
        canvas = Figure(figsize=(width / 100 + 1e-6, height / 100 + 1e-6), dpi=100,
                        layout="constrained", facecolor="white")
        _draw(canvas, fig)
        out = io.BytesIO()
        canvas.savefig(out, format=fmt, dpi=100 * SCALE, facecolor="white",
                       metadata={"Date": None} if fmt == "svg" else {"Software": None})
    return out.getvalue()


# ---- reading plotly's values -------------------------------------------------------------------

def _color(value: Any, fallback: str = TEXT_COLOR):
    """A plotly colour ('#RRGGBB', 'rgb(..)', 'rgba(..)', a name) as matplotlib takes it."""
    if not isinstance(value, str) or not value:
        return fallback
    found = re.fullmatch(r"\s*rgba?\(([^)]*)\)\s*", value)
    if not found:
        return value
    parts = [float(p) for p in found.group(1).split(",")]
    rgb = tuple(min(max(p / 255, 0.0), 1.0) for p in parts[:3])
    return (*rgb, parts[3]) if len(parts) > 3 else rgb


def _text(value: Any) -> str:
    """Plotly's HTML-ish text as plain text: <br> a new line, other tags dropped."""
    text = re.sub(r"<br\s*/?>", "\n", str(value or ""), flags=re.I)
    return re.sub(r"<[^>]+>", "", text).replace("$", r"\$")


def _gaps(values: Sequence) -> list[float]:
    """Positions with plotly's gaps (None) as matplotlib's (nan)."""
    return [math.nan if v is None else v for v in values]


def _pt(size: Any, default: float) -> float:
    return float(size or default) * PX_TO_PT


@dataclass
class _Axis:
    """One plotly axis mapped onto matplotlib: category values become positions 0, 1, ..."""
    spec: Any  # the plotly axis (layout.xaxis, layout.yaxis, layout.yaxis2)
    categories: list = field(default_factory=list)

    @property
    def log(self) -> bool:
        return self.spec.type == "log"

    def learn(self, values: Sequence) -> None:
        if self.spec.type == "category" or any(isinstance(v, str) for v in values if v is not None):
            self.categories += [v for v in dict.fromkeys(values) if v not in self.categories]

    def place(self, values: Sequence) -> list:
        """Values as positions on the matplotlib axis (None where plotly leaves a gap)."""
        if self.categories:
            return [self.categories.index(v) if v in self.categories else None for v in values]
        return [None if v is None else float(v) for v in values]

    def ref(self, value: Any, note: bool = False) -> float:
        """A position in data units. A note's (`note`) on a log axis is written as log10, except
        where plotly's add_hline wrote its line's own value (past 10^300: not a log10)."""
        if self.categories and value in self.categories:
            return float(self.categories.index(value))
        number = float(value)
        return 10 ** number if note and self.log and abs(number) < 300 else number


def _axes(fig: go.Figure) -> dict[str, _Axis]:
    """The figure's axes ('x', 'y', 'y2') with the category values their traces use."""
    second = fig.layout["yaxis2"] if "yaxis2" in fig.layout else go.layout.YAxis()
    axes = {"x": _Axis(fig.layout.xaxis), "y": _Axis(fig.layout.yaxis), "y2": _Axis(second)}
    for trace in fig.data:
        axes["x"].learn(list(trace.x or ()))
        axes[trace.yaxis or "y"].learn(list(trace.y or ()))
    return axes


# ---- drawing -----------------------------------------------------------------------------------

def _draw(canvas, fig: go.Figure) -> None:
    """Every trace, line, note, axis, the title and the legend of `fig` onto `canvas`."""
    layout, axes = fig.layout, _axes(fig)
    font = layout.font.size or 12
    ax = canvas.add_subplot()
    targets = {"y": ax}
    if any((t.yaxis or "y") == "y2" for t in fig.data):
        targets["y2"] = ax.twinx()  # drawn behind the first axis, as plotly layers them
        ax.set_zorder(targets["y2"].get_zorder() + 1)
        ax.patch.set_visible(False)
    handles, stacks = [], {}
    for i, trace in enumerate(fig.data):
        target = targets[trace.yaxis or "y"]
        color = _trace_color(trace, i)
        if trace.type == "bar":
            artist = _bar(target, trace, axes, color, stacks, layout.barmode or "group")
        elif trace.type == "box":
            artist = _box(target, trace, axes["x"], axes[trace.yaxis or "y"], color)
        else:
            artist = _scatter(target, trace, axes["x"], axes[trace.yaxis or "y"], color)
        if artist is not None and trace.name and trace.showlegend is not False:
            handles.append((artist, _text(trace.name)))
    _reference_lines(ax, fig, axes)
    _annotations(ax, fig, axes, font)
    for name, target in targets.items():
        _style_axis(target, "y", axes[name], font, grid=name == "y")
    _style_axis(ax, "x", axes["x"], font, grid=True)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible("y2" in targets)
    if layout.title.text:
        ax.set_title(_text(layout.title.text), loc="left", fontsize=_pt(font, 12) * 1.1)
    if handles and (layout.showlegend is not False) and (len(handles) > 1 or layout.showlegend):
        _legend(canvas, handles, layout)


def _trace_color(trace, index: int):
    line = getattr(trace, "line", None)
    marker = trace.marker
    color = (line.color if line is not None and line.color else None) or (
        marker.color if isinstance(marker.color, str) else None)
    return _color(color, COLORWAY[index % len(COLORWAY)])


def _scatter(ax, trace, xaxis: _Axis, yaxis: _Axis, color):
    """A scatter trace: a filled band, or its line and markers, error bars and point labels."""
    x, y = xaxis.place(list(trace.x or ())), yaxis.place(list(trace.y or ()))
    if trace.fill == "toself":
        points = [(a, b) for a, b in zip(x, y) if a is not None and b is not None]
        if not points:
            return None
        return ax.fill(*zip(*points), color=_color(trace.fillcolor, color), linewidth=0)[0]
    mode = trace.mode or ("lines+markers" if len(x) < 20 else "lines")
    marker = trace.marker
    symbol = str(marker.symbol or "circle")
    hollow = symbol.endswith("-open")
    style = {"color": color, "linewidth": _pt(trace.line.width, 2), "label": _text(trace.name),
             "linestyle": DASHES.get(trace.line.dash or "solid", "-") if "lines" in mode else "none",
             "marker": MARKERS.get(symbol.removesuffix("-open"), "o") if "markers" in mode else None,
             "markersize": _pt(marker.size, 6), "markerfacecolor": "white" if hollow else color,
             "markeredgewidth": _pt(marker.line.width if marker.line else None,
                                    1.5 if hollow else 0.5),
             "markeredgecolor": color}
    line = ax.plot(_gaps(x), _gaps(y), **style)[0]
    error = trace.error_y
    if error is not None and error.visible and error.array is not None:
        ax.errorbar(_gaps(x), _gaps(y), yerr=[float(e or 0) for e in error.array], fmt="none",
                    ecolor=color, elinewidth=_pt(error.thickness, 2), capsize=4)
    if "text" in mode and trace.text is not None:
        _point_labels(ax, x, y, trace)
    return line


def _box(ax, trace, xaxis: _Axis, yaxis: _Axis, color):
    """A box trace (one box per x value: the class page's predictions): median, quartiles and
    whiskers at 1.5 IQR as plotly draws them, and with `boxpoints="all"` every point, spread
    sideways by a fixed, not random, jitter so the image is the same every time."""
    import numpy as np

    x = list(trace.x) if trace.x is not None else [trace.name] * len(trace.y or ())
    groups: dict = {}
    for position, value in zip(xaxis.place(x), yaxis.place(list(trace.y or ()))):
        if position is not None and value is not None:
            groups.setdefault(position, []).append(value)
    if not groups:
        return None
    from matplotlib.colors import to_rgba

    # plotly fills a box with its line colour at half opacity unless told otherwise
    fill = _color(trace.fillcolor) if trace.fillcolor else to_rgba(color, 0.5)
    artist = None
    for position, values in groups.items():
        drawn = ax.boxplot(values, positions=[position], widths=0.5, patch_artist=True,
                           showfliers=False, manage_ticks=False)
        for patch in drawn["boxes"]:
            patch.set(facecolor=fill, edgecolor=color, linewidth=1.5)
            artist = patch
        for part in ("whiskers", "caps", "medians"):
            for line in drawn[part]:
                line.set(color=color, linewidth=1.5)
        if trace.boxpoints == "all":
            spread = float(trace.jitter or 0) * 0.25
            offsets = np.linspace(-spread, spread, len(values)) if len(values) > 1 else [0.0]
            ax.scatter([position + o for o in offsets], values, color=color, zorder=3,
                       s=_pt(trace.marker.size, 6) ** 2, alpha=trace.marker.opacity or 1.0)
    return artist


def _point_labels(ax, x, y, trace) -> None:
    texts = [trace.text] * len(x) if isinstance(trace.text, str) else list(trace.text)
    position = str(trace.textposition or "top center")
    va = "bottom" if position.startswith("top") else "top" if position.startswith("bottom") else "center"
    offset = 8 if va == "bottom" else -8 if va == "top" else 0
    size = _pt(trace.textfont.size, 12) if trace.textfont else _pt(12, 12)
    for a, b, text in zip(x, y, texts):
        if a is not None and b is not None and text:
            ax.annotate(_text(text), (a, b), xytext=(0, offset), textcoords="offset points",
                        ha="center", va=va, fontsize=size)


def _bar(ax, trace, axes: dict[str, _Axis], color, stacks: dict, barmode: str):
    """A bar trace (vertical or horizontal; stacked on the bars before it when barmode says)."""
    horizontal = trace.orientation == "h"
    place, value = (("y", "x") if horizontal else ("x", "y"))
    where = axes[place if place == "x" else trace.yaxis or "y"].place(list(getattr(trace, place)))
    sizes = [float(v or 0) for v in getattr(trace, value)]
    base = [stacks.get((place, w), 0.0) for w in where] if barmode == "stack" else [0.0] * len(where)
    if barmode == "stack":
        for w, s, b in zip(where, sizes, base):
            stacks[(place, w)] = b + s
    steps = sorted({w for w in where if w is not None})
    width = 0.8 * (min((b - a for a, b in zip(steps, steps[1:])), default=1.0) or 1.0)
    colors = trace.marker.color
    colors = [_color(c) for c in colors] if isinstance(colors, (list, tuple)) else color
    if horizontal:
        bars = ax.barh(where, sizes, height=width, left=base, color=colors, label=_text(trace.name))
    else:
        bars = ax.bar(where, sizes, width=width, bottom=base, color=colors, label=_text(trace.name))
    if trace.text is not None and not isinstance(trace.text, str):
        size = _pt(trace.textfont.size, 12) if trace.textfont else _pt(12, 12)
        ax.bar_label(bars, labels=[_text(t) for t in trace.text], label_type="edge" if horizontal
                     else "center", fontsize=size, padding=3)
    return bars


def _reference_lines(ax, fig: go.Figure, axes: dict[str, _Axis]) -> None:
    """Lines across the plot (plotly's add_hline / add_vline) and other straight line shapes."""
    for shape in fig.layout.shapes:
        line = shape.line
        style = {"color": _color(line.color, "#444444"), "linewidth": _pt(line.width, 2),
                 "linestyle": DASHES.get(line.dash or "solid", "-"), "zorder": 1}
        xref, yref = str(shape.xref or "x"), str(shape.yref or "y")
        if xref.endswith("domain") or xref == "paper":
            ax.axhline(axes["y"].ref(shape.y0), xmin=float(shape.x0 or 0), xmax=float(shape.x1 or 1),
                       **style)
        elif yref.endswith("domain") or yref == "paper":
            ax.axvline(axes["x"].ref(shape.x0), ymin=float(shape.y0 or 0), ymax=float(shape.y1 or 1),
                       **style)
        else:
            ax.plot([axes["x"].ref(shape.x0), axes["x"].ref(shape.x1)],
                    [axes["y"].ref(shape.y0), axes["y"].ref(shape.y1)], **style)


ANCHORS = {"left": "left", "center": "center", "right": "right", "top": "top", "middle": "center",
           "bottom": "bottom"}


def _annotations(ax, fig: go.Figure, axes: dict[str, _Axis], font: float) -> None:
    """Notes placed in data units or in the plot's own fractions (plotly's xref / yref)."""
    for note in fig.layout.annotations:
        xref, yref = str(note.xref or "x"), str(note.yref or "y")
        x_frac = xref == "paper" or xref.endswith("domain")
        y_frac = yref == "paper" or yref.endswith("domain")
        x = float(note.x or 0) if x_frac else axes["x"].ref(note.x, note=True)
        y = float(note.y or 0) if y_frac else axes["y"].ref(note.y, note=True)
        ha = ANCHORS.get(note.xanchor, "center")
        va = ANCHORS.get(note.yanchor, "center")
        ax.annotate(_text(note.text), (x, y), annotation_clip=False, ha=ha, va=va,
                    xycoords=("axes fraction" if x_frac else "data",
                              "axes fraction" if y_frac else "data"),
                    fontsize=_pt(note.font.size if note.font else None, font),
                    color=_color(note.font.color if note.font else None))


def _style_axis(ax, which: str, axis: _Axis, font: float, grid: bool = False) -> None:
    """Title, scale, range, ticks, grid and visibility of one plotly axis on matplotlib's."""
    from matplotlib.ticker import MultipleLocator, NullLocator

    spec = axis.spec
    tick_size = _pt(spec.tickfont.size if spec.tickfont else None, font)
    title_size = _pt(spec.title.font.size if spec.title and spec.title.font else None, font)
    set_label, set_scale, set_lim, axis_obj = (
        (ax.set_xlabel, ax.set_xscale, ax.set_xlim, ax.xaxis) if which == "x"
        else (ax.set_ylabel, ax.set_yscale, ax.set_ylim, ax.yaxis))
    set_label(_text(spec.title.text if spec.title else ""), fontsize=title_size)
    if axis.log:
        set_scale("log")
        axis_obj.set_minor_locator(NullLocator())
    if spec.range is not None and None not in spec.range:
        low, high = spec.range
        set_lim(*((10 ** low, 10 ** high) if axis.log else (low, high)))
    if spec.rangemode == "tozero":
        set_lim(**({"left": 0} if which == "x" else {"bottom": 0}))
    if axis.categories:
        axis_obj.set_ticks(range(len(axis.categories)), labels=[_text(c) for c in axis.categories])
    elif spec.tickvals is not None:
        labels = ([_text(t) for t in spec.ticktext] if spec.ticktext is not None
                  else [f"{float(v):g}" for v in spec.tickvals])
        axis_obj.set_ticks([float(v) for v in spec.tickvals], labels=labels)
    elif spec.dtick is not None and not axis.log:
        axis_obj.set_major_locator(MultipleLocator(float(spec.dtick)))
    ax.tick_params(axis=which, labelsize=tick_size)
    if spec.showticklabels is False:
        ax.tick_params(axis=which, labelleft=False, labelright=False, labelbottom=False)
    if grid and spec.showgrid is not False:
        ax.grid(True, axis=which, color=_color(spec.gridcolor, "#E5E5E5"), zorder=0)
    ax.set_axisbelow(True)


def _legend(canvas, handles: list, layout) -> None:
    """The legend below the plot, in as many columns as the width allows."""
    legend = layout.legend
    size = _pt(legend.font.size if legend.font else None, layout.font.size or 12)
    longest = max(len(label) for _, label in handles)
    width = canvas.get_figwidth() * 100  # CSS pixels
    columns = max(1, min(len(handles), int(width * 0.95 // (longest * size * 0.62 / PX_TO_PT + 50))))
    title = _text(legend.title.text) if legend.title and legend.title.text else None
    canvas.legend([h for h, _ in handles], [label for _, label in handles], loc="outside lower left",
                  ncols=columns, frameon=False, fontsize=size, title=title, title_fontsize=size,
                  alignment="left")
