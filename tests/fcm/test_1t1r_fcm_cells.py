"""``xbarlab.fcm.cells`` one cell at a time against the Newton solver on the same table (audit checks).

A single 1T-1R cell with ideal wires, its far side at 0 V, is what ``cell_current`` solves by bisection and
what ``engines.nonlinear.solve`` solves by Newton on a 1 x 1 crossbar: both solve the same current balance
at the internal node on the same table, so they agree to round-off. Measured (V_G 0.9 V, the FCM's 10 mV
table, G in {1/30k, 1/3k, 1e-3} S, v in {0.05, 0.3, 0.5} V): at most 4.4e-16 relative. Before the row
side's balance used the source current (it used the drain current), it was off by up to 8.9e-6.
"""

from __future__ import annotations

import numpy as np
import pytest

import xbarlab as xb
from xbarlab.engines.nonlinear import solve
from xbarlab.fcm import cells
from xbarlab.transistor import AccessTransistor

G_CELLS = (1 / 30e3, 1 / 3e3, 1e-3)
V_CELLS = (0.05, 0.3, 0.5)
REL = 1e-12


@pytest.mark.parametrize("side", ["sense", "row"])
def test_cell_current_is_the_newton_device_current(ngspice, side):
    table = cells.transistor_table(AccessTransistor(v_gate_v=0.9, side=side))
    worst = 0.0
    for g in G_CELLS:
        for v in V_CELLS:
            r = solve([[g]], [v], xb.CircuitParams(), table)
            # the device current: at the sense side from the row node into the cell, at the row side into
            # the column (ideal wires: the device's far end is the column)
            want = r.i_cell[0, 0] if side == "sense" else r.i_out[0]
            got = float(cells.cell_current(g, v, table))
            worst = max(worst, abs(got / want - 1))
    print(f"cell_current vs Newton ({side} side): {worst:.3g} relative")
    assert worst <= REL
