"""Regenerate the reference decks in netlists/ and their stored ngspice outputs.

    python netlists/regenerate.py            # writes *.cir and *.out.csv here
    python netlists/regenerate.py --dac      # only the divider-DAC decks (dac_divider_*)

Each case is fixed and seeded; the golden test (tests/test_netlist_golden.py)
checks that xbarlab.netlist() (and xbarlab.netlist.dac_divider_netlist) still
writes these decks byte for byte, and that the exact solver (the DAC's
closed form) reproduces the stored ngspice outputs.
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


def dac_cases():
    """name -> (bits, v_read in V, r_pd in ohm, code, r_load in ohm): the rxnn-spintronic DAC under the
    heavier Fig. 3(a) load at the lowest code (largest sag), mid code and full code (output tied to v_read)."""
    return {f"dac_divider_code{code}": (6, 0.2, 20.0, code, 3.2e3) for code in (1, 32, 63)}


def inputs_path(name: str) -> Path:
    return HERE / f"{name}.inputs.npz"


def dac_deck(name: str) -> tuple[str, "xb.DACParams", int, float]:
    """(deck text, DAC, code, r_load ohm) of a stored divider-DAC case, built from its stored inputs."""
    from xbarlab.netlist import dac_divider_netlist

    d = np.load(inputs_path(name))
    dac = xb.DACParams(bits=int(d["bits"]), v_read=float(d["v_read"]), r_pd=float(d["r_pd"]))
    code, r_load = int(d["code"]), float(d["r_load"])
    return dac_divider_netlist(dac, code, r_load), dac, code, r_load


def write_dac_cases() -> None:
    import pandas as pd

    from xbarlab.engines.ngspice import run_deck

    for name, (bits, v_read, r_pd, code, r_load) in dac_cases().items():
        np.savez(inputs_path(name), bits=bits, v_read=v_read, r_pd=r_pd, code=code, r_load=r_load)
        text, *_ = dac_deck(name)
        (HERE / f"{name}.cir").write_text(text)
        v_out = float(run_deck(text)["v(out)"][0])
        pd.DataFrame([dict(quantity="v_out", value=v_out)]).to_csv(HERE / f"{name}.out.csv", index=False,
                                                                  float_format="%.17g")
        print(f"wrote {name}: code {code}, v(out) = {v_out!r} V")


def main(argv=None) -> None:
    import sys

    import pandas as pd

    argv = sys.argv[1:] if argv is None else argv
    write_dac_cases()
    if "--dac" in argv:
        return
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
