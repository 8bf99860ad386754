"""FCM accuracy against ngspice: the RxNN paper's Fig. 10, at 16x16, 32x32 and 64x64.

For random (crossbar state, input) pairs - conductances uniform over the
device levels, DAC codes uniform over 0..full - it solves the complete
circuit (DAC dividers, driver, wires, cells, sense) with ngspice and
compares, column by column, the analog column currents (before the ADC, which
is the same digital function in every model) of

* ``baseline``: the MNSIM-style model, one constant error (fitted),
* ``fcm_none``: the FCM without DAC-load model (V = V_th),
* ``fcm_rowsum``: the paper's closed form with load factor kappa = 1,
* ``fcm_rowsum_fitted``: the same with kappa fitted on separate training pairs,
* ``fcm_exact``: the row-port admittance DAC load (the full circuit for linear cells),

all evaluated by ``FCM.matmul``'s own path: the current stage of each model's
plan (``FCM.tile_currents``, through ``xbarlab.verify.fitting.model_currents``;
tested equal to the stage-by-stage reference ``xbarlab.verify.reference``).
Metrics (``xbarlab.verify.metrics``):

* the paper's per-column relative error e = (I_model - I_ngspice) / I_ngspice,
  over every column of every pair; a column whose ngspice current is below
  1e-9 of full scale (all its DAC codes 0) counts as zero current and is left
  out of this metric (their number is reported);
* the deviation |I_model - I_ngspice| in % of the full-scale output rows * g_max * v_read.

The verdicts against the paper's FCM (0.28 %) and MNSIM (3.51 %) use the
largest per-column relative error. The stated bounds of the property tests
(EXACT 1e-9; ROWSUM ``xbarlab.verify.rowsum_bound``) are checked on the same pairs.

    python -m characterization.fcm_accuracy [--out reports] [--quick] [--preset rxnn-spintronic] [--r-pd OHM] [--pairs N]

Writes ``NAME.csv`` (one row per pair and column), ``NAME_summary.csv``,
``NAME_bounds.csv``, ``NAME.png`` and ``NAME.md`` into ``--out`` (NAME =
``--name``, default fcm_accuracy).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

import xbarlab as xb
from xbarlab.verify import baseline, fitting
from xbarlab.verify.metrics import ZERO_FS, check_currents
from xbarlab.verify.rowsum_bound import C_ROWSUM, rowsum_rel_bound

MODELS = ("ngspice", "baseline", "fcm_none", "fcm_rowsum", "fcm_rowsum_fitted", "fcm_exact")
#: largest per-column relative error, %: the paper's FCM (0.28 %), and ~0 for the exact load
TARGETS = {"fcm_rowsum": 0.28, "fcm_rowsum_fitted": 0.28, "fcm_exact": 1e-6}
PAPER = {"fcm": 0.28, "mnsim": 3.51}
EXACT_REL = 1e-9


def make_spec(preset: str, size: int, r_pd: float | None) -> xb.CrossbarSpec:
    spec = xb.load_preset(preset).with_size(size)
    return spec if r_pd is None else spec.replace(dac=dataclasses.replace(spec.dac, r_pd=r_pd))


# A hang guard, not a budget: these decks are correctness checks (a point skipped would hide a
# result), and one 64x64 deck takes about 4-7 s on an idle 2-core machine here, so 600 s leaves
# room for a machine or a load many times slower; the library default (120 s) timed out once
# here with the two cores shared by several ngspice and pytest processes.
SPICE_HANG_GUARD_S = 600.0


def run_size(spec: xb.CrossbarSpec, n_pairs: int, n_fit: int, seed: int, workers: int, save_fit: bool):
    import pandas as pd

    rng = np.random.default_rng(seed)
    train = fitting.random_samples(spec, n_fit, rng)
    test = fitting.random_samples(spec, n_fit, rng)
    pairs = fitting.random_samples(spec, n_pairs, rng)
    settings = xb.NgspiceSettings(timeout_s=SPICE_HANG_GUARD_S)
    I_train, I_test, I_spice = (fitting.spice_reference(spec, s, settings, workers=workers) for s in (train, test, pairs))
    check_currents("ngspice currents of the evaluation pairs", I_spice)
    fit = fitting.fit_samples(spec, train, test, I_train, I_test, seed)
    if save_fit:
        fitting.save_fit(fit, fitting.fit_path(spec))
    kappa = fit["options"]["load_factor"]
    eps = baseline.fit_eps(np.stack([baseline.ideal_currents(G, c, spec)[0] for G, c in train]), I_train)
    opts = {"fcm_none": xb.FCMOptions(dac_load="none"), "fcm_rowsum": xb.FCMOptions(),
            "fcm_rowsum_fitted": xb.FCMOptions(load_factor=kappa), "fcm_exact": xb.FCMOptions(dac_load="exact")}
    tiles = fitting.tile_models(spec, pairs, opts["fcm_exact"])
    cur = {name: fitting.model_currents(spec, pairs, o, tiles) for name, o in opts.items()}
    cur["baseline"] = np.stack([baseline.baseline_currents(G, c, spec, eps)[0] for G, c in pairs])
    for name, I in cur.items():  # a NaN would read as a zero-current column and drop out of the verdicts
        check_currents(f"{name} currents", I)
    I_ideal = np.stack([baseline.ideal_currents(G, c, spec)[0] for G, c in pairs])
    fs = spec.full_scale_current_a
    nz = np.abs(I_spice) > ZERO_FS * fs
    rows = []
    for k in range(len(pairs)):
        for j in range(spec.cols):
            row = {"size": spec.rows, "pair": k, "column": j, "full_scale_a": fs,
                   "i_ideal_a": I_ideal[k, j], "i_ngspice_a": I_spice[k, j]}
            for name in MODELS[1:]:  # signed deviation from ngspice: % FS, and per-column relative (NaN: zero current)
                d = cur[name][k, j] - I_spice[k, j]
                row[f"d_{name}_pct_fs"] = d / fs * 100.0
                row[f"d_{name}_rel"] = d / I_spice[k, j] if nz[k, j] else np.nan
            rows.append(row)
    bounds = bound_checks(spec, pairs, I_spice, cur, kappa)
    return pd.DataFrame(rows), {"size": spec.rows, "load_factor": kappa, "baseline_eps": eps, "fit": fit}, bounds


def bound_checks(spec, pairs, I_spice, cur, kappa) -> list[dict]:
    """The property tests' bounds on these pairs: examples and the largest deviation / bound."""
    fs = spec.full_scale_current_a
    out = []
    tile_max = np.abs(I_spice).max(axis=1, keepdims=True)
    dev = np.abs(cur["fcm_exact"] - I_spice) / np.where(tile_max > 0, tile_max, 1.0)
    out.append({"size": spec.rows, "bound": "EXACT |dI| / max |I| <= 1e-9", "examples": len(pairs),
                "largest": float(dev.max()), "largest_over_bound": float(dev.max() / EXACT_REL)})
    for name, k in (("fcm_rowsum", 1.0), ("fcm_rowsum_fitted", kappa)):
        ratio = np.nan  # no pair with a bound > 0 and a current to judge (R_PD = 0: no load to bound) is no pass
        for p, (G, _) in enumerate(pairs):
            b = rowsum_rel_bound(spec, G, k)
            nz = np.abs(I_spice[p]) > ZERO_FS * fs
            if b > 0 and nz.any():
                e = np.abs(cur[name][p, nz] - I_spice[p, nz]) / np.abs(I_spice[p, nz])
                ratio = np.fmax(ratio, float(e.max() / b))
        out.append({"size": spec.rows, "bound": f"{name} (kappa {k:.4f}) per-column relative error <= "
                    f"({C_ROWSUM:g} q(sigma) + |1 - kappa|) q(rho)", "examples": len(pairs), "largest": np.nan,
                    "largest_over_bound": float(ratio)})
    return out


def to_long(wide):
    """One row per (size, pair, column, model): error vs ideal (% FS), deviation from ngspice (% FS, relative)."""
    import pandas as pd

    err_spice = (wide["i_ideal_a"] - wide["i_ngspice_a"]) / wide["full_scale_a"] * 100.0
    parts = []
    for model in MODELS:
        d = wide[["size", "pair", "column"]].copy()
        dev = 0.0 * err_spice if model == "ngspice" else wide[f"d_{model}_pct_fs"]
        rel = 0.0 * err_spice if model == "ngspice" else wide.get(f"d_{model}_rel", np.nan * err_spice)
        d["model"] = model
        d["error_pct_fs"] = err_spice - dev
        d["deviation_pct_fs"] = dev.abs()
        d["rel_error_pct"] = (rel * 100.0).abs()
        parts.append(d)
    return pd.concat(parts, ignore_index=True)


def summarize(df):
    d = df[df.model != "ngspice"]
    g = d.groupby(["size", "model"], sort=False)
    s = g.agg(max_rel_pct=("rel_error_pct", "max"), mean_rel_pct=("rel_error_pct", "mean"),
              max_deviation_pct_fs=("deviation_pct_fs", "max"), mean_deviation_pct_fs=("deviation_pct_fs", "mean"),
              n_columns=("rel_error_pct", "size"), n_rel_columns=("rel_error_pct", "count")).reset_index()
    s["n_zero_columns"] = s.n_columns - s.n_rel_columns
    err = df.groupby(["size", "model"])["error_pct_fs"].agg(lambda e: float(np.max(np.abs(e))))
    s["max_abs_error_vs_ideal_pct_fs"] = [err[(r.size, r.model)] for r in s.itertuples()]
    s["target_rel_pct"] = s.model.map(TARGETS)
    s["meets_target"] = [None if t != t else bool(m <= t) for m, t in zip(s.max_rel_pct, s.target_rel_pct)]
    return s.sort_values(["size", "model"], key=lambda c: c.map(MODELS.index) if c.name == "model" else c)


def write_markdown(path: Path, summary, bounds, fits: list[dict], spec: xb.CrossbarSpec, n_pairs: dict,
                   elapsed: float | None):
    lines = [
        "# FCM accuracy against ngspice (RxNN Fig. 10)",
        "",
        f"Preset `{spec.name}` (circuit {spec.circuit.to_dict()}, device g = [{spec.device.g_min:.3e}, "
        f"{spec.device.g_max:.3e}] S, {spec.device.levels} levels, DAC {spec.dac.bits} bit, "
        f"v_read = {spec.dac.v_read} V, **R_PD = {spec.dac.r_pd:g} ohm**). Random (state, input) pairs: "
        + ", ".join(f"{n} at {s}x{s}" for s, n in n_pairs.items()) + "."
        + ("" if min(n_pairs.values()) >= 100 else " The paper's count is 100 pairs per size (the default of "
           "`python -m characterization.fcm_accuracy`; `make report` runs fewer, `characterization/report.py`)."),
        "",
        "Metrics, per column of every pair, on the analog column currents (the ADC is the same digital "
        "function in every model): the paper's per-column relative error (I_model - I_ngspice) / I_ngspice "
        f"(columns with |I_ngspice| <= {ZERO_FS:g} of full scale, i.e. all DAC codes 0, count as zero current "
        "and are left out of it: `zero cols`), and the deviation |I_model - I_ngspice| in % of the full-scale "
        "output rows * g_max * v_read. Verdicts use the largest per-column relative error.",
        "",
        "| size | model | max rel. error (%) | mean rel. error (%) | max dev. (% FS) | mean dev. (% FS) "
        "| zero cols | target (rel. %) | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary.itertuples():
        tgt = "" if r.target_rel_pct != r.target_rel_pct else f"<= {r.target_rel_pct:g}"
        met = "n/a" if r.meets_target is None or r.meets_target != r.meets_target else ("yes" if r.meets_target else "NO")
        lines.append(f"| {r.size} | {r.model} | {r.max_rel_pct:.3g} | {r.mean_rel_pct:.3g} | "
                     f"{r.max_deviation_pct_fs:.3g} | {r.mean_deviation_pct_fs:.3g} | {r.n_zero_columns} | {tgt} | {met} |")
    big = summary[summary["size"] == summary["size"].max()].set_index("model")
    lines += ["", f"Paper (64x64, max per-column error against HSPICE): FCM {PAPER['fcm']} %, MNSIM {PAPER['mnsim']} %."]
    if {"fcm_rowsum", "baseline"} <= set(big.index):
        lines.append(f"Here at {int(summary['size'].max())}x{int(summary['size'].max())}: ROWSUM "
                     f"{big.loc['fcm_rowsum', 'max_rel_pct']:.3g} % ({'within' if big.loc['fcm_rowsum', 'max_rel_pct'] <= PAPER['fcm'] else 'above'} "
                     f"the paper's FCM), fitted {big.loc['fcm_rowsum_fitted', 'max_rel_pct']:.3g} %, MNSIM-style baseline "
                     f"{big.loc['baseline', 'max_rel_pct']:.3g} % (paper's MNSIM {PAPER['mnsim']} %), "
                     f"no DAC-load model {big.loc['fcm_none', 'max_rel_pct']:.3g} %.")
    lines += ["", "Stated bounds of the property tests (tests/fcm/test_fcm_matmul_spice.py) on these pairs "
              "(rho = R_PD * largest row load, sigma the row coupling, q(z) = z / (1 + z); "
              "`xbarlab.verify.rowsum_bound`):", "",
              "| size | bound | pairs | largest deviation / bound |", "|---|---|---|---|"]
    for b in bounds:
        r = b["largest_over_bound"]
        r = "n/a (no pair with a bound > 0)" if np.isnan(r) else f"{r:.3g}"
        lines.append(f"| {b['size']} | {b['bound']} | {b['examples']} | {r} |")
    lines += ["", "Fitted parameters (training pairs held out from the evaluation pairs):", ""]
    for f in fits:
        t = f["fit"]["fit"].get("fitted", {}).get("test", {})
        lines.append(f"* {f['size']}x{f['size']}: load_factor = {f['load_factor']:.5f} (held-out max "
                     f"{t.get('max_pct_fs', float('nan')):.3g} % FS, {100 * t.get('max_rel', float('nan')):.3g} % "
                     f"per column), baseline eps = {f['baseline_eps']:.5f}")
    run = "" if elapsed is None else f"Run time {elapsed:.0f} s. "
    lines += ["", f"{run}Figure: `{path.stem}.png`; data: `{path.stem}.csv`, `{path.stem}_summary.csv`, "
              f"`{path.stem}_bounds.csv`; fits: `xbarlab/presets/fitted/`.", ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    from xbarlab.cli_args import seed
    from xbarlab.spec import preset_names

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--name", default="fcm_accuracy", help="file stem of the outputs (default: fcm_accuracy)")
    p.add_argument("--quick", action="store_true", help="few pairs (seconds to a minute), for CI")
    p.add_argument("--preset", default="rxnn-spintronic", choices=preset_names(),
                   help="crossbar preset (default: rxnn-spintronic, the one every figure runs on)")
    p.add_argument("--r-pd", type=float, default=None, help="DAC pull-down R_PD, ohm (default: the preset's)")
    p.add_argument("--seed", type=seed, default=10, help="seed of the random pairs")
    p.add_argument("--pairs", type=int, default=100,
                   help="random (state, input) pairs per size, >= 1 (default 100, the paper's count)")
    p.add_argument("--pairs-64", type=int, default=None,
                   help="pairs at 64x64, >= 1 (default: --pairs); make report passes fewer there, where one "
                        "ngspice deck takes about 5 s")
    p.add_argument("--workers", type=int, default=2, help="ngspice processes at once (default 2)")
    p.add_argument("--replot", action="store_true",
                   help="rebuild summary, figure and markdown from the CSV/JSON saved in --out (no ngspice)")
    args = p.parse_args(argv)
    if args.pairs < 1:
        p.error(f"--pairs must be >= 1, got {args.pairs}")
    if args.pairs_64 is not None and args.pairs_64 < 1:
        p.error(f"--pairs-64 must be >= 1, got {args.pairs_64}")
    if args.workers < 1:
        p.error(f"--workers must be >= 1, got {args.workers}")
    import pandas as pd

    from . import plots_fcm

    from xbarlab.cli_args import check_out_dir

    if not args.name or Path(args.name).name != args.name or args.name in (".", ".."):
        p.error(f"--name must be a file stem without a folder, got {args.name!r}")
    try:
        out = check_out_dir(args.out)  # (a file there raised FileExistsError with a traceback)
    except ValueError as exc:
        p.error(str(exc))
    stem = out / args.name
    sizes = {16: args.pairs, 32: args.pairs, 64: args.pairs_64 or args.pairs} if not args.quick else {16: 10, 32: 5, 64: 3}
    n_fit = 3 if args.quick else 10
    t0 = time.perf_counter()
    try:
        base = make_spec(args.preset, 64, args.r_pd)
    except ValueError as exc:
        p.error(f"--r-pd: {exc}")
    if args.replot:
        if not Path(f"{stem}.csv").exists() or not Path(f"{stem}_fits.json").exists():
            p.error(f"--replot: no {stem}.csv and {stem}_fits.json to rebuild from (run without --replot first)")
        df = pd.read_csv(f"{stem}.csv")
        fits = json.loads(Path(f"{stem}_fits.json").read_text())
        bounds = pd.read_csv(f"{stem}_bounds.csv").to_dict("records") if Path(f"{stem}_bounds.csv").exists() else []
        sizes = {int(k): int(v) for k, v in df.groupby("size")["pair"].nunique().items()}
        meta = Path(f"{stem}_meta.json")
        elapsed = json.loads(meta.read_text()).get("run_seconds") if meta.exists() else None
    else:
        dfs, fits, bounds = [], [], []
        for size, n in sizes.items():
            try:
                df, info, b = run_size(make_spec(args.preset, size, args.r_pd), n, n_fit, args.seed + size,
                                       args.workers, save_fit=not args.quick and args.r_pd is None)
            except ValueError as exc:  # a fit the samples cannot determine, a non-finite current: one line
                p.exit(1, f"{p.prog}: error: {size}x{size}: {exc}\n")
            dfs.append(df)
            fits.append(info)
            bounds += b
        df = pd.concat(dfs, ignore_index=True)
        df.to_csv(f"{stem}.csv", index=False, float_format="%.17g")
        pd.DataFrame(bounds).to_csv(f"{stem}_bounds.csv", index=False)
        Path(f"{stem}_fits.json").write_text(json.dumps(fits, indent=2, default=float) + "\n")
        elapsed = time.perf_counter() - t0
        Path(f"{stem}_meta.json").write_text(json.dumps({"run_seconds": elapsed, "seed": args.seed, "preset": args.preset,
                                                         "r_pd": base.dac.r_pd, "pairs": sizes}) + "\n")
    df = to_long(df)
    summary = summarize(df)
    summary.to_csv(f"{stem}_summary.csv", index=False)
    plots_fcm.accuracy_figure(df, summary).savefig(f"{stem}.png", dpi=120)
    write_markdown(Path(f"{stem}.md"), summary, bounds, fits, base, sizes, elapsed)
    print(summary.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
