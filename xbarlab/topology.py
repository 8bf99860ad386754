"""The crossbar as a graph of nodes and two-terminal elements.

One topology feeds both the netlist writer and the exact solver, so that the
two engines cannot disagree about the circuit. Conventions (see
``netlists/README.md``): row i is driven by ``vrow{i}`` at node ``src{i}``,
through ``rdrv{i}`` to ``d{i}`` and ``rrow{i}_0`` to ``a{i}_0``; cell (i, j)
joins ``a{i}_{j}`` and ``b{i}_{j}``; column j runs down to ``s{j}`` and through
``rsense{j}`` to ``m{j}``, which the 0 V ammeter ``vsense{j}`` holds at ground.

Zero-ohm elements are ideal wires: their end nodes are merged into one
component, and no element is written for them.

The backward read (``read="backward"``, ``build_backward``) is the same array
read transposed: column j is driven at its bottom end (``vcol{j}`` at
``src{j}``, ``rdrv{j}`` to ``d{j}``, ``rcol{M}_{j}`` up to ``b{M-1}_{j}``) and
row i is sensed at its left end (``rrow{i}_0`` from ``a{i}_0`` to ``s{i}``,
``rsense{i}`` to ``m{i}``, the 0 V ammeter ``vsense{i}``). Wire elements keep
the names of the physical wires of the forward read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .params import CircuitParams


READS = ("forward", "backward")


def check_read(read) -> str:
    """``read`` if it names a read of the crossbar: ``"forward"`` (rows driven, columns sensed) or
    ``"backward"`` (the transposed read: columns driven, rows sensed); else ValueError."""
    if not isinstance(read, str) or read not in READS:
        raise ValueError(f"read must be one of {READS}, got {read!r}")
    return read


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
    def drivers(self) -> int:
        """Number of driven lines (rows in the forward read)."""
        return self.m

    @property
    def sensed(self) -> int:
        """Number of sensed lines (columns in the forward read)."""
        return self.n

    @property
    def gnd(self) -> int:
        return 0

    def src(self, k):
        return 1 + np.asarray(k)

    def d(self, k):
        return 1 + self.drivers + np.asarray(k)

    def a(self, i, j):
        return 1 + 2 * self.drivers + np.asarray(i) * self.n + np.asarray(j)

    def b(self, i, j):
        return 1 + 2 * self.drivers + self.m * self.n + np.asarray(i) * self.n + np.asarray(j)

    def s(self, k):
        return 1 + 2 * self.drivers + 2 * self.m * self.n + np.asarray(k)

    def msense(self, k):
        return 1 + 2 * self.drivers + 2 * self.m * self.n + self.sensed + np.asarray(k)

    @property
    def count(self) -> int:
        return 1 + 2 * self.drivers + 2 * self.m * self.n + 2 * self.sensed

    def names(self) -> list[str]:
        m, n = self.m, self.n
        out = ["0"]
        out += [f"src{k}" for k in range(self.drivers)]
        out += [f"d{k}" for k in range(self.drivers)]
        out += [f"a{i}_{j}" for i in range(m) for j in range(n)]
        out += [f"b{i}_{j}" for i in range(m) for j in range(n)]
        out += [f"s{k}" for k in range(self.sensed)]
        out += [f"m{k}" for k in range(self.sensed)]
        return out


@dataclass(frozen=True)
class BackwardNodeIndex(NodeIndex):
    """Node index of the backward read of an M x N crossbar: the N column drivers
    (``src{j}``, ``d{j}``) and the M row sense nodes (``s{i}``, ``m{i}``); same order
    as ``NodeIndex`` (ground, src, d, a, b, s, m)."""

    @property
    def drivers(self) -> int:
        return self.n

    @property
    def sensed(self) -> int:
        return self.m


@dataclass(frozen=True)
class Wires:
    """The resistive wiring (no cells) as parallel arrays; ``ohm`` may be 0."""

    kind: np.ndarray  # element-name prefix per element (str)
    label: np.ndarray  # index suffix per element (str), e.g. "3_4"
    n1: np.ndarray
    n2: np.ndarray
    ohm: np.ndarray


class _WireList:
    """Wires collected in netlist order (one builder for the forward and the backward read)."""

    def __init__(self) -> None:
        self.kind, self.label, self.n1, self.n2, self.ohm = [], [], [], [], []

    def add(self, kind: str, labels, a, b, r) -> None:
        """Wires ``kind{label}`` from nodes a[k] to b[k] of r ohm (a scalar or one value per wire)."""
        self.kind.extend([kind] * len(labels))
        self.label.extend(labels)
        self.n1.extend(np.asarray(a).tolist())
        self.n2.extend(np.asarray(b).tolist())
        self.ohm.extend(np.broadcast_to(r, (len(labels),)).tolist())

    def wires(self) -> Wires:
        return Wires(kind=np.array(self.kind, dtype=object), label=np.array(self.label, dtype=object),
                     n1=np.array(self.n1, dtype=np.int64), n2=np.array(self.n2, dtype=np.int64),
                     ohm=np.array(self.ohm, dtype=float))


def wires(m: int, n: int, circuit: CircuitParams) -> Wires:
    """All driver, row, column and sense resistors of an M x N crossbar, in netlist order."""
    idx = NodeIndex(m, n)
    rd = circuit.r_driver_rows(m)
    out = _WireList()
    add = out.add
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
    return out.wires()


def backward_wires(m: int, n: int, circuit: CircuitParams) -> Wires:
    """All wires of the backward read of an M x N crossbar, in netlist order: per column its
    driver (``circuit.r_driver``, one value for every column) and segments from the bottom up,
    then per row its segments from the far end to the left end and its sense resistor."""
    if isinstance(circuit.r_driver, tuple):
        raise ValueError(backward_driver_message(circuit))
    idx = BackwardNodeIndex(m, n)
    out = _WireList()

    def add(kind, lab, a, b, r):  # one wire
        out.add(kind, [lab], [a], [b], r)

    for j in range(n):
        add("rdrv", f"{j}", idx.src(j), idx.d(j), circuit.r_driver)
        add("rcol", f"{m}_{j}", idx.d(j), idx.b(m - 1, j), circuit.r_col)
        for i in range(m - 1, 0, -1):
            add("rcol", f"{i}_{j}", idx.b(i, j), idx.b(i - 1, j), circuit.r_col)
    for i in range(m):
        for j in range(n - 1, 0, -1):
            add("rrow", f"{i}_{j}", idx.a(i, j), idx.a(i, j - 1), circuit.r_row)
        add("rrow", f"{i}_0", idx.a(i, 0), idx.s(i), circuit.r_row)
        add("rsense", f"{i}", idx.s(i), idx.msense(i), circuit.r_sense)
    return out.wires()


def backward_as_forward(circuit: CircuitParams) -> CircuitParams:
    """The forward-read circuit that the backward read of ``circuit`` is, on the turned array.

    Turned by a half turn and transposed (``G'[r, c] = G[M-1-c, N-1-r]``, see
    ``xbarlab.api.turn``), the backward read is a forward read: each column,
    driven at its bottom end, becomes a row driven at its left end (r_row' =
    r_col, same r_driver), and each row, sensed at its left end, becomes a column
    sensed at its bottom end (r_col' = r_row, same r_sense). Inputs enter in
    reverse column order and outputs leave in reverse row order. A per-row
    r_driver raises ValueError (``backward_driver_message``).
    """
    if isinstance(circuit.r_driver, tuple):
        raise ValueError(backward_driver_message(circuit))
    return CircuitParams(r_row=circuit.r_col, r_col=circuit.r_row, r_sense=circuit.r_sense, r_driver=circuit.r_driver)


def backward_driver_message(circuit: CircuitParams) -> str:
    return (f"r_driver has one value per row ({len(circuit.r_driver)} values), which the backward read "
            "cannot use: there the columns are driven and the rows are sensed through r_sense; give one "
            f"r_driver in ohm for every column driver, got r_driver={circuit.r_driver!r}")


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
    return _merged(NodeIndex(m, n), wires(m, n, circuit))


def build_backward(m: int, n: int, circuit: CircuitParams) -> Topology:
    """The topology of the backward read (columns driven at their bottom end, rows sensed at their left)."""
    return _merged(BackwardNodeIndex(m, n), backward_wires(m, n, circuit))


def _merged(idx: NodeIndex, w: Wires) -> Topology:
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
