"""Property tests: exact solver vs ngspice, G_non-ideal vs simulate, physics invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab import conditioning
from xbarlab.engines import exact, structured

from strategies import crossbars

pytestmark = pytest.mark.property


def rel(a, b):
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(a - b).max())


def _extreme(seed: int, r_row: float, r_col: float, r_sense: float, r_driver) -> tuple:
    """A full-size 16 x 16 case at the edges of the ranges (always run, besides the random ones)."""
    rng = np.random.default_rng(seed)
    G = 10.0 ** rng.uniform(-7.0, -3.0, size=(16, 16))
    return G, rng.uniform(-0.5, 0.5, size=(2, 16)), xb.CircuitParams(r_row, r_col, r_sense, r_driver)


@settings(max_examples=60)  # ~10 ms per ngspice run: about 2 s
@given(crossbars())
@example(_extreme(1, 1.0, 1.0, 1e4, 1e4))  # wires 1e7 x the smallest cell: ngspice's accepted limit
@example(_extreme(2, 1e4, 1e4, 0.0, 0.0))
@example(_extreme(3, 0.0, 0.0, 0.0, tuple(np.linspace(0.0, 1e4, 16))))
def test_exact_matches_ngspice(ngspice, case):
    G, V, c = case
    ex = xb.solve(G, V, c, engine="exact")
    lo, hi = conditioning.conductance_range(G, c)
    if hi > conditioning.NGSPICE_SPREAD_LIMIT * lo:  # beyond what ngspice resolves: it must refuse
        with pytest.raises(ValueError, match="ngspice engine resolves"):
            xb.solve(G, V, c, engine="ngspice")
        return
    sp = xb.solve(G, V, c, engine="ngspice")
    assert rel(ex.i_out, sp.i_out) <= 1e-9
    # Cell currents are differences of node voltages, so they carry ngspice's
    # rounding less damped than the outputs (seen: <= 2e-10); 1e-8 leaves room.
    assert rel(ex.i_cell, sp.i_cell) <= 1e-8


@given(crossbars())
def test_g_nonideal_reproduces_simulate(case):
    # simulate may itself return V @ g_nonideal, so the oracle is the sparse nodal solve.
    G, V, c = case
    assert rel(V @ xb.g_nonideal(G, c), xb.solve(G, V, c).i_out) <= 1e-12
    assert rel(xb.simulate(G, V, c), xb.solve(G, V, c).i_out) <= 1e-12


@given(crossbars())
def test_structured_matches_exact_sparse(case):
    G, V, c = case
    if not structured.applicable(c):
        return
    fast = structured.g_nonideal_stack(G[None], c)[0]
    assert rel(fast, exact.g_nonideal(G, c)) <= 1e-12


@given(crossbars())
def test_g_nonideal_nonnegative(case):
    G, _, c = case
    assert np.all(xb.g_nonideal(G, c) >= 0)


@given(crossbars(), st.floats(-3, 3), st.floats(-3, 3))
def test_linear_in_v(case, alpha, beta):
    G, V, c = case
    i0, i1 = xb.simulate(G, V, c)
    lhs = xb.simulate(G, alpha * V[0] + beta * V[1], c)
    scale = np.abs(alpha * i0).max() + np.abs(beta * i1).max()
    assert np.abs(lhs - (alpha * i0 + beta * i1)).max() <= 1e-12 * scale + 1e-300


@given(crossbars())
def test_ideal_circuit_gives_g(case):
    G, V, _ = case
    ideal = xb.CircuitParams()
    assert np.array_equal(xb.g_nonideal(G, ideal), G)
    per_row_zero = xb.CircuitParams(r_driver=[0.0] * G.shape[0])
    assert np.array_equal(xb.g_nonideal(G, per_row_zero), G)
    np.testing.assert_allclose(xb.simulate(G, V, ideal), V @ G, rtol=1e-13, atol=0)


@settings(max_examples=10)
@given(st.integers(1, 5), crossbars(max_rows=8, max_cols=8))
def test_stack_equals_per_tile(t, case):
    G, _, c = case
    rng = np.random.default_rng(t)
    stack = G[None] * rng.uniform(0.5, 2.0, size=(t, 1, 1))
    out = xb.g_nonideal_stack(stack, c)
    for k in range(t):
        assert rel(out[k], xb.g_nonideal(stack[k], c)) <= 1e-13


def test_batch_shapes():
    rng = np.random.default_rng(0)
    G = 10 ** rng.uniform(-6, -4, (4, 3))
    c = xb.CircuitParams(1.0, 1.0, 10.0, 5.0)
    assert xb.simulate(G, np.ones(4), c).shape == (3,)
    assert xb.simulate(G, np.ones((7, 4)), c).shape == (7, 3)
    r = xb.solve(G, np.ones((2, 4)), c)
    assert r.i_cell.shape == (2, 4, 3) and r.v_row.shape == (2, 4, 3)
    np.testing.assert_allclose(r.i_cell.sum(axis=1), r.i_out, rtol=1e-12)
