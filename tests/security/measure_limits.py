"""Measure where each engine stops resolving a crossbar to 1e-9 relative (derives the limits
in ``xbarlab/conditioning.py``). Not a test; run by hand (about 2 minutes, ngspice needed):

    PYTHONPATH=. python tests/security/measure_limits.py [--samples 600] [--seed 0]

Random crossbars (1..6 x 1..6) whose cells and wires (each resistance 0 with probability 0.2)
have log-uniform conductances within a random window of D decades (D in [0, 24]) around a
random centre; every engine runs with the spread check switched off and is compared with the
60-digit ``mp_solve``. Prints, per decade of conductance spread, the largest error of each
engine (max |I - I_ref| / max |I_ref|), then the same for ngspice on a nominal circuit scaled
as a whole by 10^k (its absolute limits).

Crossbars this small understate how the fast block elimination's error grows with the array's
length where cells dominate wires: its limit (``STRUCTURED_CELLS_OVER_WIRES`` = 1e4) comes from
longer arrays, ``tests/core/test_structured_limit.py`` (1.3e-8 off at 1000 x 40 at the 1e7 these
small arrays allowed).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import xbarlab as xb  # noqa: E402
from xbarlab import conditioning as cond  # noqa: E402
from mp_reference import mp_solve  # noqa: E402


def rel(a, b) -> float:
    s = np.abs(b).max()
    if not np.all(np.isfinite(a)):
        return math.inf
    return float(np.abs(a - b).max() / s) if s > 0 else float(np.abs(a - b).max())


def run(fn) -> float:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001  a failure counts as a wrong answer here
        return -1.0 if isinstance(exc, xb.SpiceError) else math.inf


def sample(rng, centre_range=(-20.0, 20.0)):
    m, n = rng.integers(1, 7, size=2)
    D = rng.uniform(0, 24)
    c = rng.uniform(*centre_range)
    lg = lambda size=None: c + rng.uniform(-D / 2, D / 2, size)  # noqa: E731
    G = 10.0 ** lg((m, n))
    G[rng.random((m, n)) < 0.1] = 0.0
    res = [0.0 if rng.random() < 0.2 else 10.0 ** -lg() for _ in range(4)]
    circuit = xb.CircuitParams(*res)
    V = rng.uniform(-1, 1, size=(2, m))
    return G, V, circuit


def engines(G, V, circuit, with_spice: bool) -> dict:
    ref = mp_solve(G, V, circuit)["i_out"]
    out = {
        "exact": run(lambda: rel(xb.simulate(G, V, circuit), ref)),
        "g_nonideal": run(lambda: rel(V @ xb.g_nonideal(G, circuit), ref)),
    }
    if with_spice:
        out["ngspice"] = run(lambda: rel(xb.simulate(G, V, circuit, engine="ngspice"), ref))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cond.SPREAD_LIMIT = cond.NGSPICE_SPREAD_LIMIT = cond.STRUCTURED_CELLS_OVER_WIRES = math.inf
    cond.NGSPICE_G_MIN, cond.NGSPICE_G_MAX, cond.NGSPICE_V_MIN, cond.NGSPICE_V_MAX = 0.0, math.inf, 0.0, math.inf
    rng = np.random.default_rng(args.seed)
    rows = []
    for _ in range(args.samples):
        G, V, c = sample(rng)
        lo, hi = cond.conductance_range(G, c)
        spread = hi / lo if hi > 0 else 1.0
        spice_ok = spread < 1e18 and 1e-30 < lo and hi < 1e30
        # ngspice is measured at realistic absolute values: rescale to a largest conductance of 1 S
        if spice_ok:
            s = 1.0 / hi
            G, c = G * s, cond.scaled_circuit(c, s)
        rows.append((math.log10(spread), engines(G, V, c, spice_ok)))
    names = ["exact", "g_nonideal", "ngspice"]
    print("spread decade | largest error per engine (-1 = ngspice failed loudly, inf = exception)")
    for dec in range(0, 26):
        errs = {k: [r[k] for s, r in rows if dec <= s < dec + 1 and k in r] for k in names}
        if any(errs.values()):
            cells = [f"{k}={max(v):.2g} (n={len(v)})" if v else f"{k}=-" for k, v in errs.items()]
            print(f"1e{dec:<3d}        | " + "  ".join(cells))
    for k in names:
        bad = [s for s, r in rows if r.get(k, 0) > 1e-9]
        print(f"{k}: smallest spread with error > 1e-9: " + (f"1e{min(bad):.2f}" if bad else "none"))
    print("\nngspice, nominal 4x4 (G 1e-5..1e-4 S, 1 ohm wires, 100 ohm sense/driver) scaled by 10^k:")
    G0 = 10 ** rng.uniform(-5, -4, (4, 4))
    c0 = xb.CircuitParams(1.0, 1.0, 100.0, 100.0)
    V0 = rng.uniform(-1, 1, (2, 4))
    for k in range(-16, 17, 2):
        s = 10.0 ** k
        G, c = G0 * s, cond.scaled_circuit(c0, s)
        ref = mp_solve(G, V0, c)["i_out"]
        e = run(lambda: rel(xb.simulate(G, V0, c, engine="ngspice"), ref))
        lo, hi = cond.conductance_range(G, c)
        print(f"  conductances {lo:.1e}..{hi:.1e} S: error {e:.2g}")
    print("\nngspice, the same circuit at 1 S with V scaled by 10^k:")
    for k in range(-12, 13, 3):
        V = V0 * 10.0 ** k
        ref = mp_solve(G0, V, c0)["i_out"]
        e = run(lambda: rel(xb.simulate(G0, V, c0, engine="ngspice"), ref))
        print(f"  |V| <= {10.0 ** k:.0e} V: error {e:.2g}")


if __name__ == "__main__":
    main()
