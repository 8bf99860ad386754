"""SQLite result store of a sweep: one row per task, committed as each finishes."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    fn TEXT NOT NULL,
    params TEXT NOT NULL,
    seed INTEGER,
    status TEXT NOT NULL,          -- 'ok' or 'error'
    result TEXT,                   -- JSON of the task's return value when ok
    error TEXT,                    -- one-line error (type: message) when failed
    elapsed_s REAL,
    finished_at REAL
)
"""


class ResultStore:
    """On-disk store keyed by task key. Safe to reopen after a crash (WAL journal).

    Only the process that runs the sweep writes; workers return results to it.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def put(self, key: str, fn: str, params: str, seed, status: str,
            result=None, error: str | None = None, elapsed_s: float | None = None) -> None:
        """Insert or replace one task's outcome and commit at once."""
        if status not in ("ok", "error"):
            raise ValueError(f"status must be 'ok' or 'error', got {status!r}")
        self._db.execute(
            "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?)",
            (key, fn, params, seed, status,
             None if result is None else json.dumps(result, allow_nan=True),
             error, elapsed_s, time.time()),
        )
        self._db.commit()

    def status(self, keys) -> dict[str, str]:
        """{key: status} for the given keys that are stored."""
        out: dict[str, str] = {}
        keys = list(keys)
        for k in range(0, len(keys), 500):
            chunk = keys[k:k + 500]
            q = f"SELECT key, status FROM results WHERE key IN ({','.join('?' * len(chunk))})"
            out.update(dict(self._db.execute(q, chunk).fetchall()))
        return out

    def get(self, key: str) -> dict | None:
        row = self._db.execute(
            "SELECT status, result, error, elapsed_s FROM results WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return {"status": row[0], "result": None if row[1] is None else json.loads(row[1]),
                "error": row[2], "elapsed_s": row[3]}

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM results WHERE status=?", (status,)).fetchone()[0]
