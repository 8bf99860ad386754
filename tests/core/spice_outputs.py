"""Reading a whole crossbar's answer from an xbarlab deck run in ngspice (shared by the tests in tests/core)."""

from __future__ import annotations

import numpy as np

from xbarlab.engines.ngspice import run_deck
from xbarlab.netlist import node_names
from xbarlab.topology import build


def ngspice_outputs(deck: str, G, c):
    """Output currents (N,) and the row and column node voltages (M, N) of an xbarlab deck run in ngspice."""
    vec = run_deck(deck)
    m, n = G.shape
    topo = build(m, n, c)
    names = node_names(topo)

    def volt(k):
        return 0.0 if names[int(k)] == "0" else float(vec[f"v({names[int(k)]})"][0])

    ii, jj = np.indices((m, n))
    v_row = np.vectorize(volt)(topo.index.a(ii, jj))
    v_col = np.vectorize(volt)(topo.index.b(ii, jj))
    return np.array([vec[f"i(vsense{j})"][0] for j in range(n)]), v_row, v_col
