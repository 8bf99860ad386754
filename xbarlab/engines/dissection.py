"""G_non-ideal of large, roughly square crossbars by nested dissection with GTH merging.

The crossbar (r_row > 0, r_col > 0) is cut into rectangular blocks. Each
block is represented by the network it presents on its four edges (the
row-wire nodes a of its first and last column, the column-wire nodes b of
its first and last row): the exact Schur complement of its nodal matrix onto
those nodes. Two neighbouring blocks merge by adding the wire segments that
join them and eliminating the nodes of the cut; the array is rebuilt this way
level by level, alternating the direction so that blocks stay square. At the
end the row sources and the sense amplifiers are attached as nodes, the
array's edge nodes are eliminated, and G_non-ideal[i, j] is the coupling
that remains between source i and sense j (the current into sense j for 1 V
on source i, every other source at 0 V).

Every elimination is the subtraction-free GTH form of ``engines.gth``, so
each coupling has a small relative error whatever the conductance spread
(plain nested dissection, whose dense matrices mix 1e2 S wires with 1e-7 S
cells, loses up to 1e-11 here). Cost: the top merges dominate, O((M + N)^3)
flops, against O(max(M, N) min(M, N)^3) for the row sweep of
``engines.structured``.

The array is padded up to (4..7) x 2^k rows and columns: extra rows above
row 0 (their cells open, their own sources) and extra columns right of the
last (cells open, their own sense): the padding only lengthens the open ends
of the wires, so the real array's G_non-ideal is unchanged. Small blocks
are handled a whole level at a time by compiled loops (``gth.partial_stack``
form), large ones one at a time with BLAS (``gth.eliminate``); a block on the
open top or right edge eliminates that edge as soon as it is handled alone.
"""

from __future__ import annotations

import numpy as np

from ..params import CircuitParams
from . import gth
from .gth import _jit

MIN_SIDE = 24  # both sides at least this: dissection (below, the row sweep is faster)
LOOP_SIDE = 16  # blocks below this side merge in compiled loops, larger ones in batched BLAS
ALONE_BLOCKS = 16  # from this many blocks per tile on, blocks merge one at a time (open edges trimmed)


MAX_ASPECT = 4  # and neither side more than this many times the other (else the row sweep)


def applicable(M: int, N: int) -> bool:
    """Whether a stack of M x N tiles goes to the dissection rather than the row sweep."""
    return min(M, N) >= MIN_SIDE and max(M, N) <= MAX_ASPECT * min(M, N)


def padded(n: int) -> tuple[int, int]:
    """(leaf side s in 4..7, levels k) with s 2^k >= n as small as possible."""
    best = None
    for s in range(4, 8):
        k = 0
        while s << k < n:
            k += 1
        if best is None or s << k < best[0] << best[1]:
            best = (s, k)
    return best


@_jit
def _leaves(G, g_row, g_col, h, w, pos_a, pos_b, k, out):
    """Each h x w leaf of the padded stack G (T, Mp, Np), reduced onto its edges: out (T, Pr, Pc, n, n)."""
    T, Mp, Np = G.shape
    n = 2 * h * w
    r = n - k
    A = np.empty((n, n))
    o = np.zeros(n)
    for t in range(T):
        for pr in range(Mp // h):
            for pc in range(Np // w):
                A[:, :] = 0.0
                for i in range(h):
                    for j in range(w):
                        a = pos_a[i, j]
                        b = pos_b[i, j]
                        g = G[t, pr * h + i, pc * w + j]
                        A[a, b] = g
                        A[b, a] = g
                        if j + 1 < w:
                            a2 = pos_a[i, j + 1]
                            A[a, a2] = g_row
                            A[a2, a] = g_row
                        if i + 1 < h:
                            b2 = pos_b[i + 1, j]
                            A[b, b2] = g_col
                            A[b2, b] = g_col
                o[:] = 0.0
                gth._gth_inplace(A, o, k)
                for i in range(r):
                    out[t, pr, pc, i, i] = 0.0
                    for j in range(i + 1, r):
                        v = A[k + i, k + j]
                        out[t, pr, pc, i, j] = v
                        out[t, pr, pc, j, i] = v


@_jit
def _merge_stack(WA, WB, pos, la, lb, g_link, k, out):
    """Merge each pair (WA[t], WB[t]) (n, n): nodes of both (B's after A's) placed at pos (2n,),
    linked la[x] -- lb[x] by g_link, the first k eliminated: out (P, 2n - k, 2n - k)."""
    P, n, _ = WA.shape
    m = 2 * n
    r = m - k
    A = np.empty((m, m))
    o = np.zeros(m)
    for t in range(P):
        A[:, :] = 0.0
        for i in range(n):
            for j in range(n):
                A[pos[i], pos[j]] = WA[t, i, j]
                A[pos[n + i], pos[n + j]] = WB[t, i, j]
        for x in range(la.shape[0]):
            A[pos[la[x]], pos[lb[x]]] = g_link
            A[pos[lb[x]], pos[la[x]]] = g_link
        o[:] = 0.0
        gth._gth_inplace(A, o, k)
        for i in range(r):
            out[t, i, i] = 0.0
            for j in range(i + 1, r):
                v = A[k + i, k + j]
                out[t, i, j] = v
                out[t, j, i] = v


@_jit
def _assemble_stack(WA, WB, pos, la, lb, g_link, out):
    """The merged networks of ``_merge_stack`` before elimination: out (P, 2n, 2n)."""
    P, n, _ = WA.shape
    for t in range(P):
        out[t, :, :] = 0.0
        for i in range(n):
            for j in range(n):
                out[t, pos[i], pos[j]] = WA[t, i, j]
                out[t, pos[n + i], pos[n + j]] = WB[t, i, j]
        for x in range(la.shape[0]):
            out[t, pos[la[x]], pos[lb[x]]] = g_link
            out[t, pos[lb[x]], pos[la[x]]] = g_link


CHUNK_BYTES = 64e6  # merged networks assembled at once in the batched BLAS merges


def _merge_level(WA, WB, pos, la, lb, g_link, k, blas_form: bool):
    n = WA.shape[1]
    m = 2 * n
    out = np.empty((WA.shape[0], m - k, m - k))
    if not blas_form:
        _merge_stack(WA, WB, pos, la, lb, g_link, k, out)
        return out
    step = max(1, int(CHUNK_BYTES // (8 * m * m)))
    for a in range(0, WA.shape[0], step):
        full = np.empty((min(step, WA.shape[0] - a), m, m))
        _assemble_stack(WA[a:a + step], WB[a:a + step], pos, la, lb, g_link, full)
        out[a:a + step] = gth.eliminate_stack(full, k)
    return out


def _edges(h: int, w: int) -> dict:
    """Index ranges of a uniform block's edges in the order L, R, T, B."""
    return {"L": np.arange(h), "R": h + np.arange(h), "T": 2 * h + np.arange(w), "B": 2 * h + w + np.arange(w)}


def _merge_plan(ea: dict, eb: dict, na: int, horizontal: bool):
    """Node order of a merge (cut first) and the new edges, for blocks with edges ea, eb (either
    may lack T or R). Indices of B's nodes are offset by na."""
    eb = {s: (None if v is None else v + na) for s, v in eb.items()}
    if horizontal:
        cut = [ea["R"], eb["L"]]
        new = {"L": [ea["L"]], "R": [eb["R"]], "T": [ea["T"], eb["T"]], "B": [ea["B"], eb["B"]]}
    else:
        cut = [ea["B"], eb["T"]]
        new = {"L": [ea["L"], eb["L"]], "R": [ea["R"], eb["R"]], "T": [ea["T"]], "B": [eb["B"]]}
    order = list(np.concatenate(cut))
    edges = {}
    for s in "LRTB":
        parts = new[s]
        if any(p is None for p in parts):
            edges[s] = None
            continue
        idx = np.concatenate(parts)
        edges[s] = len(order) - len(cut[0]) - len(cut[1]) + np.arange(len(idx))
        order.extend(idx)
    return np.array(order, dtype=np.int64), len(cut[0]) + len(cut[1]), edges, cut


def _direction(h: int, w: int, Pr: int, Pc: int) -> bool:
    """True: merge side by side (doubles the width)."""
    return Pr == 1 or (Pc > 1 and w <= h)


def _phase_a(Gp, g_row, g_col, sr, sc):
    """Leaves and the merges of small blocks, a level at a time for the whole stack."""
    T, Mp, Np = Gp.shape
    h, w = sr, sc
    pos_a = np.empty((h, w), dtype=np.int64)
    pos_b = np.empty((h, w), dtype=np.int64)
    inner = [("a", i, j) for i in range(h) for j in range(1, w - 1)] + \
            [("b", i, j) for i in range(1, h - 1) for j in range(w)]
    edge = [("a", i, 0) for i in range(h)] + [("a", i, w - 1) for i in range(h)] + \
           [("b", 0, j) for j in range(w)] + [("b", h - 1, j) for j in range(w)]
    for x, (kind, i, j) in enumerate(inner + edge):
        (pos_a if kind == "a" else pos_b)[i, j] = x
    n = 2 * (h + w)
    blocks = np.empty((T, Mp // h, Np // w, n, n))
    _leaves(Gp, g_row, g_col, h, w, pos_a, pos_b, len(inner), blocks)
    while True:
        Pr, Pc = blocks.shape[1:3]
        if Pr * Pc <= ALONE_BLOCKS:
            return blocks, h, w
        horizontal = _direction(h, w, Pr, Pc)
        e = _edges(h, w)
        n = blocks.shape[-1]
        order, k, _, cut = _merge_plan(e, e, n, horizontal)
        pos = np.empty(2 * n, dtype=np.int64)
        pos[order] = np.arange(2 * n)
        WA = blocks[:, :, 0::2] if horizontal else blocks[:, 0::2]
        WB = blocks[:, :, 1::2] if horizontal else blocks[:, 1::2]
        shape = WA.shape[:3]
        out = _merge_level(np.ascontiguousarray(WA).reshape(-1, n, n), np.ascontiguousarray(WB).reshape(-1, n, n),
                           pos, cut[0], cut[1], g_row if horizontal else g_col, k, max(h, w) >= LOOP_SIDE)
        blocks = out.reshape(shape + out.shape[1:])
        h, w = (h, 2 * w) if horizontal else (2 * h, w)


def _open_edges(W: np.ndarray, edges: dict, top: bool, right: bool):
    """Eliminate the edges of a block that lie on the array's open ends (top, right)."""
    drop = [edges[s] for s, on in (("T", top), ("R", right)) if on]
    if not drop:
        return W, edges
    drop = np.concatenate(drop)
    keep_sides = [s for s in "LRTB" if not ((s == "T" and top) or (s == "R" and right))]
    order = list(drop)
    new = {"T": None if top else 0, "R": None if right else 0}
    for s in keep_sides:
        new[s] = len(order) - len(drop) + np.arange(len(edges[s]))
        order.extend(edges[s])
    order = np.array(order, dtype=np.int64)
    return gth.eliminate(W[np.ix_(order, order)], len(drop)), new


def _merge(a, b, horizontal: bool, g_link: float):
    WA, ea = a
    WB, eb = b
    na = WA.shape[0]
    order, k, edges, cut = _merge_plan(ea, eb, na, horizontal)
    W = np.zeros((na + WB.shape[0],) * 2)
    W[:na, :na] = WA
    W[na:, na:] = WB
    W[cut[0], cut[1]] = g_link
    W[cut[1], cut[0]] = g_link
    return gth.eliminate(W[np.ix_(order, order)], k), edges


def _tile(blocks: np.ndarray, h: int, w: int, g_row, g_col, g_src, g_end) -> np.ndarray:
    """The large-block merges and the final elimination of one tile: G_non-ideal (Mp, Np)."""
    Pr, Pc = blocks.shape[:2]
    grid = [[_open_edges(blocks[p, q], _edges(h, w), p == 0, q == Pc - 1) for q in range(Pc)]
            for p in range(Pr)]
    while Pr * Pc > 1:
        if _direction(h, w, Pr, Pc):
            grid = [[_merge(row[2 * q], row[2 * q + 1], True, g_row) for q in range(Pc // 2)] for row in grid]
            Pc, w = Pc // 2, 2 * w
        else:
            grid = [[_merge(grid[2 * p][q], grid[2 * p + 1][q], False, g_col) for q in range(Pc)]
                    for p in range(Pr // 2)]
            Pr, h = Pr // 2, 2 * h
    W, e = grid[0][0]
    Mp, Np = len(e["L"]), len(e["B"])
    order = np.concatenate([e["L"], e["B"]])
    m = Mp + Np
    F = np.zeros((2 * m, 2 * m))
    F[:m, :m] = W[np.ix_(order, order)]
    rows, cols = np.arange(Mp), Mp + np.arange(Np)
    F[rows, m + rows] = F[m + rows, rows] = g_src
    F[cols, m + cols] = F[m + cols, cols] = g_end
    R = gth.eliminate(F, m)  # [sources, senses]
    return R[:Mp, Mp:]


def g_nonideal_stack(G: np.ndarray, circuit: CircuitParams) -> np.ndarray:
    """G_non-ideal (S) of a validated stack G (T, M, N) with r_row > 0 and r_col > 0."""
    T, M, N = G.shape
    (sr, kr), (sc, kc) = padded(M), padded(N)
    Mp, Np = sr << kr, sc << kc
    g_row, g_col = 1.0 / circuit.r_row, 1.0 / circuit.r_col
    Gp = np.zeros((T, Mp, Np))
    Gp[:, Mp - M:, :N] = G
    g_src = np.full(Mp, g_row)
    g_src[Mp - M:] = 1.0 / (circuit.r_driver_rows(M) + circuit.r_row)
    g_end = np.full(Np, g_col)
    g_end[:N] = 1.0 / (circuit.r_col + circuit.r_sense)
    blocks, h, w = _phase_a(Gp, g_row, g_col, sr, sc)
    out = np.empty((T, M, N))
    for t in range(T):
        out[t] = _tile(blocks[t], h, w, g_row, g_col, g_src, g_end)[Mp - M:, :N]
    return out
