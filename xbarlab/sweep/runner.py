"""Running sweep tasks: local processes (default) or a dask.distributed cluster.

Parallelism is bounded: at most ``max_workers`` tasks are in flight, so a
task starts when it is submitted and its per-task timeout is measured from
then. A local task past its timeout is stopped by killing the worker
processes (the other in-flight tasks are resubmitted); on Dask the future is
cancelled and recorded, but a task already running on a worker thread cannot
be killed there. A worker that dies (segfault, OOM kill) gets its task one
retry; a second death records the task as failed.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..blas import one_blas_thread
from .keys import canonical_json, function_id, task_key
from .store import ResultStore

POLL_S = 0.2


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


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _call(fn: Callable, params: dict, seed):
    """Worker side: run one task, return (result, seconds)."""
    t0 = time.perf_counter()
    res = fn(dict(params), seed)
    if not isinstance(res, dict):
        raise TypeError(f"sweep function must return a dict, got {type(res).__name__}")
    return _jsonable(res), time.perf_counter() - t0


def _err_text(exc: BaseException) -> str:
    msg = str(exc).strip()
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def run_tasks(tasks: Sequence[Task], store: str | Path | ResultStore, *, max_workers: int = 2,
              timeout_s: float | None = None, scheduler: str | None = None, progress: bool = True,
              retry_failed: bool = False, desc: str = "sweep") -> dict:
    """Run the tasks not yet in the store; return counts {total, skipped, ok, failed}.

    ``scheduler``: None for local processes, ``"inline"`` to run in this
    process (no parallelism, no timeout; for debugging), or the address of a
    dask.distributed scheduler (``"tcp://host:8786"``), or a
    ``distributed.Client``.
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers!r}")
    if timeout_s is not None and not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ValueError(f"timeout_s must be a finite number > 0 seconds, got {timeout_s!r}")
    own = not isinstance(store, ResultStore)
    st = ResultStore(store) if own else store
    try:
        have = st.status(t.key for t in tasks)
        todo = [t for t in tasks if t.key not in have or (retry_failed and have[t.key] != "ok")]
        counts = {"total": len(tasks), "skipped": len(tasks) - len(todo), "ok": 0, "failed": 0}
        if not todo:
            return counts
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=desc, disable=not progress, leave=False)

        def record(task: Task, ok: bool, value, elapsed=None):
            pj = canonical_json(task.params)
            if ok:
                st.put(task.key, task.fid, pj, task.seed, "ok", result=value, elapsed_s=elapsed)
                counts["ok"] += 1
            else:
                st.put(task.key, task.fid, pj, task.seed, "error", error=value, elapsed_s=elapsed)
                counts["failed"] += 1
            bar.update(1)
            bar.set_postfix(failed=counts["failed"], refresh=False)

        try:
            if scheduler == "inline":
                _run_inline(todo, record)
            elif scheduler is None:
                _run_local(todo, record, max_workers, timeout_s)
            else:
                _run_dask(todo, record, max_workers, timeout_s, scheduler)
        finally:
            bar.close()
        return counts
    finally:
        if own:
            st.close()


def _run_inline(todo, record) -> None:
    for task in todo:
        t0 = time.perf_counter()
        try:
            res, el = _call(task.fn, task.params, task.seed)
        except Exception as exc:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
            record(task, False, _err_text(exc), time.perf_counter() - t0)
        else:
            record(task, True, res, el)


def _kill_pool(ex) -> None:
    """Stop a ProcessPoolExecutor now, killing its worker processes."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    for p in procs:
        try:
            p.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.join(timeout=5)


def _pool(max_workers: int):
    from concurrent.futures import ProcessPoolExecutor

    # one BLAS thread per worker process: the sweep's parallelism is its processes, and BLAS pools
    # of their own in each would oversubscribe the cores (xbarlab.blas)
    return ProcessPoolExecutor(max_workers=max_workers, initializer=one_blas_thread)


def _run_local(todo, record, max_workers: int, timeout_s: float | None) -> None:
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    pending = deque((t, 0) for t in todo)  # (task, deaths so far)
    inflight: dict = {}  # future -> (task, deaths, started)
    ex = _pool(max_workers)
    try:
        while pending or inflight:
            while pending and len(inflight) < max_workers:
                task, deaths = pending.popleft()
                fut = ex.submit(_call, task.fn, task.params, task.seed)
                inflight[fut] = (task, deaths, time.perf_counter())
            done, _ = wait(list(inflight), timeout=POLL_S, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                task, deaths, t0 = inflight.pop(fut)
                try:
                    res, el = fut.result()
                except BrokenProcessPool:
                    broken = True
                    if deaths >= 1:
                        record(task, False, "worker process died (twice) while running this task",
                               time.perf_counter() - t0)
                    else:
                        pending.appendleft((task, deaths + 1))
                except Exception as exc:  # noqa: BLE001
                    record(task, False, _err_text(exc), time.perf_counter() - t0)
                else:
                    record(task, True, res, el)
            now = time.perf_counter()
            late = [f for f, (t, d, t0) in inflight.items() if timeout_s is not None and now - t0 > timeout_s]
            if broken or late:
                for fut in late:
                    task, deaths, t0 = inflight.pop(fut)
                    record(task, False, f"TimeoutError: task ran past its timeout of {timeout_s} s", now - t0)
                for fut, (task, deaths, t0) in inflight.items():
                    pending.appendleft((task, deaths))  # innocent: resubmit
                inflight.clear()
                _kill_pool(ex)
                ex = _pool(max_workers)
    except BaseException:
        _kill_pool(ex)
        raise
    ex.shutdown(wait=True)


def _run_dask(todo, record, max_workers: int, timeout_s: float | None, scheduler) -> None:
    from distributed import Client

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler, set_as_default=False)
    own = client is not scheduler
    pending = deque(todo)
    inflight: dict = {}
    try:
        while pending or inflight:
            while pending and len(inflight) < max_workers:
                task = pending.popleft()
                fut = client.submit(_call, task.fn, task.params, task.seed, pure=False, key=f"xbarlab-{task.key}")
                inflight[fut] = (task, time.perf_counter())
            done = [f for f in inflight if f.done()]  # polled: distributed.wait raises on timeout
            if not done:
                time.sleep(0.01)
            else:
                for fut in done:
                    task, t0 = inflight.pop(fut)
                    try:
                        val, el = fut.result()
                    except Exception as exc:  # noqa: BLE001
                        record(task, False, _err_text(exc), time.perf_counter() - t0)
                    else:
                        record(task, True, val, el)
            now = time.perf_counter()
            for fut in [f for f, (t, t0) in inflight.items() if timeout_s is not None and now - t0 > timeout_s]:
                task, t0 = inflight.pop(fut)
                fut.cancel()
                record(task, False, f"TimeoutError: task ran past its timeout of {timeout_s} s (cancelled on the cluster)",
                       now - t0)
    finally:
        for fut in inflight:
            fut.cancel()
        if own:
            client.close()


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
            if any(isinstance(v, list) for v in res.values()):
                df = pd.DataFrame(res)
                for k, v in base.items():
                    if k not in df.columns:
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
              retry_failed: bool = False, version: str = "", desc: str | None = None):
    """Run ``fn(params, seed)`` over points x seeds with caching; return the tidy DataFrame.

    The frame also carries ``df.attrs["counts"]`` = {total, skipped, ok, failed} of this call.
    """
    tasks = make_tasks(fn, points, seeds, version)
    counts = run_tasks(tasks, store, max_workers=max_workers, timeout_s=timeout_s, scheduler=scheduler,
                       progress=progress, retry_failed=retry_failed, desc=desc or fn.__name__)
    df = collect(tasks, store)
    df.attrs["counts"] = counts
    return df
