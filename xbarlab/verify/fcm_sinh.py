"""The sinh FCM's error against the exact Newton solver, its reference for non-linear cells.

    python -m xbarlab.verify.fcm_sinh --out reports [--samples 20] [--sizes 16,64] [--b 1,3,5,10]

The FCM models a crossbar of sinh cells (I = G sinh(b V) / b) as
f(V) @ G_non-ideal with f(V) = sinh(b g V) / (b g) on the DAC-loaded row
voltages (``xbarlab.fcm.model``): an approximation once the wires take a
share of each cell's voltage. Its reference is the exact Newton solve of
the same circuit (``engines.nonlinear``, the DACs in Thevenin form:
``spice_reference.exact_currents``), itself within 1e-9 of ngspice
(``tests/core/test_nonlinear_sinh.py``); the first sample of every 16x16
row is also run in ngspice here (``ngspice_dev_pct_fs``) so the page shows
the reference agreeing with ngspice on the very circuits it judges.

Per preset, size and b: ``--samples`` random states on the device levels and
random DAC codes (``fitting.random_samples``, seed 0), ROWSUM with its
unfitted operating point (sinh_gamma 1) and with sinh_gamma (and the load
factor) fitted to the Newton currents of ``--samples`` further samples
(``fitting.fit_samples``). Errors in % of full-scale output (rows g_max
v_read) and the paper's per-column relative error, against the stated bound
``rowsum_bound.sinh_pct_fs_bound``. Writes ``fcm_sinh.csv`` and ``fcm_sinh.md``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from pathlib import Path

import numpy as np

from ..fcm.model import DacLoad, FCMOptions
from ..spec import CrossbarSpec, load_preset
from .fitting import error_pct_fs, fit_samples, model_currents, random_samples
from .rowsum_bound import sinh_pct_fs_bound
from .spice_reference import exact_currents, spice_currents

PRESETS = ("reram", "spintronic")


def sinh_spec(preset: str, size: int, b_per_v: float) -> CrossbarSpec:
    """``preset`` at size x size with sinh cells of b = ``b_per_v`` (1/V), no variation or faults."""
    s = load_preset(preset)
    dev = dataclasses.replace(s.device, sinh_b=float(b_per_v), variation=0.0, stuck_on_rate=0.0, stuck_off_rate=0.0)
    return s.replace(rows=size, cols=size, device=dev)


def newton_currents(spec: CrossbarSpec, samples) -> np.ndarray:
    """Exact output currents (A), (n, N), of each (G, codes) sample (Newton solver, DACs in Thevenin form)."""
    return np.stack([exact_currents(G, c, spec)[0] for G, c in samples])


def measure(spec: CrossbarSpec, n: int, seed: int = 0, spice_check: bool = False) -> dict:
    """One row of the page: the unfitted and fitted sinh FCM against the Newton solver on n test samples."""
    rng = np.random.default_rng(seed)
    test = random_samples(spec, n, rng)
    train = random_samples(spec, n, rng)
    t0 = time.perf_counter()
    I_test = newton_currents(spec, test)
    t_newton = (time.perf_counter() - t0) / n
    I_train = newton_currents(spec, train)
    base = FCMOptions(dac_load=DacLoad.ROWSUM)
    unfit = error_pct_fs(model_currents(spec, test, base), I_test, spec)
    result = fit_samples(spec, train, test, I_train, I_test, seed)
    fitted = result["options"]
    opts = base.replace(load_factor=fitted["load_factor"], sinh_gamma=fitted["sinh_gamma"])
    fit = error_pct_fs(model_currents(spec, test, opts), I_test, spec)
    row = {"preset": spec.name, "size": spec.rows, "b_per_v": spec.device.sinh_b, "b_v_read": spec.device.sinh_b
           * spec.dac.v_read, "samples": n, "max_pct_fs": unfit["max_pct_fs"], "rms_pct_fs": unfit["rms_pct_fs"],
           "max_col_rel": unfit["max_rel"], "mean_col_rel": unfit["mean_rel"],
           "bound_pct_fs": sinh_pct_fs_bound(spec), "fit_sinh_gamma": opts.sinh_gamma,
           "fit_load_factor": opts.load_factor, "fit_at_bound": ",".join(result["fit"].get("at_bound", [])),
           "fit_max_pct_fs": fit["max_pct_fs"],
           "fit_rms_pct_fs": fit["rms_pct_fs"], "newton_s_per_sample": t_newton, "ngspice_dev_pct_fs": float("nan")}
    if spice_check:
        G, codes = test[0]
        I_sp = spice_currents(G, codes, spec)[0]
        row["ngspice_dev_pct_fs"] = float(np.abs(I_sp - I_test[0]).max() / spec.full_scale_current_a * 100.0)
    return row


def _bound_mark(r: dict) -> str:
    """`` (kappa 0.5 at its bound)``, ... where the fit stopped at FIT_BOUNDS: the fit is then not a fitted value."""
    names = [n for n in str(r.get("fit_at_bound") or "").split(",") if n]
    val = {"load_factor": r["fit_load_factor"], "sinh_gamma": r["fit_sinh_gamma"]}
    short = {"load_factor": "kappa", "sinh_gamma": "g"}
    return "".join(f" ({short[n]} {val[n]:.3g} at its bound)" for n in names)


def page(rows: list[dict]) -> str:
    lines = ["# The sinh FCM against the exact Newton solver", "",
             "Written by `python -m xbarlab.verify.fcm_sinh --out reports` (`xbarlab/verify/fcm_sinh.py`). "
             "Reference: the Newton solver on the full circuit (DACs in Thevenin form, driver, wires, sinh cells, "
             "sense), within 1e-9 of ngspice (`tests/core/test_nonlinear_sinh.py`); `ngspice` column: the same "
             "first sample run in ngspice (default tolerances), its deviation from the Newton answer. "
             "Model: ROWSUM, f(V) = sinh(b g V) / (b g) on G_non-ideal, unfitted (g = 1) and with g and the load "
             "factor fitted to the Newton currents of as many training samples. Errors over the test samples, in % "
             "of full-scale output (rows g_max v_read); column error: the paper's per-column relative error. A fitted "
             "value marked 'at its bound' stopped at the fit's bounds (0.5..1.5): the best value lies outside, "
             "the closed form does not describe that circuit within them, and such a fit is never saved.", "",
             "| preset | size | b (1/V) | b v_read | max % FS | rms % FS | max column rel. | stated bound % FS "
             "| fitted g | fitted max % FS | ngspice vs Newton % FS |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sp = "" if np.isnan(r["ngspice_dev_pct_fs"]) else f"{r['ngspice_dev_pct_fs']:.2g}"
        lines.append(f"| {r['preset']} | {r['size']} | {r['b_per_v']:g} | {r['b_v_read']:g} | {r['max_pct_fs']:.3g} "
                     f"| {r['rms_pct_fs']:.3g} | {r['max_col_rel']:.3g} | {r['bound_pct_fs']:.3g} "
                     f"| {r['fit_sinh_gamma']:.4f}{_bound_mark(r)} | {r['fit_max_pct_fs']:.3g} | {sp} |")
    worst = {}
    for r in rows:
        if r["size"] == 16 and r["b_per_v"] == 10:
            worst[r["preset"]] = r["max_pct_fs"]
    over = [r for r in rows if r["max_pct_fs"] > r["bound_pct_fs"]]
    lines += ["", "At b = 10 /V on 16x16: " + ", ".join(f"{p} {v:.3g} % FS" for p, v in worst.items())
              + " (the issue quoted 4.9 % FS from an earlier trial; these are this run's numbers).",
              f"Rows over the stated bound: {len(over)} of {len(rows)}."
              + (" " + ", ".join(f"{r['preset']} {r['size']} b={r['b_per_v']:g}" for r in over) if over else ""), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("reports"))
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--sizes", default="16,64")
    p.add_argument("--b", default="1,3,5,10")
    args = p.parse_args(argv)
    from ..cli_args import check_out_dir

    try:
        check_out_dir(args.out)
        sizes = [int(s) for s in args.sizes.split(",")]
        bs = [float(b) for b in args.b.split(",")]
        if not 1 <= args.samples <= 1000:
            raise ValueError(f"--samples must be in 1..1000, got {args.samples}")
        if not sizes or min(sizes) < 2 or max(sizes) > 256:
            raise ValueError(f"--sizes must be sizes in 2..256, got {args.sizes!r}")
        if not bs or not all(np.isfinite(b) and b >= 0 for b in bs):
            raise ValueError(f"--b must be finite values >= 0 (1/V), got {args.b!r}")
        specs = [(preset, size, b, sinh_spec(preset, size, b)) for preset in PRESETS for size in sizes for b in bs]
    except ValueError as exc:
        p.error(str(exc))
    rows = []
    for preset, size, b, spec in specs:
        try:
            rows.append(measure(spec, args.samples, spice_check=size == 16))
        except ValueError as exc:  # e.g. a b too small for its fit to resolve sinh_gamma: one line
            p.exit(1, f"{p.prog}: error: {preset} {size}x{size} b={b:g}: {exc}\n")
        r = rows[-1]
        print(f"{preset} {size}x{size} b={b:g}: {r['max_pct_fs']:.3g} % FS (bound {r['bound_pct_fs']:.3g}), "
              f"fitted {r['fit_max_pct_fs']:.3g}", flush=True)
    with open(args.out / "fcm_sinh.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (args.out / "fcm_sinh.md").write_text(page(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
