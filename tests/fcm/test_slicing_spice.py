"""Bit-sliced and bit-serial FCMs end to end against ngspice: x -> y with every tile of every slice and cycle
solved by ngspice on the full circuit.

The path under test is ``SlicedFCM.matmul_t`` itself (the input codes, the
cycles' bits, the shift-and-add over cycles and slices, the phases); its
``run`` hook evaluates each slice FCM once per cycle and phase, and here it
is ``xbarlab.verify.spice_reference.spice_evaluate``: the model's DAC codes,
every tile at those codes in ngspice (divider DACs, driver, wires, cells,
sense), the same ADC and accumulation. Bounds (EXACT DAC load, linear cells,
as ``tests/fcm/test_fcm_matmul_spice.py``):

* per slice and cycle: tile currents <= 1e-9 of the tile's largest current;
  ADC codes equal to those of ngspice's currents except within 1e-9 (relative,
  in LSB) of a rounding boundary (counted, and then the model's code is taken);
* y of the sliced path from ngspice equals ``SlicedFCM.matmul`` to 1e-9 of
  the largest |y|;
* ROWSUM (kappa 1, the default load model) on the same ngspice currents:
  per-column relative error of every tile of every slice and cycle within
  ``xbarlab.verify.rowsum_bound.rowsum_rel_bound``.

Small cases (8 x 8 and 6 x 10 tiles, 2 x 1 and 2 x 2 tiles per slice) keep
CI cost at a few hundred ngspice runs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab.fcm.slicing import SlicedFCM, Slicing
from xbarlab.verify import reference as ref
from xbarlab.verify.metrics import column_errors
from xbarlab.verify.rowsum_bound import rowsum_rel_bound
from xbarlab.verify.spice_reference import spice_evaluate

pytestmark = [pytest.mark.ngspice, pytest.mark.property]

EXACT_REL = 1e-9
BOUNDARY = 1e-9


def spec_of(rows, cols, device_bits, dac_bits, adc_bits, r_pd):
    base = xb.load_preset("spintronic").with_size(rows, cols)
    return base.replace(device=dataclasses.replace(base.device, bits=device_bits, levels=None),
                        dac=dataclasses.replace(base.dac, bits=dac_bits, r_pd=r_pd),
                        adc=dataclasses.replace(base.adc, bits=adc_bits))


def spice_run(counts: dict):
    """A ``run`` hook: each slice FCM's evaluation with ngspice's tile currents, checked against the model's."""
    def run(f, inp, signed):
        x = np.ascontiguousarray(inp.T)
        sp = spice_evaluate(f, x, workers=2)
        r = ref.evaluate(f, x)
        np.testing.assert_array_equal(r["codes"], sp["codes"])
        tile_max = np.abs(sp["I"]).max(axis=-1, keepdims=True)
        assert np.all(np.abs(r["I"] - sp["I"]) <= EXACT_REL * tile_max + 1e-18)
        counts["largest_dI"] = max(counts.get("largest_dI", 0.0),
                                   float((np.abs(r["I"] - sp["I"]) / np.where(tile_max > 0, tile_max, 1.0)).max()))
        counts["runs"] = counts.get("runs", 0) + int(np.count_nonzero(np.any(sp["tile_codes"] > 0, axis=-1))) * f.G.shape[0] * f.G.shape[2]
        rs = ref.evaluate(f.with_options(dac_load="rowsum"), x)["I"]  # ROWSUM (kappa 1) on ngspice's currents
        for idx in np.ndindex(*f.G.shape[:3]):
            e = column_errors(rs[(slice(None), slice(None)) + idx], sp["I"][(slice(None), slice(None)) + idx],
                              f.spec.full_scale_current_a)
            b = rowsum_rel_bound(f.spec, f.G[idx], 1.0)
            if not e["n_rel"]:  # (a tile whose columns carry no current: no relative error, NaN)
                continue
            assert e["max_rel"] <= b * (1 + 1e-6) + 1e-9
            counts["rowsum"] = max(counts.get("rowsum", 0.0), e["max_rel"] / (b * (1 + 1e-6) + 1e-9))
        D = sp["D"]
        if f.spec.adc.bits is not None:
            a = ref.adc_input(f, sp["I"])
            near = np.abs(a - np.floor(a) - 0.5) <= BOUNDARY * np.abs(a).max(axis=-1, keepdims=True)
            same = r["D"] == sp["D"]
            assert np.all(same | near)
            counts["near"] = counts.get("near", 0) + int(near.sum())
            counts["codes"] = counts.get("codes", 0) + int(same.size)
            D = np.where(near, r["D"], sp["D"])
        return ref.accumulate(f, D, sp["codes"], sp["scale"]).T
    return run


@pytest.mark.parametrize("rows, cols, K, N, device_bits, S, dac_bits, per_cycle, adc_bits, r_pd, signed", [
    (8, 8, 12, 6, 2, 3, 3, 1, 6, 20.0, False),  # 6-bit weights as 3 x 2 bits, 1-bit DAC (TxSim), 3 cycles
    (6, 10, 10, 14, 3, 2, 4, 2, 8, 200.0, True),  # 2 x 3 bits, 2 bits per cycle, signed inputs (2 phases)
    (8, 8, 12, 6, 2, 2, 3, None, None, 1000.0, False),  # weight slices only, ideal ADC
])
def test_sliced_bit_serial_fcm_equals_ngspice(ngspice, capsys, rows, cols, K, N, device_bits, S, dac_bits, per_cycle,
                                              adc_bits, r_pd, signed):
    spec = spec_of(rows, cols, device_bits, dac_bits, adc_bits, r_pd)
    rng = np.random.default_rng(rows * 100 + K)
    W = rng.standard_normal((K, N))
    x = rng.standard_normal((2, K)) if signed else rng.random((2, K))
    f = SlicedFCM.from_weights(W, spec, np.random.default_rng(1), xb.FCMOptions(dac_load="exact"),
                               Slicing(S, per_cycle))
    counts: dict = {}
    y_spice = f.matmul_t(np.ascontiguousarray(x.T), run=spice_run(counts)).T
    y = f.matmul(x)
    assert np.all(np.abs(y - y_spice) <= 1e-9 * np.abs(y_spice).max())
    with capsys.disabled():
        print(f"\nsliced {S} x {device_bits} bits, {f.cycles} input cycles of {per_cycle or dac_bits} bits, "
              f"{f.n_tiles} arrays: ~{counts['runs']} ngspice runs, largest |dI| / max |I| {counts['largest_dI']:.2g}"
              f", |dy| / max |y| {np.abs(y - y_spice).max() / np.abs(y_spice).max():.2g}, ROWSUM per-column error / "
              f"its bound {counts['rowsum']:.2g}, ADC codes within 1e-9 of "
              f"a boundary: {counts.get('near', 0)} of {counts.get('codes', 0)}")


@st.composite
def sliced_layers(draw):
    """(spec, W, x, slicing): a random small layer, its circuit and inputs, and a slicing of it."""
    rows, cols = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    K = draw(st.integers(1, 2 * rows))
    N = draw(st.integers(1, 2 * cols))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    circuit = xb.CircuitParams(r_row=draw(st.sampled_from([0.0, 1.0, 5.0])), r_col=draw(st.sampled_from([0.0, 2.5])),
                               r_sense=draw(st.sampled_from([0.0, 100.0])),
                               r_driver=draw(st.sampled_from([0.0, 50.0])))
    g_max = draw(st.sampled_from([1e-4, 1e-5]))
    device = xb.DeviceParams(g_min=g_max / 3.0, g_max=g_max, bits=draw(st.integers(1, 3)))
    dac_bits = draw(st.integers(1, 4))
    dac = xb.DACParams(bits=dac_bits, v_read=0.2, r_pd=draw(st.sampled_from([0.0, 20.0, 200.0, 1000.0])))
    adc = xb.ADCParams(bits=draw(st.sampled_from([None, 4, 6, 8])))
    spec = xb.CrossbarSpec(rows=rows, cols=cols, circuit=circuit, device=device, dac=dac, adc=adc)
    slicing = Slicing(draw(st.integers(1, 3)), draw(st.one_of(st.none(), st.integers(1, dac_bits))))
    signed = draw(st.booleans())
    W = rng.standard_normal((K, N))
    x = rng.standard_normal((1, K)) if signed else rng.random((1, K))
    return spec, W, x, slicing


@settings(max_examples=max(4, settings.default.max_examples // 10), deadline=None)
@given(case=sliced_layers())
def test_random_sliced_layers_equal_ngspice(ngspice, case):
    spec, W, x, slicing = case
    f = SlicedFCM.from_weights(W, spec, None, xb.FCMOptions(dac_load="exact"), slicing)
    y_spice = f.matmul_t(np.ascontiguousarray(x.T), run=spice_run({})).T
    y = f.matmul(x)
    assert np.all(np.abs(y - y_spice) <= 1e-9 * np.abs(y_spice).max() + 1e-300)
