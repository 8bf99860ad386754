"""Solve a crossbar with ngspice: one deck and one ``.op`` per input vector."""

from __future__ import annotations

import numpy as np

from ..netlist import backward_deck_text, deck_text, node_names
from ..params import CircuitParams
from ..topology import build, build_backward
from .ngspice import NgspiceSettings, run_deck
from .result import SolveResult
from ..errors import SpiceError


def solve(G: np.ndarray, V: np.ndarray, circuit: CircuitParams,
          settings: NgspiceSettings = NgspiceSettings(), read: str = "forward",
          write=None, cell_currents=None) -> SolveResult:
    """Solve validated G (M, N), V (M,) or (B, M) with ngspice.

    ``read="backward"``: V (N,) or (B, N) drives the columns and ``i_out`` (M,)
    holds the row currents, from the backward deck written directly
    (``netlist.backward_deck_text``).

    Non-linear cells (``engines.nonlinear.solve_ngspice``): ``write(G, v, circuit)`` writes the forward deck
    of one input vector in place of ``deck_text`` (same nodes and ammeters), and ``cell_currents(volt,
    v_row, v_col)`` gives ``i_cell`` (M, N) of that vector from ``volt(node name)`` and the cells' node
    voltages, in place of G (v_row - v_col).
    """
    m, n = G.shape
    backward = read == "backward"
    topo = (build_backward if backward else build)(m, n, circuit)
    write = write or (backward_deck_text if backward else deck_text)
    n_out = m if backward else n
    names = node_names(topo)
    idx = topo.index
    a_names = [names[int(k)] for k in idx.a(*np.indices((m, n))).ravel()]
    b_names = [names[int(k)] for k in idx.b(*np.indices((m, n))).ravel()]
    single = V.ndim == 1
    V2 = np.atleast_2d(V)
    v_row = np.empty((len(V2), m, n))
    v_col = np.empty((len(V2), m, n))
    i_out = np.empty((len(V2), n_out))
    i_cell = np.empty((len(V2), m, n))
    for k, v in enumerate(V2):
        vec = run_deck(write(G, v, circuit), settings)

        def volt(name: str) -> float:
            if name == "0":
                return 0.0
            key = f"v({name})"
            if key not in vec:
                raise SpiceError(f"ngspice output lacks {key}", log=", ".join(sorted(vec)[:50]))
            return float(vec[key][0])

        v_row[k] = np.array([volt(s) for s in a_names]).reshape(m, n)
        v_col[k] = np.array([volt(s) for s in b_names]).reshape(m, n)
        for j in range(n_out):
            key = f"i(vsense{j})"
            if key not in vec:
                raise SpiceError(f"ngspice output lacks {key}", log=", ".join(sorted(vec)[:50]))
            i_out[k, j] = float(vec[key][0])
        i_cell[k] = G * (v_row[k] - v_col[k]) if cell_currents is None else cell_currents(volt, v_row[k], v_col[k])
    if single:
        v_row, v_col, i_cell, i_out = v_row[0], v_col[0], i_cell[0], i_out[0]
    return SolveResult(v_row=v_row, v_col=v_col, i_cell=i_cell, i_out=i_out, engine="ngspice")
