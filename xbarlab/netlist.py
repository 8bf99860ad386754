"""ngspice deck text for a crossbar: a pure, deterministic function of its inputs.

Every name in the deck is generated here from integer indices; no string from
the caller ever reaches it. Numbers are written in exponent form with 15
significant digits (``1.00000000000000e+06``), never with SPICE scale suffixes,
because SPICE reads ``M`` as milli.
"""

from __future__ import annotations

import math

import numpy as np

from .arrays import check_conductances, check_real_number_types, check_voltages
from .params import CircuitParams, check_circuit, check_number
from .topology import Topology, build, build_backward, check_read

TITLE = "* xbarlab crossbar deck"


def spice_number(x: float) -> str:
    """Exponent form, 15 significant digits; refuses non-finite values."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"cannot write non-finite number {x!r} into a netlist")
    return f"{x:.14e}"


def node_names(topo: Topology) -> list[str]:
    """Deck name of every node index (merged nodes share their representative's name)."""
    names = topo.index.names()
    rep_name = [names[r] for r in topo.rep]
    return [rep_name[c] for c in topo.comp]


def wire_lines(topo: Topology, name: list[str]) -> list[str]:
    """One resistor card per wire of ``topo`` with r > 0 (zero-ohm wires were merged)."""
    w = topo.wires
    return [f"{w.kind[k]}{w.label[k]} {name[w.n1[k]]} {name[w.n2[k]]} {spice_number(w.ohm[k])}"
            for k in range(len(w.ohm)) if w.ohm[k] > 0]


def cell_lines(G: np.ndarray, idx, name: list[str]) -> list[str]:
    """Linear cells: ``rcell{i}_{j}`` of 1/G ohm between a(i,j) and b(i,j); G = 0 is open."""
    m, n = G.shape
    return [f"rcell{i}_{j} {name[int(idx.a(i, j))]} {name[int(idx.b(i, j))]} {spice_number(1.0 / G[i, j])}"
            for i in range(m) for j in range(n) if G[i, j] > 0]


def header_lines(title: str, m: int, n: int, circuit: CircuitParams, units: str = "ohm, volt, ampere") -> list[str]:
    """The first lines of a forward-read crossbar deck (this module's and ``netlist_1t1r``'s): the title, the
    shape and units, the wire and sense resistances."""
    return [title, f"* rows M={m} (inputs), columns N={n} (outputs); units: {units}",
            f"* r_row={spice_number(circuit.r_row)} r_col={spice_number(circuit.r_col)} "
            f"r_sense={spice_number(circuit.r_sense)} (per segment / per column)"]


def row_source_lines(V: np.ndarray, idx, name: list[str]) -> list[str]:
    """One voltage source per row, ``vrow{i}`` from its source node to ground at V[i] volt."""
    return [f"vrow{i} {name[int(idx.src(i))]} 0 dc {spice_number(V[i])}" for i in range(len(V))]


def ammeter_lines(idx, name: list[str]) -> list[str]:
    """0 V ammeters ``vsense{k}`` from each sense node to virtual ground (the outputs)."""
    return [f"vsense{k} {name[int(idx.msense(k))]} 0 dc 0" for k in range(idx.sensed)]


def netlist(G, V, circuit: CircuitParams, read: str = "forward") -> str:
    """The ngspice deck that solves the crossbar ``G`` (S) driven by ``V`` (V, shape (M,)).

    Output currents are the branch currents ``i(vsense{j})`` of 0 V ammeters
    at the sense amplifiers' virtual ground. The deck runs one ``.op``.
    ``read="backward"`` writes the transposed read instead (``backward_deck_text``):
    V of shape (N,) drives the columns at their bottom end, and ``i(vsense{i})``
    is the current out of row i's left end.
    """
    read = check_read(read)
    G = check_conductances(G)
    m, n = G.shape
    k = m if read == "forward" else n
    V = check_voltages(V, k)
    if V.ndim != 1:
        raise ValueError(f"netlist() takes one input vector of shape ({k},), got shape {V.shape}")
    check_circuit(circuit)
    if read == "backward":
        return backward_deck_text(G, V, circuit)
    return deck_text(G, V, circuit)


def backward_deck_text(G: np.ndarray, V: np.ndarray, circuit: CircuitParams) -> str:
    """Deck of the backward read for validated G (M, N) and V (N,), written directly from its own
    topology (``topology.build_backward``), not through the forward deck.

    Column j: ``vcol{j}`` at ``src{j}`` -> ``rdrv{j}`` (r_driver) -> ``d{j}`` ->
    ``rcol{M}_{j}`` (r_col) -> ``b{M-1}_{j}`` -> ... -> ``b0_{j}`` (top end open).
    Row i: ``a{i}_{N-1}`` -> ... -> ``a{i}_0`` -> ``rrow{i}_0`` (r_row) -> ``s{i}``
    -> ``rsense{i}`` (r_sense) -> ``m{i}`` -> 0 V ammeter ``vsense{i}`` (far end
    open). A per-row r_driver has no meaning here and raises ValueError.
    """
    m, n = G.shape
    topo = build_backward(m, n, circuit)
    name = node_names(topo)
    idx = topo.index
    lines = [
        "* xbarlab crossbar deck, backward read",
        f"* rows M={m} (outputs, sensed at their left end), columns N={n} (inputs, driven at their bottom end); "
        "units: ohm, volt, ampere",
        f"* r_row={spice_number(circuit.r_row)} r_col={spice_number(circuit.r_col)} "
        f"r_sense={spice_number(circuit.r_sense)} r_driver={spice_number(circuit.r_driver)} "
        "(per segment / per row sense / per column driver)",
        "* zero-ohm parasitics are ideal wires: their nodes are merged, no element is written",
        ".options numdgt=15",
        "* column sources",
    ]
    for j in range(n):
        lines.append(f"vcol{j} {name[int(idx.src(j))]} 0 dc {spice_number(V[j])}")
    lines.append("* wires (per column: driver and segments bottom-up; per row: segments to the left end, sense)")
    lines += wire_lines(topo, name)
    lines.append("* cells: resistor of 1/G ohm between a{i}_{j} (row) and b{i}_{j} (column); G=0 is open")
    lines += cell_lines(G, idx, name)
    lines.append("* row sense amplifiers: 0 V ammeters to virtual ground; output I_i = i(vsense{i})")
    lines += ammeter_lines(idx, name)
    lines += [".op", ".end", ""]
    return "\n".join(lines)


def dac_netlist(G, codes, circuit: CircuitParams, dac, sinh_b: float = 0.0) -> str:
    """The deck of the whole circuit: row DACs, driver, wires, cells, sense.

    Each row i is driven by a resistive-divider DAC at integer code
    ``codes[i]`` (``xbarlab.DACParams``): a source ``vdac{i}`` at v_read,
    ``rdac{i}`` = R_DAC(code) to the row's source node (omitted for code 0,
    an ideal wire at full code) and ``rpd{i}`` = R_PD to ground. With
    R_PD = 0 the DAC is ideal and ``vrow{i}`` holds the node at
    v_read * code / full. With ``sinh_b`` > 0 (1/volt) the cells are
    behavioural sources ``bcell{i}_{j}`` with I = G sinh(b V) / b instead of
    resistors.
    """
    from .peripherals.dac import DACParams

    G = check_conductances(G)
    m, n = G.shape
    if not isinstance(dac, DACParams):
        raise ValueError(f"dac must be an xbarlab.DACParams, got {type(dac).__name__}")
    check_real_number_types(codes, "codes")  # np.asarray reads True as code 1 and '1' fails as TypeError
    c = np.asarray(codes)
    if c.shape != (m,):
        raise ValueError(f"codes must have shape ({m},) (one DAC code per row), got {c.shape}")
    c = dac.check_codes(c)
    check_circuit(circuit)
    b = check_number("sinh_b", sinh_b, "per volt")
    if not (math.isfinite(b) and b >= 0):
        raise ValueError(f"sinh_b must be finite and >= 0 per volt, got {sinh_b!r}")
    return deck_text(G, dac.v_ideal(c), circuit, dac=dac, codes=c, sinh_b=b)


def _dac_lines(nodes: list[str], dac, codes: np.ndarray) -> list[str]:
    """Row DAC elements: row i's divider drives node ``nodes[i]`` at integer code ``codes[i]``."""
    lines = ["* row DACs: divider v_read --rdac(code)-- row source node --rpd-- ground"]
    full = dac.full_code
    for i, (node, code) in enumerate(zip(nodes, codes)):
        if dac.r_pd == 0:
            lines.append(f"vrow{i} {node} 0 dc {spice_number(dac.v_read * code / full)}")
            continue
        if code == full:
            lines.append(f"vdac{i} {node} 0 dc {spice_number(dac.v_read)}")
        elif code > 0:
            lines.append(f"vdac{i} dacv{i} 0 dc {spice_number(dac.v_read)}")
            lines.append(f"rdac{i} dacv{i} {node} {spice_number(dac.r_pd * (full / code - 1.0))}")
        lines.append(f"rpd{i} {node} 0 {spice_number(dac.r_pd)}")
    return lines


def dac_divider_netlist(dac, code, r_load_ohm: float) -> str:
    """The deck of one divider DAC at integer ``code`` driving a resistor ``r_load_ohm`` (ohm) to ground.

    The DAC elements are those of ``dac_netlist`` (row 0), with the output
    node ``out``: ngspice's ``v(out)`` is the loaded output, which the model
    gives as ``dac.v_loaded([code], 1 / r_load_ohm)`` (paper Fig. 3(a)).
    """
    from .params import check_resistance
    from .peripherals.dac import DACParams

    if not isinstance(dac, DACParams):
        raise ValueError(f"dac must be an xbarlab.DACParams, got {type(dac).__name__}")
    check_real_number_types(code, "code")
    c = dac.check_codes(np.asarray([code]))
    r_load = check_resistance("r_load_ohm", r_load_ohm)
    if r_load == 0:
        raise ValueError(f"r_load_ohm must be > 0 ohm, got {r_load_ohm!r}")
    lines = ["* xbarlab divider DAC under a resistive load",
             f"* bits={dac.bits} code={int(c[0])} v_read={spice_number(dac.v_read)} r_pd={spice_number(dac.r_pd)}; "
             "units: ohm, volt, ampere",
             ".options numdgt=15"]
    lines += _dac_lines(["out"], dac, c)
    lines += ["* load", f"rload out 0 {spice_number(r_load)}", ".op", ".end", ""]
    return "\n".join(lines)


def _volt(node: str) -> str:
    return "0" if node == "0" else f"v({node})"


def deck_text(G: np.ndarray, V: np.ndarray, circuit: CircuitParams, extra: list[str] | None = None,
              *, dac=None, codes: np.ndarray | None = None, sinh_b: float = 0.0) -> str:
    """Deck for validated arrays. ``extra`` lines (generated by xbarlab only) go before ``.op``.

    ``dac``/``codes`` replace the row sources by DAC dividers and ``sinh_b``
    > 0 writes sinh cells (see ``dac_netlist``); the defaults give the plain
    crossbar deck, unchanged.
    """
    m, n = G.shape
    topo = build(m, n, circuit)
    name = node_names(topo)
    idx = topo.index
    lines = [
        *header_lines(TITLE, m, n, circuit),
        "* zero-ohm parasitics are ideal wires: their nodes are merged, no element is written",
        ".options numdgt=15",
        "* row sources",
    ]
    if dac is None:
        lines += row_source_lines(V[:m], idx, name)
    else:
        lines.pop()  # "* row sources"
        lines += _dac_lines([name[int(idx.src(i))] for i in range(m)], dac, codes)
    lines.append("* wires (driver, row segments, column segments, sense)")
    lines += wire_lines(topo, name)
    if sinh_b > 0:
        lines.append(f"* cells: I = G sinh(b V) / b from a{{i}}_{{j}} to b{{i}}_{{j}}, b={spice_number(sinh_b)} /V; G=0 is open")
        for i in range(m):
            for j in range(n):
                if G[i, j] > 0:
                    na, nb = name[int(idx.a(i, j))], name[int(idx.b(i, j))]
                    lines.append(
                        f"bcell{i}_{j} {na} {nb} i={spice_number(G[i, j] / sinh_b)}*sinh("
                        f"{spice_number(sinh_b)}*({_volt(na)}-{_volt(nb)}))"
                    )
    else:
        lines.append("* cells: resistor of 1/G ohm between a{i}_{j} (row) and b{i}_{j} (column); G=0 is open")
    if sinh_b == 0:
        lines += cell_lines(G, idx, name)
    lines.append("* sense amplifiers: 0 V ammeters to virtual ground; output I_j = i(vsense{j})")
    lines += ammeter_lines(idx, name)
    lines.extend(extra or [])
    lines += [".op", ".end", ""]
    return "\n".join(lines)


def netlist_1t1r(G, V, circuit: CircuitParams, access, card=None) -> str:
    """The deck of a 1T-1R crossbar (device G in S in series with the NMOS ``access``); see
    ``xbarlab.netlist_1t1r.netlist_1t1r``, where the writer lives."""
    from .netlist_1t1r import netlist_1t1r as write

    return write(G, V, circuit, access, card)
