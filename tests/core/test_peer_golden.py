"""Golden circuits from a peer: badcrossbar's 33 QUCS-simulated crossbars (netlists/badcrossbar/).

The arrays were converted once from badcrossbar's pickles (``netlists/badcrossbar/convert.py``)
into ``qucs.npz``; it is read here with ``allow_pickle=False``. badcrossbar's convention is the
same circuit as xbarlab's with r_row = r_i_word_line, r_col = r_i_bit_line, r_driver = r_sense = 0.
xbarlab's exact solver matches every stored current and node voltage to 4.6e-16 of the
circuit's largest value (measured when the data was added); the bound checked is 1e-12.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import xbarlab as xb

DATA = Path(__file__).resolve().parents[2] / "netlists" / "badcrossbar" / "qucs.npz"
REL = 1e-12  # relative to the largest magnitude of each quantity in the circuit


def _cases():
    with np.load(DATA, allow_pickle=False) as d:
        return [str(c) for c in d["cases"]]


def _case(name: str) -> dict:
    with np.load(DATA, allow_pickle=False) as d:
        return {k.split("__", 1)[1]: d[k] for k in d.files if k.startswith(name + "__")}


def _circuit(c: dict) -> xb.CircuitParams:
    return xb.CircuitParams(r_row=float(c["r_i_word_line"]), r_col=float(c["r_i_bit_line"]),
                            r_sense=0.0, r_driver=0.0)


def _close(got, want, what, name):
    scale = np.max(np.abs(want))
    diff = np.max(np.abs(np.asarray(got) - want))
    if scale == 0:  # a circuit with all inputs at 0 V: every value must be exactly 0
        assert diff == 0, f"{name} {what}: {diff:.2e} where QUCS has 0"
        return
    err = diff / scale
    assert err <= REL, f"{name} {what}: {err:.2e} relative"


def test_all_33_circuits_are_there():
    assert len(_cases()) == 33


@pytest.mark.parametrize("name", _cases())
def test_qucs_circuit(name):
    c = _case(name)
    G = 1.0 / c["resistances"]
    V = c["applied_voltages"][:, 0]
    circuit = _circuit(c)
    r = xb.solve(G, V, circuit)
    _close(r.i_out, c["i_output"].reshape(-1), "output currents", name)
    _close(r.i_cell, c["i_device"].reshape(G.shape), "device currents", name)
    _close(r.v_row, c["v_word_line"].reshape(G.shape), "word-line voltages", name)
    _close(r.v_col, c["v_bit_line"].reshape(G.shape), "bit-line voltages", name)
    _close(V @ xb.g_nonideal(G, circuit), c["i_output"].reshape(-1), "V @ g_nonideal", name)
