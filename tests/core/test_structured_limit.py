"""The fast G_non-ideal paths against references where cells dominate the wires.

``conditioning.STRUCTURED_CELLS_OVER_WIRES`` is where ``g_nonideal`` and ``simulate`` leave the
row sweep of ``engines.structured`` (its Schur complements cancel when a cell dominates a wire)
for the sparse exact solver. Both must then hold the promise of ``conditioning``: 1e-9 of the
largest output, per input vector, against the 60-digit reference (``tests/mp_reference.py``).
"""

import numpy as np

import xbarlab as xb
from xbarlab.engines import exact, structured

from mp_reference import mp_solve


def row_errors(got, ref):
    """Per input vector (row), max |got - ref| / max |ref|."""
    return np.max(np.abs(got - ref), axis=1) / np.max(np.abs(ref), axis=1)


def test_weak_driver_and_sense_on_a_small_array():
    """1 ohm wires, but a 1e10 ohm driver and sense: cells (up to 1e-3 S) 1e7 above the weakest
    wire. The sweep was 1.2e-9 off here, inside the limit it was given."""
    rng = np.random.default_rng(84)
    G = 10.0 ** rng.uniform(-6.0, -3.0, (8, 4))
    c = xb.CircuitParams(r_row=1.0, r_col=1.0, r_sense=1e10, r_driver=1e10)
    ref = mp_solve(G, np.eye(8), c)["i_out"]  # row i: the outputs for 1 V on row i alone
    assert row_errors(xb.g_nonideal(G, c), ref).max() <= 1e-9
    V = rng.uniform(0.0, 1.0, (3, 8))
    assert row_errors(xb.simulate(G, V, c), mp_solve(G, V, c)["i_out"]).max() <= 1e-9


def long_array(m, cells_over_wires):
    """m x 8 cells of 1e-6..1e-3 S, the weakest wire (the rows') cells_over_wires below the
    largest cell, columns 3x, driver and sense 100x stronger."""
    rng = np.random.default_rng(m)
    G = 10.0 ** rng.uniform(-6.0, -3.0, (m, 8))
    w = G.max() / cells_over_wires  # S
    return G, xb.CircuitParams(r_row=1 / w, r_col=1 / (3 * w), r_sense=1 / (100 * w), r_driver=1 / (100 * w))


def test_long_narrow_array_inside_the_old_limit():
    """600 x 8 (the compiled loop of engines.lines) with cells 9e6 above the weakest wire, inside
    the old limit of 1e7: the sweep's error grows with the array's length, 2.2e-9 here on rows
    0..3. The sparse exact solver (within
    1e-15 of the reference on the small arrays above) is the reference."""
    G, c = long_array(600, 9e6)
    V = np.eye(600)[:4]  # rows 0..3
    assert row_errors(xb.g_nonideal(G, c)[:4], exact.solve(G, V, c).i_out).max() <= 1e-9


def test_the_sweep_at_the_limit_on_a_long_array():
    """At the limit itself (cells STRUCTURED_CELLS_OVER_WIRES above the weakest wire) the row
    sweep still answers, and at 1000 x 8 stays 100x inside the promise (2.7e-12 measured)."""
    G, c = long_array(1000, xb.conditioning.STRUCTURED_CELLS_OVER_WIRES * (1 - 1e-9))  # 1/(1/w) rounds
    assert xb.conditioning.structured_resolves(G, c)
    V = np.eye(1000)[:4]
    got = structured.row_sweep_stack(G[None], c)[0][:4]
    assert row_errors(got, exact.solve(G, V, c).i_out).max() <= 1e-11


def test_simulate_resolves_outputs_that_cancel():
    """Four equal rows on 1e-2 ohm wires, two driven +1 and -1 V: the outputs (up to 5e-13 A) are
    what the rows' small difference in parasitics leaves of their 1e-5 A currents. V @ Gn,
    though Gn is right to 1e-15, was 1.4e-9 off (its rounding times the cancellation, 6e7);
    such vectors are now the sparse solve's, the others keep the fast product."""
    G = np.tile([1e-6, 3e-6, 7e-6], (4, 1))
    c = xb.CircuitParams(r_row=1e-2, r_col=1e-2, r_sense=1.0, r_driver=1.0)
    V = np.array([[1.0, -1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    ref = mp_solve(G, V, c)["i_out"]
    got = xb.simulate(G, V, c)
    assert np.abs(ref[0]).max() < 1e-6 * np.abs(ref[1]).max()  # the cancellation
    assert row_errors(got[:2], ref[:2]).max() <= 1e-9
    assert np.array_equal(got[2], np.zeros(3))
    assert row_errors(xb.simulate(G, V[0], c)[None], ref[:1]).max() <= 1e-9  # one vector
    assert row_errors(xb.simulate(G, V[1:2], c), ref[1:2]).max() <= 1e-15  # no cancellation: V @ Gn
