"""The access transistor's terminal currents tabulated from one ngspice DC sweep, and their interpolation.

One NMOS of the 1T-1R cell (gate at V_G, bulk at ground) is swept over its
drain and source voltages on a regular grid (``xbarlab.netlist_1t1r.sweep_netlist``,
one ``.dc`` run). The table keeps both terminal currents, the current into
the drain I_d(V_d, V_s) and the current out of the source I_s(V_d, V_s):
they differ by the gate-tunnelling and bulk currents of the BSIM4 card (for
the shipped card at W = 100 nm, V_G = 0.9 V and 0.3 V across a 30 kOhm cell,
about 2e-5 of the channel current), which a single "cell current" would put
in the wrong node.

Interpolation: a bicubic Hermite patch per grid cell (C1). The node slopes
dI/dV_d and dI/dV_s are the not-a-knot cubic spline's (scipy
``CubicSpline``), limited by Hyman's monotonicity filter (``monotone_slopes``),
so the surface is monotone along every grid line where the data are (the
drain current rises with V_d and falls with V_s) and fourth-order accurate
where they are smooth; the cross slope is the spline's. (Plain PCHIP slopes
are monotone too, but only second-order accurate.) The table is taken over
(V_ds, V_s) with V_ds = 0 a grid line and the slopes across it taken from
each side (BSIM4 swaps source and drain there, and the current is only once
differentiable): at a 5 mV grid the worst error against a 2.5 mV sweep is
7e-12 A (``tests/core/test_1t1r_solver.py::test_table_interpolation_error``).
The partial derivatives the Newton
solver needs are exact derivatives of the same surface. Between grid lines a tensor-product
Hermite patch need not be monotone; the crossbar-level error is what the
tests bound (``tests/core/test_1t1r_solver.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..transistor import AccessTransistor


@dataclass(frozen=True)
class HermiteGrid:
    """A C1 bicubic Hermite surface f(x, y) on a rectilinear grid; node slopes from the not-a-knot spline,
    limited by Hyman's filter (``monotone_slopes``), the cross slope the spline's.

    Attributes:
        x, y: increasing grid abscissae (V), shapes (nx,), (ny,).
        f, fx, fy, fxy: values and slopes at the nodes, shape (nx, ny).
    """

    x: np.ndarray
    y: np.ndarray
    f: np.ndarray
    fx: np.ndarray
    fy: np.ndarray
    fxy: np.ndarray

    @classmethod
    def fit(cls, x, y, f, x_split: int | None = None) -> "HermiteGrid":
        """Fit the surface; ``x_split`` is the index of a grid line x = x[x_split] across which f is only
        once differentiable (the transistor's V_ds = 0): the slopes along x are then taken on each
        side separately and averaged on that line."""
        x, y, f = (np.asarray(a, dtype=float) for a in (x, y, f))
        if f.shape != (len(x), len(y)) or len(x) < 3 or len(y) < 3:
            raise ValueError(f"table values must have shape (len(x), len(y)) >= (3, 3), got {f.shape}")
        if np.any(np.diff(x) <= 0) or np.any(np.diff(y) <= 0) or not np.all(np.isfinite(f)):
            raise ValueError("table grid must be strictly increasing and its values finite")
        if x_split is None:
            fx = monotone_slopes(x, f, axis=0)
        else:
            k = int(x_split)
            if not 3 <= k <= len(x) - 4:
                raise ValueError(f"x_split must leave at least 4 grid lines on each side, got {x_split!r}")
            fl = monotone_slopes(x[:k + 1], f[:k + 1], axis=0)
            fr = monotone_slopes(x[k:], f[k:], axis=0)
            fx = np.concatenate([fl[:-1], 0.5 * (fl[-1:] + fr[:1]), fr[1:]])
        fy = monotone_slopes(y, f, axis=1)
        from scipy.interpolate import CubicSpline  # here: ``import xbarlab`` stays quick

        fxy = CubicSpline(y, fx, axis=1).derivative()(y)
        return cls(x, y, f, fx, fy, fxy)

    def __call__(self, px, py):
        """(f, df/dx, df/dy) at the points (px, py) (arrays of one shape); outside the grid the
        boundary patch is extended (the caller checks the range)."""
        px, py = np.asarray(px, dtype=float), np.asarray(py, dtype=float)
        i = np.clip(np.searchsorted(self.x, px, side="right") - 1, 0, len(self.x) - 2)
        j = np.clip(np.searchsorted(self.y, py, side="right") - 1, 0, len(self.y) - 2)
        hx = self.x[i + 1] - self.x[i]
        hy = self.y[j + 1] - self.y[j]
        t = (px - self.x[i]) / hx
        u = (py - self.y[j]) / hy
        bt, dbt = _basis(t)
        bu, dbu = _basis(u)
        val = np.zeros_like(px)
        dx = np.zeros_like(px)
        dy = np.zeros_like(px)
        for a in (0, 1):
            for b in (0, 1):
                ia, jb = i + a, j + b
                coef = ((self.f[ia, jb], 0, 0), (self.fx[ia, jb] * hx, 1, 0),
                        (self.fy[ia, jb] * hy, 0, 1), (self.fxy[ia, jb] * hx * hy, 1, 1))
                for c, kt, ku in coef:
                    wt, wu = bt[2 * kt + a], bu[2 * ku + b]
                    val += c * wt * wu
                    dx += c * dbt[2 * kt + a] * wu
                    dy += c * wt * dbu[2 * ku + b]
        return val, dx / hx, dy / hy


def _sweep_key(access: AccessTransistor, card=None) -> tuple:
    """What one transistor's sweep depends on: W, L, V_G and the card's parameters (``card``, the
    ``ModelCard`` already read, else read now)."""
    return (access.w_m, access.l_m, access.v_gate_v, (card or access.model_card()).params)


def monotone_slopes(x: np.ndarray, f: np.ndarray, axis: int) -> np.ndarray:
    """Node slopes of f along ``axis``: the not-a-knot cubic spline's (scipy ``CubicSpline``, fourth-order
    accurate), limited by Hyman's monotonicity filter (J. M. Hyman, SIAM J. Sci. Stat. Comput. 4, 645 (1983)):
    a slope keeps the sign of the neighbouring secants and at most 3 times the smaller of them, and is 0 at
    a local extremum of the data. The cubic Hermite curve through the nodes is then monotone wherever the
    data are, and where they are smooth and strictly monotone the filter leaves the spline slope unchanged."""
    from scipy.interpolate import CubicSpline

    s = np.moveaxis(CubicSpline(x, f, axis=axis).derivative()(x), axis, 0).copy()
    d = np.moveaxis(np.diff(f, axis=axis), axis, 0) / np.diff(x).reshape((-1,) + (1,) * (f.ndim - 1))
    left = np.concatenate([d[:1], d])  # secant before each node (the first node: its only secant)
    right = np.concatenate([d, d[-1:]])
    sigma = np.where(left * right > 0, np.sign(right), 0.0)
    bound = 3.0 * np.minimum(np.abs(left), np.abs(right))
    s = sigma * np.minimum(np.maximum(0.0, sigma * s), bound)
    return np.moveaxis(s, 0, axis)


def _basis(t):
    """Cubic Hermite basis (h00, h01, h10, h11) and its derivatives at t: value basis for the left
    and right node (h00, h01), slope basis for the left and right node (h10, h11)."""
    t2, t3 = t * t, t * t * t
    h = (2 * t3 - 3 * t2 + 1, -2 * t3 + 3 * t2, t3 - 2 * t2 + t, t3 - t2)
    d = (6 * t2 - 6 * t, -6 * t2 + 6 * t, 3 * t2 - 4 * t + 1, 3 * t2 - 2 * t)
    return h, d


@dataclass(frozen=True)
class TransistorTable:
    """Terminal currents of the access transistor over (V_ds, V_s), from ngspice.

    The surfaces are tabulated over V_ds = V_d - V_s and V_s, so that the
    line V_ds = 0, where BSIM4 swaps source and drain and the current is only
    once differentiable, is a grid line (``HermiteGrid.fit``'s ``x_split``).

    Attributes:
        access: the transistor (W, L, V_G, card) the table was swept for.
        vs_lo, vs_hi: the range of the source voltage, volt.
        vds_max: the range of the drain-source voltage, [-vds_max, vds_max] volt.
        drain: I_d, the current into the drain, ampere (a ``HermiteGrid`` over (V_ds, V_s)).
        source: I_s, the current out of the source, ampere.
        swept: what the sweep depends on, (W, L, V_G, the card's parameters) of ``access`` when the table
            was built (None: taken from ``access`` now). A table whose ``access`` is replaced by a
            transistor of another W, L, V_G or card raises ValueError; the side and the gate line, which
            the sweep of one transistor does not see, may change.
    """

    access: AccessTransistor
    vs_lo: float
    vs_hi: float
    vds_max: float
    drain: HermiteGrid
    source: HermiteGrid
    swept: tuple | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # check_range trusts these ranges: one beyond the grid would pass extrapolated currents as tabulated
        if not isinstance(self.access, AccessTransistor):
            raise ValueError(f"access must be an AccessTransistor, got {type(self.access).__name__}")
        key = _sweep_key(self.access)
        if self.swept is None:
            object.__setattr__(self, "swept", key)
        elif self.swept != key:
            raise ValueError(f"access (w_m={self.access.w_m!r} m, l_m={self.access.l_m!r} m, v_gate_v="
                             f"{self.access.v_gate_v!r} V, card {self.access.card or 'shipped'!r}) is not the "
                             f"transistor the table was swept for (w_m, l_m, v_gate_v = {self.swept[:3]!r}"
                             f"{', another card' if self.swept[3] != key[3] else ''}): sweep a table for it")
        if not (isinstance(self.drain, HermiteGrid) and isinstance(self.source, HermiteGrid)
                and np.array_equal(self.drain.x, self.source.x) and np.array_equal(self.drain.y, self.source.y)):
            raise ValueError("drain and source must be HermiteGrid surfaces on the same (V_ds, V_s) grid")
        x, y = self.drain.x, self.drain.y
        for name in ("vs_lo", "vs_hi", "vds_max"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not np.isfinite(v):
                raise ValueError(f"{name} must be a finite number in volt, got {v!r}")
            object.__setattr__(self, name, float(v))
        slack = 1e-12  # volt: the sweep's grid ends carry ngspice's rounding (0.6000000000000008)
        if not (y[0] - slack <= self.vs_lo < self.vs_hi <= y[-1] + slack):
            raise ValueError(f"vs_lo={self.vs_lo!r}, vs_hi={self.vs_hi!r} V must be increasing and within the "
                             f"table's V_s grid [{y[0]!r}, {y[-1]!r}] V")
        if not 0 < self.vds_max <= min(-x[0], x[-1]) + slack:
            raise ValueError(f"vds_max={self.vds_max!r} V must be > 0 and within the table's V_ds grid "
                             f"[{x[0]!r}, {x[-1]!r}] V")

    @classmethod
    def from_ngspice(cls, access: AccessTransistor, vs_lo: float = -0.02, vs_hi: float = 0.55,
                     vds_max: float = 0.6, step: float = 5e-3, ngspice=None) -> "TransistorTable":
        """Sweep one transistor in ngspice (one ``.dc``: V_ds over [-vds_max, vds_max] and V_s over
        [vs_lo, vs_hi] in ``step`` volt; ``vds_max`` should be a multiple of ``step``) and tabulate it."""
        from ..netlist_1t1r import sweep_netlist
        from .ngspice import NgspiceSettings, run_deck

        if not isinstance(access, AccessTransistor):
            raise ValueError(f"access must be an AccessTransistor, got {type(access).__name__}")
        card = access.model_card()  # read once: the table records the card it was swept with
        vec = run_deck(sweep_netlist(access, vs_lo, vs_hi, vds_max, step, card), ngspice or NgspiceSettings())
        vds = vec["v(d)"] - vec["v(s)"]
        vs = vec["v(s)"]
        nd = int(np.argmax(vs != vs[0])) if np.any(vs != vs[0]) else len(vs)
        if nd < 8 or len(vs) % nd or len(vs) // nd < 4:
            raise ValueError(f"the ngspice sweep returned {len(vs)} points, not a grid of {nd} V_ds values")
        ns = len(vs) // nd
        grid_ds, grid_s = vds[:nd], vs[::nd]
        if not (np.allclose(vds.reshape(ns, nd), grid_ds[None], rtol=0, atol=1e-12)
                and np.allclose(vs.reshape(ns, nd), grid_s[:, None], rtol=0, atol=1e-12)):
            raise ValueError("the ngspice sweep is not a regular (V_ds, V_s) grid")
        k0 = int(np.argmin(np.abs(grid_ds)))
        if abs(grid_ds[k0]) > 1e-9:
            raise ValueError(f"the V_ds grid must contain 0 V (vds_max a multiple of step), nearest {grid_ds[k0]!r}")
        grid_ds = grid_ds.copy()
        grid_ds[k0] = 0.0
        i_d = -vec["i(vds)"].reshape(ns, nd).T  # into the drain
        i_s = (vec["i(vs)"] - vec["i(vds)"]).reshape(ns, nd).T  # out of the source
        return cls(access, float(grid_s[0]), float(grid_s[-1]), float(grid_ds[-1]),
                   HermiteGrid.fit(grid_ds, grid_s, i_d, k0), HermiteGrid.fit(grid_ds, grid_s, i_s, k0),
                   _sweep_key(access, card))

    def currents(self, vd, vs):
        """Drain and source currents and their partials at terminal voltages vd, vs (V):
        ((I_d, dI_d/dV_d, dI_d/dV_s), (I_s, dI_s/dV_d, dI_s/dV_s))."""
        vd, vs = np.asarray(vd, dtype=float), np.asarray(vs, dtype=float)
        out = []
        for surf in (self.drain, self.source):
            f, f_ds, f_s = surf(vd - vs, vs)
            out.append((f, f_ds, f_s - f_ds))
        return tuple(out)

    def check_range(self, vd, vs, what: str = "the access transistors' terminals") -> None:
        """ValueError unless both terminals of every transistor lie in [vs_lo, vs_hi] and |V_ds| <= vds_max:
        the region the table's stated error covers (no extrapolated answer is returned)."""
        vd, vs = np.asarray(vd, dtype=float), np.asarray(vs, dtype=float)
        if not vs.size:
            return
        if not (np.all(np.isfinite(vd)) and np.all(np.isfinite(vs))):  # min/max of a NaN compare False
            raise ValueError(f"{what} reach non-finite voltages (V_d {vd[~np.isfinite(vd)][:3]!r}, "
                             f"V_s {vs[~np.isfinite(vs)][:3]!r}): outside the transistor table")
        lo, hi = min(vd.min(), vs.min()), max(vd.max(), vs.max())
        vds = float(np.abs(vd - vs).max())
        if lo < self.vs_lo or hi > self.vs_hi or vds > self.vds_max:
            raise ValueError(
                f"{what} reach [{lo:.6g}, {hi:.6g}] V with |V_ds| up to {vds:.6g} V, outside the transistor "
                f"table (both terminals in [{self.vs_lo:.6g}, {self.vs_hi:.6g}] V, |V_ds| <= {self.vds_max:.6g} V); "
                "build the table over a wider range")
