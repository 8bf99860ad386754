"""Regenerate the reference decks in netlists/ and their stored ngspice outputs.

    python netlists/regenerate.py            # writes *.cir and *.out.csv here

Each case is fixed and seeded; the golden test (tests/test_netlist_golden.py)
checks that xbarlab.netlist() still writes these decks byte for byte, and that
the exact solver reproduces the stored ngspice outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import xbarlab as xb

HERE = Path(__file__).resolve().parent


def cases():
    """name -> (G in S, V in volt, CircuitParams)."""
    out = {}
    out["xbar_3x2"] = (np.full((3, 2), 1.0 / 20e3), np.array([0.2, 0.01, 0.2]),
                       xb.CircuitParams(r_row=5.0, r_col=5.0, r_sense=1e3, r_driver=100.0))
    rng = np.random.default_rng(8)
    out["xbar_8x8"] = (10 ** rng.uniform(-6, -4, (8, 8)), rng.uniform(0, 0.25, 8),
                       xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0))
    rng = np.random.default_rng(16)
    out["xbar_16x16_zero_wires"] = (10 ** rng.uniform(-6, -4, (16, 16)), rng.uniform(0, 0.25, 16),
                                    xb.CircuitParams(r_row=0.0, r_col=2.5, r_sense=0.0, r_driver=50.0))
    rng = np.random.default_rng(64)
    out["xbar_64x64"] = (10 ** rng.uniform(-6, -4, (64, 64)), rng.uniform(0, 0.25, 64),
                         xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0))
    return out


def inputs_path(name: str) -> Path:
    return HERE / f"{name}.inputs.npz"


def main() -> None:
    import pandas as pd

    for name, (G, V, c) in cases().items():
        (HERE / f"{name}.cir").write_text(xb.netlist(G, V, c))
        np.savez(inputs_path(name), G=G, V=V, **{k: np.asarray(v, dtype=float) for k, v in c.to_dict().items()})
        res = xb.solve(G, V, c, engine="ngspice")
        m, n = G.shape
        rows = [dict(quantity="i_out", row=-1, col=j, value=res.i_out[j]) for j in range(n)]
        rows += [dict(quantity="v_row", row=i, col=j, value=res.v_row[i, j]) for i in range(m) for j in range(n)]
        rows += [dict(quantity="v_col", row=i, col=j, value=res.v_col[i, j]) for i in range(m) for j in range(n)]
        pd.DataFrame(rows).to_csv(HERE / f"{name}.out.csv", index=False, float_format="%.17g")
        print(f"wrote {name}: {m}x{n}")


if __name__ == "__main__":
    main()
