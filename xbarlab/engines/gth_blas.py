"""The GTH merges and the final elimination of ``engines.dissection``, each network of a stack
assembled, eliminated and stored by one compiled loop that calls BLAS itself.

The merges of the last levels are many small eliminations (16 to 64 of 100 to 400 nodes, per
tile); driven from Python, each network costs a dozen calls (assembly, factorization, ``dtrsm``,
``dsyrk``, mirroring), and their glue and scattered copies took most of the time. Here one
compiled loop per level does, for each network of the stack: the assembly from its two blocks
(contiguous runs of nodes copied block by block, upper triangles only), the elimination of its
first k nodes by panels of ``PANEL`` pivots (``gth._gth_panels`` on the panel, its couplings to
every later node counted in its pivots; then ``dtrsm`` on the panel's rows and ``dsyrk`` on the
later nodes, all of non-negative operands: a right-looking blocked GTH), and the store of the kept
network. BLAS is called through scipy's ``cython_blas`` function addresses, passed in as
integers (so the compiled code can be cached: ``_call`` turns them into calls).

The final elimination (``terminal_stack``) is one more such elimination: the terminals (the
sources and the sense amplifiers) are nodes of the network, kept, and the couplings left
between the two groups are the result. It does about twice the flops of a factorization
followed by triangular solves (the form it replaced), but in ``dsyrk`` panels, which
run at several times the rate of ``dtrsm`` on these sizes (measured: the same time at 64 x 64).

Every step is the subtraction-free form of ``engines.gth``: pivots summed afresh from the
couplings, multipliers and right-hand sides >= 0 in every product.
"""

from __future__ import annotations

import functools

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import get_cython_function_address, intrinsic

from .gth import _gth_panels, _jit

PANEL = 32  # pivots per compiled GTH panel; the later nodes are updated by dtrsm + dsyrk


@intrinsic
def _call(typingctx, fn, args):
    """Call the C function at address fn (void f(void *, ...)) with args, a tuple of addresses."""
    if not isinstance(args, types.UniTuple):  # pragma: no cover - a typing error
        return None

    def codegen(context, builder, signature, llargs):
        ptr = ir.IntType(8).as_pointer()
        n = signature.args[1].count
        fnty = ir.FunctionType(ir.VoidType(), [ptr] * n)
        f = builder.inttoptr(llargs[0], fnty.as_pointer())
        builder.call(f, [builder.inttoptr(builder.extract_value(llargs[1], i), ptr) for i in range(n)])
        return context.get_dummy_value()

    return types.void(fn, args), codegen


@_jit
def _ptr(a):
    """The address of array a's first element, as int64."""
    return np.int64(a.ctypes.data)


@_jit
def _scalars(chars, ints, reals):
    """Fortran arguments by reference: one byte per char, int32 and float64 buffers."""
    c = np.empty(len(chars), dtype=np.uint8)
    for i in range(len(chars)):
        c[i] = chars[i]
    n = np.empty(len(ints), dtype=np.int32)
    for i in range(len(ints)):
        n[i] = ints[i]
    x = np.empty(len(reals))
    for i in range(len(reals)):
        x[i] = reals[i]
    return c, n, x


@_jit
def _alive(c, i, x):
    """A use of the argument buffers after the BLAS call, so that they are not freed before it
    (a compiled function releases an array after its last use, and ``_call`` sees addresses)."""
    return c[0] + i[0] + x[0]


@_jit
def _trsm(fn, m, n, a, lda, b, ldb):
    """dtrsm('R', 'L', 'T', 'U', m, n, 1, a, lda, b, ldb): B := B A^-T, A unit lower triangular
    (Fortran order; a and b are addresses)."""
    c, i, x = _scalars((82, 76, 84, 85), (m, n, lda, ldb), (1.0,))
    C, I, X = _ptr(c), _ptr(i), _ptr(x)
    _call(fn[0], (C, C + 1, C + 2, C + 3, I, I + 4, X, a, I + 8, b, I + 12))
    return _alive(c, i, x)


@_jit
def _syrk(fn, n, k, a, lda, c_, ldc):
    """dsyrk('L', 'N', n, k, 1, a, lda, 1, c, ldc): C += A A^T on C's lower triangle (Fortran)."""
    c, i, x = _scalars((76, 78), (n, k, lda, ldc), (1.0,))
    C, I, X = _ptr(c), _ptr(i), _ptr(x)
    _call(fn[1], (C, C + 1, I, I + 4, X, a, I + 8, X, c_, I + 12))
    return _alive(c, i, x)


@_jit
def _sum(x, a, b):
    """x[a:b].sum() with four partial sums (vectorizable; all terms >= 0)."""
    s0 = s1 = s2 = s3 = 0.0
    j = a
    while j + 4 <= b:
        s0 += x[j]
        s1 += x[j + 1]
        s2 += x[j + 2]
        s3 += x[j + 3]
        j += 4
    while j < b:
        s0 += x[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


@_jit
def _eliminate(M, o, k, panel, d, fn):
    """Eliminate the first k nodes of M (m, m), C order, upper triangle read and written, o (m,)
    each node's coupling outside M (updated for the later nodes): pivots into d (k,), the kept
    network in M[k:, k:]'s upper triangle (the rows p < k are left with scaled multipliers).
    A panel updates the later nodes only up to the last one its rows couple to (the terminals of
    ``terminal_stack`` are ordered so that the others, still uncoupled, come last)."""
    m = M.shape[0]
    base = _ptr(M)
    P = np.empty((panel, panel))
    oe = np.empty(panel)
    zo = np.empty(panel)
    for p0 in range(0, k, panel):
        p1 = min(p0 + panel, k)
        nb = p1 - p0
        end = p1  # the panel's rows are zero from column ``end`` on: those nodes are not updated
        for q in range(nb):
            j = m
            while j > end and M[p0 + q, j - 1] == 0.0:
                j -= 1
            end = j
        rest = end - p1
        for q in range(nb):
            oe[q] = o[p0 + q] + _sum(M[p0 + q], p1, end)
            for j in range(q + 1, nb):
                P[q, j] = M[p0 + q, p0 + j]
        d[p0:p1] = _gth_panels(P[:nb, :nb], oe[:nb], nb)
        for q in range(nb):  # L^-1 o: forward substitution, non-negative terms
            s = o[p0 + q]
            for u in range(q):
                s += P[u, q] * zo[u]
            zo[q] = s
        for q in range(nb):
            for j in range(q + 1, nb):
                P[q, j] = -P[q, j]
        if rest > 0:
            rows = base + 8 * (p0 * m + p1)
            _trsm(fn, rest, nb, _ptr(P), panel, rows, m)  # (L^-1 W_pr)^T in place
            for q in range(nb):
                sc = 1.0 / np.sqrt(d[p0 + q])
                zo[q] *= sc
                for j in range(p1, end):
                    M[p0 + q, j] *= sc
            _syrk(fn, rest, nb, rows, m, base + 8 * (p1 * m + p1), m)  # W_rr + Y^T Y, upper in C order
            for q in range(nb):
                z = zo[q]
                if z != 0.0:
                    for j in range(p1, end):
                        o[j] += M[p0 + q, j] * z


@_jit
def _add_runs(W, runs, M):
    """Add the network W (n, n), its upper triangle, to the upper triangle of M, W's nodes
    sa .. sa + len - 1 of each run (sa, da, len) at M's nodes da .. da + len - 1 (the runs'
    sources are disjoint, and so are their targets)."""
    for a in range(runs.shape[0]):
        sa, da, la = runs[a, 0], runs[a, 1], runs[a, 2]
        for b in range(runs.shape[0]):
            sb, db, lb = runs[b, 0], runs[b, 1], runs[b, 2]
            if a == b:
                for i in range(la):
                    for j in range(i + 1, la):
                        M[da + i, da + j] += W[sa + i, sa + j]
            elif da < db and sa < sb:
                for i in range(la):
                    for j in range(lb):
                        M[da + i, db + j] += W[sa + i, sb + j]
            elif da < db:  # W's couplings of this pair are in its other triangle
                for j in range(lb):
                    for i in range(la):
                        M[da + i, db + j] += W[sb + j, sa + i]


@_jit
def _assemble(WA, runs_a, WB, runs_b, M):
    m = M.shape[0]
    for i in range(m):
        M[i, i:] = 0.0
    _add_runs(WA, runs_a, M)
    if runs_b.shape[0]:
        _add_runs(WB, runs_b, M)


@_jit
def merge_stack(WA, ia, runs_a, WB, ib, runs_b, k, out, fn, panel=PANEL):
    """Each network t of the stack joined from blocks WA[ia[t]] and WB[ib[t]] (their upper
    triangles, placed by their runs), with its first k nodes eliminated: the upper triangle of
    out (T, m - k, m - k), zero diagonal (the lower triangle is not written). With no runs_b,
    WA[ia[t]] alone (its nodes reordered)."""
    r = out.shape[1]
    m = r + k
    M = np.empty((m, m))
    o = np.zeros(m)
    d = np.empty(max(k, 1))
    for t in range(out.shape[0]):
        _assemble(WA[ia[t]], runs_a, WB[ib[t]], runs_b, M)
        o[:] = 0.0
        _eliminate(M, o, k, panel, d, fn)
        Y = out[t]
        for i in range(r):
            Y[i, i] = 0.0
            for j in range(i + 1, r):
                Y[i, j] = M[k + i, k + j]


@_jit
def terminal_stack(W, runs, Ra, Rb, k, out, fn, panel=PANEL):
    """The couplings (T, ra, rb) left between two groups of terminals once the first k nodes of
    each network are eliminated: W[t] (C order, upper triangle), its nodes placed by runs (the k
    nodes first; kept nodes of W, if any, after the terminals), group a coupled to the k nodes
    by Ra (T, k, ra) >= 0 and group b by Rb (T, k, rb) >= 0. The terminals are nodes of the
    network (k, then a, then b), so that this is one more GTH elimination: its kept block of
    couplings between a and b, the only one stored. Where terminal c of each group couples to
    one node, the groups' order following their nodes' (the dissection's sources and senses),
    each panel of pivots reaches only the terminals of its own and earlier nodes (``_eliminate``
    skips the rest): half the flops of the dense elimination."""
    ra, rb = out.shape[1], out.shape[2]
    m = k + ra + rb
    M = np.empty((m, m))
    o = np.zeros(m)
    d = np.empty(max(k, 1))
    for t in range(out.shape[0]):
        _assemble(W[t], runs, W[t], runs[:0], M)
        for i in range(k):
            for c in range(ra):
                M[i, k + c] += Ra[t, i, c]
            for c in range(rb):
                M[i, k + ra + c] += Rb[t, i, c]
        o[:] = 0.0
        _eliminate(M, o, k, panel, d, fn)
        for i in range(ra):
            for j in range(rb):
                out[t, i, j] = M[k + i, k + ra + j]


def runs_of(pos: np.ndarray) -> np.ndarray:
    """The runs (source, target, length) of a placement pos (node i at pos[i], left out where
    pos[i] < 0): maximal ranges of consecutive nodes placed consecutively."""
    pos = np.asarray(pos, dtype=np.int64)
    src = np.flatnonzero(pos >= 0)
    if src.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    dst = pos[src]
    cut = np.flatnonzero((np.diff(src) != 1) | (np.diff(dst) != 1)) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [src.size]])
    return np.stack([src[starts], dst[starts], ends - starts], axis=1).astype(np.int64)


NO_RUNS = np.zeros((0, 3), dtype=np.int64)


@functools.cache
def addresses() -> np.ndarray:
    """The addresses of dtrsm and dsyrk (scipy.linalg.cython_blas), for the kernels above (looked
    up once per process)."""
    return np.array([get_cython_function_address("scipy.linalg.cython_blas", f)
                     for f in ("dtrsm", "dsyrk")], dtype=np.uint64)
