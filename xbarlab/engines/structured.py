"""Fast, exact G_non-ideal for crossbars whose row and column wires are non-zero.

Block elimination that exploits the crossbar's structure (it is exact up to
rounding, not an approximation):

1. Each row's node chain a(i, :) is tridiagonal; eliminating it (its
   inverse is built from the Thomas pivots, see ``_row_pivots``) leaves, for
   the column nodes b(i, :), a dense N x N Schur complement
   S_i = D_i - D_i K_i^-1 D_i and an injection w_i V_i from the row's source,
   where D_i = diag(G[i, :]) and K_i is the row's nodal matrix.
2. The column nodes form a block-tridiagonal system over the rows, coupled by
   the column wire conductance. A forward block elimination down to the last
   row gives the bottom node voltages, and so the sense currents, for a unit
   voltage on every source at once; no back substitution is needed.

Every matrix solved (F + g I, with F a Schur complement of a conductance
matrix) is symmetric positive definite, so the solves use Cholesky.
Cost is O(max(M, N) min(M, N)^3) flops (a wide array is solved as its
transpose, see ``_eliminate``) and O(T (M + N) min(M, N)) memory for T tiles,
in batched BLAS calls and per-tile LAPACK calls. ``g_nonideal_stack`` evaluates many tiles at once.

Large, roughly square arrays (both sides >= 48, within a factor 4) go to the
nested dissection of ``engines.dissection`` instead (O((M + N)^3)); plain
nested dissection would lose digits (its dense interface matrices mix 1e2 S
wires with 1e-7 S cells: 1e-13 to 1.4e-11 off at 64 x 64), so its
eliminations are the subtraction-free GTH form of ``engines.gth``. This
sweep keeps every wire outside its dense matrices (the tridiagonal rows in
excess form, the column wires as g_col I), which is what keeps it at 1e-15
where the wires dominate the cells. Where a cell dominates a wire its Schur
complements cancel, the more the longer the array (2.2e-11 off at 1000 x 40
with cells 1e4 above the weakest wire, 1.3e-8 at 1e7): beyond
``conditioning.STRUCTURED_CELLS_OVER_WIRES`` = 1e4 ``api`` does not use it;
``row_sweep_stack`` runs it also where the dissection would, as the
reference of the dissection's tests and benchmarks.
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


def _row_pivots(G, g_row: float, g_src, xp=np):
    """The Thomas-pivot quantities of every row's tridiagonal nodal matrix K.

    G: (T, M, N). Returns c (T, M, N-1) and diag (T, M, N), from which
    ``_row_inverse`` builds K^-1 of any row; they take O(T M N) memory, not
    the O(T M N^2) of all the inverses at once.

    K^-1 needs no dense solve: with the Thomas pivots p_j from the top,
    (K^-1)_jk = c_j (K^-1)_(j+1)k for k > j with c_j = g_row / p_j in (0, 1),
    and the diagonal is 1 / (G_j + g_src [j = 0] + alpha_j + beta_j), where
    alpha_j and beta_j are the conductances that the chains above and below
    node j present to it. The pivots are carried in excess form
    (e_j = p_j - g_row, updated as e_j = G_j + g_row e_(j-1) / p_(j-1)), which
    avoids the cancellation of the textbook recurrence when the wire
    conductance is many orders above the cells and the source; every step
    adds non-negative terms, so K^-1 >= 0 elementwise, as the physics says.

    ``xp``: the array module of G and g_src (numpy, or torch for ``engines.sweep_torch``).
    """
    T, M, N = G.shape
    ext = xp.zeros_like(G)  # conductance from each node to a fixed voltage, besides its cell
    ext[..., 0] = g_src[None, :]
    alpha = xp.zeros_like(G)
    c = xp.empty_like(G[..., 1:])  # (T, M, N - 1)
    for j in range(N - 1):
        e = G[..., j] + ext[..., j] + alpha[..., j]
        p = e + g_row
        alpha[..., j + 1] = g_row * e / p
        c[..., j] = g_row / p
    beta = xp.zeros_like(G)
    for j in range(N - 2, -1, -1):
        f = G[..., j + 1] + ext[..., j + 1] + beta[..., j + 1]
        beta[..., j] = g_row * f / (f + g_row)
    return c, 1.0 / (G + ext + alpha + beta)


def _row_inverse(c: np.ndarray, diag: np.ndarray) -> np.ndarray:
    """The upper triangle U (..., N, N) of K^-1 for rows given by ``_row_pivots`` (the lower
    triangle is its mirror, as K is symmetric)."""
    N = diag.shape[-1]
    U = np.zeros(diag.shape + (N,))
    jj = np.arange(N)
    U[..., jj, jj] = diag
    for j in range(N - 2, -1, -1):
        np.multiply(c[..., j, None], U[..., j + 1, j + 1:], out=U[..., j, j + 1:])
    return U


def _schur(U_i, diag_i, G_i):
    """S_i = D_i - D_i K_i^-1 D_i of row i in every tile, (T, N, N), from ``_row_factors``.
    Plain indexing and arithmetic: numpy arrays and torch tensors alike (``engines.sweep_torch``)."""
    jj = list(range(U_i.shape[-1]))
    S = U_i + U_i.swapaxes(-1, -2)  # one (T, N, N) block at a time stays in cache
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


def row_sweep_stack(G: np.ndarray, circuit: CircuitParams) -> np.ndarray:
    """``g_nonideal_stack`` by the row sweep alone, also where the dissection would run: the
    previous engine for large square arrays, kept as their reference (tests, benchmarks)."""
    with one_blas_thread():
        return _eliminate(G, circuit, dissect=False)


def row_sweep_on(G: np.ndarray, circuit: CircuitParams, dev) -> np.ndarray:
    """``row_sweep_stack`` run in torch on the torch.device ``dev`` (``engines.sweep_torch``; the
    caller checks it with ``sweep_torch.device_for``); numpy out."""
    from . import sweep_torch

    return _eliminate(G, circuit, dissect=False, sweep=sweep_torch.sweep_on(dev))


ROW_BLOCK_BYTES = 32e6  # row inverses built at once (K^-1 of a block of rows, all tiles)


def _eliminate(G: np.ndarray, circuit: CircuitParams, dissect: bool = True, sweep=None) -> np.ndarray:
    """The block elimination of ``g_nonideal_stack``, along the longer side of the array.

    Its cost is O(T max(M, N) min(M, N)^3): the dense Schur complements are
    as wide as a row. A wide array (M < N) is solved as its transpose: turned
    by a half turn and transposed, the crossbar is the same kind of circuit
    with rows and columns exchanged (the sense end of each column becomes the
    driven end of a row, r_sense the driver of the new rows, and the row
    drivers the sense of the new columns, one per column), and by reciprocity
    of the (symmetric) nodal matrix its G_non-ideal is G_non-ideal of the
    original turned back the same way. ``sweep``: the row sweep to run (default ``_sweep``;
    ``engines.sweep_torch.sweep_on(device)`` runs it on a torch device).
    """
    if not applicable(circuit):
        raise ValueError("structured engine needs r_row > 0 and r_col > 0")
    T, M, N = G.shape
    if dissect and min(M, N) >= 48:  # dissection.MIN_SIDE; imported here: it loads numba (import xbarlab stays light)
        from . import dissection

        if dissection.applicable(M, N):  # large, roughly square: nested dissection, O((M + N)^3)
            return dissection.g_nonideal_stack(G, circuit)
    sweep = sweep or _sweep
    g_src = 1.0 / (circuit.r_driver_rows(M) + circuit.r_row)
    g_end = np.full(N, 1.0 / (circuit.r_col + circuit.r_sense))
    if M >= N:
        return sweep(G, 1.0 / circuit.r_row, 1.0 / circuit.r_col, g_src, g_end)
    turned = np.ascontiguousarray(np.swapaxes(G[:, ::-1, ::-1], 1, 2))  # (T, N, M)
    out = sweep(turned, 1.0 / circuit.r_col, 1.0 / circuit.r_row, g_end[::-1], g_src[::-1])
    return np.ascontiguousarray(np.swapaxes(out, 1, 2)[:, ::-1, ::-1])


def _sweep(G: np.ndarray, g_row: float, g_col: float, g_src: np.ndarray, g_end: np.ndarray):
    """Forward block elimination, row by row, of a stack G (T, M, N): g_src (M,) the source
    conductance of each row (driver and first wire), g_end (N,) the sense end of each column.

    The column elimination keeps the Schur complement as ``g_col I + F_i``
    and updates the excess F_i = S_i + g_col Delta_(i-1)^-1 F_(i-1) directly,
    for the same reason as the row elimination. The row inverses are built a
    block of rows at a time (``ROW_BLOCK_BYTES``), so memory is O(T N (N + M)).
    """
    T, M, N = G.shape
    c, diag = _row_pivots(G, g_row, g_src)
    if N <= 32 and M > N:  # long and narrow: one compiled loop (engines/lines.py)
        from . import lines

        out = lines.sweep(G, c, diag, g_row, g_col, g_src, g_end)
        if out is not None:
            return out
    block = max(1, int(ROW_BLOCK_BYTES // (8 * T * N * N)))
    eye = np.eye(N)
    Y = np.zeros((T, N, M))
    F = None
    for i0 in range(0, M, block):
        U = _row_inverse(c[:, i0:i0 + block], diag[:, i0:i0 + block])
        for k in range(U.shape[1]):
            i = i0 + k
            w = g_src[i] * G[:, i] * U[:, k, 0, :]  # K^-1 e_0 is row 0 of K^-1 (symmetric)
            S = _schur(U[:, k], diag[:, i], G[:, i])
            if F is None:
                F = S
            else:
                sol = _spd_solve(F + g_col * eye, np.concatenate([F, Y[:, :, :i]], axis=2))
                F = S
                F += g_col * sol[:, :, :N]
                Y[:, :, :i] = g_col * sol[:, :, N:]
            Y[:, :, i] = w
    b_last = _spd_solve(F + np.diag(g_end), Y)  # bottom node voltages per unit source
    return np.swapaxes(g_end[None, :, None] * b_last, 1, 2)
