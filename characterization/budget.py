"""Time budgets for the timing runs of the report, so that a slower machine never fails it.

A timing script (``characterization.fcm_speed``, ``benchmarks/bench_g_nonideal.py``)
times ngspice on decks whose run time grows fast with the crossbar size (one
128x128 ``.op`` takes about a minute on one machine and over two on
another). Each such point gets a wall-clock budget (``--budget-s``): every
ngspice run of the point gets what is left of the budget as its timeout. A
point that does not fit is reported as ``not run: over the N s budget``
with the reason, and the script still exits 0. Any other failure (ngspice
missing, crashing, rejecting the deck) is raised as before: only ngspice's
timeout (``xbarlab.errors.SpiceTimeoutError``) counts as "over the budget".
"""

from __future__ import annotations

import argparse
import math
import time

DEFAULT_BUDGET_S = 300.0


class OverBudget(Exception):
    """A timing point did not fit its budget; ``status`` and ``reason`` go into the report."""

    def __init__(self, budget_s: float, reason: str) -> None:
        self.budget_s = float(budget_s)
        self.reason = reason
        super().__init__(f"{self.status} ({reason})")

    @property
    def status(self) -> str:
        return not_run_status(self.budget_s)


def not_run_status(budget_s: float) -> str:
    return f"not run: over the {budget_s:g} s budget"


def check_budget(budget_s) -> float:
    """``budget_s`` as float; ValueError naming budget_s unless finite and > 0 seconds."""
    try:
        v = float(budget_s)
    except (TypeError, ValueError):
        raise ValueError(f"budget_s must be a number of seconds, got {budget_s!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"budget_s must be finite and > 0 seconds, got {budget_s!r}")
    return v


def _budget_type(text: str) -> float:
    try:
        return check_budget(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}") from None


def add_budget_argument(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--budget-s", type=_budget_type, default=DEFAULT_BUDGET_S, metavar="S",
                   help=f"wall-clock budget of {what}, seconds (default {DEFAULT_BUDGET_S:g}); a point that does "
                        "not fit is reported as 'not run: over the S s budget' and the script still succeeds")


def timed_runs(run, items, budget_s: float) -> list[float]:
    """Seconds taken by ``run(item, timeout_s)`` for each item, all within ``budget_s`` of wall clock.

    Each call gets what is left of the budget as ``timeout_s`` (it passes it
    on as ngspice's timeout). OverBudget when the budget is spent: no time is
    left before a run, or a run raised SpiceTimeoutError (ngspice was stopped
    at its timeout). Every other SpiceError (a crash, a rejected deck), a
    missing ngspice and every other error propagate.
    """
    from xbarlab.errors import SpiceTimeoutError

    budget_s = check_budget(budget_s)
    items = list(items)
    start = time.perf_counter()
    times = []
    for k, item in enumerate(items):
        left = budget_s - (time.perf_counter() - start)
        if left <= 0:
            raise OverBudget(budget_s, f"the first {k} of {len(items)} runs took the whole budget")
        t = time.perf_counter()
        try:
            run(item, left)
        except SpiceTimeoutError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise OverBudget(budget_s, f"run {k + 1} of {len(items)} stopped at the budget: {first}") from None
        times.append(time.perf_counter() - t)
    return times
