"""Golden tests: the netlist writer's text is pinned, and the stored ngspice
outputs in netlists/ are reproduced by the exact solver (no ngspice needed).

Every case is read from its stored ``netlists/*.inputs.npz``, never rebuilt
from the seeded generators: those draw G with ``10 ** rng.uniform(...)``,
whose last bit differs between CPUs (AVX2 and AVX-512 round numpy's SIMD
``power`` differently)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import xbarlab as xb

NETLISTS = Path(__file__).resolve().parents[2] / "netlists"
sys.path.insert(0, str(NETLISTS))
import regenerate  # noqa: E402
from regenerate import dac_cases, dac_deck  # noqa: E402


def golden_cases(folder: Path = NETLISTS):
    """The golden cases: (G, V, CircuitParams) from the stored .inputs.npz in ``folder``."""
    return regenerate.stored_cases(folder)


CASES = golden_cases()
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


@pytest.mark.parametrize("code", [True, "1"])
def test_dac_decks_refuse_a_code_that_is_not_a_number(code):
    # True was written as code 1, and "1" raised TypeError from np.isfinite
    from xbarlab.netlist import dac_divider_netlist, dac_netlist

    dac = xb.DACParams(bits=2, v_read=0.2, r_pd=30.0)
    with pytest.raises(ValueError, match="code"):
        dac_divider_netlist(dac, code, 1e3)
    with pytest.raises(ValueError, match="codes"):
        dac_netlist(np.full((2, 2), 1e-5), [code, 3], xb.CircuitParams(), dac)


@pytest.mark.parametrize("sinh_b", [True, "1"])
def test_dac_deck_refuses_a_sinh_b_that_is_not_a_number(sinh_b):
    # both were float()ed into b = 1 /V: a sinh deck nobody asked for
    from xbarlab.netlist import dac_netlist

    with pytest.raises(ValueError, match="sinh_b"):
        dac_netlist(np.full((2, 2), 1e-5), [1, 3], xb.CircuitParams(), xb.DACParams(bits=2, v_read=0.2), sinh_b)


def _perturbed(G):
    return G * (1.0 + 1e-12)  # far above one ulp, so it shows in the 15 digits a deck carries


def test_golden_cases_ignore_the_generators(monkeypatch):
    """A generator whose last digits differ (another CPU) leaves every golden deck unchanged."""
    real = regenerate.generated_cases
    monkeypatch.setattr(regenerate, "generated_cases",
                        lambda: {k: (_perturbed(G), V, c) for k, (G, V, c) in real().items()})
    for name, (G, V, c) in golden_cases().items():
        assert xb.netlist(G, V, c) == (NETLISTS / f"{name}.cir").read_text()
    # The perturbation is visible had the generator been used.
    G, V, c = regenerate.generated_cases()["xbar_8x8"]
    assert xb.netlist(G, V, c) != (NETLISTS / "xbar_8x8.cir").read_text()


def test_golden_cases_are_read_from_the_npz(tmp_path):
    """The golden cases follow the stored .npz: a changed file changes the case and its deck."""
    for name in regenerate.NAMES:
        G, V, c = regenerate.load_inputs(regenerate.inputs_path(name))
        regenerate.save_inputs(regenerate.inputs_path(name, tmp_path), _perturbed(G), V, c)
    for name, (G, V, c) in golden_cases(tmp_path).items():
        assert xb.netlist(G, V, c) != (NETLISTS / f"{name}.cir").read_text()
    for name, (G, V, c) in golden_cases().items():
        with np.load(regenerate.inputs_path(name), allow_pickle=False) as d:
            assert np.array_equal(G, d["G"]) and np.array_equal(V, d["V"])


def test_stored_inputs_round_trip(tmp_path):
    c = xb.CircuitParams(r_row=1.0, r_col=0.0, r_sense=2.0, r_driver=[0.0, 3.0])
    path = tmp_path / "x.inputs.npz"
    regenerate.save_inputs(path, np.full((2, 2), 1e-5), [0.1, 0.2], c)
    G, V, c2 = regenerate.load_inputs(path)
    assert c2 == c and np.array_equal(G, np.full((2, 2), 1e-5)) and np.array_equal(V, [0.1, 0.2])
