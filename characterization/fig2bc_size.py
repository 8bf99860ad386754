"""Fig. 2(b)/(c): error of the last column against crossbar size N, per non-ideality group.

All cells at G_MIN (Fig. 2(b)) or all at G_MAX (Fig. 2(c)) of the preset's
device; every row gets the same DAC code (mid scale, so the DAC's Thevenin
resistance is about R_PD/2). The groups are ``xbarlab.spec.group`` of the
preset; the DAC+DRIVER group is also run on the preset's ``strong-dac``
variant (its R_PD and source are in the preset file), column ``dac``, where
the preset defines one (``rxnn-spintronic`` does; the others do not). Every
point is solved by ngspice; the exact solver is run on the same circuit and
their difference is reported. In ``report`` mode N = 128 uses the exact
solver only (one 128x128 ngspice run takes 1 to 2.5 min, by machine); ``full``
runs ngspice at every size.
"""

from __future__ import annotations

import time

import numpy as np

from xbarlab.spec import load_preset, preset_names, preset_variants

from .common import RunConfig, Timer, failure_note, failures, ok_rows, spec_of, write_figure, write_summary
from .technology import ERROR_DEFINITION, GROUPS, PRESET, STRONG_DAC, column_error, group_circuit

NAME = "fig2bc_size"
SIZES = {"quick": (8, 16), "report": (8, 16, 32, 64, 128), "full": (8, 16, 32, 64, 128)}  # study design (issue 4)


def size_point(p: dict, seed) -> dict:
    """One (N, G state, group) point: last-column error by the chosen engine and by the exact solver."""
    import xbarlab as xb

    spec = spec_of(p)
    n = int(p["N"])
    g = spec.device.g_min if p["g_state"] == "G_MIN" else spec.device.g_max
    G = np.full((n, n), g)
    codes = np.full(n, float(p["code"]))
    V, c = group_circuit(spec, p["group"], codes)
    i_ideal = V @ G
    t0 = time.perf_counter()
    i_exact = xb.simulate(G, V, c, engine="exact")
    t1 = time.perf_counter()
    if p["engine"] == "ngspice":
        i_main = xb.simulate(G, V, c, engine="ngspice", ngspice=xb.NgspiceSettings(timeout_s=float(p["spice_timeout_s"])))
    else:
        i_main = i_exact
    t2 = time.perf_counter()
    e_main = column_error(i_ideal, i_main)
    e_exact = column_error(i_ideal, i_exact)
    return {
        "error_last_col": float(e_main[-1]),
        "error_last_col_exact": float(e_exact[-1]),
        "error_max_col": float(e_main.max()),
        "i_ideal_last_A": float(i_ideal[-1]),
        "i_nonideal_last_A": float(i_main[-1]),
        "abs_diff_error_engine_vs_exact": float(np.abs(e_main - e_exact).max()),
        "exact_s": t1 - t0,
        "engine_s": t2 - t1 if p["engine"] == "ngspice" else t1 - t0,
    }


def strong_spec(cfg: RunConfig):
    """The strong-DAC variant of the run's preset (same spec, R_PD of the preset file's ``strong-dac``), or None
    when the preset defines no such variant (then only the preset's own DAC is run)."""
    name = cfg.spec.name.split("+")[0] or PRESET
    if name not in preset_names() or STRONG_DAC not in preset_variants(name):
        return None
    return cfg.spec.replace(dac=load_preset(name, variant=STRONG_DAC).dac, name=f"{name}+{STRONG_DAC}")


def points(cfg: RunConfig) -> list[dict]:
    from xbarlab.sweep import canonical_json

    code = (cfg.spec.dac.full_code + 1) // 2
    strong = strong_spec(cfg)
    pts = []
    for n in SIZES[cfg.mode]:
        engine = "exact" if (cfg.mode == "report" and n > 64) else "ngspice"
        for g_state in ("G_MIN", "G_MAX"):
            base = {"N": int(n), "g_state": g_state, "code": int(code), "engine": engine, "spice_timeout_s": 900.0}
            pts += [{**base, "group": group, "dac": "preset", "r_pd_ohm": cfg.spec.dac.r_pd} for group in GROUPS]
            if strong is not None:
                pts.append({**base, "group": "DAC+DRIVER", "dac": STRONG_DAC, "r_pd_ohm": strong.dac.r_pd,
                            "spec": canonical_json(strong.to_dict())})
    return pts


def run(cfg: RunConfig) -> dict:
    from . import plots

    with Timer() as t:
        df = cfg.sweep(size_point, points(cfg), NAME, timeout_s=1200.0)
    cols = ["N", "g_state", "group", "dac", "r_pd_ohm", "engine", "code", "v_in_V", "error_last_col",
            "error_last_col_exact", "abs_diff_error_engine_vs_exact", "error_max_col", "i_ideal_last_A",
            "i_nonideal_last_A", "engine_s"]
    ok = ok_rows(df, cols)
    ok["v_in_V"] = cfg.spec.dac.v_ideal([ok["code"].iloc[0]])[0] if len(ok) else np.nan
    tidy = ok[cols].sort_values(["dac", "g_state", "group", "N"]).reset_index(drop=True)
    fig = plots.size_figure(tidy) if len(tidy) else plots.no_data_figure(NAME)
    n_spice = int((tidy["engine"] == "ngspice").sum())
    worst = float(tidy.loc[tidy["engine"] == "ngspice", "abs_diff_error_engine_vs_exact"].max()) if n_spice else float("nan")
    spice_128 = tidy[(tidy["engine"] == "ngspice") & (tidy["N"] == tidy["N"].max())]["engine_s"]
    strong = strong_spec(cfg)
    caption = [
        f"Error = {ERROR_DEFINITION}, here of the last (N-th) column of an NxN crossbar, against N.",
        "Left: all cells at G_MIN (paper Fig. 2(b)); right: all at G_MAX (Fig. 2(c)). "
        f"Every row is driven at DAC code {int(tidy['code'].iloc[0]) if len(tidy) else '-'} of {cfg.spec.dac.full_code} "
        f"({tidy['v_in_V'].iloc[0] if len(tidy) else float('nan'):.4g} V).",
        "Groups keep only their own non-idealities (others ideal, `xbarlab.spec.group`): WIRE (r_row = "
        f"{cfg.spec.circuit.r_row:g}, r_col = {cfg.spec.circuit.r_col:g} ohm/segment), SENSE ({cfg.spec.circuit.r_sense:g} "
        f"ohm), DAC+DRIVER (driver {cfg.spec.circuit.r_driver} ohm + DAC Thevenin R_th(code), R_PD = "
        f"{cfg.spec.dac.r_pd:g} ohm), WIRE+SENSE, ALL.",
        (f"Dashed: DAC+DRIVER on the preset's `{STRONG_DAC}` variant (R_PD = {strong.dac.r_pd:g} ohm, "
         "column dac); it is not one of the paper's groups, it shows how much of the DAC+DRIVER trend is the DAC's R_PD."
         if strong is not None else f"The preset defines no `{STRONG_DAC}` variant: DAC+DRIVER runs on its own DAC only."),
        f"Engine: ngspice for {n_spice} of {len(tidy)} points"
        + ("" if n_spice == len(tidy) else " (the rest, N = 128 in report mode, by the exact solver; the full run uses ngspice everywhere)")
        + f"; largest |error(ngspice) - error(exact)| = {worst:.3g}.",
    ]
    if len(spice_128):
        caption.append(f"One {int(tidy['N'].max())}x{int(tidy['N'].max())} ngspice run took {spice_128.min():.3g} to "
                       f"{spice_128.max():.3g} s (median {spice_128.median():.3g} s; the groups with wire resistance are "
                       "the slow ones, where ngspice cannot merge the nodes) on 2 cores shared with other jobs.")
    task_s = float(df["elapsed_s"].sum())
    caption.append(f"Task time summed over the {len(df)} points: {task_s:.1f} s. This invocation: {t.s:.1f} s wall time "
                   f"({df.attrs['counts']}; skipped = taken from the sweep cache).")
    fails = failures(df)
    if fails:
        caption.insert(0, failure_note(df))
    write_figure(cfg, NAME, tidy, fig, caption)
    summary = {"wall_s": t.s, "task_s": task_s, "counts": df.attrs["counts"], "points": len(tidy), "ngspice_points": n_spice,
               "max_abs_diff_ngspice_vs_exact": worst, "failed": fails, "mode": cfg.mode,
               "strong_dac": None if strong is None else STRONG_DAC}
    write_summary(cfg, NAME, summary)
    return summary
