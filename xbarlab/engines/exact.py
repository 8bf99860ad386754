"""Exact sparse nodal analysis of the crossbar (scipy SuperLU).

Nodes joined by zero-ohm wires are merged (see ``topology``), nodes held by a
source are eliminated, and the Laplacian of the remaining nodes is factorized
once and solved for every input vector. No approximation is made beyond
floating-point rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from ..params import CircuitParams
from ..topology import Topology, build
from .result import SolveResult


@dataclass(frozen=True)
class _System:
    topo: Topology
    free: np.ndarray  # component ids that are unknown
    pos: np.ndarray  # component id -> position among unknowns (-1 if fixed)
    L_ff: sp.csc_matrix
    L_fs: sp.csr_matrix  # coupling to fixed values [gnd, src_0..src_{M-1}]
    fixed_of_comp: np.ndarray  # component id -> column in fixed values (-1 if free)
    cell_a: np.ndarray
    cell_b: np.ndarray
    edges: tuple  # (comp1, comp2, conductance) of every conducting element


def _system(G: np.ndarray, circuit: CircuitParams) -> _System:
    m, n = G.shape
    topo = build(m, n, circuit)
    idx = topo.index
    comp = topo.comp
    nc = topo.n_comp
    # Fixed components: ground and the sense ammeters (0 V), and each row source.
    fixed_of_comp = np.full(nc, -1, dtype=np.int64)
    fixed_of_comp[comp[idx.gnd]] = 0
    fixed_of_comp[comp[idx.msense(np.arange(n))]] = 0
    src_comp = comp[idx.src(np.arange(m))]
    if np.any(fixed_of_comp[src_comp] >= 0) or len(set(src_comp.tolist())) != m:
        raise ValueError("row sources are shorted to ground or to each other; check the circuit")
    fixed_of_comp[src_comp] = 1 + np.arange(m)
    free = np.flatnonzero(fixed_of_comp < 0)
    pos = np.full(nc, -1, dtype=np.int64)
    pos[free] = np.arange(len(free))

    w = topo.wires
    cond = w.ohm > 0
    ii, jj = np.nonzero(G > 0)
    e1 = np.concatenate([comp[w.n1[cond]], comp[idx.a(ii, jj)]])
    e2 = np.concatenate([comp[w.n2[cond]], comp[idx.b(ii, jj)]])
    g = np.concatenate([1.0 / w.ohm[cond], G[ii, jj]])
    keep = e1 != e2
    e1, e2, g = e1[keep], e2[keep], g[keep]
    # Laplacian over components.
    L = sp.coo_matrix(
        (np.concatenate([g, g, -g, -g]), (np.concatenate([e1, e2, e1, e2]), np.concatenate([e1, e2, e2, e1]))),
        shape=(nc, nc),
    ).tocsr()
    L_ff = L[free][:, free].tocsc()
    fixed_cols = np.flatnonzero(fixed_of_comp >= 0)
    S = sp.coo_matrix(
        (np.ones(len(fixed_cols)), (fixed_cols, fixed_of_comp[fixed_cols])), shape=(nc, m + 1)
    ).tocsr()
    L_fs = (L[free] @ S).tocsr()
    all_a = comp[idx.a(*np.indices((m, n)))]
    all_b = comp[idx.b(*np.indices((m, n)))]
    return _System(topo, free, pos, L_ff, L_fs, fixed_of_comp, all_a, all_b, (e1, e2, g))


REFINE_STEPS = 2


def _kcl_residual(sysm: _System, vc: np.ndarray) -> np.ndarray:
    """Net current (A) into each free component, summed element by element in
    extended precision: (n_free, B). Zero for the exact solution."""
    e1, e2, g = sysm.edges
    v = vc.T.astype(np.longdouble)  # (n_comp, B)
    i_e = g.astype(np.longdouble)[:, None] * (v[e1] - v[e2])  # current e1 -> e2
    net = np.zeros_like(v)
    np.add.at(net, e2, i_e)
    np.subtract.at(net, e1, i_e)
    return net[sysm.free].astype(float)


def _comp_voltages(sysm: _System, V2: np.ndarray) -> np.ndarray:
    """Voltage of every component for each input row of V2 (B, M) -> (B, n_comp).

    One sparse LU, then ``REFINE_STEPS`` rounds of iterative refinement with
    the residual taken from the element list in extended precision. This
    removes the error of the assembled matrix itself: a 1e-7 S cell stamped
    onto a node that also carries a 1e2 S wire keeps only 9 of its digits in
    the diagonal entry, which limits plain nodal analysis (ngspice included)
    to about 1e-10 relative in such circuits.
    """
    B, m = V2.shape
    fixed_vals = np.concatenate([np.zeros((B, 1)), V2], axis=1)  # (B, m+1)
    vc = np.empty((B, sysm.topo.n_comp))
    fixed = sysm.fixed_of_comp >= 0
    vc[:, fixed] = fixed_vals[:, sysm.fixed_of_comp[fixed]]
    if len(sysm.free):
        rhs = -(sysm.L_fs @ fixed_vals.T)  # (n_free, B)
        lu = splu(sysm.L_ff, permc_spec="MMD_AT_PLUS_A")
        vc[:, sysm.free] = lu.solve(np.asarray(rhs, dtype=float)).T
        for _ in range(REFINE_STEPS):
            vc[:, sysm.free] += lu.solve(_kcl_residual(sysm, vc)).T
    return vc


def _sense_currents(sysm: _System, vc: np.ndarray, G: np.ndarray, v_row: np.ndarray,
                    circuit: CircuitParams) -> np.ndarray:
    """Output currents (B, N): the current through the last resistor into the virtual ground.

    Not the column sum of G (v_row - v_col), which cancels when the cells'
    voltages nearly balance (high wire or sense resistance). With r_sense > 0
    it is v(s_j) / r_sense; with r_sense = 0 the sense node is ground, and the
    current is v(b(M-1, j)) / r_col through the last column segment; with
    r_col = 0 too the whole column is ground and the cells feed it directly.
    """
    idx = sysm.topo.index
    comp = sysm.topo.comp
    m, n = G.shape
    cols = np.arange(n)
    if circuit.r_sense > 0:
        return vc[:, comp[idx.s(cols)]] / circuit.r_sense
    if circuit.r_col > 0:
        return vc[:, comp[idx.b(m - 1, cols)]] / circuit.r_col
    return (G * v_row).sum(axis=1)  # column nodes are ground: v_col = 0


def solve(G: np.ndarray, V: np.ndarray, circuit: CircuitParams) -> SolveResult:
    """Solve validated G (M, N) and V (M,) or (B, M); see ``xbarlab.solve``."""
    sysm = _system(G, circuit)
    single = V.ndim == 1
    V2 = np.atleast_2d(V)
    vc = _comp_voltages(sysm, V2)
    v_row = vc[:, sysm.cell_a]
    v_col = vc[:, sysm.cell_b]
    i_cell = G * (v_row - v_col)
    i_out = _sense_currents(sysm, vc, G, v_row, circuit)
    if single:
        v_row, v_col, i_cell, i_out = v_row[0], v_col[0], i_cell[0], i_out[0]
    return SolveResult(v_row=v_row, v_col=v_col, i_cell=i_cell, i_out=i_out, engine="exact")


def g_nonideal(G: np.ndarray, circuit: CircuitParams) -> np.ndarray:
    """G_non-ideal by superposition: one solve per row source (unit volt)."""
    m = G.shape[0]
    return solve(G, np.eye(m), circuit).i_out
