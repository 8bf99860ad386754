"""Regenerate the 1T-1R reference deck in netlists/, its stored ngspice output and the transistor table.

    python netlists/regenerate_1t1r.py               # deck, outputs and table from the stored inputs
    python netlists/regenerate_1t1r.py --new-inputs  # first rewrite xbar_1t1r_8x8.inputs.npz (seeded)

As for ``regenerate.py``, the stored ``xbar_1t1r_8x8.inputs.npz`` is the
source of truth (G in S, V in volt, the wires in ohm, the access transistor's
W and L in meter, V_G in volt, its gate line and side by name; the card is
the shipped FreePDK45 NMOS_VTG). It writes:

* ``xbar_1t1r_8x8.cir``: ``xbarlab.netlist_1t1r.netlist_1t1r`` of the inputs;
* ``xbar_1t1r_8x8.out.csv``: ngspice's ``.op`` of that deck (output currents,
  row and column node voltages of every cell, ``%.17g``);
* ``xbar_1t1r_8x8.table.npz``: the access transistor's sweep
  (``TransistorTable.from_ngspice`` at its defaults): grids ``vds`` and ``vs``
  (V), currents ``i_d`` into the drain and ``i_s`` out of the source (A), so
  the Newton solver is checked against the stored output without ngspice.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import xbarlab as xb
from xbarlab.transistor import AccessTransistor

HERE = Path(__file__).resolve().parent
NAME = "xbar_1t1r_8x8"


def generated_inputs():
    """(G in S, V in volt, CircuitParams, AccessTransistor): R_ON 30 kOhm .. R_OFF 300 kOhm (NEAT), V <= 0.5 V."""
    rng = np.random.default_rng(18)
    G = rng.uniform(1 / 300e3, 1 / 30e3, (8, 8))
    V = rng.uniform(0.0, 0.5, 8)
    return G, V, xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0), AccessTransistor(v_gate_v=0.9)


def save_inputs(path: Path, G, V, c: xb.CircuitParams, acc: AccessTransistor) -> None:
    np.savez(path, G=np.asarray(G, dtype=float), V=np.asarray(V, dtype=float),
             **{k: np.asarray(v, dtype=float) for k, v in c.to_dict().items()},
             w_m=acc.w_m, l_m=acc.l_m, v_gate_v=acc.v_gate_v, gate_line=acc.gate_line.name, side=acc.side.name)


def load_inputs(folder: Path = HERE):
    """(G, V, CircuitParams, AccessTransistor) exactly as stored; never unpickles."""
    with np.load(Path(folder) / f"{NAME}.inputs.npz", allow_pickle=False) as d:
        c = xb.CircuitParams(r_row=float(d["r_row"]), r_col=float(d["r_col"]), r_sense=float(d["r_sense"]),
                             r_driver=float(d["r_driver"]))
        acc = AccessTransistor(w_m=float(d["w_m"]), l_m=float(d["l_m"]), v_gate_v=float(d["v_gate_v"]),
                               gate_line=str(d["gate_line"]), side=str(d["side"]))
        return d["G"].copy(), d["V"].copy(), c, acc


def load_table(acc: AccessTransistor, folder: Path = HERE):
    """The stored ``TransistorTable`` of ``acc`` (fitted again from the stored sweep); never unpickles. The
    sweep was made for the stored inputs' transistor: ``acc`` of another W, L, V_G or card raises ValueError
    (its side and gate line may differ, as ``TransistorTable`` allows)."""
    from xbarlab.engines.cell_table import HermiteGrid, TransistorTable, _sweep_key

    stored = load_inputs(folder)[3]
    with np.load(Path(folder) / f"{NAME}.table.npz", allow_pickle=False) as d:
        vds, vs = d["vds"].copy(), d["vs"].copy()
        k0 = int(np.flatnonzero(vds == 0.0)[0])
        return TransistorTable(acc, float(vs[0]), float(vs[-1]), float(vds[-1]),
                               HermiteGrid.fit(vds, vs, d["i_d"], k0), HermiteGrid.fit(vds, vs, d["i_s"], k0),
                               _sweep_key(stored))


def main(argv=None) -> None:
    import pandas as pd

    from xbarlab.engines.cell_table import TransistorTable
    from xbarlab.engines.ngspice import run_deck
    from xbarlab.netlist_1t1r import netlist_1t1r

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-inputs", action="store_true", help="rewrite the inputs from the seeded generator first")
    args = ap.parse_args(argv)
    path = HERE / f"{NAME}.inputs.npz"
    if args.new_inputs or not path.exists():
        save_inputs(path, *generated_inputs())
    G, V, c, acc = load_inputs()
    deck = netlist_1t1r(G, V, c, acc)
    (HERE / f"{NAME}.cir").write_text(deck)
    vec = run_deck(deck)
    from xbarlab.netlist import node_names
    from xbarlab.topology import build

    topo = build(*G.shape, c)
    nn = node_names(topo)
    m, n = G.shape

    def volt(node: str) -> float:
        return 0.0 if node == "0" else float(vec[f"v({node})"][0])

    rows = [dict(quantity="i_out", row=-1, col=j, value=float(vec[f"i(vsense{j})"][0])) for j in range(n)]
    rows += [dict(quantity="v_row", row=i, col=j, value=volt(nn[int(topo.index.a(i, j))]))
             for i in range(m) for j in range(n)]
    rows += [dict(quantity="v_col", row=i, col=j, value=volt(nn[int(topo.index.b(i, j))]))
             for i in range(m) for j in range(n)]
    pd.DataFrame(rows).to_csv(HERE / f"{NAME}.out.csv", index=False, float_format="%.17g")
    tab = TransistorTable.from_ngspice(acc)
    np.savez(HERE / f"{NAME}.table.npz", vds=tab.drain.x, vs=tab.drain.y, i_d=tab.drain.f, i_s=tab.source.f)
    print(f"wrote {NAME}: {m}x{n}, deck, ngspice outputs and the transistor table")


if __name__ == "__main__":
    main()
