"""Non-linear cells behind the public API: ``xbarlab.solve`` / ``simulate`` with ``cells=``.

The exact engine runs the Newton solver (``engines.nonlinear.solve``), the ngspice engine the non-linear
deck with tightened tolerances (``nonlinear.solve_ngspice``). Bounds against ngspice, on small crossbars:
sinh cells <= 1e-9 of the largest output and cell current (measured about 4e-12); 1T-1R cells <= 1e-6 of
the largest output (the table's bound, ``tests/core/test_1t1r_solver.py``; measured 2.7e-8 (sense side) and
1.4e-7 (row side) on a 10 mV table). ``cells=None`` leaves the linear path as it was.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import xbarlab as xb
from xbarlab.engines import nonlinear
from xbarlab.engines.cell_table import TransistorTable
from xbarlab.transistor import AccessTransistor, TransistorSide

C = xb.CircuitParams(r_row=2.0, r_col=3.0, r_sense=50.0, r_driver=20.0)


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_sinh_cells_reach_the_newton_solver():
    rng = np.random.default_rng(1)
    G, V = 10 ** rng.uniform(-6, -4, (4, 5)), rng.uniform(0, 0.5, (3, 4))
    cells = xb.SinhCells(8.0)
    ref = nonlinear.solve(G, V, C, cells)
    res = xb.solve(G, V, C, cells=cells)
    assert res.engine == "newton" and np.array_equal(res.i_out, ref.i_out)
    assert np.array_equal(xb.simulate(G, V, C, cells=cells), ref.i_out)
    assert np.array_equal(xb.simulate(G, V[0], C, cells=cells), ref.i_out[0])


@pytest.mark.ngspice
def test_sinh_cells_exact_and_ngspice_agree(ngspice):
    rng = np.random.default_rng(2)
    G, V = 10 ** rng.uniform(-6, -4, (4, 5)), rng.uniform(-0.5, 0.5, (2, 4))
    G[1, 2] = 0.0
    cells = xb.SinhCells(8.0)
    a, b = xb.solve(G, V, C, cells=cells), xb.solve(G, V, C, engine="ngspice", cells=cells)
    assert b.engine == "ngspice"
    assert _rel(a.i_out, b.i_out) <= 1e-9
    assert _rel(a.i_cell, b.i_cell) <= 1e-9


@pytest.fixture(scope="module")
def access_tables(ngspice):
    """Small 10 mV tables (inputs up to 0.25 V) of the default NMOS at V_G 0.9 V, on both sides."""
    out = {}
    for side in TransistorSide:
        acc = AccessTransistor(v_gate_v=0.9, side=side)
        out[side] = TransistorTable.from_ngspice(acc, vs_lo=-0.02, vs_hi=0.3, vds_max=0.3, step=1e-2)
    return out


@pytest.mark.ngspice
@pytest.mark.parametrize("side", list(TransistorSide))
def test_1t1r_cells_exact_and_ngspice_agree(access_tables, side):
    rng = np.random.default_rng(3)
    G, V = rng.uniform(1 / 300e3, 1 / 30e3, (4, 4)), rng.uniform(0, 0.25, (2, 4))
    tab = access_tables[side]
    a, b = xb.solve(G, V, C, cells=tab), xb.solve(G, V, C, engine="ngspice", cells=tab)
    assert _rel(a.i_out, b.i_out) <= 1e-6
    # i_cell: the device current; on the row side the Newton solver's is the drain current, which leaves out
    # the transistor's gate and bulk currents (~1e-10 A here, 3e-5 of the largest cell current)
    assert _rel(a.i_cell, b.i_cell) <= (1e-6 if side is TransistorSide.SENSE else 1e-4)
    assert np.array_equal(xb.simulate(G, V, C, cells=tab), a.i_out)


def test_convergence_failure_raises_and_returns_nothing():
    # b V = 5e3: the cell current overflows double precision; the solver must raise, not return inf
    with pytest.raises(xb.NewtonConvergenceError):
        xb.simulate(np.full((2, 2), 1e-5), np.full(2, 0.5), xb.CircuitParams(), cells=xb.SinhCells(1e4))


def test_bad_cells_and_backward_read_raise():
    G, V = np.full((2, 2), 1e-5), np.full(2, 0.1)
    with pytest.raises(ValueError, match="cells must be"):
        xb.simulate(G, V, C, cells="sinh")
    with pytest.raises(ValueError, match="read must be 'forward'"):
        xb.solve(G, V, C, read="backward", cells=xb.SinhCells(2.0))
    with pytest.raises(ValueError, match="engine must be"):
        xb.solve(G, V, C, engine="spice", cells=xb.SinhCells(2.0))


def test_linear_path_unchanged_without_cells():
    rng = np.random.default_rng(4)
    G, V = 10 ** rng.uniform(-6, -4, (6, 5)), rng.uniform(0, 0.5, (3, 6))
    assert np.array_equal(xb.simulate(G, V, C, cells=None), xb.simulate(G, V, C))
    assert np.array_equal(xb.simulate(G, V, C), V @ xb.g_nonideal(G, C))


def test_cells_for_device_gives_the_cells_of_a_device():
    dev = xb.DeviceParams(g_min=1e-6, g_max=1e-5, sinh_b=3.0)
    assert xb.cells_for_device(dev) == xb.SinhCells(3.0)
    with pytest.raises(ValueError, match="linear"):
        xb.cells_for_device(dataclasses.replace(dev, sinh_b=0.0))


def test_solve_ngspice_checks_ngspice_range_when_called_directly():
    # xbarlab.solve checked it, a direct engine call did not: 1e13 V reached ngspice, beyond the range
    # (NGSPICE_V_MAX) where its tolerances are checked to give 1e-9 relative.
    G, V = np.full((2, 2), 1e-5), np.full((1, 2), 1e13)
    with pytest.raises(ValueError, match="V reaches 1e[+]13 V"):
        nonlinear.solve_ngspice(G, V, C, xb.SinhCells(8.0))
