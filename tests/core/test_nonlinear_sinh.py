"""The exact Newton solver for sinh cells (I = G sinh(b V) / b) against ngspice .op on whole crossbars.

Bound: <= 1e-9 of the largest output current, on every output current and
node voltage (relative to the largest input), hypothesis over 1-6 x 1-6
crossbars, G in [1e-6, 1e-4] S, b in [0.5, 10] /V, inputs in [-0.5, 0.5] V,
each wire 0 or in [0.1, 1e3] ohm. ngspice runs with its Newton tolerances
tightened (``verification_deck``: reltol 1e-9, vntol 1e-12 V): at its
defaults its own answer is up to ~3e-9 off a 50-digit solve of a sinh
crossbar (a 1 x 3 array behind 3 kOhm: 2.8e-10, the Newton solver 0).
Measured (CI profile): printed by the test.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab.engines.nonlinear import NewtonConvergenceError, NewtonSettings, SinhCells, solve
from xbarlab.netlist import deck_text
from xbarlab.netlist_1t1r import verification_deck

from spice_outputs import ngspice_outputs  # tests/core/spice_outputs.py

BOUND = 1e-9
resistance = st.one_of(st.just(0.0), st.floats(0.1, 1e3))
_worst = {"i_out": 0.0, "v": 0.0, "n": 0}


@st.composite
def sinh_crossbars(draw):
    m, n = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    G = 10.0 ** rng.uniform(-6.0, -4.0, (m, n))
    G[rng.random((m, n)) < 0.1] = 0.0  # a few open cells
    V = rng.uniform(-0.5, 0.5, m)
    c = xb.CircuitParams(r_row=draw(resistance), r_col=draw(resistance), r_sense=draw(resistance),
                         r_driver=draw(resistance))
    return G, V, c, draw(st.floats(0.5, 10.0))


@pytest.mark.ngspice
@pytest.mark.property
@given(case=sinh_crossbars())
def test_sinh_newton_matches_ngspice(ngspice, case):
    G, V, c, b = case
    res = solve(G, V, c, SinhCells(b))
    i_sp, v_row, v_col = ngspice_outputs(verification_deck(deck_text(G, V, c, sinh_b=b)), G, c)
    scale = max(np.abs(i_sp).max(), 1e-30)
    dev = np.abs(res.i_out - i_sp).max() / scale
    v_dev = max(np.abs(res.v_row - v_row).max(), np.abs(res.v_col - v_col).max()) / max(np.abs(V).max(), 1e-30)
    assert v_dev <= BOUND
    _worst["i_out"] = max(_worst["i_out"], dev)
    _worst["n"] += 1
    print(f"sinh Newton vs ngspice: {_worst['n']} crossbars, largest output deviation {_worst['i_out']:.3g} "
          f"of the largest output")
    assert dev <= BOUND


def test_sinh_small_b_tends_to_the_linear_solver():
    rng = np.random.default_rng(3)
    G = 10 ** rng.uniform(-6, -4, (5, 4))
    V = rng.uniform(0, 0.2, (3, 5))
    c = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
    lin = xb.solve(G, V, c)
    res = solve(G, V, c, SinhCells(1e-6))  # sinh(bV)/b = V (1 + (bV)^2/6): 1e-14 relative at 0.2 V
    assert res.i_out.shape == (3, 4) and res.v_row.shape == (3, 5, 4)
    assert np.abs(res.i_out - lin.i_out).max() <= 1e-12 * np.abs(lin.i_out).max()
    assert np.abs(res.i_cell - lin.i_cell).max() <= 1e-12 * np.abs(lin.i_cell).max()


def test_strongly_nonlinear_case_converges_or_raises():
    G = np.full((4, 4), 1e-4)
    V = np.full(4, 0.5)
    c = xb.CircuitParams(r_row=50.0, r_col=50.0, r_sense=1e3)
    res = solve(G, V, c, SinhCells(20.0))  # b V = 10: sinh 1.1e4 times its small-signal value
    assert np.all(np.isfinite(res.i_out)) and np.all(res.i_out > 0)
    with pytest.raises(NewtonConvergenceError, match="did not converge in 2 iterations"):
        solve(G, V, c, SinhCells(20.0), NewtonSettings(max_iter=2))


@pytest.mark.parametrize("kw, field", [({"max_iter": 0}, "max_iter"), ({"max_iter": 2.5}, "max_iter"),
                                       ({"tol": 0.0}, "tol"), ({"tol": 0.1}, "tol"),
                                       ({"max_step_v": -1.0}, "max_step_v"),
                                       ({"max_step_v": float("inf")}, "max_step_v")])
def test_settings_are_validated(kw, field):
    with pytest.raises(ValueError, match=field):
        NewtonSettings(**kw)


def test_bad_inputs_raise_naming_them():
    G, V, c = np.full((2, 2), 1e-5), [0.1, 0.2], xb.CircuitParams(r_row=1.0)
    for b in (0.0, -1.0, float("nan"), True, "3"):
        with pytest.raises(ValueError, match="b_per_v"):
            SinhCells(b)
    with pytest.raises(ValueError, match="cells"):
        solve(G, V, c, 3.0)
    with pytest.raises(ValueError, match="V has 3 values"):
        solve(G, [0.1, 0.2, 0.3], c, SinhCells(1.0))
    with pytest.raises(ValueError, match="G must be finite"):
        solve(np.array([[np.nan, 1e-5]]), [0.1], c, SinhCells(1.0))
    with pytest.raises(ValueError, match="conductances span"):
        solve(np.array([[1e-20, 1e-5]]), [0.1], xb.CircuitParams(r_row=1e-3), SinhCells(1.0))


def test_cells_for_device():
    from xbarlab.engines.nonlinear import cells_for_device

    assert cells_for_device(xb.DeviceParams(sinh_b=3.0)) == SinhCells(3.0)
    with pytest.raises(ValueError, match="linear"):
        cells_for_device(xb.DeviceParams())
    with pytest.raises(ValueError, match="device"):
        cells_for_device("reram")
