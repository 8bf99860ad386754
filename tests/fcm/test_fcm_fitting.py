"""``xbarlab.verify.fitting``: recovers a known load factor, its held-out error is bounded, and a fit
made for another circuit is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import xbarlab as xb
from xbarlab.verify import fitting
from xbarlab.verify.rowsum_bound import rowsum_rel_bound


def _spec(r_pd: float, rows: int = 8, cols: int = 6, circuit: xb.CircuitParams | None = None) -> xb.CrossbarSpec:
    base = xb.load_preset("spintronic", rows=rows, cols=cols)
    return base.replace(dac=dataclasses.replace(base.dac, r_pd=r_pd), circuit=circuit or base.circuit)


def test_fit_samples_recovers_a_known_load_factor():
    """Synthetic reference: currents of the ROWSUM model itself at kappa = 0.9 (no ngspice)."""
    spec = _spec(200.0)
    rng = np.random.default_rng(1)
    train, test = fitting.random_samples(spec, 6, rng), fitting.random_samples(spec, 6, rng)
    true = xb.FCMOptions(load_factor=0.9)
    I_train, I_test = (fitting.model_currents(spec, s, true) for s in (train, test))
    r = fitting.fit_samples(spec, train, test, I_train, I_test, seed=1)
    assert abs(r["options"]["load_factor"] - 0.9) < 1e-6
    assert r["fit"]["fitted"]["test"]["max_pct_fs"] < 1e-8


@pytest.mark.ngspice
def test_fit_on_ngspice_recovers_kappa_1_where_rowsum_is_exact(ngspice):
    """Rows coupled only through their own driver (no wire, no sense resistance): each DAC sees exactly
    sum_j Gn[i, j], so the fit against ngspice must give kappa = 1 and a held-out error at ngspice's precision."""
    spec = _spec(200.0, circuit=xb.CircuitParams(r_driver=tuple(np.linspace(10.0, 100.0, 8))))
    r = fitting.fit(spec, n_train=4, n_test=4, seed=2)
    assert abs(r["options"]["load_factor"] - 1.0) < 1e-6
    assert r["fit"]["fitted"]["test"]["max_rel"] < 1e-8


@pytest.mark.ngspice
@pytest.mark.parametrize("r_pd", [20.0, 200.0])
def test_fit_held_out_error_is_below_unfitted_and_within_the_bound(ngspice, r_pd):
    spec = _spec(r_pd, rows=16, cols=16)
    r = fitting.fit(spec, n_train=6, n_test=6, seed=3, workers=2)
    kappa = r["options"]["load_factor"]
    fitted, unfitted = r["fit"]["fitted"]["test"], r["fit"]["unfitted (all 1.0)"]["test"]
    print(f"R_PD {r_pd}: kappa {kappa:.4f}; held-out fitted {fitted}, unfitted {unfitted}")
    assert 0.5 < kappa < 1.0
    assert fitted["rms_pct_fs"] < unfitted["rms_pct_fs"] and fitted["mean_rel"] < unfitted["mean_rel"]
    rng = np.random.default_rng(3)
    fitting.random_samples(spec, 6, rng)
    bound = max(rowsum_rel_bound(spec, G, kappa) for G, _ in fitting.random_samples(spec, 6, rng))
    assert fitted["max_rel"] <= bound and fitted["max_pct_fs"] <= 100.0 * bound


@pytest.mark.ngspice
def test_stored_preset_fit_beats_unfitted_on_held_out_samples(ngspice):
    """The kappa dnn_eval uses by default (xbarlab/presets/fitted/spintronic_16x16.json), on fresh samples."""
    spec = xb.load_preset("spintronic", rows=16)
    opts = fitting.fitted_options(spec)
    assert opts is not None and opts.load_factor < 1.0
    samples = fitting.random_samples(spec, 8, np.random.default_rng(12345))  # the fit used seed 0
    I_spice = fitting.spice_reference(spec, samples, workers=2)
    e_fit = fitting.error_pct_fs(fitting.model_currents(spec, samples, opts), I_spice, spec)
    e_one = fitting.error_pct_fs(fitting.model_currents(spec, samples, xb.FCMOptions()), I_spice, spec)
    bound = max(rowsum_rel_bound(spec, G, opts.load_factor) for G, _ in samples)
    print(f"stored 16x16 fit, kappa {opts.load_factor:.4f}: held-out {e_fit}; kappa 1: {e_one}")
    assert e_fit["rms_pct_fs"] < e_one["rms_pct_fs"] and e_fit["mean_rel"] < e_one["mean_rel"]
    assert e_fit["max_rel"] <= bound


def test_a_fit_for_another_circuit_is_refused():
    spec = xb.load_preset("spintronic", rows=64)
    other = spec.replace(circuit=xb.CircuitParams(r_row=1.0, r_col=1.0, r_sense=10.0, r_driver=5.0))
    path = fitting.fit_path(other)
    assert path.exists()  # same name and size: the file that used to be applied silently
    with pytest.raises(ValueError, match="another circuit.*circuit"):
        fitting.load_fit(path, other)
    assert fitting.fitted_options(other) is None
    weak = spec.replace(dac=dataclasses.replace(spec.dac, r_pd=200.0))
    with pytest.raises(ValueError, match="dac"):
        fitting.load_fit(path, weak)
    assert fitting.fitted_options(spec).load_factor == pytest.approx(0.859357419305844)
    more_bits = spec.replace(dac=dataclasses.replace(spec.dac, bits=8), device=dataclasses.replace(spec.device, variation=0.1))
    assert fitting.fitted_options(more_bits) == fitting.fitted_options(spec)  # kept across bits and variation
