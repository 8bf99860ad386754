"""Fig. 3(b): sneak path in a 3x2 crossbar, all cells at the preset's 20 kOhm, inputs 0.2, 0.01, 0.2 V.

The circuit is the preset's: cells at 1/g_max (the paper's Fig. 3(b)
20 kOhm is the source of the preset's g_max), its row and column wires, its
driver and its sense resistance; the rows are driven by ideal sources at the
paper's three input voltages (no DAC, as in the paper's figure). The middle
row's cells reverse (current from b(1, j) back toward Vin2) once the column
nodes rise above the middle row's 0.01 V. With the preset's values that needs
a sense resistance above about 0.5 kOhm, more than the preset's 100 ohm, so
the figure states the verdict at the preset and sweeps R_sense from 1x to
100x the preset's value (all else the preset's) to show the threshold.
Every point is solved by ngspice and by the exact solver.
"""

from __future__ import annotations

import numpy as np

from .common import RunConfig, Timer, failure_note, failures, ok_rows, spec_of, write_figure, write_summary

NAME = "fig3b_sneak"
V_IN = (0.2, 0.01, 0.2)  # volt: the experiment's row inputs, paper Fig. 3(b)
SENSE_SWEEP = (1.0, 100.0)  # R_sense swept over these multiples of the preset's r_sense (experiment axis)


def cells(spec) -> np.ndarray:
    """The 3x2 crossbar of Fig. 3(b): every cell at the preset's g_max (S), i.e. 20 kOhm."""
    return np.full((3, 2), spec.device.g_max)


def circuit(r_sense: float, spec):
    """The preset's circuit with the sense resistance ``r_sense`` (ohm)."""
    import dataclasses

    return dataclasses.replace(spec.circuit, r_sense=r_sense)


def sneak_point(p: dict, seed) -> dict:
    """Cell currents (A, from row node a to column node b) of the 3x2 crossbar, by one engine."""
    import xbarlab as xb

    spec = spec_of(p)
    G = cells(spec)
    res = xb.solve(G, np.array(V_IN), circuit(float(p["r_sense"]), spec), engine=p["engine"])
    rows, cols = np.indices(G.shape)
    return {"row": rows.ravel(), "col": cols.ravel(), "i_cell_A": res.i_cell.ravel(),
            "v_row_V": res.v_row.ravel(), "v_col_V": res.v_col.ravel()}


def reversal_threshold(spec, lo: float = 1.0, hi: float = 1e5) -> float:
    """Smallest R_sense (ohm) at which cell (1, 1) reverses, by bisection on the exact solver."""
    import xbarlab as xb

    G, V = cells(spec), np.array(V_IN)

    def i11(r):
        return xb.solve(G, V, circuit(r, spec)).i_cell[1, 1]

    if i11(hi) >= 0 or i11(lo) < 0:  # (threshold_phrase tells the two apart)
        return float("nan")
    for _ in range(60):
        mid = np.sqrt(lo * hi)
        lo, hi = (lo, mid) if i11(mid) < 0 else (mid, hi)
    return float(hi)


def threshold_phrase(spec, thr: float, lo: float = 1.0, hi: float = 1e5) -> str:
    """What the pages print after "it reverses": "for R_sense above X ohm", or why there is no X (NaN was
    printed as "above nan ohm" both when it never reverses up to ``hi`` and when it reverses already at ``lo``)."""
    if thr == thr:
        return f"for R_sense above {thr:.4g} ohm"
    import xbarlab as xb

    at_lo = xb.solve(cells(spec), np.array(V_IN), circuit(lo, spec)).i_cell[1, 1] < 0
    return f"already at R_sense = {lo:g} ohm" if at_lo else f"at no R_sense up to {hi:g} ohm"


def run(cfg: RunConfig) -> dict:
    from . import plots

    spec = cfg.spec
    r0 = spec.circuit.r_sense
    n = 5 if cfg.mode == "quick" else 21
    r_senses = sorted(set(float(r0 * x) for x in np.geomspace(*SENSE_SWEEP, n)))
    pts = [{"r_sense": r, "engine": e} for r in r_senses for e in ("exact", "ngspice")]
    with Timer() as t:
        df = cfg.sweep(sneak_point, pts, NAME, timeout_s=120.0)
    ok = ok_rows(df, ["row", "col", "i_cell_A", "v_row_V", "v_col_V"])
    ok["r_sense_ohm"] = ok.pop("r_sense")
    ok["r_row_ohm"] = spec.circuit.r_row
    ok["r_col_ohm"] = spec.circuit.r_col
    ok["r_driver_ohm"] = float(spec.circuit.r_driver_rows(3)[0])
    ok["r_cell_ohm"] = 1.0 / spec.device.g_max
    ok["v_in_V"] = [V_IN[int(r)] for r in ok["row"]]
    ok["reversed"] = ok["i_cell_A"] < 0
    ok["preset"] = np.isclose(ok["r_sense_ohm"], r0)
    tidy = ok[["engine", "r_sense_ohm", "r_row_ohm", "r_col_ohm", "r_driver_ohm", "r_cell_ohm", "row", "col", "v_in_V",
               "i_cell_A", "reversed", "v_row_V", "v_col_V", "preset"]].sort_values(["engine", "r_sense_ohm", "row", "col"])
    tidy = tidy.reset_index(drop=True)
    tidy["error_definition"] = "not an error figure: signed cell currents a(i,j) -> b(i,j), ampere"
    ex = tidy[tidy["engine"] == "exact"].set_index(["r_sense_ohm", "row", "col"])["i_cell_A"]
    sp = tidy[tidy["engine"] == "ngspice"].set_index(["r_sense_ohm", "row", "col"])["i_cell_A"]
    both = ex.index.intersection(sp.index)
    worst = float((ex[both] - sp[both]).abs().max() / sp[both].abs().max()) if len(both) else float("nan")
    ch = tidy[tidy["preset"] & (tidy["engine"] == "ngspice")].set_index(["row", "col"])["i_cell_A"]
    i11 = float(ch.get((1, 1), np.nan))
    thr = reversal_threshold(spec)
    phrase = threshold_phrase(spec, thr)
    sp11 = tidy[(tidy["engine"] == "ngspice") & (tidy["row"] == 1) & (tidy["col"] == 1)].sort_values("r_sense_ohm")
    rev = sp11[sp11["reversed"]]
    first_rev = (float(rev["r_sense_ohm"].iloc[0]), float(rev["i_cell_A"].iloc[0])) if len(rev) else None
    fig = plots.sneak_figure(tidy) if len(tidy) else plots.no_data_figure(NAME)
    caption = [
        f"3x2 crossbar, all cells {1e-3 / spec.device.g_max:g} kOhm (the preset's 1/g_max), inputs "
        f"{', '.join(f'{v:g}' for v in V_IN)} V from ideal sources (paper Fig. 3(b)); wires, driver and sense are "
        f"the preset's: r_row = {spec.circuit.r_row:g}, r_col = {spec.circuit.r_col:g} ohm/segment, r_driver = "
        f"{spec.circuit.r_driver} ohm, R_sense = {r0:g} ohm.",
        f"At the preset, middle row, second column (cell a22-b22 in the paper's 1-based names): i = {i11:.4g} A in "
        "ngspice, " + ("REVERSED (it flows from b22 back toward Vin2)." if i11 < 0 else "NOT reversed." if i11 >= 0
                       else "NOT CHECKED: its ngspice point failed (see FAILED above)."),
        "Cell currents at the preset (ngspice, A; 0-based (row, col)): "
        + ", ".join(f"({r},{c}): {v:.3e}" for (r, c), v in ch.items()) + ".",
        f"Right: the middle-row second-column current against R_sense, swept over {SENSE_SWEEP[0]:g}x to "
        f"{SENSE_SWEEP[1]:g}x the preset's value (everything else the preset's); it reverses {phrase} "
        "(bisection, exact solver)"
        + (f"; first reversed sweep point in ngspice: {first_rev[0]:.4g} ohm, i = {first_rev[1]:.3e} A." if first_rev
           else "; no sweep point reverses."),
        f"ngspice vs exact over all {len(both)} cell currents: largest difference {worst:.3g} of the largest current. "
        f"Wall time {t.s:.1f} s.",
    ]
    fails = failures(df)
    if fails:
        caption.insert(0, failure_note(df))
    write_figure(cfg, NAME, tidy, fig, caption)
    summary = {"mode": cfg.mode, "wall_s": t.s, "i_cell_11_ngspice_A": i11, "reversed": bool(i11 < 0) if i11 == i11 else None,
               "r_sense_threshold_ohm": thr, "reverses": phrase, "max_rel_diff_ngspice_vs_exact": worst, "failed": fails,
               "first_reversed_sweep_point": ({"r_sense_ohm": first_rev[0], "i_cell_11_ngspice_A": first_rev[1]}
                                              if first_rev else None),
               "preset": {"name": spec.name, "r_row": spec.circuit.r_row, "r_col": spec.circuit.r_col,
                          "r_driver": float(spec.circuit.r_driver_rows(3)[0]), "r_sense": r0}}
    write_summary(cfg, NAME, summary)
    return summary
