"""1T-1R cells in the FCM: each cell as its effective conductance at an operating point (NEAT's G_eff).

Model (stated, and bounded against the Newton solver and ngspice in
``tests/fcm/test_1t1r_fcm.py``):

* A 1T-1R cell is the device conductance G in series with the access NMOS
  (``xbarlab.transistor``) whose terminal currents come from the ngspice
  table of ``engines.cell_table`` (one ``.dc`` sweep of one transistor).
* Its effective conductance is G_eff(G, V_G, v) = I_cell(v) / v, where
  I_cell(v) is the current of one cell with v across it and its far side at
  0 V (the transistor's V_GS then is that of an ideal crossbar), found by
  bisection on the internal node's voltage: NEAT's G_eff = 1 / (R_device +
  R_transistor(v, V_G)).
* The FCM takes every cell at ``v = OPERATING_POINT * v_read`` (half the
  full-scale read voltage: the middle of the input range) and then treats
  the crossbar as linear: G_non-ideal (wires, sense) and the DAC-load terms
  are built on G_eff in place of G; every plan (ROWSUM, EXACT, NONE) then
  runs unchanged. What it leaves out: G_eff's dependence on the actual input
  voltage (under 1 % over 0.05-0.5 V with the transistor at the sense side;
  tens of % with it at the row side, where this model is poor), on the
  wire drops that lift the transistors' sources, and, with the transistor
  at the sense side, the gate and bulk currents that reach the column beside
  the device current (I_s - I_d, measured against the Newton solver's column
  current: 1.0e-4 of the cell current at 0.05 V, 1.6e-5 at 0.3 V, for
  30 kOhm at V_G 0.9 V).

``cutoff_conductance`` gives NEAT's cut-off conductance: the largest G whose
G_eff stays within a tolerance of G over a range of cell voltages.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..transistor import AccessTransistor, TransistorSide

#: the FCM's operating point of every 1T-1R cell, as a fraction of the DAC's v_read
OPERATING_POINT = 0.5
#: the transistor table's grid step, volt (10 mV: 4x fewer points than the Newton solver's 5 mV;
#: its interpolation error, <= 1e-9 A at 10 mV, is far below the operating-point model's)
TABLE_STEP_V = 1e-2
_BISECTIONS = 60  # halvings of [0, v]: 2**-60 v, below double precision's resolution of the node voltage


@functools.lru_cache(maxsize=16)
def _table(access: AccessTransistor, card_params: tuple):
    from ..engines.cell_table import TransistorTable

    return TransistorTable.from_ngspice(access, step=TABLE_STEP_V)


def transistor_table(access: AccessTransistor):
    """The ngspice table of ``access`` (``TransistorTable.from_ngspice`` at its default ranges).

    Swept once per transistor and card contents (a pure function of them, kept in a small
    ``functools.lru_cache``): the card file is read and validated at every call, so a changed
    card gives a new sweep."""
    if not isinstance(access, AccessTransistor):
        raise ValueError(f"access must be an xbarlab.transistor.AccessTransistor, got {type(access).__name__}")
    return _table(access, access.model_card().params)


def cell_current(G, v, table) -> np.ndarray:
    """Current (A) through the device of single 1T-1R cells of device conductance G (S) with v (V) across
    them, far side at 0 V (arrays broadcast). The internal node by bisection on its current balance (the
    device current against the transistor's drain current at the sense side, its source current at the
    row side, as in ``engines.nonlinear``); 0 where G = 0 or v = 0.

    The transistor's voltages must lie in the table (``check_range``), else ValueError."""
    G = np.asarray(G, dtype=float)
    v = np.asarray(v, dtype=float)
    G, v = np.broadcast_arrays(G, v)
    if np.any(v < 0) or np.any(G < 0) or not (np.all(np.isfinite(v)) and np.all(np.isfinite(G))):
        raise ValueError("cell_current needs finite G >= 0 S and v >= 0 V")
    sense = table.access.side is TransistorSide.SENSE
    lo, hi = np.zeros(v.shape), v.copy()
    zero = np.zeros(v.shape)
    for _ in range(_BISECTIONS):
        x = 0.5 * (lo + hi)
        if sense:  # device v -> x, transistor drain x, source 0: g (v - x) - I_d(x, 0), falling in x
            (i_d, _, _), _ = table.currents(x, zero)
            h = G * (v - x) - i_d
        else:  # transistor drain v, source x, device x -> 0: I_s(v, x) - g x, falling in x (the device
            # carries the current out of the source, gate and bulk currents included, as in the Newton solver)
            _, (i_s, _, _) = table.currents(v, x)
            h = i_s - G * x
        up = h > 0
        lo = np.where(up, x, lo)
        hi = np.where(up, hi, x)
    x = 0.5 * (lo + hi)
    if sense:
        table.check_range(x, zero, "the 1T-1R cells' transistor terminals")
        i = G * (v - x)
    else:
        table.check_range(v, x, "the 1T-1R cells' transistor terminals")
        i = G * x
    return np.where((G > 0) & (v > 0), i, 0.0)


def effective_conductance(G, v, table) -> np.ndarray:
    """G_eff = I_cell(v) / v (S) of 1T-1R cells of device conductance G (S) at cell voltage v > 0 (V)."""
    v = np.asarray(v, dtype=float)
    if np.any(v <= 0):
        raise ValueError(f"the cell voltage v must be > 0 V for an effective conductance, got min {v.min()!r}")
    return cell_current(G, v, table) / v


def operating_voltage(spec) -> float:
    """The FCM's cell voltage for G_eff, volt: ``OPERATING_POINT * spec.dac.v_read``."""
    return OPERATING_POINT * spec.dac.v_read


def effective_tiles(G: np.ndarray, spec) -> np.ndarray:
    """G_eff (S) of programmed device conductances G (any shape) on ``spec``'s 1T-1R cells at the FCM's
    operating point (``operating_voltage``); the transistor table from ngspice (``transistor_table``)."""
    access = spec.device.access
    if access is None:
        raise ValueError("effective_tiles needs a 1T-1R spec (spec.device.access set)")
    G = np.asarray(G, dtype=float)
    # programmed conductances take few distinct values (the device levels): each is solved once, with the
    # same element-wise arithmetic, so the result equals the element-by-element one
    levels, inverse = np.unique(G, return_inverse=True)
    g_eff = effective_conductance(levels, operating_voltage(spec), transistor_table(access))
    return g_eff[inverse].reshape(G.shape)


def cutoff_conductance(table, tol: float = 0.025, v_cells=(0.05, 0.5), g_hi: float = 1.0) -> float:
    """NEAT's cut-off conductance (S): the largest G with |G_eff(G, v) / G - 1| <= ``tol`` at every cell
    voltage in ``v_cells`` (V), by bisection on log G over [1e-12, ``g_hi``] S (the deviation grows with G:
    the transistor's share of the series resistance). ``g_hi`` when even that G stays within ``tol``."""
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise ValueError(f"tol must be a number in (0, 1), got {tol!r}")
    v = np.asarray(v_cells, dtype=float).ravel()
    if v.size == 0 or np.any(v <= 0):
        raise ValueError(f"v_cells must be cell voltages > 0 V, got {v_cells!r}")

    def dev(g: float) -> float:
        return float(np.max(np.abs(effective_conductance(np.full(v.shape, g), v, table) / g - 1.0)))

    lo, hi = math.log(1e-12), math.log(g_hi)
    if dev(g_hi) <= tol:
        return g_hi
    if dev(1e-12) > tol:
        raise ValueError(f"no conductance >= 1e-12 S keeps G_eff within {tol:g} of G at V_G = "
                         f"{table.access.v_gate_v:g} V (the transistor is off)")
    for _ in range(40):  # log G to 28 / 2**40: 3e-11 relative
        mid = 0.5 * (lo + hi)
        if dev(math.exp(mid)) <= tol:
            lo = mid
        else:
            hi = mid
    return math.exp(lo)
