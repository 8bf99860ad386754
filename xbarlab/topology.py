"""The crossbar as a graph of nodes and two-terminal elements.

One topology feeds both the netlist writer and the exact solver, so that the
two engines cannot disagree about the circuit. Conventions (see
``netlists/README.md``): row i is driven by ``vrow{i}`` at node ``src{i}``,
through ``rdrv{i}`` to ``d{i}`` and ``rrow{i}_0`` to ``a{i}_0``; cell (i, j)
joins ``a{i}_{j}`` and ``b{i}_{j}``; column j runs down to ``s{j}`` and through
``rsense{j}`` to ``m{j}``, which the 0 V ammeter ``vsense{j}`` holds at ground.

Zero-ohm elements are ideal wires: their end nodes are merged into one
component, and no element is written for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .params import CircuitParams


@dataclass(frozen=True)
class NodeIndex:
    """Integer index of every node of an M x N crossbar.

    Order: ground, src_i, d_i, a(i,j), b(i,j), s_j, m_j. Lower indices win
    when merged nodes pick a representative name, so a net shorted to a source
    or to ground is named after it.
    """

    m: int
    n: int

    @property
    def gnd(self) -> int:
        return 0

    def src(self, i):
        return 1 + np.asarray(i)

    def d(self, i):
        return 1 + self.m + np.asarray(i)

    def a(self, i, j):
        return 1 + 2 * self.m + np.asarray(i) * self.n + np.asarray(j)

    def b(self, i, j):
        return 1 + 2 * self.m + self.m * self.n + np.asarray(i) * self.n + np.asarray(j)

    def s(self, j):
        return 1 + 2 * self.m + 2 * self.m * self.n + np.asarray(j)

    def msense(self, j):
        return 1 + 2 * self.m + 2 * self.m * self.n + self.n + np.asarray(j)

    @property
    def count(self) -> int:
        return 1 + 2 * self.m + 2 * self.m * self.n + 2 * self.n

    def names(self) -> list[str]:
        m, n = self.m, self.n
        out = ["0"]
        out += [f"src{i}" for i in range(m)]
        out += [f"d{i}" for i in range(m)]
        out += [f"a{i}_{j}" for i in range(m) for j in range(n)]
        out += [f"b{i}_{j}" for i in range(m) for j in range(n)]
        out += [f"s{j}" for j in range(n)]
        out += [f"m{j}" for j in range(n)]
        return out


@dataclass(frozen=True)
class Wires:
    """The resistive wiring (no cells) as parallel arrays; ``ohm`` may be 0."""

    kind: np.ndarray  # element-name prefix per element (str)
    label: np.ndarray  # index suffix per element (str), e.g. "3_4"
    n1: np.ndarray
    n2: np.ndarray
    ohm: np.ndarray


def wires(m: int, n: int, circuit: CircuitParams) -> Wires:
    """All driver, row, column and sense resistors of an M x N crossbar, in netlist order."""
    idx = NodeIndex(m, n)
    rd = circuit.r_driver_rows(m)
    kinds, labels, n1, n2, ohm = [], [], [], [], []

    def add(kind, lab, a, b, r):
        kinds.extend([kind] * len(a))
        labels.extend(lab)
        n1.extend(np.asarray(a).tolist())
        n2.extend(np.asarray(b).tolist())
        ohm.extend(np.broadcast_to(r, (len(a),)).tolist())

    rows = np.arange(m)
    cols = np.arange(n)
    for i in range(m):
        add("rdrv", [f"{i}"], [idx.src(i)], [idx.d(i)], rd[i])
        add("rrow", [f"{i}_0"], [idx.d(i)], [idx.a(i, 0)], circuit.r_row)
        add("rrow", [f"{i}_{j}" for j in range(1, n)], idx.a(i, cols[:-1]), idx.a(i, cols[1:]), circuit.r_row)
    for j in range(n):
        add("rcol", [f"{i}_{j}" for i in range(1, m)], idx.b(rows[:-1], j), idx.b(rows[1:], j), circuit.r_col)
        add("rcol", [f"{m}_{j}"], [idx.b(m - 1, j)], [idx.s(j)], circuit.r_col)
        add("rsense", [f"{j}"], [idx.s(j)], [idx.msense(j)], circuit.r_sense)
    return Wires(
        kind=np.array(kinds, dtype=object),
        label=np.array(labels, dtype=object),
        n1=np.array(n1, dtype=np.int64),
        n2=np.array(n2, dtype=np.int64),
        ohm=np.array(ohm, dtype=float),
    )


@dataclass(frozen=True)
class Topology:
    """Nodes, wires and the merge of nodes joined by zero-ohm wires.

    ``comp[k]`` is the component of node k; ``rep[c]`` the lowest node index
    in component c (its representative, used for naming).
    """

    index: NodeIndex
    wires: Wires
    comp: np.ndarray
    rep: np.ndarray

    @property
    def n_comp(self) -> int:
        return len(self.rep)


def build(m: int, n: int, circuit: CircuitParams) -> Topology:
    idx = NodeIndex(m, n)
    w = wires(m, n, circuit)
    zero = w.ohm == 0
    adj = coo_matrix(
        (np.ones(int(zero.sum())), (w.n1[zero], w.n2[zero])), shape=(idx.count, idx.count)
    )
    n_comp, comp = connected_components(adj, directed=False)
    rep = np.full(n_comp, idx.count, dtype=np.int64)
    np.minimum.at(rep, comp, np.arange(idx.count))
    # Relabel components in order of their representative, for determinism.
    order = np.argsort(rep)
    relabel = np.empty_like(order)
    relabel[order] = np.arange(n_comp)
    return Topology(index=idx, wires=w, comp=relabel[comp], rep=rep[order])
