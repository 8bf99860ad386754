"""Reference evaluations of 1T-1R FCMs: every tile at the model's DAC codes solved by the Newton solver or by
ngspice on the whole circuit (DAC in Thevenin form per row, driver, wires, 1T-1R cells, sense), then the
FCM's own ADC and accumulation (``xbarlab.verify.reference``). Shared by tests/fcm/test_1t1r_fcm*.py."""

from __future__ import annotations

import numpy as np

from xbarlab.engines.ngspice import run_deck
from xbarlab.engines.nonlinear import solve
from xbarlab.netlist_1t1r import netlist_1t1r, verification_deck
from xbarlab.verify import reference as ref
from xbarlab.verify.spice_reference import thevenin_circuit


def tile_currents(fcm, tc: np.ndarray, engine: str, table=None) -> np.ndarray:
    """Column currents (A) (P, B, S, Tk, Tn, Nc) of every tile for tile codes tc (P, B, Tk, M)."""
    S, Tk, Tn, M, Nc = fcm.G.shape
    P, B = tc.shape[:2]
    spec = fcm.spec
    I = np.zeros((P, B, S, Tk, Tn, Nc))
    for p in range(P):
        for b in range(B):
            for k in range(Tk):
                if not np.any(tc[p, b, k] > 0):
                    continue
                circ, v_th = thevenin_circuit(spec, tc[p, b, k])
                for s in range(S):
                    for t in range(Tn):
                        G = fcm.G[s, k, t]
                        if engine == "newton":
                            I[p, b, s, k, t] = solve(G, v_th, circ, table).i_out
                        else:
                            vec = run_deck(verification_deck(netlist_1t1r(G, v_th, circ, spec.device.access)))
                            I[p, b, s, k, t] = [float(vec[f"i(vsense{j})"][0]) for j in range(Nc)]
    return I


def evaluate(fcm, x, engine: str, table=None) -> dict:
    """``reference.evaluate`` with the tile currents of ``engine`` ("newton" or "ngspice")."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    codes, scale = ref.dac_codes(fcm, x)
    tc = ref.tile_codes(fcm, codes)
    I = tile_currents(fcm, tc, engine, table)
    D = ref.adc(fcm, I)
    return {"codes": codes, "I": I, "D": D, "y": ref.accumulate(fcm, D, codes, scale)}
