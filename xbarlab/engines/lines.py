"""The structured G_non-ideal for long, narrow crossbars, as one compiled loop (numba).

``structured._sweep`` eliminates a crossbar row by row with a dense N x N
Schur complement per row. For a narrow array (N small, M large: a wide array
after ``structured._eliminate`` turns it) each row is little work, and the
per-row cost is Python and numpy overhead; the injections of the M sources
carried down the rows also cost O(M^2 N^2). This kernel runs the same
elimination in one compiled loop and gets every row of G_non-ideal by a
backward pass instead (O(M N^3) in all):

* forward, row by row: F_i = S_i + g_col (F_(i-1) + g_col I)^-1 F_(i-1)
  (the excess form of ``structured._sweep``), keeping the Cholesky factor of
  each F_(i-1) + g_col I (M N^2 numbers);
* backward: R_(M-1) = (F_(M-1) + diag(g_end))^-1 diag(g_end) and
  R_(i-1) = g_col (F_(i-1) + g_col I)^-1 R_i; row i of G_non-ideal is
  R_i^T w_i, with w_i the injection of row i's unit source.

Both products are the same matrices as in ``structured._sweep`` multiplied in
another order. Compiled on first use and cached on disk by numba; without
numba (or if a factorization fails) the caller uses ``structured._sweep``.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a dependency
    njit = None

MAX_WIDTH = 32  # columns up to which the compiled loop beats the batched BLAS sweep


def _jit(f):
    return njit(cache=True, nogil=True)(f) if njit is not None else f


@_jit
def _chol_solve(L, B, out):
    """out = (L L^T)^-1 B for lower-triangular L (N, N) and B (N, R)."""
    N, R = B.shape
    for r in range(R):
        for j in range(N):  # L y = b
            s = B[j, r]
            for k in range(j):
                s -= L[j, k] * out[k, r]
            out[j, r] = s / L[j, j]
        for j in range(N - 1, -1, -1):  # L^T x = y
            s = out[j, r]
            for k in range(j + 1, N):
                s -= L[k, j] * out[k, r]
            out[j, r] = s / L[j, j]


@_jit
def _schur_row(Gi, ci, di, S, w, g_src_i):
    """Row i's Schur complement S = D - D K^-1 D on its column nodes and its source injection w,
    from the Thomas pivots of ``structured._row_pivots`` (same operations as ``structured._schur``)."""
    N = Gi.shape[0]
    U = np.zeros((N, N))
    for j in range(N):
        U[j, j] = di[j]
    for j in range(N - 2, -1, -1):
        for k in range(j + 1, N):
            U[j, k] = ci[j] * U[j + 1, k]
    for j in range(N):
        for k in range(N):
            kinv = U[j, k] if k >= j else U[k, j]
            if j == k:
                kinv = kinv + kinv - di[j]
            S[j, k] = (kinv * -Gi[j]) * Gi[k]
        S[j, j] += Gi[j]
        w[j] = g_src_i * Gi[j] * U[0, j]


@_jit
def _sweep_tiles(G, c, diag, g_row, g_col, g_src, g_end, out):
    T, M, N = G.shape
    eye = np.eye(N)
    for t in range(T):
        Ls = np.empty((max(M - 1, 1), N, N))
        w = np.empty((M, N))
        F = np.empty((N, N))
        S = np.empty((N, N))
        sol = np.empty((N, N))
        for i in range(M):
            _schur_row(G[t, i], c[t, i], diag[t, i], S, w[i], g_src[i])
            if i == 0:
                F[:, :] = S
            else:
                L = np.linalg.cholesky(F + g_col * eye)
                Ls[i - 1] = L
                _chol_solve(L, F, sol)
                F[:, :] = S + g_col * sol
        L = np.linalg.cholesky(F + np.diag(g_end))
        R = np.empty((N, N))
        _chol_solve(L, np.diag(g_end), R)
        for i in range(M - 1, -1, -1):
            for k in range(N):
                s = 0.0
                for j in range(N):
                    s += R[j, k] * w[i, j]
                out[t, i, k] = s
            if i > 0:
                _chol_solve(Ls[i - 1], R, sol)
                R[:, :] = g_col * sol


def sweep(G, c, diag, g_row: float, g_col: float, g_src, g_end):
    """G_non-ideal (T, M, N) of a narrow stack from its row pivots, or None where the compiled
    loop is not available or a matrix is not positive definite to working precision."""
    if njit is None:
        return None
    out = np.empty(G.shape)
    try:
        _sweep_tiles(np.ascontiguousarray(G), np.ascontiguousarray(c), np.ascontiguousarray(diag),
               float(g_row), float(g_col), np.ascontiguousarray(g_src, dtype=float),
               np.ascontiguousarray(g_end, dtype=float), out)
    except np.linalg.LinAlgError:
        return None
    return out
