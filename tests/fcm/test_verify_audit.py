"""Audit of xbarlab.verify, the FCM calibration and the FCM characterization scripts: invalid inputs raise
ValueError naming the field, fits the samples cannot determine raise, NaN currents never pass a verdict."""

from __future__ import annotations

import argparse
import json
import dataclasses

import numpy as np
import pandas as pd
import pytest

import xbarlab as xb
from xbarlab.fcm import FCM, FCMOptions
from xbarlab.fcm.calibration import calibration_codes, current_stats, tile_current_stats
from xbarlab.fcm.mapping import conductances
from xbarlab.verify import baseline, fitting, metrics, spice_reference


def _spec(r_pd: float = 200.0, sinh_b: float = 0.0, rows: int = 6, cols: int = 5) -> xb.CrossbarSpec:
    base = xb.load_preset("spintronic", rows=rows, cols=cols)
    return base.replace(dac=dataclasses.replace(base.dac, r_pd=r_pd),
                        device=dataclasses.replace(base.device, sinh_b=sinh_b))


def _samples(spec, n=4, seed=1):
    rng = np.random.default_rng(seed)
    return fitting.random_samples(spec, n, rng), fitting.random_samples(spec, n, rng)


def test_column_errors_refuses_nan_currents_other_shapes_and_bad_full_scale():
    """A NaN reference column used to count as a zero-current column: max_rel 0.0, a passing verdict."""
    ok = np.ones(4)
    with pytest.raises(ValueError, match="I_ref must be finite"):
        metrics.column_errors(ok, np.array([1.0, 1.0, np.nan, 1.0]), 1.0)
    with pytest.raises(ValueError, match="I_model must be finite"):
        metrics.column_errors(np.array([1.0, np.inf, 1.0, 1.0]), ok, 1.0)
    with pytest.raises(ValueError, match="one shape"):
        metrics.column_errors(np.ones((3, 4)), ok, 1.0)
    for fs in (0.0, -1.0, float("nan"), True):
        with pytest.raises(ValueError, match="full_scale_a"):
            metrics.column_errors(ok, ok, fs)
    assert metrics.column_errors(ok * 1.01, ok, 1.0)["max_rel"] == pytest.approx(0.01)


def test_column_errors_with_no_current_has_no_relative_error():
    """All columns below ZERO_FS: nothing to judge, NaN (0 read as a perfect match, and passed a verdict)."""
    z = np.zeros(4)
    e = metrics.column_errors(z + 1e-3, z, 1.0)
    assert e["n_rel"] == 0 and e["n_zero"] == 4
    assert np.isnan(e["max_rel"]) and np.isnan(e["mean_rel"])
    assert e["max_pct_fs"] == pytest.approx(0.1)


def test_sample_counts_and_reference_currents_are_checked():
    spec = _spec()
    rng = np.random.default_rng(0)
    for n in (-1, 2.5, True):
        with pytest.raises(ValueError, match="n must be an integer"):
            fitting.random_samples(spec, n, rng)
    for kw, field in (({"n_train": 0}, "n_train"), ({"n_test": -2}, "n_test"), ({"workers": 0}, "workers")):
        with pytest.raises(ValueError, match=field):
            fitting.fit(spec, **kw)  # before any ngspice run
    train, test = _samples(spec)
    I = fitting.model_currents(spec, train, FCMOptions(load_factor=0.9))
    with pytest.raises(ValueError, match="test must hold at least one"):
        fitting.fit_samples(spec, train, [], I, np.zeros((0, spec.cols)), 0)
    with pytest.raises(ValueError, match=r"I_train must be \(4, 5\)"):
        fitting.fit_samples(spec, train, test, I[0], I, 0)
    bad = I.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="I_test must be finite"):
        fitting.fit_samples(spec, train, test, I, bad, 0)


def test_a_fit_the_samples_cannot_determine_raises():
    """All DAC codes 0 (no current: kappa undetermined), or a sinh b whose effect double precision does not
    resolve: the fit used to return kappa = 1.0 / an arbitrary sinh_gamma (1.06 at b = 1e-9) as fitted."""
    spec = _spec()
    train, test = _samples(spec)
    zero = [(G, np.zeros_like(c)) for G, c in train]
    I_test = fitting.model_currents(spec, test, FCMOptions(load_factor=0.9))
    with pytest.raises(ValueError, match="rank-deficient"):
        fitting.fit_samples(spec, zero, test, np.zeros((4, spec.cols)), I_test, 0)
    for r_pd in (200.0, 0.0):
        spec = _spec(r_pd=r_pd, sinh_b=1e-9)
        train, test = _samples(spec)
        true = FCMOptions(load_factor=0.9, sinh_gamma=0.95)
        I_train, I_test = (fitting.model_currents(spec, s, true) for s in (train, test))
        with pytest.raises(ValueError, match="rank-deficient"):
            fitting.fit_samples(spec, train, test, I_train, I_test, 0)


def test_a_weak_sinh_gamma_is_fitted_not_left_at_its_start():
    """b = 0.02 /V: the gradient at the start is below least_squares' default gtol (1e-8), which stopped at
    sinh_gamma = 1.0 exactly and reported it as the fit of a 0.95 reference."""
    spec = _spec(r_pd=0.0, sinh_b=0.02)
    train, test = _samples(spec)
    true = FCMOptions(load_factor=1.0, sinh_gamma=0.95)
    I_train, I_test = (fitting.model_currents(spec, s, true) for s in (train, test))
    r = fitting.fit_samples(spec, train, test, I_train, I_test, 0)
    assert abs(r["options"]["sinh_gamma"] - 0.95) < 1e-6


def test_fit_eps_refuses_broadcast_shapes_nan_and_all_zero_ideal_currents():
    rng = np.random.default_rng(2)
    I = rng.random((3, 4))
    assert baseline.fit_eps(I, 0.9 * I) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="one shape"):
        baseline.fit_eps(I, 0.9 * I[0])  # broadcast: used to give a wrong eps silently
    with pytest.raises(ValueError, match="I_ref must be finite"):
        baseline.fit_eps(I, np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match="all zero"):
        baseline.fit_eps(np.zeros((3, 4)), I)


def test_spice_evaluate_of_an_all_zero_model_is_a_value_error():
    spec = xb.load_preset("rxnn-spintronic", 4, 4)
    f = FCM.from_weights(np.zeros((6, 5)), spec, np.random.default_rng(0), FCMOptions())
    with pytest.raises(ValueError, match="no tiles"):  # was AttributeError: 'NoneType' has no 'shape'
        spice_reference.spice_evaluate(f, np.ones((1, 6)))


def test_current_stats_checks_percentile_and_unit():
    spec = xb.load_preset("rxnn-spintronic", 4, 4)
    rng = np.random.default_rng(3)
    f = FCM.from_weights(rng.normal(size=(6, 5)), spec, np.random.default_rng(4), FCMOptions())
    x = rng.random((10, 6))
    codes = calibration_codes(f, x)
    with pytest.raises(ValueError, match="per must be one of"):
        current_stats(f, codes, 100.0, per="col")  # was the per-tile result, silently
    for pct in (True, float("nan"), 150.0, 0.0):
        with pytest.raises(ValueError, match="percentile"):
            tile_current_stats(f, x, pct)
    assert current_stats(f, codes, 100, per="column").shape == (2, 2, 2, 4)


def test_conductances_refuse_an_infinite_w_max():
    dev = xb.load_preset("rxnn-spintronic").device
    for w in (float("inf"), float("nan"), 0.0, True):
        with pytest.raises(ValueError, match="w_max"):  # inf mapped every cell to g_min
            conductances(np.ones((1, 1, 2, 2)), dev, w)


def test_accuracy_run_refuses_a_nan_reference_current(monkeypatch):
    """A NaN ngspice current was a NaN relative error, which pandas' max skips: the verdict passed."""
    from characterization import fcm_accuracy

    def fake(spec, samples, settings=None, workers=1):
        I = np.stack([baseline.ideal_currents(G, c, spec)[0] for G, c in samples]) * 0.99
        I[0, 1] = np.nan
        return I

    monkeypatch.setattr(fitting, "spice_reference", fake)
    with pytest.raises(ValueError, match="ngspice currents of the evaluation pairs must be finite"):
        fcm_accuracy.run_size(_spec(rows=4, cols=4), 2, 3, 0, 1, save_fit=False)


def test_validation_verdict_is_not_met_when_a_case_is_nan(monkeypatch, tmp_path, capsys):
    from xbarlab import validation_report

    df = pd.DataFrame({"rows": [3, 8], "exact_vs_ngspice_rel": [1e-12, np.nan]})
    monkeypatch.setattr(validation_report, "run_cases", lambda seed, vectors: df)
    assert validation_report.run(argparse.Namespace(out=str(tmp_path), seed=0, vectors=1)) == 1
    assert "NOT met" in (tmp_path / "validation.md").read_text()


@pytest.mark.parametrize("module, argv, field", [
    ("xbarlab.verify.fitting", ["--train", "0", "--size", "4"], "--train"),
    ("xbarlab.verify.fitting", ["--size", "0"], "rows"),
    ("xbarlab.verify.fitting", ["--workers", "0", "--size", "4"], "--workers"),
    ("xbarlab.verify.fcm_sinh", ["--sizes", "0"], "--sizes"),
    ("xbarlab.verify.fcm_sinh", ["--b", "-1", "--sizes", "4"], "--b"),
    ("xbarlab.verify.rowsum_bound", ["--n", "0"], "--n"),
    ("characterization.fcm_accuracy", ["--out", "FILE", "--quick"], "--out"),
    ("characterization.fcm_accuracy", ["--name", "a/b", "--quick"], "--name"),
    ("characterization.fcm_speed", ["--out", "FILE", "--quick"], "--out"),
])
def test_bad_arguments_are_one_line_errors_not_tracebacks(tmp_path, capsys, module, argv, field):
    import importlib

    (tmp_path / "f").write_text("")
    argv = [str(tmp_path / "f") if a == "FILE" else a for a in argv]
    if module.startswith("xbarlab.verify.fcm_sinh"):
        argv += ["--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:
        importlib.import_module(module).main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and field in err.strip().splitlines()[-1] and "Traceback" not in err, argv


def test_load_fit_of_a_file_that_is_not_a_fit_is_a_value_error(tmp_path):
    spec = _spec()
    for text in ('{"options": {}}', "[1, 2]", '{"spec": {}, "options": {"load_factor": 1.0}}'):
        (tmp_path / "f.json").write_text(text)
        with pytest.raises(ValueError, match="not a fit saved by save_fit"):  # was KeyError / TypeError
            fitting.load_fit(tmp_path / "f.json", spec)


def test_a_saved_fit_that_cannot_be_read_is_an_error_not_no_fit(tmp_path, monkeypatch):
    """fitted_options took any ValueError for 'no fit applies': a damaged fit file made the DNN layers run on
    the FCM's default options (kappa 1) without a word. Only a fit for another circuit means no fit."""
    monkeypatch.setattr(fitting, "FITTED_DIR", tmp_path)
    spec = xb.load_preset("spintronic", rows=16)
    path = fitting.fit_path(spec)
    for text, match in (('{"options": {}}', "not a fit saved"), ("{not json", "not JSON")):
        path.write_text(text)
        with pytest.raises(ValueError, match=match) as exc:
            fitting.fitted_options(spec)
        assert path.name in str(exc.value)
    other = spec.replace(dac=dataclasses.replace(spec.dac, r_pd=2 * spec.dac.r_pd + 1.0))
    path.write_text(json.dumps({"spec": other.to_dict(),
                                "options": {"load_factor": 1.1, "sinh_gamma": 1.0, "mapping": "differential",
                                            "x_max": None}}))
    assert fitting.fitted_options(spec) is None  # made for another circuit: no fit applies


@pytest.mark.parametrize("true_kappa", [0.2, 3.0])
def test_a_fit_that_stops_at_its_bound_is_marked_and_never_saved(true_kappa, tmp_path):
    """Currents of a load factor outside FIT_BOUNDS: the optimiser stops at the bound, which was saved and
    reported as the fitted kappa ("success": True). Synthetic currents (the FCM at true_kappa), no ngspice."""
    spec = _spec(r_pd=2000.0)
    train, test = _samples(spec, n=6)
    truth = FCMOptions(dac_load="rowsum", load_factor=true_kappa)
    I_train, I_test = (fitting.model_currents(spec, s, truth) for s in (train, test))
    result = fitting.fit_samples(spec, train, test, I_train, I_test, seed=0)
    assert result["fit"]["at_bound"] == ["load_factor"] and result["fit"]["success"] is False
    with pytest.raises(ValueError, match="stopped at its bound"):
        fitting.save_fit(result, tmp_path / "f.json")
    assert not (tmp_path / "f.json").exists()


def test_a_fit_inside_its_bounds_recovers_the_value():
    spec = _spec(r_pd=2000.0)
    train, test = _samples(spec, n=6)
    truth = FCMOptions(dac_load="rowsum", load_factor=0.8)
    I_train, I_test = (fitting.model_currents(spec, s, truth) for s in (train, test))
    got = fitting.fit_samples(spec, train, test, I_train, I_test, seed=0)["fit"]
    assert got["values"]["load_factor"] == pytest.approx(0.8, rel=1e-6)
    assert got["at_bound"] == [] and got["success"] is True


def test_rowsum_bound_rows_with_nothing_to_judge_read_nan_not_zero():
    """fcm_accuracy.bound_checks wrote 0 ('far within the bound') for the ROWSUM rows when no pair had a bound
    > 0 (R_PD = 0: no DAC load); nothing was judged, so the row is NaN and the page says n/a."""
    from characterization import fcm_accuracy

    spec = _spec(r_pd=0.0)
    pairs = fitting.random_samples(spec, 3, np.random.default_rng(0))
    I = np.full((3, spec.cols), 1e-6)
    cur = {k: I * 1.01 for k in ("fcm_exact", "fcm_rowsum", "fcm_rowsum_fitted")}
    rows = fcm_accuracy.bound_checks(spec, pairs, I, cur, 1.0)
    assert [np.isnan(r["largest_over_bound"]) for r in rows] == [False, True, True]


def test_rowsum_bound_counts_only_the_cases_it_measured(monkeypatch):
    """measure() reported cases = n when it skipped the cases without a DAC load (rho = 0)."""
    from xbarlab.verify import rowsum_bound

    real = rowsum_bound.load_ratio
    calls = []

    def every_other(spec, G):  # every second case has no load
        calls.append(1)
        return 0.0 if len(calls) % 2 == 0 else real(spec, G)

    monkeypatch.setattr(rowsum_bound, "load_ratio", every_other)
    w = rowsum_bound.measure(n=6, seed=0)
    assert (w["cases"], w["drawn"]) == (3, 6)


def test_reference_refuses_nonfinite_or_misshapen_inputs_like_matmul():
    """reference.dac_codes turned a NaN input into a NaN code (then a DAC error naming codes in [0, 63])."""
    from xbarlab.fcm import FCM
    from xbarlab.verify import reference as ref

    spec = xb.load_preset("spintronic", rows=8)
    f = FCM.from_weights(np.ones((4, 3)), spec, None)
    for x, msg in ((np.array([[np.nan, 1.0, 1.0, 1.0]]), "x must be finite"),
                   (np.array([[1.0, np.inf, 0.0, 0.0]]), "x must be finite"), (np.ones((2, 5)), r"x must be \(B, 4\)")):
        with pytest.raises(ValueError, match=msg):
            ref.dac_codes(f, x)
        with pytest.raises(ValueError):
            f.matmul(x)
    assert ref.evaluate(f, np.ones((1, 4)))["y"].shape == (1, 3)
