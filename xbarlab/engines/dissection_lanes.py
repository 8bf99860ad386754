"""The first levels of ``engines.dissection`` (leaves and small blocks) with the blocks in lanes.

A level's blocks are stored as X (G, n, n, L): block g L + l in lane l of group g,
every coupling of L blocks side by side, so that joining two blocks, eliminating
their shared edge (``gth_lanes``) and storing the result are all operations on L
contiguous numbers. The blocks are numbered in merge order (``merge_order``): the
two blocks of each pair of the next level are in the two halves, g and g + G / 2,
in the same lane, and the merged block keeps the number of the first; after the
last level, the numbers are the natural ones of (tile, block row, block column).
"""

from __future__ import annotations

import numpy as np

from . import gth_lanes
from .gth import _jit

LANES = 64  # blocks per group at most (fewer where the last lane level leaves fewer blocks in all)


def merge_order(T: int, Pr: int, Pc: int, directions: list[bool]) -> np.ndarray:
    """The number of each leaf (T, Pr, Pc), flat in natural order, for the merges ``directions``
    (True: side by side, the pair bit is the lowest unused bit of the block column; else of the
    block row). The pair bit of the first merge is the highest bit of the number, and so on."""
    nh = sum(directions)
    nv = len(directions) - nh
    t, pr, pc = np.meshgrid(np.arange(T), np.arange(Pr), np.arange(Pc), indexing="ij")
    rest = (t * (Pr >> nv) + (pr >> nv)) * (Pc >> nh) + (pc >> nh)
    number = rest.copy()
    R = T * (Pr >> nv) * (Pc >> nh)
    used_h = used_v = 0
    for level, horizontal in enumerate(directions):
        if horizontal:
            bit, used_h = (pc >> used_h) & 1, used_h + 1
        else:
            bit, used_v = (pr >> used_v) & 1, used_v + 1
        number += bit * (R << (len(directions) - 1 - level))
    return number.ravel()


@_jit
def _store(A, k, Y, g, full=True):
    """The kept nodes of the lanes of A (m, m, L) into Y[g] (r, r, L), symmetric with a zero
    diagonal (full) or only its strict upper triangle (what the next lane merge reads)."""
    r = A.shape[0] - k
    L = A.shape[2]
    for i in range(r):
        if full:
            for b in range(L):
                Y[g, i, i, b] = 0.0
        for j in range(i + 1, r):
            x = A[k + i, k + j]
            y = Y[g, i, j]
            for b in range(L):
                y[b] = x[b]
            if full:
                z = Y[g, j, i]
                for b in range(L):
                    z[b] = x[b]


@_jit
def leaves(G, g_row, g_col, h, w, pos_a, pos_b, k, natural, Y, full, cols, ptr):
    """Each h x w leaf of the padded stack G (T, Mp, Np) reduced onto its edges, into the lanes
    Y (P / L, n, n, L) in merge order: lane number x holds leaf natural[x] (flat (t, pr, pc)).

    pos_a (h, w + 1) and pos_b (h + 1, w) place the leaf's nodes; column w of pos_a is the first
    row-wire node of the leaf on the right, row h of pos_b the first column-wire node below.
    Y's blocks are symmetric (full) or only their strict upper triangles are written. cols, ptr:
    the leaf's elimination pattern (``leaf_pattern``)."""
    T, Mp, Np = G.shape
    Pr, Pc = Mp // h, Np // w
    L = Y.shape[3]
    n = pos_a.size + pos_b.size
    A = np.empty((n, n, L))
    F = np.empty((n, L))
    for g in range(Y.shape[0]):
        for p in range(k):  # the entries read: the pattern's and the kept nodes' upper triangle
            for u in range(ptr[p], ptr[p + 1]):
                A[p, cols[u]] = 0.0
        for i in range(k, n):
            A[i, i + 1:] = 0.0
        for b in range(L):
            x = natural[g * L + b]
            t = x // (Pr * Pc)
            pr = (x // Pc) % Pr
            pc = x % Pc
            for i in range(h):
                for j in range(w):
                    a = pos_a[i, j]
                    bb = pos_b[i, j]
                    A[min(a, bb), max(a, bb), b] = G[t, pr * h + i, pc * w + j]
                    a2 = pos_a[i, j + 1]
                    A[min(a, a2), max(a, a2), b] = g_row
                    b2 = pos_b[i + 1, j]
                    A[min(bb, b2), max(bb, b2), b] = g_col
        gth_lanes.gth_lanes_pattern(A, k, F, cols, ptr)
        _store(A, k, Y, g, full)


def leaf_pattern(h: int, w: int, pos_a: np.ndarray, pos_b: np.ndarray, k: int):
    """``gth_lanes.fill_pattern`` of a leaf placed as in ``leaves``: its cells, row-wire and
    column-wire segments, the first k nodes eliminated."""
    edges = []
    for i in range(h):
        for j in range(w):
            edges += [(pos_a[i, j], pos_b[i, j]), (pos_a[i, j], pos_a[i, j + 1]), (pos_b[i, j], pos_b[i + 1, j])]
    return gth_lanes.fill_pattern(edges, pos_a.size + pos_b.size, k)


@_jit
def _add(X, g, pos, A):
    """Add the networks of group g of X (G, n, n, L), node i at pos[i], to the lanes of A."""
    n = X.shape[1]
    L = X.shape[3]
    for i in range(n):
        for j in range(i + 1, n):
            u, v = pos[i], pos[j]
            y = A[min(u, v), max(u, v)]
            x = X[g, i, j]
            for b in range(L):
                y[b] += x[b]


@_jit
def _join_eliminate(X, g, half, pos_a, pos_b, k, A, F, nz):
    """Join lane group g of X (G, n, n, L) with group half + g into A (m, m, L) (A's node i of the
    first at pos_a[i], of the second at pos_b[i]; strict upper triangles only) and eliminate A's
    first k nodes. F and nz are ``gth_lanes_panels``' work space."""
    m = A.shape[0]
    for i in range(m):  # the strict upper triangle, the only part written and read
        A[i, i + 1:] = 0.0
    _add(X, g, pos_a, A)
    _add(X, half + g, pos_b, A)
    gth_lanes.gth_lanes_panels(A, k, F, nz)


@_jit
def merge(X, pos_a, pos_b, m, k, Y, full=True):
    """Join each block of the first half of the groups of X (G, n, n, L) with the one in the same
    lane of the second half (A's node i at pos_a[i], B's at pos_b[i]) and eliminate the first k
    nodes: Y (G / 2, m - k, m - k, L), symmetric (full) or its strict upper triangle alone (X's
    strict upper triangles are all that is read)."""
    half = X.shape[0] // 2
    L = X.shape[3]
    A = np.empty((m, m, L))
    F = np.empty((gth_lanes.PANEL, m, L))
    nz = np.empty(m, dtype=np.int64)
    for g in range(half):
        _join_eliminate(X, g, half, pos_a, pos_b, k, A, F, nz)
        _store(A, k, Y, g, full)


@_jit
def _store_blocks(A, k, Y, first):
    """The kept nodes of the lanes of A (m, m, L) into Y[first + lane] (P, r, r): upper triangles
    with a zero diagonal, eight lanes at a time."""
    r = A.shape[0] - k
    L = A.shape[2]
    for b0 in range(0, L, 8):
        b1 = min(b0 + 8, L)
        for i in range(r):
            for b in range(b0, b1):
                Y[first + b, i, i] = 0.0
            for j in range(i + 1, r):
                x = A[k + i, k + j]
                for b in range(b0, b1):
                    Y[first + b, i, j] = x[b]


@_jit
def merge_blocks(X, pos_a, pos_b, m, k, Y):
    """``merge`` storing the merged blocks one after the other, as ``unlane`` would: the upper
    triangles (and zero diagonals) of Y (G / 2 L, m - k, m - k)."""
    half = X.shape[0] // 2
    L = X.shape[3]
    A = np.empty((m, m, L))
    F = np.empty((gth_lanes.PANEL, m, L))
    nz = np.empty(m, dtype=np.int64)
    for g in range(half):
        _join_eliminate(X, g, half, pos_a, pos_b, k, A, F, nz)
        _store_blocks(A, k, Y, g * L)


def unlane(X: np.ndarray) -> np.ndarray:
    """The blocks of X (G, n, n, L) as (G L, n, n), in their numbers' order."""
    G, n, _, L = X.shape
    return np.ascontiguousarray(np.moveaxis(X, 3, 1)).reshape(G * L, n, n)
