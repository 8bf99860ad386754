"""Fig. 3(a): output of the non-ideal divider DAC against its input code, for R_load = 3.2 kOhm and 32 kOhm.

The DAC is ``v_read --R_DAC(code)-- out --R_PD-- ground`` with the load
R_load from ``out`` to ground (``xbarlab.peripherals.dac``), with the preset's
DAC (bits, v_read, R_PD). Each point is the model's closed form
V_th / (1 + R_th / R_load) and, for every point, ngspice solving the divider
deck itself (``xbarlab.netlist.dac_divider_netlist``, not its Thevenin
equivalent). The two loads are the experiment's, from the paper.
"""

from __future__ import annotations

import numpy as np

from .common import RunConfig, Timer, failure_note, failures, ok_rows, spec_of, write_figure, write_summary

NAME = "fig3a_dac"
R_LOADS = (3.2e3, 32e3)  # ohm: the experiment's loads, paper Fig. 3(a) (not hardware of the preset)
DAC_ERROR_DEFINITION = "(V_ideal - V_out) / V_ideal, V_ideal = v_read * code / full (the DAC's relative output error)"


def dac_point(p: dict, seed) -> dict:
    from xbarlab.engines.ngspice import NgspiceSettings, run_deck
    from xbarlab.netlist import dac_divider_netlist

    dac = spec_of(p).dac
    code, r_load = float(p["code"]), float(p["r_load"])
    v_ideal = float(dac.v_ideal([code])[0])
    v_model = float(dac.v_loaded([code], 1.0 / r_load)[0])
    r_dac = float(dac.r_dac([code])[0])
    vec = run_deck(dac_divider_netlist(dac, code, r_load), NgspiceSettings(timeout_s=60))
    v_sp = float(vec["v(out)"][0])
    return {"v_ideal_V": v_ideal, "v_out_model_V": v_model, "v_out_ngspice_V": v_sp,
            "r_dac_ohm": r_dac if np.isfinite(r_dac) else None,
            "dac_error": (v_ideal - v_sp) / v_ideal if v_ideal > 0 else None,
            "abs_diff_model_vs_ngspice_V": abs(v_model - v_sp)}


def run(cfg: RunConfig) -> dict:
    from . import plots

    full = cfg.spec.dac.full_code
    codes = list(range(0, full + 1, 8)) + [full] if cfg.mode == "quick" else list(range(full + 1))
    pts = [{"code": c, "r_load": r} for r in R_LOADS for c in sorted(set(codes))]
    with Timer() as t:
        df = cfg.sweep(dac_point, pts, NAME, timeout_s=120.0)
    ok = ok_rows(df, ["r_dac_ohm", "v_ideal_V", "v_out_model_V", "v_out_ngspice_V", "dac_error",
                      "abs_diff_model_vs_ngspice_V"])
    ok["r_load_ohm"] = ok.pop("r_load")
    ok["r_pd_ohm"] = cfg.spec.dac.r_pd
    ok["bits"] = cfg.spec.dac.bits
    tidy = ok[["r_load_ohm", "code", "bits", "r_pd_ohm", "r_dac_ohm", "v_ideal_V", "v_out_model_V",
               "v_out_ngspice_V", "dac_error", "abs_diff_model_vs_ngspice_V"]].sort_values(["r_load_ohm", "code"])
    tidy["error_definition"] = DAC_ERROR_DEFINITION
    fig = plots.dac_figure(tidy) if len(tidy) else plots.no_data_figure(NAME)
    worst = float(tidy["abs_diff_model_vs_ngspice_V"].max()) if len(tidy) else float("nan")
    mx = tidy.groupby("r_load_ohm")["dac_error"].max()
    argmx = tidy.loc[tidy.groupby("r_load_ohm")["dac_error"].idxmax(), ["r_load_ohm", "code"]].set_index("r_load_ohm")["code"]
    caption = [
        f"Divider DAC ({cfg.spec.dac.bits} bit, v_read = {cfg.spec.dac.v_read} V, R_PD = {cfg.spec.dac.r_pd} ohm) "
        "driving R_load = 3.2 kOhm and 32 kOhm; the dashed line is the ideal (unloaded) output.",
        f"Error = {DAC_ERROR_DEFINITION}; in the crossbar this input error becomes the column current error "
        "(I_ideal - I_nonideal) / I_ideal of the DAC+DRIVER group.",
        "Largest DAC error: " + ", ".join(f"{r / 1e3:g} kOhm: {mx[r]:.4g} at code {int(argmx[r])}" for r in mx.index)
        + ". R_th(code) = R_PD (1 - code/full) falls to 0 at full scale, where the error vanishes; code 0 has "
        "V_ideal = 0 and no relative error.",
        f"Every point solved by ngspice ({len(tidy)} runs); largest |model - ngspice| = {worst:.3g} V. "
        f"Wall time {t.s:.1f} s.",
    ]
    fails = failures(df)
    if fails:
        caption.insert(0, failure_note(df))
    write_figure(cfg, NAME, tidy, fig, caption)
    summary = {"mode": cfg.mode, "wall_s": t.s, "points": len(tidy), "max_abs_diff_model_vs_ngspice_V": worst,
               "max_dac_error": {f"{r:g}": float(mx[r]) for r in mx.index}, "failed": fails}
    write_summary(cfg, NAME, summary)
    return summary
