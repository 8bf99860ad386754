"""The paper's Fig. 3(b) sneak path: a reversed cell current, in both engines."""

import numpy as np

import xbarlab as xb

G = np.full((3, 2), 1.0 / 20e3)  # all cells 20 kOhm
V = np.array([0.2, 0.01, 0.2])  # volt
# A weak sense amplifier and resistive columns lift the column-1 nodes above
# the middle row's input, so the middle row's cell current reverses.
C = xb.CircuitParams(r_row=5.0, r_col=5.0, r_sense=20e3, r_driver=100.0)


def test_reversal_exact():
    res = xb.solve(G, V, C)
    assert res.i_cell[1, 1] < 0 and res.i_cell[0, 1] > 0 and res.i_cell[2, 1] > 0


def test_reversal_ngspice(ngspice):
    ex = xb.solve(G, V, C)
    sp = xb.solve(G, V, C, engine="ngspice")
    assert sp.i_cell[1, 1] < 0
    assert np.abs(sp.i_cell - ex.i_cell).max() <= 1e-9 * np.abs(ex.i_cell).max()
