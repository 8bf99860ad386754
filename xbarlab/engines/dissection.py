"""G_non-ideal of large, roughly square crossbars by nested dissection with GTH merging.

The crossbar (r_row > 0, r_col > 0) is cut into rectangular blocks of cells.
A block owns the row-wire nodes a and column-wire nodes b of its cells and
the wire segments leaving them to the right and downwards; it is represented
by the exact Schur complement of its network onto its four edges: L, its
own a nodes of its first column; R, the a nodes of the first column of the
block on its right (shared with that block's L); T, its own b nodes of its
first row; B, the b nodes of the first row of the block below (shared with
that block's T). Below the last row, B is the sense nodes s_j; right of the
last column, R is the open end of the row wires. Two neighbouring blocks
merge by adding their networks and eliminating the nodes they share; the
array is rebuilt this way level by level, alternating the direction so that
blocks stay square. At the end the row sources (through r_driver + r_row)
and the sense amplifiers (through r_sense) are attached as nodes, the rest
is eliminated, and G_non-ideal[i, j] is the coupling left between source i
and sense j (the current into sense j for 1 V on source i, the other sources
at 0 V).

Every elimination is the subtraction-free GTH form of ``engines.gth``, so
each coupling has a small relative error whatever the conductance spread
(plain nested dissection, whose dense matrices mix 1e2 S wires with 1e-7 S
cells, loses up to 1e-11 here). Cost: O((M + N)^3) flops, dominated by the
top merges, against O(max(M, N) min(M, N)^3) for the row sweep of
``engines.structured``; memory O(M N (M + N) / min block side), about 0.9 GB
resident at 1024 x 1024.

The array is padded up to (4..7) x 2^k rows and columns: extra rows above
row 0 (cells open, each with a source of its own) and extra columns right of
the last (cells open, with their own sense): the padding only lengthens the
open ends of the wires, so the real array's G_non-ideal is unchanged. The
blocks of a level are merged all at once for the whole stack of tiles:
small ones side by side in the SIMD lanes of ``engines.dissection_lanes``
(up to 64 blocks per group, numbered so that the two blocks of each pair share a
lane), larger ones with a compiled GTH factorization and BLAS products, the
merged network written directly in the two parts they read
(``gth.eliminate_split``); the last few blocks of each tile merge one at a
time, and a block on the array's open top or right end eliminates that edge
first. The last step forms only the source-to-sense block of the Schur
complement onto the terminals (``gth.terminal_couplings``).
"""

from __future__ import annotations

import math

import numpy as np

from ..params import CircuitParams
from . import dissection_lanes, gth_blas

MIN_SIDE = 48  # both sides at least this: dissection (below, the row sweep is as fast or faster)
LOOP_SIDE = 32  # blocks below this side merge in the compiled lanes, larger ones in batched BLAS
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


def _joined(WA, ia, WB, ib, pos_a, pos_b, m: int, k: int):
    """Each pair of blocks WA[ia[t]], WB[ib[t]] (C order (P, n, n)) joined (A's node i at
    pos_a[i], B's at pos_b[i]) with the first k of the m nodes eliminated: (T, m - k, m - k)."""
    out = np.empty((len(ia), m - k, m - k))
    gth_blas.merge_stack(WA, ia, gth_blas.runs_of(pos_a), WB, ib, gth_blas.runs_of(pos_b), k, out,
                         gth_blas.addresses())
    return out


def _merge_level(WA, WB, pos_a, pos_b, m: int, k: int):
    """A level of uniform blocks merged in batched BLAS, pairs WA[t], WB[t]: ``_joined``."""
    idx = np.arange(WA.shape[0])
    return _joined(WA, idx, WB, idx, pos_a, pos_b, m, k)


def _edges(h: int, w: int) -> dict:
    """Index ranges of a uniform block's edges in the order L, R, T, B."""
    return {"L": np.arange(h), "R": h + np.arange(h), "T": 2 * h + np.arange(w), "B": 2 * h + w + np.arange(w)}


def _merge_plan(ea: dict, eb: dict, na: int, nb: int, horizontal: bool):
    """Where the nodes of blocks A and B (edges ea, eb; T or R may be gone) go in their merge: the
    shared edge first (A's right = B's left, or A's bottom = B's top), then the new edges.
    Returns pos_a (na,), pos_b (nb,), the merged size m, the shared count k and the new edges."""
    if horizontal:
        shared = (ea["R"], eb["L"])
        parts = {"L": [("a", ea["L"])], "R": [("b", eb["R"])], "T": [("a", ea["T"]), ("b", eb["T"])],
                 "B": [("a", ea["B"]), ("b", eb["B"])]}
    else:
        shared = (ea["B"], eb["T"])
        parts = {"L": [("a", ea["L"]), ("b", eb["L"])], "R": [("a", ea["R"]), ("b", eb["R"])],
                 "T": [("a", ea["T"])], "B": [("b", eb["B"])]}
    pos_a = np.full(na, -1, dtype=np.int64)
    pos_b = np.full(nb, -1, dtype=np.int64)
    k = len(shared[0])
    pos_a[shared[0]] = np.arange(k)
    pos_b[shared[1]] = np.arange(k)
    m, edges = k, {}
    for side in "LRTB":
        if any(idx is None for _, idx in parts[side]):
            edges[side] = None
            continue
        start = m
        for who, idx in parts[side]:
            (pos_a if who == "a" else pos_b)[idx] = m + np.arange(len(idx))
            m += len(idx)
        edges[side] = np.arange(start - k, m - k)
    assert (pos_a >= 0).all() and (pos_b >= 0).all()
    return pos_a, pos_b, m, k, edges


def _direction(h: int, w: int, Pr: int, Pc: int) -> bool:
    """True: merge side by side (doubles the width)."""
    return Pr == 1 or (Pc > 1 and w <= h)


def _phase_a(Gp, g_row, g_col, sr, sc):
    """Leaves and the merges of uniform blocks, a level at a time for the whole stack: the small
    blocks in lanes (``engines.dissection_lanes``), numbered in merge order, the larger ones in
    batched BLAS, the two halves of the blocks (in merge order) being the pairs' two sides."""
    T, Mp, Np = Gp.shape
    h, w = sr, sc
    pos_a = np.empty((h, w + 1), dtype=np.int64)
    pos_b = np.empty((h + 1, w), dtype=np.int64)
    inner = [("a", i, j) for i in range(h) for j in range(1, w)] + \
            [("b", i, j) for i in range(1, h) for j in range(w)]
    edge = [("a", i, 0) for i in range(h)] + [("a", i, w) for i in range(h)] + \
           [("b", 0, j) for j in range(w)] + [("b", h, j) for j in range(w)]
    for x, (kind, i, j) in enumerate(inner + edge):
        (pos_a if kind == "a" else pos_b)[i, j] = x
    plan = []  # (side by side, block height, block width) of each level's merge
    Pr, Pc = Mp // h, Np // w
    while Pr * Pc > ALONE_BLOCKS:
        horizontal = _direction(h, w, Pr, Pc)
        plan.append((horizontal, h, w))
        Pr, Pc, h, w = (Pr, Pc // 2, h, 2 * w) if horizontal else (Pr // 2, Pc, 2 * h, w)
    natural = np.argsort(dissection_lanes.merge_order(T, Mp // sr, Np // sc, [p[0] for p in plan]))
    n = 2 * (sr + sc)
    in_lanes = 0  # the levels merged in lanes: a prefix of the plan
    while in_lanes < len(plan) and max(plan[in_lanes][1:]) < LOOP_SIDE:
        in_lanes += 1
    lanes = math.gcd(natural.size >> in_lanes, dissection_lanes.LANES)  # divides every lane level's half
    X = np.empty((natural.size // lanes, n, n, lanes))
    dissection_lanes.leaves(Gp, g_row, g_col, sr, sc, pos_a, pos_b, len(inner), natural, X, in_lanes == 0)
    blocks = None
    for level, (horizontal, bh, bw) in enumerate(plan):
        e = _edges(bh, bw)
        n = 2 * (bh + bw)
        pa, pb, m, k, _ = _merge_plan(e, e, n, n, horizontal)
        if level < in_lanes - 1:
            Y = np.empty((X.shape[0] // 2, m - k, m - k, X.shape[3]))
            dissection_lanes.merge(X, pa, pb, m, k, Y, False)
            X = Y
            continue
        if level == in_lanes - 1:  # the last level in lanes stores its blocks one after the other
            blocks = np.empty((X.shape[0] // 2 * X.shape[3], m - k, m - k))
            dissection_lanes.merge_blocks(X, pa, pb, m, k, blocks)
            continue
        if blocks is None:
            blocks = dissection_lanes.unlane(X)
        half = blocks.shape[0] // 2
        blocks = _merge_level(blocks[:half], blocks[half:], pa, pb, m, k)
    if blocks is None:
        blocks = dissection_lanes.unlane(X)
    return blocks.reshape((T, Pr, Pc) + blocks.shape[1:]), h, w


def _open_edges(W: np.ndarray, edges: dict, top: bool, right: bool):
    """Eliminate the edges of a stack of blocks (W (P, n, n), C order, idx (T,): the block of each
    tile) that lie on the array's open ends."""
    W, idx = W
    drop = [edges[s] for s, on in (("T", top), ("R", right)) if on]
    if not drop:
        return (W, idx), edges
    drop = np.concatenate(drop)
    order = list(drop)
    new = {"T": None if top else 0, "R": None if right else 0}
    for s in "LRTB":
        if (s == "T" and top) or (s == "R" and right):
            continue
        new[s] = len(order) - len(drop) + np.arange(len(edges[s]))
        order.extend(edges[s])
    pos = np.empty(len(order), dtype=np.int64)
    pos[np.array(order, dtype=np.int64)] = np.arange(len(order))
    out = _joined(W, idx, W, idx, pos, np.zeros(0, dtype=np.int64), len(order), len(drop))
    return (out, np.arange(len(idx))), new


def _merge(a, b, horizontal: bool):
    """Merge two stacks of blocks (W (T, n, n), edges), A left of or above B."""
    ((WA, ia), ea), ((WB, ib), eb) = a, b
    pa, pb, m, k, edges = _merge_plan(ea, eb, WA.shape[1], WB.shape[1], horizontal)
    return (_joined(WA, ia, WB, ib, pa, pb, m, k), np.arange(len(ia))), edges


def _terminals(W, nodes, Ra, Rb, first: int) -> np.ndarray:
    """``gth.terminal_couplings`` of the networks W (T, n, n) on their nodes ``nodes`` (in order),
    the terminals' couplings Ra (k, ra) or (T, k, ra) and Rb likewise: (T, ra, rb)."""
    T = W.shape[0]
    pos = np.full(W.shape[1], -1, dtype=np.int64)
    pos[nodes] = np.arange(len(nodes))
    Ra = np.broadcast_to(Ra, (T,) + Ra.shape[-2:])
    Rb = np.broadcast_to(Rb, (T,) + Rb.shape[-2:])
    out = np.empty((T, Ra.shape[2], Rb.shape[2]))
    gth_blas.terminal_stack(W, gth_blas.runs_of(pos), Ra, Rb, first, out, gth_blas.addresses())
    return out


def _finish(blocks: np.ndarray, h: int, w: int, g_src, r_sense: float) -> np.ndarray:
    """The merges of the last few blocks (T, Pr, Pc, n, n), one block position at a time for the
    whole stack, and the final elimination: G_non-ideal (T, Mp, Np)."""
    T, Pr, Pc, n = blocks.shape[:4]
    flat = blocks.reshape(T * Pr * Pc, n, n)
    grid = [[_open_edges((flat, np.arange(T) * Pr * Pc + p * Pc + q), _edges(h, w), p == 0, q == Pc - 1)
             for q in range(Pc)] for p in range(Pr)]
    while Pr * Pc > 1:
        if _direction(h, w, Pr, Pc):
            grid = [[_merge(row[2 * q], row[2 * q + 1], True) for q in range(Pc // 2)] for row in grid]
            Pc, w = Pc // 2, 2 * w
        else:
            grid = [[_merge(grid[2 * p][q], grid[2 * p + 1][q], False) for q in range(Pc)]
                    for p in range(Pr // 2)]
            Pr, h = Pr // 2, 2 * h
    (W, _), e = grid[0][0]  # on the row-wire nodes of column 0 (L) and the sense nodes s_j (B)
    Mp, Np = len(e["L"]), len(e["B"])
    rows = np.arange(Mp)
    if r_sense > 0:  # eliminate L and B; terminals: the sources (on L) and the senses (on B)
        k = Mp + Np
        Ra = np.zeros((k, Mp))
        Ra[rows, rows] = g_src
        Rb = np.zeros((k, Np))
        Rb[Mp + np.arange(Np), np.arange(Np)] = 1.0 / r_sense
        return _terminals(W, np.concatenate([e["L"], e["B"]]), Ra, Rb, Mp)  # [sources, senses]
    # r_sense == 0: s_j is the sense amplifier's virtual ground itself, a terminal; eliminate L
    Ra = np.zeros((Mp, Mp))
    Ra[rows, rows] = g_src
    U = np.triu(W, 1)  # the couplings are W's upper triangles
    return _terminals(W, e["L"], Ra, np.ascontiguousarray((U + U.transpose(0, 2, 1))[:, e["L"]][:, :, e["B"]]), 0)


STACK_BYTES = 16e6  # work arrays of the tiles handled at once (about 320 M N bytes per padded tile): a
# level's blocks stay in the caches between levels (64 x 64: 12 tiles at once; 1.4x the rate of 64)


def g_nonideal_stack(G: np.ndarray, circuit: CircuitParams) -> np.ndarray:
    """G_non-ideal (S) of a validated stack G (T, M, N) with r_row > 0 and r_col > 0."""
    T, M, N = G.shape
    step = max(1, int(STACK_BYTES // (320 * M * N)))
    if T > step:
        return np.concatenate([g_nonideal_stack(G[t:t + step], circuit) for t in range(0, T, step)])
    (sr, kr), (sc, kc) = padded(M), padded(N)
    Mp, Np = sr << kr, sc << kc
    g_row, g_col = 1.0 / circuit.r_row, 1.0 / circuit.r_col
    Gp = np.zeros((T, Mp, Np))
    Gp[:, Mp - M:, :N] = G
    g_src = np.full(Mp, g_row)
    g_src[Mp - M:] = 1.0 / (circuit.r_driver_rows(M) + circuit.r_row)
    blocks, h, w = _phase_a(Gp, g_row, g_col, sr, sc)
    return np.ascontiguousarray(_finish(blocks, h, w, g_src, float(circuit.r_sense))[:, Mp - M:, :N])
