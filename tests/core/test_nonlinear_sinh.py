"""The exact Newton solver for sinh cells (I = G sinh(b V) / b) against ngspice .op on whole crossbars.

Bound: <= 1e-9 of the largest output current, on every output current and
node voltage (relative to the largest input), hypothesis over 1-6 x 1-6
crossbars, G in [1e-6, 1e-4] S, b in [0.5, 10] /V, inputs in [-0.5, 0.5] V,
each wire 0 or in [0.1, 1e3] ohm. ngspice runs with its Newton tolerances
tightened (``verification_deck``: reltol 1e-9, vntol 1e-12 V): at its
defaults its own answer was up to 4.7e-9 off a 50-digit solve of single-row
sinh crossbars, 2.6e-11 with these, the Newton solver 2.5e-16
(``test_sinh_newton_against_a_50_digit_solve``).
Measured (printed by the test), on an AMD EPYC host after the wire-residual fix of
``engines.nonlinear``: at most 3.2e-11 of the largest output over the 25 examples of
the dev profile, 3.8e-11 over the 40 of the CI profile (before it, on an Intel host:
9.4e-11 and 5.8e-11, and 6.0e-11 over 400 with --hypothesis-profile=thorough).
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

from newton_plain import plain, stepped  # tests/core/newton_plain.py
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
    with pytest.raises(NewtonConvergenceError, match="did not converge in 2 iterations.*source stepping failed too"):
        solve(G, V, c, SinhCells(20.0), NewtonSettings(max_iter=2))  # 2 plain iterations, then 2 of stepping


@pytest.mark.ngspice
def test_a_circuit_only_source_stepping_solves_matches_ngspice(ngspice):
    """One row at 3 V, b = 40 /V, five cells into columns sensed through 144 kohm: each column rises to
    within ~0.2 V of the row, which the plain iteration from 0 V would reach in 125 iterations (1/b per step,
    the cap is 100); source stepping (``engines.newton``) solves it. ngspice's ``.op`` agrees (measured
    1.6e-16 of the largest output) and the 50-digit solve too (``test_nonlinear_accuracy``)."""
    from xbarlab.engines.nonlinear import solve_ngspice

    G, V, c = np.array([[2e-5, 1.2e-4, 1.4e-6, 2.7e-5, 3.7e-4]]), np.array([3.0]), xb.CircuitParams(r_sense=1.44e5)
    with pytest.raises(NewtonConvergenceError, match="did not converge in 100 iterations"):
        plain(G, V, c, SinhCells(40.0))
    res, sp = solve(G, V, c, SinhCells(40.0)), solve_ngspice(G, V, c, SinhCells(40.0))
    assert np.abs(res.i_out - sp.i_out).max() <= BOUND * np.abs(sp.i_out).max()
    assert max(np.abs(res.v_row - sp.v_row).max(), np.abs(res.v_col - sp.v_col).max()) <= BOUND * 3.0


@given(case=sinh_crossbars())
def test_source_stepping_gives_the_plain_iterations_answer(case):
    """Source stepping run where the plain iteration converges (hypothesis's crossbars above): the same
    unknowns, to round-off of the largest input."""
    G, V, c, b = case
    u_plain = plain(G, V, c, SinhCells(b))
    assert np.abs(stepped(G, V, c, SinhCells(b)) - u_plain).max(initial=0.0) <= 1e-14 * np.abs(V).max()


@pytest.mark.parametrize("kw, field", [({"max_iter": 0}, "max_iter"), ({"max_iter": 2.5}, "max_iter"),
                                       ({"tol": 0.0}, "tol"), ({"tol": 0.1}, "tol"),
                                       ({"max_step_v": -1.0}, "max_step_v"),
                                       ({"max_step_v": float("inf")}, "max_step_v"),
                                       ({"max_step_v": True}, "max_step_v")])  # was a 1 V step
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


@pytest.mark.ngspice
def test_sinh_newton_against_a_50_digit_solve(ngspice):
    """One row of 3 cells behind a driver resistor, no other wire (the shape where hypothesis found ngspice
    at its default tolerances 2e-9 off the Newton answer): the row node solves one scalar equation, here in
    50 digits (mpmath), for 12 draws. Newton is exact to round-off; ngspice's error at its defaults and with
    ``verification_deck``'s tolerances is printed."""
    import mpmath as mp

    worst = {"newton": 0.0, "default": 0.0, "tight": 0.0}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        G = 10 ** rng.uniform(-6, -4, (1, 3))
        for r_driver in (250.0, 1000.0, 3000.0):
            V, b = np.array([0.45]), 4.0
            c = xb.CircuitParams(r_driver=r_driver)
            with mp.workdps(50):
                def f(vd):
                    return (mp.mpf(V[0]) - vd) / r_driver - sum(mp.mpf(g) * mp.sinh(b * vd) / b for g in G[0])

                vd = mp.findroot(f, mp.mpf("0.4"))
                exact = np.array([float(mp.mpf(g) * mp.sinh(b * vd) / b) for g in G[0]])
            deck = deck_text(G, V, c, sinh_b=b)
            got = {"newton": solve(G, V, c, SinhCells(b)).i_out, "default": ngspice_outputs(deck, G, c)[0],
                   "tight": ngspice_outputs(verification_deck(deck), G, c)[0]}
            for k, x in got.items():
                worst[k] = max(worst[k], float(np.abs(x - exact).max() / np.abs(exact).max()))
    print(f"against 50 digits, 12 single-row sinh crossbars: Newton {worst['newton']:.2g}, ngspice default "
          f"{worst['default']:.2g}, ngspice verification tolerances {worst['tight']:.2g}")
    assert worst["newton"] <= 1e-14 and worst["tight"] <= 1e-10
