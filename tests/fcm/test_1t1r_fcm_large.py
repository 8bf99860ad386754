"""The 1T-1R FCM on paper-size tiles (slow): FCM.matmul's column currents against the Newton solver over V_G
and the device range, in the paper's per-column metric (% of the ADC full scale).

One 32 x 32 tile pair (a 32 x 32 layer, differential), the preset's wires and DAC, the ROWSUM (kappa 1) and
EXACT loads, 4 input vectors, the transistor at the sense side; devices over NEAT's [1/300k, 1/30k] S or a
narrower [1/300k, 1/100k] S. Stated bound ``PCT_FS`` = 0.5 % FS; measured (2026-12-01, printed): at most
0.057 % (V_G 0.75 V, R_ON 30 k), 0.050 % (1.3 V, 30 k), 0.0070 % (0.75 V, 100 k), 0.091 % (1.3 V, 100 k),
EXACT and ROWSUM alike; 39 s in all.
"""

from __future__ import annotations

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
from test_1t1r_fcm import spec_1t1r  # noqa: E402

PCT_FS = 0.5


@pytest.mark.slow
@pytest.mark.ngspice
@pytest.mark.parametrize("vg", [0.75, 1.3])
@pytest.mark.parametrize("r_on", [30e3, 100e3])
def test_1t1r_fcm_32x32_against_newton(ngspice, vg, r_on):
    import dataclasses

    access = AccessTransistor(v_gate_v=vg)
    base = spec_1t1r(access, 32)
    spec = base.replace(device=dataclasses.replace(base.device, g_max=1 / r_on))
    rng = np.random.default_rng(int(vg * 100) + int(r_on))
    W = rng.standard_normal((32, 32))
    x = rng.random((4, 32))
    table = cells.transistor_table(access)
    for load in ("exact", "rowsum"):
        fcm = xb.FCM.from_weights(W, spec, rng, xb.FCMOptions(dac_load=load))
        codes, _ = ref.dac_codes(fcm, x)
        I = np.stack([np.moveaxis(fcm.tile_currents(codes[p]), 3, 0) for p in range(codes.shape[0])])
        rn = onet1r.evaluate(fcm, x, "newton", table)
        fs = fcm.adc_full_scale_a[None, None, ..., None]
        pct = float(100 * (np.abs(I - rn["I"]) / fs).max())
        print(f"1T-1R FCM 32x32 V_G {vg:g} V R_ON {r_on / 1e3:g} k {load}: {pct:.3g} % FS (bound {PCT_FS:g})")
        assert pct <= PCT_FS
