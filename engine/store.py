"""Where results and caches live on disk, and the result store.

`home_dir()` is the one data directory (`TRANSFERLAB_HOME`, default `~/.cache/transferlab`).
`ResultStore` keeps one row per finished run in SQLite (WAL journal, so several processes can
write at once and a reader never sees half a row). A run's key is a hash of everything that
determines its numbers, so the same run is never trained twice, whichever spec asked for it.
This module knows nothing about training.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Iterable

import pandas as pd

RECORD_COLUMNS = [
    "strategy", "labels_per_class", "seed", "test_accuracy", "train_seconds", "device",
    "n_train", "all_labels", "steps", "backbone", "source", "target", "code_version",
    "finished_at", "run_key",
]


def home_dir() -> Path:
    """The data directory, created on first use."""
    path = Path(os.environ.get("TRANSFERLAB_HOME") or Path.home() / ".cache" / "transferlab")
    path.mkdir(parents=True, exist_ok=True)
    return path


class ResultStore:
    """Finished runs, one row each, keyed by run key; safe to share between processes."""

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else home_dir() / "results.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("CREATE TABLE IF NOT EXISTS runs (run_key TEXT PRIMARY KEY, record TEXT NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30.0)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def put(self, record: dict) -> None:
        """Persist one finished run at once (a committed transaction per run)."""
        record = dict(record, finished_at=record.get("finished_at") or time.time())
        with self._connect() as con:
            con.execute("INSERT OR REPLACE INTO runs (run_key, record) VALUES (?, ?)",
                        (record["run_key"], json.dumps(record)))
        # sqlite3's context manager commits; close explicitly so no handle lingers.
        con.close()

    def get_many(self, run_keys: Iterable[str]) -> list[dict]:
        keys = list(run_keys)
        found: list[dict] = []
        con = self._connect()
        try:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                marks = ",".join("?" * len(chunk))
                rows = con.execute(f"SELECT record FROM runs WHERE run_key IN ({marks})", chunk)
                found.extend(json.loads(r[0]) for r in rows)
        finally:
            con.close()
        return found

    def has(self, run_key: str) -> bool:
        return bool(self.get_many([run_key]))

    def count(self) -> int:
        con = self._connect()
        try:
            return int(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        finally:
            con.close()


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
