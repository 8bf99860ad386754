"""Row-port matrices of a crossbar: how much current each row source delivers.

For a linear crossbar with its row sources as ports (source nodes ``src{i}``,
behind the driver resistance), the current drawn from the sources is
``I_src = V_src @ Y`` with Y the M x M row-port admittance matrix (S),
symmetric by reciprocity. Together with ``G_non-ideal`` (the output transfer
matrix, ``I_out = V_src @ Gn``) it describes the crossbar completely as seen
from its ports, so a source with series resistance R_th (a DAC in Thevenin
form) can be solved exactly:

    V_src = solve(I + diag(R_th) Y, V_th),    I_out = V_src @ Gn.

Y is computed exactly by superposition, one unit source at a time: the
current into row i is the sum of its cell currents (the row is a chain fed
only by its driver).
"""

from __future__ import annotations

import numpy as np

from ..arrays import check_conductance_stack
from ..params import CircuitParams
from . import exact


def row_port_admittance(G: np.ndarray, circuit: CircuitParams) -> np.ndarray:
    """Y (S), shape (M, M), of a validated G (M, N): I_src = V_src @ Y."""
    m = G.shape[0]
    res = exact.solve(G, np.eye(m), circuit)
    Y = res.i_cell.sum(axis=-1)  # (source k, row i)
    return 0.5 * (Y + Y.T)  # symmetric by reciprocity; removes rounding asymmetry


def row_port_admittance_stack(G, circuit: CircuitParams) -> np.ndarray:
    """Y for a stack G (T, M, N) -> (T, M, M)."""
    G = check_conductance_stack(G)
    circuit.r_driver_rows(G.shape[1])
    return np.stack([row_port_admittance(g, circuit) for g in G])
