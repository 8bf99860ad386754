"""Where a run's tasks execute: this process, local worker processes, or a dask.distributed cluster.

Each executor takes tasks from a ``WorkQueue`` (only tasks this run has
claimed) and hands every outcome to ``record(task, ok, value, elapsed_s)``.
Parallelism is bounded: at most ``workers`` tasks are in flight, so a task
starts when it is submitted and its timeout is measured from then. A local
task past its timeout is stopped by killing the worker processes (the other
in-flight tasks are resubmitted); on Dask the future is cancelled and
recorded, but a task already running on a worker thread cannot be killed
there. A worker that dies (segfault, OOM kill) gets its task one retry; a
second death records the task as failed. Local workers die with the
process that started them (``PR_SET_PDEATHSIG`` on Linux, and a thread
that watches the parent pid everywhere), and so do the ngspice runs they
start (``xbarlab.lifetime``). Killing workers removes the private folders
their ngspice runs made (named after the worker's pid, so found even
where ngspice died first, as on a SIGTERM to the whole process group).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable

import numpy as np

from ..blas import one_blas_thread
from ..lifetime import remove_run_folders, set_parent_death_signal

POLL_S = 0.2
PARENT_POLL_S = 0.5  # how often a worker checks that its parent is alive
CONNECT_TIMEOUT_S = 5.0  # to reach a dask scheduler
_ADDRESS = re.compile(r"^(?:(?:tcp|tls|ws|wss|ucx)://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.\-_]*):(\d{1,5})/?$")


def jsonable(obj: Any) -> Any:
    """A JSON-ready copy of a task's result (numpy arrays and scalars unwrapped)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _call(fn: Callable, params: dict, seed):
    """Worker side: run one task, return (result, seconds)."""
    t0 = time.perf_counter()
    res = fn(dict(params), seed)
    if not isinstance(res, dict):
        raise TypeError(f"sweep function must return a dict, got {type(res).__name__}")
    out = jsonable(res)
    try:  # here, so that the task fails (and is recorded), not the store's put in the sweep's own process
        json.dumps(out, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"sweep function must return JSON-ready values (numbers, strings, lists, dicts, "
                        f"numpy arrays): {exc}") from None
    return out, time.perf_counter() - t0


def err_text(exc: BaseException) -> str:
    msg = str(exc).strip()
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


# --- this process -------------------------------------------------------------------------------------

def run_inline(queue, record) -> None:
    while not queue.empty:
        task = queue.take()
        if task is None:  # the rest is being computed by another run
            time.sleep(POLL_S)
            continue
        t0 = time.perf_counter()
        try:
            res, el = _call(task.fn, task.params, task.seed)
        except Exception as exc:  # noqa: BLE001 - a failed point is recorded, the sweep goes on
            record(task, False, err_text(exc), time.perf_counter() - t0)
        else:
            record(task, True, res, el)


# --- local worker processes ---------------------------------------------------------------------------

def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(1)


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make this (worker) process exit when ``parent_pid``, its parent (None: the parent it has now),
    dies, even by ``kill -9``."""
    if parent_pid is None:
        parent_pid = os.getppid()
    set_parent_death_signal(signal.SIGKILL)  # (Linux; the watcher thread below does it everywhere)
    if os.getppid() != parent_pid:  # it died before the line above
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="xbarlab-parent-watch", daemon=True).start()


def _no_interrupt(signum, frame) -> None:
    """A worker's SIGINT handler: nothing. Ctrl-C reaches the terminal's whole process group, and the sweep's
    own process stops the run and kills its workers (``_kill_pool``); a worker waiting for its next task
    printed a KeyboardInterrupt traceback. A handler, not SIG_IGN, which an ngspice child would inherit."""


def _worker_init(parent_pid: int | None) -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, _no_interrupt)
    # a forked worker inherits the CLI's SIGTERM handler (xbarlab.cli: it raises KeyboardInterrupt), which in a
    # task made the task fail; a worker sent SIGTERM ends, and the sweep's own process stops the run
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # one BLAS thread per worker process: the sweep's parallelism is its processes, and BLAS pools
    # of their own in each would oversubscribe the cores (xbarlab.blas)
    one_blas_thread()


def _pool(workers: int):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver workers are children of the fork server (it exits when this process does): they
    # watch the parent they find, the others this process
    fork_server = multiprocessing.get_start_method(allow_none=False) == "forkserver"
    return ProcessPoolExecutor(max_workers=workers, initializer=_worker_init,
                               initargs=(None if fork_server else os.getpid(),))


def _descendants(pid: int) -> list:
    """The processes a worker started (an ngspice run), which would outlive it."""
    try:
        import psutil  # a dependency of dask.distributed

        return psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - gone already, or no psutil
        return []


def _kill_pool(ex) -> None:
    """Stop a ProcessPoolExecutor now, killing its worker processes and what they started, and removing the
    private folders of their ngspice runs (a timed-out or interrupted task left one behind every time)."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    pids = []
    for p in procs:
        pids.append(p.pid)
        for child in _descendants(p.pid):
            pids.append(child.pid)
            with contextlib.suppress(Exception):
                child.kill()
        try:
            p.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.join(timeout=5)
    remove_run_folders(pids)


def run_local(queue, record, workers: int, timeout_s: float | None) -> None:
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    deaths: dict[str, int] = {}  # task key -> worker deaths while it ran alone
    # tasks in flight when the pool broke beside others: any of them may have killed it, so each reruns alone
    # (a crash then names it; the innocent ones finish) instead of all being charged with the death
    suspects: set[str] = set()
    inflight: dict = {}  # future -> (task, started)
    ex = _pool(workers)
    try:
        while not queue.empty or inflight:
            alone = any(t.key in suspects for t, _ in inflight.values())
            while not alone and len(inflight) < workers and (task := queue.take()) is not None:
                if task.key in suspects and inflight:
                    queue.put_back(task)  # handed out again once the tasks in flight are done
                    break
                fut = ex.submit(_call, task.fn, task.params, task.seed)
                inflight[fut] = (task, time.perf_counter())
                alone = task.key in suspects
            if not inflight:  # the rest is being computed by another run
                time.sleep(POLL_S)
                continue
            done, _ = wait(list(inflight), timeout=POLL_S, return_when=FIRST_COMPLETED)
            broken = [f for f in done if isinstance(f.exception(), BrokenProcessPool)]
            shared = len(inflight) > 1  # (every task in flight sees the break, not only the one that caused it)
            for fut in done:
                task, t0 = inflight.pop(fut)
                try:
                    res, el = fut.result()
                except BrokenProcessPool:
                    if shared:
                        suspects.add(task.key)
                        queue.put_back(task)
                    elif deaths.get(task.key, 0) >= 1:
                        record(task, False, "worker process died (twice) while running this task alone",
                               time.perf_counter() - t0)
                    else:
                        deaths[task.key] = deaths.get(task.key, 0) + 1
                        queue.put_back(task)
                except Exception as exc:  # noqa: BLE001
                    record(task, False, err_text(exc), time.perf_counter() - t0)
                else:
                    record(task, True, res, el)
            now = time.perf_counter()
            late = [f for f, (t, t0) in inflight.items() if timeout_s is not None and now - t0 > timeout_s]
            if broken or late:
                for fut in late:
                    task, t0 = inflight.pop(fut)
                    record(task, False, f"TimeoutError: task ran past its timeout of {timeout_s} s", now - t0)
                for task, _t0 in inflight.values():
                    if broken:  # (still running when the pool broke beside the others: may be the cause)
                        suspects.add(task.key)
                    queue.put_back(task)  # innocent of a timeout: resubmit
                inflight.clear()
                _kill_pool(ex)
                ex = _pool(workers)
    except BaseException:
        _kill_pool(ex)
        raise
    ex.shutdown(wait=True)


# --- dask.distributed ---------------------------------------------------------------------------------

def check_scheduler(scheduler) -> None:
    """Refuse a scheduler that is not None, ``"inline"``, a ``distributed.Client`` or a well-formed
    address (``tcp://host:8786``, ``host:8786``, ``tls://...``, ``inproc://...``), before connecting."""
    if scheduler is None or scheduler == "inline":
        return
    if "distributed" in sys.modules and isinstance(scheduler, sys.modules["distributed"].Client):
        return
    ok = isinstance(scheduler, str) and (scheduler.startswith("inproc://") and len(scheduler) > 9
                                         or (_ADDRESS.match(scheduler) is not None
                                             and 0 < int(_ADDRESS.match(scheduler).group(2)) < 65536))
    if not ok:
        raise ValueError(f"scheduler must be a dask scheduler address like tcp://host:8786 (or None for local "
                         f"processes), got {scheduler!r}")


def connect(scheduler):
    """A ``distributed.Client`` for the address, or a one-line ConnectionError within a few seconds."""
    check_scheduler(scheduler)
    m = _ADDRESS.match(scheduler)
    if m is not None:  # probe the port first: distributed retries for its own long timeout
        host = m.group(1).strip("[]")
        try:
            socket.create_connection((host, int(m.group(2))), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise ConnectionError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
    from distributed import Client

    made: list = []

    class _Client(Client):  # keeps hold of itself, so that a failed start can be torn down here
        def __init__(self, *args, **kwargs):
            made.append(self)
            super().__init__(*args, **kwargs)

    try:
        return _Client(scheduler, set_as_default=False, timeout=CONNECT_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - reachable, but not a dask scheduler
        for client in made:  # else its __del__ waits 2 x the timeout and prints a traceback
            client.status = "closed"
            with contextlib.suppress(Exception):
                client._loop_runner.stop()
        raise ConnectionError(f"cannot connect to the dask scheduler at {scheduler}: {err_text(exc)}") from None


def run_dask(queue, record, workers: int, timeout_s: float | None, scheduler) -> None:
    from distributed import Client

    client = scheduler if isinstance(scheduler, Client) else connect(scheduler)
    own = client is not scheduler
    inflight: dict = {}
    try:
        while not queue.empty or inflight:
            while len(inflight) < workers and (task := queue.take()) is not None:
                fut = client.submit(_call, task.fn, task.params, task.seed, pure=False, key=f"xbarlab-{task.key}")
                inflight[fut] = (task, time.perf_counter())
            done = [f for f in inflight if f.done()]  # polled: distributed.wait raises on timeout
            if not done:
                time.sleep(0.01 if inflight else POLL_S)
            for fut in done:
                task, t0 = inflight.pop(fut)
                try:
                    val, el = fut.result()
                except Exception as exc:  # noqa: BLE001
                    record(task, False, err_text(exc), time.perf_counter() - t0)
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
