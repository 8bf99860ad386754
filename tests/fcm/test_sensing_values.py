"""Sensing schemes and the ADC kernels against values known without the model.

The stage-by-stage reference (``xbarlab.verify.reference``) and the ngspice comparison share the
sensing module's gain, LSB and code range with the model, so a mistake there would change both
sides alike. These tests pin those parts to numbers derived by hand:

* on an ideal crossbar (no parasitics, unloaded DAC, continuous devices, ideal ADC) every mapping and
  sensing scheme computes x_q @ W, x_q the DAC-quantized input, to float64 rounding;
* a 4-bit bipolar ADC has the codes -8..7: a column at its worst-case full scale reads 7, not 8;
* the fused ADC kernels round half to even (numpy's ``rint``), as the array code does.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import xbarlab as xb
from xbarlab.fcm import cpu_kernels, sensing

ALL_SCHEMES = [("separate", "differential"), ("separate", "offset"), ("differential", "differential"),
               ("reference", "offset")]


def ideal_spec(rows: int, cols: int, dac_bits: int, adc_bits: int | None) -> xb.CrossbarSpec:
    return xb.CrossbarSpec(rows=rows, cols=cols, circuit=xb.CircuitParams(),
                           device=xb.DeviceParams(g_min=1e-5, g_max=1e-4, bits=None),
                           dac=xb.DACParams(bits=dac_bits, v_read=0.2, r_pd=0.0), adc=xb.ADCParams(bits=adc_bits))


@pytest.mark.parametrize("sensing_scheme, mapping", ALL_SCHEMES)
def test_every_scheme_computes_the_quantized_product_on_an_ideal_crossbar(sensing_scheme, mapping):
    """y = x_q @ W to 1e-12 of |x_q| @ |W|; x_q = rint(x / s * 255) / 255 * s, s = max|x| per vector (the
    DAC's per-vector scale, its default without ``x_max``). A wrong gain (a factor 2 of the offset
    mapping lost) or a wrong sign of the subtraction fails here."""
    rng = np.random.default_rng(0)
    W, x = rng.uniform(-1, 1, (40, 20)), rng.uniform(0, 1, (5, 40))  # 3 x 2 tiles of 16 x 12
    f = xb.FCM.from_weights(W, ideal_spec(16, 12, 8, None), None,
                            xb.FCMOptions(sensing=sensing_scheme, mapping=mapping))
    s = np.abs(x).max(axis=1, keepdims=True)
    xq = np.rint(x / s * 255) / 255 * s
    y = f.matmul(x)
    assert np.all(np.abs(y - xq @ W) <= 1e-12 * (np.abs(xq) @ np.abs(W)))


def test_bipolar_adc_codes_are_minus_h_to_h_minus_one():
    assert sensing.code_range(xb.ADCParams(bits=4)) == (-8.0, 7.0)
    assert sensing.code_range(xb.ADCParams(bits=1)) == (-1.0, 0.0)


@pytest.mark.parametrize("sensing_scheme, mapping", [("differential", "differential"), ("reference", "offset")])
def test_a_one_bit_bipolar_adc_is_refused(sensing_scheme, mapping):
    """1 bit of two's complement is the sign alone (codes -1, 0): every positive difference read 0, so
    x >= 0 through positive weights gave y = 0 silently. Refused, at generation and in with_options."""
    W = np.ones((4, 3))
    opts = xb.FCMOptions(sensing=sensing_scheme, mapping=mapping)
    with pytest.raises(ValueError, match="bits must be >= 2 .*got bits=1"):
        xb.FCM.from_weights(W, ideal_spec(4, 3, 4, 1), None, opts)
    f = xb.FCM.from_weights(W, ideal_spec(4, 3, 4, 2), None, opts)  # 2 bits: codes -2..1, x = 1 reads +1
    np.testing.assert_allclose(f.matmul(np.ones((1, 4))), [[2.0, 2.0, 2.0]], rtol=1e-12)
    g = xb.FCM.from_weights(W, ideal_spec(4, 3, 4, 1), None, xb.FCMOptions(mapping=mapping))  # separate: kept
    with pytest.raises(ValueError, match="bits must be >= 2"):
        g.with_options(sensing=sensing_scheme) if sensing_scheme == "differential" else \
            xb.FCM.from_weights(W, ideal_spec(4, 3, 4, 1), None, opts)


@pytest.mark.parametrize("sensing_scheme, mapping", [("differential", "differential"), ("reference", "offset")])
def test_a_column_at_full_scale_reads_the_top_code(sensing_scheme, mapping):
    """4-bit ADC of the difference, worst-case full scale v * sum_i |G_a - G_b| (= 8 weight units for a
    column of eight +1 or -1 weights): x = 1 reads +8 units as the top code 7, -8 units as -8, 4 units as 4."""
    W = np.ones((8, 4))
    W[:, 1], W[:, 2] = -1.0, 0.5
    f = xb.FCM.from_weights(W, ideal_spec(8, 4, 4, 4), None, xb.FCMOptions(sensing=sensing_scheme, mapping=mapping))
    np.testing.assert_allclose(f.matmul(np.ones((1, 8))), [[7.0, -8.0, 4.0, 7.0]], rtol=1e-12)


TIES = np.array([2.5, 3.5, -2.5, 0.5, 1.25, 4.0])
ROUNDED = np.array([2.0, 4.0, -2.0, 0.0, 1.0, 4.0])  # half to even


@pytest.mark.parametrize("compiled", [True, False])
def test_adc_kernels_round_half_to_even(compiled):
    """``adc_accumulate`` (unclipped) and ``diff_accumulate`` (clipped to [-8, 7]) on hand-made LSB values:
    one column block, one tile, weight 1. ``compiled``: the numba build, else the kernels' Python source."""
    if compiled and not cpu_kernels.enabled():
        pytest.fail("the compiled kernels are not enabled (numba is a dependency of xbarlab)")
    k = cpu_kernels.kernels() if compiled else SimpleNamespace(**cpu_kernels._KERNELS)
    w = np.ones((1, 1))
    y = np.empty((1, 1, TIES.size))
    k.adc_accumulate(TIES.reshape(1, 1, 1, -1), w, 15.0, False, y, True)
    np.testing.assert_array_equal(y.ravel(), ROUNDED)
    pair = np.stack([TIES + 10.0, np.full_like(TIES, 10.0)])  # I+ - I- = TIES exactly (binary fractions)
    k.diff_accumulate(pair.reshape(1, 2, 1, 1, -1), w, -8.0, 7.0, True, y, True)
    np.testing.assert_array_equal(y.ravel(), ROUNDED)
