"""Public entry points: solve / simulate a crossbar, and its G_non-ideal."""

from __future__ import annotations

import numpy as np

from . import conditioning as cond
from .arrays import check_conductance_stack, check_conductances, check_voltages
from .engines import exact, structured
from .engines.ngspice import NgspiceSettings
from .engines.result import SolveResult
from .params import CircuitParams, check_circuit
from .topology import backward_as_forward, check_read

ENGINES = ("exact", "ngspice")


def turn(X: np.ndarray) -> np.ndarray:
    """X (..., M, N) turned by a half turn and transposed: (..., N, M) with
    ``turn(X)[..., r, c] == X[..., M-1-c, N-1-r]``; ``turn(turn(X)) == X``."""
    return np.ascontiguousarray(np.swapaxes(np.asarray(X)[..., ::-1, ::-1], -1, -2))


def solve(G, V, circuit: CircuitParams, engine: str = "exact",
          ngspice: NgspiceSettings | None = None, read: str = "forward", cells=None) -> SolveResult:
    """Solve the crossbar: node voltages, cell currents and output currents.

    Args:
        G: cell conductances, siemens, shape (M, N), finite and >= 0.
        V: row input voltages, volt, shape (M,) or a batch (B, M); for
            ``read="backward"`` column input voltages, shape (N,) or (B, N).
        circuit: the parasitic resistances (``CircuitParams``, ohm).
        engine: ``"exact"`` (sparse nodal analysis) or ``"ngspice"``.
        ngspice: settings of the ngspice engine (back end, timeout).
        read: ``"forward"`` (rows driven at their left end, columns sensed at
            their bottom end) or ``"backward"`` (the transposed read: columns
            driven at their bottom end through r_driver, rows sensed at their
            left end through r_sense; ``i_out`` has shape ([B,] M); see
            ``netlists/README.md``). A per-row r_driver raises ValueError in
            the backward read. Node voltages and ``i_cell`` (from a(i, j) to
            b(i, j)) keep the array's (M, N) layout in both reads.
        cells: None (linear cells, conductance G) or non-linear cells of device conductance G:
            ``xbarlab.engines.nonlinear.SinhCells(b)`` (I = G sinh(b V) / b) or a ``TransistorTable``
            (1T-1R cells; ``nonlinear.cells_for_device(device)`` builds either from a ``DeviceParams``).
            The exact engine then runs the Newton solver (``engines.nonlinear.solve``; it raises
            ``NewtonConvergenceError`` rather than return an unconverged answer), ngspice the non-linear
            deck (``nonlinear.solve_ngspice``). Forward read only.
    """
    if cells is not None:
        return _solve_cells(G, V, circuit, engine, ngspice, read, cells)
    if check_read(read) == "backward":
        return _solve_backward(G, V, circuit, engine, ngspice)
    G = check_conductances(G)
    V = check_voltages(V, G.shape[0])
    circuit = check_circuit(circuit)
    circuit.r_driver_rows(G.shape[0])  # a per-row r_driver must match M
    if engine == "exact":
        return _solve_exact(G, V, circuit)
    if engine == "ngspice":
        from .engines import spice

        cond.check_ngspice_range(G, V, circuit)
        return spice.solve(G, V, circuit, ngspice or NgspiceSettings())
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def _solve_cells(G, V, circuit: CircuitParams, engine: str, ngspice: NgspiceSettings | None, read: str,
                 cells) -> SolveResult:
    """``solve`` with non-linear cells: the Newton solver or ngspice's non-linear deck."""
    from .engines import nonlinear

    nonlinear.check_cells(cells)
    if check_read(read) != "forward":
        raise ValueError(f"read must be 'forward' for non-linear cells (cells set), got {read!r}")
    G = check_conductances(G)
    V = check_voltages(V, G.shape[0])
    circuit = check_circuit(circuit)
    circuit.r_driver_rows(G.shape[0])
    if engine == "exact":
        return nonlinear.solve(G, V, circuit, cells)
    if engine == "ngspice":  # solve_ngspice checks ngspice's range itself
        return nonlinear.solve_ngspice(G, V, circuit, cells, ngspice or NgspiceSettings())
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def _solve_backward(G, V, circuit: CircuitParams, engine: str, ngspice: NgspiceSettings | None) -> SolveResult:
    """The backward read: exact as the forward read of the turned array (``backward_as_forward``),
    ngspice on the backward deck written directly."""
    G = check_conductances(G)
    V = check_voltages(V, G.shape[1])
    circuit = check_circuit(circuit)
    c_t = backward_as_forward(circuit)
    if engine == "exact":
        r = _solve_exact(turn(G), np.ascontiguousarray(V[..., ::-1]), c_t)
        # The turned array's cells run from its rows (the columns here) to its columns: -i_cell.
        return SolveResult(v_row=turn(r.v_col), v_col=turn(r.v_row), i_cell=-turn(r.i_cell),
                           i_out=np.ascontiguousarray(r.i_out[..., ::-1]), engine=r.engine)
    if engine == "ngspice":
        from .engines import spice

        cond.check_ngspice_range(G, V, circuit)
        return spice.solve(G, V, circuit, ngspice or NgspiceSettings(), read="backward")
    raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")


def _solve_exact(G: np.ndarray, V: np.ndarray, circuit: CircuitParams) -> SolveResult:
    """The exact engine on the circuit scaled by powers of two (exact), so that only the
    conductance spread, not the absolute scale, limits it (``xbarlab.conditioning``)."""
    if circuit.is_ideal:  # no system is solved: I = V @ G
        g_hi = float(G.max())
    else:
        g_hi = cond.check_spread(G, circuit, "exact")[1]
    s = cond.pow2_scale(g_hi)
    t = cond.pow2_scale(float(np.abs(V).max()) if V.size else 0.0)
    r = exact.solve(G * s if s != 1 else G, V * t if t != 1 else V, cond.scaled_circuit(circuit, s))
    i_out = cond.unscale(r.i_out, (1.0 / s, 1.0 / t), "output currents", "A")
    i_cell = cond.unscale(r.i_cell, (1.0 / s, 1.0 / t), "cell currents", "A")  # they can overflow where
    # i_out does not (mixed-sign V cancelling in a column)
    with np.errstate(over="ignore", under="ignore"):
        return SolveResult(v_row=r.v_row / t, v_col=r.v_col / t, i_cell=i_cell, i_out=i_out, engine=r.engine)


def simulate(G, V, circuit: CircuitParams, engine: str = "exact",
             ngspice: NgspiceSettings | None = None, read: str = "forward", cells=None) -> np.ndarray:
    """Output currents (A) of the crossbar: shape (N,) for V (M,), (B, N) for V (B, M).

    With the exact engine, r_row > 0, r_col > 0 and cells the block elimination
    resolves (``conditioning.structured_resolves``) this is ``V @ g_nonideal(G, c)``
    (as exact, and faster than the sparse solve at every size measured, one
    vector included: ``benchmarks/bench_peers.py``), except for input vectors
    whose outputs cancel (mixed signs) below what that product resolves to
    1e-9 (``conditioning.structured_row_error``): those are the output
    currents of ``solve``, as are all of them otherwise.

    ``read="backward"``: V (N,) or (B, N) drives the columns and the row
    currents (M,) or (B, M) are returned (see ``solve``); with the exact
    engine this is the forward read of the turned array (``turn``,
    ``topology.backward_as_forward``), so every forward engine serves it.

    ``cells`` (non-linear cells, see ``solve``): the output currents of ``solve(..., cells=cells)``.
    """
    if cells is not None:
        return solve(G, V, circuit, engine=engine, ngspice=ngspice, read=read, cells=cells).i_out
    if check_read(read) == "backward" and engine == "exact":
        G = check_conductances(G)
        V = check_voltages(V, G.shape[1])
        c_t = backward_as_forward(check_circuit(circuit))
        return np.ascontiguousarray(simulate(turn(G), V[..., ::-1], c_t)[..., ::-1])
    if read == "backward":
        return solve(G, V, circuit, engine=engine, ngspice=ngspice, read=read).i_out
    if engine == "exact":
        circuit = check_circuit(circuit)
        G = check_conductances(G)
        if structured.applicable(circuit) and cond.structured_resolves(G, circuit):
            V = check_voltages(V, G.shape[0])
            i, unresolved = _apply_g_nonideal(V, _g_nonideal_checked(G[None], circuit, None)[0],
                                              cond.structured_row_error(G, circuit))
            if np.any(unresolved):  # outputs that cancel below what V @ Gn resolves: the sparse solve
                i2, V2 = np.atleast_2d(i), np.atleast_2d(V)
                i2[unresolved] = _solve_exact(G, V2[unresolved], circuit).i_out
            return i
    return solve(G, V, circuit, engine=engine, ngspice=ngspice).i_out


def _apply_g_nonideal(V: np.ndarray, Gn: np.ndarray, row_error: float) -> tuple[np.ndarray, np.ndarray]:
    """V @ Gn on operands scaled by powers of two (exact), so that a product beyond double
    precision's range raises (``conditioning.unscale``) instead of returning inf or lost digits;
    and, per input vector, whether that product may be off by more than ``cond.ACCURACY`` of its
    largest output: each row of Gn is within ``row_error`` of its own largest entry (plus the
    product's rounding), so output j is within that times sum_i |V_i| max_k Gn[i, k], which
    mixed-sign V whose outputs cancel can make larger than the outputs themselves."""
    t = cond.pow2_scale(float(np.abs(V).max()) if V.size else 0.0)
    u = cond.pow2_scale(float(Gn.max()) if Gn.size else 0.0)
    Vs, Gs = (V * t if t != 1 else V), (Gn * u if u != 1 else Gn)
    i = Vs @ Gs
    eps = row_error + Gn.shape[0] * np.finfo(float).eps
    bound = eps * (np.abs(Vs) @ Gs.max(axis=1))
    unresolved = np.atleast_1d(bound > cond.ACCURACY * np.abs(i).max(axis=-1, initial=0.0))
    return cond.unscale(i, (1.0 / t, 1.0 / u), "output currents", "A"), unresolved


def g_nonideal(G, circuit: CircuitParams, read: str = "forward") -> np.ndarray:
    """The paper's G_non-ideal (S), shape (M, N): ``simulate(G, V, c) == V @ g_nonideal(G, c)``.

    ``read="backward"``: shape (N, M), with ``simulate(G, V, c, read="backward")
    == V @ g_nonideal(G, c, read="backward")``. It is not the transpose of the
    forward G_non-ideal: by reciprocity it is the transpose of the forward
    G_non-ideal of the circuit with r_driver and r_sense exchanged, so the two
    agree only when r_driver == r_sense (``tests/core/test_backward_read.py``
    measures the difference).

    Exact for driver, wire and sense resistance (the crossbar is linear). Uses
    the block elimination of ``engines.structured`` when r_row > 0 and
    r_col > 0 (along the longer side; long narrow arrays in the compiled loop
    of ``engines.lines``), and sparse nodal analysis with one solve per row
    otherwise.
    """
    if check_read(read) == "backward":
        return g_nonideal_stack(check_conductances(G)[None], circuit, read=read)[0]
    G = check_conductances(G)
    return _g_nonideal_checked(G[None], circuit, None)[0]


def g_nonideal_stack(G, circuit: CircuitParams, chunk: int | None = None, read: str = "forward",
                     device=None) -> np.ndarray:
    """G_non-ideal for many tiles at once: G of shape (T, M, N) -> (T, M, N).

    The tiles share ``circuit``. They are processed ``chunk`` at a time
    (default: as many as fit in about 256 MB of work arrays) with batched
    LAPACK calls; this is the fast path for the thousands of tiles of a DNN.
    ``read="backward"``: (T, N, M), each tile's ``g_nonideal(G[t], c, read="backward")``.

    ``device`` (a torch device or its name, e.g. "cuda"): the tiles are solved by the row sweep
    in torch float64 on that device (``engines.sweep_torch``, one batch per chunk); the result
    is a numpy array, as without it. Circuits the sweep does not apply to (a zero wire
    resistance, or a conductance spread it cannot resolve) are solved on the CPU as without a
    device. ValueError when torch cannot use the device (e.g. "cuda" with no CUDA).
    """
    G = check_conductance_stack(G)
    if device is not None:
        from .engines.sweep_torch import device_for

        device = device_for(device)
    if check_read(read) == "backward":
        c_t = backward_as_forward(check_circuit(circuit))
        return np.ascontiguousarray(_g_nonideal_checked(turn(G), c_t, chunk, device)[:, ::-1, ::-1])
    return _g_nonideal_checked(G, circuit, chunk, device)


def _g_nonideal_checked(G: np.ndarray, circuit: CircuitParams, chunk: int | None, device=None) -> np.ndarray:
    """``g_nonideal_stack`` of a stack already checked by ``check_conductance_stack``."""
    circuit = check_circuit(circuit)
    T, M, N = G.shape
    circuit.r_driver_rows(M)
    if circuit.is_ideal:  # no parasitics: the crossbar computes V @ G exactly
        return G.copy()
    # The block elimination resolves a narrower conductance spread than the exact sparse
    # solver (xbarlab.conditioning); beyond it, the exact solver answers (slower) or refuses.
    g_hi = cond.check_spread(G, circuit, "G_non-ideal")[1]
    fast = structured.applicable(circuit) and cond.structured_resolves(G, circuit)
    s = cond.pow2_scale(g_hi)
    if s == 1.0:  # every conductance within 2**+-100 S: G_non-ideal (bounded by them) is finite and normal
        return _g_nonideal_scaled(G, circuit, chunk, fast, device)
    return cond.unscale(_g_nonideal_scaled(G * s, cond.scaled_circuit(circuit, s), chunk, fast, device),
                        (1.0 / s,), "G_non-ideal values", "S")


def _g_nonideal_scaled(G: np.ndarray, circuit: CircuitParams, chunk: int | None, fast: bool,
                       device=None) -> np.ndarray:
    T, M, N = G.shape
    if not fast:
        return np.stack([exact.g_nonideal(g, circuit) for g in G])
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer))):
        raise ValueError(f"chunk must be an integer >= 1 or None, got {chunk!r}")
    if chunk is None:  # work arrays of the elimination along the longer side: O(n (n + m)) per tile
        n, m = min(M, N), max(M, N)
        chunk = max(1, int(256e6 // (8 * n * (4 * n + 2 * m))))
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk!r}")
    out = np.empty_like(G)
    for k in range(0, T, chunk):
        part = G[k:k + chunk]
        out[k:k + chunk] = (structured.g_nonideal_stack(part, circuit) if device is None
                            else structured.row_sweep_on(part, circuit, device))
    return out
