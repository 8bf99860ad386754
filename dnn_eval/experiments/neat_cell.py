"""NEAT's single cell: G_eff against the cell voltage for several V_G (ngspice), and the cut-off conductance.

    python -m dnn_eval.experiments.neat_cell --out reports

* ``neat_geff.csv`` / ``.png``: one 1T-1R cell (the shipped FreePDK45 BSIM4
  NMOS, W 100 nm, L 50 nm, gate at V_G, bulk at ground) in series with
  R_ON = 30 kOhm or R_OFF = 300 kOhm (NEAT's devices), the transistor at the
  sense side or at the row side, each point one ngspice ``.op`` of
  ``xbarlab.netlist_1t1r`` (ideal wires): G_eff = I / V_cell, relative to
  1/R, for V_cell in 0.05..0.5 V.
* ``neat_cutoff.csv`` / ``.png``: the cut-off conductance G_cut(V_G) at a
  2.5 % tolerance on G_eff over V_cell 0.05..0.2 V (the DAC's v_read), from
  the transistor table (``xbarlab.fcm.cells.cutoff_conductance``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..plotting import ax_or_new
from .common import parse, save

V_GATES = (0.75, 0.9, 1.1, 1.3)
R_DEVICES = (30e3, 300e3)


def geff_rows(v_gates=V_GATES, v_cells=np.linspace(0.05, 0.5, 10)) -> list[dict]:
    import xbarlab as xb
    from xbarlab.engines.ngspice import run_deck
    from xbarlab.netlist_1t1r import netlist_1t1r, verification_deck
    from xbarlab.transistor import AccessTransistor

    G = np.array([[1 / r for r in R_DEVICES]])
    rows = []
    for vg in v_gates:
        for side in ("sense", "row"):
            acc = AccessTransistor(v_gate_v=vg, side=side)
            for v in v_cells:
                vec = run_deck(verification_deck(netlist_1t1r(G, [float(v)], xb.CircuitParams(), acc)))
                for j, r in enumerate(R_DEVICES):
                    i = float(vec[f"i(vsense{j})"][0])
                    rows.append({"v_gate_v": vg, "side": side, "r_device_ohm": r, "v_cell_v": float(v),
                                 "i_cell_a": i, "g_eff_s": i / v, "g_eff_rel": i * r / v})
    return rows


def cutoff_rows(v_gates=V_GATES, tol: float = 0.025, v_read: float = 0.2) -> list[dict]:
    from xbarlab.fcm import cells
    from xbarlab.transistor import AccessTransistor

    rows = []
    for vg in v_gates:
        g = cells.cutoff_conductance(cells.transistor_table(AccessTransistor(v_gate_v=vg)), tol,
                                     np.linspace(0.05, v_read, 5))
        rows.append({"v_gate_v": vg, "tolerance": tol, "g_cut_s": g, "r_cut_ohm": 1 / g})
    return rows


def plot_geff(df: pd.DataFrame):
    """Colour: V_G; line: solid at the sense side, dashed at the row side; marker: o R_ON, s R_OFF."""
    ax = ax_or_new(None, (7, 4.5))
    vgs = sorted(df.v_gate_v.unique())
    colours = dict(zip(vgs, ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7")))
    for (vg, side, r), d in df.groupby(["v_gate_v", "side", "r_device_ohm"]):
        ax.plot(d.v_cell_v, d.g_eff_rel, ("-" if side == "sense" else "--") + ("o" if r < 1e5 else "s"),
                c=colours[vg], ms=3, label=f"V_G {vg:g} V, {side} side, R {r / 1e3:g} k")
    ax.set_xlabel("cell voltage (V)")
    ax.set_ylabel("G_eff x R_device")
    ax.set_title("1T-1R cell: effective conductance (ngspice, FreePDK45 NMOS)")
    ax.legend(fontsize=6, ncol=2)
    return ax


def plot_cutoff(df: pd.DataFrame):
    ax = ax_or_new(None)
    ax.plot(df.v_gate_v, df.r_cut_ohm / 1e3, "o-")
    ax.set_xlabel("V_G (V)")
    ax.set_ylabel("R_cut = 1/G_cut (kOhm)")
    ax.set_title("cut-off at 2.5 % tolerance on G_eff")
    return ax


def main(argv=None) -> int:
    args = parse(__doc__, argv)
    g = pd.DataFrame(geff_rows())
    save(g, plot_geff(g), args.out, "neat_geff")
    c = pd.DataFrame(cutoff_rows())
    save(c, plot_cutoff(c), args.out, "neat_cutoff")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
