"""Resumable parameter sweeps: grid x seeds -> tasks -> an on-disk result store.

A *task* is one call ``fn(params, seed)`` of a module-level function. Its key
is the sha256 of the canonical JSON of (function identity, version, params,
seed), so a result is found again whatever order the grid is written in.
Every finished task is committed to a SQLite store at once (WAL mode), so a
rerun skips finished points and an interrupted sweep (Ctrl-C, ``kill -9``)
loses nothing but the tasks that were running; its workers die with it. A
task that raises or runs past its timeout is recorded with its error; the
sweep goes on, and the next run retries it. Concurrent runs on one store
claim tasks before computing them, so each task is computed once.

    from xbarlab.sweep import grid, run_sweep
    df = run_sweep(my_task, grid(n=[8, 16], r=[1.0, 2.5]), seeds=range(3),
                   store="reports/.cache/my.sweep.sqlite", max_workers=2)

``fn`` returns a dict: scalars give one row; equal-length lists give one row
per element (scalars are repeated). The DataFrame has the parameters and
``seed`` as columns, then the result fields.

This package is not imported by ``import xbarlab``; pandas, tqdm and
dask.distributed are imported only when a sweep runs.
"""

from __future__ import annotations

from .executors import check_scheduler
from .keys import canonical_json, function_id, task_key
from .runner import OversubscribedWarning, Task, collect, grid, make_tasks, run_sweep, run_tasks
from .store import ResultStore, SweepStoreError

__all__ = [
    "OversubscribedWarning",
    "ResultStore",
    "SweepStoreError",
    "Task",
    "canonical_json",
    "check_scheduler",
    "collect",
    "function_id",
    "grid",
    "make_tasks",
    "run_sweep",
    "run_tasks",
    "task_key",
]
