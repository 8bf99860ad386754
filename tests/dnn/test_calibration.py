"""Converter ranges of networks calibrated on training data only (dnn_eval.calibration, dnn-eval flags)."""

from __future__ import annotations

import json
import numpy as np
import pytest

pytest.importorskip("torch")

from xbarlab.cli import main  # noqa: E402
from xbarlab.fcm.ranges import CalibratedInput, CalibratedRange, FixedRange, PerVector, WorstCase  # noqa: E402

CAL = ["--dac-range", "calibrated", "--adc-range", "calibrated", "--calibration-samples", "120"]


def _run(capsys, *argv) -> dict:
    assert main(["dnn-eval", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_says_which_ranges_and_how_calibrated(capsys):
    out = _run(capsys, "lenet", "--limit", "40", *CAL)
    c = out["config"]
    assert c["sensing"] == "separate"
    r = c["converter_ranges"]
    assert r["dac"] == {"kind": "calibrated", "percentile": 99.99}
    assert r["adc"] == {"kind": "calibrated", "per": "tile", "percentile": 99.99}
    assert r["calibration_split"] == "train" and r["calibration_samples"] == 120
    assert [ly["layer"] for ly in r["layers"]] == ["features.0", "features.3", "classifier.1", "classifier.3"]
    assert all(ly["x_max"] > 0 and 0 < ly["adc_full_scale_a"]["min"] <= ly["adc_full_scale_a"]["max"]
               for ly in r["layers"])
    assert r["layers"][0]["x_max"] == 1.0  # digits pixels are in [0, 1] and the bright ones saturate
    assert "x_max" not in c["fcm_options"] and "adc_range" not in c["fcm_options"]  # (per layer: above)
    d = _run(capsys, "lenet", "--limit", "40")["config"]["converter_ranges"]  # the CLI's defaults: calibrated
    assert d["dac"] == r["dac"] and d["adc"] == r["adc"] and d["calibration_samples"] == 500
    d = _run(capsys, "lenet", "--limit", "40", "--dac-range", "per-vector", "--adc-range",
             "worst-case")["config"]["converter_ranges"]
    assert d["dac"] == {"kind": "per-vector"} and d["adc"] == {"kind": "worst-case"}
    assert d["calibration_split"] is None and all(ly["x_max"] is None for ly in d["layers"])


@pytest.mark.parametrize("per", ["tile", "column"])
def test_calibration_never_sees_the_test_split(capsys, monkeypatch, per):
    """A sentinel test set that would change every range if calibration read it leaves them unchanged
    (ADC ranges calibrated per tile and per column)."""
    import dnn_eval.data as data

    cal = [*CAL, "--adc-calibration", per]
    first = _run(capsys, "lenet", "--limit", "30", *cal)["config"]["converter_ranges"]
    assert first["adc"]["per"] == per
    ref = first["layers"]
    real = data.load_test_split

    def sentinel(dataset="digits", data_dir=None):
        s = real(dataset, data_dir)
        return data.Split(np.ascontiguousarray(np.flip(s.x, -1) * 0.25), s.y)  # other images, other ranges

    monkeypatch.setattr(data, "load_test_split", sentinel)
    out = _run(capsys, "lenet", "--limit", "30", *cal)
    assert out["config"]["converter_ranges"]["layers"] == ref
    # and the batch it used is the training split's (evenly spaced)
    from dnn_eval.calibration import calibration_batch
    from dnn_eval.cli import calibration_of, ranges_of

    class A:
        dataset, dac_range, adc_range, calibration_percentile, calibration_samples, adc_calibration = \
            "digits", "calibrated", "calibrated", 99.99, 120, per
    train, test = data.load_bundled_split("digits")
    assert ranges_of(A).adc == CalibratedRange(99.99, per)
    batch = calibration_of(A, ranges_of(A))
    assert np.array_equal(batch, calibration_batch(train.x, 120)) and len(batch) == 120


def test_evaluate_refuses_test_images_as_calibration_data():
    from dnn_eval.calibration import ConverterRanges
    from dnn_eval.data import load_bundled_split
    from dnn_eval.evaluate import evaluate, make_spec
    from dnn_eval.loading import load_model

    train, test = load_bundled_split("digits")
    lm = load_model("lenet", test.input_shape)
    spec = make_spec(size=32, variation=0.0)
    r = ConverterRanges(CalibratedInput(), CalibratedRange())
    leak = np.concatenate([train.x[:20], test.x[5:6]])
    with pytest.raises(ValueError, match="training data only"):
        evaluate(lm, test, spec, 0, ranges=r, calibration=leak)
    with pytest.raises(ValueError, match="calibration batch"):
        evaluate(lm, test, spec, 0, ranges=r)


def test_fixed_ranges_need_no_data_and_are_applied(capsys):
    out = _run(capsys, "mlp", "--limit", "20", "--dac-range", "2.5", "--adc-range", "1e-4")
    r = out["config"]["converter_ranges"]
    assert r["dac"] == {"kind": "fixed", "x_max": 2.5} and r["adc"] == {"kind": "fixed", "full_scale_a": 1e-4}
    assert all(ly["x_max"] == 2.5 and ly["adc_full_scale_a"]["min"] == ly["adc_full_scale_a"]["max"] == 1e-4
               for ly in r["layers"])


def test_converter_ranges_validated_and_in_the_instance_setup():
    from dnn_eval.calibration import ConverterRanges
    from dnn_eval.instances import InstanceSetup
    from xbarlab.fcm import FCMOptions
    from xbarlab.spec import load_preset

    with pytest.raises(ValueError, match="samples"):
        ConverterRanges(samples=0)
    with pytest.raises(ValueError, match="adc_range"):
        ConverterRanges(adc="best")
    r = ConverterRanges(CalibratedInput(99.0), FixedRange(2e-5), samples=50)
    assert ConverterRanges.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert ConverterRanges() == ConverterRanges(PerVector(), WorstCase())
    s = InstanceSetup("lenet", None, "digits", None, 10, load_preset("rxnn-spintronic", 16, 16), FCMOptions(), 0, 1,
                      "m", "d", r.to_dict())
    assert InstanceSetup.from_params(s.to_params()) == s
    plain = InstanceSetup("lenet", None, "digits", None, 10, s.spec, FCMOptions(), 0, 1, "m", "d")
    assert "ranges" not in plain.to_params()  # default ranges: the sweeps' keys as before


@pytest.mark.parametrize("argv, msg", [
    (["mlp", "--adc-range", "best"], "--adc-range"),
    (["mlp", "--dac-range", "-1"], "within [1e-30, 1e+30] input units"),
    (["mlp", "--dac-range", "1e-320"], "within [1e-30, 1e+30] input units"),  # (float32 cannot resolve it)
    (["mlp", "--adc-range", "1e300"], "within [1e-15, 1000] ampere"),
    (["mlp", "--adc-range", "nan"], "within [1e-15, 1000] ampere"),
    (["mlp", "--calibration-percentile", "0"], "percentile"),
    (["mlp", "--adc-calibration", "row"], "--adc-calibration"),
    (["mlp", "--adc-range", "worst-case", "--adc-calibration", "column"], "--adc-calibration"),
    (["mlp", "--dataset", "mnist", "--data-dir", ".", "--adc-range", "calibrated"], "training split"),  # no training split to calibrate on (its default ranges are per-vector / worst-case)
])
def test_bad_range_flags_one_line(argv, msg, capsys):
    try:
        rc = main(["dnn-eval", *argv])
    except SystemExit as e:  # argparse's own exit
        rc = e.code
    err = capsys.readouterr().err
    assert rc != 0 and msg in err and "Traceback" not in err
    assert len([ln for ln in err.strip().splitlines() if "error" in ln]) == 1


@pytest.mark.parametrize("per", ["tile", "column"])
def test_sliced_layers_are_calibrated_per_slice(per):
    """Weight slices see the layer's inputs; bit-serial slices the codes of each cycle (<= 2**b - 1)."""
    import torch

    from dnn_eval.calibration import ConverterRanges, calibrate_network
    from dnn_eval.convert import crossbar_layers, to_crossbar
    from dnn_eval.evaluate import make_spec
    from xbarlab.backend import NumpyNS
    from xbarlab.fcm.calibration import tile_current_stats
    from xbarlab.fcm.slicing import Slicing
    from xbarlab.fcm.stages import dac_codes_t

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(20, 12))
    spec = make_spec(size=16, variation=0.0, device_bits=3)
    x = np.random.default_rng(0).random((64, 20)).astype(np.float32)
    r = ConverterRanges(CalibratedInput(100), CalibratedRange(100, per))
    for sl in (Slicing(2, None), Slicing(1, 2)):
        m = to_crossbar(net, spec, None, slicing=sl)
        calibrate_network(m, x, r)
        f = crossbar_layers(m)[0].fcms[0]
        assert f.options.x_max == pytest.approx(float(x.max()))
        for g in f.fcms:
            assert isinstance(g.options.adc_range, CalibratedRange) and g.adc_calibrated
            inp = x.astype(float) if sl.input_bits_per_cycle is None else None
            if inp is not None:  # the same inputs, the same x_max: the slice's own tile maxima
                st = tile_current_stats(g.with_options(x_max=f.options.x_max, adc_range=WorstCase()), inp, 100.0,
                                        per=per)  # (0 for the zero padding's columns: they keep the worst case)
                assert g.adc_full_scale_a.shape == st.shape and np.all(st[..., :12] > 0)
                np.testing.assert_array_equal(g.adc_full_scale_a[st > 0], st[st > 0])
        if sl.input_bits_per_cycle is not None:  # each cycle's digits made here with integer bit operations
            b = sl.input_bits_per_cycle
            c, _ = dac_codes_t(NumpyNS(), np.ascontiguousarray(x.T), spec.dac, f.options.x_max, False)
            ci = c.astype(np.int64)
            V = np.concatenate([((ci >> (b * k)) & (2**b - 1)).T for k in range(f.cycles)]).astype(float)
            assert V.shape == (64 * f.cycles, 20) and V.max() <= 2**b - 1
            for g in f.fcms:
                st = tile_current_stats(g.with_options(adc_range=WorstCase()), V, 100.0, per=per)
                np.testing.assert_array_equal(g.adc_full_scale_a[st > 0], st[st > 0])
        y = m(torch.as_tensor(x))
        assert torch.isfinite(y).all()


def test_calibration_batch_is_evenly_spaced_over_the_training_split():
    from dnn_eval.calibration import calibration_batch

    a = np.arange(10)[:, None]
    np.testing.assert_array_equal(calibration_batch(a, 4).ravel(), [0, 3, 6, 9])
    np.testing.assert_array_equal(calibration_batch(a, 10).ravel(), np.arange(10))
    np.testing.assert_array_equal(calibration_batch(a, 50).ravel(), np.arange(10))


@pytest.mark.parametrize("conv, signed", [
    (dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, dilation=2, groups=2), True),
    (dict(in_channels=3, out_channels=4, kernel_size=(2, 3), stride=(1, 2), padding=(2, 1),
          padding_mode="reflect"), False),
    (dict(in_channels=2, out_channels=3, kernel_size=3, padding="same"), True),
    (dict(in_channels=3, out_channels=3, kernel_size=1, stride=3), False),
])
def test_calibration_patches_are_unfolds_rows(conv, signed):
    """The patches calibration gathers one by one (``_vectors``) are F.unfold's rows, bitwise, in its
    order; the signed flag is whether any patch of the group has a negative entry."""
    import torch
    import torch.nn.functional as F

    from dnn_eval.calibration import _vectors
    from dnn_eval.convert import crossbar_layers, to_crossbar
    from dnn_eval.evaluate import make_spec

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Conv2d(**conv))
    layer = crossbar_layers(to_crossbar(net, make_spec(size=8, variation=0.0), None))[0]
    x = torch.rand(5, conv["in_channels"], 9, 11) - (0.5 if signed else 0.0)
    geo = layer.geometry
    xp, pad = geo.explicit_pad(x)
    P = F.unfold(xp.double(), geo.kernel, dilation=geo.dilation, padding=pad, stride=geo.stride)
    P = P.permute(0, 2, 1).reshape(-1, P.shape[1]).numpy()
    kg = P.shape[1] // geo.groups
    got = _vectors(layer, x)
    assert len(got) == geo.groups
    for k, (n, neg, rows) in enumerate(got):
        want = P[:, k * kg:(k + 1) * kg]
        idx = np.random.default_rng(k).permutation(n)[:50]
        assert n == len(want) and neg == bool((want < 0).any())
        np.testing.assert_array_equal(rows(idx), want[idx])
        np.testing.assert_array_equal(rows(np.arange(n)), want)


def test_fixed_batch_filler_images_are_not_calibration_data():
    """A fixed-batch export runs chunks of exactly ``fixed_batch`` images, the last one filled up with the
    batch's first images: those copies were recorded as layer inputs too, so they counted twice in the
    input percentile and in the ADC's vectors. Each layer's inputs are those of the images, once."""
    import torch

    from dnn_eval.calibration import _layer_inputs
    from dnn_eval.convert import crossbar_layers, to_crossbar
    from dnn_eval.evaluate import make_spec

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    m = to_crossbar(net, make_spec(size=16, variation=0.0), None)
    x = np.random.default_rng(1).random((10, 6)).astype(np.float32)
    free = _layer_inputs(m, x)
    for fixed in (4, 16):  # 10 images in chunks of 4 (the last 2 + 2 filler), or one chunk of 16 (6 filler)
        got = _layer_inputs(m, x, fixed_batch=fixed)
        for layer in crossbar_layers(m):
            assert got[id(layer)].shape == free[id(layer)].shape == (10, layer.fcms[0].shape[0])
            torch.testing.assert_close(got[id(layer)], free[id(layer)])


def test_bit_serial_calibration_makes_only_the_codes_it_uses():
    """The per-cycle codes are made from the selected vectors alone; they are the rows the full set of
    every vector's codes (phase-major, then cycle) gives at the evenly spaced ``select_vectors`` indices."""
    from dnn_eval.calibration import _cycle_codes
    from dnn_eval.evaluate import make_spec
    from xbarlab.backend import NumpyNS
    from xbarlab.fcm.calibration import select_vectors
    from xbarlab.fcm.options import FCMOptions
    from xbarlab.fcm.slicing import SlicedFCM, Slicing

    rng = np.random.default_rng(4)
    spec = make_spec(size=16, variation=0.0, device_bits=3)
    sf = SlicedFCM.from_weights(rng.normal(size=(20, 12)), spec, np.random.default_rng(5),
                                FCMOptions(x_max=1.0), Slicing(1, 2))
    X = rng.uniform(-1, 1, (300, 20))
    made = []

    def rows(i):
        made.append(len(i))
        return X[i]
    got = _cycle_codes(sf, len(X), True, rows, max_vectors=50)
    phases, _ = sf._input_codes(NumpyNS(), np.ascontiguousarray(X.T), None)
    q = 4.0
    full = np.concatenate([(np.floor(c / q**k) - np.floor(c / q ** (k + 1)) * q).T
                           for _, c in phases for k in range(sf.cycles)])
    assert len(phases) == 2 and full.shape == (2 * sf.cycles * 300, 20)
    _, r = select_vectors(len(full), 1, 50)
    np.testing.assert_array_equal(got, full[r])
    assert made == [len(np.unique(r % 300))] and made[0] <= 50
