"""The FCM's evaluation plans (``xbarlab.fcm.plans``) against the stage-by-stage reference.

* A plan is compiled once per model and (device, dtype), whatever the input shapes; it is frozen.
* The current stage (``FCM.tile_currents``, the code ``matmul`` runs before its ADC) equals the
  reference's tile currents: float64 paths to 1e-12 of the tile's largest current, float32 to 1e-5.
* The fused CPU kernels and the plain array code give bitwise the same currents (hence ADC codes).
* ADC codes of those currents equal the reference's, bitwise in float64 except where the reference's
  ADC input lies within 1e-12 (relative) of a rounding boundary, and in float32 except within 1e-5:
  every differing code is such a boundary case (counted and printed; none differs otherwise).
* float32 DAC codes differ from the float64 ones only where x / scale * full lies within 1e-5
  (relative) of a rounding boundary (counted and printed).
No ngspice; about 10 s here (``--hypothesis-profile=thorough``: 400 examples per property).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab.backend import NumpyNS, TorchNS
from xbarlab.fcm import plans, stages
from xbarlab.verify import reference as ref

torch = pytest.importorskip("torch")

#: (path, what) -> {"examples", "codes", "differ", "near"}: printed by conftest.py
STATS: dict = defaultdict(lambda: {"examples": 0, "codes": 0, "differ": 0, "near": 0})
TOL = {"float64": 1e-12, "float32": 1e-5}
#: examples per property: 30, or the profile's count when larger (``--hypothesis-profile=thorough``: 400)
EXAMPLES = max(30, settings.default.max_examples)


def stats_lines() -> list[str]:
    return [f"{path}, {what}: {s['examples']} examples, {s['differ']} of {s['codes']} codes differ from the "
            f"reference's, {s['near']} within {TOL['float32' if 'float32' in path else 'float64']:g} of a "
            f"rounding boundary" for (path, what), s in sorted(STATS.items())]


@st.composite
def models(draw):
    rows, cols = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    K, N = draw(st.integers(1, 3 * rows)), draw(st.integers(1, 2 * cols))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    base = xb.load_preset(draw(st.sampled_from(["spintronic", "reram"])), rows=rows, cols=cols)
    dac = dataclasses.replace(base.dac, bits=draw(st.sampled_from([1, 4, 6])),
                              r_pd=draw(st.sampled_from([0.0, 20.0, 200.0, 1000.0])))
    adc = xb.ADCParams(bits=draw(st.sampled_from([4, 6, 8])), inl_lsb=draw(st.sampled_from([(), (0.0, 0.4, -0.3, 0.0)])),
                       full_scale_a=draw(st.sampled_from([None, 1e-4])))
    device = dataclasses.replace(base.device, sinh_b=draw(st.sampled_from([0.0, 2.0])))
    spec = base.replace(dac=dac, adc=adc, device=device)
    mode = draw(st.sampled_from(["rowsum", "none"] + ([] if device.sinh_b else ["exact"])))
    opts = xb.FCMOptions(dac_load=mode, mapping=draw(st.sampled_from(["differential", "offset"])),
                         load_factor=draw(st.sampled_from([1.0, 0.86])))
    f = xb.FCM.from_weights(rng.standard_normal((K, N)), spec, None, opts)
    x = rng.standard_normal((3, K)) if draw(st.booleans()) else rng.random((3, K))
    return f, x


def reference_currents(f, r):
    """The reference's tile currents (P*B, S, Tk, Tn, Nc), the zero padding's columns set to 0, and the
    mask of real columns."""
    I = r["I"].reshape((-1,) + r["I"].shape[2:]).copy()
    real = np.ones(I.shape, dtype=bool)
    n_last = f.shape[1] - (f.Gn.shape[2] - 1) * f.Gn.shape[4]
    I[..., -1, n_last:] = 0.0
    real[..., -1, n_last:] = False
    return I, real


def stage_currents(f, codes, path, monkeypatch):
    """FCM.tile_currents on codes (P*B, K) along ``path``, as float64 (P*B, S, Tk, Tn, Nc)."""
    monkeypatch.setenv("XBARLAB_KERNELS", "array" if path == "numpy array code" else "auto")
    if path.startswith("numpy"):
        I = f.tile_currents(codes)
    else:
        I = f.tile_currents(torch.as_tensor(codes, dtype=getattr(torch, path.split()[-1]))).double().numpy()
    return np.moveaxis(I, 3, 0)


def check_codes(f, I, I_ref, real, path):
    """ADC codes of I equal the reference's except near a rounding boundary (counted)."""
    tol = TOL["float32" if "float32" in path else "float64"]
    a = ref.adc_input(f, I_ref)
    near = np.abs(a - np.floor(a) - 0.5) <= tol * np.maximum(np.abs(a), 1.0)
    differ = (ref.adc(f, I) != ref.adc(f, I_ref)) & real
    assert np.all(~differ | near), f"{path}: ADC codes differ away from a rounding boundary"
    s = STATS[(path, "ADC codes")]
    s["examples"] += 1
    s["codes"] += int(real.sum())
    s["differ"] += int(differ.sum())
    s["near"] += int((near & real).sum())


PATHS = ("numpy fused kernels", "numpy array code", "torch float64", "torch float32")


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(case=models())
def test_current_stage_and_adc_codes_equal_the_reference(monkeypatch, case):
    f, x = case
    r = ref.evaluate(f, x)
    codes = r["codes"].reshape(-1, f.shape[0])
    I_ref, real = reference_currents(f, r)
    tile_max = np.abs(I_ref).max(axis=-1, keepdims=True)
    out = {}
    for path in PATHS:
        I = out[path] = stage_currents(f, codes, path, monkeypatch)
        tol = TOL["float32" if "float32" in path else "float64"]
        assert np.all(np.abs(I - I_ref) <= tol * tile_max + 1e-300), path
        check_codes(f, I, I_ref, real, path)
    np.testing.assert_array_equal(out["numpy fused kernels"], out["numpy array code"])


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=models())
def test_float32_dac_code_flips_lie_at_rounding_boundaries(case):
    f, x = case
    r = ref.evaluate(f, x)
    c32 = f.codes(torch.as_tensor(x, dtype=torch.float32))[0].numpy()
    np.testing.assert_array_equal(f.codes(torch.as_tensor(x, dtype=torch.float64))[0].numpy(), r["codes"])
    xs = x / r["scale"][:, None] * f.spec.dac.full_code
    near = np.abs(np.abs(xs) - np.floor(np.abs(xs)) - 0.5) <= TOL["float32"] * np.maximum(np.abs(xs), 1.0)
    near = np.broadcast_to(near[None], c32.shape)
    differ = c32 != r["codes"]
    assert np.all(~differ | near)
    s = STATS[("torch float32", "DAC codes")]
    s["examples"] += 1
    s["codes"] += differ.size
    s["differ"] += int(differ.sum())
    s["near"] += int(near.sum())


@pytest.mark.parametrize("B", [1100])  # enough input vectors that ROWSUM takes its tiles in several blocks
def test_current_stage_in_blocks_equals_the_reference(monkeypatch, B):
    spec = xb.load_preset("spintronic").replace(dac=xb.DACParams(bits=6, v_read=0.25, r_pd=200.0))
    rng = np.random.default_rng(12)
    f = xb.FCM.from_weights(rng.standard_normal((150, 70)), spec, None)
    r = ref.evaluate(f, rng.random((B, 150)))
    I_ref, real = reference_currents(f, r)
    for path in PATHS[:2]:
        I = stage_currents(f, r["codes"].reshape(-1, 150), path, monkeypatch)
        assert np.all(np.abs(I - I_ref) <= 1e-12 * np.abs(I_ref).max(axis=-1, keepdims=True)), path
        check_codes(f, I, I_ref, real, path + " (blocks)")


def test_matmul_in_blocks_fused_equals_the_array_code(monkeypatch):
    """The whole ROWSUM evaluation where it takes one array's row tiles at a time (``RowsumGroup.runs``, the
    weights of each block): the fused kernels give the array code's outputs (the same DAC voltages, tile
    products and ADC codes; only the accumulation over tiles sums in another order), numpy and torch."""
    spec = xb.load_preset("spintronic").replace(dac=xb.DACParams(bits=6, v_read=0.25, r_pd=200.0))
    rng = np.random.default_rng(14)
    f = xb.FCM.from_weights(rng.standard_normal((150, 70)), spec, None)
    x = rng.random((1100, 150))
    fit = plans.GROUP_BYTES // (x.shape[0] * spec.rows * 8)  # tiles per block (float64)
    runs = [any(si.start is not None for _, si, _, _ in g.blocks(2, 2 if g.part == "full" else 1, fit))
            for g in f.compile().groups]
    assert runs == [True, False, True, False]  # the full row blocks in runs of one array, the last one whole
    for xa, tol in ((x, 1e-12), (torch.as_tensor(x, dtype=torch.float32), 1e-5)):
        ys = {}
        for kernels in ("auto", "array"):
            monkeypatch.setenv("XBARLAB_KERNELS", kernels)
            ys[kernels] = np.asarray(f.matmul(xa), dtype=float)
        assert np.abs(ys["auto"] - ys["array"]).max() <= tol * np.abs(ys["array"]).max()


def test_plans_compile_once_per_device_and_dtype():
    spec = xb.load_preset("spintronic", rows=16).replace(dac=xb.DACParams(bits=6, v_read=0.25, r_pd=20.0))
    rng = np.random.default_rng(13)
    W = rng.standard_normal((40, 20))
    kinds = {"rowsum": plans.RowsumPlan, "exact": plans.ExactPlan, "none": plans.UnloadedPlan}
    for mode, cls in kinds.items():
        f = xb.FCM.from_weights(W, spec, None, xb.FCMOptions(dac_load=mode))
        for b in (1, 7, 300):  # input shapes do not make plans
            f.matmul(rng.random((b, 40)))
            f.matmul(torch.as_tensor(rng.random((b, 40)), dtype=torch.float32))
            f.matmul_t(torch.as_tensor(rng.random((40, b)), dtype=torch.float64))
        assert set(f._plans) == {("numpy", "float64"), ("cpu", "torch.float32"), ("cpu", "torch.float64")}
        assert all(type(p) is cls for p in f._plans.values())
        p = f.compile(NumpyNS())
        assert p is f.compile() and not hasattr(f, "_plan")  # one entry point, no alias
        assert f.compile(TorchNS(torch.zeros(1))) is f._plans[("cpu", "torch.float32")]
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.noclip = False
    f = xb.FCM.from_weights(W, spec.replace(dac=xb.DACParams(bits=6, v_read=0.25, r_pd=0.0)), None)
    assert type(f.compile()) is plans.UnloadedPlan  # R_PD = 0: the DAC is not loaded, whatever the mode


def test_current_stage_rejects_bad_codes():
    spec = xb.load_preset("spintronic", rows=8)
    f = xb.FCM.from_weights(np.ones((12, 5)), spec, None)
    with pytest.raises(ValueError, match="codes must be"):
        f.tile_currents(np.zeros((2, 11)))
    with pytest.raises(ValueError, match="DAC codes"):
        f.tile_currents(np.full((2, 12), 0.5))
    with pytest.raises(ValueError, match="all-zero W"):
        xb.FCM.from_weights(np.zeros((12, 5)), spec, None).tile_currents(np.zeros((1, 12)))


def test_given_code_sums_give_the_plans_own_offset_bitwise():
    """``matmul_codes_t(..., code_sums=...)`` (the column sums a caller made with the codes, as
    ``dnn_eval.conv_codes`` does) equals the plan summing the codes itself, in every plan kind, numpy
    float64 and torch float32; only the offset mapping uses them."""
    spec = xb.load_preset("spintronic", rows=16).replace(dac=xb.DACParams(bits=6, v_read=0.25, r_pd=20.0))
    rng = np.random.default_rng(15)
    W, x = rng.standard_normal((40, 20)), rng.random((40, 33)) - 0.3  # x^T (K, R), signed: two phases
    for mode in ("rowsum", "exact", "none"):
        for mapping in ("offset", "differential"):
            f = xb.FCM.from_weights(W, spec, None, xb.FCMOptions(dac_load=mode, mapping=mapping))
            assert f.compile().uses_code_sums == (mapping == "offset")
            for xt in (x, torch.as_tensor(x, dtype=torch.float32)):
                ns = NumpyNS() if isinstance(xt, np.ndarray) else TorchNS(xt)
                codes, s = stages.dac_codes_t(ns, xt, spec.dac, None, None)
                own = f.matmul_codes_t(codes, s, 33)
                given_ = f.matmul_codes_t(codes, s, 33, code_sums=codes.sum(0))
                assert np.array_equal(np.asarray(own), np.asarray(given_)), (mode, mapping, type(xt))


@pytest.mark.parametrize("load", ["rowsum", "exact"])
def test_a_dac_load_float64_cannot_resolve_is_refused(load):
    """V = V_th / (1 + R_PD G_load (1 - c / full)): at the top code float64 computed 1 + R_PD G_load - R_PD G_load,
    losing the 1 as R_PD G_load grows (R_PD 1e18 ohm: y 0.5 % off the reference; 1e25: -inf, silently).
    Beyond ``MAX_DAC_LOAD`` evaluation raises; within it the model equals the reference evaluator."""
    from xbarlab.fcm.compile import MAX_DAC_LOAD
    from xbarlab.verify import reference

    rng = np.random.default_rng(0)
    W, x = rng.standard_normal((4, 3)), rng.random((2, 4))
    g_load = 4 * 1e-4  # 4 rows' cells of at most g_max per row
    for r_pd, ok in ((1e3, True), (0.5 * MAX_DAC_LOAD / g_load, True), (1e18, False), (1e25, False)):
        spec = xb.CrossbarSpec(rows=4, cols=3, device=xb.DeviceParams(g_min=1e-6, g_max=1e-4, bits=None),
                               dac=xb.DACParams(bits=8, v_read=0.2, r_pd=r_pd), adc=xb.ADCParams(bits=None))
        f = xb.FCM.from_weights(W, spec, None, xb.FCMOptions(dac_load=load))
        if ok:
            r = reference.evaluate(f, x)["y"]
            assert np.all(np.abs(f.matmul(x) - r) <= 1e-9 * np.abs(r).max())
        else:
            with pytest.raises(ValueError, match="r_pd = .* beyond the 1e\\+06"):
                f.matmul(x)
