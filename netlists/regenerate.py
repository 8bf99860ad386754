"""Regenerate the reference decks in netlists/ and their stored ngspice outputs.

    python netlists/regenerate.py               # decks and outputs from the stored *.inputs.npz
    python netlists/regenerate.py --new-inputs  # first rewrite *.inputs.npz from the seeded generators
    python netlists/regenerate.py --dac         # only the divider-DAC decks (dac_divider_*)
    python netlists/regenerate.py --backward    # only the backward-read decks (*_backward)

The stored ``*.inputs.npz`` are the source of truth: every deck (``*.cir``)
and every stored ngspice output (``*.out.csv``) is built from the inputs as
read back from the ``.npz``, never from the generators directly. The
generators draw G with ``10 ** rng.uniform(...)``, whose last bit differs
between CPUs (numpy's SIMD ``power`` rounds differently on AVX2 and
AVX-512), so rebuilding G on another machine can change a deck in its 15th
digit. A case whose ``.npz`` is missing gets one written first.

The golden test (tests/core/test_netlist_golden.py) loads the same ``.npz``
(``stored_cases``), checks that xbarlab.netlist() still writes these decks
byte for byte, and that the exact solver reproduces the stored ngspice outputs.

The backward-read cases (``BACKWARD_NAMES``, ``*_backward``) store V with one
value per column; their decks are ``xbarlab.netlist(G, V, c, read="backward")``
and their outputs ngspice's row currents (``i_out`` per row).

The divider-DAC cases (``dac_divider_*``) store bits, v_read, R_PD, code and
load in their ``.npz``; their decks come from
``xbarlab.netlist.dac_divider_netlist`` built from those stored inputs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import xbarlab as xb

HERE = Path(__file__).resolve().parent
NAMES = ("xbar_3x2", "xbar_8x8", "xbar_16x16_zero_wires", "xbar_64x64")


def generated_cases():
    """name -> (G in S, V in volt, CircuitParams), drawn from the seeded generators.

    Only for writing new ``.inputs.npz``: the last bit of G depends on the CPU.
    """
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
    assert tuple(out) == NAMES
    return out


BACKWARD_NAMES = ("xbar_3x2_backward", "xbar_8x8_backward", "xbar_5x3_zero_wires_backward")


def generated_backward_cases():
    """name -> (G in S, V in volt with one value per column, CircuitParams) of the backward-read decks.

    Only for writing new ``.inputs.npz``: the last bit of G depends on the CPU.
    """
    out = {}
    out["xbar_3x2_backward"] = (np.full((3, 2), 1.0 / 20e3), np.array([0.2, 0.01]),
                                xb.CircuitParams(r_row=5.0, r_col=5.0, r_sense=1e3, r_driver=100.0))
    rng = np.random.default_rng(88)
    out["xbar_8x8_backward"] = (10 ** rng.uniform(-6, -4, (8, 8)), rng.uniform(0, 0.25, 8),
                                xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0))
    rng = np.random.default_rng(53)
    out["xbar_5x3_zero_wires_backward"] = (10 ** rng.uniform(-6, -4, (5, 3)), rng.uniform(0, 0.25, 3),
                                           xb.CircuitParams(r_row=2.5, r_col=0.0, r_sense=0.0, r_driver=50.0))
    assert tuple(out) == BACKWARD_NAMES
    return out


def inputs_path(name: str, folder: Path = HERE) -> Path:
    return Path(folder) / f"{name}.inputs.npz"


def save_inputs(path: Path, G, V, c: xb.CircuitParams) -> None:
    """Write G (S), V (volt) and the resistances of ``c`` (ohm) to ``path``."""
    np.savez(path, G=np.asarray(G, dtype=float), V=np.asarray(V, dtype=float),
             **{k: np.asarray(v, dtype=float) for k, v in c.to_dict().items()})


def load_inputs(path: Path):
    """(G in S, V in volt, CircuitParams) exactly as stored in ``path``; never unpickles."""
    with np.load(path, allow_pickle=False) as d:
        G, V = d["G"].copy(), d["V"].copy()
        rd = d["r_driver"]
        c = xb.CircuitParams(r_row=float(d["r_row"]), r_col=float(d["r_col"]), r_sense=float(d["r_sense"]),
                             r_driver=float(rd) if rd.ndim == 0 else tuple(float(x) for x in rd))
    return G, V, c


def stored_cases(folder: Path = HERE):
    """name -> (G, V, CircuitParams) read from the stored ``*.inputs.npz``."""
    return {name: load_inputs(inputs_path(name, folder)) for name in NAMES}


def stored_backward_cases(folder: Path = HERE):
    """name -> (G, V per column, CircuitParams) of the backward-read decks, from their stored ``*.inputs.npz``."""
    return {name: load_inputs(inputs_path(name, folder)) for name in BACKWARD_NAMES}


def _write_outputs(path: Path, res, G) -> None:
    """ngspice's output currents and every cell's row and column node voltage, at full precision."""
    import pandas as pd

    m, n = G.shape
    rows = [dict(quantity="i_out", row=-1, col=j, value=res.i_out[j]) for j in range(len(res.i_out))]
    rows += [dict(quantity="v_row", row=i, col=j, value=res.v_row[i, j]) for i in range(m) for j in range(n)]
    rows += [dict(quantity="v_col", row=i, col=j, value=res.v_col[i, j]) for i in range(m) for j in range(n)]
    pd.DataFrame(rows).to_csv(path, index=False, float_format="%.17g")


def write_backward_cases(new_inputs: bool = False) -> None:
    """The backward-read decks and their ngspice outputs (``i_out`` holds one current per row, in ``col``)."""
    for name, (G, V, c) in generated_backward_cases().items():
        if new_inputs or not inputs_path(name).exists():
            save_inputs(inputs_path(name), G, V, c)
    for name, (G, V, c) in stored_backward_cases().items():
        (HERE / f"{name}.cir").write_text(xb.netlist(G, V, c, read="backward"))
        _write_outputs(HERE / f"{name}.out.csv", xb.solve(G, V, c, engine="ngspice", read="backward"), G)
        print(f"wrote {name}: {G.shape[0]}x{G.shape[1]}, backward read")


def dac_cases():
    """name -> (bits, v_read in V, r_pd in ohm, code, r_load in ohm): the rxnn-spintronic DAC under the
    heavier Fig. 3(a) load at the lowest code (largest sag), mid code and full code (output tied to v_read)."""
    return {f"dac_divider_code{code}": (6, 0.2, 20.0, code, 3.2e3) for code in (1, 32, 63)}


def dac_deck(name: str) -> tuple[str, "xb.DACParams", int, float]:
    """(deck text, DAC, code, r_load ohm) of a stored divider-DAC case, built from its stored inputs."""
    from xbarlab.netlist import dac_divider_netlist

    d = np.load(inputs_path(name), allow_pickle=False)
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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-inputs", action="store_true",
                    help="rewrite every *.inputs.npz from the seeded generators first (changes the decks' last digits "
                         "on another CPU)")
    ap.add_argument("--dac", action="store_true", help="only the divider-DAC decks (dac_divider_*)")
    ap.add_argument("--backward", action="store_true", help="only the backward-read decks (*_backward)")
    args = ap.parse_args(argv)
    if args.backward:
        write_backward_cases(args.new_inputs)
        return
    write_dac_cases()
    if args.dac:
        return
    for name, (G, V, c) in generated_cases().items():
        if args.new_inputs or not inputs_path(name).exists():
            save_inputs(inputs_path(name), G, V, c)
    for name, (G, V, c) in stored_cases().items():
        (HERE / f"{name}.cir").write_text(xb.netlist(G, V, c))
        _write_outputs(HERE / f"{name}.out.csv", xb.solve(G, V, c, engine="ngspice"), G)
        print(f"wrote {name}: {G.shape[0]}x{G.shape[1]}")
    write_backward_cases(args.new_inputs)


if __name__ == "__main__":
    main()
