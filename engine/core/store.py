"""Where results and caches live on disk, and the result store.

`home_dir()` is the one data directory (`TRANSFERLAB_HOME`, default `~/.cache/transferlab`).
`ResultStore` keeps one row per finished run in SQLite (WAL journal, so several processes can
write at once and a reader never sees half a row). A run's key is a hash of everything that
determines its numbers, so the same run is never trained twice, whichever spec asked for it.
A data directory that cannot be written, or a store file that is not a readable SQLite database,
raises `StoreError` with a sentence for the user; a damaged store is never replaced or
overwritten. This module knows nothing about training.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

RECORD_COLUMNS = [
    "strategy", "labels_per_class", "seed", "test_accuracy", "train_seconds", "device",
    "n_train", "all_labels", "steps", "backbone", "source", "target", "code_version",
    "finished_at", "run_key",
]


_HOME_HINT = ("Transfer Lab keeps its results, checkpoints and uploads there: make it writable, "
              "or set TRANSFERLAB_HOME to a folder that is.")


class StoreError(ValueError):
    """The data directory or the result store cannot be used; the message is a full sentence.

    A ValueError, like `DatasetError`, so the command line and the pages report it as they
    report any other bad input: one line, no traceback."""


def home_dir() -> Path:
    """The data directory, created on first use; StoreError when it cannot be written."""
    path = Path(os.environ.get("TRANSFERLAB_HOME") or Path.home() / ".cache" / "transferlab")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"The data directory {path} cannot be created "
                         f"({err.strerror or err}). {_HOME_HINT}") from err
    # access() also answers for root: False on a read-only file system, True on a folder root
    # may write whatever its mode says.
    if not os.access(path, os.W_OK | os.X_OK):
        raise StoreError(f"The data directory {path} is read-only. {_HOME_HINT}")
    return path


@contextlib.contextmanager
def sqlite_transaction(path: Path, what: str) -> Iterator[sqlite3.Connection]:
    """A connection to the SQLite file `path` (WAL journal) for one transaction: committed on
    leaving, rolled back when the block raises, always closed. SQLite's errors become a
    StoreError that names the file as `what` ("result store") and says what to do."""
    con = None
    try:
        con = sqlite3.connect(path, timeout=30.0)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        with con:
            yield con
    except sqlite3.Error as err:
        text = str(err)
        if isinstance(err, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
            raise StoreError(f"The {what} {path} is damaged or is not a Transfer Lab {what} "
                             f"(SQLite says: {text}). It was left as it is: move it away or "
                             "delete it to start an empty one, or restore it from a backup.") from err
        if "readonly" in text or "read-only" in text or "unable to open" in text:
            raise StoreError(f"The {what} {path} cannot be opened for writing (SQLite says: "
                             f"{text}). {_HOME_HINT}") from err
        raise StoreError(f"The {what} {path} could not be used (SQLite says: {text}).") from err
    finally:
        if con is not None:
            con.close()


class ResultStore:
    """Finished runs, one row each, keyed by run key; safe to share between processes."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else home_dir() / "results.sqlite"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"The folder of the result store {self.path} cannot be created "
                             f"({err.strerror or err}).") from err
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS runs (run_key TEXT PRIMARY KEY, record TEXT NOT NULL)")

    def _connect(self):
        return sqlite_transaction(self.path, "result store")

    def put(self, record: dict) -> None:
        """Persist one finished run at once (a committed transaction per run)."""
        record = dict(record, finished_at=record.get("finished_at") or time.time())
        with self._connect() as con:
            con.execute("INSERT OR REPLACE INTO runs (run_key, record) VALUES (?, ?)",
                        (record["run_key"], json.dumps(record)))

    def get_many(self, run_keys: Iterable[str]) -> list[dict]:
        keys = list(run_keys)
        found: list[dict] = []
        with self._connect() as con:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                marks = ",".join("?" * len(chunk))
                rows = con.execute(f"SELECT record FROM runs WHERE run_key IN ({marks})", chunk)
                found.extend(json.loads(r[0]) for r in rows)
        return found

    def count(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def records_frame(records: list[dict]) -> pd.DataFrame:
    """Records as a DataFrame with the standard columns first, in a stable order."""
    if not records:
        return pd.DataFrame(columns=RECORD_COLUMNS)
    df = pd.DataFrame(records)
    cols = [c for c in RECORD_COLUMNS if c in df.columns] + [c for c in df.columns if c not in RECORD_COLUMNS]
    return df[cols].sort_values(["strategy", "labels_per_class", "seed"], kind="stable").reset_index(drop=True)


def write_atomic(path: Path, write) -> None:
    """write(file) into a temporary file beside `path`, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
