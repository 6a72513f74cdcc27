"""Words and numbers as the pages write them: plurals, durations, parameter counts.

Plain Python, no Streamlit: the one place each of these is written, so two pages never word the
same number two ways.
"""

from __future__ import annotations

import re
from typing import Optional


def plural(n: int, word: str, many: str = "") -> str:
    """'1 run', '4 runs'; `many` for irregular plurals ('passes')."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {many or word + 's'}"


def seconds_text(seconds: Optional[float]) -> str:
    """'42 s', '3 min 05 s'; 'estimating' when not known yet."""
    if seconds is None:
        return "estimating"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def count_text(n: float) -> str:
    """A count as a chart or a metric writes it: 950, 1k, 11.7k, 113k, 4.72M, 1.2B (three
    significant digits; the exact count goes in the help or the table beside it)."""
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            value = n / size
            return f"{value:.3g}{unit}" if value < 1000 else f"{value:,.0f}{unit}"
    return f"{n:.3g}"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:&=])")


def plain(text: str, width: int = 200) -> str:
    """A visitor's text (an upload's file name, a typed name) for a Markdown line: every
    Markdown character escaped, so it shows literally (never a link, an image, emphasis, a
    formula or an icon), on one line, shortened to `width` characters."""
    text = " ".join(str(text).split())
    if len(text) > width:
        text = text[:width - 1] + "…"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)
