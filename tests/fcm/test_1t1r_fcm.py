"""The 1T-1R FCM (``xbarlab.fcm.cells``: each cell as G_eff at the operating point) end to end, FCM.matmul
against the Newton solver and ngspice on whole small 1T-1R crossbars.

Reference: every tile at the model's own DAC codes, solved on the complete circuit (each row's DAC in
Thevenin form, driver, wires, device plus BSIM4 access NMOS per cell, sense) by the Newton solver
(``engines.nonlinear``, on the FCM's own 10 mV transistor table) and by ngspice ``.op``
(``netlist_1t1r``, verification tolerances), then the FCM's ADC and accumulation.

Stated bounds, tested (8 x 8 tiles, a 12 x 10 layer: 2 x 2 tiles, differential pair, 6-bit DAC at
0.2 V, R_PD 20 ohm, wires 2.5 ohm, sense 100 ohm, driver 50 ohm, G in [1/300k, 1/30k] S, ideal ADC):

* transistor at the sense side (the default), V_G 0.9 V: column currents within ``SENSE_PCT_FS`` = 0.2 %
  of the ADC full scale of the Newton solve (measured at seed 0: 0.063 % on an Intel host, 0.048 % on an
  AMD EPYC host; EXACT and ROWSUM alike, largest over 4 seeds printed), y within ``SENSE_Y_REL`` = 2e-3
  of ngspice's largest |y| (measured 6.9e-4);
* transistor at the row side, V_G 0.75 V (where G_eff depends on the cell voltage: the model is poor, and
  says so): within ``ROW_PCT_FS`` = 6 % FS (measured 3.2 %), y within 0.1 (measured 0.041);
* Newton against ngspice: 1e-5 of the largest current (measured 9.7e-8 and 4.2e-8 on an Intel host,
  1.4e-7 and 5.8e-7 on an AMD EPYC host, 2026-12-07).

Cost in CI: one ngspice table sweep (V_G 0.9 V, about 6 s) and 24 ngspice decks (seed 0); the four
seeds and the row-side case are ``slow``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

import xbarlab as xb
from xbarlab.fcm import cells
from xbarlab.transistor import AccessTransistor
from xbarlab.verify import reference as ref

sys.path.insert(0, str(Path(__file__).parent))
import onet1r_reference as onet1r  # noqa: E402

SENSE_PCT_FS, SENSE_Y_REL = 0.2, 2e-3
ROW_PCT_FS, ROW_Y_REL = 6.0, 0.1
NEWTON_SPICE_REL = 1e-5
K, N = 12, 10


def spec_1t1r(access: AccessTransistor, size: int = 8) -> xb.CrossbarSpec:
    base = xb.load_preset("rxnn-spintronic")
    dev = dataclasses.replace(base.device, g_min=1 / 300e3, g_max=1 / 30e3, variation=0.0, access=access)
    return base.replace(rows=size, cols=size, device=dev, adc=dataclasses.replace(base.adc, bits=None))


def model_currents(fcm, x):
    """FCM tile currents (P, B, S, Tk, Tn, Nc) at the reference's DAC codes, with a mask of the real columns."""
    codes, _ = ref.dac_codes(fcm, x)
    I = np.stack([np.moveaxis(fcm.tile_currents(codes[p]), 3, 0) for p in range(codes.shape[0])])
    mask = np.ones(I.shape, bool)
    mask[..., -1, N - (fcm.G.shape[2] - 1) * fcm.spec.cols:] = False
    return I, mask


def pct_fs(fcm, I, I_ref, mask) -> float:
    fs = fcm.adc_full_scale_a[None, None, ..., None]
    return float(100 * (np.abs(I - I_ref) * mask / fs).max())


def layer(seed: int, spec, load: str):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((K, N))
    x = rng.random((3, K))
    return xb.FCM.from_weights(W, spec, rng, xb.FCMOptions(dac_load=load)), x


CASES = {"sense-0.9": (AccessTransistor(v_gate_v=0.9), SENSE_PCT_FS, SENSE_Y_REL),
         "row-0.75": (AccessTransistor(v_gate_v=0.75, side="row"), ROW_PCT_FS, ROW_Y_REL)}


@pytest.mark.ngspice
@pytest.mark.parametrize("case,seeds", [("sense-0.9", 1),
                                        pytest.param("sense-0.9", 4, marks=pytest.mark.slow),
                                        pytest.param("row-0.75", 4, marks=pytest.mark.slow)])
def test_1t1r_fcm_matmul_against_newton_and_ngspice(ngspice, case, seeds):
    access, pct_bound, y_bound = CASES[case]
    spec = spec_1t1r(access)
    table = cells.transistor_table(access)
    worst = 0.0
    for seed in range(seeds):
        for load in ("exact", "rowsum"):
            fcm, x = layer(seed, spec, load)
            I, mask = model_currents(fcm, x)
            rn = onet1r.evaluate(fcm, x, "newton", table)
            worst = max(worst, pct_fs(fcm, I, rn["I"], mask))
            if seed == 0 and load == "exact":
                rs = onet1r.evaluate(fcm, x, "ngspice")
                ns_dev = np.abs((rn["I"] - rs["I"]) * mask).max() / np.abs(rs["I"] * mask).max()
                y_dev = np.abs(fcm.matmul(x) - rs["y"]).max() / np.abs(rs["y"]).max()
                print(f"1T-1R FCM {case}: Newton vs ngspice {ns_dev:.3g} of the largest current; "
                      f"y vs ngspice {y_dev:.3g} of the largest |y|")
                assert ns_dev <= NEWTON_SPICE_REL
                assert y_dev <= y_bound
    print(f"1T-1R FCM {case}: largest column-current deviation from the Newton solve {worst:.3g} % FS "
          f"(bound {pct_bound:g}) over {seeds} seeds x 2 DAC loads")
    assert worst <= pct_bound


@pytest.mark.ngspice
def test_ideal_wires_give_the_sum_of_effective_conductances(ngspice):
    """No parasitics, unloaded DAC: the FCM's currents are exactly V @ G_eff (G_eff at the operating point)."""
    access = AccessTransistor(v_gate_v=0.9)
    base = spec_1t1r(access)
    spec = base.replace(circuit=xb.CircuitParams(), dac=dataclasses.replace(base.dac, r_pd=0.0))
    fcm, x = layer(1, spec, "none")
    codes, _ = ref.dac_codes(fcm, x)
    I = fcm.tile_currents(codes[0])  # (S, Tk, Tn, B, Nc)
    Ge = cells.effective_conductance(fcm.G, cells.operating_voltage(spec), cells.transistor_table(access))
    V = ref.tile_codes(fcm, codes)[0] * spec.dac.v_read / spec.dac.full_code  # (B, Tk, M)
    want = np.einsum("bkm,sktmc->sktbc", V, Ge)
    want[:, :, -1, :, N - spec.cols:] = 0.0
    np.testing.assert_allclose(I, want, rtol=1e-12, atol=1e-20)
    assert np.all(Ge < fcm.G) and np.all(Ge > 0.8 * fcm.G)  # the transistor only adds resistance


@pytest.mark.ngspice
def test_cutoff_conductance_meets_the_tolerance(ngspice):
    table = cells.transistor_table(AccessTransistor(v_gate_v=0.9))
    g = cells.cutoff_conductance(table, 0.025, (0.05, 0.2, 0.5))
    v = np.array([0.05, 0.2, 0.5])
    dev = lambda gg: np.abs(cells.effective_conductance(np.full(3, gg), v, table) / gg - 1).max()  # noqa: E731
    assert dev(g) <= 0.025 < dev(g * 1.001)
    with pytest.raises(ValueError, match="tol"):
        cells.cutoff_conductance(table, 1.5)
    with pytest.raises(ValueError, match="v_cells"):
        cells.cutoff_conductance(table, 0.02, (0.0,))


@pytest.mark.ngspice
@pytest.mark.parametrize("load", ["exact", "rowsum"])
def test_reference_evaluator_models_the_cells_as_the_fcm_does(ngspice, load):
    """``xbarlab.verify.reference`` on a 1T-1R model: every stage on the cells' G_eff (EXACT's row-port
    admittance included, ``reference.cell_conductances``), so it agrees with ``FCM.matmul`` to 1e-9 of the
    largest |y|; with the devices' own G in the row-port admittance EXACT would be off by far more. The
    ngspice reference writes 1R decks and refuses 1T-1R models."""
    from xbarlab.engines.ports import row_port_admittance_stack
    from xbarlab.verify.spice_reference import spice_tile_currents

    spec = spec_1t1r(AccessTransistor(v_gate_v=0.9))
    fcm, x = layer(2, spec, load)
    Gc = ref.cell_conductances(fcm)
    np.testing.assert_array_equal(Gc, cells.effective_tiles(fcm.G, spec))
    assert np.all(Gc < fcm.G)
    r = ref.evaluate(fcm, x)
    y = fcm.matmul(x)
    dev = np.abs(y - r["y"]).max() / np.abs(r["y"]).max()
    print(f"1T-1R reference vs FCM.matmul ({load}): {dev:.3g} of the largest |y|")
    assert dev <= 1e-9
    if load == "exact":  # the check has teeth: the device G in Y moves the loaded DAC voltages
        S, Tk, Tn, M, Nc = fcm.G.shape
        Y_dev = row_port_admittance_stack(fcm.G.reshape(-1, M, Nc), spec.circuit).reshape(S, Tk, Tn, M, M)
        c = r["tile_codes"][:, :, None, :, None, :]
        V_dev = spec.dac.v_loaded_ports(c, Y_dev, xb.backend.NumpyNS())
        shift = np.abs(V_dev - r["V"]).max() / spec.dac.v_read
        print(f"1T-1R EXACT: device G in place of G_eff moves V by {shift:.3g} of v_read")
        assert shift > 1e3 * dev
    with pytest.raises(ValueError, match="1T-1R"):
        spice_tile_currents(fcm, r["tile_codes"])


@pytest.mark.ngspice
def test_the_presets_1r_fit_lowers_the_1t1r_rowsum_error(ngspice):
    """(ngspice: the FCM's 1T-1R cell table is an ngspice sweep of the transistor.) ``fitting.fit_circuit`` leaves the access transistor out, so a preset's 1R DAC load factor is applied
    to its 1T-1R cells (``dnn_eval.evaluate.default_options``). It must help them too: on 64 x 64
    rxnn-spintronic tiles the ROWSUM column currents are closer to the EXACT DAC load's with it than with
    kappa = 1 (measured 2026-12-03: 4.9e-4 against 6.2e-4 of the largest current, median of 6 tiles)."""
    from xbarlab.verify.fitting import fitted_options

    base = xb.load_preset("rxnn-spintronic")
    spec = base.replace(device=dataclasses.replace(base.device, access=AccessTransistor(v_gate_v=0.9)))
    fit = fitted_options(spec)
    assert fit is not None and fit.load_factor == fitted_options(base).load_factor < 1.0
    for seed in range(3):
        rng = np.random.default_rng(seed)
        W, x = rng.standard_normal((64, 64)), rng.random((16, 64))
        exact = xb.FCM.from_weights(W, spec, np.random.default_rng(seed + 100), xb.FCMOptions(dac_load="exact"))
        codes = np.asarray(exact.codes(x)[0])[0]
        Ie = np.asarray(exact.tile_currents(codes))
        err = [np.abs(np.asarray(exact.with_options(dac_load="rowsum", load_factor=k).tile_currents(codes)) - Ie).max()
               / np.abs(Ie).max() for k in (1.0, fit.load_factor)]
        assert err[1] < 0.9 * err[0], err
