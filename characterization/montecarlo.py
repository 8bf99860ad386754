"""Shared engine of Fig. 2(d), 2(e) and 2(f): many random instances of one crossbar, errors per column.

Three kinds of instance, all under the ALL group by default and each drawn
from its own seeded generator ``default_rng([seed, stream, instance])`` so
that any instance can be rebuilt alone (for the ngspice check):

* ``state``: random crossbar state (each cell on one of 2**bits levels in
  [g_min, g_max]), inputs fixed (one random DAC code per row).
* ``inputs``: crossbar state fixed, random DAC codes per instance.
* ``variation``: a fixed nominal state and inputs; each instance is one
  hardware instance of the preset's device (``DeviceParams.sample``: sigma/mu
  and distribution from the preset, e.g. 1 + 0.1 N(0, 1) clipped at 0 S). Its error is taken
  against the ideal output of the *nominal* state, so it contains both the
  variation and the parasitics; ``error_variation_only`` is the same without
  parasitics (I = V @ G_instance).

The full counts run with the exact fast path (``g_nonideal``/``g_nonideal_stack``;
I = V @ G_non-ideal is exact for this linear circuit); a seeded random sample
of the same instances is re-run in ngspice.
"""

from __future__ import annotations

import time

import numpy as np

from xbarlab.spec import CrossbarSpec

from .common import RunConfig, Timer, failure_note, failures, ok_rows, sample_ids, spec_of, write_figure, write_summary
from .technology import ERROR_DEFINITION, column_error, group_circuit, random_codes, random_state

KINDS = ("state", "inputs", "variation")


def instance(kind: str, spec: CrossbarSpec, n: int, group: str, seed: int, idx: int):
    """(G, V, circuit, I_ideal) of one instance; G in S, V in volt, I in ampere."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if kind == "inputs":
        G = random_state(np.random.default_rng([seed, 1, 0]), n, n, spec)
        codes = random_codes(np.random.default_rng([seed, 2, idx]), n, spec)
    else:
        codes = random_codes(np.random.default_rng([seed, 0]), n, spec)
        G = random_state(np.random.default_rng([seed, 1, idx if kind == "state" else 0]), n, n, spec)
    V, c = group_circuit(spec, group, codes)
    i_ideal = V @ G
    if kind == "variation":  # one hardware instance of the preset's device (variation, faults)
        G = spec.device.sample(G, np.random.default_rng([seed, 3, idx]))
    return G, V, c, i_ideal


def chunk_task(p: dict, seed) -> dict:
    """Errors per column of instances [chunk * chunk_size, ...) by the exact fast path."""
    import xbarlab as xb

    spec = spec_of(p)
    n, kind, group = int(p["N"]), p["kind"], p["group"]
    lo = int(p["chunk"]) * int(p["chunk_size"])
    ids = range(lo, min(lo + int(p["chunk_size"]), int(p["n_total"])))
    insts = [instance(kind, spec, n, group, seed, i) for i in ids]
    if kind == "inputs":  # the DAC's R_th depends on the codes: one circuit per instance
        i_out = np.stack([V @ xb.g_nonideal(G, c) for G, V, c, _ in insts])
    else:  # one circuit and input for all: batched
        Gn = xb.g_nonideal_stack(np.stack([g for g, *_ in insts]), insts[0][2])
        i_out = np.einsum("m,tmn->tn", insts[0][1], Gn)
    i_ideal = np.stack([ii for *_, ii in insts])
    err = column_error(i_ideal, i_out)
    out = {"instance": np.repeat(np.array(ids), n), "column": np.tile(np.arange(n), len(ids)),
           "column_error": err.ravel()}  # (not "error": the sweep's column of failure messages)
    if kind == "variation":
        i_var = np.stack([V @ G for G, V, _, _ in insts])
        out["error_variation_only"] = column_error(i_ideal, i_var).ravel()
    return out


def validate_task(p: dict, seed) -> dict:
    """One instance in ngspice and by the fast path: their largest disagreements."""
    import xbarlab as xb

    spec = spec_of(p)
    G, V, c, i_ideal = instance(p["kind"], spec, int(p["N"]), p["group"], seed, int(p["instance"]))
    fast = V @ xb.g_nonideal(G, c)
    t0 = time.perf_counter()
    sp = xb.simulate(G, V, c, engine="ngspice", ngspice=xb.NgspiceSettings(timeout_s=600))
    dt = time.perf_counter() - t0
    e_fast, e_sp = column_error(i_ideal, fast), column_error(i_ideal, sp)
    return {"max_abs_diff_error": float(np.abs(e_fast - e_sp).max()),
            "max_rel_diff_current": float(np.abs(fast - sp).max() / np.abs(sp).max()),
            "error_last_col_ngspice": float(e_sp[-1]), "error_last_col_fast": float(e_fast[-1]),
            "ngspice_s": dt}


def summarize(raw, value: str = "column_error"):
    """Per column: max, min, avg, std over instances, and the sample run (instance 0)."""
    g = raw.groupby("column")[value]
    s = g.agg(error_max="max", error_min="min", error_avg="mean", error_std="std", n_instances="count")
    s["error_sample"] = raw[raw["instance"] == raw["instance"].min()].set_index("column")[value]
    return s.reset_index()


def run_mc(cfg: RunConfig, name: str, kind: str, counts: dict, n_by_mode: dict, group: str = "ALL",
           seed: int = 0, chunk_size: int = 100, what: str = "", plot_title: str = "") -> dict:
    """Run the instances and the ngspice sample, write the figure; return the summary numbers."""
    from . import plots

    n_total, n_check = counts[cfg.mode]
    n = n_by_mode[cfg.mode]
    chunk_size = min(chunk_size, n_total)
    base = {"kind": kind, "N": n, "group": group}
    pts = [{**base, "chunk": k, "chunk_size": chunk_size, "n_total": n_total}
           for k in range(-(-n_total // chunk_size))]
    with Timer() as t_fast:
        raw = cfg.sweep(chunk_task, pts, name, seeds=(seed,), timeout_s=1800.0, desc=f"{name} (exact)")
    ok = ok_rows(raw, ["instance", "column", "column_error"])
    ids = sample_ids(n_total, n_check, seed)
    with Timer() as t_sp:
        val = cfg.sweep(validate_task, [{**base, "instance": i} for i in ids], name + "_ngspice",
                        seeds=(seed,), timeout_s=900.0, desc=f"{name} (ngspice sample)")
    val_ok = ok_rows(val, ["max_abs_diff_error", "max_rel_diff_current"])
    tidy = summarize(ok)
    tidy.insert(0, "N", n)
    tidy.insert(1, "group", group)
    tidy.insert(2, "kind", kind)
    tidy.insert(3, "seed", seed)  # the instances' generators are default_rng([seed, ...]): an input of every row
    tidy["engine"] = "exact fast path (g_nonideal)"
    if "error_variation_only" in ok:
        vo = summarize(ok, "error_variation_only")
        for c in ("error_max", "error_min", "error_avg", "error_std"):
            tidy[c.replace("error_", "varonly_error_")] = vo[c].to_numpy()
    n_inst = int(ok["instance"].nunique()) if len(ok) else 0
    # compute time summed over the stored tasks: the same whether this call computed them or found them cached
    task_s = float(raw.drop_duplicates("chunk")["elapsed_s"].sum())
    task_s_sp = float(val["elapsed_s"].sum()) if len(val) else 0.0
    cached = raw.attrs.get("counts", {}).get("skipped", 0) + val.attrs.get("counts", {}).get("skipped", 0)
    worst_err = float(val_ok["max_abs_diff_error"].max()) if len(val_ok) else float("nan")
    worst_cur = float(val_ok["max_rel_diff_current"].max()) if len(val_ok) else float("nan")
    sample = f"(ids {ids[:10]}{' ...' if len(ids) > 10 else ''})"
    if len(val_ok) == 0:
        check_line = (f"ngspice check: **NOT RUN**: all {len(ids)} randomly chosen instances {sample} failed in "
                      "ngspice (see FAILED above); the fast path is unchecked on this page.")
    else:
        check_line = (f"ngspice check: {len(val_ok)}{'' if len(val_ok) == len(ids) else f' of {len(ids)}'} randomly "
                      f"chosen instances of the same sweep {sample} re-run in ngspice: {task_s_sp:.1f} s of task time; "
                      f"largest |error difference| = {worst_err:.3g}, largest relative current difference = {worst_cur:.3g}.")
    fig = plots.columns_figure(tidy, title=plot_title) if len(tidy) else plots.no_data_figure(name)
    lastcol = tidy.iloc[-1] if len(tidy) else None
    spread = (tidy["error_max"] - tidy["error_min"]) if len(tidy) else None
    caption = [
        f"Error = {ERROR_DEFINITION}. {what}",
        f"{n}x{n} crossbar, group {group}; {n_inst} instances (seed {seed}) by the exact fast path "
        f"(I = V @ G_non-ideal): {task_s:.1f} s of task time.",
        check_line,
    ]
    if lastcol is not None:
        caption.append(f"Across columns: AVG error from {tidy['error_avg'].min():.4g} to {tidy['error_avg'].max():.4g}; "
                       f"spread MAX-MIN per column from {spread.min():.4g} to {spread.max():.4g}; "
                       f"column of largest AVG error: {int(tidy.loc[tidy['error_avg'].idxmax(), 'column'])} "
                       "(0-based, as in the CSV; the figure numbers columns from 1).")
        first = int(ok["instance"].min())
        if first != 0:  # (the pages call the sample run instance 0: it is the lowest instance that finished)
            caption.append(f"The sample run is instance {first}: instances 0..{first - 1} are in failed chunks.")
    caption.append(f"This invocation: {t_fast.s + t_sp.s:.1f} s wall time, {cached} tasks taken from the sweep cache.")
    fails = failures(raw) + failures(val)
    notes = [n for n in (failure_note(raw, "exact fast-path chunks"), failure_note(val, "ngspice check instances")) if n]
    caption[:0] = notes
    write_figure(cfg, name, tidy, fig, caption, extra_csv={"ngspice": val_ok.drop(columns=["status", "error"], errors="ignore")})
    summary = {
        "mode": cfg.mode, "N": n, "group": group, "instances": n_inst, "ngspice_instances": int(len(val_ok)),
        "ngspice_check": "not run" if len(val_ok) == 0 else "partial" if len(val_ok) < len(ids) else "done",
        "exact_wall_s": t_fast.s, "ngspice_wall_s": t_sp.s, "exact_task_s": task_s, "ngspice_task_s": task_s_sp,
        "tasks_cached": cached,
        "max_abs_diff_error_ngspice_vs_exact": worst_err, "max_rel_diff_current_ngspice_vs_exact": worst_cur,
        "avg_error_min_col": float(tidy["error_avg"].min()) if len(tidy) else None,
        "avg_error_max_col": float(tidy["error_avg"].max()) if len(tidy) else None,
        "spread_per_col_min": float(spread.min()) if spread is not None else None,
        "spread_per_col_max": float(spread.max()) if spread is not None else None,
        "spread_per_col_mean": float(spread.mean()) if spread is not None else None,
        "argmax_avg_col": int(tidy.loc[tidy["error_avg"].idxmax(), "column"]) if len(tidy) else None,
        "sample_argmax_col": int(tidy.loc[tidy["error_sample"].idxmax(), "column"]) if len(tidy) else None,
        "failed": fails,
    }
    if len(ok):
        per_inst_argmax = ok.loc[ok.groupby("instance")["column_error"].idxmax(), "column"]
        summary["argmax_col_last_fraction"] = float((per_inst_argmax == n - 1).mean())
        summary["argmax_col_distinct"] = int(per_inst_argmax.nunique())
        first_half = tidy["error_avg"].iloc[: n // 2].mean()
        second_half = tidy["error_avg"].iloc[n // 2:].mean()
        summary["avg_error_first_half"] = float(first_half)
        summary["avg_error_second_half"] = float(second_half)
        if "error_variation_only" in ok:
            summary["varonly_spread_per_col_mean"] = float((tidy["varonly_error_max"] - tidy["varonly_error_min"]).mean())
    write_summary(cfg, name, summary)
    return summary
