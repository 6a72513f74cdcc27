"""Who asks, and how much one visitor may take of a server a whole class shares.

No accounts, so "who" is a visitor: the id in the browser's `transferlab_visitor` cookie (set by
the server on the first page it serves, `engine.infra.gate`, signed so a client cannot choose
one), shared by every tab and session of that browser; and, as a second key, the client's
address. A session that brings no valid cookie (a script, or a browser the server would not
give one, see `gate.NEW_VISITORS_PER_MINUTE`) is its address alone. Every quota is checked for
both keys: the visitor's limit is what one person needs, the address's is what a class behind
one router needs, so opening new tabs or dropping the cookie does not reset anything, and one
careless visitor cannot take what the rest of a class needs.

`LIMITS` holds the figures (each one a sentence in README, "Running it for a class"); an
operator changes one with its environment variable, `TRANSFERLAB_LIMIT_<NAME>` (an integer).
`Window` counts events per key over a sliding window (joins per minute, wrong class codes per
minute, new saved states per hour); it lives in the server process, so a restart forgets it.

Nothing here draws or trains.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional

LOCAL = "local"  # the address of a visitor on the server's own machine (or of an AppTest)


@dataclass(frozen=True)
class Who:
    """A visitor: their cookie's id when they brought a valid one (else None) and their
    address. `keys` are what quotas count under."""

    visitor: Optional[str]
    address: str = LOCAL

    @property
    def visitor_key(self) -> str:
        return f"visitor:{self.visitor}" if self.visitor else f"address:{self.address}"

    @property
    def address_key(self) -> str:
        return f"address:{self.address}"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.visitor_key, self.address_key)))

    @property
    def exempt(self) -> bool:
        """On the server's own machine (the operator, the command line, the tests' AppTest):
        no quotas. Behind a reverse proxy on the same machine, set TRANSFERLAB_TRUST_PROXY=1,
        or every visitor would be exempt."""
        return self.address == LOCAL


NOBODY = Who(None, LOCAL)  # the command line, tests, and pages before a visitor is known

# name -> (default, what it limits). A visitor's limit first, then its address's.
_DEFAULTS = {
    "CLASSES": (2, "open classes per visitor"),
    "CLASSES_PER_ADDRESS": (6, "open classes per address"),
    "JOINS_PER_MINUTE": (5, "class joins per visitor per minute"),
    "JOINS_PER_ADDRESS_MINUTE": (60, "class joins per address per minute"),
    "STUDENTS_PER_ADDRESS": (100, "students of one class from one address"),
    "WRONG_CODES_PER_MINUTE": (10, "wrong class codes per visitor per minute"),
    "WRONG_CODES_PER_ADDRESS_MINUTE": (30, "wrong class codes per address per minute"),
    "RUNS": (252, "runs queued or training per visitor (four default sweeps)"),
    "RUNS_PER_ADDRESS": (756, "runs queued or training per address"),
    "SERVER_RUNS": (3000, "runs queued or training on the server"),
    "SAVES_PER_HOUR": (60, "new saved quizzes, plans or decks per visitor per hour"),
    "SAVES_PER_ADDRESS_HOUR": (300, "new saved states per address per hour"),
    "SENDS_PER_MINUTE": (60, "predictions and answers a visitor sends to a class per minute"),
    "UPLOADS_PER_HOUR": (20, "uploads of images or sentences per visitor per hour"),
    "UPLOADS_PER_ADDRESS_HOUR": (100, "uploads per address per hour"),
}


def limit(name: str) -> int:
    """The figure of limit `name` (see `_DEFAULTS`), or its TRANSFERLAB_LIMIT_<NAME> override."""
    default = _DEFAULTS[name][0]
    raw = os.environ.get(f"TRANSFERLAB_LIMIT_{name}")
    try:
        return max(0, int(raw)) if raw is not None else default
    except ValueError:
        return default


def limits_table() -> list[tuple[str, int, str]]:
    """(name, figure now, what it limits) of every limit, for README and the operator."""
    return [(name, limit(name), what) for name, (_, what) in _DEFAULTS.items()]


class QuotaError(ValueError):
    """A request over one of a visitor's or an address's limits; the message is a sentence
    for the page (a ValueError, so pages report it as any refused input)."""


class Window:
    """Events per key within the last `seconds` (a sliding window); thread-safe."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.clock = seconds, clock
        self._lock = threading.RLock()
        self._events: dict[str, deque] = {}

    def count(self, key: str) -> int:
        with self._lock:
            return len(self._prune(key))

    def _prune(self, key: str) -> deque:
        events = self._events.setdefault(key, deque())
        edge = self.clock() - self.seconds
        while events and events[0] <= edge:
            events.popleft()
        if not events:
            self._events.pop(key, None)
        return events

    def full(self, limits: dict[str, int]) -> Optional[str]:
        """When a key of `limits` (key -> most allowed in the window) is at its limit: how long
        until it is not ('40 s'); else None. Counts nothing."""
        with self._lock:
            now = self.clock()
            for key, most in limits.items():
                events = self._prune(key)
                if len(events) >= most:
                    wait = max(1, int(events[0] + self.seconds - now + 0.999)) if events else 1
                    return _wait_text(wait)
            return None

    def add(self, limits: dict[str, int]) -> None:
        """Count one event under every key of `limits`."""
        with self._lock:
            now = self.clock()
            for key in limits:
                self._events.setdefault(key, deque()).append(now)

    def take(self, limits: dict[str, int], what: str) -> None:
        """Count one event under every key of `limits`, or none when any key is at its limit:
        QuotaError says `what` and the wait."""
        with self._lock:
            wait = self.full(limits)
            if wait:
                raise QuotaError(f"{what}; try again in {wait}")
            self.add(limits)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()


def _wait_text(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    return f"{(seconds + 59) // 60} min"


def per_keys(who: Who, visitor_limit: str, address_limit: Optional[str] = None) -> dict[str, int]:
    """{key: most allowed} for a visitor's limit and, when given, their address's. A visitor
    without a cookie is their address, under the visitor's (tighter) limit."""
    if who.exempt:
        return {}
    limits = {who.address_key: limit(address_limit)} if address_limit else {}
    limits[who.visitor_key] = limit(visitor_limit)
    return limits


# ---- the visitor cookie --------------------------------------------------------------------------

COOKIE = "transferlab_visitor"  # the browser's visitor id, `<16 hex>.<signature>`
PROXY_ENV = "TRANSFERLAB_TRUST_PROXY"  # "1": the client's address is X-Forwarded-For's last entry
_SECRET: list[bytes] = []


def _secret() -> bytes:
    """The key visitor ids are signed with: `<home>/.visitor-key`, made on first use (so ids
    stay valid across restarts); a per-process key when the data directory is not writable."""
    if not _SECRET:
        import secrets as _secrets

        from engine.core.store import StoreError, home_dir
        try:
            path = home_dir() / ".visitor-key"
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(_secrets.token_hex(32))
            key = bytes.fromhex(path.read_text().strip())
        except (OSError, ValueError, StoreError):
            key = _secrets.token_bytes(32)
        _SECRET.append(key)
    return _SECRET[0]


def _signature(visitor: str) -> str:
    import hashlib
    import hmac

    return hmac.new(_secret(), visitor.encode(), hashlib.sha256).hexdigest()[:32]


def new_visitor_cookie() -> str:
    """A fresh visitor id with its signature, as the cookie carries it."""
    import secrets as _secrets

    visitor = _secrets.token_hex(8)
    return f"{visitor}.{_signature(visitor)}"


def visitor_from_cookie(value: Optional[str]) -> Optional[str]:
    """The visitor id a cookie value carries, when the server signed it; else None."""
    import hmac
    import re

    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"([0-9a-f]{16})\.([0-9a-f]{32})", value)
    if match is None or not hmac.compare_digest(match.group(2), _signature(match.group(1))):
        return None
    return match.group(1)


def client_address(peer: Optional[str], forwarded: Optional[str] = None) -> str:
    """The address quotas count a client under: its connection's peer (LOCAL on the server's
    own machine, exempt from quotas), or with TRANSFERLAB_TRUST_PROXY=1 the last X-Forwarded-For entry (the one
    the operator's proxy added)."""
    if os.environ.get(PROXY_ENV) == "1" and isinstance(forwarded, str) and forwarded:
        peer = forwarded.split(",")[-1].strip() or peer
    if not isinstance(peer, str) or not peer or peer in ("127.0.0.1", "::1", "localhost"):
        return LOCAL  # no connection behind the run (AppTest) counts as the server's machine
    return peer[:64]
