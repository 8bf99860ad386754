"""The fast ``FCM.matmul`` paths equal the stage-by-stage reference (``xbarlab.verify.reference``).

* numpy float64, fused CPU kernels and plain array code: DAC codes bitwise; y equal to 1e-12 of its
  magnitude, except where a reference ADC input lies within 1e-12 of a rounding boundary (each such
  code may move y by one LSB weight; counted, none in these cases);
* torch float64 (CPU): the same;
* torch float32: DAC and ADC codes can flip where a value lies within float32 precision of a
  rounding boundary; y stays within (flips + 1e-5) LSB weights of the reference.
No ngspice: cheap, every DAC-load mode, both mappings, sinh cells, INL and fixed-scale ADCs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab.verify import reference as ref


@st.composite
def models(draw):
    rows, cols = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    K, N = draw(st.integers(1, 3 * rows)), draw(st.integers(1, 2 * cols))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    base = xb.load_preset(draw(st.sampled_from(["spintronic", "reram"])), rows=rows, cols=cols)
    dac = dataclasses.replace(base.dac, bits=draw(st.sampled_from([1, 4, 6])),
                              r_pd=draw(st.sampled_from([0.0, 20.0, 200.0, 1000.0])))
    bits = draw(st.sampled_from([None, 4, 6, 8]))
    inl, fs = draw(st.sampled_from([(), (0.0, 0.4, -0.3, 0.0)])), draw(st.sampled_from([None, 1e-4]))
    # (the ideal ADC takes neither an INL curve nor a full scale: ValueError)
    adc = xb.ADCParams(bits=None) if bits is None else xb.ADCParams(bits=bits, inl_lsb=inl, full_scale_a=fs)
    device = dataclasses.replace(base.device, sinh_b=draw(st.sampled_from([0.0, 2.0])))
    spec = base.replace(dac=dac, adc=adc, device=device)
    mode = draw(st.sampled_from(["rowsum", "none"] + ([] if device.sinh_b else ["exact"])))
    opts = xb.FCMOptions(dac_load=mode, mapping=draw(st.sampled_from(["differential", "offset"])),
                         load_factor=draw(st.sampled_from([1.0, 0.86])),
                         x_max=draw(st.sampled_from([None, 0.7])))
    f = xb.FCM.from_weights(rng.standard_normal((K, N)), spec, None, opts)
    x = rng.standard_normal((3, K)) if draw(st.booleans()) else rng.random((3, K))
    return f, x


def lsb_weight_bound(f, r, near):
    """sum of the LSB weights of the codes flagged ``near``, (B, N)."""
    dev, dac = f.spec.device, f.spec.dac
    gain = f.w_max / (dac.v_read * (dev.g_max - dev.g_min)) * (2.0 if f.options.mapping.value == "offset" else 1.0)
    A = ref.adc_values(f, near.astype(float)).sum(axis=(0, 2, 3))
    return A.reshape(A.shape[0], -1)[:, :f.shape[1]] * gain * r["scale"][:, None]


def near_boundary(f, r, tol):
    if f.spec.adc.bits is None:
        return np.zeros(r["I"].shape, dtype=bool)
    a = ref.adc_input(f, r["I"])
    return np.abs(a - np.floor(a) - 0.5) <= tol * np.maximum(np.abs(a), 1.0)


def scale_of(f, r):
    return lsb_weight_bound(f, r, np.abs(r["D"]) + 1.0) + np.abs(r["y"])


@pytest.mark.parametrize("kernels", ["auto", "array"])
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=models())
def test_numpy_paths_equal_the_reference(monkeypatch, kernels, case):
    f, x = case
    monkeypatch.setenv("XBARLAB_KERNELS", kernels)  # the same for every example of this run
    r = ref.evaluate(f, x)
    np.testing.assert_array_equal(f.codes(x)[0], r["codes"])
    near = near_boundary(f, r, 1e-12)
    allow = 1e-12 * scale_of(f, r) + lsb_weight_bound(f, r, near)
    assert np.all(np.abs(f.matmul(x) - r["y"]) <= allow)


@settings(max_examples=30)
@given(case=models())
def test_torch_paths_equal_the_reference(case):
    torch = pytest.importorskip("torch")
    f, x = case
    r = ref.evaluate(f, x)
    y64 = f.matmul(torch.as_tensor(x, dtype=torch.float64)).numpy()
    c64 = f.codes(torch.as_tensor(x, dtype=torch.float64))[0].numpy()
    np.testing.assert_array_equal(c64, r["codes"])
    near = near_boundary(f, r, 1e-12)
    assert np.all(np.abs(y64 - r["y"]) <= 1e-12 * scale_of(f, r) + lsb_weight_bound(f, r, near))
    y32 = f.matmul(torch.as_tensor(x, dtype=torch.float32)).numpy().astype(float)
    c32 = f.codes(torch.as_tensor(x, dtype=torch.float32))[0].numpy()
    xs = x / r["scale"][:, None] * f.spec.dac.full_code
    dac_flip = np.abs(np.abs(xs - np.floor(xs)) - 0.5) <= 1e-5 * np.maximum(np.abs(xs), 1.0)
    assert np.all((c32 == r["codes"]) | dac_flip[None] | dac_flip[None][::-1][: c32.shape[0]])
    if not dac_flip.any():  # same DAC codes: only ADC flips near a boundary (float32 precision)
        near32 = near_boundary(f, r, 1e-5)
        assert np.all(np.abs(y32 - r["y"]) <= 1e-5 * scale_of(f, r) + lsb_weight_bound(f, r, near32))



@pytest.mark.parametrize("mode", ["rowsum", "none", "exact"])
@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_a_vector_does_not_depend_on_whether_its_batch_is_signed(monkeypatch, mode, mapping):
    """An ADC whose INL reads 1 LSB at 0 A: a non-negative vector's negative phase (all-zero codes) read
    that offset once two phases ran, so its y moved (by 0.021 under the differential mapping, 1.43 under the
    offset one, for |y| up to ~7) when another vector of its batch had a negative entry, or with
    signed=True; now its negative phase is not converted
    (as the reference's), and y is the same alone, in a signed batch and with signed=True."""
    torch = pytest.importorskip("torch")
    spec = xb.load_preset("reram", rows=8, cols=4)
    spec = spec.replace(adc=xb.ADCParams(bits=6, inl_lsb=(0.7, 0.0, 0.0)),
                        dac=dataclasses.replace(spec.dac, r_pd=200.0))
    rng = np.random.default_rng(21)
    f = xb.FCM.from_weights(rng.standard_normal((19, 6)), spec, None, xb.FCMOptions(dac_load=mode, mapping=mapping))
    x = rng.random((3, 19))
    x[2] = -x[2]  # an all-negative vector: its positive phase (all-zero codes) reads the offset, as one phase does
    mixed = np.vstack([x, -rng.random((1, 19)) * x[0]])
    for kernels in ("auto", "array"):
        monkeypatch.setenv("XBARLAB_KERNELS", kernels)
        g = f.with_options()  # (a fresh plan cache)
        alone = np.vstack([g.matmul(x[i:i + 1]) for i in range(3)])
        for y in (g.matmul(x), g.matmul(x[:2], signed=True), g.matmul(mixed)[:3],
                  g.matmul(torch.as_tensor(mixed)).numpy()[:3], ref.evaluate(g, mixed)["y"][:3]):
            np.testing.assert_allclose(y, alone[:len(y)], rtol=0, atol=1e-12 * np.abs(alone).max())
    assert np.abs(alone[0]).min() > 0.0 and f.compile().reads_offset and f.compile().uses_code_sums
