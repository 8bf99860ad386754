"""``FCM.matmul`` end to end against ngspice: inputs x -> outputs y, on the full circuit.

The reference (``xbarlab.verify.spice_reference.spice_evaluate``) takes the
model's own DAC codes of x, solves every tile at those codes with ngspice
(divider DACs, per-row drivers, wires, cells or sinh sources, sense), applies
the same ADC to ngspice's currents and the same accumulation over the row
tiles, the differential pair (or offset) and the input phases. The
readable stage-by-stage evaluator (``xbarlab.verify.reference``) is the
oracle between the two: the fast ``matmul`` equals it, and its currents are
compared with ngspice's. Bounds:

* DAC codes: the reference's, bitwise.
* EXACT DAC load, linear cells: tile currents <= 1e-9 relative to the tile's
  largest current; ADC codes equal to those of ngspice's currents except where
  ngspice's ADC input lies within 1e-9 (relative, in LSB) of a rounding
  boundary (counted); y equal to ngspice's y built from those codes.
* ROWSUM: per-column relative error <= (C q(sigma) + |1 - kappa|) q(rho)
  (``xbarlab.verify.rowsum_bound``: rho = R_PD * largest row load, sigma the
  row coupling, q(z) = z / (1 + z), C = 8: about twice the largest measured); in % FS at
  most 100 times that; ADC codes within that error + 1 code.
* sinh cells (b <= 3 /V at 0.2 V), ROWSUM, gamma 1: % FS per column <=
  ``sinh_pct_fs_bound`` (second order in b v_read times the parasitics' share
  of the cell voltage; the per-column relative error is printed, not bounded).
* fast paths (fused CPU kernels, array code) equal the reference up to ADC codes whose
  input lies within 1e-12 of a rounding boundary.

Sizes: tiles up to 20 x 20 (32 x 32 under the ``thorough`` profile; one
64 x 64 deck takes ngspice about 5 s), up to 3 x 2 tiles per layer,
non-square, plus fixed preset cases: 64 x 64 at the preset's R_PD with its
fitted kappa, 32 x 48 at 200 ohm and 40 x 24 at 1 kOhm with 2 x 2 tiles.
The examples' counts and largest deviations are printed at the end of
the module. ``pytest tests/fcm --hypothesis-profile=thorough`` runs many more.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab.verify import reference as ref
from xbarlab.verify.fitting import FITTED_DIR
from xbarlab.verify.metrics import column_errors
from xbarlab.verify.rowsum_bound import KAPPAS, rowsum_rel_bound, sinh_pct_fs_bound
from xbarlab.verify.spice_reference import spice_evaluate

pytestmark = [pytest.mark.ngspice, pytest.mark.property]

THOROUGH = settings.default.max_examples >= 200
MAX_TILE = 32 if THOROUGH else 20
WORKERS = 2
EXACT_REL = 1e-9
BOUNDARY = 1e-9  # ngspice vs model: relative distance of an ADC input to a rounding boundary
FAST_BOUNDARY = 1e-12  # fast path vs reference (float64 rounding)

STATS: dict = defaultdict(lambda: {"examples": 0, "largest": 0.0, "bound": None, "cases": 0, "of": 0})


def record(name: str, value: float, bound=None, cases: int = 0, of: int = 0) -> None:
    s = STATS[name]
    s["examples"] += 1
    s["largest"] = max(s["largest"], float(value))
    s["bound"] = bound
    s["cases"] += int(cases)
    s["of"] += int(of)


def stats_lines() -> list[str]:
    """One line per bound: examples, largest deviation (and its bound), counted cases (printed by conftest.py)."""
    lines = []
    for name, s in sorted(STATS.items()):
        extra = f", codes differing from ngspice's: {s['cases']} of {s['of']}" if s["of"] else ""
        lines.append(f"{name}: {s['examples']} examples, largest {s['largest']:.3g}"
                     + ("" if s["bound"] is None else f" (bound {s['bound']:g})") + extra)
    return lines


@st.composite
def layers(draw, sinh: bool = False, max_tile: int = MAX_TILE):
    """(spec, W, x, mapping): a random layer of up to 3 x 2 tiles on a random circuit and its inputs."""
    rows, cols = draw(st.integers(1, max_tile)), draw(st.integers(1, max_tile))
    tk, tn = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    K = draw(st.integers((tk - 1) * rows + 1, tk * rows))
    N = draw(st.integers((tn - 1) * cols + 1, tn * cols))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    g_max = draw(st.sampled_from([1e-3, 1e-4, 5e-5, 1e-5]))
    per_row = draw(st.booleans())
    rd = tuple(rng.uniform(0.0, 100.0, rows).tolist()) if per_row else draw(st.sampled_from([0.0, 50.0, 100.0]))
    circuit = xb.CircuitParams(r_row=draw(st.sampled_from([0.0, 1.0, 2.5, 5.0])),
                               r_col=draw(st.sampled_from([0.0, 2.5, 5.0])),
                               r_sense=draw(st.sampled_from([0.0, 100.0, 200.0])), r_driver=rd)
    device = xb.DeviceParams(g_min=g_max / draw(st.sampled_from([3.0, 10.0])), g_max=g_max,
                             bits=draw(st.sampled_from([None, 2, 6])),
                             sinh_b=draw(st.sampled_from([1.0, 3.0])) if sinh else 0.0)
    r_pd = draw(st.one_of(st.sampled_from([0.0, 20.0, 200.0, 1000.0]), st.floats(0.0, 1000.0)))
    dac = xb.DACParams(bits=draw(st.sampled_from([1, 3, 6])), v_read=0.2, r_pd=r_pd)
    adc = xb.ADCParams(bits=draw(st.sampled_from([None, 4, 6, 8])))
    spec = xb.CrossbarSpec(rows=rows, cols=cols, circuit=circuit, device=device, dac=dac, adc=adc)
    signed = draw(st.booleans())
    B = 1 if signed else draw(st.integers(1, 2))
    W = rng.standard_normal((K, N))
    x = rng.standard_normal((B, K)) if signed else rng.random((B, K))
    x[:, rng.random(K) < 0.2] = 0.0  # some rows at code 0 (R_DAC open)
    return spec, W, x, draw(st.sampled_from(["differential", "offset"]))


def magnitude(fcm, D, scale, codes=None):
    """sum over phases, pair and row tiles of |digital value| in weight units (B, N), plus the offset
    mapping's digital offset when ``codes`` are given: the scale of y's rounding."""
    dev, dac = fcm.spec.device, fcm.spec.dac
    offset = fcm.options.mapping.value == "offset"
    gain = fcm.w_max / (dac.v_read * (dev.g_max - dev.g_min)) * (2.0 if offset else 1.0)
    A = np.abs(ref.adc_values(fcm, D)).sum(axis=(0, 2, 3))  # (B, Tn, Nc)
    m = A.reshape(A.shape[0], -1)[:, :fcm.shape[1]]
    if offset and codes is not None:
        m = m + codes.sum(axis=(0, 2))[:, None] * float(dev.quantize(0.5)) * dac.v_read / dac.full_code
    return m * gain * scale[:, None]


def boundary_distance(fcm, I):
    """Distance (LSB) of each ADC input to its nearest rounding boundary (k + 1/2), and the input itself."""
    a = ref.adc_input(fcm, I)
    return np.abs(a - np.floor(a) - 0.5), a


def check_fast_equals_reference(fcm, x, r):
    """matmul (fused kernels or array code, numpy float64) == the stage-by-stage reference, up to ADC codes
    within FAST_BOUNDARY of a rounding boundary (each may move y by its LSB weight)."""
    np.testing.assert_array_equal(fcm.codes(x)[0], r["codes"])
    y = fcm.matmul(x)
    mag = magnitude(fcm, np.abs(r["D"]), r["scale"], r["codes"])
    allow = 1e-12 * mag + 1e-300
    if fcm.spec.adc.bits is not None:
        dist, a = boundary_distance(fcm, r["I"])
        near = dist <= FAST_BOUNDARY * np.maximum(np.abs(a), 1.0)
        allow = allow + magnitude(fcm, near.astype(float), r["scale"])
    assert np.all(np.abs(y - r["y"]) <= allow)


def check_against_spice(fcm, x, sp, name):
    """The EXACT-load assertions: currents, ADC codes (boundary cases counted), y."""
    r = ref.evaluate(fcm, x)
    check_fast_equals_reference(fcm, x, r)
    np.testing.assert_array_equal(r["codes"], sp["codes"])
    tile_max = np.abs(sp["I"]).max(axis=-1, keepdims=True)
    dev = np.abs(r["I"] - sp["I"]) / np.where(tile_max > 0, tile_max, 1.0)
    assert np.all(np.abs(r["I"] - sp["I"]) <= EXACT_REL * tile_max + 1e-18)
    record(f"{name}: EXACT tile currents, |dI| / max |I| of the tile", dev.max(), EXACT_REL)
    y = fcm.matmul(x)
    if fcm.spec.adc.bits is None:
        assert np.all(np.abs(y - sp["y"]) <= 1e-9 * magnitude(fcm, sp["D"], sp["scale"], sp["codes"]) + 1e-300)
        return r
    dist, a = boundary_distance(fcm, sp["I"])
    near = dist <= BOUNDARY * np.abs(a).max(axis=-1, keepdims=True)
    same = r["D"] == sp["D"]
    assert np.all(same | near)
    record(f"{name}: EXACT ADC codes within 1e-9 of a rounding boundary", int(near.sum()), cases=int((~same).sum()),
           of=int(same.size))
    mixed = ref.accumulate(fcm, np.where(near, r["D"], sp["D"]), sp["codes"], sp["scale"])
    assert np.all(np.abs(y - mixed) <= 1e-12 * magnitude(fcm, sp["D"], sp["scale"], sp["codes"]) + 1e-300)
    return r


def check_rowsum(fcm, x, sp, kappa, name, bound_fn=rowsum_rel_bound, sinh=False):
    """ROWSUM with load factor kappa: per-column relative error and % FS within the stated bound per tile."""
    f = fcm.with_options(dac_load="rowsum", load_factor=kappa)
    r = ref.evaluate(f, x)
    check_fast_equals_reference(f, x, r)
    S, Tk, Tn = f.G.shape[:3]
    fs = f.spec.full_scale_current_a
    worst, worst_fs, worst_rel = 0.0, 0.0, 0.0
    a_spice = ref.adc_input(f, sp["I"]) if f.spec.adc.bits is not None else None
    pct_fs = sinh_pct_fs_bound(f.spec) if sinh else None
    for s in range(S):
        for k in range(Tk):
            for t in range(Tn):
                Im, Is = r["I"][:, :, s, k, t], sp["I"][:, :, s, k, t]
                e = column_errors(Im, Is, fs)
                b = bound_fn(f.spec, f.G[s, k, t], kappa)
                if pct_fs is None:
                    if e["n_rel"]:  # (no column carries current: no relative error, NaN)
                        assert e["max_rel"] <= b * (1 + 1e-6) + 1e-9
                        worst = max(worst, e["max_rel"] / (b * (1 + 1e-6) + 1e-9))
                        worst_rel = max(worst_rel, e["max_rel"])
                    assert e["max_pct_fs"] <= 100.0 * b * (1 + 1e-6) + 1e-7
                else:
                    assert e["max_pct_fs"] <= pct_fs + 1e-7
                    if e["n_rel"]:
                        worst = max(worst, e["max_rel"])
                worst_fs = max(worst_fs, e["max_pct_fs"])
                assert np.all(np.abs(Im[np.abs(Is) <= 1e-9 * fs]) <= 2e-9 * fs)  # near-zero columns
                if f.spec.adc.bits is not None and pct_fs is None:
                    a = a_spice[:, :, s, k, t]
                    assert np.all(np.abs(r["D"][:, :, s, k, t] - sp["D"][:, :, s, k, t])
                                  <= b * np.abs(a) * (1 + 1e-6) + 1 + 1e-9)
    if pct_fs is None:
        record(f"{name}: ROWSUM per-column relative error / stated bound", worst, 1.0)
        record(f"{name}: ROWSUM per-column relative error", worst_rel)
    else:
        record(f"{name}: per-column relative error", worst)
        record(f"{name}: ROWSUM deviation % FS / stated bound", worst_fs / (pct_fs + 1e-7), 1.0)
    record(f"{name}: ROWSUM deviation % FS", worst_fs)


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(case=layers(), kappa=st.sampled_from(KAPPAS[1:]))
def test_matmul_equals_ngspice_linear_cells(ngspice, case, kappa):
    spec, W, x, mapping = case
    f = xb.FCM.from_weights(W, spec, None, xb.FCMOptions(dac_load="exact", mapping=mapping))
    sp = spice_evaluate(f, x, workers=WORKERS)
    check_against_spice(f, x, sp, "random layers")
    check_rowsum(f, x, sp, 1.0, "random layers, kappa 1")
    check_rowsum(f, x, sp, kappa, "random layers, kappa of a fit")
    r = ref.evaluate(f.with_options(dac_load="none"), x)
    check_fast_equals_reference(f.with_options(dac_load="none"), x, r)


def _no_bound(spec, G, kappa):
    return 0.0


@settings(max_examples=max(8, settings.default.max_examples // 4))
@given(case=layers(sinh=True, max_tile=min(MAX_TILE, 12)))
def test_matmul_sinh_cells_within_stated_bound(ngspice, case):
    spec, W, x, mapping = case
    f = xb.FCM.from_weights(W, spec, None, xb.FCMOptions(dac_load="rowsum", mapping=mapping))
    sp = spice_evaluate(f, x, workers=WORKERS)
    np.testing.assert_array_equal(ref.evaluate(f, x)["codes"], sp["codes"])
    check_rowsum(f, x, sp, 1.0, "sinh cells, gamma 1", bound_fn=_no_bound, sinh=True)


def _fitted_kappa(spec) -> float:
    path = FITTED_DIR / f"{spec.name}_{spec.rows}x{spec.cols}.json"
    return json.loads(path.read_text())["options"]["load_factor"] if path.exists() else 1.0


@pytest.mark.parametrize("rows, cols, K, N, r_pd, signed, mapping", [
    (64, 64, 64, 64, 20.0, False, "differential"),  # the preset, one tile pair
    (32, 48, 64, 48, 200.0, True, "differential"),  # the strong DAC of Fig. 2, 2 x 1 tiles, signed
    (40, 24, 70, 40, 1000.0, True, "offset"),  # non-square, 2 x 2 tiles, signed inputs
])
def test_matmul_equals_ngspice_on_large_preset_tiles(ngspice, rows, cols, K, N, r_pd, signed, mapping):
    base = xb.load_preset("spintronic")
    spec = base.with_size(rows, cols).replace(dac=xb.DACParams(bits=base.dac.bits, v_read=base.dac.v_read, r_pd=r_pd))
    rng = np.random.default_rng(rows * 1000 + int(r_pd))
    W = rng.standard_normal((K, N))
    x = rng.standard_normal((1, K)) if signed else rng.random((1, K))
    f = xb.FCM.from_weights(W, spec, None, xb.FCMOptions(dac_load="exact", mapping=mapping))
    sp = spice_evaluate(f, x, workers=WORKERS)
    name = f"preset {rows}x{cols} R_PD {r_pd:g}"
    check_against_spice(f, x, sp, name)
    check_rowsum(f, x, sp, 1.0, name + ", kappa 1")
    if r_pd == base.dac.r_pd:
        kappa = _fitted_kappa(base.with_size(rows, cols))
        check_rowsum(f, x, sp, kappa, name + f", fitted kappa {kappa:.3f}")


@settings(max_examples=max(6, settings.default.max_examples // 8))
@given(case=layers(max_tile=min(MAX_TILE, 10)), per=st.sampled_from(["tile", "column"]),
       pct=st.sampled_from([60.0, 99.0, 100.0]), seed=st.integers(0, 2**31 - 1))
def test_calibrated_adc_ranges_equal_ngspice(ngspice, case, per, pct, seed):
    """ADC full scales calibrated per tile or per column (``calibrate_adc``, on other inputs than the
    evaluated ones; low percentiles clip): matmul equals ngspice's currents through the same ADC (EXACT
    load, the bounds above), and the ROWSUM and unloaded plans equal the reference evaluator."""
    from xbarlab.fcm.calibration import calibrate_adc
    from xbarlab.fcm.ranges import CalibratedRange

    spec, W, x, mapping = case
    rng = np.random.default_rng(seed)
    xc = rng.standard_normal((6, W.shape[0])) if np.any(x < 0) else rng.random((6, W.shape[0]))
    f = xb.FCM.from_weights(W, spec, None, xb.FCMOptions(dac_load="exact", mapping=mapping))
    c = calibrate_adc(f, xc, CalibratedRange(pct, per))
    assert c.adc_full_scale_a.shape == f.Gn.shape[:3] + ((f.Gn.shape[4],) if per == "column" else ())
    check_against_spice(c, x, spice_evaluate(c, x, workers=WORKERS), f"ADC calibrated per {per}")
    for mode in ("rowsum", "none"):
        g = calibrate_adc(f.with_options(dac_load=mode), xc, CalibratedRange(pct, per))
        check_fast_equals_reference(g, x, ref.evaluate(g, x))
