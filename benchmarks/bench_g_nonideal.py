"""Benchmark: time to generate G_non-ideal, against ngspice and the RxNN paper.

    python benchmarks/bench_g_nonideal.py --out reports [--quick] [--budget-s 300]

Writes bench_g_nonideal.csv and .md. Medians of repeated runs measured with
time.perf_counter in one process. ngspice is timed per VMM (one deck, one
.op); building G_non-ideal with ngspice needs one run per row, so that
figure is the per-run time times M (labelled as extrapolated). The ngspice
runs of each size share a wall-clock budget (``--budget-s``, default 300 s,
``characterization/budget.py``): a size that does not fit is written as
``not run: over the N s budget`` with the reason (``ngspice_status``,
``ngspice_reason``) and the script still exits 0; a real ngspice failure
still fails it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

import xbarlab as xb
from characterization.budget import OverBudget, add_budget_argument, timed_runs
from xbarlab.engines import exact

CIRCUIT = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
TARGET_S = {64: 0.015, 128: 0.120, 256: 1.5}
PAPER_S = {16: 0.038, 32: 1.2, 64: 61.0}


def blas_threads() -> str:
    """The BLAS library and its thread count, where threadpoolctl can tell."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS threads unknown"
    info = {f"{d['internal_api']} with {d['num_threads']} threads" for d in threadpool_info()
            if d.get("user_api") == "blas"}
    return ", ".join(sorted(info)) or "BLAS threads unknown"


@contextlib.contextmanager
def one_blas_thread():
    """Limit BLAS to one thread inside the block (yields False where threadpoolctl is missing).

    On a machine shared with other processes, BLAS threads that wait for each
    other can slow the small dense solves of g_nonideal down many times; the
    one-thread column shows the time without that effect.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield True


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports")
    p.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    add_budget_argument(p, "each size's ngspice runs")
    p.add_argument("--sizes", type=lambda t: [int(x) for x in t.split(",")], default=None, metavar="N,N,...",
                   help="crossbar sizes (default 16,32,64,128,256; 16,32,64,128 with --quick)")
    args = p.parse_args(argv)
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    sizes = args.sizes or ([16, 32, 64, 128] if args.quick else [16, 32, 64, 128, 256])
    if any(not 2 <= n <= 4096 for n in sizes):
        p.error(f"argument --sizes: each size must be in 2..4096, got {sizes}")
    rows = []
    for n in sizes:
        G = 10 ** rng.uniform(-6, -4, (n, n))
        reps = 3 if n >= 256 else (5 if n >= 128 else 11)
        xb.g_nonideal(G, CIRCUIT)  # warm-up
        t_fast = median_time(lambda: xb.g_nonideal(G, CIRCUIT), reps)
        with one_blas_thread() as limited:
            t_one = median_time(lambda: xb.g_nonideal(G, CIRCUIT), reps) if limited else np.nan
        t_sparse = median_time(lambda: exact.g_nonideal(G, CIRCUIT), 1 if n >= 128 else 3)
        t_spice, spice_status, spice_reason = np.nan, "", ""
        if n <= 64:
            V = rng.uniform(0, 0.25, n)
            try:
                ts = timed_runs(lambda _, left: xb.simulate(G, V, CIRCUIT, engine="ngspice",
                                                            ngspice=xb.NgspiceSettings(timeout_s=left)),
                                range(3 if n < 64 else 1), args.budget_s)
                t_spice, spice_status = float(np.median(ts)), "ok"
            except OverBudget as over:
                spice_status, spice_reason = over.status, f"ngspice at {n}x{n}: {over.reason}"
        target = TARGET_S.get(n)
        rows.append(dict(
            size=f"{n}x{n}", n=n,
            g_nonideal_median_s=t_fast,
            g_nonideal_one_blas_thread_s=t_one,
            exact_sparse_g_nonideal_s=t_sparse,
            ngspice_one_vmm_s=t_spice,
            ngspice_g_nonideal_extrapolated_s=t_spice * n,
            ngspice_status=spice_status,
            ngspice_reason=spice_reason,
            paper_model_generation_s=PAPER_S.get(n, np.nan),
            target_s=target if target else np.nan,
            meets_target=(t_fast <= target) if target else None,
        ))
        print(f"{n}x{n}: g_nonideal {t_fast*1e3:.2f} ms (1 BLAS thread {t_one*1e3:.2f} ms), sparse {t_sparse*1e3:.1f} ms, ngspice/VMM {t_spice:.3f} s")
    # Batched tiles: the DNN path.
    T = 64
    stack = 10 ** rng.uniform(-6, -4, (T, 64, 64))
    xb.g_nonideal_stack(stack[:2], CIRCUIT)
    t_stack = median_time(lambda: xb.g_nonideal_stack(stack, CIRCUIT), 3)
    load_after = os.getloadavg()[0]
    df = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "bench_g_nonideal.csv", index=False)
    lines = [
        "# G_non-ideal generation time",
        "",
        "Circuit: r_row = r_col = 2.5 ohm, r_sense = 100 ohm, r_driver = 50 ohm; G log-uniform in [1e-6, 1e-4] S.",
        "Median wall time on this machine, measured in one run by `python benchmarks/bench_g_nonideal.py`.",
        f"Machine: {os.cpu_count()} cores, {blas_threads()}; load average {load_before:.1f} before and "
        f"{load_after:.1f} after the run (a load above the core count means other processes shared the CPU, "
        "and the times are pessimistic).",
        "ngspice builds G_non-ideal from M runs of one VMM each (one unit input per row); that column is "
        "the measured one-VMM time times M, not a measurement.",
        "",
        "| size | g_nonideal (median) | g_nonideal, 1 BLAS thread | exact sparse solver | ngspice, one VMM "
        "| ngspice, G_non-ideal (M runs, extrapolated) | RxNN paper | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        def f(x, unit="s"):
            return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.4g} {unit}"
        met = "–" if r["meets_target"] is None else ("yes" if r["meets_target"] else "NO")
        skipped = r["ngspice_status"] not in ("", "ok")
        spice = (r["ngspice_status"],) * 2 if skipped else (f(r["ngspice_one_vmm_s"]),
                                                             f(r["ngspice_g_nonideal_extrapolated_s"]))
        lines.append(f"| {r['size']} | {f(r['g_nonideal_median_s'])} | {f(r['g_nonideal_one_blas_thread_s'])} | "
                     f"{f(r['exact_sparse_g_nonideal_s'])} | "
                     f"{spice[0]} | {spice[1]} | "
                     f"{f(r['paper_model_generation_s'])} | {f(r['target_s'])} | {met} |")
    not_run = [f"* {r['size']}, ngspice: {r['ngspice_status']} ({r['ngspice_reason']})." for r in rows
               if r["ngspice_status"] not in ("", "ok")]
    lines += ["", "Not run (each size's ngspice runs share one wall-clock budget, `--budget-s`):", "", *not_run] if not_run else []
    lines += ["", f"Batched API `g_nonideal_stack`: {T} tiles of 64x64 in {t_stack:.3f} s "
              f"= **{T / t_stack:.0f} tiles/s**.", ""]
    (out / "bench_g_nonideal.md").write_text("\n".join(lines))
    pd.DataFrame([dict(tiles=T, tile_size="64x64", seconds=t_stack, tiles_per_s=T / t_stack)]).to_csv(
        out / "bench_g_nonideal_stack.csv", index=False)
    print(f"stack: {T / t_stack:.0f} tiles/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
