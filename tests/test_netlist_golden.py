"""Golden tests: the netlist writer's text is pinned, and the stored ngspice
outputs in netlists/ are reproduced by the exact solver (no ngspice needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import xbarlab as xb

NETLISTS = Path(__file__).resolve().parents[1] / "netlists"
sys.path.insert(0, str(NETLISTS))
from regenerate import cases, dac_cases, dac_deck  # noqa: E402

CASES = cases()
DAC_CASES = sorted(dac_cases())


@pytest.mark.parametrize("name", sorted(CASES))
def test_deck_text_is_pinned(name):
    G, V, c = CASES[name]
    assert xb.netlist(G, V, c) == (NETLISTS / f"{name}.cir").read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_exact_reproduces_stored_ngspice(name):
    G, V, c = CASES[name]
    ref = pd.read_csv(NETLISTS / f"{name}.out.csv")
    res = xb.solve(G, V, c)
    i_out = ref[ref.quantity == "i_out"].sort_values("col").value.to_numpy()
    assert np.abs(res.i_out - i_out).max() <= 1e-9 * np.abs(i_out).max()
    for q in ("v_row", "v_col"):
        part = ref[ref.quantity == q]
        got = getattr(res, q)[part.row.to_numpy(), part.col.to_numpy()]
        assert np.abs(got - part.value.to_numpy()).max() <= 1e-12


def test_numbers_never_use_scale_suffixes():
    G, V, c = CASES["xbar_8x8"]
    for line in xb.netlist(G, V, c).splitlines():
        if line.startswith(("r", "v")):
            value = line.split()[-1]
            float(value)  # plain exponent form, e.g. 1.00000000000000e+06, never 1M / 1meg
            assert "e" in value or value == "0"


def test_zero_resistance_merges_nodes_without_elements():
    text = xb.netlist(np.full((2, 2), 1e-5), [0.1, 0.2], xb.CircuitParams())
    assert not any(line.startswith(("rdrv", "rrow", "rcol", "rsense")) for line in text.splitlines())
    assert "rcell0_0 src0 b0_0" in text and "vsense0 b0_0 0" in text  # rows merged into sources, columns into one net


def test_netlist_is_deterministic_and_validated():
    G, V, c = CASES["xbar_3x2"]
    assert xb.netlist(G, V, c) == xb.netlist(G.copy(), list(V), c)
    with pytest.raises(ValueError):
        xb.netlist(G, np.ones((2, 3)), c)


@pytest.mark.parametrize("name", DAC_CASES)
def test_dac_divider_deck_is_pinned(name):
    text, dac, code, r_load = dac_deck(name)  # built from the stored inputs
    assert text == (NETLISTS / f"{name}.cir").read_text()
    for line in text.splitlines():
        if line.startswith(("r", "v")):
            float(line.split()[-1])  # exponent form, never a scale suffix


@pytest.mark.parametrize("name", DAC_CASES)
def test_dac_model_reproduces_stored_ngspice(name):
    _, dac, code, r_load = dac_deck(name)
    ref = pd.read_csv(NETLISTS / f"{name}.out.csv")
    v_sp = float(ref[ref.quantity == "v_out"].value.iloc[0])
    assert abs(float(dac.v_loaded([code], 1.0 / r_load)[0]) - v_sp) <= 1e-12 * dac.v_read


def test_dac_divider_deck_refuses_bad_input():
    from xbarlab.netlist import dac_divider_netlist

    dac = xb.DACParams(bits=2, v_read=0.2, r_pd=30.0)
    with pytest.raises(ValueError, match="codes"):
        dac_divider_netlist(dac, 4, 1e3)
    with pytest.raises(ValueError, match="r_load_ohm"):
        dac_divider_netlist(dac, 1, 0.0)
    with pytest.raises(ValueError, match="r_load_ohm"):
        dac_divider_netlist(dac, 1, float("inf"))
    with pytest.raises(ValueError, match="DACParams"):
        dac_divider_netlist({"bits": 2}, 1, 1e3)
