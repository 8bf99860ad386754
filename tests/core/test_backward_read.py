"""The backward read (issue 14): columns driven at their bottom end, rows sensed at their left end.

The exact engines serve it as the forward read of the turned array
(``xbarlab.api.turn``, ``topology.backward_as_forward``); ngspice runs the
backward deck written directly from its own topology
(``netlist.backward_deck_text``), so the property test against ngspice checks
the transformation, not itself. Golden decks: ``netlists/*_backward.*``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab import conditioning
from xbarlab.engines import exact
from xbarlab.engines.ngspice import check_deck

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from strategies import crossbars  # noqa: E402

NETLISTS = Path(__file__).resolve().parents[2] / "netlists"
sys.path.insert(0, str(NETLISTS))
import regenerate  # noqa: E402

BACKWARD = dict(read="backward")


def rel(a, b):
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / scale) if scale > 0 else float(np.abs(a - b).max())


@st.composite
def backward_crossbars(draw, max_rows: int = 16, max_cols: int = 16):
    """The forward read's strategy (one r_driver for every driver), with V of one value per column."""
    G, _, c = draw(crossbars(max_rows, max_cols, per_row_driver=False))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return G, rng.uniform(-0.5, 0.5, size=(2, G.shape[1])), c


def _extreme(seed: int, m: int, n: int, r_row: float, r_col: float, r_sense: float, r_driver: float) -> tuple:
    rng = np.random.default_rng(seed)
    G = 10.0 ** rng.uniform(-7.0, -3.0, size=(m, n))
    return G, rng.uniform(-0.5, 0.5, size=(2, n)), xb.CircuitParams(r_row, r_col, r_sense, r_driver)


@pytest.mark.ngspice
@pytest.mark.property
@settings(max_examples=60)  # ~10 ms per ngspice run: about 2 s
@given(backward_crossbars())
@example(_extreme(1, 16, 16, 1.0, 1.0, 1e4, 1e4))  # wires 1e7 x the smallest cell: ngspice's accepted limit
@example(_extreme(2, 16, 16, 1e4, 1e4, 0.0, 0.0))
@example(_extreme(3, 16, 5, 0.0, 2.5, 0.0, 50.0))
@example(_extreme(4, 3, 16, 2.5, 0.0, 100.0, 0.0))
def test_backward_exact_matches_ngspice(ngspice, case):
    G, V, c = case
    ex = xb.solve(G, V, c, **BACKWARD)
    assert ex.i_out.shape == (2, G.shape[0]) and ex.i_cell.shape == (2,) + G.shape
    lo, hi = conditioning.conductance_range(G, c)
    if hi > conditioning.NGSPICE_SPREAD_LIMIT * lo:  # beyond what ngspice resolves: it must refuse
        with pytest.raises(ValueError, match="ngspice engine resolves"):
            xb.solve(G, V, c, engine="ngspice", **BACKWARD)
        return
    sp = xb.solve(G, V, c, engine="ngspice", **BACKWARD)
    assert rel(ex.i_out, sp.i_out) <= 1e-9
    assert rel(ex.i_cell, sp.i_cell) <= 1e-8  # as in the forward read's test
    assert rel(xb.simulate(G, V, c, **BACKWARD), sp.i_out) <= 1e-9


@pytest.mark.property
@given(backward_crossbars())
def test_backward_g_nonideal_reproduces_solve(case):
    # The oracle is the sparse nodal solve of the turned array (simulate may itself use V @ G_non-ideal).
    G, V, c = case
    ref = xb.solve(G, V, c, **BACKWARD).i_out
    Gb = xb.g_nonideal(G, c, **BACKWARD)
    assert Gb.shape == (G.shape[1], G.shape[0])
    assert rel(V @ Gb, ref) <= 1e-12
    assert rel(xb.simulate(G, V, c, **BACKWARD), ref) <= 1e-12
    assert np.all(Gb >= 0)


def _swapped(c: xb.CircuitParams) -> xb.CircuitParams:
    return xb.CircuitParams(r_row=c.r_row, r_col=c.r_col, r_sense=c.r_driver, r_driver=c.r_sense)


@pytest.mark.property
@given(backward_crossbars())
def test_backward_is_the_transpose_of_the_forward_read_with_driver_and_sense_exchanged(case):
    """Reciprocity: the backward read's G_non-ideal is the transpose of the forward G_non-ideal of the
    circuit whose r_driver and r_sense are exchanged (the sparse solver's, computed per row)."""
    G, _, c = case
    if conditioning.conductance_range(G, c)[1] > conditioning.SPREAD_LIMIT * conditioning.conductance_range(G, c)[0]:
        return
    assert rel(xb.g_nonideal(G, c, **BACKWARD), exact.g_nonideal(G, _swapped(c)).T) <= 1e-12


def test_transpose_of_forward_g_nonideal_is_wrong_by_a_measured_amount():
    """Against the stored ngspice run of the backward 8 x 8 deck (the rxnn-spintronic circuit: r_row = r_col =
    2.5 ohm, r_sense = 100 ohm, r_driver = 50 ohm): V @ G_non-ideal^T is off, V @ G_non-ideal_backward is not."""
    G, V, c = regenerate.stored_backward_cases()["xbar_8x8_backward"]
    i_sp = _stored_i_out("xbar_8x8_backward")
    wrong = rel(V @ xb.g_nonideal(G, c).T, i_sp)
    right = rel(V @ xb.g_nonideal(G, c, **BACKWARD), i_sp)
    per_row = np.abs(V @ xb.g_nonideal(G, c).T - i_sp) / np.abs(i_sp)
    print(f"\n8x8 backward read vs ngspice: transpose of the forward G_non-ideal off by {wrong:.3e} of the largest "
          f"row current (largest per-row relative error {per_row.max():.3e}); backward G_non-ideal {right:.1e}")
    assert right <= 1e-9
    assert wrong >= 1e-4  # measured 8.7e-3 (printed above), against 1.9e-14 for the backward G_non-ideal


@pytest.mark.ngspice
def test_transpose_is_wrong_at_the_preset_size_against_live_ngspice(ngspice):
    """16 x 16 on the rxnn-spintronic circuit and device range, one input vector, ngspice run now."""
    spec = xb.load_preset("rxnn-spintronic")
    rng = np.random.default_rng(14)
    G = spec.device.random_state(rng, (16, 16))
    V = rng.uniform(0.0, 0.2, 16)
    i_sp = xb.simulate(G, V, spec.circuit, engine="ngspice", **BACKWARD)
    wrong = rel(V @ xb.g_nonideal(G, spec.circuit).T, i_sp)
    right = rel(V @ xb.g_nonideal(G, spec.circuit, **BACKWARD), i_sp)
    print(f"\n16x16 rxnn-spintronic backward read vs ngspice: transpose of forward G_non-ideal off by {wrong:.3e}, "
          f"backward G_non-ideal {right:.1e}")
    assert right <= 1e-9 and wrong >= 1e-4


def test_equal_terminations_make_the_transpose_exact():
    """With r_driver == r_sense the ports are terminated alike in both reads, and reciprocity makes the
    backward G_non-ideal the transpose of the forward one: the difference is the termination, not the wires."""
    rng = np.random.default_rng(3)
    G = 10 ** rng.uniform(-6, -4, (7, 5))
    c = xb.CircuitParams(r_row=2.5, r_col=1.0, r_sense=80.0, r_driver=80.0)
    assert rel(xb.g_nonideal(G, c, **BACKWARD), exact.g_nonideal(G, c).T) <= 1e-12


def test_ideal_circuit_reads_g_transposed():
    rng = np.random.default_rng(1)
    G = 10 ** rng.uniform(-6, -4, (4, 6))
    V = rng.uniform(-0.2, 0.2, (3, 6))
    assert np.array_equal(xb.g_nonideal(G, xb.CircuitParams(), **BACKWARD), G.T)
    np.testing.assert_allclose(xb.simulate(G, V, xb.CircuitParams(), **BACKWARD), V @ G.T, rtol=1e-13)


def test_shapes_and_stack():
    rng = np.random.default_rng(2)
    G = 10 ** rng.uniform(-6, -4, (5, 3))
    c = xb.CircuitParams(1.0, 2.0, 10.0, 5.0)
    assert xb.simulate(G, np.ones(3), c, **BACKWARD).shape == (5,)
    assert xb.simulate(G, np.ones((4, 3)), c, **BACKWARD).shape == (4, 5)
    r = xb.solve(G, np.ones((2, 3)), c, **BACKWARD)
    assert r.v_row.shape == (2, 5, 3) and r.i_out.shape == (2, 5)
    # KCL per row: what the cells of row i carry from its columns leaves through row i's sense (sign: a -> b)
    np.testing.assert_allclose(-r.i_cell.sum(axis=2), r.i_out, rtol=1e-12)
    stack = G[None] * rng.uniform(0.5, 2.0, (3, 1, 1))
    out = xb.g_nonideal_stack(stack, c, **BACKWARD)
    assert out.shape == (3, 3, 5)
    for k in range(3):
        assert rel(out[k], xb.g_nonideal(stack[k], c, **BACKWARD)) <= 1e-13


def test_bad_read_and_per_row_driver_raise():
    G = np.full((3, 2), 1e-5)
    c = xb.CircuitParams(1.0, 1.0, 10.0, 5.0)
    for bad in ("transposed", "Backward", None, 1):
        for call in (lambda: xb.simulate(G, np.ones(3), c, read=bad), lambda: xb.solve(G, np.ones(3), c, read=bad),
                     lambda: xb.g_nonideal(G, c, read=bad), lambda: xb.netlist(G, np.ones(3), c, read=bad),
                     lambda: xb.g_nonideal_stack(G, c, read=bad)):
            with pytest.raises(ValueError, match=rf"read must be one of .*got {bad!r}"):
                call()
    per_row = xb.CircuitParams(1.0, 1.0, 10.0, (5.0, 6.0, 7.0))
    for call in (lambda: xb.simulate(G, np.ones(2), per_row, **BACKWARD),
                 lambda: xb.simulate(G, np.ones(2), per_row, engine="ngspice", **BACKWARD),
                 lambda: xb.solve(G, np.ones(2), per_row, **BACKWARD),
                 lambda: xb.g_nonideal(G, per_row, **BACKWARD),
                 lambda: xb.netlist(G, np.ones(2), per_row, **BACKWARD)):
        with pytest.raises(ValueError, match=r"r_driver has one value per row \(3 values\).*backward read"):
            call()
    with pytest.raises(ValueError, match="V has 3 values per vector but G has 2"):
        xb.simulate(G, np.ones(3), c, **BACKWARD)  # the backward read takes one value per column
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        xb.netlist(G, np.ones((2, 2)), c, **BACKWARD)
    with pytest.raises(ValueError, match="engine must be one of"):
        xb.simulate(G, np.ones(2), c, engine="spice", **BACKWARD)


def _forward_pairs(deck: str) -> dict[str, set]:
    return {ln.split()[0]: {ln.split()[1], ln.split()[2]} for ln in deck.splitlines() if ln.startswith("r")}


def test_backward_deck_has_the_physical_wires_of_the_forward_deck():
    """The same cells and inner wire segments join the same nodes in both decks; only the ends differ:
    the left end of each row now goes to its sense (s{i}), the bottom of each column to its driver (d{j}).
    (The driver and sense nodes are named by role: src/d of input line k, s/m of output line k.)"""
    G, V, c = regenerate.stored_backward_cases()["xbar_8x8_backward"]
    fwd = _forward_pairs(xb.netlist(G, np.zeros(8), c))
    bwd = _forward_pairs(xb.netlist(G, V, c, **BACKWARD))
    assert fwd.keys() == bwd.keys()
    changed = {k for k in fwd if fwd[k] != bwd[k]}
    ends = {f"rrow{i}_0" for i in range(8)} | {f"rcol8_{j}" for j in range(8)}
    assert changed == ends
    assert bwd["rrow3_0"] == {"a3_0", "s3"} and bwd["rcol8_5"] == {"d5", "b7_5"} and bwd["rsense2"] == {"s2", "m2"}


def _stored_i_out(name: str) -> np.ndarray:
    ref = pd.read_csv(NETLISTS / f"{name}.out.csv")
    return ref[ref.quantity == "i_out"].sort_values("col").value.to_numpy()


@pytest.mark.parametrize("name", regenerate.BACKWARD_NAMES)
def test_backward_deck_text_is_pinned(name):
    G, V, c = regenerate.stored_backward_cases()[name]
    text = xb.netlist(G, V, c, **BACKWARD)
    assert text == (NETLISTS / f"{name}.cir").read_text()
    check_deck(text)  # only cards the ngspice adapter runs
    for line in text.splitlines():
        if line.startswith(("r", "v")):
            float(line.split()[-1])  # exponent form, never a scale suffix


@pytest.mark.parametrize("name", regenerate.BACKWARD_NAMES)
def test_exact_reproduces_stored_backward_ngspice(name):
    G, V, c = regenerate.stored_backward_cases()[name]
    ref = pd.read_csv(NETLISTS / f"{name}.out.csv")
    res = xb.solve(G, V, c, **BACKWARD)
    i_out = _stored_i_out(name)
    assert i_out.shape == (G.shape[0],)
    assert np.abs(res.i_out - i_out).max() <= 1e-9 * np.abs(i_out).max()
    for q in ("v_row", "v_col"):
        part = ref[ref.quantity == q]
        got = getattr(res, q)[part.row.to_numpy(), part.col.to_numpy()]
        assert np.abs(got - part.value.to_numpy()).max() <= 1e-12


def test_backward_golden_cases_are_read_from_the_npz(tmp_path):
    for name in regenerate.BACKWARD_NAMES:
        G, V, c = regenerate.load_inputs(regenerate.inputs_path(name))
        assert V.shape == (G.shape[1],)
        regenerate.save_inputs(regenerate.inputs_path(name, tmp_path), G * (1.0 + 1e-12), V, c)
    for name, (G, V, c) in regenerate.stored_backward_cases(tmp_path).items():
        assert xb.netlist(G, V, c, **BACKWARD) != (NETLISTS / f"{name}.cir").read_text()


def test_backward_read_scales_and_refuses_like_the_forward_read():
    """The turned array keeps every conductance, so the forward read's limits apply unchanged: the absolute
    scale does not matter (powers of two are exact), and a spread beyond 1e12 raises."""
    rng = np.random.default_rng(9)
    G = 10 ** rng.uniform(-6, -4, (6, 4))
    V = rng.uniform(-0.2, 0.2, 4)
    c = xb.CircuitParams(2.5, 2.5, 100.0, 50.0)
    s = 2.0**-700
    tiny = xb.CircuitParams(2.5 / s, 2.5 / s, 100.0 / s, 50.0 / s)
    assert rel(xb.simulate(G * s, V, tiny, **BACKWARD) / s, xb.simulate(G, V, c, **BACKWARD)) <= 1e-15
    assert rel(xb.g_nonideal(G * s, tiny, **BACKWARD) / s, xb.g_nonideal(G, c, **BACKWARD)) <= 1e-15
    wide = xb.CircuitParams(1e-10, 2.5, 100.0, 50.0)  # a 1e10 S wire against 1e-6 S cells
    for call in (lambda: xb.simulate(G, V, wide, **BACKWARD), lambda: xb.g_nonideal(G, wide, **BACKWARD),
                 lambda: xb.simulate(G, V, xb.CircuitParams(1e-4, 2.5, 100.0, 50.0), engine="ngspice", **BACKWARD)):
        with pytest.raises(ValueError, match="conductances span"):
            call()
