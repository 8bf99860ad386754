"""Fast, exact G_non-ideal for crossbars whose row and column wires are non-zero.

Block elimination that exploits the crossbar's structure (it is exact up to
rounding, not an approximation):

1. Each row's node chain a(i, :) is tridiagonal; eliminating it (its
   inverse is built from the Thomas pivots, see ``_row_factors``) leaves, for
   the column nodes b(i, :), a dense N x N Schur complement
   S_i = D_i - D_i K_i^-1 D_i and an injection w_i V_i from the row's source,
   where D_i = diag(G[i, :]) and K_i is the row's nodal matrix.
2. The column nodes form a block-tridiagonal system over the rows, coupled by
   the column wire conductance. A forward block elimination down to the last
   row gives the bottom node voltages, and so the sense currents, for a unit
   voltage on every source at once; no back substitution is needed.

Every matrix solved (F + g I, with F a Schur complement of a conductance
matrix) is symmetric positive definite, so the solves use Cholesky.
Cost is O(M N^3) flops and O(T M N^2) memory for T tiles, in batched BLAS
calls and per-tile LAPACK calls. ``g_nonideal_stack`` evaluates many tiles at once.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from ..blas import one_blas_thread
from ..params import CircuitParams


def _spd_solve(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """X = A^-1 B for a stack of symmetric positive definite A (T, N, N) and B (T, N, R).

    Cholesky (LAPACK potrf/potrs, about half the work of LU) per matrix; a
    matrix whose factorization fails (not positive definite to working
    precision) falls back to LU. Only the upper triangle of A is read, so a
    matrix that is symmetric up to rounding is taken as its upper half.
    """
    X = np.empty(B.shape)
    for t in range(A.shape[0]):
        c, info = lapack.dpotrf(A[t], lower=0, clean=0)
        if info == 0:
            X[t], info = lapack.dpotrs(c, B[t], lower=0)
        if info != 0:
            X[t] = np.linalg.solve(A[t], B[t])
    return X


def applicable(circuit: CircuitParams) -> bool:
    """The block elimination needs finite row and column wire conductance."""
    return circuit.r_row > 0 and circuit.r_col > 0


def _row_factors(G: np.ndarray, g_row: float, g_src: np.ndarray):
    """The inverse of every row's tridiagonal nodal matrix K, from its pivots.

    G: (T, M, N). Returns U (T, M, N, N), the upper triangle of K^-1 (the
    lower one is its mirror, as K is symmetric), and the diagonal (T, M, N).

    K^-1 needs no dense solve: with the Thomas pivots p_j from the top,
    (K^-1)_jk = c_j (K^-1)_(j+1)k for k > j with c_j = g_row / p_j in (0, 1),
    and the diagonal is 1 / (G_j + g_src [j = 0] + alpha_j + beta_j), where
    alpha_j and beta_j are the conductances that the chains above and below
    node j present to it. The pivots are carried in excess form
    (e_j = p_j - g_row, updated as e_j = G_j + g_row e_(j-1) / p_(j-1)), which
    avoids the cancellation of the textbook recurrence when the wire
    conductance is many orders above the cells and the source; every step
    adds non-negative terms, so K^-1 >= 0 elementwise, as the physics says.
    """
    T, M, N = G.shape
    ext = np.zeros((T, M, N))  # conductance from each node to a fixed voltage, besides its cell
    ext[..., 0] = g_src[None, :]
    alpha = np.zeros((T, M, N))
    c = np.empty((T, M, max(N - 1, 0)))
    for j in range(N - 1):
        e = G[..., j] + ext[..., j] + alpha[..., j]
        p = e + g_row
        alpha[..., j + 1] = g_row * e / p
        c[..., j] = g_row / p
    beta = np.zeros((T, M, N))
    for j in range(N - 2, -1, -1):
        f = G[..., j + 1] + ext[..., j + 1] + beta[..., j + 1]
        beta[..., j] = g_row * f / (f + g_row)
    diag = 1.0 / (G + ext + alpha + beta)
    U = np.zeros((T, M, N, N))
    jj = np.arange(N)
    U[..., jj, jj] = diag
    for j in range(N - 2, -1, -1):
        np.multiply(c[..., j, None], U[..., j + 1, j + 1:], out=U[..., j, j + 1:])
    return U, diag


def _schur(U_i: np.ndarray, diag_i: np.ndarray, G_i: np.ndarray) -> np.ndarray:
    """S_i = D_i - D_i K_i^-1 D_i of row i in every tile, (T, N, N), from ``_row_factors``."""
    jj = np.arange(U_i.shape[-1])
    S = U_i + np.swapaxes(U_i, -1, -2)  # one (T, N, N) block at a time stays in cache
    S[:, jj, jj] -= diag_i
    S *= -G_i[:, :, None]
    S *= G_i[:, None, :]
    S[:, jj, jj] += G_i
    return S


def g_nonideal_stack(G: np.ndarray, circuit: CircuitParams) -> np.ndarray:
    """G_non-ideal (S) for a validated stack G of shape (T, M, N).

    Runs with one BLAS thread: its solves are small (N x N), where BLAS
    threads gain little in one process (about the same at 64 x 64, up to
    1.5x at 256 x 256 on 2 cores) but, in several processes at once (a
    sweep's workers, Dask), two OpenBLAS pools per process that spin between
    calls make it several times slower (``benchmarks/bench_blas_threads.py``).
    The limit is process-wide while the call runs.
    """
    with one_blas_thread():
        return _eliminate(G, circuit)


def _eliminate(G: np.ndarray, circuit: CircuitParams) -> np.ndarray:
    """The block elimination of ``g_nonideal_stack``.

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
    U, diag = _row_factors(G, g_row, g_src)
    w = g_src[None, :, None] * G * U[..., 0, :]  # K^-1 e_0 is row 0 of K^-1 (symmetric)
    eye = np.eye(N)
    F = _schur(U[:, 0], diag[:, 0], G[:, 0])
    Y = np.zeros((T, N, M))
    Y[:, :, 0] = w[:, 0]
    for i in range(1, M):
        delta = F + g_col * eye
        sol = _spd_solve(delta, np.concatenate([F, Y[:, :, :i]], axis=2))
        F = _schur(U[:, i], diag[:, i], G[:, i])
        F += g_col * sol[:, :, :N]
        Y[:, :, :i] = g_col * sol[:, :, N:]
        Y[:, :, i] = w[:, i]
    b_last = _spd_solve(F + g_end * eye, Y)  # bottom node voltages per unit source
    return np.swapaxes(g_end * b_last, 1, 2)
