"""Exact Newton solve of crossbars of non-linear cells, on the sparse network of the linear solver.

The wires (driver, row and column segments, sense) and the node merging of
zero-ohm wires are those of ``engines.exact`` (one ``topology``); only the
cells differ:

* ``SinhCells(b)``: I = G sinh(b V) / b between a(i, j) and b(i, j), the
  analytic I-V and its derivative G cosh(b V).
* ``TransistorTable`` (``engines.cell_table``): 1T-1R cells, the device G in
  series with the access NMOS at an internal node x(i, j) (an unknown of
  the system); the transistor's drain and source currents come from the
  table swept in ngspice, so gate and bulk currents leave the cell as they
  do in ngspice.

Newton's method on Kirchhoff's current law (``engines.newton``), J dv = -F, one
sparse LU (SuperLU) per iteration, from 0 V, with the step limited to
``max_step_v`` and halved until the largest residual falls (line search).
Convergence is a full step below ``tol`` times the largest input voltage
(inputs and gate lines), or a step below ``ROUNDOFF_STEP`` times it that
cannot lower a residual already at its rounding floor (the step is then
taken). Where that fails (the iteration cap, a line search that fails with a
larger step, a non-finite value; measured: the cap, where a driven row must
lift its columns far, b V above ~100, and a start whose sinh overflows),
source stepping follows: the inputs scaled
by lambda from 1/64 to 1, each stage from the tangent prediction of the
last, the last stage held to the same criteria. If it fails too,
``NewtonConvergenceError`` names both failures; never a partial answer. A
1T-1R answer whose transistor voltages leave the table raises ValueError.
Conductance spreads beyond 1e7 (cells and wires, the range
verified against ngspice) raise ValueError; the check counts G, not the
Jacobian's G cosh(b V) (a cell far into its sinh carries a current its wires
carry too: Jacobian spreads to 3e18 measured at round-off). A sinh answer then
takes ``REFINE_STEPS`` Newton steps on the residual summed in extended precision
(as ``engines.exact``), so outputs that cancel keep the exact engine's accuracy.

``solve_ngspice`` runs the same crossbar in ngspice (the sinh or 1T-1R deck,
tightened tolerances). Both are public through ``xbarlab.solve`` /
``xbarlab.simulate`` with ``cells=`` (``cells_for_device`` builds the cells
of a ``DeviceParams``).

Verified against ngspice ``.op`` on whole crossbars:
``tests/core/test_nonlinear_sinh.py`` (<= 1e-9 relative) and
``tests/core/test_1t1r_solver.py`` (the table's bound, stated there);
through the public API: ``tests/core/test_api_nonlinear.py``; near the spread
limit against a 50-digit Newton solve: ``tests/core/test_nonlinear_accuracy.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from .. import conditioning as cond
from ..arrays import check_conductances, check_voltages
from ..params import CircuitParams, check_circuit
from ..transistor import TransistorSide
from . import exact, newton
from .cell_table import TransistorTable
from .newton import ROUNDOFF_STEP, NewtonConvergenceError, NewtonSettings  # noqa: F401 (public here)
from .result import SolveResult


REFINE_STEPS = 2  # Newton steps on the residual summed in extended precision at the end (sinh cells)


@dataclass(frozen=True)
class SinhCells:
    """Cells with I = G sinh(b V) / b; ``b_per_v`` in 1/volt, > 0 (``DeviceParams.sinh_b``)."""

    b_per_v: float

    def __post_init__(self) -> None:
        b = self.b_per_v
        if isinstance(b, bool) or not isinstance(b, (int, float, np.floating)) or not (math.isfinite(b) and b > 0):
            raise ValueError(f"b_per_v must be a finite number > 0 per volt, got {b!r}")
        object.__setattr__(self, "b_per_v", float(b))


def cells_for_device(device, ngspice=None, **table_kw):
    """The ``cells`` argument of ``solve`` for a ``DeviceParams``: ``SinhCells(device.sinh_b)`` for sinh
    cells, or the ``TransistorTable`` of ``device.access`` swept in ngspice now (``table_kw``: the ranges
    and step of ``TransistorTable.from_ngspice``). ValueError for a linear 1R device (use ``xbarlab.solve``)."""
    from ..device import DeviceParams

    if not isinstance(device, DeviceParams):
        raise ValueError(f"device must be an xbarlab.DeviceParams, got {type(device).__name__}")
    if device.access is not None:
        return TransistorTable.from_ngspice(device.access, ngspice=ngspice, **table_kw)
    if device.sinh_b > 0:
        return SinhCells(device.sinh_b)
    raise ValueError("the device is linear (sinh_b = 0, no access transistor): solve it with xbarlab.solve")


class _Stamps:
    """Residual F (current leaving each unknown node, A) and Jacobian entries, accumulated per term."""

    def __init__(self, n: int):
        self.F = np.zeros(n)
        self.rows, self.cols, self.vals = [], [], []

    def term(self, node, current, partials) -> None:
        """Current ``current`` leaving unknown ``node`` (-1: fixed, skipped), with ``partials``
        [(unknown index, d current / d voltage)]."""
        keep = node >= 0
        np.add.at(self.F, node[keep], current[keep])
        for idx, d in partials:
            k = keep & (idx >= 0)
            self.rows.append(node[k])
            self.cols.append(idx[k])
            self.vals.append(d[k])


# The Newton solve is verified to 1e-9 against ngspice over conductance spreads up to ngspice's own limit
# (cells over wires 1e7), and refuses beyond it (its extended-precision refinement is verified only there).
SPREAD_LIMIT = cond.NGSPICE_SPREAD_LIMIT


def _check_spread(G: np.ndarray, circuit: CircuitParams) -> None:
    g_lo, g_hi = cond.conductance_range(G, circuit)
    if g_hi > SPREAD_LIMIT * g_lo:
        raise ValueError(
            f"the circuit's conductances span {g_lo:.3g} to {g_hi:.3g} S (ratio {g_hi / g_lo:.3g}, counting cells "
            f"G > 0 and wires 1/r), beyond the ratio {SPREAD_LIMIT:.0e} over which the Newton solver is verified "
            "(xbarlab.engines.nonlinear); bring the largest and smallest closer (an ideal wire is r = 0)")


def solve(G, V, circuit: CircuitParams, cells, settings: NewtonSettings = NewtonSettings()) -> SolveResult:
    """Node voltages and currents of a crossbar of non-linear cells, exactly (Newton to round-off).

    Args:
        G: device conductances, siemens, (M, N), finite and >= 0 (0 is an open cell).
        V: row input voltages, volt, (M,) or a batch (B, M).
        circuit: the wires (``CircuitParams``, ohm), as for the linear engines.
        cells: ``SinhCells(b)`` or a ``TransistorTable`` (1T-1R cells of its ``access`` transistor).
        settings: ``NewtonSettings``.

    ``i_cell`` is the current leaving the row node into each cell (for 1T-1R
    the current through the device on the row side, or into the drain).
    """
    G = check_conductances(G)
    V = check_voltages(V, G.shape[0])
    circuit = check_circuit(circuit)
    circuit.r_driver_rows(G.shape[0])
    check_cells(cells)
    if not isinstance(settings, NewtonSettings):
        raise ValueError(f"settings must be a NewtonSettings, got {type(settings).__name__}")
    if not circuit.is_ideal:
        _check_spread(G, circuit)
    net = _Network(G, circuit, cells)
    V2 = np.atleast_2d(V)
    if V2.shape[0] == 0:  # an empty batch: empty results of the batch's shapes
        m, n = G.shape
        return SolveResult(v_row=np.zeros((0, m, n)), v_col=np.zeros((0, m, n)), i_cell=np.zeros((0, m, n)),
                           i_out=np.zeros((0, n)), engine="newton")
    parts = [net.solve_one(v, settings) for v in V2]
    out = [np.stack([p[k] for p in parts]) for k in range(4)]
    if V.ndim == 1:
        out = [a[0] for a in out]
    return SolveResult(v_row=out[0], v_col=out[1], i_cell=out[2], i_out=out[3], engine="newton")


def check_cells(cells):
    """``cells`` if it is a ``SinhCells`` or a ``TransistorTable``, else ValueError naming it."""
    if not isinstance(cells, (SinhCells, TransistorTable)):
        raise ValueError(f"cells must be a SinhCells or a TransistorTable (engines.nonlinear.cells_for_device), "
                         f"got {type(cells).__name__}")
    return cells


def solve_ngspice(G, V, circuit: CircuitParams, cells, settings=None) -> SolveResult:
    """The crossbar of non-linear cells in ngspice, one ``.op`` per input vector: sinh cells as behavioural
    sources (``netlist.deck_text``), 1T-1R cells as the device and the access NMOS of ``cells.access``
    (``netlist_1t1r``). ngspice's Newton tolerances are tightened (``netlist_1t1r.verification_deck``).
    ``i_cell``: the current through the device (for 1T-1R on the transistor's row side this leaves out the
    transistor's gate and bulk currents, which the Newton solver's drain current includes)."""
    from ..netlist import deck_text
    from ..netlist_1t1r import netlist_1t1r, verification_deck
    from . import spice
    from .ngspice import NgspiceSettings

    G = check_conductances(G)
    V = check_voltages(V, G.shape[0])
    circuit = check_circuit(circuit)
    check_cells(cells)
    cond.check_ngspice_range(G, V, circuit)  # also when called directly, not through xbarlab.solve
    ii, jj = np.nonzero(G > 0)
    if isinstance(cells, SinhCells):
        b = cells.b_per_v

        def write(g, v, c):
            return verification_deck(deck_text(g, v, c, sinh_b=b))

        def cell_currents(volt, v_row, v_col):
            return G * np.sinh(b * (v_row - v_col)) / b
    else:
        access, card = cells.access, cells.access.model_card()
        sense = access.side is TransistorSide.SENSE

        def write(g, v, c):
            return verification_deck(netlist_1t1r(g, v, c, access, card))

        def cell_currents(volt, v_row, v_col):
            vx = np.array([volt(f"x{i}_{j}") for i, j in zip(ii, jj)])
            out = np.zeros(G.shape)
            g = G[ii, jj]
            out[ii, jj] = g * (v_row[ii, jj] - vx) if sense else g * (vx - v_col[ii, jj])
            return out

    return spice.solve(G, V, circuit, settings or NgspiceSettings(), write=write, cell_currents=cell_currents)


class _Network:
    """The wire network of ``engines.exact`` with the cells as non-linear terms."""

    def __init__(self, G: np.ndarray, circuit: CircuitParams, cells):
        self.G, self.circuit, self.cells = G, circuit, cells
        self.sysm = exact._system(np.zeros_like(G), circuit)  # wires only: the cells are added per iteration
        topo = self.sysm.topo
        self.ii, self.jj = np.nonzero(G > 0)
        self.g = G[self.ii, self.jj]
        self.ca = topo.comp[topo.index.a(self.ii, self.jj)]
        self.cb = topo.comp[topo.index.b(self.ii, self.jj)]
        self.n_free = len(self.sysm.free)
        self.n_x = len(self.g) if isinstance(cells, TransistorTable) else 0
        self.pa, self.pb = self.sysm.pos[self.ca], self.sysm.pos[self.cb]
        self.px = self.n_free + np.arange(self.n_x)
        self.v_gate = cells.access.v_gate_v if isinstance(cells, TransistorTable) else 0.0  # gate lines drive too
        wires = self.sysm.L_ff.tocoo()
        self.wire_coo = (wires.row, wires.col, wires.data)
        e1, e2, self.wire_g = self.sysm.edges  # every wire (the system has no cells), component e1 -> e2
        self.wire_ends = (e1, e2, self.sysm.pos[e1], self.sysm.pos[e2])

    def voltages(self, u: np.ndarray, fixed_vals: np.ndarray) -> np.ndarray:
        vc = np.empty(self.sysm.topo.n_comp)
        fixed = self.sysm.fixed_of_comp >= 0
        vc[fixed] = fixed_vals[self.sysm.fixed_of_comp[fixed]]
        vc[self.sysm.free] = u[:self.n_free]
        return vc

    def cell_currents(self, vc: np.ndarray, vx: np.ndarray, st: _Stamps | None):
        """Current from the row node into each cell and into its column node; stamps F and J on ``st``."""
        va, vb, g = vc[self.ca], vc[self.cb], self.g
        pa, pb, px = self.pa, self.pb, self.px
        if isinstance(self.cells, SinhCells):
            b = self.cells.b_per_v
            with np.errstate(over="ignore"):  # an overflow is non-finite: the iteration raises on it
                i = g * np.sinh(b * (va - vb)) / b
                d = g * np.cosh(b * (va - vb))
            if st is not None:
                st.term(pa, i, [(pa, d), (pb, -d)])
                st.term(pb, -i, [(pa, -d), (pb, d)])
            return i, i
        tab = self.cells
        if tab.access.side is TransistorSide.SENSE:  # device a -> x, transistor drain x, source b
            i_dev = g * (va - vx)
            (i_d, dd_d, dd_s), (i_s, ds_d, ds_s) = tab.currents(vx, vb)
            if st is not None:
                st.term(pa, i_dev, [(pa, g), (px, -g)])
                st.term(px, i_d - i_dev, [(pa, -g), (px, g + dd_d), (pb, dd_s)])
                st.term(pb, -i_s, [(px, -ds_d), (pb, -ds_s)])
            return i_dev, i_s
        (i_d, dd_d, dd_s), (i_s, ds_d, ds_s) = tab.currents(va, vx)  # drain a, source x, device x -> b
        i_dev = g * (vx - vb)
        if st is not None:
            st.term(pa, i_d, [(pa, dd_d), (px, dd_s)])
            st.term(px, i_dev - i_s, [(pa, -ds_d), (px, g - ds_s), (pb, -g)])
            st.term(pb, -i_dev, [(px, -g), (pb, g)])
        return i_d, i_dev

    def wire_residual(self, vc: np.ndarray, n: int) -> np.ndarray:
        """Current leaving each unknown through the wires, each wire's g (v1 - v2) leaving one end and
        entering the other as one number (L_ff u rounds per node: 1.4e-9 off at spread 9.99e6)."""
        e1, e2, p1, p2 = self.wire_ends
        i_w = self.wire_g * (vc[e1] - vc[e2])
        k1, k2 = p1 >= 0, p2 >= 0
        return (np.bincount(p1[k1], weights=i_w[k1], minlength=n)
                - np.bincount(p2[k2], weights=i_w[k2], minlength=n))

    def residual(self, u: np.ndarray, fixed_vals: np.ndarray, jacobian: bool):
        vc = self.voltages(u, fixed_vals)
        st = _Stamps(len(u))
        st.F[:self.n_free] = self.wire_residual(vc, self.n_free)
        self.cell_currents(vc, u[self.n_free:], st)
        if not jacobian:
            return st.F, None
        r, c, v = self.wire_coo
        rows = np.concatenate([r, *st.rows])
        cols = np.concatenate([c, *st.cols])
        vals = np.concatenate([v, *st.vals])
        J = sp.coo_matrix((vals, (rows, cols)), shape=(len(u), len(u))).tocsc()
        return st.F, J

    def solve_one(self, v_in: np.ndarray, s: NewtonSettings):
        fixed_vals = np.concatenate([[0.0], v_in])
        v_scale = max(float(np.abs(v_in).max()), self.v_gate, 1e-300)

        def residual_at(lam):  # the inputs scaled by lam (source stepping, engines.newton)
            fixed = fixed_vals if lam == 1.0 else lam * fixed_vals
            return lambda u, jacobian: self.residual(u, fixed, jacobian)

        return self.finish(newton.solve(residual_at, self.n_free + self.n_x, v_scale, s), fixed_vals)

    def refine(self, u: np.ndarray, fixed_vals: np.ndarray) -> np.ndarray:
        """``REFINE_STEPS`` Newton steps on the residual summed in extended precision (sinh cells)."""
        if not isinstance(self.cells, SinhCells):
            return u
        ld, (e1, e2, p1, p2), b = np.longdouble, self.wire_ends, np.longdouble(self.cells.b_per_v)
        for _ in range(REFINE_STEPS):
            vc = self.voltages(u, fixed_vals).astype(ld)
            i_w = self.wire_g.astype(ld) * (vc[e1] - vc[e2])
            with np.errstate(over="ignore"):
                i_c = self.g.astype(ld) * np.sinh(b * (vc[self.ca] - vc[self.cb])) / b
            F = np.zeros(len(u), dtype=ld)  # current leaving each unknown
            for pos, i, sign in ((p1, i_w, 1), (p2, i_w, -1), (self.pa, i_c, 1), (self.pb, i_c, -1)):
                k = pos >= 0
                np.add.at(F, pos[k], sign * i[k])
            if not np.all(np.isfinite(F)):
                return u
            u = u - splu(self.residual(u, fixed_vals, True)[1], permc_spec="MMD_AT_PLUS_A").solve(F.astype(float))
        return u

    def finish(self, u: np.ndarray, fixed_vals: np.ndarray):
        """(v_row, v_col, i_cell, i_out) of the converged unknowns ``u``."""
        u = self.refine(u, fixed_vals)
        m, n = self.G.shape
        vc = self.voltages(u, fixed_vals)
        vx = u[self.n_free:]
        if isinstance(self.cells, TransistorTable):
            side = self.cells.access.side
            vd, vs = (vx, vc[self.cb]) if side is TransistorSide.SENSE else (vc[self.ca], vx)
            self.cells.check_range(vd, vs)
        i_row, i_col = self.cell_currents(vc, vx, None)
        if not (np.all(np.isfinite(vc)) and np.all(np.isfinite(i_row))):
            raise NewtonConvergenceError("Newton converged to non-finite values")
        sysm = self.sysm
        v_row = vc[sysm.cell_a].reshape(m, n)
        v_col = vc[sysm.cell_b].reshape(m, n)
        i_cell = np.zeros((m, n))
        i_cell[self.ii, self.jj] = i_row
        idx, comp, c = sysm.topo.index, sysm.topo.comp, self.circuit
        cols = np.arange(n)
        if c.r_sense > 0:
            i_out = vc[comp[idx.s(cols)]] / c.r_sense
        elif c.r_col > 0:
            i_out = vc[comp[idx.b(m - 1, cols)]] / c.r_col
        else:  # the column nodes are ground: the cells' currents into them
            i_out = np.bincount(self.jj, weights=i_col, minlength=n)
        return v_row, v_col, i_cell, i_out
