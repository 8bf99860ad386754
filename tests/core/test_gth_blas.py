"""The compiled merges of ``engines.gth_blas`` and the tile-by-tile program of
``engines.dissection_finish``: against the textbook Schur complement (numpy) on random networks,
reading only the upper triangles they are given (the rest is NaN), with one and several panels of
pivots, and the work buffer's parts never shared by two results alive at once."""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.engines import dissection_finish, gth_blas

from test_fast_square_gth import network, rel, textbook  # tests/core/test_fast_square_gth.py


def upper_only(W):
    """W with NaN below and on its diagonals: a kernel that reads them fails the comparisons."""
    W = W.copy()
    n = W.shape[-1]
    W[..., np.tril_indices(n)[0], np.tril_indices(n)[1]] = np.nan
    return W


@pytest.mark.parametrize("n,k,panel", [(30, 7, 32), (90, 70, 32), (90, 70, 16), (40, 37, 8)])
def test_merge_of_two_blocks_matches_the_textbook_schur_complement(n, k, panel):
    """Two blocks of one network (its nodes split, the shared ones in both, couplings among them
    split in two halves), placed in a shuffled order, joined and k nodes eliminated."""
    rng = np.random.default_rng(n + k + panel)
    W = np.stack([network(rng, n) for _ in range(3)])
    order = rng.permutation(n)  # order[x]: the node of the merged network at place x
    split = rng.permutation(n)
    a_nodes, b_nodes = np.sort(split[:n // 2 + 5]), np.sort(split[n // 2 - 5:])
    shared = np.intersect1d(a_nodes, b_nodes)
    place = np.empty(n, dtype=np.int64)
    place[order] = np.arange(n)
    WA = W[:, a_nodes][:, :, a_nodes].copy()
    WB = W[:, b_nodes][:, :, b_nodes].copy()
    inA, inB = np.isin(a_nodes, shared), np.isin(b_nodes, shared)
    WA[:, inA[:, None] & inA[None, :]] *= 0.5  # the shared nodes' couplings, half in each block
    WB[:, inB[:, None] & inB[None, :]] *= 0.5
    # couplings between A-only and B-only nodes are in neither block: none in the reference
    only_a, only_b = np.setdiff1d(a_nodes, shared), np.setdiff1d(b_nodes, shared)
    W[:, only_a[:, None], only_b[None, :]] = 0.0
    W[:, only_b[:, None], only_a[None, :]] = 0.0
    ref = np.stack([textbook(w[order][:, order], k) for w in W])
    out = np.empty((3, n - k, n - k))
    idx = np.arange(3)
    gth_blas.merge_stack(upper_only(WA), idx, gth_blas.runs_of(place[a_nodes]), upper_only(WB), idx,
                         gth_blas.runs_of(place[b_nodes]), k, out, gth_blas.addresses(), panel)
    up = np.triu_indices(n - k, 1)
    assert rel(out[:, up[0], up[1]], ref[:, up[0], up[1]]) <= 1e-12
    assert not np.diagonal(out, axis1=1, axis2=2).any()


@pytest.mark.parametrize("k,kept,panel", [(20, 0, 32), (50, 0, 16), (24, 6, 8)])
def test_terminals_as_kept_nodes_match_the_textbook_schur_complement(k, kept, panel):
    """Every one of k nodes eliminated (and ``kept`` nodes of W placed after the terminals, as the
    ideal-sense case places the sense nodes): the couplings between two groups of terminals."""
    rng = np.random.default_rng(k + kept)
    ra, rb = 5, 4 + kept
    n = k + kept
    W = np.stack([network(rng, n) for _ in range(2)])
    Ra = rng.uniform(0.0, 1.0, (2, k, ra)) * (rng.random((2, k, ra)) < 0.5)
    Rb = rng.uniform(0.0, 1.0, (2, k, rb))
    Rb[:, :, rb - kept:] = 0.0  # the kept nodes' couplings come from W
    m = k + ra + rb
    full = np.zeros((2, m, m))
    full[:, :k, :k] = W[:, :k, :k]
    full[:, :k, k:k + ra] = Ra
    full[:, :k, k + ra:] = Rb
    full[:, :k, m - kept:] = W[:, :k, k:]
    full[:, m - kept:, m - kept:] = W[:, k:, k:]
    full = np.triu(full, 1) + np.swapaxes(np.triu(full, 1), 1, 2)
    ref = np.stack([textbook(f, k)[:ra, ra:] for f in full])
    pos = np.concatenate([np.arange(k), m - kept + np.arange(kept)])
    out = np.empty((2, ra, rb))
    gth_blas.terminal_stack(upper_only(W), gth_blas.runs_of(pos), Ra, Rb, k, out, gth_blas.addresses(), panel)
    assert rel(out, ref) <= 1e-12


def test_runs_of_skips_left_out_nodes_and_breaks_at_jumps():
    runs = gth_blas.runs_of(np.array([4, 5, 6, -1, 7, 0, 1, 9]))
    assert runs.tolist() == [[0, 4, 3], [4, 7, 1], [5, 0, 2], [7, 9, 1]]
    assert gth_blas.runs_of(np.array([-1, -1])).shape == (0, 3)


@pytest.mark.parametrize("h,w,Pr,Pc", [(16, 16, 4, 4), (8, 16, 2, 4), (32, 16, 4, 2), (6, 6, 1, 2)])
def test_program_never_overwrites_a_result_still_to_be_read(h, w, Pr, Pc):
    """Each step's part of the work buffer is disjoint from every result that is still to be read
    (its own sources included), and inside the buffer."""
    steps, runs, offsets, size, _ = dissection_finish._program(h, w, Pr, Pc)
    last_read = {}
    for s, row in enumerate(steps):
        for src in {int(row[0]), int(row[1])}:
            if src >= 0:
                last_read[src] = s
    for s, row in enumerate(steps[:-1]):
        lo, hi = offsets[s], offsets[s] + row[7] ** 2
        assert 0 <= lo and hi <= size
        for u in range(s):
            if last_read.get(u, -1) >= s:  # u is alive while s is written
                assert hi <= offsets[u] or offsets[u] + steps[u, 7] ** 2 <= lo
    assert offsets[-1] == -1 and runs.shape[1] == 3
