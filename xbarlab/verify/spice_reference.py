"""Reference solutions of crossbar tiles with their row DACs: ngspice and the exact solver.

These are what the FCM is verified and fitted against. Both solve the
complete circuit (DAC dividers, driver, wires, cells, sense) for each input
vector of DAC codes:

* ``spice_currents``: one ngspice ``.op`` per input vector
  (``xbarlab.netlist.dac_netlist``), linear or sinh cells;
* ``exact_currents``: each DAC in Thevenin form (R_th added to that row's
  driver resistance, V_th as the source), solved by the exact sparse solver
  (linear cells) or by the exact Newton solver (sinh cells,
  ``xbarlab.engines.nonlinear``, <= 1e-9 of ngspice): the reference the sinh
  FCM is measured against without ngspice (``xbarlab.verify.fcm_sinh``);
* ``spice_tile_currents`` / ``spice_evaluate``: every tile of an ``FCM`` at the
  actual DAC codes of its inputs, solved by ngspice, then the FCM's own ADC,
  accumulation over the row tiles, the differential pair (or offset) and the
  phases (``xbarlab.verify.reference``): ``FCM.matmul`` end to end with
  ngspice in place of the DAC-load and crossbar models;
* ``spice_evaluate_codes``: the same at given DAC codes (e.g. float32's);
  ``spice_evaluate_layer``: every FCM of a network layer (one per
  convolution group) on its own input matrix (im2col patches).

Sensing schemes (``xbarlab.fcm.sensing``): the reference column is a real
column of each tile's deck; the subtraction before the ADC is a differential
read of ngspice's sense currents (``reference.sensed``: i(vsense_j) - i(vsense_ref),
or I+ - I- of the pair's two decks), then the bipolar ADC.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..api import simulate
from ..arrays import check_conductances
from ..engines.ngspice import NgspiceSettings, run_deck
from ..errors import SpiceError
from ..netlist import dac_netlist
from ..params import CircuitParams
from ..spec import CrossbarSpec


def _codes2d(codes, m: int) -> np.ndarray:
    c = np.asarray(codes, dtype=float)
    c = c[None] if c.ndim == 1 else c
    if c.ndim != 2 or c.shape[1] != m:
        raise ValueError(f"codes must be ({m},) or (B, {m}), got shape {np.shape(codes)}")
    return c


def spice_currents(G, codes, spec: CrossbarSpec, settings: NgspiceSettings | None = None,
                   workers: int = 1) -> np.ndarray:
    """Output currents (A), shape (B, N), of tile G (S) with DAC codes (B, M), from ngspice.

    ``workers`` ngspice processes run at once (subprocess back end).
    """
    G = check_conductances(G)
    m, n = G.shape
    c = _codes2d(codes, m)
    settings = settings or NgspiceSettings()
    decks = [dac_netlist(G, ck, spec.circuit, spec.dac, spec.device.sinh_b) for ck in c]

    def one(deck: str) -> np.ndarray:
        vec = run_deck(deck, settings)
        out = np.empty(n)
        for j in range(n):
            key = f"i(vsense{j})"
            if key not in vec:
                raise SpiceError(f"ngspice output lacks {key}", log=", ".join(sorted(vec)[:50]))
            out[j] = float(vec[key][0])
        return out

    if workers <= 1:
        return np.stack([one(d) for d in decks])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.stack(list(pool.map(one, decks)))


def thevenin_circuit(spec: CrossbarSpec, codes_row: np.ndarray) -> tuple[CircuitParams, np.ndarray]:
    """(circuit with R_th added to each row's driver, V_th per row) for one code vector."""
    m = len(codes_row)
    v_th, r_th = spec.dac.thevenin(codes_row)
    rd = spec.circuit.r_driver_rows(m) + r_th
    c = CircuitParams(r_row=spec.circuit.r_row, r_col=spec.circuit.r_col, r_sense=spec.circuit.r_sense,
                      r_driver=tuple(rd.tolist()))
    return c, v_th


def exact_currents(G, codes, spec: CrossbarSpec) -> np.ndarray:
    """Output currents (A), shape (B, N), exactly: the sparse solver for linear cells, the Newton solver
    (``engines.nonlinear``, ``SinhCells(spec.device.sinh_b)``) for sinh cells. 1T-1R specs raise ValueError
    (their table is swept in ngspice: ``engines.nonlinear.cells_for_device``)."""
    if spec.device.access is not None:
        raise ValueError("exact_currents needs 1R cells (linear or sinh), got a 1T-1R spec (device.access set)")
    G = check_conductances(G)
    c = _codes2d(codes, G.shape[0])
    out = []
    for ck in c:
        circ, v_th = thevenin_circuit(spec, ck)
        if spec.device.sinh_b == 0:
            out.append(simulate(G, v_th, circ))
        else:
            from ..engines.nonlinear import SinhCells, solve

            out.append(solve(G, v_th, circ, SinhCells(spec.device.sinh_b)).i_out)
    return np.stack(out)


def spice_tile_currents(fcm, tc: np.ndarray, settings: NgspiceSettings | None = None,
                        workers: int = 1) -> np.ndarray:
    """Column currents (A) (P, B, S, Tk, Tn, Nc) of every tile of ``fcm`` for tile codes tc (P, B, Tk, M), by ngspice.

    One ``.op`` of the full circuit per (phase, vector, tile) (``dac_netlist``:
    DAC dividers at the codes, driver, wires, cells or sinh sources, sense);
    a tile whose codes are all 0 has no source and carries exactly 0 A (not run). 1R cells only: a
    1T-1R model (``spec.device.access``) is refused with ValueError.
    """
    S, Tk, Tn, M, Nc = fcm.G.shape
    P, B = tc.shape[:2]
    spec = fcm.spec
    if spec.device.access is not None:  # dac_netlist writes 1R cells: it would drop the transistors
        raise ValueError("spice_tile_currents writes 1R decks, but spec.device.access is set (1T-1R cells): "
                         "solve them with the 1T-1R deck (xbarlab.netlist_1t1r)")
    settings = settings or NgspiceSettings()
    jobs = [(p, b, s, k, t) for p in range(P) for b in range(B) for s in range(S) for k in range(Tk)
            for t in range(Tn) if np.any(tc[p, b, k] > 0)]

    def one(job) -> np.ndarray:
        p, b, s, k, t = job
        deck = dac_netlist(fcm.G[s, k, t], tc[p, b, k], spec.circuit, spec.dac, spec.device.sinh_b)
        vec = run_deck(deck, settings)
        try:
            return np.array([float(vec[f"i(vsense{j})"][0]) for j in range(Nc)])
        except KeyError as exc:
            raise SpiceError(f"ngspice output lacks {exc.args[0]}", log=", ".join(sorted(vec)[:50])) from None

    I = np.zeros((P, B, S, Tk, Tn, Nc))
    if workers <= 1:
        results = [one(j) for j in jobs]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, jobs))
    for job, r in zip(jobs, results):
        I[job] = r
    return I


def spice_evaluate(fcm, x, settings: NgspiceSettings | None = None, workers: int = 1) -> dict:
    """``xbarlab.verify.reference.evaluate`` with the tile currents from ngspice (``spice_tile_currents``).

    The same DAC codes, ADC (full scale of the model's calibration), accumulation
    and scale as the model; keys ``codes``, ``scale``, ``tile_codes``, ``I``, ``D``, ``y``.
    """
    from . import reference as ref

    if fcm.Gn is None:
        raise ValueError("fcm has no tiles (all-zero weights): there is no circuit to simulate")
    x = np.atleast_2d(np.asarray(x, dtype=float))
    codes, scale = ref.dac_codes(fcm, x)
    tc = ref.tile_codes(fcm, codes)
    I = spice_tile_currents(fcm, tc, settings, workers)
    D = ref.adc(fcm, I)
    return {"codes": codes, "scale": scale, "tile_codes": tc, "I": I, "D": D,
            "y": ref.accumulate(fcm, D, codes, scale)}


def spice_evaluate_codes(fcm, codes, scale, settings: NgspiceSettings | None = None, workers: int = 1) -> dict:
    """``spice_evaluate`` at given DAC codes (P, B, K) and input scale (B,) instead of inputs x.

    For an evaluation whose codes are not float64's: float32 rounds
    x / scale * full in float32, which can land on the other side of a
    rounding boundary. Codes must be whole numbers in [0, full]; P is 1 or 2
    (positive and negative phase). Same keys as ``spice_evaluate``.
    """
    from . import reference as ref

    if fcm.Gn is None:
        raise ValueError("fcm has no tiles (all-zero weights): there is no circuit to simulate")
    full = fcm.spec.dac.full_code
    c = np.asarray(codes, dtype=float)
    s = np.asarray(scale, dtype=float).reshape(-1)
    if c.ndim != 3 or c.shape[0] not in (1, 2) or c.shape[2] != fcm.shape[0]:
        raise ValueError(f"codes must be (P, B, {fcm.shape[0]}) with P 1 or 2, got shape {np.shape(codes)}")
    if not np.all((c >= 0) & (c <= full) & (c == np.rint(c))):
        raise ValueError(f"codes must be whole numbers in [0, {full}], got values in [{c.min()!r}, {c.max()!r}]")
    if s.shape != (c.shape[1],) or not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError(f"scale must be ({c.shape[1]},) finite and > 0, got {np.shape(scale)} {s[:4]!r}")
    tc = ref.tile_codes(fcm, c)
    I = spice_tile_currents(fcm, tc, settings, workers)
    D = ref.adc(fcm, I)
    return {"codes": c, "scale": s, "tile_codes": tc, "I": I, "D": D, "y": ref.accumulate(fcm, D, c, s)}


def spice_evaluate_layer(fcms, xs, settings: NgspiceSettings | None = None, workers: int = 1,
                         codes=None) -> list[dict]:
    """A whole layer against ngspice: ``spice_evaluate`` of each of its FCMs on its own input matrix.

    A Linear layer is one FCM on its inputs (B, K); a convolution is one FCM
    per group, each on that group's im2col patches (B * L, K_g), one patch
    per row. ``codes``: optional (codes, scale) per FCM (``spice_evaluate_codes``)
    in place of the float64 codes of ``xs``. Returns one dict per FCM, in order.
    """
    fcms = list(fcms)
    xs = list(xs)
    if len(xs) != len(fcms):
        raise ValueError(f"xs must hold one input matrix per FCM ({len(fcms)}), got {len(xs)}")
    if codes is not None:
        codes = list(codes)
        if len(codes) != len(fcms):
            raise ValueError(f"codes must hold one (codes, scale) per FCM ({len(fcms)}), got {len(codes)}")
        return [spice_evaluate_codes(f, c, s, settings, workers) for f, (c, s) in zip(fcms, codes)]
    return [spice_evaluate(f, x, settings, workers) for f, x in zip(fcms, xs)]
