"""SQLite result store of a sweep: one row per task, committed as each finishes, and task claims.

Several sweeps may share one store, on one machine or over a shared file
system: before a run computes a task it claims it (a row with its owner's
host, pid and a heartbeat time), so a concurrent run leaves that task alone
and waits for its result. A claim whose owner stopped renewing it (for
``lease_s``) or, on this host, whose owner process is gone is stale and is
taken over. A store that cannot be written is opened read-only: its cached
results can be read, but nothing can be computed into it.
"""

from __future__ import annotations

import json
import os
import socket
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
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,           -- host:pid:token of the run computing the task
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    heartbeat REAL NOT NULL        -- time.time() of the owner's last renewal
);
"""
OPEN_WAIT_S = 30.0  # how long opening a store waits for another process that holds it locked, s
LEASE_S = 60.0  # a claim not renewed for this long is stale (renewed every LEASE_S / 6 by a live run)

# outcomes of ResultStore.claim
CLAIMED, DONE, BUSY = "claimed", "done", "busy"


class SweepStoreError(RuntimeError):
    """The store file cannot be used (corrupt, not a database, read-only when work is left, ...)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    try:  # a zombie (dead, not yet reaped) is dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class ResultStore:
    """On-disk store keyed by task key. Safe to reopen after a crash (WAL journal).

    Only the processes that run sweeps write (workers return results to them).
    ``lease_s`` is how long a claim lives without renewal. ``readonly``: open
    for reading only; None (default) does so when the file or its folder is
    not writable.
    """

    def __init__(self, path: str | Path, lease_s: float = LEASE_S, readonly: bool | None = None):
        self.path = Path(path)
        self.lease_s = float(lease_s)
        self.host = socket.gethostname()
        self.readonly = False
        self._force_ro = bool(readonly)
        try:
            self._db = self._open()
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    # --- opening and errors -------------------------------------------------------------------------

    def _error(self, exc: BaseException, doing: str = "cannot be used") -> SweepStoreError:
        return SweepStoreError(f"sweep store {self.path} {doing} ({type(exc).__name__}: {exc}); "
                               "delete it (its cached results are lost) or use another store (another --out)")

    def _writable(self) -> bool:
        parent = self.path.parent
        if self.path.exists():  # WAL needs to create its -wal and -shm files next to the store
            return os.access(self.path, os.W_OK) and os.access(parent, os.W_OK)
        return True  # created below; a failure to create it is reported with the path

    def _open(self) -> sqlite3.Connection:
        if self._force_ro or not self._writable():
            return self._open_readonly()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(exc, "cannot be created") from None
        # Two sweeps may open a new store at the same moment. Switching it to WAL takes an exclusive lock,
        # and SQLite can report SQLITE_BUSY for that at once, without waiting its busy timeout: such a
        # "database is locked" is retried (with a short, growing pause) for up to OPEN_WAIT_S.
        deadline, pause = time.monotonic() + OPEN_WAIT_S, 0.01
        while True:
            db = sqlite3.connect(str(self.path), timeout=30.0)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(SCHEMA)
                db.commit()
                db.execute("SELECT COUNT(*) FROM results").fetchone()
                return db
            except sqlite3.OperationalError as exc:
                db.close()
                if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                    raise
            except sqlite3.Error:
                db.close()
                raise
            time.sleep(pause)
            pause = min(2 * pause, 0.5)

    def _open_readonly(self) -> sqlite3.Connection:
        self.readonly = True
        uri = self.path.resolve().as_uri()
        last = None
        # mode=ro needs the WAL's -shm file or a writable folder; immutable=1 reads the file alone
        for query in ("?mode=ro", "?mode=ro&immutable=1"):
            try:
                db = sqlite3.connect(uri + query, uri=True, timeout=30.0)
                db.execute("SELECT COUNT(*) FROM results").fetchone()
                return db
            except sqlite3.OperationalError as exc:
                last = exc
                if "no such table" in str(exc):
                    raise
        raise last

    def _q(self, sql: str, args=()) -> list:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc, "cannot be read") from None

    def _write(self, fn) -> object:
        """Run ``fn(db)`` in one immediate transaction and commit; store errors name the file."""
        if self.readonly:
            raise SweepStoreError(f"sweep store {self.path} is read-only and tasks are left to compute; make it "
                                  "writable or use another store (another --out)")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._db)
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()
            return out
        except sqlite3.DatabaseError as exc:
            raise self._error(exc, "cannot be written") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- results ------------------------------------------------------------------------------------

    def put(self, key: str, fn: str, params: str, seed, status: str,
            result=None, error: str | None = None, elapsed_s: float | None = None, owner: str | None = None) -> None:
        """Insert or replace one task's outcome, drop ``owner``'s claim on it, and commit at once."""
        if status not in ("ok", "error"):
            raise ValueError(f"status must be 'ok' or 'error', got {status!r}")
        row = (key, fn, params, seed, status, None if result is None else json.dumps(result, allow_nan=True),
               error, elapsed_s, time.time())

        def tx(db):
            db.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?)", row)
            if owner is not None:
                db.execute("DELETE FROM claims WHERE key=? AND owner=?", (key, owner))
        self._write(tx)

    def status(self, keys) -> dict[str, str]:
        """{key: status} for the given keys that are stored."""
        return {k: v[0] for k, v in self.outcomes(keys).items()}

    def outcomes(self, keys) -> dict[str, tuple[str, float]]:
        """{key: (status, finished_at)} for the given keys that are stored."""
        out: dict[str, tuple[str, float]] = {}
        keys = list(keys)
        for k in range(0, len(keys), 500):
            chunk = keys[k:k + 500]
            q = f"SELECT key, status, finished_at FROM results WHERE key IN ({','.join('?' * len(chunk))})"
            out.update({key: (s, t) for key, s, t in self._q(q, chunk)})
        return out

    def get(self, key: str) -> dict | None:
        rows = self._q("SELECT status, result, error, elapsed_s FROM results WHERE key=?", (key,))
        if not rows:
            return None
        row = rows[0]
        try:
            result = None if row[1] is None else json.loads(row[1])
        except (ValueError, TypeError) as exc:  # a row written by other code, or edited by hand
            raise self._error(exc, f"holds a result that is not JSON for task {key!r}") from None
        return {"status": row[0], "result": result, "error": row[2], "elapsed_s": row[3]}

    def count(self, status: str | None = None) -> int:
        if status is None:
            return self._q("SELECT COUNT(*) FROM results")[0][0]
        return self._q("SELECT COUNT(*) FROM results WHERE status=?", (status,))[0][0]

    # --- claims -------------------------------------------------------------------------------------

    def owner_id(self, token: str) -> str:
        return f"{self.host}:{os.getpid()}:{token}"

    def _stale(self, host: str, pid: int, heartbeat: float, now: float) -> bool:
        if now - heartbeat > self.lease_s:
            return True
        return host == self.host and pid != os.getpid() and not _pid_alive(pid)

    def claim(self, key: str, owner: str, since: float) -> str:
        """Claim ``key`` for ``owner``: CLAIMED (ours now), DONE (a result finished at or after ``since``
        exists, or an ok one) or BUSY (a live claim of another run)."""
        def tx(db):
            now = time.time()
            res = db.execute("SELECT status, finished_at FROM results WHERE key=?", (key,)).fetchone()
            if res is not None and (res[0] == "ok" or (res[1] or 0.0) >= since):
                return DONE
            cl = db.execute("SELECT owner, host, pid, heartbeat FROM claims WHERE key=?", (key,)).fetchone()
            if cl is not None and cl[0] != owner and not self._stale(cl[1], cl[2], cl[3], now):
                return BUSY
            db.execute("INSERT OR REPLACE INTO claims VALUES (?,?,?,?,?)", (key, owner, self.host, os.getpid(), now))
            return CLAIMED
        return self._write(tx)

    def renew(self, owner: str) -> None:
        """Renew every claim of ``owner`` (its heartbeat)."""
        self._write(lambda db: db.execute("UPDATE claims SET heartbeat=? WHERE owner=?", (time.time(), owner)))

    def release(self, owner: str) -> None:
        """Drop every claim of ``owner`` (a run that stops leaves its unfinished tasks to others)."""
        self._write(lambda db: db.execute("DELETE FROM claims WHERE owner=?", (owner,)))

    def claims(self) -> list[tuple[str, str]]:
        """[(key, owner)] of the claims held now."""
        return [tuple(r) for r in self._q("SELECT key, owner FROM claims")]
