"""1T-1R decks (xbarlab.netlist_1t1r): pinned golden text from stored inputs, the conventions of the
linear decks, and the stored ngspice output reproduced by the Newton solver from the stored table."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import xbarlab as xb
from xbarlab.engines.ngspice import check_deck, run_deck
from xbarlab.engines.nonlinear import solve
from xbarlab.netlist import netlist_1t1r
from xbarlab.transistor import AccessTransistor, TransistorSide

NETLISTS = Path(__file__).resolve().parents[2] / "netlists"
sys.path.insert(0, str(NETLISTS))
import regenerate_1t1r as golden  # noqa: E402

NAME = golden.NAME
# Newton on the stored 5 mV table against the stored ngspice .op, per output current: measured 1.6e-9
# relative (largest column) when the golden case was written; the stated bound of the 1T-1R solver
STORED_BOUND = 1e-6


def _stored():
    return golden.load_inputs(NETLISTS)


def test_golden_deck_text_is_pinned():
    G, V, c, acc = _stored()
    text = netlist_1t1r(G, V, c, acc)
    assert text == (NETLISTS / f"{NAME}.cir").read_text()
    check_deck(text)  # only cards the adapter runs


def test_deck_has_one_nmos_per_cell_and_the_gate_lines():
    G, V, c, acc = _stored()
    G = G.copy()
    G[0, 0] = 0.0  # an open cell: neither device nor transistor
    lines = netlist_1t1r(G, V, c, acc).splitlines()
    mos = [ln for ln in lines if ln.startswith("m")]
    assert len(mos) == 63 and not any(ln.startswith("m0_0 ") for ln in lines)
    assert "m0_1 x0_1 gr0 b0_1 0 xbnmos w=1.00000000000000e-07 l=5.00000000000000e-08" in lines
    assert "rcell0_1 a0_1 x0_1 " + xb.netlist.__globals__["spice_number"](1 / G[0, 1]) in lines
    assert sum(ln.startswith("vgr") for ln in lines) == 8 and "vgr3 gr3 0 dc 9.00000000000000e-01" in lines
    assert sum(ln.startswith(".model ") for ln in lines) == 1
    for ln in lines:
        if ln.startswith(("r", "v", "m", "+")):
            for tok in ln.replace("=", " ").split()[3:]:
                if tok[0].isdigit() or tok[0] == "-":
                    assert "e" in tok or tok in ("0", "4.8"), ln  # exponent form, never a scale suffix


def test_transistor_side_and_gate_line_options():
    G = np.full((2, 3), 1e-5)
    c = xb.CircuitParams(r_row=1.0, r_col=1.0)
    row = netlist_1t1r(G, [0.1, 0.2], c, AccessTransistor(side="row", gate_line="col")).splitlines()
    assert any(ln.startswith("m1_2 a1_2 gc2 x1_2 0 xbnmos") for ln in row)
    assert any(ln.startswith("rcell1_2 x1_2 b1_2 ") for ln in row)
    assert sum(ln.startswith("vgc") for ln in row) == 3
    merged = netlist_1t1r(G, [0.1, 0.2], xb.CircuitParams(), AccessTransistor()).splitlines()
    assert any(ln.startswith("m1_2 x1_2 gr1 b0_2 0 xbnmos") for ln in merged)  # the column is one net, held by vsense2
    with pytest.raises(ValueError, match="access"):
        netlist_1t1r(G, [0.1, 0.2], c, "1t1r")
    with pytest.raises(ValueError, match="shape"):
        netlist_1t1r(G, [0.1, 0.2, 0.3], c, AccessTransistor())


def test_newton_reproduces_stored_ngspice_from_the_stored_table():
    G, V, c, acc = _stored()
    ref = pd.read_csv(NETLISTS / f"{NAME}.out.csv")
    res = solve(G, V, c, golden.load_table(acc, NETLISTS))
    i_out = ref[ref.quantity == "i_out"].sort_values("col").value.to_numpy()
    rel = np.abs(res.i_out - i_out) / np.abs(i_out)
    print(f"stored 1T-1R 8x8: Newton vs ngspice, largest relative deviation per column {rel.max():.3g}")
    assert rel.max() <= STORED_BOUND
    for q in ("v_row", "v_col"):
        part = ref[ref.quantity == q]
        got = getattr(res, q)[part.row.to_numpy(), part.col.to_numpy()]
        assert np.abs(got - part.value.to_numpy()).max() <= STORED_BOUND * np.abs(V).max()


@pytest.mark.ngspice
def test_golden_deck_runs_in_ngspice_and_gives_the_stored_output(ngspice):
    text = (NETLISTS / f"{NAME}.cir").read_text()
    vec = run_deck(text)
    ref = pd.read_csv(NETLISTS / f"{NAME}.out.csv")
    i_out = ref[ref.quantity == "i_out"].sort_values("col").value.to_numpy()
    got = np.array([vec[f"i(vsense{j})"][0] for j in range(len(i_out))])
    assert np.abs(got - i_out).max() <= 1e-9 * np.abs(i_out).max()


@pytest.mark.parametrize("line", [
    ".model xbnmos nmos level=54 vth0={system(1)}",
    ".model xbnmos pmos level=54",
    "+ vth0='0.4'",
    "+ vth0=1meg",
    "m0 d g s 0 xbnmos w=1e-7 l=5e-8 m=2",
    "m0 d g s xbnmos w=1e-7 l=5e-8",
    ".dc vd 0 1 0.1 vs 0 1 0.1 vg 0 1 0.1",
    ".dc temp 0 100 1",
    ".options numdgt=15 rshunt=1e12",
    ".include card.lib",
])
def test_check_deck_refuses_foreign_1t1r_cards(line):
    G, V, c, acc = _stored()
    deck = netlist_1t1r(G, V, c, acc).split("\n")
    deck.insert(5, line)
    with pytest.raises(ValueError, match="not a card xbarlab writes"):
        check_deck("\n".join(deck))


@pytest.mark.parametrize("field, args", [
    ("vs_lo", ("x", 0.5, 0.6, 5e-3)),  # was float()'s bare "could not convert string to float"
    ("vs_lo", (True, 2.0, 0.6, 5e-3)),  # was read as 1 V
    ("vs_hi", (0.0, "0.5", 0.6, 5e-3)),  # was read as 0.5 V
    ("step", (0.0, 0.5, 0.6, None)),
])
def test_sweep_netlist_refuses_non_numbers_naming_the_field(field, args):
    from xbarlab.netlist_1t1r import sweep_netlist

    with pytest.raises(ValueError, match=field):
        sweep_netlist(AccessTransistor(), *args)


def test_sweep_netlist_refuses_a_grid_ngspice_cannot_hold():
    from xbarlab.netlist_1t1r import MAX_SWEEP_POINTS, sweep_netlist

    sweep_netlist(AccessTransistor(), -0.02, 0.55, 0.6, 5e-3)  # the default table: 27,715 points
    with pytest.raises(ValueError, match=r"step=1e-05 V .*MAX_SWEEP_POINTS"):
        sweep_netlist(AccessTransistor(), -0.02, 0.55, 0.6, 1e-5)  # about 6.8e9 points
    assert MAX_SWEEP_POINTS >= 241 * 115


def test_a_bad_side_names_the_field_side():
    with pytest.raises(ValueError, match=r"^side must be one of \['sense', 'row'\], got 'drain'"):
        AccessTransistor(side="drain")  # (the message named transistor_side, not the field)


def test_the_stored_table_refuses_another_transistor():
    import dataclasses

    _, _, _, acc = _stored()
    golden.load_table(dataclasses.replace(acc, side=TransistorSide.ROW), NETLISTS)  # the sweep does not see it
    with pytest.raises(ValueError, match="not the transistor the table was swept for"):
        golden.load_table(dataclasses.replace(acc, v_gate_v=acc.v_gate_v + 0.1), NETLISTS)
