"""Newton's plain iteration alone, without the source stepping that follows its failure (shared by the tests in
tests/core): whether a circuit needs the stepping of ``engines.newton``, and the stepping forced where it does not."""

from __future__ import annotations

import numpy as np

from xbarlab.engines import newton
from xbarlab.engines.nonlinear import NewtonSettings, _Network


def network_residual(G, V, c, cells):
    """(``residual_at`` of ``newton.solve`` for this crossbar, number of unknowns, voltage scale)."""
    net, fixed = _Network(G, c, cells), np.concatenate([[0.0], V])

    def residual_at(lam):
        return lambda u, jac: net.residual(u, lam * fixed, jac)

    return residual_at, net.n_free + net.n_x, max(float(np.abs(V).max()), net.v_gate, 1e-300)


def plain(G, V, c, cells, s: NewtonSettings = NewtonSettings()):
    """The unknowns by the plain iteration from 0 V (``newton.iterate``); raises NewtonConvergenceError."""
    residual_at, n, v_scale = network_residual(G, V, c, cells)
    return newton.iterate(residual_at(1.0), np.zeros(n), v_scale, s, s.tol, s.max_iter)


def stepped(G, V, c, cells, s: NewtonSettings = NewtonSettings()):
    """The unknowns by source stepping alone (``newton.source_stepping``)."""
    residual_at, n, v_scale = network_residual(G, V, c, cells)
    return newton.source_stepping(residual_at, n, v_scale, s)


def plain_fails(G, V, c, cells) -> bool:
    try:
        plain(G, V, c, cells)
    except newton.NewtonConvergenceError:
        return True
    return False
