"""Fig. 3(b): sneak path in a 3x2 crossbar, all cells 20 kOhm, inputs 0.2, 0.01, 0.2 V.

With the row and column wires and the driver of the technology preset, the
middle row's cells reverse (current from b(1, j) back toward Vin2) once the
column nodes rise above the middle row's 0.01 V, i.e. once the sense
resistance is above about 0.5 kOhm. We state the parasitics used:
r_row = r_col = 2.5 ohm, r_driver = 50 ohm and R_sense = 1 kOhm (a weak
current-sense input), and sweep R_sense from 100 ohm to 10 kOhm to show the
threshold. Every point is solved by ngspice and by the exact solver.
"""

from __future__ import annotations

import numpy as np

from .common import RunConfig, Timer, failure_note, failures, ok_rows, tech_of, write_figure, write_summary

NAME = "fig3b_sneak"
R_CELL = 20e3  # ohm, paper Fig. 3(b)
V_IN = (0.2, 0.01, 0.2)  # volt, paper Fig. 3(b)
R_SENSE_CHOSEN = 1e3  # ohm


def circuit(r_sense: float, tech):
    import xbarlab as xb

    return xb.CircuitParams(r_row=tech.r_wire, r_col=tech.r_wire, r_sense=r_sense, r_driver=tech.r_driver)


def sneak_point(p: dict, seed) -> dict:
    """Cell currents (A, from row node a to column node b) of the 3x2 crossbar, by one engine."""
    import xbarlab as xb

    tech = tech_of(p)
    G = np.full((3, 2), 1.0 / R_CELL)
    res = xb.solve(G, np.array(V_IN), circuit(float(p["r_sense"]), tech), engine=p["engine"])
    rows, cols = np.indices(G.shape)
    return {"row": rows.ravel(), "col": cols.ravel(), "i_cell_A": res.i_cell.ravel(),
            "v_row_V": res.v_row.ravel(), "v_col_V": res.v_col.ravel()}


def reversal_threshold(tech, lo: float = 1.0, hi: float = 1e5) -> float:
    """Smallest R_sense (ohm) at which cell (1, 1) reverses, by bisection on the exact solver."""
    import xbarlab as xb

    G, V = np.full((3, 2), 1.0 / R_CELL), np.array(V_IN)

    def i11(r):
        return xb.solve(G, V, circuit(r, tech)).i_cell[1, 1]

    if i11(hi) >= 0 or i11(lo) < 0:
        return float("nan")
    for _ in range(60):
        mid = np.sqrt(lo * hi)
        lo, hi = (lo, mid) if i11(mid) < 0 else (mid, hi)
    return float(hi)


def run(cfg: RunConfig) -> dict:
    from . import plots

    n = 5 if cfg.mode == "quick" else 21
    r_senses = sorted(set([float(x) for x in np.geomspace(100.0, 1e4, n)] + [R_SENSE_CHOSEN]))
    pts = [{"r_sense": r, "engine": e} for r in r_senses for e in ("exact", "ngspice")]
    with Timer() as t:
        df = cfg.sweep(sneak_point, pts, NAME, timeout_s=120.0)
    ok = ok_rows(df, ["row", "col", "i_cell_A", "v_row_V", "v_col_V"])
    ok["r_sense_ohm"] = ok.pop("r_sense")
    ok["r_wire_ohm"] = cfg.tech.r_wire
    ok["r_driver_ohm"] = cfg.tech.r_driver
    ok["r_cell_ohm"] = R_CELL
    ok["v_in_V"] = [V_IN[int(r)] for r in ok["row"]]
    ok["reversed"] = ok["i_cell_A"] < 0
    ok["chosen"] = np.isclose(ok["r_sense_ohm"], R_SENSE_CHOSEN)
    tidy = ok[["engine", "r_sense_ohm", "r_wire_ohm", "r_driver_ohm", "r_cell_ohm", "row", "col", "v_in_V",
               "i_cell_A", "reversed", "v_row_V", "v_col_V", "chosen"]].sort_values(["engine", "r_sense_ohm", "row", "col"])
    tidy = tidy.reset_index(drop=True)
    tidy["error_definition"] = "not an error figure: signed cell currents a(i,j) -> b(i,j), ampere"
    ex = tidy[tidy["engine"] == "exact"].set_index(["r_sense_ohm", "row", "col"])["i_cell_A"]
    sp = tidy[tidy["engine"] == "ngspice"].set_index(["r_sense_ohm", "row", "col"])["i_cell_A"]
    both = ex.index.intersection(sp.index)
    worst = float((ex[both] - sp[both]).abs().max() / sp[both].abs().max()) if len(both) else float("nan")
    ch = tidy[tidy["chosen"] & (tidy["engine"] == "ngspice")].set_index(["row", "col"])["i_cell_A"]
    i11 = float(ch.get((1, 1), np.nan))
    thr = reversal_threshold(cfg.tech)
    fig = plots.sneak_figure(tidy) if len(tidy) else plots.no_data_figure(NAME)
    caption = [
        f"3x2 crossbar, all cells {R_CELL / 1e3:g} kOhm, inputs {', '.join(f'{v:g}' for v in V_IN)} V (paper Fig. 3(b)). "
        f"Parasitics chosen so that the reversal occurs: r_row = r_col = {cfg.tech.r_wire} ohm/segment, r_driver = "
        f"{cfg.tech.r_driver} ohm, R_sense = {R_SENSE_CHOSEN / 1e3:g} kOhm.",
        f"Middle row, second column (cell a22-b22 in the paper's 1-based names): i = {i11:.4g} A in ngspice, "
        + ("REVERSED (it flows from b22 back toward Vin2)." if i11 < 0 else "NOT reversed." if i11 >= 0
           else "NOT CHECKED: its ngspice point failed (see FAILED above)."),
        "Cell currents at the chosen point (ngspice, A; 0-based (row, col)): " + ", ".join(f"({r},{c}): {v:.3e}" for (r, c), v in ch.items()) + ".",
        f"Right: the middle-row second-column current against R_sense (wires and driver fixed); it reverses for "
        f"R_sense above {thr:.4g} ohm (bisection, exact solver). With the preset's R_sense = {cfg.tech.r_sense:g} ohm it "
        "does not reverse; both middle-row cells reverse together here.",
        f"ngspice vs exact over all {len(both)} cell currents: largest difference {worst:.3g} of the largest current. "
        f"Wall time {t.s:.1f} s.",
    ]
    fails = failures(df)
    if fails:
        caption.insert(0, failure_note(df))
    write_figure(cfg, NAME, tidy, fig, caption)
    summary = {"mode": cfg.mode, "wall_s": t.s, "i_cell_11_ngspice_A": i11, "reversed": bool(i11 < 0),
               "r_sense_threshold_ohm": thr, "max_rel_diff_ngspice_vs_exact": worst, "failed": fails,
               "chosen": {"r_wire": cfg.tech.r_wire, "r_driver": cfg.tech.r_driver, "r_sense": R_SENSE_CHOSEN}}
    write_summary(cfg, NAME, summary)
    return summary
