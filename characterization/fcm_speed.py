"""FCM speed against ngspice: the RxNN paper's Fig. 11, and model-generation time.

For N x N crossbars (N = 16 ... 128) of one preset it times, per vector-matrix
multiply (VMM) of one crossbar with its row DACs and column ADCs:

* ``ngspice``: one ``.op`` of the complete circuit (deck writing, ngspice
  process, reading the rawfile), median over a few input vectors;
* ``exact``: xbarlab's exact sparse solver of the same circuit (DACs in
  Thevenin form);
* ``fcm_single``: the FCM (rowsum DAC load, G_non-ideal, ADC, accumulation: ``FCM.matmul_codes_t``,
  the one evaluation path after the DAC codes) on one vector;
* ``fcm_batched``: the FCM on a batch of 1024 vectors, time / 1024 (how the
  FCM runs inside a DNN: one BLAS call per tile);
* ``fcm_exact_batched``: the FCM with the exact DAC load, batched.

All times are taken within one run on the same machine, so the ratios are
meaningful even on a loaded one. Model generation (G_non-ideal of one tile,
plus the row-port admittance for the exact mode) is timed next to the
paper's 0.038 s, 1.2 s and 61 s for 16, 32 and 64.

The ngspice runs of each size share a wall-clock budget (``--budget-s``,
default 300 s; ``characterization/budget.py``): a size whose ngspice runs do
not fit is written as ``not run: over the N s budget`` (``status`` and
``reason`` columns of the CSV, and in the markdown) and the script still
exits 0; a real ngspice failure still fails it.

    python -m characterization.fcm_speed [--out reports] [--quick] [--preset rxnn-spintronic]
                                         [--budget-s 300] [--sizes 16,32,64,128]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# Single-threaded BLAS, set before numpy loads it: ngspice is single-threaded too, and on a
# shared machine a multi-threaded BLAS spin-waits for busy cores and times become noise.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import xbarlab as xb  # noqa: E402
from xbarlab.engines.ngspice import NgspiceSettings  # noqa: E402
from xbarlab.host import cpu_model  # noqa: E402
from xbarlab.verify.spice_reference import exact_currents, spice_currents  # noqa: E402

from .budget import OverBudget, add_budget_argument, timed_runs  # noqa: E402

PAPER_GENERATION_S = {16: 0.038, 32: 1.2, 64: 61.0}
BATCH = 1024
#: status of an ngspice point left out by ``--ngspice-max`` (``make report`` leaves out the 128x128 deck,
#: whose one ``.op`` took 62-148 s on the 2-core development machines: ngspice-39's Sparse 1.3 reorder)
NOT_TIMED = "not run: report mode"
FULL_COMMAND = "python -m characterization.fcm_speed --out reports"


def _best(fn, repeat: int, number: int = 1) -> float:
    """Smallest mean time (s) of ``number`` calls over ``repeat`` rounds."""
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t) / number)
    return best


def _median(fn, items) -> float:
    ts = []
    for it in items:
        t = time.perf_counter()
        fn(it)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def evaluate(f: xb.FCM, codes_t: np.ndarray) -> np.ndarray:
    """One tile's FCM evaluation as ``FCM.matmul`` runs it after its DAC codes (``matmul_codes_t``):
    DAC load + G_non-ideal + ADC + accumulation, codes^T (M, B) -> outputs^T (N, B)."""
    return f.matmul_codes_t(codes_t, 1.0, codes_t.shape[1], scaled=False)


def run_size(spec: xb.CrossbarSpec, n_spice: int, rng: np.random.Generator, quick: bool,
             budget_s: float = 300.0, spice: bool = True):
    """The rows of one size; ``spice=False`` leaves its ngspice point out (``--ngspice-max``)."""
    n = spec.rows
    G = spec.device.quantize(rng.random((n, n)))
    codes = rng.integers(0, spec.dac.full_code + 1, (BATCH, n)).astype(float)
    codes_t = np.ascontiguousarray(codes.T)  # the evaluation's layout: one input vector per column
    rows = []
    notes = {}
    if not spice:
        rows.append(("ngspice", float("nan"), 0))
        notes["ngspice"] = (NOT_TIMED, f"ngspice at {n}x{n} left out by --ngspice-max, as `make report` does; "
                                       f"`{FULL_COMMAND}` times it")
    else:
        try:
            ts = timed_runs(lambda c, left: spice_currents(G, c, spec, NgspiceSettings(timeout_s=left)),
                            codes[:n_spice], budget_s)
            rows.append(("ngspice", float(np.median(ts)), n_spice))
        except OverBudget as over:
            rows.append(("ngspice", float("nan"), 0))
            notes["ngspice"] = (over.status, f"ngspice at {n}x{n}: {over.reason}")
    n_exact = 3 if n <= 64 else 2
    rows.append(("exact", _median(lambda c: exact_currents(G, c, spec), codes[:n_exact]), n_exact))
    rep = 5 if quick else 9
    gen_row = _best(lambda: xb.FCM.from_tiles(G[None, None, None], spec, xb.FCMOptions(), (n, n), 1.0), rep)
    gen_exact = _best(lambda: xb.FCM.from_tiles(G[None, None, None], spec, xb.FCMOptions(dac_load="exact"),
                                                (n, n), 1.0), 2 if n >= 128 else rep)
    f = xb.FCM.from_tiles(G[None, None, None], spec, xb.FCMOptions(), (n, n), 1.0)
    fe = f.with_options(dac_load="exact")
    one = np.ascontiguousarray(codes_t[:, :1])
    evaluate(f, one)
    rows.append(("fcm_single", _best(lambda: evaluate(f, one), rep, number=200), 200 * rep))
    rows.append(("fcm_batched", _best(lambda: evaluate(f, codes_t), rep) / BATCH, BATCH * rep))
    nb = 64 if n >= 128 else 256
    few = np.ascontiguousarray(codes_t[:, :nb])
    evaluate(fe, few[:, :1])
    rows.append(("fcm_exact_batched", _best(lambda: evaluate(fe, few), 2) / nb, nb * 2))
    df_rows = [{"size": n, "method": m, "seconds_per_vmm": t, "n_timed": k,
                "status": notes.get(m, ("ok", ""))[0], "reason": notes.get(m, ("ok", ""))[1]} for m, t, k in rows]
    gen = {"size": n, "seconds_rowsum": gen_row, "seconds_exact": gen_exact,
           "paper_seconds": PAPER_GENERATION_S.get(n, np.nan)}
    return df_rows, gen


def _g(x: float) -> str:
    return "–" if x != x else f"{x:.3g}"


def write_markdown(path: Path, df, gen, spec, elapsed: float, spice_max: int | None = None) -> None:
    piv = df.pivot(index="size", columns="method", values="seconds_per_vmm")
    status = df.pivot(index="size", columns="method", values="status")
    skipped = df[df.status != "ok"]
    lines = [
        "# FCM speed against ngspice (RxNN Fig. 11) and model generation",
        "",
        f"Preset `{spec.name}` (DAC {spec.dac.bits} bit, R_PD = {spec.dac.r_pd:g} ohm); one N x N crossbar with row "
        f"DACs and column ADCs; {cpu_model()}, "
        "single-threaded BLAS (ngspice is single-threaded too); times measured in one run (the machine was "
        "shared with other jobs, so absolute times are noisy; the ratios are taken within the run). "
        "ngspice time is per `.op` run including deck writing and process start; FCM single is one "
        "input vector through DAC, G_non-ideal and ADC; FCM batched is a batch of 1024 vectors / 1024.",
        "",
        "ngspice runs timed (median): " + ", ".join(
            f"{int(r.n_timed)} at {int(r.size)}x{int(r.size)}" for r in df[df.method == "ngspice"].itertuples())
        + (f". This is the report's count (`make report` passes `--ngspice-max {spice_max}`); `{FULL_COMMAND}` "
           "times ngspice at every size." if spice_max else "."),
        "",
        "| N | ngspice s/VMM | exact solver s/VMM | FCM single s/VMM | FCM batched s/VMM | FCM exact-load batched s/VMM | ngspice / FCM single | ngspice / FCM batched |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, r in piv.iterrows():
        cell = {m: (_g(r[m]) if status.loc[n, m] == "ok" else status.loc[n, m]) for m in piv.columns}
        lines.append(f"| {n} | {cell['ngspice']} | {cell['exact']} | {cell['fcm_single']} | {cell['fcm_batched']} | "
                     f"{cell['fcm_exact_batched']} | {_g(r.ngspice / r.fcm_single)} | {_g(r.ngspice / r.fcm_batched)} |")
    if len(skipped):
        lines += ["", "Points not run (each size's ngspice runs share one wall-clock budget, `--budget-s`; "
                  "`--ngspice-max N` leaves out the ngspice points above N x N):", ""]
        lines += [f"* N = {r.size}, {r.method}: {r.status} ({r.reason})." for r in skipped.itertuples()]
    lines += ["", "Model generation per crossbar (s):", "",
              "| N | G_non-ideal (rowsum FCM) | G_non-ideal + row-port Y (exact FCM) | RxNN paper |", "|---|---|---|---|"]
    for r in gen.itertuples():
        paper = "" if r.paper_seconds != r.paper_seconds else f"{r.paper_seconds:g}"
        lines.append(f"| {r.size} | {r.seconds_rowsum:.3g} | {r.seconds_exact:.3g} | {paper} |")
    if 64 in piv.index and status.loc[64, "ngspice"] != "ok":
        lines += ["", f"Target: FCM >= 1e5 x faster than ngspice at 64x64 (batched, per VMM): not checked, "
                  f"ngspice {status.loc[64, 'ngspice']}."]
    elif 64 in piv.index:
        ratio = piv.loc[64, "ngspice"] / piv.loc[64, "fcm_batched"]
        lines += ["", f"Target: FCM >= 1e5 x faster than ngspice at 64x64 (batched, per VMM): "
                  f"{ratio:.3g} x -> {'met' if ratio >= 1e5 else 'NOT met'}."]
    else:
        lines += ["", "Target: FCM >= 1e5 x faster than ngspice at 64x64 (batched, per VMM): not checked, no 64x64 "
                  "point in this run (--sizes)."]
    lines += ["", f"Run time {elapsed:.0f} s. Data: `fcm_speed.csv`, `fcm_generation.csv`; figure: `fcm_speed.png`.", ""]
    path.write_text("\n".join(lines))


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(not 2 <= n <= 1024 for n in sizes) or len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"must be comma-separated distinct sizes in 2..1024, got {text!r}")
    return sizes


def main(argv=None) -> int:
    from xbarlab.cli_args import seed
    from xbarlab.spec import preset_names

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--quick", action="store_true", help="16..64 and one ngspice run each (for CI)")
    p.add_argument("--preset", default="rxnn-spintronic", choices=preset_names(),
                   help="crossbar preset (default: rxnn-spintronic)")
    p.add_argument("--seed", type=seed, default=0)
    add_budget_argument(p, "each size's ngspice runs")
    p.add_argument("--sizes", type=_sizes, default=None, metavar="N,N,...",
                   help="crossbar sizes (default 16,32,64,128; 16,32,64 with --quick)")
    p.add_argument("--ngspice-max", type=int, default=None, metavar="N",
                   help="time ngspice only up to N x N (the FCM at every size); default: every size")
    args = p.parse_args(argv)
    if args.ngspice_max is not None and args.ngspice_max < 1:
        p.error(f"--ngspice-max must be >= 1, got {args.ngspice_max}")
    import pandas as pd

    from . import plots_fcm

    from xbarlab.cli_args import check_out_dir

    try:
        out = check_out_dir(args.out)  # (a file there raised FileExistsError with a traceback)
    except ValueError as exc:
        p.error(str(exc))
    base = xb.load_preset(args.preset)
    sizes = args.sizes or ((16, 32, 64) if args.quick else (16, 32, 64, 128))
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    rows, gens = [], []
    for n in sizes:
        r, g = run_size(base.with_size(n), 1 if args.quick or n >= 128 else 3, rng, args.quick, args.budget_s,
                        spice=args.ngspice_max is None or n <= args.ngspice_max)
        rows += r
        gens.append(g)
    df = pd.DataFrame(rows)
    gen = pd.DataFrame(gens)
    df.to_csv(out / "fcm_speed.csv", index=False)
    gen.to_csv(out / "fcm_generation.csv", index=False)
    plots_fcm.speed_figure(df, gen).savefig(out / "fcm_speed.png", dpi=120)
    cut = args.ngspice_max if args.ngspice_max is not None and max(sizes) > args.ngspice_max else None
    write_markdown(out / "fcm_speed.md", df, gen, base, time.perf_counter() - t0, cut)
    print((out / "fcm_speed.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
