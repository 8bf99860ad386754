"""Bit-slicing (``xbarlab.fcm.slicing``) without ngspice: exact integer products, the plain default, bad input.

* With ideal converters and no parasitics, S slices of b-bit devices (and
  any number of input bits per cycle) give the unsliced integer product
  codes @ Wq exactly (Wq the weights on L**S - 1 steps), equal to the FCM
  of one (S b)-bit device per weight.
* One slice and all input bits in one cycle is the plain ``FCM``, bitwise.
* torch float64 equals numpy on a non-ideal sliced, bit-serial layer.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab.fcm.slicing import SlicedFCM, Slicing, build, slice_weights


def ideal(rows: int, cols: int, device_bits: int, dac_bits: int) -> xb.CrossbarSpec:
    """No parasitics, unloaded DAC of ``dac_bits``, ideal ADC, ``device_bits`` devices without variation."""
    spec = xb.load_preset("spintronic").with_size(rows, cols)
    return spec.replace(circuit=xb.CircuitParams.ideal(),
                        device=dataclasses.replace(spec.device, bits=device_bits, levels=None, variation=0.0,
                                                   stuck_on_rate=0.0, stuck_off_rate=0.0, sinh_b=0.0),
                        dac=dataclasses.replace(spec.dac, bits=dac_bits, r_pd=0.0),
                        adc=dataclasses.replace(spec.adc, bits=None))


def nonideal(rows: int, cols: int, device_bits: int, dac_bits: int) -> xb.CrossbarSpec:
    spec = xb.load_preset("spintronic").with_size(rows, cols)
    return spec.replace(device=dataclasses.replace(spec.device, bits=device_bits, levels=None),
                        dac=dataclasses.replace(spec.dac, bits=dac_bits))


@settings(max_examples=40, deadline=None)
# (explicit examples: several bits per cycle over several cycles, which the 40 drawn ones may miss)
@example(seed=5, b=2, S=2, dac_bits=4, per_cycle=2, rows=4, cols=3, K=9, N=5, signed=True, x_max=False)
@example(seed=6, b=1, S=3, dac_bits=7, per_cycle=3, rows=5, cols=4, K=12, N=7, signed=False, x_max=True)
@given(seed=st.integers(0, 2**32 - 1), b=st.integers(1, 3), S=st.integers(1, 4), dac_bits=st.integers(1, 8),
       per_cycle=st.one_of(st.none(), st.integers(1, 8)), rows=st.integers(1, 9), cols=st.integers(1, 9),
       K=st.integers(1, 20), N=st.integers(1, 12), signed=st.booleans(), x_max=st.booleans())
def test_slicing_reproduces_the_integer_product_exactly(seed, b, S, dac_bits, per_cycle, rows, cols, K, N, signed,
                                                        x_max):
    per_cycle = None if per_cycle is None else min(per_cycle, dac_bits)
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((K, N))
    x = rng.standard_normal((3, K)) if signed else rng.random((3, K))
    opts = xb.FCMOptions(x_max=1.5 if x_max else None)
    sl = Slicing(S, per_cycle)
    f = build(W, ideal(rows, cols, b, dac_bits), None, opts, sl)
    y = f.matmul(x)
    # the integer product: the FCM's own DAC codes (P, B, K) and the weights on L**S - 1 steps
    L, full = 2**b, 2**dac_bits - 1
    one = xb.FCM.from_weights(W, ideal(rows, cols, b * S, dac_bits), None, opts)  # one (S b)-bit device per weight
    codes, scale = one.codes(x)
    top = L**S - 1
    w_max = np.abs(W).max()
    Wq = (np.sign(W) * np.rint(np.abs(W) / w_max * top)).astype(np.int64)
    ci = codes.astype(np.int64)
    yint = ci[0] @ Wq - (ci[1] @ Wq if ci.shape[0] == 2 else 0)  # exact integers
    units = y / np.reshape(scale, (-1, 1)) * full / w_max * top
    mag = (ci.sum(axis=0) @ np.abs(Wq)).astype(float)
    assert np.all(np.abs(units - yint) <= 1e-9 * mag + 1e-9)
    np.testing.assert_array_equal(np.rint(units), yint)
    # the same bound in output units: where mag is 0 (a column whose weights all quantize to 0), the
    # pair's G+ and G- still round apart by an ulp each, so y is ~1e-16 * w_max, not exactly 0
    unit = w_max / top / full * np.reshape(scale, (-1, 1))
    assert np.all(np.abs(one.matmul(x) - y) <= (1e-9 * mag + 1e-9) * unit)
    digits, _ = slice_weights(W, L, S)
    np.testing.assert_array_equal(sum(d * L**s for s, d in enumerate(digits)), Wq)


@pytest.mark.parametrize("dac_bits, per_cycle", [(4, 2), (6, 2), (6, 3), (5, 2), (4, 1)])
@pytest.mark.parametrize("signed", [False, True])
def test_bit_serial_cycles_add_up_to_the_unsliced_fcm(dac_bits, per_cycle, signed):
    """One weight slice, the DAC codes fed ``per_cycle`` bits at a time (the last cycle holding the
    remaining bits when per_cycle does not divide the DAC's), on an ideal crossbar with an ideal ADC:
    sum_k 2**(per_cycle k) y_k is the unsliced FCM's output to float64 rounding."""
    spec = ideal(8, 6, 3, dac_bits)
    rng = np.random.default_rng(dac_bits * 10 + per_cycle)
    W = rng.standard_normal((20, 9))
    x = rng.standard_normal((4, 20)) if signed else rng.random((4, 20))
    f = build(W, spec, None, None, Slicing(1, per_cycle))
    assert isinstance(f, SlicedFCM) and f.cycles == -(-dac_bits // per_cycle)
    g = xb.FCM.from_weights(W, spec, None)
    ref = g.matmul(x)
    assert np.all(np.abs(f.matmul(x) - ref) <= 1e-12 * (np.abs(x) @ np.abs(W)))


def test_one_slice_one_cycle_is_the_plain_fcm_bitwise():
    spec = nonideal(16, 16, 6, 6)
    rng = np.random.default_rng(3)
    W, x = rng.standard_normal((40, 20)), rng.standard_normal((5, 40))
    opts = xb.FCMOptions(load_factor=0.95)
    f = build(W, spec, np.random.default_rng(7), opts, Slicing(1, 6))
    g = xb.FCM.from_weights(W, spec, np.random.default_rng(7), opts)
    assert type(f) is xb.FCM
    np.testing.assert_array_equal(f.matmul(x), g.matmul(x))
    np.testing.assert_array_equal(build(W, spec, np.random.default_rng(7), opts).matmul(x), g.matmul(x))


def test_sliced_bit_serial_nonideal_layer_numpy_equals_torch_and_is_close_to_the_weights():
    torch = pytest.importorskip("torch")
    spec = nonideal(16, 16, 2, 6)
    rng = np.random.default_rng(5)
    W, x = rng.standard_normal((40, 20)), rng.random((6, 40))
    f = SlicedFCM.from_weights(W, spec, np.random.default_rng(1), xb.FCMOptions(), Slicing(3, 1))
    assert f.n_tiles == 3 * 2 * 3 * 2 and f.cycles == 6 and len(f.fcms) == 3
    assert all(g.spec.dac.bits == 1 for g in f.fcms)
    y = f.matmul(x)
    yt = f.matmul(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(yt, y, rtol=0, atol=1e-9 * np.abs(y).max())
    rel = np.linalg.norm(y - x @ W) / np.linalg.norm(x @ W)
    assert rel < 0.5  # the hardware is non-ideal (variation, parasitics, 6-bit ADC), but it computes x @ W
    assert f.with_options(dac_load="none").fcms[0].options.x_max == 1.0  # the cycle's DAC scale is kept


@pytest.mark.parametrize("kw, match", [
    ({"weight_slices": 0}, "weight_slices"), ({"weight_slices": 17}, "weight_slices"),
    ({"weight_slices": True}, "weight_slices"), ({"weight_slices": 2.0}, "weight_slices"),
    ({"input_bits_per_cycle": 0}, "input_bits_per_cycle"), ({"input_bits_per_cycle": 33}, "input_bits_per_cycle"),
])
def test_bad_slicing_values_name_the_field(kw, match):
    with pytest.raises(ValueError, match=match):
        Slicing(**kw)


def test_slicing_that_does_not_fit_the_hardware_is_refused():
    W = np.ones((4, 3))
    with pytest.raises(ValueError, match="input_bits_per_cycle must be at most the DAC's 6 bits, got 7"):
        build(W, nonideal(4, 4, 2, 6), None, None, Slicing(1, 7))
    analog = ideal(4, 4, 2, 6).replace(device=dataclasses.replace(ideal(4, 4, 2, 6).device, bits=None, levels=None))
    with pytest.raises(ValueError, match="analog"):
        build(W, analog, None, None, Slicing(2))
    with pytest.raises(ValueError, match="differential"):
        build(W, ideal(4, 4, 2, 6), None, xb.FCMOptions(mapping="offset"), Slicing(2))
    with pytest.raises(ValueError, match="2\\*\\*52"):
        build(W, ideal(4, 4, 8, 6), None, None, Slicing(7))
    varied = nonideal(4, 4, 2, 6).replace(device=dataclasses.replace(nonideal(4, 4, 2, 6).device, variation=0.1))
    with pytest.raises(ValueError, match="rng"):
        build(W, varied, None, None, Slicing(2))


def test_offset_mapping_runs_bit_serial():
    spec = ideal(8, 8, 6, 4)
    rng = np.random.default_rng(2)
    W, x = rng.standard_normal((12, 5)), rng.random((4, 12))
    opts = xb.FCMOptions(mapping="offset")
    f = build(W, spec, None, opts, Slicing(1, 1))
    g = xb.FCM.from_weights(W, spec, None, opts)
    np.testing.assert_allclose(f.matmul(x), g.matmul(x), rtol=0, atol=1e-12 * np.abs(g.matmul(x)).max())


def test_sliced_bit_serial_on_cuda_equals_numpy():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    spec = nonideal(16, 16, 2, 6)
    rng = np.random.default_rng(6)
    W, x = rng.standard_normal((40, 20)), rng.standard_normal((6, 40))
    f = SlicedFCM.from_weights(W, spec, np.random.default_rng(1), xb.FCMOptions(), Slicing(3, 2))
    y = f.matmul(x)
    yc = f.matmul(torch.as_tensor(x, device="cuda")).cpu().numpy()
    np.testing.assert_allclose(yc, y, rtol=0, atol=1e-9 * np.abs(y).max())


@pytest.mark.parametrize("x_max", [None, 0.7])
@pytest.mark.parametrize("kind", ["signed", "non-negative", "negative promised non-negative"])
def test_bit_serial_codes_are_the_fcm_dac_stage(kind, x_max):
    """The bit-serial input codes are the FCM's own DAC codes (``stages.dac_codes_t``, one DAC-code
    function), both phases, numpy and torch; a negative entry under signed=False reads as code 0 (the
    fused kernel's and the array code's values agree)."""
    torch = pytest.importorskip("torch")
    from xbarlab.backend import namespace_for
    from xbarlab.fcm import cpu_kernels
    from xbarlab.fcm.stages import dac_codes_t

    spec = nonideal(8, 8, 2, 6)
    rng = np.random.default_rng(11)
    W = rng.standard_normal((20, 10))
    x = rng.standard_normal((20, 33)) * 3.0
    x[:, 4] = 0.0
    signed = {"signed": None, "non-negative": None, "negative promised non-negative": False}[kind]
    if kind == "non-negative":
        x = np.abs(x)
    f = SlicedFCM.from_weights(W, spec, np.random.default_rng(1), xb.FCMOptions(x_max=x_max), Slicing(1, 2))
    for xa in (x, torch.as_tensor(x), torch.as_tensor(x, dtype=torch.float32)):
        ns, xa = namespace_for(xa)
        phases, s = f._input_codes(ns, xa, signed)
        assert [p for p, _ in phases] == ([1.0, -1.0] if kind == "signed" else [1.0])
        codes = np.concatenate([np.asarray(c) for _, c in phases], axis=1)
        ref, sref = dac_codes_t(ns, xa, spec.dac, x_max, signed)
        np.testing.assert_array_equal(codes, np.asarray(ref))
        np.testing.assert_array_equal(np.asarray(s), np.asarray(sref))
        assert codes.min() >= 0 and codes.max() <= spec.dac.full_code
        if cpu_kernels.enabled():  # the fused kernel writes the same codes
            fc, fs = dac_codes_t(ns, xa, spec.dac, x_max, signed, fused=True)
            np.testing.assert_array_equal(np.asarray(fc), codes)
            np.testing.assert_array_equal(np.asarray(fs), np.asarray(s))
        if kind == "negative promised non-negative":
            assert np.all(codes[x < 0] == 0)


@pytest.mark.parametrize("dac_bits, per_cycle", [(26, 13), (32, 8)])
def test_bit_serial_codes_float32_cannot_hold_are_refused(dac_bits, per_cycle):
    """float32 holds integer codes up to 2**24: a 26-bit DAC's top code 2**26 - 1 rounded to 2**26, whose
    bits lie past the last 13-bit cycle, and the largest input of each vector was fed as code 0 (y off by
    tens of percent, silently). float32 inputs are refused there; float64 ones give the unsliced FCM."""
    torch = pytest.importorskip("torch")
    spec = ideal(4, 3, 3, dac_bits)
    rng = np.random.default_rng(3)
    W, x = rng.standard_normal((7, 5)), rng.random((3, 7))
    f = build(W, spec, None, None, Slicing(1, per_cycle))
    with pytest.raises(ValueError, match=f"does not hold the DAC's {dac_bits}-bit codes"):
        f.matmul(torch.as_tensor(x, dtype=torch.float32))
    ref = xb.FCM.from_weights(W, spec, None).matmul(x)
    for xa in (x, torch.as_tensor(x)):
        assert np.all(np.abs(np.asarray(f.matmul(xa)) - ref) <= 1e-12 * (np.abs(x) @ np.abs(W)))
    assert build(W, ideal(4, 3, 3, 24), None, None, Slicing(1, 12)).matmul(
        torch.as_tensor(x, dtype=torch.float32)).dtype == torch.float32  # 24 bits: float32 holds them


@pytest.mark.parametrize("slices, per_cycle", [(1, 2), (2, 1), (2, None)])
def test_a_sliced_vector_does_not_depend_on_whether_its_batch_is_signed(slices, per_cycle):
    """An ADC whose INL reads 1 LSB at 0 A: the cycles of a non-negative vector's negative phase (all-zero
    codes) read that offset once its batch was signed, so its y moved with the other vectors (by 0.038-0.048 here, |y| up to ~7.6);
    now that phase is not run, as in the FCM's plans."""
    spec = nonideal(8, 4, 2, 4).replace(adc=xb.ADCParams(bits=6, inl_lsb=(0.7, 0.0, 0.0)))
    rng = np.random.default_rng(8)
    f = build(rng.standard_normal((19, 6)), spec, np.random.default_rng(2), None, Slicing(slices, per_cycle))
    x = rng.random((2, 19))
    alone = np.vstack([f.matmul(x[i:i + 1]) for i in range(2)])
    for y in (f.matmul(np.vstack([x, -x[:1]]))[:2], f.matmul(x, signed=True)):
        np.testing.assert_allclose(y, alone, rtol=0, atol=1e-12 * np.abs(alone).max())
