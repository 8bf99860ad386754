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
products that ``engines.gth_blas`` builds on these loops keep the same signs
(multipliers >= 0, right-hand sides >= 0), so the BLAS calls on them add
non-negative terms too.

The compiled loop itself is ``_gth_inplace``; ``_gth_panels``, its bitwise
twin for dense networks, applies four pivots' updates in one pass and is the
one ``gth_blas`` calls on each panel of pivots (``gth_lanes`` runs the same
loop on many networks side by side).
"""

from __future__ import annotations

import numpy as np

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
