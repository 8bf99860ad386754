"""GTH elimination of many networks of one size at once, the networks in SIMD lanes.

``engines.dissection`` eliminates thousands of small networks of the same
size and node order (the blocks of a level, over every tile of a stack). One
at a time, their loops are short and scalar. Here LANES of them are stored
interleaved, A[i, j, lane], and eliminated together: every step of the GTH
loop of ``engines.gth._gth_inplace`` becomes one operation on LANES
contiguous numbers, which the compiler turns into vector instructions.

Each lane does exactly the operations, in the same order, that
``_gth_inplace`` does on its network alone (pivot summed afresh, the same
multiplier, the same updates), so the results are bitwise the ones of the
one-at-a-time loop. A pivot row's couplings that are zero in every lane are
skipped (the grid leaves are sparse); a lane whose coupling is zero where
another's is not adds an exact zero, which changes nothing.
"""

from __future__ import annotations

import numpy as np

from .gth import _jit

LANE_BYTES = 2e6  # work space of the networks eliminated together (about a core's L2 cache)
MAX_LANES = 64


def lanes_for(m: int, count: int) -> int:
    """How many networks of m nodes to eliminate together: a multiple of 8 (vector width), as many
    as fit in LANE_BYTES, at least 8, at most MAX_LANES and not many more than there are."""
    fit = int(LANE_BYTES // (8 * m * m)) // 8 * 8
    return max(8, min(MAX_LANES, fit, -(-count // 8) * 8))


PANEL = 4  # pivots whose updates of the later rows are applied in one pass


@_jit
def gth_lanes(A, k, F, nz):
    """Eliminate the first k nodes of each lane of A (m, m, L), upper triangle read and written
    (the rows p < k are left with their couplings, not multipliers). F (m, L) and nz (m,) are
    work space. One pivot at a time: for sparse networks, each pivot row's own non-zero pattern.
    No engine calls it any more (the leaves run ``gth_lanes_pattern``); it is the readable oracle
    that the tests hold ``gth_lanes_pattern`` and ``gth_lanes_panels`` bitwise equal to."""
    m, L = A.shape[0], A.shape[2]
    d = np.empty(L)
    for p in range(k):
        Ap = A[p]
        d[:] = 0.0
        for j in range(p + 1, m):
            x = Ap[j]
            for b in range(L):
                d[b] += x[b]
        for b in range(L):
            d[b] = 1.0 / d[b]
        cnt = 0
        for j in range(p + 1, m):
            x = Ap[j]
            f = F[j]
            hit = 0.0
            for b in range(L):
                f[b] = x[b] * d[b]
                hit += x[b]
            if hit != 0.0:  # couplings are >= 0: some lane's is non-zero
                nz[cnt] = j
                cnt += 1
        for u in range(cnt):
            j = nz[u]
            Aj = A[j]
            f = F[j]
            for v in range(u + 1, cnt):
                i = nz[v]
                x = Ap[i]
                y = Aj[i]
                for b in range(L):
                    y[b] += f[b] * x[b]


@_jit
def gth_lanes_pattern(A, k, F, cols, ptr):
    """``gth_lanes`` for networks of a known sparsity pattern (the grid leaves): pivot row p
    couples at most to the later nodes cols[ptr[p]:ptr[p + 1]] (increasing), fill-in included.
    Only those are summed and updated; the others are exact zeros in every lane, so the results
    are bitwise those of ``gth_lanes`` (F (m, L) is work space)."""
    L = A.shape[2]
    d = np.empty(L)
    for p in range(k):
        Ap = A[p]
        c0, c1 = ptr[p], ptr[p + 1]
        d[:] = 0.0
        for u in range(c0, c1):
            x = Ap[cols[u]]
            for b in range(L):
                d[b] += x[b]
        for b in range(L):
            d[b] = 1.0 / d[b]
        for u in range(c0, c1):
            j = cols[u]
            x = Ap[j]
            f = F[j]
            for b in range(L):
                f[b] = x[b] * d[b]
        for u in range(c0, c1):
            j = cols[u]
            Aj = A[j]
            f = F[j]
            for v in range(u + 1, c1):
                i = cols[v]
                x = Ap[i]
                y = Aj[i]
                for b in range(L):
                    y[b] += f[b] * x[b]


def fill_pattern(edges, n: int, k: int):
    """The later nodes each of the first k pivots couples to when it is eliminated, for a network
    of n nodes whose couplings are the pairs ``edges`` (eliminating p couples its later nodes to
    each other): cols (increasing per pivot) and ptr (k + 1,), int64."""
    nb = [set() for _ in range(n)]
    for a, b in edges:
        if a != b:
            nb[a].add(b)
            nb[b].add(a)
    cols, ptr = [], [0]
    for p in range(k):
        later = sorted(j for j in nb[p] if j > p)
        cols.extend(later)
        ptr.append(len(cols))
        for x in later:
            nb[x].update(later)
            nb[x].discard(x)
    return np.array(cols, dtype=np.int64), np.array(ptr, dtype=np.int64)


@_jit
def gth_lanes_panels(A, k, F, nz):
    """``gth_lanes`` for dense networks (the merges): F (PANEL, m, L) and nz (m,)
    are work space.

    By panels of PANEL pivots: a panel's pivots are eliminated one after the other from the
    panel's own rows, then their updates of every later row are applied in one pass, each entry
    receiving them in pivot order: the same operations as one pivot at a time (bitwise), with a
    quarter of the passes over the later rows."""
    m, L = A.shape[0], A.shape[2]
    d = np.empty(L)
    for p0 in range(0, k, PANEL):
        nb = min(PANEL, k - p0)
        end = p0 + nb
        for q in range(nb):
            p = p0 + q
            Ap = A[p]
            f = F[q]
            d[:] = 0.0
            for j in range(p + 1, m):
                x = Ap[j]
                for b in range(L):
                    d[b] += x[b]
            for b in range(L):
                d[b] = 1.0 / d[b]
            for j in range(p + 1, m):
                x = Ap[j]
                fj = f[j]
                for b in range(L):
                    fj[b] = x[b] * d[b]
            for pp in range(p + 1, end):  # the panel's later rows
                y_row = A[pp]
                fj = f[pp]
                for i in range(pp + 1, m):
                    x = Ap[i]
                    y = y_row[i]
                    for b in range(L):
                        y[b] += fj[b] * x[b]
        cnt = 0  # the later nodes that some pivot of the panel couples to, in some lane
        for j in range(end, m):
            hit = 0.0
            for q in range(nb):
                fj = F[q, j]
                for b in range(L):
                    hit += fj[b]
            if hit != 0.0:  # multipliers are >= 0
                nz[cnt] = j
                cnt += 1
        if nb == 4:
            R0, R1, R2, R3 = A[p0], A[p0 + 1], A[p0 + 2], A[p0 + 3]
            for u in range(cnt):
                j = nz[u]
                Aj = A[j]
                f0, f1, f2, f3 = F[0, j], F[1, j], F[2, j], F[3, j]
                for v in range(u + 1, cnt):
                    i = nz[v]
                    x0, x1, x2, x3 = R0[i], R1[i], R2[i], R3[i]
                    y = Aj[i]
                    for b in range(L):
                        t = y[b] + f0[b] * x0[b]
                        t = t + f1[b] * x1[b]
                        t = t + f2[b] * x2[b]
                        y[b] = t + f3[b] * x3[b]
            continue
        for q in range(nb):
            Ap = A[p0 + q]
            for u in range(cnt):
                j = nz[u]
                Aj = A[j]
                fj = F[q, j]
                for v in range(u + 1, cnt):
                    i = nz[v]
                    x = Ap[i]
                    y = Aj[i]
                    for b in range(L):
                        y[b] += fj[b] * x[b]


@_jit
def scatter_lanes(A, k, out, first, count):
    """The kept networks of lanes 0 .. count - 1 of A (m, m, L), each symmetric with a zero
    diagonal, into out[first + lane] (P, m - k, m - k)."""
    r = A.shape[0] - k
    for b in range(count):
        o = out[first + b]
        for i in range(r):
            o[i, i] = 0.0
            for j in range(i + 1, r):
                v = A[k + i, k + j, b]
                o[i, j] = v
                o[j, i] = v


@_jit
def _eliminate_lanes(W, k, L, out):
    """``eliminate_stack`` of W (P, n, n) in groups of L networks: out (P, n - k, n - k), by
    ``gth_lanes_panels``."""
    P, n, _ = W.shape
    A = np.empty((n, n, L))
    F = np.empty((PANEL, n, L))
    nz = np.empty(n, dtype=np.int64)
    for first in range(0, P, L):
        count = min(L, P - first)
        for b in range(L):
            w = W[first + min(b, count - 1)]  # the last group's spare lanes repeat a network
            for i in range(n):
                for j in range(i + 1, n):
                    A[i, j, b] = w[i, j]
        gth_lanes_panels(A, k, F, nz)
        scatter_lanes(A, k, out, first, count)


def eliminate_stack(W: np.ndarray, k: int) -> np.ndarray:
    """Each network of the stack W (P, n, n) with its first k nodes eliminated: (P, n - k, n - k),
    ``lanes_for`` networks at a time."""
    P, n, _ = W.shape
    out = np.empty((P, n - k, n - k))
    if P:
        _eliminate_lanes(W, k, lanes_for(n, P), out)
    return out
