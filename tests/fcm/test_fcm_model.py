"""Fast crossbar model: parameters, presets, mapping, evaluation (no ngspice needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab.fcm.mapping import conductances, tile
from xbarlab.verify.fitting import FITTED_DIR
from xbarlab.verify.spice_reference import exact_currents


def ideal_spec(rows=8, cols=8, **kw) -> xb.CrossbarSpec:
    """No parasitics, analog device, 16-bit DAC, ideal ADC: the FCM is x @ W up to DAC rounding."""
    return xb.CrossbarSpec(rows=rows, cols=cols, circuit=xb.CircuitParams(), device=xb.DeviceParams(bits=None),
                           dac=xb.DACParams(bits=16, r_pd=0.0), adc=xb.ADCParams(bits=None), **kw)


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize("name", ["spintronic", "reram"])
def test_presets_round_trip_and_cite_every_value(name):
    spec = xb.load_preset(name)
    assert xb.CrossbarSpec.from_json(spec.to_json()) == spec
    sources = xb.spec.preset_sources(name)
    d = spec.to_dict()
    for section in ("circuit", "dac"):
        for key in d[section]:
            assert f"{section}.{key}" in sources, f"{name}: no source for {section}.{key}"
    for key in ("g_min", "g_max", "bits"):
        assert f"device.{key}" in sources
    assert spec.with_size(16).rows == 16 and spec.with_size(16).cols == 16


def test_reram_preset_range():
    d = xb.load_preset("reram").device
    assert d.r_min == pytest.approx(100e3) and d.r_max == pytest.approx(1e6)


def test_unknown_preset_and_bad_spec():
    with pytest.raises(ValueError, match="preset"):
        xb.load_preset("../params")
    with pytest.raises(ValueError, match="rows"):
        xb.CrossbarSpec(rows=0)
    with pytest.raises(ValueError, match="device"):
        xb.CrossbarSpec(device="reram")


# ---------------------------------------------------------------- mapping and sampling
def test_tiling_pads_with_zeros():
    W = np.arange(1, 1 + 5 * 7, dtype=float).reshape(5, 7)
    T = tile(W, 3, 4)
    assert T.shape == (2, 2, 3, 4)
    assert np.array_equal(T[0, 0], W[:3, :4]) and np.array_equal(T[1, 1, :2, :3], W[3:, 4:])
    assert np.all(T[1, :, 2, :] == 0) and np.all(T[:, 1, :, 3] == 0)


def test_differential_pair_encodes_sign():
    dev = xb.DeviceParams(bits=None)
    W = np.array([[1.0, -0.5], [0.0, 0.25]])
    G = conductances(W[None, None], dev, 1.0)
    assert G.shape == (2, 1, 1, 2, 2)
    assert np.allclose((G[0] - G[1])[0, 0] / (dev.g_max - dev.g_min), W)
    assert np.all(G >= dev.g_min)


def test_one_seed_is_one_hardware_instance():
    spec = xb.load_preset("reram", rows=8).replace(
        device=xb.DeviceParams(g_min=1e-6, g_max=1e-5, variation=0.1, stuck_on_rate=0.01))
    W = np.random.default_rng(0).standard_normal((20, 10))
    a = xb.FCM.from_weights(W, spec, np.random.default_rng(7))
    b = xb.FCM.from_weights(W, spec, np.random.default_rng(7))
    c = xb.FCM.from_weights(W, spec, np.random.default_rng(8))
    assert np.array_equal(a.G, b.G) and np.array_equal(a.Gn, b.Gn)
    assert not np.array_equal(a.G, c.G)
    with pytest.raises(ValueError, match="rng"):
        xb.FCM.from_weights(W, spec, None)


def test_variation_and_fault_statistics():
    rng = np.random.default_rng(1)
    G0 = np.full((200, 200), 2e-5)
    for kind in ("normal", "lognormal"):
        d = xb.DeviceParams(g_min=1e-6, g_max=5e-5, variation=0.1, variation_kind=kind)
        G = d.sample(G0, rng)
        assert np.mean(G) == pytest.approx(2e-5, rel=0.01)
        assert np.std(G) / np.mean(G) == pytest.approx(0.1, rel=0.05)
    d = xb.DeviceParams(g_min=1e-6, g_max=5e-5, stuck_on_rate=0.1, stuck_off_rate=0.2)
    G = d.sample(G0, rng)
    assert np.mean(G == 5e-5) == pytest.approx(0.1, abs=0.01)
    assert np.mean(G == 1e-6) == pytest.approx(0.2, abs=0.01)


# ---------------------------------------------------------------- evaluation
def test_ideal_crossbar_computes_x_at_w():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((21, 13))
    f = xb.FCM.from_weights(W, ideal_spec(8, 8), None)
    for x in (np.abs(rng.standard_normal((5, 21))), rng.standard_normal((5, 21))):
        y = f.matmul(x)
        assert y.shape == (5, 13)
        assert np.abs(y - x @ W).max() <= 1e-4 * np.abs(x).sum(axis=1).max() * np.abs(W).max()
    assert f.matmul(x[0]).shape == (13,)


def test_offset_mapping_on_ideal_crossbar():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((10, 6))
    x = rng.standard_normal((4, 10))
    f = xb.FCM.from_weights(W, ideal_spec(4, 4), None, xb.FCMOptions(mapping="offset"))
    assert np.allclose(f.matmul(x), x @ W, rtol=0, atol=1e-3 * np.abs(x @ W).max())


@pytest.mark.parametrize("bits", [1, 2, 4, 6])
def test_offset_mapping_rounds_each_weight_to_the_nearest_level(bits):
    """On 2**bits levels q(1/2) is not the midpoint: rounding (w / w_max + 1) / 2 put every weight half a
    level low on average (up to a whole level), a bias that adds up over a layer's inputs (LeNet on digits,
    6-bit device, DAC and ADC, no parasitics: 0.75 against 0.83 unbiased). Each weight is now within half a
    level of w (a level is 2 w_max / (L - 1)), w = 0 is q(1/2) exactly, and the mean error is about 0."""
    dev = xb.DeviceParams(g_min=1e-6, g_max=1e-4, bits=bits)
    W = np.linspace(-1.0, 1.0, 4001)[:, None]
    G = conductances(W[None, None], dev, 1.0, xb.Mapping.OFFSET)[0, 0, 0]
    assert np.all(np.isin(G, dev.level_conductances()))
    step = (dev.g_max - dev.g_min) / (dev.levels - 1)
    w_eff = 2.0 * (G[:, 0] - dev.quantize(0.5)) / (dev.g_max - dev.g_min)  # what the offset mapping computes
    err = (w_eff - W[:, 0]) / (2.0 * step / (dev.g_max - dev.g_min))  # in levels
    assert np.abs(err).max() <= 0.5 + 1e-9 and abs(err.mean()) < 0.02
    assert w_eff[len(W) // 2] == 0.0
    Wk = W[:4000, 0].reshape(500, 8)  # (max |W| = 1: w_eff's scale); end to end, one weight row per input
    spec = ideal_spec(8, 8).replace(device=dev, dac=xb.DACParams(bits=20, v_read=0.2))
    f = xb.FCM.from_weights(Wk, spec, None, xb.FCMOptions(mapping="offset"))
    assert np.allclose(f.matmul(np.eye(500)), w_eff[:4000].reshape(500, 8), rtol=0, atol=1e-5)


@pytest.mark.parametrize("mapping", ["differential", "offset"])
@pytest.mark.parametrize("mode", ["rowsum", "exact", "none"])
def test_zero_weights_or_zero_inputs_give_exact_zero(mapping, mode):
    spec = xb.load_preset("spintronic", rows=8)
    opts = xb.FCMOptions(dac_load=mode, mapping=mapping)
    rng = np.random.default_rng(4)
    f0 = xb.FCM.from_weights(np.zeros((12, 5)), spec, None, opts)
    assert np.array_equal(f0.matmul(rng.standard_normal((3, 12))), np.zeros((3, 5)))
    f = xb.FCM.from_weights(rng.standard_normal((12, 5)), spec, None, opts)
    y = f.matmul(np.zeros((3, 12)))
    assert np.array_equal(y, np.zeros((3, 5)))


def test_bad_inputs_raise_value_error():
    spec = xb.load_preset("spintronic", rows=8)
    W = np.ones((12, 5))
    for bad in (np.array([[np.nan, 1.0]]), np.array([[np.inf]]), np.ones(5), np.ones((2, 2, 2)), np.ones((0, 3))):
        with pytest.raises(ValueError, match="W"):
            xb.FCM.from_weights(bad, spec, None)
    f = xb.FCM.from_weights(W, spec, None)
    with pytest.raises(ValueError, match="width"):
        f.matmul(np.ones((3, 11)))
    with pytest.raises(ValueError, match="x"):
        f.matmul(np.ones((2, 3, 12)))
    with pytest.raises(ValueError, match="finite"):
        f.matmul(np.full((1, 12), np.nan))
    with pytest.raises(ValueError, match="load_factor"):
        xb.FCMOptions(load_factor=0.0)
    for name in ("load_factor", "sinh_gamma", "x_max"):  # (a bool is an int: True was read as 1.0)
        with pytest.raises(ValueError, match=f"{name} must be a finite number > 0.*got True"):
            xb.FCMOptions(**{name: True})
    with pytest.raises(ValueError, match="dac_load"):
        xb.FCMOptions(dac_load="magic")


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # numpy on the unchecked Inf row
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_unchecked_non_finite_vector_leaves_the_others_alone(monkeypatch, bad):
    """check_finite=False: a NaN (or Inf) in one input vector gives non-finite outputs for that vector
    only; the other vectors' outputs are those of the batch without it, signed inputs included (a NaN
    made the signedness test's minimum NaN: one phase, every negative entry of the batch read as 0)."""
    import torch

    spec = xb.load_preset("spintronic", rows=8)
    rng = np.random.default_rng(21)
    f = xb.FCM.from_weights(rng.normal(size=(12, 5)), spec, None)
    x = rng.normal(size=(3, 12))
    xb_ = x.copy()
    xb_[1, 4] = bad
    for mode in ("array", "auto"):
        monkeypatch.setenv("XBARLAB_KERNELS", mode)
        for arr in (lambda a: a, torch.tensor):
            want = np.asarray(f.matmul(arr(x)))
            got = np.asarray(f.matmul(arr(xb_), check_finite=False))
            assert not np.all(np.isfinite(got[1]))
            np.testing.assert_array_equal(got[[0, 2]], want[[0, 2]])


def test_inputs_of_an_unsupported_dtype_raise():
    """float16 and bfloat16 tensors (whose range the model's constants overflow: a RuntimeError, or inf
    outputs without one) and complex inputs (whose imaginary part the cast dropped) raise ValueError
    naming the dtype; integer inputs compute in the default dtype."""
    import torch

    spec = xb.load_preset("reram").with_size(8, 8)
    rng = np.random.default_rng(22)
    f = xb.FCM.from_weights(rng.normal(size=(9, 5)), spec, np.random.default_rng(1))
    x = rng.random((2, 9))
    for dtype in (torch.float16, torch.bfloat16, torch.complex64):
        with pytest.raises(ValueError, match=f"got dtype {dtype}"):
            f.matmul(torch.tensor(x).to(dtype))
        with pytest.raises(ValueError, match=f"got dtype {dtype}"):
            f.matmul_t(torch.tensor(x.T).to(dtype))
    with pytest.raises(ValueError, match="got dtype complex128"):
        f.matmul(x + 1j)
    y = f.matmul(torch.arange(9)[None])
    assert y.dtype == torch.get_default_dtype() and torch.all(torch.isfinite(y))


@pytest.mark.parametrize("kernels", ["auto", "array"])
@pytest.mark.parametrize("dac_bits, adc_bits, sensing, refused", [
    (26, 8, "separate", "26-bit DAC"), (8, 26, "separate", "26-bit ADC"), (25, 25, "separate", "25-bit DAC"),
    (8, 25, "separate", "25-bit ADC"), (8, 26, "differential", "26-bit ADC"),
    (24, 24, "separate", None), (8, 25, "differential", None),  # (the bipolar ADC's codes reach 2**24 only)
])
def test_float32_refuses_converters_whose_codes_it_does_not_hold(monkeypatch, kernels, dac_bits, adc_bits,
                                                                   sensing, refused):
    """float32 holds every integer only up to 2**24: a 26-bit DAC's float32 codes were up to 3 codes off and
    its top code 2**26 - 1 read as 2**26 (beyond the range), an ADC's likewise. float32 inputs are refused
    there (ValueError naming the converter, its bits and float32) by every entry that makes or takes codes
    (matmul, matmul_t, codes, tile_currents, matmul_codes_t); float64 tensors compute them exactly (equal to
    numpy); a unipolar 24-bit and a bipolar 25-bit converter still run in float32 (codes within range)."""
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("XBARLAB_KERNELS", kernels)
    base = xb.load_preset("rxnn-spintronic", 8, 8)
    spec = base.replace(dac=xb.DACParams(bits=dac_bits, v_read=base.dac.v_read, r_pd=base.dac.r_pd),
                        adc=xb.ADCParams(bits=adc_bits))
    rng = np.random.default_rng(3)
    opts = xb.FCMOptions(sensing=sensing)
    f = xb.FCM.from_weights(rng.normal(size=(12, 10)), spec, np.random.default_rng(4), opts)
    x = rng.random((5, 12)).astype(np.float32) - 0.25
    x32, x64 = torch.as_tensor(x), torch.as_tensor(x, dtype=torch.float64)
    y64 = f.matmul(x64)
    np.testing.assert_allclose(y64.numpy(), f.matmul(x64.numpy()), rtol=1e-12, atol=1e-12 * float(y64.abs().max()))
    c64, _ = f.codes(x64)
    assert float(c64.max()) <= 2**dac_bits - 1 and torch.equal(c64, torch.round(c64))
    if refused is None:
        y32 = f.matmul(x32)
        c32, _ = f.codes(x32)
        assert float(c32.max()) <= 2**dac_bits - 1
        assert float((y32.double() - y64).abs().max()) <= 1e-4 * float(y64.abs().max())
        return
    msg = rf"the {refused}'s codes \(up to \d+\) are not exact integers in float32"
    calls = [lambda: f.matmul(x32), lambda: f.matmul_t(x32.T.contiguous()),
             lambda: f.tile_currents(c64.reshape(-1, 12).float()),
             lambda: f.matmul_codes_t(c64.reshape(-1, 12).T.contiguous().float(), 1.0, 5)]  # (K, P*R), R = 5
    if refused.endswith("DAC"):
        calls.append(lambda: f.codes(x32))
    for call in calls:
        with pytest.raises(ValueError, match=msg):
            call()


def test_weights_beyond_the_resolved_range_raise():
    """max |W| within mapping.W_MAX_BOUNDS (1e-30 .. 1e30, what float32 resolves) evaluates to x @ W on an
    ideal spec in float64 and float32; beyond it W is refused (1e304 gave NaN outputs, overflowed factors,
    1e-320 gave zeros), for plain and sliced models alike."""
    import torch

    from xbarlab.fcm.slicing import Slicing, build

    spec = ideal_spec()
    rng = np.random.default_rng(23)
    W0 = rng.normal(size=(9, 5))
    W0 /= np.abs(W0).max()
    x = rng.normal(size=(2, 9))
    for w_max in (1e-30, 1e30):
        for opts in (xb.FCMOptions(), xb.FCMOptions(mapping="offset")):
            f = xb.FCM.from_weights(W0 * w_max, spec, None, opts)
            want = x @ (W0 * w_max)
            for y in (f.matmul(x), f.matmul(torch.tensor(x, dtype=torch.float32)).double().numpy()):
                np.testing.assert_allclose(y, want, rtol=0, atol=1e-4 * np.abs(want).max())
    for w_max in (1e-320, 1e-31, 1e31, 1e304):
        with pytest.raises(ValueError, match="W's largest magnitude must be 0 or within"):
            xb.FCM.from_weights(W0 * w_max, spec, None)
        with pytest.raises(ValueError, match="W's largest magnitude"):
            build(W0 * w_max, spec.replace(device=xb.DeviceParams(bits=2)), None, None, Slicing(weight_slices=2))


def test_fixed_x_max_within_the_resolved_range(monkeypatch):
    """FCMOptions.x_max is bounded as ranges.FixedInput.x_max (X_MAX_BOUNDS): beyond, float32 cast it to 0 or
    inf (1e-50: zeros from the fused kernels, NaN from the array code). At the bounds float32 and float64
    agree, fused and array alike."""
    import torch

    from xbarlab.fcm.ranges import X_MAX_BOUNDS

    for bad in (1e-50, 1e-31, 1e31, 1e300):
        with pytest.raises(ValueError, match="x_max must be within"):
            xb.FCMOptions(x_max=bad)
    spec = xb.load_preset("reram").with_size(8, 8)
    rng = np.random.default_rng(24)
    W = rng.normal(size=(9, 5))
    for x_max in X_MAX_BOUNDS:
        f = xb.FCM.from_weights(W, spec, np.random.default_rng(1), xb.FCMOptions(x_max=x_max))
        x = rng.random((3, 9)) * x_max
        x[0] = 0.0
        y64 = f.matmul(x)
        for mode in ("array", "auto"):
            monkeypatch.setenv("XBARLAB_KERNELS", mode)
            y32 = f.matmul(torch.tensor(x, dtype=torch.float32)).double().numpy()
            assert np.all(np.isfinite(y32)) and np.all(y32[0] == 0.0)
            np.testing.assert_allclose(y32, y64, rtol=0, atol=1e-5 * np.abs(y64).max())


def test_torch_and_numpy_agree():
    torch = pytest.importorskip("torch")
    spec = xb.load_preset("spintronic", rows=16)
    rng = np.random.default_rng(5)
    W = rng.standard_normal((40, 20))
    x = rng.standard_normal((6, 40))
    for mode in ("rowsum", "exact"):
        f = xb.FCM.from_weights(W, spec, None, xb.FCMOptions(dac_load=mode))
        y = f.matmul(x)
        yt = f.matmul(torch.tensor(x, dtype=torch.float64))
        assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float64
        assert np.allclose(yt.numpy(), y, rtol=1e-9, atol=1e-12 * np.abs(y).max())
        y32 = f.matmul(torch.tensor(x, dtype=torch.float32))
        assert y32.dtype == torch.float32
        # float32 may flip a few ADC roundings: allow one LSB per tile and phase
        assert np.abs(y32.numpy() - y).max() <= 0.1 * np.abs(y).max()


def test_regenerate_keeps_spec_and_options():
    spec = xb.load_preset("reram", rows=8)
    f = xb.FCM.from_weights(np.ones((8, 8)), spec, None, xb.FCMOptions(load_factor=1.1))
    g = f.regenerate(-np.ones((8, 8)), None)
    assert g.spec == spec and g.options.load_factor == 1.1
    x = np.ones((1, 8))
    assert np.allclose(g.matmul(x), -f.matmul(x))


# ---------------------------------------------------------------- exact DAC load vs exact solver
@settings(max_examples=20)
@given(m=st.integers(1, 6), n=st.integers(1, 6), seed=st.integers(0, 2**31 - 1),
       r_pd=st.sampled_from([0.0, 10.0, 300.0]), r_row=st.sampled_from([0.0, 2.0]),
       r_drv=st.sampled_from([0.0, 50.0]))
def test_exact_dac_load_equals_exact_solver(m, n, seed, r_pd, r_row, r_drv):
    rng = np.random.default_rng(seed)
    spec = xb.CrossbarSpec(rows=m, cols=n, circuit=xb.CircuitParams(r_row=r_row, r_col=3.0, r_sense=50.0,
                                                                    r_driver=r_drv),
                           device=xb.DeviceParams(g_min=1e-6, g_max=1e-4, bits=None),
                           dac=xb.DACParams(bits=3, r_pd=r_pd))
    G = spec.device.quantize(rng.random((m, n)))
    codes = rng.integers(0, 8, (3, m)).astype(float)
    f = xb.FCM.from_tiles(G[None, None, None], spec, xb.FCMOptions(dac_load="exact"), (m, n), 1.0)
    I = f.tile_currents(codes)[0, 0, 0]
    ref = exact_currents(G, codes, spec)
    assert np.abs(I - ref).max() <= 1e-11 * max(np.abs(ref).max(), 1e-30)


def test_fitted_files_have_provenance():
    for path in sorted(FITTED_DIR.glob("*.json")):
        d = json.loads(path.read_text())
        assert {"spec", "options", "fit", "provenance"} <= set(d)
        if d["fit"]["values"]:
            assert d["fit"]["fitted"]["test"]["max_pct_fs"] >= 0


def test_ideal_circuit_gives_gn_equal_g_and_diagonal_port_admittance():
    spec = ideal_spec(4, 3)
    rng = np.random.default_rng(6)
    f = xb.FCM.from_weights(rng.standard_normal((6, 5)), spec, None, xb.FCMOptions(dac_load="exact"))
    assert np.array_equal(f.Gn, f.G)
    assert np.allclose(f.Y, np.einsum("...ij,ik->...ik", f.G.sum(-1)[..., None], np.eye(4)))


def test_fixed_input_full_scale_clips():
    rng = np.random.default_rng(7)
    W = rng.standard_normal((8, 3))
    f = xb.FCM.from_weights(W, ideal_spec(8, 3), None, xb.FCMOptions(x_max=1.0))
    x = np.array([[0.5] * 8, [3.0] * 8])
    y = f.matmul(x)
    assert np.allclose(y[0], x[0] @ W, atol=1e-3) and np.allclose(y[1], np.ones(8) @ W, atol=1e-3)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("x_max", [None, 1.5])
@pytest.mark.parametrize("shape", [(75, 40, 50), (700, 70, 1200)])  # (K, N, inputs): the second needs
def test_fused_cpu_kernels_match_the_array_code(monkeypatch, signed, x_max, shape):  # runs of row blocks
    """xbarlab.fcm.cpu_kernels (numba) and the plain array code give the same outputs: float64 to
    rounding of the tile accumulation, float32 tensors to float32 rounding."""
    import torch

    from xbarlab.fcm import FCM, FCMOptions

    k, n, b = shape
    spec = xb.load_preset("spintronic").replace(rows=32, cols=32)
    rng = np.random.default_rng(3)
    f = FCM.from_weights(rng.normal(size=(k, n)), spec, np.random.default_rng(4), FCMOptions(x_max=x_max))
    x = rng.normal(size=(b, k)) if signed else rng.random((b, k))
    out = {}
    for mode in ("array", "auto"):
        monkeypatch.setenv("XBARLAB_KERNELS", mode)
        out[mode] = (f.matmul(x), f.matmul(torch.tensor(x, dtype=torch.float32)).double().numpy())
    scale = np.abs(out["array"][0]).max()
    np.testing.assert_allclose(out["auto"][0], out["array"][0], rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(out["auto"][1], out["array"][1], rtol=0, atol=1e-5 * scale)


def test_kernel_choice_is_validated(monkeypatch):
    from xbarlab.fcm import cpu_kernels

    monkeypatch.setenv("XBARLAB_KERNELS", "fast")
    with pytest.raises(ValueError, match="XBARLAB_KERNELS.*'fast'"):
        cpu_kernels.enabled()


def test_signed_must_be_a_bool_or_none():
    f = xb.FCM.from_weights(np.eye(3), ideal_spec(4, 4), np.random.default_rng(0))
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="signed must be None, True or False, got 'no'"):
        f.matmul(x, signed="no")  # (was read as True)
    np.testing.assert_array_equal(f.matmul(x, signed=np.bool_(True)), f.matmul(x, signed=True))
