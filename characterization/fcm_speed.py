"""FCM speed against ngspice: the RxNN paper's Fig. 11, and model-generation time.

For N x N crossbars (N = 16 ... 128) of one preset it times, per vector-matrix
multiply (VMM) of one crossbar with its row DACs and column ADCs:

* ``ngspice``: one ``.op`` of the complete circuit (deck writing, ngspice
  process, reading the rawfile), median over a few input vectors;
* ``exact``: xbarlab's exact sparse solver of the same circuit (DACs in
  Thevenin form);
* ``fcm_single``: the FCM (rowsum DAC load, G_non-ideal, ADC) on one vector;
* ``fcm_batched``: the FCM on a batch of 1024 vectors, time / 1024 (how the
  FCM runs inside a DNN: one BLAS call per tile);
* ``fcm_exact_batched``: the FCM with the exact DAC load, batched.

All times are taken within one run on the same machine, so the ratios are
meaningful even on a loaded one. Model generation (G_non-ideal of one tile,
plus the row-port admittance for the exact mode) is timed next to the
paper's 0.038 s, 1.2 s and 61 s for 16, 32 and 64.

    python -m characterization.fcm_speed [--out reports] [--quick] [--preset spintronic]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

# Single-threaded BLAS, set before numpy loads it: ngspice is single-threaded too, and on a
# shared machine a multi-threaded BLAS spin-waits for busy cores and times become noise.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import xbarlab as xb  # noqa: E402
from xbarlab.verify.spice_reference import exact_currents, spice_currents

PAPER_GENERATION_S = {16: 0.038, 32: 1.2, 64: 61.0}
BATCH = 1024


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


def evaluate(f: xb.FCM, codes: np.ndarray) -> np.ndarray:
    """One tile's FCM evaluation: DAC + G_non-ideal + ADC, codes (B, M) -> digital currents (B, N)."""
    I = f.tile_currents(codes)
    return f.spec.adc.convert(I, f.adc_full_scale_a[..., None, None])[0, 0, 0]


def run_size(spec: xb.CrossbarSpec, n_spice: int, rng: np.random.Generator, quick: bool):
    n = spec.rows
    G = spec.device.quantize(rng.random((n, n)))
    codes = rng.integers(0, spec.dac.full_code + 1, (BATCH, n)).astype(float)
    rows = []
    t_ng = _median(lambda c: spice_currents(G, c, spec), codes[:n_spice])
    rows.append(("ngspice", t_ng, n_spice))
    n_exact = 3 if n <= 64 else 2
    rows.append(("exact", _median(lambda c: exact_currents(G, c, spec), codes[:n_exact]), n_exact))
    rep = 5 if quick else 9
    gen_row = _best(lambda: xb.FCM.from_tiles(G[None, None, None], spec, xb.FCMOptions(), (n, n), 1.0), rep)
    gen_exact = _best(lambda: xb.FCM.from_tiles(G[None, None, None], spec, xb.FCMOptions(dac_load="exact"),
                                                (n, n), 1.0), 2 if n >= 128 else rep)
    f = xb.FCM.from_tiles(G[None, None, None], spec, xb.FCMOptions(), (n, n), 1.0)
    fe = f.with_options(dac_load="exact")
    one = codes[:1]
    evaluate(f, one)
    rows.append(("fcm_single", _best(lambda: evaluate(f, one), rep, number=200), 200 * rep))
    rows.append(("fcm_batched", _best(lambda: evaluate(f, codes), rep) / BATCH, BATCH * rep))
    nb = 64 if n >= 128 else 256
    rows.append(("fcm_exact_batched", _best(lambda: evaluate(fe, codes[:nb]), 2) / nb, nb * 2))
    df_rows = [{"size": n, "method": m, "seconds_per_vmm": t, "n_timed": k} for m, t, k in rows]
    gen = {"size": n, "seconds_rowsum": gen_row, "seconds_exact": gen_exact,
           "paper_seconds": PAPER_GENERATION_S.get(n, np.nan)}
    return df_rows, gen


def write_markdown(path: Path, df, gen, spec, elapsed: float) -> None:
    piv = df.pivot(index="size", columns="method", values="seconds_per_vmm")
    lines = [
        "# FCM speed against ngspice (RxNN Fig. 11) and model generation",
        "",
        f"Preset `{spec.name}`; one N x N crossbar with row DACs and column ADCs; {platform.processor() or platform.machine()}, "
        "single-threaded BLAS (ngspice is single-threaded too); times measured in one run (the machine was "
        "shared with other jobs, so absolute times are noisy; the ratios are taken within the run). "
        "ngspice time is per `.op` run including deck writing and process start; FCM single is one "
        "input vector through DAC, G_non-ideal and ADC; FCM batched is a batch of 1024 vectors / 1024.",
        "",
        "| N | ngspice s/VMM | exact solver s/VMM | FCM single s/VMM | FCM batched s/VMM | FCM exact-load batched s/VMM | ngspice / FCM single | ngspice / FCM batched |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, r in piv.iterrows():
        lines.append(f"| {n} | {r.ngspice:.3g} | {r.exact:.3g} | {r.fcm_single:.3g} | {r.fcm_batched:.3g} | "
                     f"{r.fcm_exact_batched:.3g} | {r.ngspice / r.fcm_single:.3g} | {r.ngspice / r.fcm_batched:.3g} |")
    lines += ["", "Model generation per crossbar (s):", "",
              "| N | G_non-ideal (rowsum FCM) | G_non-ideal + row-port Y (exact FCM) | RxNN paper |", "|---|---|---|---|"]
    for r in gen.itertuples():
        paper = "" if r.paper_seconds != r.paper_seconds else f"{r.paper_seconds:g}"
        lines.append(f"| {r.size} | {r.seconds_rowsum:.3g} | {r.seconds_exact:.3g} | {paper} |")
    if 64 in piv.index:
        ratio = piv.loc[64, "ngspice"] / piv.loc[64, "fcm_batched"]
        lines += ["", f"Target: FCM >= 1e5 x faster than ngspice at 64x64 (batched, per VMM): "
                  f"{ratio:.3g} x -> {'met' if ratio >= 1e5 else 'NOT met'}."]
    lines += ["", f"Run time {elapsed:.0f} s. Data: `fcm_speed.csv`, `fcm_generation.csv`; figure: `fcm_speed.png`.", ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--quick", action="store_true", help="16..64 and one ngspice run each (for CI)")
    p.add_argument("--preset", default="spintronic", help="crossbar preset (default: spintronic)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import pandas as pd

    from . import plots_fcm

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = xb.load_preset(args.preset)
    sizes = (16, 32, 64) if args.quick else (16, 32, 64, 128)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    rows, gens = [], []
    for n in sizes:
        r, g = run_size(base.with_size(n), 1 if args.quick or n >= 128 else 3, rng, args.quick)
        rows += r
        gens.append(g)
    df = pd.DataFrame(rows)
    gen = pd.DataFrame(gens)
    df.to_csv(out / "fcm_speed.csv", index=False)
    gen.to_csv(out / "fcm_generation.csv", index=False)
    plots_fcm.speed_figure(df, gen).savefig(out / "fcm_speed.png", dpi=120)
    write_markdown(out / "fcm_speed.md", df, gen, base, time.perf_counter() - t0)
    print((out / "fcm_speed.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
