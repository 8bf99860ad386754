"""High-precision reference: an mpmath nodal solve of exactly the crossbar xbarlab models.

Written independently of ``xbarlab.topology`` and the engines, from the
convention in ``netlists/README.md``: row sources V_i behind r_driver (per
row if a sequence), row wire segments r_row, cells G[i, j] between a(i, j)
and b(i, j) (G = 0 is open), column segments r_col down to s_j, r_sense from
s_j to the sense amplifier's virtual ground (0 V). A zero resistance is an
ideal wire: its two nodes are merged into one.

    from mp_reference import mp_solve
    ref = mp_solve(G, V, circuit)          # dps=60 decimal digits
    ref["i_out"]                           # float64, (N,) or (B, N)

The output current of column j is formed by KCL over the column's own nodes
(b(:, j) and s_j), which touch only the column's cells, its internal column
wires and r_sense: I_j = sum_i G[i, j] (v_a(i, j) - v_b(i, j)), evaluated in
the working precision, so it holds for r_sense = 0 and r_col = 0 too.

The inputs (double-precision G, V and resistances) are taken as exact
rationals; wire conductances 1/r are formed at the working precision. The
working precision is ``dps`` plus the number of decades between the largest
and the smallest conductance in the circuit, so the reference stays accurate
to about ``dps`` digits even for circuits that double precision cannot
resolve (what the engines are measured against).

The default solver is a sparse Gaussian elimination on mpmath numbers in a
banded node order (the nodal matrix is symmetric positive definite, so no
pivoting is needed); ``method="dense"`` uses ``mpmath.matrix`` and
``mpmath.lu_solve`` instead (slow, used to cross-check the sparse one).
An 8 x 8 crossbar takes well under a second.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np


def _resistances(circuit, m: int):
    rd = circuit.r_driver
    r_drv = [float(x) for x in rd] if isinstance(rd, tuple) else [float(rd)] * m
    if len(r_drv) != m:
        raise ValueError(f"r_driver has {len(r_drv)} values but G has {m} rows")
    return float(circuit.r_row), float(circuit.r_col), float(circuit.r_sense), r_drv


class _Merge:
    """Union-find over node keys; zero-ohm wires merge their ends."""

    def __init__(self):
        self.parent = {}

    def find(self, k):
        self.parent.setdefault(k, k)
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _circuit_elements(G, r_row, r_col, r_sense, r_drv):
    """Every two-terminal element as (node1, node2, ohm or None, siemens or None), plus the node order."""
    m, n = G.shape
    els, order = [], []
    for i in range(m):
        els.append((("src", i), ("d", i), r_drv[i], None))
        els.append((("d", i), ("a", i, 0), r_row, None))
        order.append(("d", i))
        for j in range(n):
            if j > 0:
                els.append((("a", i, j - 1), ("a", i, j), r_row, None))
            order.append(("a", i, j))
        for j in range(n):
            if G[i, j] > 0:
                els.append((("a", i, j), ("b", i, j), None, float(G[i, j])))
            order.append(("b", i, j))
            nxt = ("b", i + 1, j) if i + 1 < m else ("s", j)
            els.append((("b", i, j), nxt, r_col, None))
    for j in range(n):
        els.append((("s", j), ("gnd",), r_sense, None))  # m_j is held at 0 V by the ammeter
        order.append(("s", j))
    return els, order


def _eliminate(rows: list[dict], rhs: list[list]) -> list[list]:
    """Solve the SPD system given as symmetric dict rows; Gaussian elimination in index order."""
    n = len(rows)
    for k in range(n):
        piv = rows[k][k]
        rk = [(c, a) for c, a in rows[k].items() if c > k]
        for r, a_rk in rk:
            f = a_rk / piv
            row_r = rows[r]
            for c, a in rk:
                row_r[c] = row_r.get(c, 0) - f * a
            del row_r[k]
            for b in rhs:
                b[r] -= f * b[k]
    out = []
    for b in rhs:
        x = [mpmath.mpf(0)] * n
        for k in range(n - 1, -1, -1):
            s = b[k]
            for c, a in rows[k].items():
                if c > k:
                    s -= a * x[c]
            x[k] = s / rows[k][k]
        out.append(x)
    return out


def _dense(rows: list[dict], rhs: list[list]) -> list[list]:
    n = len(rows)
    A = mpmath.matrix(n, n)
    for r, row in enumerate(rows):
        for c, a in row.items():
            A[r, c] = a
    return [list(mpmath.lu_solve(A, mpmath.matrix(b))) for b in rhs]


def _spread_decades(G, resistances) -> int:
    g = [float(x) for x in np.asarray(G, dtype=float).ravel() if x > 0]
    g += [1.0 / r for r in resistances if r > 0]
    g = [x for x in g if x > 0 and math.isfinite(x)]
    if not g:
        return 0
    return int(math.ceil(math.log10(max(g)) - math.log10(min(g)))) + 1


def mp_solve(G, V, circuit, dps: int = 60, method: str = "sparse") -> dict:
    """Nodal solve of the crossbar in mpmath at ``dps`` (+ spread) decimal digits.

    Args:
        G: cell conductances, siemens, (M, N), >= 0.
        V: row voltages, volt, (M,) or (B, M).
        circuit: an ``xbarlab.CircuitParams`` (or anything with r_row, r_col,
            r_sense, r_driver in ohm).
        dps: decimal digits of the answer's precision.
        method: ``"sparse"`` (default) or ``"dense"`` (mpmath.lu_solve).

    Returns a dict: ``i_out`` (A, float64, (N,) or (B, N)), ``v_row`` and
    ``v_col`` (V, float64, ([B,] M, N): voltages of a(i, j) and b(i, j)),
    ``i_out_mp`` (the output currents as mpmath numbers, nested lists (B, N))
    and ``dps`` (the working precision used).
    """
    G = np.asarray(G, dtype=float)
    if G.ndim != 2:
        raise ValueError(f"G must be 2-D, got shape {G.shape}")
    m, n = G.shape
    V = np.asarray(V, dtype=float)
    single = V.ndim == 1
    V2 = np.atleast_2d(V)
    if V2.shape[1] != m:
        raise ValueError(f"V has {V2.shape[1]} values per vector but G has {m} rows")
    r_row, r_col, r_sense, r_drv = _resistances(circuit, m)
    work = dps + _spread_decades(G, [r_row, r_col, r_sense, *r_drv])
    with mpmath.workdps(work):
        els, order = _circuit_elements(G, r_row, r_col, r_sense, r_drv)
        mg = _Merge()
        for a, b, ohm, _ in els:
            if ohm == 0.0:
                mg.union(a, b)
        fixed = {mg.find(("gnd",)): None}
        for i in range(m):
            root = mg.find(("src", i))
            if root in fixed:
                raise ValueError("row sources are shorted to ground or to each other")
            fixed[root] = i
        # Unknown components, ordered by the last position of any of their nodes (banded).
        last = {}
        for p, key in enumerate(order):
            root = mg.find(key)
            if root not in fixed:
                last[root] = p
        unknowns = sorted(last, key=last.get)
        pos = {root: k for k, root in enumerate(unknowns)}
        rows = [dict() for _ in unknowns]
        rhs = [[mpmath.mpf(0)] * len(unknowns) for _ in V2]
        vfix = [[mpmath.mpf(float(v)) for v in vb] for vb in V2]

        def fixed_value(root, b):
            i = fixed[root]
            return mpmath.mpf(0) if i is None else vfix[b][i]

        for a, b, ohm, sie in els:
            if ohm == 0.0:
                continue
            g = mpmath.mpf(sie) if ohm is None else 1 / mpmath.mpf(ohm)
            ra, rb = mg.find(a), mg.find(b)
            if ra == rb:
                continue
            for r1, r2 in ((ra, rb), (rb, ra)):
                if r1 not in pos:
                    continue
                k = pos[r1]
                rows[k][k] = rows[k].get(k, 0) + g
                if r2 in pos:
                    rows[k][pos[r2]] = rows[k].get(pos[r2], 0) - g
                else:
                    for bi in range(len(V2)):
                        rhs[bi][k] += g * fixed_value(r2, bi)
        x = (_dense if method == "dense" else _eliminate)(rows, rhs) if unknowns else [[] for _ in V2]

        def volt(key, bi):
            root = mg.find(key)
            return x[bi][pos[root]] if root in pos else fixed_value(root, bi)

        i_mp, v_row, v_col = [], np.empty((len(V2), m, n)), np.empty((len(V2), m, n))
        for bi in range(len(V2)):
            va = [[volt(("a", i, j), bi) for j in range(n)] for i in range(m)]
            vb = [[volt(("b", i, j), bi) for j in range(n)] for i in range(m)]
            v_row[bi] = [[float(v) for v in r] for r in va]
            v_col[bi] = [[float(v) for v in r] for r in vb]
            i_mp.append([mpmath.fsum(mpmath.mpf(float(G[i, j])) * (va[i][j] - vb[i][j]) for i in range(m))
                         for j in range(n)])
        i_out = np.array([[float(v) for v in r] for r in i_mp])
    if single:
        i_out, v_row, v_col = i_out[0], v_row[0], v_col[0]
    return {"i_out": i_out, "v_row": v_row, "v_col": v_col, "i_out_mp": i_mp, "dps": work}
