"""The last merges of ``engines.dissection``, tile by tile, and the final elimination.

When a tile is down to a few blocks (``dissection.ALONE_BLOCKS``), its blocks differ (those on
the array's open top and right ends lose those edges first) and each merge is one network per
tile. The whole sequence of these eliminations is planned once per block layout
(``_program``: for each step, its one or two sources, their runs of nodes, the count of nodes
eliminated, where its result goes) and one compiled loop (``_run``) carries it out for one tile
after the other, so that a tile's networks stay in the caches from one merge to the next and no
Python runs between them. Each step is ``gth_blas``' assembly and GTH elimination; the results
are upper triangles, in one work buffer whose parts are reused once read (``_Buffer``).
"""

from __future__ import annotations

import functools

import numpy as np

from . import gth_blas
from .gth import _jit


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


def _open_plan(edges: dict, top: bool, right: bool):
    """The placement that puts a block's edges on the array's open ends (T if top, R if right)
    first, to be eliminated: (pos, count eliminated, new edges), or None if there are none."""
    drop = [edges[s] for s, on in (("T", top), ("R", right)) if on]
    if not drop:
        return None
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
    return pos, len(drop), new


class _Buffer:
    """Offsets of the steps' results in one flat work buffer: first fit among the parts freed
    (adjacent free parts joined), else at the end."""

    def __init__(self):
        self.free, self.size = [], 0

    def take(self, n: int) -> int:
        for i, (at, size) in enumerate(self.free):
            if size >= n:
                self.free[i] = (at + n, size - n)
                return at
        self.size += n
        return self.size - n

    def give(self, at: int, n: int) -> None:
        parts = sorted(self.free + [(at, n)])
        self.free = []
        for a, s in parts:
            if self.free and self.free[-1][0] + self.free[-1][1] == a:
                self.free[-1] = (self.free[-1][0], self.free[-1][1] + s)
            else:
                self.free.append((a, s))


@functools.lru_cache(maxsize=64)
def _program(h: int, w: int, Pr: int, Pc: int):
    """The last merges of a tile of Pr x Pc blocks of h x w cells: steps (S, 8) int64 (source a,
    source b: a step's number, or -1 - p for the tile's block p; their runs runs[a0:a1], runs[b0:b1];
    the count k eliminated; the result's size r), the runs, each step's offset in the work buffer
    (-1: the last, the result), the buffer's size and the last network's edges."""
    steps, runs, nruns = [], [], [0]
    buf, at = _Buffer(), {}

    def step(src_a, pos_a, src_b, pos_b, m: int, k: int) -> int:
        ra = gth_blas.runs_of(pos_a)
        rb = gth_blas.runs_of(pos_b) if pos_b is not None else gth_blas.NO_RUNS
        a0 = nruns[0]
        runs.extend([ra, rb])
        nruns[0] += len(ra) + len(rb)
        steps.append((src_a, src_b, a0, a0 + len(ra), a0 + len(ra), nruns[0], k, m - k))
        s = len(steps) - 1
        at[s] = buf.take((m - k) ** 2)
        for src in {src_a, src_b} - {None}:
            if src >= 0:
                buf.give(at[src], steps[src][7] ** 2)
        return s

    n = 2 * (h + w)
    grid = []
    for p in range(Pr):
        row = []
        for q in range(Pc):
            src, e, size = -1 - (p * Pc + q), _edges(h, w), n
            plan = _open_plan(e, p == 0, q == Pc - 1)
            if plan is not None:
                pos, k, e = plan
                src, size = step(src, pos, None, None, n, k), n - k
            row.append((src, e, size))
        grid.append(row)

    def merge(a, b, horizontal: bool):
        (sa, ea, na), (sb, eb, nb) = a, b
        pa, pb, m, k, edges = _merge_plan(ea, eb, na, nb, horizontal)
        return step(sa, pa, sb, pb, m, k), edges, m - k

    while Pr * Pc > 1:
        if _direction(h, w, Pr, Pc):
            grid = [[merge(row[2 * q], row[2 * q + 1], True) for q in range(Pc // 2)] for row in grid]
            Pc, w = Pc // 2, 2 * w
        else:
            grid = [[merge(grid[2 * p][q], grid[2 * p + 1][q], False) for q in range(Pc)]
                    for p in range(Pr // 2)]
            Pr, h = Pr // 2, 2 * h
    offsets = np.array([at[s] for s in range(len(steps))], dtype=np.int64)
    offsets[-1] = -1
    steps = np.array([[s[0] if v is None else v for v in s] for s in steps], dtype=np.int64)
    runs = np.concatenate(runs).astype(np.int64)
    for x in (steps, runs, offsets):
        x.setflags(write=False)
    return steps, runs, offsets, max(buf.size, 1), grid[0][0][1]


@_jit
def _source(blocks, first, buf, offsets, steps, src):
    if src < 0:
        return blocks[first - 1 - src]
    r = steps[src, 7]
    return buf[offsets[src]:offsets[src] + r * r].reshape((r, r))


@_jit
def _run(blocks, npos, steps, runs, offsets, size, out, fn, panel):
    """The program's steps for each tile t (its blocks blocks[t npos:(t + 1) npos], C order, upper
    triangles): the last step's network into out[t] (upper triangle, zero diagonal)."""
    mmax = 1
    for s in range(steps.shape[0]):
        mmax = max(mmax, steps[s, 6] + steps[s, 7])
    Mflat = np.empty(mmax * mmax)
    o = np.zeros(mmax)
    d = np.empty(mmax)
    buf = np.empty(size)
    last = steps.shape[0] - 1
    for t in range(out.shape[0]):
        for s in range(steps.shape[0]):
            k, r = steps[s, 6], steps[s, 7]
            m = k + r
            M = Mflat[:m * m].reshape((m, m))
            WA = _source(blocks, t * npos, buf, offsets, steps, steps[s, 0])
            WB = _source(blocks, t * npos, buf, offsets, steps, steps[s, 1])  # = WA if it has no runs
            gth_blas._assemble(WA, runs[steps[s, 2]:steps[s, 3]], WB, runs[steps[s, 4]:steps[s, 5]], M)
            o[:m] = 0.0
            gth_blas._eliminate(M, o[:m], k, panel, d, fn)
            Y = out[t] if s == last else buf[offsets[s]:offsets[s] + r * r].reshape((r, r))
            for i in range(r):
                Y[i, i] = 0.0
                for j in range(i + 1, r):
                    Y[i, j] = M[k + i, k + j]


def _terminals(W, pos, k: int, Ra, Rb) -> np.ndarray:
    """``gth_blas.terminal_stack`` of the networks W (T, n, n) placed by pos (their k nodes to
    eliminate first), the terminals' couplings Ra (k, ra) and Rb (k, rb): (T, ra, rb)."""
    T = W.shape[0]
    out = np.empty((T, Ra.shape[1], Rb.shape[1]))
    gth_blas.terminal_stack(W, gth_blas.runs_of(pos), np.broadcast_to(Ra, (T,) + Ra.shape),
                            np.broadcast_to(Rb, (T,) + Rb.shape), k, out, gth_blas.addresses())
    return out


def finish(blocks: np.ndarray, h: int, w: int, g_src, r_sense: float) -> np.ndarray:
    """The merges of the last few blocks (T, Pr, Pc, n, n) (upper triangles), tile by tile, and
    the final elimination: G_non-ideal (T, Mp, Np), the couplings left between the sources and
    the senses."""
    T, Pr, Pc, n = blocks.shape[:4]
    steps, runs, offsets, size, e = _program(h, w, Pr, Pc)  # e: L (row wires of column 0), B (senses)
    Mp, Np = len(e["L"]), len(e["B"])
    W = np.empty((T, steps[-1, 7], steps[-1, 7]))
    _run(np.ascontiguousarray(blocks).reshape(T * Pr * Pc, n, n), Pr * Pc, steps, runs, offsets, size, W,
         gth_blas.addresses(), gth_blas.PANEL)
    pos = np.empty(W.shape[1], dtype=np.int64)
    if r_sense > 0:  # eliminate L and B; terminals: the sources (on L) and the senses (on B)
        pos[e["L"]] = np.arange(Mp)
        pos[e["B"]] = Mp + np.arange(Np)
        Ra = np.zeros((Mp + Np, Mp))
        Ra[np.arange(Mp), np.arange(Mp)] = g_src
        Rb = np.zeros((Mp + Np, Np))
        Rb[Mp + np.arange(Np), np.arange(Np)] = 1.0 / r_sense
        return _terminals(W, pos, Mp + Np, Ra, Rb)
    # r_sense == 0: s_j is the sense amplifier's virtual ground itself, a terminal: eliminate L,
    # keep the sources (after L) and the nodes s_j (after the sources)
    pos[e["L"]] = np.arange(Mp)
    pos[e["B"]] = 2 * Mp + np.arange(Np)
    return _terminals(W, pos, Mp, np.diag(np.asarray(g_src, dtype=float)), np.zeros((Mp, Np)))
