"""What double precision can resolve: the accepted region of every engine.

One check in front of all engines (``xbarlab.api`` calls it), so that no
engine returns a silently wrong number for an input it accepts.

The measure is the **conductance spread** of the circuit: the ratio of the
largest to the smallest conductance present in it, over every cell G > 0 and
every wire 1/r with r > 0 (driver, row and column segments, sense); a zero
resistance is an ideal wire (its nodes are merged) and does not count. It is
invariant to scaling the whole circuit, and the nodal system's condition
grows with it. The limits below were measured against a 60-digit mpmath nodal solve
(``tests/mp_reference.py``) on 2,400 random 1..6 x 1..6 crossbars whose cells
and wires (each resistance 0 with probability 0.2) are log-uniform within a
window of up to 24 decades placed anywhere in 1e-20..1e20 S
(``tests/security/measure_limits.py``, seeds 1 and 2). Error is
max |I - I_ref| / max |I_ref| over the outputs; each limit sits below the
smallest spread at which an engine exceeded 1e-9:

* ``exact`` (sparse LU, extended-precision refinement, sense-resistor
  currents): first error > 1e-9 at spread 8.5e13; limit ``SPREAD_LIMIT`` = 1e12.
* G_non-ideal: the same limit. Its fast block elimination
  (``engines.structured``) loses digits when a cell dominates a wire (its
  Schur complements cancel), the more the longer the array: at cells/wires
  (largest G over the smallest 1/r, driver and sense included) 1e7 it was
  1.1e-9 off at 8 x 4 and 1.3e-8 at 1000 x 40, at 1e6 1.0e-9 at 1000 x 8,
  at 1e5 1.8e-10 at 1000 x 40, at 1e4 2.2e-11 at 1000 x 40 (against the
  sparse exact solver; ``tests/core/test_structured_limit.py``). Above
  ``STRUCTURED_CELLS_OVER_WIRES`` = 1e4 the exact sparse solver answers instead
  (one solve per row: slower, never wrong).
* ``ngspice`` (plain double-precision nodal analysis): first error > 1e-9
  at spread 1.2e8; limit ``NGSPICE_SPREAD_LIMIT`` = 1e7. Its absolute scale
  was measured on a nominal circuit scaled by 10^k: within 1e-13 relative
  for conductances 1.1e-21..1e16 S and voltages 1e-12..1e12 V, so those are
  its accepted ranges (``NGSPICE_G_MIN`` ..., not extrapolated).

Beyond a limit the call raises ValueError and says why. The absolute scale
does not matter to ``exact`` and G_non-ideal: ``api`` scales conductances
and voltages by powers of two (exact in binary) before they reach the
engine, and refuses outputs that overflow or underflow double precision.
"""

from __future__ import annotations

import math

import numpy as np

from .params import CircuitParams

SPREAD_LIMIT = 1e12
STRUCTURED_CELLS_OVER_WIRES = 1e4
NGSPICE_SPREAD_LIMIT = 1e7
NGSPICE_G_MIN = 1e-21
NGSPICE_G_MAX = 1e16
NGSPICE_V_MIN = 1e-12
NGSPICE_V_MAX = 1e12


def wire_conductances(circuit: CircuitParams, m: int) -> np.ndarray:
    """Conductance (S) of every kind of non-ideal wire of an M-row crossbar."""
    r = np.concatenate([[circuit.r_row, circuit.r_col, circuit.r_sense], circuit.r_driver_rows(m)])
    return 1.0 / r[r > 0]


def conductance_range(G: np.ndarray, circuit: CircuitParams) -> tuple[float, float]:
    """(smallest, largest) conductance in siemens present in the circuit(s), cells and wires.

    G: validated (M, N) or a stack (T, M, N) sharing ``circuit``. (0, 0) when nothing conducts.
    """
    w = wire_conductances(circuit, G.shape[-2])
    g_max = float(G.max()) if G.size else 0.0
    lo = [float(np.min(G, where=G > 0, initial=np.inf))] if g_max > 0 else []
    g = lo + ([g_max] if g_max > 0 else []) + w.tolist()
    return (min(g), max(g)) if g else (0.0, 0.0)


def cells_over_wires(G: np.ndarray, circuit: CircuitParams) -> float:
    """Largest cell G over the smallest wire conductance 1/r (1 when either is absent)."""
    w = wire_conductances(circuit, G.shape[-2])
    g_c = float(G.max()) if G.size else 0.0
    return g_c / float(w.min()) if (g_c > 0 and w.size) else 1.0


def spread_limit(engine: str) -> float:
    return NGSPICE_SPREAD_LIMIT if engine == "ngspice" else SPREAD_LIMIT


ACCURACY = 1e-9  # what every engine promises: max |I - I_ref| <= ACCURACY max |I_ref|, per input vector


def structured_row_error(G: np.ndarray, circuit: CircuitParams) -> float:
    """A bound on the error of each row of the fast G_non-ideal (row sweep, compiled loop,
    dissection) relative to that row's largest entry, within ``STRUCTURED_CELLS_OVER_WIRES``:
    2e-14 + 1e-14 cells/wires. Measured against the sparse exact solver: at most 8.2e-15 at
    cells/wires 1e-2 (200 x 20), 2.2e-11 at 1e4 (1000 x 40)."""
    return 2e-14 + 1e-14 * cells_over_wires(G, circuit)


def structured_resolves(G: np.ndarray, circuit: CircuitParams) -> bool:
    """Whether the block elimination (``engines.structured``) resolves this stack to 1e-9."""
    return cells_over_wires(G, circuit) <= STRUCTURED_CELLS_OVER_WIRES


def check_spread(G: np.ndarray, circuit: CircuitParams, engine: str) -> tuple[float, float]:
    """ValueError unless the conductance spread is within ``engine``'s limit; returns the range."""
    g_lo, g_hi = conductance_range(G, circuit)
    limit = spread_limit(engine)
    if g_hi > limit * g_lo:
        raise ValueError(
            f"the circuit's conductances span {g_lo:.3g} to {g_hi:.3g} S (ratio {g_hi / g_lo:.3g}, "
            f"counting cells G > 0 and wires 1/r), beyond the ratio {limit:.0e} that the {engine} "
            "engine resolves in double precision to 1e-9 relative (xbarlab.conditioning); bring the "
            "largest and smallest closer (an ideal wire is r = 0, an open cell G = 0)"
        )
    return g_lo, g_hi


def check_ngspice_range(G: np.ndarray, V: np.ndarray, circuit: CircuitParams) -> None:
    """ngspice's limits: the spread, and absolute conductances and voltages (its tolerances)."""
    g_lo, g_hi = check_spread(G, circuit, "ngspice")
    if g_hi > 0 and (g_lo < NGSPICE_G_MIN or g_hi > NGSPICE_G_MAX):
        raise ValueError(
            f"the circuit's conductances span {g_lo:.3g} to {g_hi:.3g} S; the ngspice engine "
            f"is checked to 1e-9 relative only within [{NGSPICE_G_MIN:.0e}, {NGSPICE_G_MAX:.0e}] S; "
            "use engine='exact'"
        )
    v_hi = float(np.abs(V).max()) if V.size else 0.0
    if v_hi > NGSPICE_V_MAX or 0 < v_hi < NGSPICE_V_MIN:
        raise ValueError(
            f"V reaches {v_hi:.3g} V; the ngspice engine is checked to 1e-9 relative only for "
            f"largest |V| in [{NGSPICE_V_MIN:.0e}, {NGSPICE_V_MAX:.0e}] V; use engine='exact'"
        )


SCALE_FREE_EXPONENT = 100  # values within 2**+-100 (about 1e+-30) are solved unscaled


def pow2_scale(x_max: float) -> float:
    """A power of two s with s * x_max in [0.5, 1), exact in binary; 1 when x_max is
    within 2**+-100 already (then the inputs reach the engine bit for bit unchanged);
    2**1022 for a subnormal x_max (s * x_max in [2**-52, 0.5))."""
    if not (x_max > 0 and math.isfinite(x_max)):
        return 1.0
    e = math.frexp(x_max)[1]
    # A subnormal x_max (e < -1021) would need 2**-e > 2**1023, beyond double precision: scale by
    # 2**1022 instead (its inverse 2**-1022 is still normal); s * x_max is then >= 2**-52, well
    # inside the range the engines resolve unscaled.
    return 1.0 if abs(e) <= SCALE_FREE_EXPONENT else math.ldexp(1.0, min(-e, 1022))


def scaled_circuit(circuit: CircuitParams, s: float) -> CircuitParams:
    """The same circuit with every conductance multiplied by s (resistances divided by s)."""
    if s == 1.0:
        return circuit
    rd = circuit.r_driver
    rd = tuple(r / s for r in rd) if isinstance(rd, tuple) else rd / s
    return CircuitParams(r_row=circuit.r_row / s, r_col=circuit.r_col / s, r_sense=circuit.r_sense / s,
                         r_driver=rd)


def unscale(x: np.ndarray, factors: tuple[float, ...], what: str, unit: str) -> np.ndarray:
    """x times each factor (powers of two, exact), or ValueError if the result overflows double
    precision or its largest magnitude falls below the normal range (where digits are lost)."""
    out = x
    with np.errstate(over="ignore", under="ignore"):
        for f in factors:
            out = out * f if f != 1.0 else out
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{what} overflow double precision (beyond 1.8e308 {unit}); scale the inputs down")
    top = float(np.abs(x).max()) if x.size else 0.0
    if top > 0 and math.log2(top) + sum(math.log2(f) for f in factors) < math.log2(np.finfo(float).tiny):
        raise ValueError(
            f"{what} fall below double precision's normal range (2.2e-308 {unit}), "
            "where they lose digits; scale the inputs up"
        )
    return out
