"""The subtraction-free (GTH) eliminations that the dissection is built on (``engines.gth``'s
compiled loops, ``engines.gth_blas``' panels of them with BLAS, ``engines.gth_lanes``).

* against the textbook Schur complement (numpy) on well-conditioned random networks, in all
  forms (compiled loop, one and several panels with BLAS);
* against a 50-digit mpmath Schur complement on a network where the textbook form loses digits
  (1e2 S wires around 1e-7 S cells): every coupling to 1e-13 relative.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from xbarlab.engines import gth, gth_blas, gth_lanes


def network(rng, n, density=0.5, lo=0.1, hi=1.0):
    W = rng.uniform(lo, hi, (n, n)) * (rng.random((n, n)) < density)
    W = np.triu(W, 1)
    W = W + W.T
    W[0, 1:] = W[1:, 0] = np.maximum(W[0, 1:], lo)  # connected
    return W


def textbook(W, k):
    A = np.diag(W.sum(axis=1)) - W
    S = A[k:, k:] - A[k:, :k] @ np.linalg.solve(A[:k, :k], A[:k, k:])
    out = -S
    np.fill_diagonal(out, 0.0)
    return out


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def eliminated(W, k, panel=gth_blas.PANEL):
    """The networks W (P, n, n) with their first k nodes eliminated by ``gth_blas.merge_stack``,
    symmetric with a zero diagonal."""
    P, n, _ = W.shape
    out = np.empty((P, n - k, n - k))
    idx = np.arange(P)
    gth_blas.merge_stack(W, idx, gth_blas.runs_of(np.arange(n)), W, idx, gth_blas.NO_RUNS, k, out,
                         gth_blas.addresses(), panel)
    up = np.triu(out, 1)
    return up + np.swapaxes(up, 1, 2)


@pytest.mark.parametrize("n,k", [(12, 5), (40, 30), (150, 100)])
def test_the_forms_match_the_textbook_schur_complement(n, k):
    rng = np.random.default_rng(n)
    W = np.stack([network(rng, n) for _ in range(3)])
    ref = np.stack([textbook(w, k) for w in W])
    A = W[0].copy()
    o = np.zeros(n)
    gth._gth_inplace(A, o, k)
    loop = np.triu(A[k:, k:], 1)
    assert rel(loop + loop.T, ref[0]) <= 1e-12
    assert rel(eliminated(W, k), ref) <= 1e-12
    assert rel(eliminated(W, k, panel=7), ref) <= 1e-12  # several panels


def test_every_coupling_keeps_its_digits_across_eleven_decades():
    """A ladder: a 1e2 S wire chain (the eliminated nodes) with 1e-7 .. 1e-6 S cells to the kept
    nodes. The couplings left between the kept nodes are 1e-14-sized sums through the wire; the
    GTH forms get each to 1e-13 of the 50-digit value."""
    rng = np.random.default_rng(1)
    k, r = 30, 6
    n = k + r
    W = np.zeros((n, n))
    for i in range(k - 1):
        W[i, i + 1] = W[i + 1, i] = 1e2
    for i in range(k):
        for j in rng.choice(r, 2, replace=False):
            W[i, k + j] = W[k + j, i] = 10.0 ** rng.uniform(-7, -6)
    with mpmath.workdps(50):
        A = [[mpmath.mpf(-W[i, j]) if i != j else mpmath.fsum(mpmath.mpf(x) for x in W[i]) for j in range(n)]
             for i in range(n)]
        Akk = mpmath.matrix([row[:k] for row in A[:k]])
        X = [mpmath.lu_solve(Akk, mpmath.matrix([A[c][k + j] for c in range(k)])) for j in range(r)]
        ref = np.array([[0.0 if i == j else float(-(A[k + i][k + j] - mpmath.fsum(A[k + i][c] * X[j][c]
                                                                                  for c in range(k))))
                         for j in range(r)] for i in range(r)])
    off = ~np.eye(r, dtype=bool)
    # the case is hard: the textbook form is off by about 4e-9 here (GTH: about 8e-16)
    assert np.max(np.abs(textbook(W, k) - ref)[off] / ref[off]) > 1e-11
    for panel in (32, 4):  # one panel, and several (dtrsm and dsyrk between them)
        got = eliminated(W[None], k, panel)[0]
        assert np.all(np.abs(got - ref)[off] <= 1e-13 * ref[off])


@pytest.mark.parametrize("density", [0.05, 0.2])
def test_sparse_pivot_rows_match_the_textbook_schur_complement(density):
    """Pivot rows with few non-zero couplings take ``_gth_inplace``'s index-list path."""
    rng = np.random.default_rng(int(density * 100))
    W = network(rng, 60, density=density)
    A, o = W.copy(), np.zeros(60)
    gth._gth_inplace(A, o, 40)
    loop = np.triu(A[40:, 40:], 1)
    assert rel(loop + loop.T, textbook(W, 40)) <= 1e-12


@pytest.mark.parametrize("P,n,k,density", [(3, 12, 5, 0.5), (13, 40, 24, 0.1), (9, 30, 10, 1.0)])
def test_lanes_are_bitwise_the_one_at_a_time_loop(P, n, k, density):
    """``gth_lanes`` (one pivot at a time) and ``gth_lanes_panels`` (through ``eliminate_stack``:
    four pivots' updates in one pass, a last partial panel too) eliminate 8+ networks side by side
    (a last partial group of lanes too); each lane does the operations of ``_gth_inplace`` on its
    own network, sparse pivot rows included."""
    rng = np.random.default_rng(P * n)
    W = np.stack([network(rng, n, density=density) for _ in range(P)])
    W[0, 1:, 1:] = 0.0  # a star: its pivot rows are sparser than the other lanes'
    W[0, 1:, 0] = W[0, 0, 1:] = 1.0
    got = gth_lanes.eliminate_stack(W, k)
    lanes = np.ascontiguousarray(np.moveaxis(W, 0, 2))  # (n, n, P)
    gth_lanes.gth_lanes(lanes, k, np.empty((n, P)), np.empty(n, dtype=np.int64))
    for t in range(P):
        one = np.triu(lanes[k:, k:, t], 1)
        assert np.array_equal(got[t], one + one.T)
        A, o = W[t].copy(), np.zeros(n)
        gth._gth_inplace(A, o, k)
        loop = np.triu(A[k:, k:], 1)
        assert np.array_equal(got[t], loop + loop.T)
    assert rel(got[1], textbook(W[1], k)) <= 1e-12


@pytest.mark.parametrize("n,k,density", [(9, 5, 1.0), (40, 16, 0.5), (100, 63, 0.2), (70, 70, 1.0)])
def test_panels_are_bitwise_the_one_at_a_time_loop(n, k, density):
    """``_gth_panels`` (four pivots' updates of the later rows in one pass, a last partial panel
    too) leaves the same pivots, multipliers, couplings and outside couplings as ``_gth_inplace``,
    bit for bit, sparse pivot rows included."""
    rng = np.random.default_rng(n + k)
    W = network(rng, n, density=density)
    o = rng.uniform(0.0, 1.0, n)
    A1, o1, A2, o2 = W.copy(), o.copy(), W.copy(), o.copy()
    d1 = gth._gth_inplace(A1, o1, k)
    d2 = gth._gth_panels(A2, o2, k)
    upper = np.triu_indices(n, 1)
    assert np.array_equal(d1, d2) and np.array_equal(o1, o2)
    assert np.array_equal(A1[upper], A2[upper])


@pytest.mark.parametrize("h,w", [(4, 4), (5, 7)])
def test_pattern_lanes_are_bitwise_the_lanes_on_a_grid_leaf(h, w):
    """``gth_lanes_pattern`` (the leaves: only the pivot rows' structural couplings, fill-in
    included) leaves the bits of ``gth_lanes``, open cells (zero in some lanes) included."""
    from xbarlab.engines import dissection_lanes

    rng = np.random.default_rng(h * w)
    nodes = [("a", i, j) for i in range(h) for j in range(1, w)] + [("b", i, j) for i in range(1, h) for j in range(w)]
    k = len(nodes)
    nodes += [("a", i, 0) for i in range(h)] + [("a", i, w) for i in range(h)] + \
             [("b", 0, j) for j in range(w)] + [("b", h, j) for j in range(w)]
    pos_a, pos_b = np.empty((h, w + 1), dtype=np.int64), np.empty((h + 1, w), dtype=np.int64)
    for x, (kind, i, j) in enumerate(nodes):
        (pos_a if kind == "a" else pos_b)[i, j] = x
    n, L = len(nodes), 16
    A = np.zeros((n, n, L))
    for i in range(h):
        for j in range(w):
            for u, v in ((pos_a[i, j], pos_b[i, j]), (pos_a[i, j], pos_a[i, j + 1]), (pos_b[i, j], pos_b[i + 1, j])):
                A[min(u, v), max(u, v)] = 10.0 ** rng.uniform(-7, 2, L) * (rng.random(L) > 0.2)
    for i in range(h):  # a wire segment is never open
        for j in range(w):
            for u, v in ((pos_a[i, j], pos_a[i, j + 1]), (pos_b[i, j], pos_b[i + 1, j])):
                A[min(u, v), max(u, v)] = 2.5
    one, two = A.copy(), A.copy()
    gth_lanes.gth_lanes(one, k, np.empty((n, L)), np.empty(n, dtype=np.int64))
    cols, ptr = dissection_lanes.leaf_pattern(h, w, pos_a, pos_b, k)
    gth_lanes.gth_lanes_pattern(two, k, np.empty((n, L)), cols, ptr)
    up = np.triu_indices(n, 1)
    assert np.array_equal(one[up], two[up])
