"""FCM accuracy against ngspice: the RxNN paper's Fig. 10, at 16x16, 32x32 and 64x64.

For random (crossbar state, input) pairs - conductances uniform over the
device levels, DAC codes uniform over 0..full - it solves the complete
circuit (DAC dividers, driver, wires, cells, sense) with ngspice and
compares, column by column:

* FCM ``exact`` (row-port admittance DAC load),
* FCM ``rowsum`` (the paper's closed form) with load_factor 1 and fitted,
* the MNSIM-style baseline (one constant error, fitted),

each as an error against the ideal output (V_ideal @ G) and as a deviation
from ngspice, both in % of the full-scale output rows * g_max * v_read. The
fitted parameters come from separate training pairs (held out from the
evaluation pairs) and are saved with their provenance.

    python -m characterization.fcm_accuracy [--out reports] [--quick] [--preset spintronic]

Writes ``fcm_accuracy.csv`` (one row per pair and column: ideal and ngspice
currents, and each model's signed deviation from ngspice in % FS),
``fcm_accuracy_summary.csv``,
``fcm_accuracy.png`` and ``fcm_accuracy.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import xbarlab as xb
from xbarlab.verify import baseline, fitting

MODELS = ("ngspice", "fcm_exact", "fcm_rowsum", "fcm_rowsum_fitted", "baseline")
TARGETS = {"fcm_rowsum": 0.28, "fcm_rowsum_fitted": 0.28, "fcm_exact": 1e-6}


def run_size(spec: xb.CrossbarSpec, n_pairs: int, n_fit: int, seed: int, workers: int, save_fit: bool):
    import pandas as pd

    rng = np.random.default_rng(seed)
    train = fitting.random_samples(spec, n_fit, rng)
    test = fitting.random_samples(spec, n_fit, rng)
    pairs = fitting.random_samples(spec, n_pairs, rng)
    I_train, I_test, I_spice = (fitting.spice_reference(spec, s, workers=workers) for s in (train, test, pairs))
    fit = fitting.fit_samples(spec, train, test, I_train, I_test, seed)
    if save_fit:
        fitting.save_fit(fit, fitting.fit_path(spec))
    kappa = fit["options"]["load_factor"]
    eps = baseline.fit_eps(np.stack([baseline.ideal_currents(G, c, spec)[0] for G, c in train]), I_train)
    rows = []
    fs = spec.full_scale_current_a
    opts = {"fcm_exact": xb.FCMOptions(dac_load="exact"), "fcm_rowsum": xb.FCMOptions(),
            "fcm_rowsum_fitted": xb.FCMOptions(load_factor=kappa)}
    for k, (G, c) in enumerate(pairs):
        f = xb.FCM.from_tiles(G[None, None, None], spec, opts["fcm_exact"], G.shape, 1.0)
        I_ideal = baseline.ideal_currents(G, c, spec)[0]
        cur = {"baseline": baseline.baseline_currents(G, c, spec, eps)[0]}
        for name, o in opts.items():
            cur[name] = f.with_options(**o.to_dict()).tile_currents(c[None])[0, 0, 0, 0]
        for j in range(spec.cols):
            row = {"size": spec.rows, "pair": k, "column": j, "full_scale_a": fs,
                   "i_ideal_a": I_ideal[j], "i_ngspice_a": I_spice[k, j]}
            for name in MODELS[1:]:  # signed deviation from ngspice, % FS (full precision of small numbers)
                row[f"d_{name}_pct_fs"] = (cur[name][j] - I_spice[k, j]) / fs * 100.0
            rows.append(row)
    return pd.DataFrame(rows), {"size": spec.rows, "load_factor": kappa, "baseline_eps": eps, "fit": fit}


def to_long(wide):
    """One row per (size, pair, column, model) with error vs ideal and deviation from ngspice, % FS."""
    import pandas as pd

    err_spice = (wide["i_ideal_a"] - wide["i_ngspice_a"]) / wide["full_scale_a"] * 100.0
    parts = []
    for model in MODELS:
        d = wide[["size", "pair", "column"]].copy()
        dev = 0.0 * err_spice if model == "ngspice" else wide[f"d_{model}_pct_fs"]
        d["model"] = model
        d["error_pct_fs"] = err_spice - dev
        d["deviation_pct_fs"] = dev.abs()
        parts.append(d)
    return pd.concat(parts, ignore_index=True)


def summarize(df):
    g = df[df.model != "ngspice"].groupby(["size", "model"])["deviation_pct_fs"]
    s = g.agg(max_deviation_pct_fs="max", mean_deviation_pct_fs="mean").reset_index()
    err = df.groupby(["size", "model"])["error_pct_fs"].agg(lambda e: float(np.max(np.abs(e))))
    s["max_abs_error_vs_ideal_pct_fs"] = [err[(r.size, r.model)] for r in s.itertuples()]
    s["target_pct_fs"] = s.model.map(TARGETS)
    s["meets_target"] = [None if t != t else bool(d <= t) for d, t in zip(s.max_deviation_pct_fs, s.target_pct_fs)]
    return s


def write_markdown(path: Path, summary, fits: list[dict], spec: xb.CrossbarSpec, n_pairs: dict, elapsed: float):
    lines = [
        "# FCM accuracy against ngspice (RxNN Fig. 10)",
        "",
        f"Preset `{spec.name}` (circuit {spec.circuit.to_dict()}, device g = [{spec.device.g_min:.3e}, "
        f"{spec.device.g_max:.3e}] S, {spec.device.levels} levels, DAC {spec.dac.bits} bit, "
        f"v_read = {spec.dac.v_read} V, R_PD = {spec.dac.r_pd} ohm). Random (state, input) pairs: "
        + ", ".join(f"{n} at {s}x{s}" for s, n in n_pairs.items()) + ". "
        "Errors are in % of the full-scale output rows * g_max * v_read; the deviation is "
        "|I_model - I_ngspice| per column. The analog column currents are compared (the ADC is the same "
        "digital function in all models and is left out).",
        "",
        "| size | model | max deviation from ngspice (% FS) | mean deviation (% FS) | max error vs ideal (% FS) | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        tgt = "" if r.target_pct_fs != r.target_pct_fs else f"<= {r.target_pct_fs:g}"
        met = "n/a" if r.meets_target is None or r.meets_target != r.meets_target else ("yes" if r.meets_target else "NO")
        lines.append(f"| {r.size} | {r.model} | {r.max_deviation_pct_fs:.3g} | {r.mean_deviation_pct_fs:.3g} | "
                     f"{r.max_abs_error_vs_ideal_pct_fs:.3g} | {tgt} | {met} |")
    lines += ["", "Paper: FCM 0.28 %, MNSIM baseline 3.51 % (max deviation from HSPICE, 64x64).", "",
              "Fitted parameters (training pairs held out from the evaluation pairs):", ""]
    for f in fits:
        ff = f["fit"]["fit"]
        tr = ff.get("fitted", {}).get("test", {})
        lines.append(f"* {f['size']}x{f['size']}: load_factor = {f['load_factor']:.5f} (held-out max "
                     f"{tr.get('max_pct_fs', float('nan')):.3g} % FS), baseline eps = {f['baseline_eps']:.5f}")
    run = "" if elapsed is None else f"Run time {elapsed:.0f} s. "
    lines += ["", f"{run}Figure: `fcm_accuracy.png`; data: `fcm_accuracy.csv`, "
              "`fcm_accuracy_summary.csv`; fits: `xbarlab/presets/fitted/`.", ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--quick", action="store_true", help="few pairs (seconds to a minute), for CI")
    p.add_argument("--preset", default="spintronic", help="crossbar preset (default: spintronic)")
    p.add_argument("--seed", type=int, default=10, help="seed of the random pairs")
    p.add_argument("--workers", type=int, default=2, help="ngspice processes at once (default 2)")
    p.add_argument("--replot", action="store_true",
                   help="rebuild summary, figure and markdown from the CSV/JSON saved in --out (no ngspice)")
    args = p.parse_args(argv)
    import pandas as pd

    from . import plots_fcm

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {16: 100, 32: 100, 64: 100} if not args.quick else {16: 10, 32: 5, 64: 3}
    n_fit = 3 if args.quick else 10
    t0 = time.perf_counter()
    base = xb.load_preset(args.preset)
    if args.replot:
        df = pd.read_csv(out / "fcm_accuracy.csv")
        fits = json.loads((out / "fcm_accuracy_fits.json").read_text())
        sizes = {int(k): int(v) for k, v in df.groupby("size")["pair"].nunique().items()}
        meta = out / "fcm_accuracy_meta.json"
        elapsed = json.loads(meta.read_text()).get("run_seconds") if meta.exists() else None
    else:
        dfs, fits = [], []
        for size, n in sizes.items():
            df, info = run_size(base.with_size(size), n, n_fit, args.seed + size, args.workers,
                                save_fit=not args.quick)
            dfs.append(df)
            fits.append(info)
        df = pd.concat(dfs, ignore_index=True)
        df.to_csv(out / "fcm_accuracy.csv", index=False, float_format="%.17g")
        (out / "fcm_accuracy_fits.json").write_text(json.dumps(fits, indent=2, default=float) + "\n")
        elapsed = time.perf_counter() - t0
        (out / "fcm_accuracy_meta.json").write_text(json.dumps({"run_seconds": elapsed, "seed": args.seed,
                                                                "preset": args.preset, "pairs": sizes}) + "\n")
    df = to_long(df)
    summary = summarize(df)
    summary.to_csv(out / "fcm_accuracy_summary.csv", index=False)
    plots_fcm.accuracy_figure(df, summary).savefig(out / "fcm_accuracy.png", dpi=120)
    write_markdown(out / "fcm_accuracy.md", summary, fits, base, sizes, elapsed)
    print(summary.to_string(index=False))
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
