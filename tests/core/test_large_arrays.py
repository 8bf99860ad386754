"""The large-array paths of G_non-ideal and simulate (issue 13), against three oracles.

* the sparse exact engine (``engines.exact``: SuperLU with extended-precision
  refinement), on every accepted input: wide arrays solved as their turned
  transpose, long narrow arrays in the compiled loop (``engines.lines``),
  row inverses built in blocks, per-row drivers, zero resistances;
* the 60-digit mpmath reference (``tests/mp_reference.py``) on small cases;
* ngspice, on random crossbars up to 32 x 32.

Bounds: 1e-12 of the largest value against the exact engine and the
reference (measured over 150 random cases: 3.3e-15 and 7.3e-15); 1e-9 against ngspice (ngspice's own
nodal analysis, not refined, limits it there; see test_core_properties).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab.engines import exact, lines, structured

from mp_reference import mp_solve
from strategies import crossbars, resistance


def rel(a, b):
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(a - b).max())


@st.composite
def shaped(draw, max_long: int = 70, max_short: int = 6):
    """Crossbars that are long one way and short the other (either way round)."""
    short = draw(st.integers(1, max_short))
    long = draw(st.integers(short, max_long))
    m, n = (long, short) if draw(st.booleans()) else (short, long)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    G = 10.0 ** rng.uniform(-7.0, -3.0, (m, n))
    G[rng.random((m, n)) < 0.1] = 0.0  # open cells
    V = rng.uniform(-0.5, 0.5, (2, m))
    if draw(st.booleans()):
        r_driver = tuple(draw(st.lists(resistance, min_size=m, max_size=m)))
    else:
        r_driver = draw(resistance)
    c = xb.CircuitParams(r_row=draw(resistance), r_col=draw(resistance), r_sense=draw(resistance),
                         r_driver=r_driver)
    return G, V, c


@given(crossbars())
def test_g_nonideal_matches_exact_engine(case):
    G, _, c = case
    assert rel(xb.g_nonideal(G, c), exact.g_nonideal(G, c)) <= 1e-12


@given(shaped())
def test_long_and_wide_arrays_match_exact_engine(case):
    G, V, c = case
    assert rel(xb.g_nonideal(G, c), exact.g_nonideal(G, c)) <= 1e-12
    assert rel(xb.simulate(G, V, c), exact.solve(G, V, c).i_out) <= 1e-12


@given(crossbars())
def test_simulate_matches_exact_engine(case):
    G, V, c = case
    assert rel(xb.simulate(G, V, c), exact.solve(G, V, c).i_out) <= 1e-12
    assert rel(xb.simulate(G, V[0], c), exact.solve(G, V[0], c).i_out) <= 1e-12


@settings(max_examples=12)
@given(crossbars(max_rows=6, max_cols=6))
def test_simulate_matches_60_digit_reference(case):
    G, V, c = case
    assert rel(xb.simulate(G, V, c), mp_solve(G, V, c)["i_out"]) <= 1e-12


@pytest.mark.parametrize("shape", [(1, 24), (3, 17), (24, 1), (17, 3)])
@pytest.mark.parametrize("r_wire", [1e-2, 2.5, 1e4])
def test_wide_and_narrow_match_60_digit_reference(shape, r_wire):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    G = 10.0 ** rng.uniform(-7.0, -3.0, shape)
    V = rng.uniform(-0.5, 0.5, shape[0])
    c = xb.CircuitParams(r_row=r_wire, r_col=2.0 * r_wire, r_sense=100.0,
                         r_driver=tuple(rng.uniform(0.0, 1e3, shape[0])))
    assert rel(V @ xb.g_nonideal(G, c), mp_solve(G, V, c)["i_out"]) <= 1e-12


@pytest.mark.ngspice
@pytest.mark.property
@settings(max_examples=6)
@given(crossbars(max_rows=32, max_cols=32))
def test_simulate_matches_ngspice_up_to_32(ngspice, case):
    G, V, c = case
    assert rel(xb.simulate(G, V[0], c), xb.simulate(G, V[0], c, engine="ngspice")) <= 1e-9


@pytest.mark.ngspice
def test_32x32_and_wide_match_ngspice(ngspice):
    rng = np.random.default_rng(13)
    c = xb.CircuitParams(r_row=2.5, r_col=1.0, r_sense=100.0, r_driver=50.0)
    for shape in [(32, 32), (2, 64)]:
        G = 10.0 ** rng.uniform(-6.0, -4.0, shape)
        V = rng.uniform(0.0, 0.25, shape[0])
        assert rel(V @ xb.g_nonideal(G, c), xb.simulate(G, V, c, engine="ngspice")) <= 1e-9


def test_row_blocks_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(3)
    G = 10.0 ** rng.uniform(-7.0, -3.0, (3, 12, 9))
    c = xb.CircuitParams(r_row=0.5, r_col=3.0, r_sense=10.0, r_driver=tuple(rng.uniform(0, 100, 12)))
    whole = structured.g_nonideal_stack(G, c)
    monkeypatch.setattr(structured, "ROW_BLOCK_BYTES", 1.0)  # one row at a time
    assert np.array_equal(structured.g_nonideal_stack(G, c), whole)


def test_compiled_loop_and_array_sweep_agree(monkeypatch):
    rng = np.random.default_rng(4)
    G = 10.0 ** rng.uniform(-7.0, -3.0, (2, 50, 5))
    c = xb.CircuitParams(r_row=0.01, r_col=1e3, r_sense=0.0, r_driver=tuple(rng.uniform(0, 1e3, 50)))
    compiled = structured.g_nonideal_stack(G, c)
    monkeypatch.setattr(lines, "sweep", lambda *args: None)  # as without numba
    assert rel(structured.g_nonideal_stack(G, c), compiled) <= 1e-13


def test_stack_matches_single_tiles_and_wide_stack():
    rng = np.random.default_rng(5)
    c = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
    for shape in [(4, 9, 9), (3, 2, 45), (3, 45, 2)]:
        G = 10.0 ** rng.uniform(-6.0, -4.0, shape)
        stack = xb.g_nonideal_stack(G, c, chunk=2)
        assert rel(stack, np.stack([exact.g_nonideal(g, c) for g in G])) <= 1e-12
