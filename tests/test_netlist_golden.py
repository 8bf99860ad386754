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
from regenerate import cases  # noqa: E402

CASES = cases()


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
