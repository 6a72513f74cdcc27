"""Reading a lesson section's settings from a link, and repeating link text safely.

`QueryReader` is the one parser of link values: each bad value falls back to its default with a
notice for the page (a link never breaks a page, and the command line turns notices into
errors). `link_text` is how a page repeats a value it read from a URL. Plain Python, no
Streamlit: section settings (`engine.experiments.lessons`), the pages and the command line share
it.
"""

from __future__ import annotations

from typing import Callable, Optional

from engine.core import datasets
from engine.experiments.sweep import DEFAULT_LABELS, MAX_SEEDS

# The labelled-set sizes the lessons' forms and links offer (ALL_LABELS is written "all"), and
# the same without "all" for a section that needs a count known before it runs.
LABEL_CHOICES = DEFAULT_LABELS
COUNTED_LABELS = tuple(k for k in LABEL_CHOICES if k != datasets.ALL_LABELS)
MAX_QUERY_VALUE = 200  # characters; a longer URL value is refused, not parsed
MAX_SHOWN_CHARS = 40  # a longer name or value from a link is cut where a page repeats it


def link_text(text: str, width: int = MAX_SHOWN_CHARS) -> str:
    """Text from a URL as Markdown inline code: shortened, without backticks, so it shows
    literally (never as a link, emphasis or formula) however it was crafted."""
    text = " ".join(str(text).replace("`", "'").split()) or "(empty)"
    return f"`{text if len(text) <= width else text[:width - 1] + '…'}`"


class QueryReader:
    """Reads a page's settings from its URL: each bad value falls back to the default and adds
    a notice for the page to show (a link never breaks the page). A value longer than
    MAX_QUERY_VALUE is refused unread; a notice repeats a bad value only shortened, as code."""

    def __init__(self, params):
        self.params = dict(params)
        self.notices: list[str] = []

    def _get(self, key: str):
        """The link's value for `key`; None when absent or refused for its length."""
        value = self.params.get(key)
        if value is not None and len(value) > MAX_QUERY_VALUE:
            self.notices.append(f"the link's '{key}' value is too long; using the default")
            return None
        return value

    def items(self, key: str) -> Optional[list[str]]:
        """A comma-separated value as its lower-case items, blanks dropped ('Probe, ,lpft' ->
        ['probe', 'lpft']); None when absent or refused for its length. The caller checks
        the items against what it allows."""
        value = self._get(key)
        if value is None:
            return None
        return [part.strip().lower() for part in value.split(",") if part.strip()]

    def seeds(self, key: str, default: int) -> int:
        """Seeds per point: one whole number from 1 to MAX_SEEDS."""
        found = self.items(key)
        if found is None:
            return default
        if len(found) == 1 and found[0].isdecimal() and 1 <= int(found[0]) <= MAX_SEEDS:
            return int(found[0])
        self.notices.append(f"the link's {key} must be a whole number from 1 to {MAX_SEEDS}; "
                            "using the default")
        return default

    def choice(self, key: str, choices, default):
        value = self._get(key)
        if value is None:
            return default
        if value in choices:
            return value
        self.notices.append(f"{key} {link_text(value)} is not one of {', '.join(map(str, choices))}")
        return default

    def _bounded(self, key: str, parse: Callable, low, high, default, what: str):
        """`parse(value)` when it lies from `low` to `high`; else a notice that `key` must be
        `what`, and the default."""
        value = self._get(key)
        if value is None:
            return default
        try:
            number = parse(value)
        except ValueError:
            number = None
        if number is None or not low <= number <= high:  # also refuses nan
            self.notices.append(f"{key} must be {what}, got {link_text(value)}")
            return default
        return number

    def integer(self, key: str, low: int, high: int, default: int) -> int:
        return self._bounded(key, int, low, high, default, f"a whole number from {low} to {high}")

    def number(self, key: str, low: float, high: float, default: float) -> float:
        return self._bounded(key, float, low, high, default, f"a number from {low:g} to {high:g}")

    def size(self, key: str, allowed: tuple[int, ...], default: int) -> int:
        """One labels-per-class value from `allowed` (written 'all' for ALL_LABELS)."""
        found = self.labels(key, allowed, (default,))
        if len(found) != 1:
            self.notices.append(f"{key} must be one size, got {link_text(self.params.get(key))}")
            return default
        return found[0]

    def numbers(self, key: str, allowed: tuple[float, ...], default: tuple[float, ...]) -> tuple[float, ...]:
        """Comma-separated numbers, each one of `allowed`."""
        value = self._get(key)
        if value is None:
            return default
        try:
            parsed = tuple(sorted({float(v) for v in value.split(",")}))
        except ValueError:
            parsed = ()
        if not parsed or any(v not in allowed for v in parsed):
            self.notices.append(f"{key} must list values among {', '.join(f'{v:g}' for v in allowed)}, "
                                f"got {link_text(value)}")
            return default
        return parsed

    def labels(self, key: str, allowed: tuple[int, ...], default: tuple[int, ...]) -> tuple[int, ...]:
        """Comma-separated labels per class from `allowed` (written 'all' for ALL_LABELS)."""
        value = self._get(key)
        if value is None:
            return default
        try:
            parsed = tuple(sorted(set(datasets.parse_labels_list(value))))
        except ValueError:
            parsed = ()
        if not parsed or any(k not in allowed for k in parsed):
            shown = ", ".join(map(datasets.labels_text, allowed))
            self.notices.append(f"{key} must list sizes among {shown}, got {link_text(value)}")
            return default
        return parsed
