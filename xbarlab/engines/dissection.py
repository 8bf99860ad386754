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
``engines.structured``; memory O(M N (M + N) / min block side), about 0.65 GB
resident at 1024 x 1024 (the whole process's peak, benchmarks/bench_g_nonideal.py's --large child).

The array is padded up to (4..7) x 2^k rows and columns: extra rows above
row 0 (cells open, each with a source of its own) and extra columns right of
the last (cells open, with their own sense): the padding only lengthens the
open ends of the wires, so the real array's G_non-ideal is unchanged. The
blocks of a level are merged all at once for the whole stack of tiles:
small ones side by side in the SIMD lanes of ``engines.dissection_lanes``
(up to 64 blocks per group, numbered so that the two blocks of each pair share a
lane), larger ones by ``engines.gth_blas`` (one compiled loop per level:
assembly, GTH panels, dtrsm and dsyrk called from the loop). Between merges a
block is the upper triangle of its couplings. The last few blocks of each tile
merge tile by tile in one compiled loop (``engines.dissection_finish``), a
block on the array's open top or right end eliminating that edge first; the
last step keeps the sources and the senses as nodes and eliminates every
other one, the couplings left between them being G_non-ideal. A stack is
taken a few tiles at a time (``STACK_BYTES``), so that a level's blocks stay
in the caches.
"""

from __future__ import annotations

import math

import numpy as np

from ..params import CircuitParams
from . import dissection_lanes, gth_blas
from .dissection_finish import _direction, _edges, _merge_plan
from .dissection_finish import finish as _finish

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
    cols, ptr = dissection_lanes.leaf_pattern(sr, sc, pos_a, pos_b, len(inner))
    dissection_lanes.leaves(Gp, g_row, g_col, sr, sc, pos_a, pos_b, len(inner), natural, X, in_lanes == 0, cols, ptr)
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


STACK_BYTES = 10.5e6  # work arrays of the tiles handled at once (about 320 M N bytes per padded tile): a
# level's blocks stay in the caches between levels (64 x 64: 8 tiles at once, measured best among 2 to 24)


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
