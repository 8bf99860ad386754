"""ngspice decks of 1T-1R crossbars and of the one-transistor sweep the solver's table comes from.

The crossbar deck has the conventions and wires of ``xbarlab.netlist``
(``netlists/README.md``): the same row sources, driver, row and column
segments, sense resistors and 0 V ammeters, from the same topology. Each cell
with G > 0 becomes the device resistor ``rcell{i}_{j}`` (1/G ohm) and the
access NMOS ``m{i}_{j}`` joined at node ``x{i}_{j}``; gates are driven by one
ideal source per gate line (``vgr{i}`` on node ``gr{i}``, or ``vgc{j}`` on
``gc{j}``), the bulk is ground. The validated model card is written from its
parsed numbers under the name ``xbnmos`` (``xbarlab.cards``). Pure functions
of their inputs; every name is generated from indices.
"""

from __future__ import annotations

import numpy as np

from .arrays import check_conductances, check_voltages
from .cards import DECK_MODEL, ModelCard
from .netlist import ammeter_lines, header_lines, node_names, row_source_lines, spice_number, wire_lines
from .params import CircuitParams, check_circuit, check_number
from .topology import build
from .transistor import AccessTransistor, GateLine, TransistorSide

TITLE = "* xbarlab 1t-1r crossbar deck"
SWEEP_TITLE = "* xbarlab access transistor sweep"
# ngspice's default Newton tolerances: tightening them (reltol=1e-12) made ngspice fail to converge on
# 16x16 crossbars, while the defaults agree with it to ~1e-14 where both converge
OPTIONS = ".options numdgt=15"
# for verification runs: ngspice stops its Newton iteration at reltol (default 1e-3) and vntol (1e-6 V), which
# left up to 4.7e-9 relative in single-row sinh crossbars against a 50-digit solve, 2.6e-11 with these
# (tests/core/test_nonlinear_sinh.py::test_sinh_newton_against_a_50_digit_solve)
VERIFY_OPTIONS = ".options numdgt=15 reltol=1e-9 vntol=1e-12"


def verification_deck(deck: str) -> str:
    """``deck`` (written by xbarlab.netlist or this module) with ngspice's tolerances tightened to
    ``VERIFY_OPTIONS``, for checks of the solvers at 1e-9."""
    if OPTIONS not in deck.split("\n"):
        raise ValueError("verification_deck needs a deck with the writer's '.options numdgt=15' line")
    return "\n".join(VERIFY_OPTIONS if line == OPTIONS else line for line in deck.split("\n"))


def _check_access(access) -> AccessTransistor:
    if not isinstance(access, AccessTransistor):
        raise ValueError(f"access must be an xbarlab.transistor.AccessTransistor, got {type(access).__name__}")
    return access


def _mos(name: str, drain: str, gate: str, source: str, access: AccessTransistor) -> str:
    return (f"{name} {drain} {gate} {source} 0 {DECK_MODEL} w={spice_number(access.w_m)} "
            f"l={spice_number(access.l_m)}")


def netlist_1t1r(G, V, circuit: CircuitParams, access: AccessTransistor, card: ModelCard | None = None) -> str:
    """The ngspice deck (one ``.op``) of the 1T-1R crossbar ``G`` (S, the devices) driven by ``V`` (V, (M,)).

    ``card`` is the validated model (default: ``access.model_card()``, read
    and checked now). Outputs are ``i(vsense{j})`` as in ``xbarlab.netlist``.
    """
    G = check_conductances(G)
    m, n = G.shape
    V = check_voltages(V, m)
    if V.ndim != 1:
        raise ValueError(f"netlist_1t1r() takes one input vector of shape ({m},), got shape {V.shape}")
    check_circuit(circuit)
    circuit.r_driver_rows(m)
    access = _check_access(access)
    card = access.model_card() if card is None else card
    if not isinstance(card, ModelCard):
        raise ValueError(f"card must be an xbarlab.cards.ModelCard, got {type(card).__name__}")
    topo = build(m, n, circuit)
    name = node_names(topo)
    idx = topo.index
    lines = [
        *header_lines(TITLE, m, n, circuit, "ohm, volt, ampere, meter"),
        f"* cells: device 1/G in series with nmos w={spice_number(access.w_m)} l={spice_number(access.l_m)}, "
        f"transistor at the {access.side.value} side, gate lines per {access.gate_line.value} "
        f"at {spice_number(access.v_gate_v)} V, bulk at ground",
        OPTIONS,
        *card.deck_lines(),
        "* row sources",
    ]
    lines += row_source_lines(V, idx, name)
    lines.append("* gate lines")
    prefix, count = ("gr", m) if access.gate_line is GateLine.ROW else ("gc", n)
    for k in range(count):
        lines.append(f"vg{prefix[1]}{k} {prefix}{k} 0 dc {spice_number(access.v_gate_v)}")
    lines.append("* wires (driver, row segments, column segments, sense)")
    lines += wire_lines(topo, name)
    lines.append("* cells: rcell{i}_{j} (1/G ohm) and nmos m{i}_{j} (drain gate source bulk) joined at x{i}_{j}; "
                 "G=0 is open")
    for i in range(m):
        for j in range(n):
            if G[i, j] > 0:
                na, nb, nx = name[int(idx.a(i, j))], name[int(idx.b(i, j))], f"x{i}_{j}"
                gate = f"{prefix}{i if access.gate_line is GateLine.ROW else j}"
                if access.side is TransistorSide.SENSE:
                    lines.append(f"rcell{i}_{j} {na} {nx} {spice_number(1.0 / G[i, j])}")
                    lines.append(_mos(f"m{i}_{j}", nx, gate, nb, access))
                else:
                    lines.append(_mos(f"m{i}_{j}", na, gate, nx, access))
                    lines.append(f"rcell{i}_{j} {nx} {nb} {spice_number(1.0 / G[i, j])}")
    lines.append("* sense amplifiers: 0 V ammeters to virtual ground; output I_j = i(vsense{j})")
    lines += ammeter_lines(idx, name)
    lines += [".op", ".end", ""]
    return "\n".join(lines)


MAX_SWEEP_POINTS = 1_000_000  # (V_ds, V_s) points of one transistor sweep; the default table has 27,715


def sweep_netlist(access: AccessTransistor, vs_lo: float, vs_hi: float, vds_max: float, step: float,
                  card: ModelCard | None = None) -> str:
    """Deck of one access transistor swept over its source voltage and drain-source voltage (V).

    Source ``vs`` (node ``s``) from ``vs_lo`` to ``vs_hi``, drain ``vds``
    (node ``d``, above ``s``) from ``-vds_max`` to ``vds_max``, both in
    ``step``; gate ``vg`` at ``access.v_gate_v``, bulk at ground. One
    ``.dc vds ... vs ...`` run. The current into the drain is ``-i(vds)`` and
    the current out of the source ``i(vs) - i(vds)``; they differ by the gate
    and bulk currents.
    """
    access = _check_access(access)
    card = access.model_card() if card is None else card
    lo, hi, dmax, st = (check_number(k, v, "volt") for k, v in
                        (("vs_lo", vs_lo), ("vs_hi", vs_hi), ("vds_max", vds_max), ("step", step)))
    if not (np.isfinite([lo, hi, dmax, st]).all() and hi > lo and dmax > 0 and st > 0):
        raise ValueError(f"sweep needs finite vs_lo < vs_hi, vds_max > 0 and step > 0 volt, got "
                         f"{vs_lo!r}, {vs_hi!r}, {vds_max!r}, {step!r}")
    points = (2 * dmax / st + 1) * ((hi - lo) / st + 1)
    if not points <= MAX_SWEEP_POINTS:
        raise ValueError(
            f"step={step!r} V makes a sweep of about {points:.3g} (V_ds, V_s) points over V_s in "
            f"[{vs_lo!r}, {vs_hi!r}] V and |V_ds| <= {vds_max!r} V, more than MAX_SWEEP_POINTS = "
            f"{MAX_SWEEP_POINTS:,}: ngspice holds every point in memory; use a larger step or a narrower range")
    return "\n".join([
        SWEEP_TITLE,
        f"* one nmos w={spice_number(access.w_m)} l={spice_number(access.l_m)} at "
        f"v_g={spice_number(access.v_gate_v)} V, bulk at ground; units: volt, ampere, meter",
        OPTIONS,
        *card.deck_lines(),
        "vds d s dc 0",
        f"vg g 0 dc {spice_number(access.v_gate_v)}",
        "vs s 0 dc 0",
        _mos("m0", "d", "g", "s", access),
        f".dc vds {spice_number(-dmax)} {spice_number(dmax)} {spice_number(st)} "
        f"vs {spice_number(lo)} {spice_number(hi)} {spice_number(st)}",
        ".end", "",
    ])
