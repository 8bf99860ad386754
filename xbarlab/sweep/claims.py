"""The work a run takes from a shared store: claim a task before computing it, renew the claims.

Two runs on one store each take the next unclaimed task, so they split the
work and each task is computed once; a task another live run is computing
is waited for, and taken over when that run's claim goes stale (it died).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from typing import Callable, Sequence

from .store import BUSY, CLAIMED, DONE, ResultStore

RECHECK_S = 0.5  # how often the tasks claimed by other runs are looked at again


class WorkQueue:
    """Tasks of one run, handed out only once this run holds their claim.

    ``since``: results finished at or after this time (``time.time()``) count as
    done, older failed ones are recomputed. ``done_elsewhere(task)`` is called for
    a task another run finished.
    """

    def __init__(self, tasks: Sequence, store: ResultStore, since: float, done_elsewhere: Callable):
        self.store = store
        self.owner = store.owner_id(secrets.token_hex(4))
        self.since = since
        self.done_elsewhere = done_elsewhere
        self.pending = deque(tasks)
        self.waiting: list = []  # claimed by another live run
        self._checked = 0.0

    @property
    def empty(self) -> bool:
        return not self.pending and not self.waiting

    def take(self):
        """The next task claimed for this run, or None when none is ready now (others hold the rest)."""
        if not self.pending and self.waiting and time.monotonic() - self._checked > RECHECK_S:
            self._checked = time.monotonic()
            self.pending.extend(self.waiting)
            self.waiting = []
        while self.pending:
            task = self.pending.popleft()
            got = self.store.claim(task.key, self.owner, self.since)
            if got == CLAIMED:
                return task
            if got == DONE:
                self.done_elsewhere(task)
            else:
                assert got == BUSY
                self.waiting.append(task)
        return None

    def put_back(self, task) -> None:
        """A task this run still holds, to be handed out again first (its worker was stopped)."""
        self.pending.appendleft(task)

    def heartbeat(self) -> "Heartbeat":
        return Heartbeat(self.store.path, self.owner, self.store.lease_s / 6.0)


class Heartbeat:
    """A thread that renews an owner's claims every ``interval_s`` (own connection), and drops
    them when the block ends."""

    def __init__(self, path, owner: str, interval_s: float):
        self.path, self.owner, self.interval_s = path, owner, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="xbarlab-sweep-heartbeat", daemon=True)

    def _beat(self) -> None:
        st = ResultStore(self.path)
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    st.renew(self.owner)
                except Exception:  # noqa: BLE001 - a busy store: renew at the next beat
                    pass
        finally:
            st.close()

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        with ResultStore(self.path) as st:
            st.release(self.owner)
