"""Converter ranges (xbarlab.fcm.ranges) and their calibration (xbarlab.fcm.calibration)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.fcm import FCM, FCMOptions
from xbarlab.fcm.calibration import (_evenly, calibrate_adc, calibration_codes, input_full_scale,
                                     tile_current_stats)
from xbarlab.fcm.ranges import (CalibratedInput, CalibratedRange, FixedInput, FixedRange, PerVector, WorstCase,
                                adc_range_from, input_range_from)
from xbarlab.spec import load_preset
from xbarlab.verify import reference


def _spec(rows=8, cols=6, adc_bits=6):
    spec = load_preset("rxnn-spintronic", rows, cols)
    return spec.replace(adc=dataclasses.replace(spec.adc, bits=adc_bits))


def _model(seed=0, K=19, N=10, **opts):
    rng = np.random.default_rng(seed)
    return FCM.from_weights(rng.normal(size=(K, N)), _spec(), np.random.default_rng(seed + 1), FCMOptions(**opts))


@pytest.mark.parametrize("make, field", [
    (lambda: CalibratedRange(0), "CalibratedRange.percentile"), (lambda: CalibratedRange(100.5), "percentile"),
    (lambda: CalibratedRange(float("nan")), "percentile"), (lambda: CalibratedRange(True), "percentile"),
    (lambda: CalibratedRange(per="row"), "CalibratedRange.per"), (lambda: CalibratedRange(per=1), "per"),
    (lambda: FixedRange(0.0), "FixedRange.full_scale_a"), (lambda: FixedRange(float("inf")), "full_scale_a"),
    (lambda: FixedInput(-1.0), "FixedInput.x_max"), (lambda: FixedInput(1e-320), "FixedInput.x_max must be within"),
    (lambda: FixedRange(1e300), "FixedRange.full_scale_a must be within"), (lambda: CalibratedInput(-5), "CalibratedInput.percentile"),
    (lambda: FCMOptions(adc_range="sometimes"), "adc_range"), (lambda: FCMOptions(adc_range="fixed"), "adc_range"),
    (lambda: adc_range_from({"kind": "fixed", "amps": 1.0}), "adc_range"),
])
def test_bad_ranges_raise_naming_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_ranges_are_frozen_and_round_trip_through_json_dicts():
    for r in (WorstCase(), FixedRange(1e-5), CalibratedRange(99.9), CalibratedRange(99.0, per="column")):
        assert adc_range_from(r.to_dict()) == r
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.kind = "x"
    for r in (PerVector(), FixedInput(2.0), CalibratedInput(99.0)):
        assert input_range_from(r.to_dict()) == r
    o = FCMOptions(adc_range=CalibratedRange(99.0))
    assert FCMOptions(**o.to_dict()) == o and FCMOptions().adc_range == WorstCase()
    o = FCMOptions(adc_range=CalibratedRange(99.0, "column"))
    assert FCMOptions(**json.loads(json.dumps(o.to_dict()))) == o and o.to_dict()["adc_range"]["per"] == "column"


def test_input_full_scale():
    x = np.arange(-50.0, 51.0)
    assert input_full_scale(x, PerVector()) is None
    assert input_full_scale(x, FixedInput(3.0)) == 3.0
    assert input_full_scale(x, CalibratedInput(100)) == 50.0
    assert input_full_scale(x, CalibratedInput(50)) == np.percentile(np.abs(x), 50)
    with pytest.raises(ValueError, match="percentile 50"):
        input_full_scale(np.r_[np.zeros(10), 1.0], CalibratedInput(50))
    with pytest.raises(ValueError, match="finite"):
        input_full_scale(np.array([1.0, np.nan]), CalibratedInput())


def test_fixed_adc_range_everywhere_and_clipping_matches_the_reference():
    f = _model()
    small = float(np.median(f.adc_full_scale_a)) / 4  # most columns clip
    g = f.with_options(adc_range=FixedRange(small))
    assert np.all(g.adc_full_scale_a == small) and not g.adc_worst_case
    x = np.random.default_rng(3).random((30, 19))
    np.testing.assert_allclose(g.matmul(x), reference.evaluate(g, x)["y"], rtol=1e-12, atol=1e-12)


def test_calibrate_adc_returns_a_new_model_with_the_tile_maxima():
    f = _model(x_max=1.0)
    before = f.adc_full_scale_a.copy()
    x = np.random.default_rng(4).random((40, 19)) * 0.5
    c = calibrate_adc(f, x, CalibratedRange(100))
    assert c is not f and np.array_equal(f.adc_full_scale_a, before)  # the model itself is unchanged
    assert c.G is f.G and c.Gn is f.Gn and c.options.adc_range == CalibratedRange(100)
    codes, _ = f.codes(x)
    I = f.tile_currents(codes.reshape(-1, 19))  # (S, Tk, Tn, B', cols); padding columns are 0
    np.testing.assert_array_equal(c.adc_full_scale_a, I.max(axis=(-2, -1)))
    assert np.all(c.adc_full_scale_a <= before * (1 + 1e-12))  # half-scale inputs: below the worst case
    assert np.all(c.adc_full_scale_a < 0.75 * before)


def test_uncalibrated_model_refuses_and_with_options_drops_the_values():
    f = _model()
    with pytest.raises(ValueError, match="calibrate_adc"):
        f.with_options(adc_range=CalibratedRange()).matmul(np.ones((2, 19)))
    c = calibrate_adc(f, np.random.default_rng(5).random((10, 19)))
    with pytest.raises(ValueError, match="calibrate_adc"):
        c.with_options(x_max=2.0).matmul(np.ones((2, 19)))  # the ranges depended on the old x_max
    with pytest.raises(ValueError, match="adc_full_scale_a"):
        FCM(f.spec, f.options, f.shape, f.w_max, f.G, f.Gn, adc_full_scale_a=np.ones(f.Gn.shape[:3]))
    with pytest.raises(ValueError, match="adc_full_scale_a"):
        FCM(f.spec, c.options, f.shape, f.w_max, f.G, f.Gn, adc_full_scale_a=np.zeros(f.Gn.shape[:3]))
    with pytest.raises(ValueError, match="calibration inputs"):
        calibrate_adc(f, np.ones((3, 7)))


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), pct=st.sampled_from([50.0, 90.0, 99.0, 100.0]), signed=st.booleans(),
       x_max=st.sampled_from([None, 0.5, 1.0]), per=st.sampled_from(["tile", "column"]))
def test_calibrated_model_equals_the_reference_evaluator(seed, pct, signed, x_max, per):
    """matmul of a calibrated model (its clip active) = the stage-by-stage reference on the same inputs,
    to 1e-9 of the output scale (ADC codes may differ only at a rounding boundary, within 1e-12)."""
    rng = np.random.default_rng(seed)
    f = _model(seed % 1000, x_max=x_max)
    x = rng.random((25, 19)) - (0.5 if signed else 0.0)
    c = calibrate_adc(f, x[:15], CalibratedRange(pct, per))
    st_ = tile_current_stats(f, x[:15], pct, per=per)
    worst = f.adc_full_scale_a if per == "tile" else f.adc_full_scale_a[..., None]
    np.testing.assert_array_equal(c.adc_full_scale_a, np.where(st_ > 0, st_, worst))
    y, ref = c.matmul(x), reference.evaluate(c, x)
    lsb = np.max(np.abs(ref["y"])) / c.spec.adc.full_code + 1e-300
    assert np.max(np.abs(y - ref["y"])) <= 2 * lsb  # at most one code flipped at a rounding boundary
    assert np.mean(np.abs(y - ref["y"]) < 1e-9 * lsb * c.spec.adc.full_code) > 0.9


@pytest.mark.parametrize("pct", [50.0, 90.0])
def test_tile_percentile_is_over_the_real_columns_only(pct):
    """N = 10 on tiles of 6 columns: 2 of the last column block's columns are zero padding, which would pull
    a percentile below 100 down. The tile's percentile is np.percentile over its real columns' currents,
    taken here by hand from the model's own tile currents."""
    f = _model(2, x_max=1.0)
    x = np.random.default_rng(9).random((30, 19))
    I = f.tile_currents(calibration_codes(f, x))  # (S, Tk, Tn, B', cols)
    S, Tk, Tn, _, cols = I.shape
    assert Tn == 2 and cols == 6
    want = np.stack([np.percentile(I[:, :, 0].reshape(S, Tk, -1), pct, axis=-1),
                     np.percentile(I[:, :, 1, :, :4].reshape(S, Tk, -1), pct, axis=-1)], axis=-1)
    np.testing.assert_array_equal(tile_current_stats(f, x, pct), want)


@pytest.mark.parametrize("B, m, signed, x_max", [(10, 4096, False, None), (40, 7, True, None), (40, 33, True, 0.5),
                                                 (3, 5, True, 1.0), (50, 1, False, 1.0)])
def test_calibration_codes_are_the_evenly_spaced_codes_of_every_input(B, m, signed, x_max):
    """Only the codes a calibration uses are made (``selected_codes``): they equal those picked evenly
    out of the codes (P, B, K) of every input and phase, bitwise."""
    f = _model(3, x_max=x_max)
    x = np.random.default_rng(B).random((B, 19)) - (0.5 if signed else 0.0)
    x[0, :3] = 0.0
    codes, _ = f.codes(x)
    np.testing.assert_array_equal(calibration_codes(f, x, m), _evenly(codes.reshape(-1, 19), m))


@pytest.mark.parametrize("mode", ["rowsum", "exact", "none"])
@pytest.mark.parametrize("adc", [dict(bits=6), dict(bits=None), dict(bits=6, inl_lsb=(0.0, 0.4, -0.3, 0.0))])
def test_per_column_ranges(mode, adc):
    """Per column: shape (S, Tk, Tn, Nc); at the maximum, the tile's range is its columns' largest and each
    column's largest calibration current reaches full scale exactly; every plan (numpy, torch float64)
    equals the reference evaluator, whose ADC divides each column by its own full scale."""
    import torch

    from xbarlab.peripherals.adc import ADCParams

    spec = _spec().replace(adc=ADCParams(**adc))
    spec = spec.replace(dac=dataclasses.replace(spec.dac, r_pd=200.0))
    rng = np.random.default_rng(7)
    f = FCM.from_weights(rng.normal(size=(19, 10)), spec, np.random.default_rng(8), FCMOptions(dac_load=mode))
    x = rng.random((25, 19))
    col, tile = (calibrate_adc(f, x[:12], CalibratedRange(100, per)) for per in ("column", "tile"))
    S, Tk, Tn, _, Nc = f.Gn.shape
    assert col.adc_full_scale_a.shape == (S, Tk, Tn, Nc) and tile.adc_full_scale_a.shape == (S, Tk, Tn)
    n_last = 10 - (Tn - 1) * Nc
    np.testing.assert_array_equal(tile.adc_full_scale_a[:, :, :-1], col.adc_full_scale_a[:, :, :-1].max(-1))
    np.testing.assert_array_equal(tile.adc_full_scale_a[:, :, -1], col.adc_full_scale_a[:, :, -1, :n_last].max(-1))
    assert np.all(col.adc_full_scale_a[:, :, -1, n_last:] == f.adc_full_scale_a[:, :, -1, None])  # padding
    I = reference.evaluate(col, x[:12])["I"]  # (P, B, S, Tk, Tn, Nc)
    a = reference.adc_input(col, I).max(axis=(0, 1))[:, :, -1, :n_last] if adc.get("bits") else None
    if a is not None and not adc.get("inl_lsb"):
        np.testing.assert_allclose(a, col.spec.adc.full_code, rtol=1e-12)
    c = calibrate_adc(f, x[:12], CalibratedRange(70, "column"))  # most columns clip
    for m in (col, c):
        ref = reference.evaluate(m, x)["y"]
        lsb = np.max(np.abs(ref)) / 63
        for y in (m.matmul(x), m.matmul(torch.as_tensor(x)).numpy()):
            assert np.max(np.abs(y - ref)) <= 2 * lsb  # at most a code flipped at a rounding boundary
            assert np.mean(np.abs(y - ref) < 1e-9 * lsb) > 0.9
    with pytest.raises(ValueError, match=r"one per column"):
        FCM(f.spec, c.options, f.shape, f.w_max, f.G, f.Gn, f.Y, adc_full_scale_a=np.ones(f.Gn.shape[:3]))
