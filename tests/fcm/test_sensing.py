"""Sensing schemes (``xbarlab.fcm.sensing``): separate, differential, reference column.

Without ngspice: the options' checks, the default unchanged, the reference column's cells, the
difference's full-scale rule, and the fast paths (fused kernels, array code, torch float64) equal
to the stage-by-stage reference (``xbarlab.verify.reference``) up to ADC codes whose input lies
within 1e-12 of a rounding boundary (counted).

Against ngspice (``spice_evaluate``: every tile, the reference column included as a real column of
the array, at the model's DAC codes; the subtraction is a differential read of the two sense
currents ngspice gives, i(vsense_j) - i(vsense_ref), or I+ - I- of the pair's two decks):

* EXACT DAC load, linear cells: every column current <= 1e-9 relative to the tile's largest; ADC
  codes equal except where ngspice's ADC input lies within 1e-9 (relative, in LSB) of a rounding
  boundary (counted); y equal to ngspice's y built from those codes to 1e-12 of its magnitude.
* ROWSUM: each column current within ``rowsum_rel_bound`` (relative), hence each difference within
  b (|Ia| + |Ib|); ADC codes within that in LSB + 1 code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections import defaultdict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab.fcm import sensing
from xbarlab.fcm.compile import compile_plan
from xbarlab.verify import reference as ref
from xbarlab.verify.rowsum_bound import rowsum_rel_bound
from xbarlab.verify.spice_reference import spice_evaluate

SCHEMES = [("differential", "differential"), ("reference", "offset")]
FAST_BOUNDARY = 1e-12
BOUNDARY = 1e-9
EXACT_REL = 1e-9
STATS: dict = defaultdict(lambda: [0, 0, 0, 0.0])  # name -> [examples, counted codes, codes, largest deviation]


@contextlib.contextmanager
def kernels(choice: str):
    old = os.environ.get("XBARLAB_KERNELS")
    os.environ["XBARLAB_KERNELS"] = choice
    try:
        yield
    finally:
        if old is None:
            del os.environ["XBARLAB_KERNELS"]
        else:
            os.environ["XBARLAB_KERNELS"] = old


@st.composite
def layers(draw, max_tile: int = 12, sensing_scheme=None):
    """(spec, W, x, options): a random layer of up to 3 x 2 tiles, a sensing scheme and a DAC load."""
    rows, cols = draw(st.integers(1, max_tile)), draw(st.integers(1, max_tile))
    tk, tn = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    K = draw(st.integers((tk - 1) * rows + 1, tk * rows))
    N = draw(st.integers((tn - 1) * cols + 1, tn * cols))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    g_max = draw(st.sampled_from([1e-3, 1e-4, 1e-5]))
    per_row = draw(st.booleans())
    rd = tuple(rng.uniform(0.0, 100.0, rows).tolist()) if per_row else draw(st.sampled_from([0.0, 50.0]))
    circuit = xb.CircuitParams(r_row=draw(st.sampled_from([0.0, 2.5])), r_col=draw(st.sampled_from([0.0, 2.5])),
                               r_sense=draw(st.sampled_from([0.0, 100.0])), r_driver=rd)
    device = xb.DeviceParams(g_min=g_max / draw(st.sampled_from([3.0, 10.0])), g_max=g_max,
                             bits=draw(st.sampled_from([None, 2, 6])))
    dac = xb.DACParams(bits=draw(st.sampled_from([1, 3, 6])), v_read=0.2,
                       r_pd=draw(st.sampled_from([0.0, 20.0, 200.0, 1000.0])))
    adc = xb.ADCParams(bits=draw(st.sampled_from([None, 2, 4, 6, 8])))  # (1 bit: refused)
    spec = xb.CrossbarSpec(rows=rows, cols=cols, circuit=circuit, device=device, dac=dac, adc=adc)
    signed = draw(st.booleans())
    B = 1 if signed else draw(st.integers(1, 2))
    W = rng.standard_normal((K, N))
    x = rng.standard_normal((B, K)) if signed else rng.random((B, K))
    x[:, rng.random(K) < 0.2] = 0.0
    scheme, mapping = sensing_scheme or draw(st.sampled_from(SCHEMES))
    load = draw(st.sampled_from(["rowsum", "exact", "none"]))
    return spec, W, x, xb.FCMOptions(sensing=scheme, mapping=mapping, dac_load=load)


def magnitude(fcm, D, scale):
    """sum over phases, row tiles of |digital value| in weight units (B, N): the scale of y's rounding."""
    A = np.abs(ref.adc_values(fcm, D)).sum(axis=(0, 2, 3))  # (B, Tn, Nc)
    return A.reshape(A.shape[0], -1)[:, :fcm.shape[1]] * sensing.gain(fcm) * scale[:, None]


def magnitude_both(fcm, I, scale):
    """sum over phases and row tiles of |Ia| + |Ib| (the two currents before their subtraction) in weight
    units (B, N): the scale of the rounding of a difference computed in floating point."""
    nc = fcm.spec.cols
    A = np.abs(I)
    if fcm.options.sensing.value == "differential":
        both = A.sum(axis=2)
    else:
        both = A[:, :, 0, :, :, :nc] + A[:, :, 0, :, :, nc:]
    m = both.sum(axis=(0, 2))  # (B, Tn, Nc)
    return m.reshape(m.shape[0], -1)[:, :fcm.shape[1]] * sensing.gain(fcm) * scale[:, None]


def near_boundary(fcm, I, rel):
    a = ref.adc_input(fcm, I)
    return np.abs(a - np.floor(a) - 0.5) <= rel * np.maximum(np.abs(a), 1.0)


def check_fast(fcm, x, r, y, name):
    """y of a fast path == the reference's, up to ADC codes within FAST_BOUNDARY of a rounding boundary."""
    allow = 1e-12 * (magnitude(fcm, r["D"], r["scale"]) + magnitude_both(fcm, r["I"], r["scale"])) + 1e-300
    if fcm.spec.adc.bits is not None:
        near = near_boundary(fcm, r["I"], FAST_BOUNDARY)
        allow = allow + magnitude(fcm, near.astype(float), r["scale"])
        STATS[name][1] += int(near.sum())
        STATS[name][2] += int(near.size)
    STATS[name][0] += 1
    assert np.all(np.abs(y - r["y"]) <= allow)


# ---------------------------------------------------------------------------- options and generation

def test_sensing_needs_its_mapping_and_no_inl():
    with pytest.raises(ValueError, match="sensing='differential' needs mapping='differential'"):
        xb.FCMOptions(sensing="differential", mapping="offset")
    with pytest.raises(ValueError, match="sensing='reference' needs mapping='offset'"):
        xb.FCMOptions(sensing="reference")
    with pytest.raises(ValueError, match="sensing must be one of"):
        xb.FCMOptions(sensing="mirror")
    spec = xb.load_preset("spintronic").with_size(8, 8)
    inl = spec.replace(adc=xb.ADCParams(bits=6, inl_lsb=(0.0, 0.5, 0.0)))
    with pytest.raises(ValueError, match="inl_lsb"):
        xb.FCM.from_weights(np.ones((8, 8)), inl, np.random.default_rng(0), xb.FCMOptions(sensing="differential"))
    f = xb.FCM.from_weights(np.ones((8, 8)), spec, np.random.default_rng(0), xb.FCMOptions(mapping="offset"))
    with pytest.raises(ValueError, match="reference column"):
        f.with_options(sensing="reference")
    assert xb.FCMOptions().to_dict()["sensing"] == "SEPARATE"


def test_separate_is_the_default_plan_unchanged():
    spec = xb.load_preset("spintronic").with_size(16, 12)
    rng = np.random.default_rng(3)
    W, x = rng.standard_normal((40, 20)), rng.standard_normal((5, 40))
    f = xb.FCM.from_weights(W, spec, np.random.default_rng(4))
    assert f.options.sensing is xb.fcm.options.Sensing.SEPARATE
    p = compile_plan(f)
    assert type(f.compile()) is type(p)
    ns = xb.backend.NumpyNS()
    codes, s = xb.fcm.stages.dac_codes_t(ns, np.ascontiguousarray(x.T), spec.dac, None, None)
    with kernels("array"):  # the plan of compile.compile_plan, as the fcm-plans branch runs it
        np.testing.assert_array_equal(f.matmul(x), (p.to(ns).evaluate(ns, codes, 5) * s).T)


def test_reference_column_is_mid_level_and_sampled():
    spec = xb.load_preset("spintronic").with_size(8, 6)
    dev = spec.device
    W = np.random.default_rng(0).standard_normal((10, 7))
    opts = xb.FCMOptions(mapping="offset", sensing="reference")
    f = xb.FCM.from_weights(W, spec.replace(device=dataclasses.replace(dev, variation=0.0)), None, opts)
    assert f.G.shape == (1, 2, 2, 8, 7)
    np.testing.assert_array_equal(f.G[..., -1], float(dev.quantize(0.5)))
    g = xb.FCM.from_weights(W, spec.replace(device=dataclasses.replace(dev, variation=0.1)),
                            np.random.default_rng(1), opts)
    assert np.unique(g.G[..., -1]).size > 1  # reference cells are programmed devices: variation drawn for them


@settings(max_examples=30, deadline=None)
@given(case=layers())
def test_difference_within_its_full_scale(case):
    """|difference| <= the stated full scale for any inputs (the worst-case rule)."""
    spec, W, x, opts = case
    f = xb.FCM.from_weights(W, spec, None, opts.replace(dac_load="exact"))
    r = ref.evaluate(f, x)
    d = ref.sensed(f, r["I"])
    assert np.all(np.abs(d) <= f.adc_full_scale_a[..., None] * (1 + 1e-12))


@settings(max_examples=40, deadline=None)
@given(case=layers())
def test_fast_paths_equal_reference(case):
    spec, W, x, opts = case
    f = xb.FCM.from_weights(W, spec, None, opts)
    r = ref.evaluate(f, x)
    np.testing.assert_array_equal(f.codes(x)[0], r["codes"])
    for choice in ("auto", "array"):
        with kernels(choice):
            g = f.with_options()  # a fresh plan cache: compiled again under this choice
            check_fast(g, x, r, g.matmul(x), f"fast path ({choice}) vs reference")
            tc = g.tile_currents(r["codes"].reshape(-1, x.shape[1]))
            I = r["I"].reshape((-1,) + r["I"].shape[2:]).copy()
            if opts.sensing.value == "differential":  # the zero padding's columns past N: 0, not computed
                I[..., -1, f.shape[1] - (I.shape[-2] - 1) * I.shape[-1]:] = 0.0
            scale = np.abs(I).max(axis=-1, keepdims=True).max(axis=-3, keepdims=True)
            assert np.all(np.abs(np.moveaxis(tc, 3, 0) - I) <= 1e-12 * scale + 1e-300)
    check_fast(f, x, r, f.matmul(torch.tensor(x)).numpy(), "torch float64 vs reference")
    check_float32(f, x)


def check_float32(f, x):
    """float32: the reference at float32's own DAC codes; codes within 1e-5 of a rounding boundary counted."""
    x32 = torch.tensor(x, dtype=torch.float32)
    c32, s32 = f.codes(x32)
    c, sc = c32.double().numpy(), s32.double().numpy().reshape(-1)
    I = ref.tile_currents(f, ref.loaded_voltages(f, ref.tile_codes(f, c)))
    r32 = {"I": I, "D": ref.adc(f, I), "scale": sc}
    r32["y"] = ref.accumulate(f, r32["D"], c, sc)
    allow = 1e-5 * (magnitude(f, r32["D"], sc) + magnitude_both(f, I, sc)) + 1e-30
    if f.spec.adc.bits is not None:
        near = near_boundary(f, I, 1e-5)
        allow = allow + magnitude(f, near.astype(float), sc)
        STATS["torch float32 vs reference at its codes (within 1e-5 of a boundary)"][1] += int(near.sum())
        STATS["torch float32 vs reference at its codes (within 1e-5 of a boundary)"][2] += int(near.size)
    STATS["torch float32 vs reference at its codes (within 1e-5 of a boundary)"][0] += 1
    assert np.all(np.abs(f.matmul(x32).double().numpy() - r32["y"]) <= allow)


@pytest.mark.parametrize("B, signed", [(5, True), (1100, False), (1100, True)])
def test_differential_fused_pass_equals_reference(B, signed):
    """The fused differential ADC pass (``cpu_kernels.diff_accumulate`` on the ROWSUM base's blocks) runs,
    and equals the reference up to codes within 1e-12 of a boundary; at B = 1100 the tiles are taken in
    blocks of row tiles, both arrays of each pair together (``RowsumGroup.blocks(pairs=True)``)."""
    spec = xb.load_preset("spintronic").replace(dac=xb.DACParams(bits=6, v_read=0.2, r_pd=20.0))
    rng = np.random.default_rng(14)
    f = xb.FCM.from_weights(rng.standard_normal((150, 70)), spec, None, xb.FCMOptions(sensing="differential"))
    x = rng.standard_normal((B, 150)) if signed else rng.random((B, 150))
    r = ref.evaluate(f, x)
    with kernels("auto"):
        g = f.with_options()
        assert g.compile().wd and xb.fcm.cpu_kernels.enabled()
        check_fast(g, x, r, g.matmul(x), "differential fused pass vs reference")
        check_float32(g, x)
    with kernels("array"):
        h = f.with_options()
        check_fast(h, x, r, h.matmul(x), "differential array code vs reference")


@pytest.mark.parametrize("load, r_pd, sinh_b", [("none", 20.0, 0.0), ("rowsum", 0.0, 0.0), ("none", 20.0, 2.0)])
def test_unloaded_differential_merges_the_pair(load, r_pd, sinh_b):
    """Unloaded DAC (NONE, or R_PD = 0): both arrays see the same row voltages, so the pair is one product
    with G+ - G- (``SensingPlan.GdT``), equal to the reference up to codes within 1e-12 of a boundary;
    under ROWSUM with R_PD > 0 the pair is not merged."""
    base = xb.load_preset("spintronic", rows=16, cols=12)
    spec = base.replace(dac=xb.DACParams(bits=6, v_read=0.2, r_pd=r_pd),
                        device=dataclasses.replace(base.device, sinh_b=sinh_b))
    rng = np.random.default_rng(15)
    f = xb.FCM.from_weights(rng.standard_normal((40, 30)), spec, None,
                            xb.FCMOptions(sensing="differential", dac_load=load))
    assert f.compile().GdT is not None and f.compile().GdT.shape == (3, 3 * 12, 16)
    for x in (rng.random((7, 40)), rng.standard_normal((7, 40))):
        r = ref.evaluate(f, x)
        for choice in ("auto", "array"):
            with kernels(choice):
                g = f.with_options()
                check_fast(g, x, r, g.matmul(x), f"merged pair ({choice}) vs reference")
                check_fast(g, x, r, g.matmul(torch.tensor(x)).numpy(), f"merged pair torch float64 ({choice}) vs reference")
                check_float32(g, x)
    loaded = xb.FCM.from_weights(rng.standard_normal((40, 30)), spec.replace(dac=xb.DACParams(bits=6, v_read=0.2, r_pd=20.0)),
                                 None, xb.FCMOptions(sensing="differential", dac_load="rowsum"))
    assert loaded.compile().GdT is None


# ---------------------------------------------------------------------------- against ngspice

def check_spice(f, x, sp, name):
    r = ref.evaluate(f, x)
    check_fast(f, x, r, f.matmul(x), name + ": fast path vs reference")
    np.testing.assert_array_equal(r["codes"], sp["codes"])
    y = f.matmul(x)
    if f.options.dac_load.value == "exact":
        tile_max = np.abs(sp["I"]).max(axis=-1, keepdims=True)
        assert np.all(np.abs(r["I"] - sp["I"]) <= EXACT_REL * tile_max + 1e-18)
        st_ = STATS[name + ": EXACT column currents, |dI| / max |I| of the tile (bound 1e-9)"]
        st_[0] += 1
        st_[3] = max(st_[3], float((np.abs(r["I"] - sp["I"]) / np.where(tile_max > 0, tile_max, 1.0)).max()))
        if f.spec.adc.bits is None:
            assert np.all(np.abs(y - sp["y"]) <= 1e-9 * magnitude(f, sp["D"], sp["scale"]) + 1e-300)
            return
        near = near_boundary(f, sp["I"], BOUNDARY)
        same = r["D"] == sp["D"]
        assert np.all(same | near)
        st_ = STATS[name + ": EXACT ADC codes differing from ngspice's (all within 1e-9 of a boundary)"]
        st_[0] += 1
        st_[1] += int((~same).sum())
        st_[2] += int(same.size)
        mixed = ref.accumulate(f, np.where(near, r["D"], sp["D"]), sp["codes"], sp["scale"])
        assert np.all(np.abs(y - mixed) <= 1e-12 * magnitude(f, sp["D"], sp["scale"]) + 1e-300)
        return
    # ROWSUM: per column relative error within the stated bound, per tile
    S, Tk, Tn = f.G.shape[:3]
    b = np.array([[[rowsum_rel_bound(f.spec, f.G[s, k, t], f.options.load_factor) for t in range(Tn)]
                   for k in range(Tk)] for s in range(S)])[None, None, :, :, :, None] * (1 + 1e-6) + 1e-9
    assert np.all(np.abs(r["I"] - sp["I"]) <= b * np.abs(sp["I"]) + 1e-9 * np.abs(sp["I"]).max())
    st_ = STATS[name + ": ROWSUM column current error / stated bound (bound 1)"]
    allowed = b * np.abs(sp["I"]) + 1e-9 * np.abs(sp["I"]).max() + 1e-300
    st_[3] = max(st_[3], float((np.abs(r["I"] - sp["I"]) / allowed).max()))
    if f.spec.adc.bits is not None:  # each difference within the sum of its two columns' bounds
        Ib = b * np.abs(sp["I"]) + 1e-9 * np.abs(sp["I"]).max()
        if f.options.sensing.value == "differential":
            tot = Ib[:, :, :1] + Ib[:, :, 1:2] if S == 2 else Ib
        else:
            nc = f.spec.cols
            tot = Ib[..., :nc] + Ib[..., nc:nc + 1]
        lsb = sensing.lsb_a(f.spec.adc, f.adc_full_scale_a)[..., None]
        assert np.all(np.abs(r["D"] - sp["D"]) <= tot / lsb + 1 + 1e-9)
    st_[0] += 1


@pytest.mark.ngspice
@settings(max_examples=25, deadline=None)
@given(case=layers(max_tile=8))
def test_sensing_equals_ngspice(ngspice, case):
    spec, W, x, opts = case
    f = xb.FCM.from_weights(W, spec, None, opts.replace(dac_load="exact"))
    sp = spice_evaluate(f, x, workers=2)
    check_spice(f, x, sp, f"random layers, {opts.sensing.value}, exact")
    check_spice(f.with_options(dac_load="rowsum"), x, sp, f"random layers, {opts.sensing.value}, rowsum")


@pytest.mark.ngspice
@pytest.mark.parametrize("scheme, mapping", SCHEMES)
def test_sensing_equals_ngspice_on_a_preset_tile(ngspice, scheme, mapping):
    """32 x 32 tiles of the preset at 200 ohm, 2 x 1 tiles, signed inputs, EXACT then ROWSUM (kappa 1)."""
    base = xb.load_preset("spintronic")
    spec = base.with_size(32, 32).replace(dac=xb.DACParams(bits=base.dac.bits, v_read=base.dac.v_read, r_pd=200.0))
    rng = np.random.default_rng(32)
    W, x = rng.standard_normal((64, 32)), rng.standard_normal((1, 64))
    f = xb.FCM.from_weights(W, spec.replace(device=dataclasses.replace(spec.device, variation=0.0)), None,
                            xb.FCMOptions(dac_load="exact", mapping=mapping, sensing=scheme))
    sp = spice_evaluate(f, x, workers=2)
    check_spice(f, x, sp, f"preset 32x32 {scheme}, exact")
    g = f.with_options(dac_load="rowsum")
    check_spice(g, x, sp, f"preset 32x32 {scheme}, rowsum")


def test_backward_read_refuses_the_reference_column():
    from xbarlab.fcm.backward import BackwardFCM

    spec = xb.load_preset("spintronic").with_size(8, 6)
    W = np.random.default_rng(0).standard_normal((10, 7))
    g = xb.FCM.from_weights(W, spec, np.random.default_rng(2), xb.FCMOptions(sensing="reference", mapping="offset"))
    with pytest.raises(ValueError, match="sensing='reference' has no backward read"):
        BackwardFCM.from_fcm(g)


@pytest.mark.parametrize("scheme, mapping", SCHEMES)
@pytest.mark.parametrize("load", ["rowsum", "none"])
def test_sensing_of_an_empty_batch(scheme, mapping, load):
    """A batch of 0 input vectors gives (0, N) outputs on every path, as with separate sensing
    (the sensed plan's reshape inferred the rows from the size: none to infer from an empty batch)."""
    spec = xb.load_preset("spintronic").with_size(8, 6)
    rng = np.random.default_rng(16)
    f = xb.FCM.from_weights(rng.standard_normal((10, 7)), spec, None,
                            xb.FCMOptions(sensing=scheme, mapping=mapping, dac_load=load))
    for choice in ("auto", "array"):
        with kernels(choice):
            g = f.with_options()
            assert g.matmul(np.zeros((0, 10))).shape == (0, 7)
            assert g.matmul_t(torch.zeros((10, 0), dtype=torch.float64)).shape == (7, 0)
            assert g.matmul(torch.zeros((0, 10))).shape == (0, 7)


def stats_lines() -> list[str]:
    return [f"{k}: {v[0]} examples" + (f", {v[1]} of {v[2]} codes" if v[2] else "")
            + (f", largest {v[3]:.3g}" if v[3] else "") for k, v in sorted(STATS.items())]

