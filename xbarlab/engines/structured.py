"""Fast, exact G_non-ideal for crossbars whose row and column wires are non-zero.

Block elimination that exploits the crossbar's structure (it is exact up to
rounding, not an approximation):

1. Each row's node chain a(i, :) is tridiagonal; eliminating it (a batched
   Thomas solve) leaves, for the column nodes b(i, :), a dense N x N Schur
   complement S_i = D_i - D_i K_i^-1 D_i and an injection w_i V_i from the
   row's source, where D_i = diag(G[i, :]) and K_i is the row's nodal matrix.
2. The column nodes form a block-tridiagonal system over the rows, coupled by
   the column wire conductance. A forward block elimination down to the last
   row gives the bottom node voltages, and so the sense currents, for a unit
   voltage on every source at once; no back substitution is needed.

Cost is O(M N^3) flops and O(T M N^2) memory for T tiles, all in batched
BLAS/LAPACK calls. ``g_nonideal_stack`` evaluates many tiles at once.
"""

from __future__ import annotations

import numpy as np

from ..params import CircuitParams


def applicable(circuit: CircuitParams) -> bool:
    """The block elimination needs finite row and column wire conductance."""
    return circuit.r_row > 0 and circuit.r_col > 0


def _row_elimination(G: np.ndarray, g_row: float, g_src: np.ndarray):
    """Batched Thomas solve of K_i X = [D_i | e_0] for every tile and row.

    G: (T, M, N). Returns S (T, M, N, N) and w (T, M, N).

    The pivots are carried as ``g_row + e_j`` with the excess ``e_j`` updated
    directly (e_j = G_j + g_row e_(j-1) / pivot_(j-1)), which avoids the
    cancellation of the textbook recurrence when the wire conductance is
    many orders above the cells and the source; every step then adds
    non-negative terms, so the result is non-negative as the physics says.
    """
    T, M, N = G.shape
    rhs = np.zeros((T, M, N, N + 1))
    jj = np.arange(N)
    rhs[:, :, jj, jj] = G
    rhs[:, :, 0, N] = 1.0
    piv = np.empty((T, M, N))
    e = G[..., 0] + g_src[None, :]
    piv[..., 0] = e + g_row if N > 1 else e
    rhs[:, :, 0, :] /= piv[..., 0, None]
    for j in range(1, N):
        e = G[..., j] + g_row * e / piv[..., j - 1]
        piv[..., j] = e + g_row if j < N - 1 else e
        rhs[:, :, j, :] = (rhs[:, :, j, :] + g_row * rhs[:, :, j - 1, :]) / piv[..., j, None]
    for j in range(N - 2, -1, -1):
        rhs[:, :, j, :] += (g_row / piv[..., j, None]) * rhs[:, :, j + 1, :]
    X = rhs  # K^-1 [D | e0]
    S = -G[..., :, None] * X[..., :N]
    S[:, :, jj, jj] += G
    w = g_src[None, :, None] * G * X[..., N]
    return S, w


def g_nonideal_stack(G: np.ndarray, circuit: CircuitParams) -> np.ndarray:
    """G_non-ideal (S) for a validated stack G of shape (T, M, N).

    The column elimination keeps the Schur complement as ``g_col I + F_i``
    and updates the excess F_i = S_i + g_col Delta_(i-1)^-1 F_(i-1) directly,
    for the same reason as the row elimination.
    """
    if not applicable(circuit):
        raise ValueError("structured engine needs r_row > 0 and r_col > 0")
    T, M, N = G.shape
    g_row = 1.0 / circuit.r_row
    g_col = 1.0 / circuit.r_col
    g_src = 1.0 / (circuit.r_driver_rows(M) + circuit.r_row)
    g_end = 1.0 / (circuit.r_col + circuit.r_sense)
    S, w = _row_elimination(G, g_row, g_src)
    eye = np.eye(N)
    F = S[:, 0]
    Y = np.zeros((T, N, M))
    Y[:, :, 0] = w[:, 0]
    for i in range(1, M):
        delta = F + g_col * eye
        sol = np.linalg.solve(delta, np.concatenate([F, Y[:, :, :i]], axis=2))
        F = S[:, i] + g_col * sol[:, :, :N]
        Y[:, :, :i] = g_col * sol[:, :, N:]
        Y[:, :, i] = w[:, i]
    b_last = np.linalg.solve(F + g_end * eye, Y)  # bottom node voltages per unit source
    return np.swapaxes(g_end * b_last, 1, 2)
