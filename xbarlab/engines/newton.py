"""Newton's method for the node equations of ``engines.nonlinear``: damped Newton, and source stepping if it fails.

``iterate``: Newton on F(u) = 0 (J du = -F, one sparse LU, SuperLU, per iteration) from a start u0,
each step limited to ``max_step_v`` on any unknown and halved until the largest |F| falls (line
search, 40 halvings at most). Converged: a full step below ``tol`` times the voltage scale, or a step
below ``ROUNDOFF_STEP`` times it that cannot lower a residual already at its rounding floor (the step
is then taken); the iteration cap, a line search that fails with a larger step, a singular Jacobian
or a non-finite step raise ``NewtonConvergenceError``, never a partial answer.

``solve``: ``iterate`` from 0 V; if that raises, ``source_stepping`` (continuation, as SPICE does):
the inputs scaled by lambda, first 1/64, each stage solved by ``iterate`` from the tangent prediction
u + d_lambda du/d_lambda at the last solved stage (J du/d_lambda = -dF/d_lambda, one more LU; 0 V and
the linear circuit's tangent at lambda = 0). Lambda's step doubles after a stage solved in
``STAGE_ITER // 2`` iterations or fewer, stays after a slower one and halves after one that failed
(``STAGE_ITER`` iterations at most). The stages before the last are held to ``STAGE_TOL``; the last,
at the inputs themselves, to ``tol`` and ``ROUNDOFF_STEP`` as the plain iteration, so the answer meets
the same criteria. If stepping fails too (its stages together take ``max_iter`` iterations at most,
lambda's step at least ``MIN_STAGE``), the error names both failures.

Why the plain iteration can fail: it starts at 0 V, so a cell between a driven row at V and a free
column starts at b V, far above its answer when the column must rise towards V; Newton on an
exponential from above moves about 1/b per step, so it takes about b V + 5 iterations (measured: a
single row at 3 V, b = 40 /V, 125; the cap is 100); no line search failed in some 6000 draws.
Where b V reaches ~710 at the start, sinh overflows and the first step is not finite. The stages of
lambda's path start close to their answers: measured over 67 draws the plain iteration failed (b 30-80
/V, |V| 1.5-8 V, up to 8 x 8, spreads to 9.9e6), 36 stepping iterations on average, 59 at most, all
within 2.2e-16 of a 50-digit solve (``tests/core/test_nonlinear_accuracy.py``). Where the plain
iteration converges nothing changes (the answer is bit for bit the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import splu

from ..errors import XbarlabError

# A full Newton step that no longer lowers the residual because the residual is at its rounding floor
# (wire currents of ~1e-1 A cancel to ~1e-17 A) is still taken when it is this small relative to the inputs.
ROUNDOFF_STEP = 1e-9
FIRST_STAGE = 1 / 64  # source stepping: lambda's first step
MIN_STAGE = 1 / 4096  # source stepping gives up when lambda's step must fall below this
GROW = 2.0  # lambda's step after a stage that converged in STAGE_ITER // 2 iterations or fewer
STAGE_ITER = 20  # iterations of one stage at most (fewer if max_iter is smaller)
TANGENT_STEP = 1e-6  # the difference in lambda of the predictor's tangent
STAGE_TOL = 1e-9  # convergence of the stages before the last (the last: NewtonSettings.tol)


class NewtonConvergenceError(XbarlabError, ArithmeticError):
    """The Newton iteration did not converge; no answer is returned."""


@dataclass(frozen=True)
class NewtonSettings:
    """Numerical settings of the Newton solve (not physics).

    Attributes:
        max_iter: iteration cap of the plain iteration, and again of the source stepping that follows
            its failure (its stages together), >= 1.
        tol: convergence when a full Newton step moves no voltage by more than
            ``tol`` times the largest input |V| (dimensionless), in (0, 1e-3].
        max_step_v: largest change of any node voltage in one step, volt, > 0.
    """

    max_iter: int = 100
    tol: float = 1e-13
    max_step_v: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if not (isinstance(self.tol, (int, float)) and 0 < self.tol <= 1e-3):
            raise ValueError(f"tol must be a number in (0, 1e-3], got {self.tol!r}")
        step = self.max_step_v  # True would be read as a 1 V step
        if isinstance(step, bool) or not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
            raise ValueError(f"max_step_v must be a finite number > 0 volt, got {self.max_step_v!r}")


def iterate(residual, u, v_scale: float, s: NewtonSettings, tol: float, max_iter: int, count=None):
    """The converged unknowns from the start ``u``; ``residual(u, jacobian)`` gives (F, J or None).
    ``count`` (a one-element list), if given, is increased by each iteration taken."""
    F, J = residual(u, True)
    for it in range(max_iter):
        if count is not None:
            count[0] += 1
        try:
            step = -splu(J, permc_spec="MMD_AT_PLUS_A").solve(F)
        except RuntimeError as exc:  # singular Jacobian
            raise NewtonConvergenceError(f"Newton iteration {it}: singular Jacobian ({exc})") from None
        if not np.all(np.isfinite(step)):
            raise NewtonConvergenceError(f"Newton iteration {it}: non-finite step")
        big = float(np.abs(step).max()) if step.size else 0.0
        if big <= tol * v_scale:
            return u + step
        scale = min(1.0, s.max_step_v / big)
        norm0 = float(np.abs(F).max())
        for _ in range(40):
            trial = u + scale * step
            F_t, _ = residual(trial, False)
            if np.all(np.isfinite(F_t)) and float(np.abs(F_t).max()) < norm0:
                break
            scale *= 0.5
        else:
            if big <= ROUNDOFF_STEP * v_scale:  # the residual is at its rounding floor: take the step
                return u + step
            raise NewtonConvergenceError(
                f"Newton iteration {it}: the line search found no step that lowers the residual "
                f"({norm0:.3g} A) with the step still {big:.3g} V")
        u = trial
        F, J = residual(u, True)
    raise NewtonConvergenceError(f"Newton did not converge in {max_iter} iterations "
                                 f"(last step {big:.3g} V, tolerance {tol * v_scale:.3g} V)")


def solve(residual_at, n: int, v_scale: float, s: NewtonSettings) -> np.ndarray:
    """The converged unknowns (n,) of the circuit whose inputs are scaled by lambda in
    ``residual_at(lam)`` (a ``residual`` for ``iterate``): from 0 V, else by source stepping."""
    try:
        return iterate(residual_at(1.0), np.zeros(n), v_scale, s, s.tol, s.max_iter)
    except NewtonConvergenceError as exc:
        return source_stepping(residual_at, n, v_scale, s, str(exc))


def source_stepping(residual_at, n: int, v_scale: float, s: NewtonSettings, plain: str = "") -> np.ndarray:
    """``solve``'s fallback; ``plain``: the plain iteration's failure, the start of this one's message."""
    lam, d_lam, u_lam, count, last = 0.0, FIRST_STAGE, np.zeros(n), [0], ""
    tangent = _tangent(residual_at, u_lam, lam)
    while True:
        target = min(1.0, lam + d_lam)
        budget = min(STAGE_ITER, s.max_iter - count[0])
        if d_lam < MIN_STAGE or budget < 1:
            why = f"lambda's step below {MIN_STAGE:.3g}" if d_lam < MIN_STAGE else f"its {count[0]} iterations spent"
            raise NewtonConvergenceError(f"{plain}; source stepping failed too: the inputs solved up to lambda "
                                         f"{lam:.4g} of their values ({why}{'; last stage: ' if last else ''}{last})")
        start = u_lam + (target - lam) * tangent
        tol = s.tol if target == 1.0 else max(s.tol, STAGE_TOL)
        before = count[0]
        try:
            u = iterate(residual_at(target), start, v_scale, s, tol, budget, count)
        except NewtonConvergenceError as exc:
            d_lam, last = d_lam / 2, str(exc)
            continue
        if target == 1.0:
            return u
        grow = GROW if count[0] - before <= STAGE_ITER // 2 else 1.0  # a slow stage: the next no longer
        lam, d_lam, u_lam = target, grow * d_lam, u
        tangent = _tangent(residual_at, u, lam)


def _tangent(residual_at, u, lam):
    """du / d lambda at the solution ``u`` of the inputs scaled by ``lam``: J du = -dF/d lambda (a
    difference of the residual over ``TANGENT_STEP`` in lambda); zero where it cannot be had."""
    F, J = residual_at(lam)(u, True)
    F_up, _ = residual_at(lam + TANGENT_STEP)(u, False)
    try:
        t = -splu(J, permc_spec="MMD_AT_PLUS_A").solve((F_up - F) / TANGENT_STEP)
    except RuntimeError:  # singular Jacobian
        return np.zeros_like(u)
    return t if np.all(np.isfinite(t)) else np.zeros_like(u)
