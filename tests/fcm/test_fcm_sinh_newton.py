"""The sinh FCM against its reference for non-linear cells, the exact Newton solver (``engines.nonlinear``).

* ``exact_currents`` (the Newton solver on the DACs' Thevenin form) equals ngspice's ``.op`` of the full
  DAC deck (``dac_netlist``) to 1e-9 of full scale (b = 10 /V, 6x6; measured about 1e-12, ngspice at its
  default tolerances);
* the ROWSUM sinh FCM (sinh_gamma 1) stays within the stated bound ``sinh_pct_fs_bound`` against the Newton
  solver for b up to 10 /V (hypothesis, no ngspice: the reference is exact), and at b = 10 /V on a
  16x16 reram tile its error is visible (> 1 % FS; ``reports/fcm_sinh.md`` measures 2.1 % FS there).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xbarlab.transistor import AccessTransistor
from xbarlab.fcm.model import DacLoad, FCMOptions
from xbarlab.verify.fcm_sinh import measure, page, sinh_spec
from xbarlab.verify.fitting import error_pct_fs, model_currents, random_samples
from xbarlab.verify.rowsum_bound import sinh_pct_fs_bound
from xbarlab.verify.spice_reference import exact_currents, spice_currents


@pytest.mark.ngspice
def test_newton_reference_equals_ngspice_on_the_dac_deck(ngspice):
    spec = sinh_spec("spintronic", 6, 10.0)
    (G, codes), = random_samples(spec, 1, np.random.default_rng(4))
    ref = exact_currents(G, codes, spec)[0]
    sp = spice_currents(G, codes, spec)[0]
    assert np.abs(ref - sp).max() <= 1e-9 * spec.full_scale_current_a


@st.composite
def sinh_tiles(draw):
    preset = draw(st.sampled_from(["reram", "spintronic"]))
    m, n = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    s = sinh_spec(preset, 8, draw(st.floats(0.5, 10.0)))
    s = s.replace(rows=m, cols=n)
    return s, random_samples(s, 2, np.random.default_rng(draw(st.integers(0, 2**32 - 1))))


@settings(max_examples=25, deadline=None)
@given(case=sinh_tiles())
def test_rowsum_sinh_fcm_within_the_stated_bound_of_the_newton_solver(case):
    spec, samples = case
    I_ref = np.stack([exact_currents(G, c, spec)[0] for G, c in samples])
    e = error_pct_fs(model_currents(spec, samples, FCMOptions(dac_load=DacLoad.ROWSUM)), I_ref, spec)
    assert e["max_pct_fs"] <= sinh_pct_fs_bound(spec)


def test_sinh_fcm_error_at_b10_on_16x16_is_visible_and_bounded():
    row = measure(sinh_spec("reram", 16, 10.0), 4)
    assert 1.0 < row["max_pct_fs"] <= row["bound_pct_fs"]
    assert row["fit_max_pct_fs"] < row["max_pct_fs"]  # the fitted operating point helps, on held-out samples
    # ... but only with the load factor at its lower bound (the best value lies below 0.5): the page says so
    assert row["fit_at_bound"] == "load_factor" and "(kappa 0.5 at its bound)" in page([row])


def test_exact_currents_refuses_1t1r_specs():
    spec = sinh_spec("reram", 4, 1.0)
    acc = dataclasses.replace(spec.device, sinh_b=0.0, access=AccessTransistor())
    with pytest.raises(ValueError, match="1T-1R"):
        exact_currents(np.full((4, 4), 1e-5), np.zeros(4), spec.replace(device=acc))
