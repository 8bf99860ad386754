"""Subtraction-free (GTH) elimination of conductance networks, for ``engines.dissection``.

A network of conductances is stored as W, the symmetric matrix of its
couplings W_ij = g_ij >= 0 (i != j; the diagonal is never read). Its nodal
matrix is A = diag(row sums of W) - W, with every node that is not
eliminated counted in the row sums. Eliminating node p (a Schur complement)
gives the network on the other nodes

    W_ij += W_ip W_pj / d_p,   d_p = sum over the nodes j still present of W_pj,

in which every operation adds non-negative numbers: the pivot d_p is summed
afresh from the couplings instead of updated as a difference (Grassmann,
Taksar and Heyman's GTH algorithm). Every computed coupling therefore has a
small relative error, whatever the spread of the conductances, where the
textbook elimination loses digits as soon as a wire of 1e2 S meets a cell of
1e-7 S (``engines.structured``'s docstring). The triangular solves and
products below keep the same signs (multipliers >= 0, right-hand sides >= 0),
so LAPACK/BLAS calls on them add non-negative terms too.

Three forms: ``_gth_inplace`` (the compiled loop itself; ``_gth_panels``,
its bitwise twin for dense networks, applies four pivots' updates in one
pass and is the one the factorizations call), ``eliminate_stack`` (a stack
of networks: compiled factorization, BLAS products) and ``eliminate`` (one
large network, blocked: compiled GTH panels, BLAS for the rest).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas, solve_triangular

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a dependency
    njit = None


def _jit(f):
    return njit(cache=True, nogil=True)(f) if njit is not None else f


SPARSE_BELOW = 0.5  # a pivot row with fewer non-zero couplings than this share is updated by index lists


@_jit
def _gth_inplace(A, o, k):
    """Eliminate the first k nodes of A (n, n), upper triangle read and written, o (n,) each node's
    coupling to nodes outside A. Leaves the multipliers W_pj / d_p in A's rows p < k and returns
    the pivots d (k,).

    A pivot row with few non-zero couplings (the leaves of ``engines.dissection`` are grids) updates
    only the entries they reach, by index lists: the terms skipped are exact zeros, so the result is
    bitwise the one of the dense loop."""
    n = A.shape[0]
    d = np.empty(k)
    nz = np.empty(n, dtype=np.int64)
    for p in range(k):
        Ap = A[p]
        s = o[p]
        cnt = 0
        for j in range(p + 1, n):
            v = Ap[j]
            s += v
            if v != 0.0:
                nz[cnt] = j
                cnt += 1
        d[p] = s
        inv = 1.0 / s
        if cnt < SPARSE_BELOW * (n - p - 1):
            for x in range(cnt):
                j = nz[x]
                f = Ap[j] * inv
                Aj = A[j]
                for y in range(x + 1, cnt):
                    i = nz[y]
                    Aj[i] += f * Ap[i]
                o[j] += f * o[p]
                Ap[j] *= inv
            continue
        for j in range(p + 1, n):
            f = Ap[j] * inv
            if f != 0.0:
                Aj = A[j]
                for i in range(j + 1, n):
                    Aj[i] += f * Ap[i]
                o[j] += f * o[p]
        for j in range(p + 1, n):
            Ap[j] *= inv
    return d


@_jit
def _gth_panels(A, o, k):
    """``_gth_inplace`` for dense networks (the merged blocks), by panels of four pivots: a panel's
    pivots are eliminated one after the other from its own rows, then their updates of every later
    row are applied in one pass, each entry receiving them in pivot order. The same operations as
    one pivot at a time (bitwise: a skipped term is an exact zero), with a quarter of the passes
    over the later rows."""
    n = A.shape[0]
    d = np.empty(k)
    F = np.zeros((4, n))
    nz = np.empty(n, dtype=np.int64)
    for p0 in range(0, k, 4):
        end = min(p0 + 4, k)
        nb = end - p0
        for q in range(nb):
            p = p0 + q
            Ap = A[p]
            f = F[q]
            s = o[p]
            for j in range(p + 1, n):
                s += Ap[j]
            d[p] = s
            inv = 1.0 / s
            for j in range(p + 1, n):
                f[j] = Ap[j] * inv
            for pp in range(p + 1, end):  # the panel's later rows
                fj = f[pp]
                if fj != 0.0:
                    Y = A[pp]
                    for i in range(pp + 1, n):
                        Y[i] += fj * Ap[i]
                    o[pp] += fj * o[p]
        cnt = 0  # the later nodes that some pivot of the panel couples to
        for j in range(end, n):
            hit = 0.0
            for q in range(nb):
                hit += F[q, j]
            if hit != 0.0:  # multipliers are >= 0
                nz[cnt] = j
                cnt += 1
        if nb == 4:
            R0, R1, R2, R3 = A[p0], A[p0 + 1], A[p0 + 2], A[p0 + 3]
            o0, o1, o2, o3 = o[p0], o[p0 + 1], o[p0 + 2], o[p0 + 3]
            for u in range(cnt):
                j = nz[u]
                Y = A[j]
                f0, f1, f2, f3 = F[0, j], F[1, j], F[2, j], F[3, j]
                for i in range(j + 1, n):
                    Y[i] = Y[i] + f0 * R0[i] + f1 * R1[i] + f2 * R2[i] + f3 * R3[i]
                o[j] = o[j] + f0 * o0 + f1 * o1 + f2 * o2 + f3 * o3
        else:
            for q in range(nb):
                Ap = A[p0 + q]
                op = o[p0 + q]
                for u in range(cnt):
                    j = nz[u]
                    fj = F[q, j]
                    Y = A[j]
                    for i in range(j + 1, n):
                        Y[i] += fj * Ap[i]
                    o[j] += fj * op
        for q in range(nb):
            p = p0 + q
            for j in range(p + 1, n):
                A[p, j] = F[q, j]
    return d


MIRROR_TILE = 32  # side of the square tiles in which ``_mirror_lower`` writes the upper half


@_jit
def _mirror_lower(A):
    """A (r, r) made symmetric from its strict lower triangle, with a zero diagonal; the strided
    writes go tile by tile, in cache."""
    r = A.shape[0]
    b = MIRROR_TILE
    for j0 in range(0, r, b):
        j1 = min(j0 + b, r)
        for i0 in range(0, j0 + 1, b):
            for j in range(j0, j1):
                for i in range(i0, min(i0 + b, j)):
                    A[i, j] = A[j, i]
        for j in range(j0, j1):
            A[j, j] = 0.0


def _add_gram(YT: np.ndarray, out: np.ndarray) -> None:
    """out (r, r), C order, holding the symmetric W_rr: out = W_rr + Y^T Y, given YT = Y^T (r, k)
    in Fortran order. dsyrk accumulates into out.T (Fortran order, the same symmetric matrix) in
    place, adding non-negative terms to W_rr's upper triangle there, which is out's lower one."""
    res = blas.dsyrk(1.0, YT, beta=1.0, c=out.T, trans=0, lower=0, overwrite_c=1)
    if not np.shares_memory(res, out):  # pragma: no cover - f2py copies only a non-contiguous c
        out[...] = res.T
    _mirror_lower(out)


@_jit
def _factor_stack(Wkk, o, U, d):
    """GTH factor of each network of the stack Wkk (P, k, k) with outside couplings o (P, k):
    pivots d (P, k) and the negated multipliers U (P, k, k), strictly upper (A = L D L^T,
    L = I + U^T), so that U[t].T is L's strict lower part as BLAS reads it, with no copy."""
    P, k, _ = Wkk.shape
    oo = np.empty(k)
    for t in range(P):
        A = U[t]
        A[:, :] = Wkk[t]
        oo[:] = o[t]
        d[t] = _gth_panels(A, oo, k)
        for i in range(k):
            for j in range(i + 1, k):
                A[i, j] = -A[i, j]


def eliminate_stack(W: np.ndarray, k: int) -> np.ndarray:
    """Each network of the stack W (P, n, n) with its first k nodes eliminated: (P, n - k, n - k).
    A compiled GTH factorization of the eliminated block, then per network a triangular solve and a symmetric product (BLAS) of
    non-negative matrices."""
    P, n, _ = W.shape
    if k > BLOCKED_FROM and P > 0:
        return np.stack([eliminate(w, k) for w in W])
    W_kr = W[:, :k, k:]
    U = np.empty((P, k, k))
    d = np.empty((P, k))
    _factor_stack(W[:, :k, :k], np.ascontiguousarray(W_kr.sum(axis=2)), U, d)
    out = np.empty((P, n - k, n - k))
    scale = 1.0 / np.sqrt(d)
    for t in range(P):  # in Fortran order, where the C-order arrays are their transposes (no copies)
        YT = blas.dtrsm(1.0, U[t].T, W_kr[t].T, side=1, lower=1, trans_a=1, diag=1)  # (L^-1 W_kr)^T
        YT *= scale[t]
        out[t] = W[t, k:, k:]
        _add_gram(YT, out[t])  # W_rr + Y^T Y
    return out


def eliminate_split(Wk: np.ndarray, out: np.ndarray, k: int) -> np.ndarray:
    """``eliminate_stack`` of networks given in two parts, with no (P, n, n) copy of them: Wk
    (P, k, n), the couplings of the k nodes to eliminate (to every node), and out (P, n - k, n - k),
    whose lower triangle holds the couplings among the kept nodes (the upper one is not read).
    out is overwritten with the result (symmetric, zero diagonal) and returned."""
    P = Wk.shape[0]
    W_kr = Wk[:, :, k:]
    o = np.ascontiguousarray(W_kr.sum(axis=2))
    if k > BLOCKED_FROM:
        for t in range(P):
            U, d = factor(Wk[t, :, :k], o[t])
            Z = solve_triangular(-U, W_kr[t], trans="T", lower=False, unit_diagonal=True, check_finite=False)
            Z /= np.sqrt(d)[:, None]
            _add_gram(Z.T, out[t])
        return out
    U = np.empty((P, k, k))
    d = np.empty((P, k))
    _factor_stack(Wk[:, :, :k], o, U, d)
    scale = 1.0 / np.sqrt(d)
    for t in range(P):
        YT = blas.dtrsm(1.0, U[t].T, W_kr[t].T, side=1, lower=1, trans_a=1, diag=1)  # (L^-1 W_kr)^T
        YT *= scale[t]
        _add_gram(YT, out[t])
    return out


BLOCKED_FROM = 144  # eliminated nodes above which ``eliminate_stack`` factorizes by blocks
PANEL = 96  # nodes per compiled GTH panel of ``factor``


def factor(W_kk: np.ndarray, o: np.ndarray):
    """GTH factorization A = L D L^T of the nodal matrix of W_kk (k, k) whose nodes also couple
    to the outside by o (k,) (row sums of their couplings to the nodes kept). Returns U, the
    multipliers in its strict upper triangle (L = I - U^T; the rest of U is not meaningful),
    and the pivots D (k,).

    Right-looking by panels: each panel is eliminated by the compiled GTH loop with the panel's
    couplings to every later node summed into its outside coupling; the later nodes are then
    updated by a triangular solve and a matrix product on non-negative operands.
    """
    k = W_kk.shape[0]
    A = np.array(W_kk, dtype=float, order="C")
    o = np.array(o, dtype=float)
    d = np.empty(k)
    for p0 in range(0, k, PANEL):
        p1 = min(p0 + PANEL, k)
        panel = A[p0:p1, p0:p1].copy()
        o_ext = o[p0:p1] + A[p0:p1, p1:].sum(axis=1)
        d[p0:p1] = _gth_panels(panel, o_ext, p1 - p0)
        A[p0:p1, p0:p1] = panel
        if p1 < k:
            rhs = np.concatenate([A[p0:p1, p1:], o[p0:p1, None]], axis=1)
            Z = solve_triangular(-panel, rhs, trans="T", lower=False, unit_diagonal=True,
                                 check_finite=False)
            Zs = Z / d[p0:p1, None]
            A[p1:, p1:] += Z[:, :-1].T @ Zs[:, :-1]
            o[p1:] += Z[:, :-1].T @ Zs[:, -1]
            A[p0:p1, p1:] = Zs[:, :-1]
    return A, d  # multipliers in the strict upper triangle (the rest is not read)


def eliminate(W: np.ndarray, k: int) -> np.ndarray:
    """The network W (n, n) with its first k nodes eliminated: (n - k, n - k), symmetric, zero
    diagonal. Blocked (``factor``, then one triangular solve and one symmetric product)."""
    n = W.shape[0]
    W_kr = W[:k, k:]
    if k == 0:
        return W.copy()
    if n - k == 0:
        return np.zeros((0, 0))
    U, d = factor(W[:k, :k], W_kr.sum(axis=1))
    Z = solve_triangular(-U, W_kr, trans="T", lower=False, unit_diagonal=True, check_finite=False)
    Z /= np.sqrt(d)[:, None]
    out = np.array(W[k:, k:], order="C")
    _add_gram(Z.T, out)  # W_rr + Y^T Y from Y^T in Fortran order
    return out


def terminal_couplings(W: np.ndarray, Ra: np.ndarray, Rb: np.ndarray, first: int) -> np.ndarray:
    """The couplings left between two groups of terminals once every node of each network of the
    stack W (P, k, k) is eliminated: (P, ra, rb). Terminal group a couples to the nodes by
    Ra (P, k, ra) >= 0, group b by Rb (P, k, rb) >= 0, whose rows before ``first`` are zero;
    the terminals do not couple to each other directly.

    With the GTH factorization A = L D L^T of the nodes' nodal matrix (their couplings to both
    groups counted as outside couplings), the couplings are (L^-1 Ra)^T D^-1 (L^-1 Rb), and
    L^-1 Rb is zero above ``first`` (L is lower triangular): only the terminal-to-terminal block
    that is asked for is formed, not the whole Schur complement onto both groups. Every term
    is a sum of non-negative products, as in ``eliminate_stack``."""
    P, k, _ = W.shape
    o = Ra.sum(axis=2) + Rb.sum(axis=2)
    out = np.empty((P, Ra.shape[2], Rb.shape[2]))
    if k <= BLOCKED_FROM:
        U = np.empty((P, k, k))
        d = np.empty((P, k))
        _factor_stack(W, np.ascontiguousarray(o), U, d)
    for t in range(P):
        if k > BLOCKED_FROM:
            u, dt = factor(W[t], o[t])
            u = -u  # the negated multipliers, as ``_factor_stack`` stores them
        else:
            u, dt = U[t], d[t]
        Xa = solve_triangular(u, Ra[t], trans="T", lower=False, unit_diagonal=True, check_finite=False)[first:]
        Xb = solve_triangular(u[first:, first:], Rb[t, first:], trans="T", lower=False, unit_diagonal=True,
                              check_finite=False)
        Xb /= dt[first:, None]
        out[t] = Xa.T @ Xb
    return out
