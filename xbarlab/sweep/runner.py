"""Sweep tasks: grid x seeds -> tasks, run the ones not done (``executors``), collect a tidy frame.

A run claims each task in the store before computing it (``claims``), so
concurrent runs on one store share the work; failed tasks are recomputed by
the next run unless it is told not to.
"""

from __future__ import annotations

import itertools
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..params import check_number
from . import executors
from .claims import WorkQueue
from .keys import canonical_json, function_id, task_key
from .store import ResultStore, SweepStoreError


class OversubscribedWarning(RuntimeWarning):
    """More local sweep workers than CPU cores."""


@dataclass(frozen=True)
class Task:
    """One call ``fn(params, seed)``; ``version`` lets a caller invalidate old results."""

    fn: Callable
    params: dict
    seed: int | None = None
    version: str = ""
    fid: str = field(init=False)
    key: str = field(init=False)

    def __post_init__(self) -> None:
        fid = function_id(self.fn)
        object.__setattr__(self, "fid", fid)
        object.__setattr__(self, "key", task_key(fid, self.params, self.seed, self.version))


def grid(**axes: Sequence) -> list[dict]:
    """Cartesian product of named axes: ``grid(n=[8, 16], g=["min", "max"])`` -> 4 dicts."""
    names = list(axes)
    for name in names:
        if isinstance(axes[name], (str, bytes)) or not hasattr(axes[name], "__iter__"):
            raise ValueError(f"grid axis {name!r} must be a sequence of values, got {axes[name]!r}")
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(axes[n]) for n in names))]


def make_tasks(fn: Callable, points: Iterable[dict], seeds: Iterable = (None,), version: str = "") -> list[Task]:
    """Tasks for every (point, seed); duplicates (same key) are kept once."""
    seen, tasks = set(), []
    seeds = list(seeds)
    for p in points:
        for s in seeds:
            t = Task(fn, dict(p), None if s is None else int(s), version)
            if t.key not in seen:
                seen.add(t.key)
                tasks.append(t)
    return tasks


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_tasks(tasks: Sequence[Task], store: str | Path | ResultStore, *, max_workers: int = 2,
              timeout_s: float | None = None, scheduler: str | None = None, progress: bool = True,
              retry_failed: bool = True, desc: str = "sweep") -> dict:
    """Run the tasks not yet done in the store; return counts {total, skipped, ok, failed}.

    ``scheduler``: None for local processes, ``"inline"`` to run in this
    process (no parallelism, no timeout; for debugging), or the address of a
    dask.distributed scheduler (``"tcp://host:8786"``), or a
    ``distributed.Client``. Failed tasks are recomputed unless
    ``retry_failed=False``. Tasks a concurrent run on the same store computes
    are waited for, not recomputed; they count as skipped, as cached ones do.
    At most ``min(max_workers, tasks left)`` workers are started.
    """
    if isinstance(max_workers, bool) or not isinstance(max_workers, (int, np.integer)) or max_workers < 1:
        raise ValueError(f"max_workers must be an integer >= 1, got {max_workers!r}")
    if timeout_s is not None:
        t = check_number("timeout_s", timeout_s, "seconds")
        if not (t > 0 and math.isfinite(t)):
            raise ValueError(f"timeout_s must be a finite number > 0 seconds, got {timeout_s!r}")
        timeout_s = t
    executors.check_scheduler(scheduler)
    since = time.time()
    own = not isinstance(store, ResultStore)
    st = ResultStore(store) if own else store
    try:
        have = st.status(t.key for t in tasks)
        todo = [t for t in tasks if t.key not in have or (retry_failed and have[t.key] != "ok")]
        counts = {"total": len(tasks), "skipped": len(tasks) - len(todo), "ok": 0, "failed": 0}
        if not todo:
            return counts
        if st.readonly:
            raise SweepStoreError(f"sweep store {st.path} is read-only and {len(todo)} of its {len(tasks)} tasks are "
                                  "not done; make it writable or use another store (another --out)")
        workers = min(int(max_workers), len(todo))
        if scheduler is None and workers > _cores():
            warnings.warn(f"{workers} sweep workers on {_cores()} CPU cores: they will compete for the cores",
                          OversubscribedWarning, stacklevel=2)
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=desc, disable=not progress, leave=False)

        def done_elsewhere(task: Task) -> None:
            counts["skipped"] += 1
            bar.update(1)

        queue = WorkQueue(todo, st, since, done_elsewhere)

        def record(task: Task, ok: bool, value, elapsed=None):
            pj = canonical_json(task.params)
            if ok:
                st.put(task.key, task.fid, pj, task.seed, "ok", result=value, elapsed_s=elapsed, owner=queue.owner)
                counts["ok"] += 1
            else:
                st.put(task.key, task.fid, pj, task.seed, "error", error=value, elapsed_s=elapsed, owner=queue.owner)
                counts["failed"] += 1
            bar.update(1)
            bar.set_postfix(failed=counts["failed"], refresh=False)

        try:
            with queue.heartbeat():
                if scheduler == "inline":
                    executors.run_inline(queue, record)
                elif scheduler is None:
                    executors.run_local(queue, record, workers, timeout_s)
                else:
                    executors.run_dask(queue, record, workers, timeout_s, scheduler)
        finally:
            bar.close()
        return counts
    finally:
        if own:
            st.close()


def collect(tasks: Sequence[Task], store: str | Path | ResultStore):
    """Tidy DataFrame of the tasks' stored outcomes: params, seed, status, error, elapsed_s, result fields."""
    import pandas as pd

    own = not isinstance(store, ResultStore)
    st = ResultStore(store) if own else store
    frames = []
    try:
        for t in tasks:
            rec = st.get(t.key)
            if rec is None:
                continue
            base = {**t.params, "seed": t.seed, "status": rec["status"], "error": rec["error"],
                    "elapsed_s": rec["elapsed_s"]}
            res = rec["result"] or {}
            clash = [k for k in res if k in base]
            if clash:  # (a result field "error" took the column of the failed tasks' messages: a mixed column)
                raise ValueError(f"task {t.fid} returned field(s) {clash} named like the sweep's own columns "
                                 f"(its params, seed, status, error, elapsed_s): rename them in the task")
            if any(isinstance(v, list) for v in res.values()):
                df = pd.DataFrame(res)
                for k, v in base.items():
                    df[k] = [v] * len(df)
                frames.append(df[[*base, *[c for c in df.columns if c not in base]]])
            else:
                frames.append(pd.DataFrame([{**base, **res}]))
    finally:
        if own:
            st.close()
    if not frames:
        return pd.DataFrame(columns=[*tasks[0].params, "seed", "status", "error", "elapsed_s"] if tasks else [])
    return pd.concat(frames, ignore_index=True)


def run_sweep(fn: Callable, points: Iterable[dict], seeds: Iterable = (None,), *, store: str | Path,
              max_workers: int = 2, timeout_s: float | None = None, scheduler=None, progress: bool = True,
              retry_failed: bool = True, version: str = "", desc: str | None = None):
    """Run ``fn(params, seed)`` over points x seeds with caching; return the tidy DataFrame.

    The frame also carries ``df.attrs["counts"]`` = {total, skipped, ok, failed} of this call.
    """
    tasks = make_tasks(fn, points, seeds, version)
    counts = run_tasks(tasks, store, max_workers=max_workers, timeout_s=timeout_s, scheduler=scheduler,
                       progress=progress, retry_failed=retry_failed, desc=desc or fn.__name__)
    df = collect(tasks, store)
    df.attrs["counts"] = counts
    return df
