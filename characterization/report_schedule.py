"""The main job's scheduler: which steps run when, on ``jobs`` slots, and the processes that run them.

One policy serves the real run (``run``) and the projection from measured
times (``project``): the steps are kept in their priority order (the order of
``report.STEPS``); whenever a slot is free, the first *ready* step (every step
it reads from, ``after``, finished) starts. An ``exclusive`` step (a benchmark
whose numbers are speed ratios) starts only on an idle machine, and while it
is the first ready step nothing else starts, so nothing loads the machine
while it times. A failed step starts nothing more: the steps running then
finish (their results are kept) and the job stops.

Each step's process gets ``cpus // jobs`` (at least 1) for its ``--workers``
option and, when it shares the machine (``jobs > 1``, not exclusive), one BLAS
/ OpenMP thread, so that two steps side by side never ask for more threads
than there are cores. Its output lines are printed prefixed with its name.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

#: thread limits of a step that shares the machine with another (``jobs > 1``)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Step:
    """One step of the main job.

    name, target (a module, or a ``.py`` script path), args (``{out}`` is the folder), what (one line).
    after: steps whose files this one reads (it starts when they are done; one not selected counts as done).
    exclusive: run alone (a speed benchmark: nothing else loads the machine while it times).
    workers: the step's option for its worker processes (e.g. ``--workers``), given ``cpus // jobs``.
    """

    name: str
    target: str
    args: tuple[str, ...] = ("--out", "{out}")
    what: str = ""
    after: tuple[str, ...] = ()
    exclusive: bool = False
    workers: str | None = None

    def argv(self, out: str, workers: int | None = None) -> list[str]:
        head = [self.target] if self.target.endswith(".py") else ["-m", self.target]
        tail = [self.workers, str(workers)] if self.workers and workers else []
        return [sys.executable, *head, *(a.replace("{out}", out) for a in self.args), *tail]


def workers_per_step(cpus: int, jobs: int) -> int:
    """What a step's ``workers`` option gets when ``jobs`` steps share ``cpus`` cores."""
    return max(1, cpus // jobs)


def check_steps(steps: Sequence[Step]) -> None:
    """ValueError on a duplicate name, an unknown or later ``after`` (the priority order must respect
    the dependencies, so that a ready step never waits behind one that needs it)."""
    seen: set[str] = set()
    names = {s.name for s in steps}
    for s in steps:
        if s.name in seen:
            raise ValueError(f"steps: duplicate name {s.name!r}")
        for d in s.after:
            if d not in names:
                raise ValueError(f"steps: {s.name!r} runs after unknown step {d!r}")
            if d not in seen:
                raise ValueError(f"steps: {s.name!r} runs after {d!r}, which comes later in the list")
        seen.add(s.name)


def next_steps(pending: Sequence[Step], running: Sequence[Step], done: set[str], selected: set[str],
               jobs: int) -> list[Step]:
    """The steps to start now (the policy of the module docstring), in order."""
    start: list[Step] = []
    busy = list(running)
    for s in pending:
        if len(busy) >= jobs or any(b.exclusive for b in busy):
            break
        if any(d in selected and d not in done for d in s.after):
            continue
        if s.exclusive:
            if not busy:
                start.append(s)
            break  # the first ready step is exclusive: the machine drains for it
        start.append(s)
        busy.append(s)
    return start


def project(steps: Sequence[Step], seconds: dict[str, float], jobs: int) -> list[dict]:
    """The schedule ``run`` would follow if each step took ``seconds[name]``: rows with start/end (s)."""
    selected = {s.name for s in steps}
    pending, running, done, now, rows = list(steps), {}, set(), 0.0, []
    while pending or running:
        for s in next_steps(pending, [r[0] for r in running.values()], done, selected, jobs):
            pending.remove(s)
            running[s.name] = (s, now, now + seconds[s.name])
        if not running:
            raise ValueError(f"steps: {pending[0].name!r} can never start")
        name, (s, t0, t1) = min(running.items(), key=lambda kv: kv[1][2])
        del running[name]
        done.add(name)
        now = t1
        rows.append({"step": name, "start_s": t0, "end_s": t1})
    return rows


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during ``run``: ``records`` are the steps that finished before it (their files are written)."""

    def __init__(self, records: list[dict]) -> None:
        super().__init__()
        self.records = records


class _Printer:
    """Lines from several threads, each whole."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __call__(self, text: str, err: bool = False) -> None:
        with self._lock:
            f = sys.stderr if err else sys.stdout
            f.write(text.rstrip("\n") + "\n")
            f.flush()


def _run_one(step: Step, argv: list[str], cwd: Path, env: dict, prefix: str, say: _Printer, done: queue.Queue,
             t_job: float) -> None:
    """Run one step's process, print its lines with ``prefix``, put its record on ``done``."""
    t0 = time.perf_counter()
    try:
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
        assert p.stdout is not None
        for line in p.stdout:
            say(f"{prefix}{line}")
        p.stdout.close()
        # wait4: this child's own CPU (user + system, with the processes it waited for), not the other steps'
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        rec = {"rc": p.returncode, "cpu_s": ru.ru_utime + ru.ru_stime}
    except Exception as e:  # the step could not be run or watched: a failure of this step, never a hang
        rec = {"rc": 127, "cpu_s": 0.0, "error": f"{type(e).__name__}: {e}"}
    t1 = time.perf_counter()
    done.put({"step": step, **rec, "wall_s": t1 - t0, "start_s": t0 - t_job, "end_s": t1 - t_job})


def run(steps: Sequence[Step], out: str, root: Path, jobs: int, cpus: int,
        say: Callable[..., None] | None = None) -> tuple[list[dict], dict | None]:
    """Run ``steps`` on ``jobs`` slots; return (records of the finished steps in finishing order, the
    first failed step's record or None). Progress: ``[k/N] name: started`` and ``... done in``.
    Ctrl-C raises ``Interrupted`` with the records of the steps finished by then."""
    records: list[dict] = []
    try:
        failed = _schedule(steps, out, root, jobs, cpus, say or _Printer(), records)
    except KeyboardInterrupt:
        raise Interrupted(records) from None
    return records, failed


def _schedule(steps: Sequence[Step], out: str, root: Path, jobs: int, cpus: int,
              say: Callable[..., None], records: list[dict]) -> dict | None:
    """``run``'s loop: appends each finished step's record to ``records`` (kept when Ctrl-C stops the
    loop); returns the first failed step's record or None."""
    selected = {s.name for s in steps}
    width = max(len(s.name) for s in steps)
    pending, running, done, failed = list(steps), {}, set(), None
    finished: queue.Queue = queue.Queue()
    t_job = time.perf_counter()
    workers = workers_per_step(cpus, jobs)
    n, k = len(steps), 0
    while pending or running:
        if failed is None:
            for s in next_steps(pending, list(running.values()), done, selected, jobs):
                pending.remove(s)
                k += 1
                env = dict(os.environ)
                if jobs > 1 and not s.exclusive:
                    env.update(ONE_THREAD)
                env["TQDM_DISABLE"] = "1"  # progress bars do not survive line-by-line relaying
                env["PYTHONUNBUFFERED"] = "1"  # its lines arrive as it prints them, not when it ends
                alone = " (alone: a speed benchmark)" if s.exclusive else ""
                say(f"[{k}/{n}] {s.name}: started{alone}: {s.what}")
                t = threading.Thread(target=_run_one, daemon=True,
                                     args=(s, s.argv(out, workers), root, env, f"  {s.name:<{width}} | ", say,
                                           finished, t_job))
                running[s.name] = s
                t.start()
        if not running:
            break
        rec = finished.get()
        s = rec.pop("step")
        del running[s.name]
        rec = {"step": s.name, "what": s.what, "exclusive": s.exclusive, **rec}
        if rec["rc"] == 0:
            done.add(s.name)
            records.append(rec)
            say(f"[{len(done)}/{n} done] {s.name}: finished in {rec['wall_s']:.1f} s (CPU {rec['cpu_s']:.1f} s)")
        else:
            say(f"[{len(done)}/{n} done] {s.name}: FAILED (exit status {rec['rc']}) after {rec['wall_s']:.1f} s"
                + (f": {rec['error']}" if rec.get("error") else ""))
            if failed is None:
                failed = rec
                if running:
                    say(f"report: {s.name} failed; waiting for {', '.join(running)} to finish (no new step starts)")
    return failed
