"""Benchmark: xbarlab against badcrossbar (PyPI) on the same circuits, side by side.

    python benchmarks/bench_peers.py --out reports [--quick] [--large] [--repeats 3]

badcrossbar's plotting needs pycairo and the cairo C library; its solver does
not. Install it without its dependencies plus the two its solver imports:
``pip install -e '.[bench]' && pip install --no-deps badcrossbar`` (the
``bench`` extra holds ``sigfig`` and ``pathvalidate``).

Each measurement runs in a fresh subprocess (one tool, one circuit, one
call, after a warm-up call on a 4 x 4 crossbar), so its peak memory is that
process's peak resident set size minus its size before the call. Tools run
in a rotated order in every repeat; a tool's time is its median, a ratio is
the median of the per-repeat ratios. One BLAS thread everywhere
(OPENBLAS_NUM_THREADS=1 and friends in the child's environment).

Same circuit in both conventions: badcrossbar's r_i_word_line = r_row,
r_i_bit_line = r_col, and xbarlab's r_driver = r_sense = 0. Agreement is
max |I_badcrossbar - I_xbarlab| / max |I_xbarlab| over every output.
Writes bench_peers.csv and bench_peers.md.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

R_WIRE = 2.5  # ohm, every row and column segment
WARM_SIDE = 48  # side of the untimed warm-up call (the dissection of engines/dissection.py starts here)
TOOLS = ("badcrossbar", "simulate", "g_nonideal")
GOAL_RATIO = 2.0  # simulate must be this many times faster than badcrossbar
INSTALL_HINT = ("badcrossbar is not installed: pip install -e '.[bench]' && "
                "pip install --no-deps badcrossbar")

CHILD = r"""
import json, logging, resource, sys, time
import numpy as np
tool, n, B, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(n * 1000 + B)
G = 10 ** rng.uniform(-6, -4, (n, n))
V = rng.uniform(0.0, 0.25, (B, n))
if tool == "badcrossbar":
    import badcrossbar
    logging.getLogger("badcrossbar").setLevel(logging.WARNING)
    logging.disable(logging.INFO)
    def run(G, V):
        return badcrossbar.compute(V.T, 1.0 / G, r_i_word_line=R, r_i_bit_line=R,
                                   node_voltages=False, all_currents=False).currents.output
else:
    import xbarlab as xb
    c = xb.CircuitParams(r_row=R, r_col=R, r_sense=0.0, r_driver=0.0)
    if tool == "simulate":
        def run(G, V):
            return xb.simulate(G, V, c)
    else:
        def run(G, V):
            return V @ xb.g_nonideal(G, c)
w = min(n, WARM_SIDE)  # warm-up on the same code path (xbarlab's compiled kernels load from disk)
t0 = time.perf_counter()
run(G[:w, :w], V[:, :w])
warm = time.perf_counter() - t0
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
I = np.asarray(run(G, V)).reshape(B, n)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
np.save(out, I)
print(json.dumps(dict(seconds=dt, warm_up_s=warm, peak_mib=(peak - base) / 1024.0)))
"""


def have_badcrossbar() -> bool:
    return subprocess.run([sys.executable, "-c", "import badcrossbar.compute"],
                          capture_output=True).returncode == 0


def measure(tool: str, n: int, B: int, out: Path) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    code = f"R = {R_WIRE!r}\nWARM_SIDE = {WARM_SIDE!r}\n" + CHILD
    p = subprocess.run([sys.executable, "-c", code, tool, str(n), str(B), str(out)],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{tool} at {n}x{n}, {B} vectors failed: {p.stderr.strip().splitlines()[-1:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_case(n: int, B: int, repeats: int, tmp: Path) -> dict:
    times = {t: [] for t in TOOLS}
    mem = {t: 0.0 for t in TOOLS}
    warm = {t: [] for t in TOOLS}
    outs = {}
    for r in range(repeats):
        order = TOOLS[r % 3:] + TOOLS[:r % 3]
        for tool in order:
            f = tmp / f"{tool}.npy"
            m = measure(tool, n, B, f)
            times[tool].append(m["seconds"])
            warm[tool].append(m["warm_up_s"])
            mem[tool] = max(mem[tool], m["peak_mib"])
            outs[tool] = np.load(f)
    ref = outs["simulate"]
    row = dict(size=n, vectors=B)
    for tool in TOOLS:
        row[f"{tool}_s"] = float(np.median(times[tool]))
        row[f"{tool}_peak_mib"] = mem[tool]
        row[f"{tool}_warm_up_s"] = float(np.median(warm[tool]))
    bc = np.array(times["badcrossbar"])
    row["speedup_simulate"] = float(np.median(bc / np.array(times["simulate"])))
    row["speedup_g_nonideal"] = float(np.median(bc / np.array(times["g_nonideal"])))
    scale = np.max(np.abs(ref))
    row["agreement_badcrossbar"] = float(np.max(np.abs(outs["badcrossbar"] - ref)) / scale)
    row["agreement_g_nonideal"] = float(np.max(np.abs(outs["g_nonideal"] - ref)) / scale)
    row["goal_met"] = row["speedup_simulate"] >= GOAL_RATIO
    return row


def peer_version() -> str:
    """The installed badcrossbar's version, read from its package metadata ("version unknown" where
    there is none): the report names the version measured, never an assumed one."""
    try:
        return importlib.metadata.version("badcrossbar")
    except importlib.metadata.PackageNotFoundError:
        return "version unknown"


def write_report(rows: list[dict], out: Path, load: tuple[float, float], repeats: int) -> None:
    import pandas as pd

    pd.DataFrame(rows).to_csv(out / "bench_peers.csv", index=False)
    lines = [
        "# xbarlab against badcrossbar",
        "",
        f"badcrossbar {peer_version()} (PyPI) and xbarlab on the same circuits: "
        f"r_row = r_col = {R_WIRE} ohm (badcrossbar's r_i_word_line, r_i_bit_line), r_driver = r_sense = 0, "
        "G log-uniform in [1e-6, 1e-4] S, inputs uniform in [0, 0.25] V, seeded.",
        f"Measured by `python benchmarks/bench_peers.py` in one run: each call in a fresh subprocess with one "
        f"BLAS thread, {repeats} repeats in rotated tool order, median times, median per-repeat ratios. "
        "Peak memory: the subprocess's peak resident set size minus its size before the call.",
        f"Before the timed call each subprocess makes one untimed warm-up call on the top-left "
        f"min(n, {WARM_SIDE}) square of the same circuit, on the same code path: it includes loading "
        "xbarlab's compiled (numba) kernels from their disk cache, a one-time cost per process given "
        "in the last column (median over repeats; badcrossbar's warm-up for comparison).",
        f"Machine: {os.cpu_count()} cores; load average {load[0]:.1f} before and {load[1]:.1f} after the run "
        "(other processes shared the CPU when it is above the core count; ratios within one run still compare "
        "the tools on the same load).",
        "`simulate` is `xb.simulate(G, V, c)`, `g_nonideal` is `V @ xb.g_nonideal(G, c)`, badcrossbar is "
        "`badcrossbar.compute(V.T, 1 / G, r_i_word_line, r_i_bit_line)` with output currents only. "
        f"Goal: `simulate` at least {GOAL_RATIO:g}x faster than badcrossbar.",
        "",
        "| size | vectors | badcrossbar | simulate | V @ g_nonideal | speed-up simulate | speed-up g_nonideal "
        "| peak MiB (bc / sim / gn) | agreement bc vs xbarlab | g_nonideal vs simulate | goal met "
        "| warm-up call (bc / sim) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']}x{r['size']} | {r['vectors']} | {r['badcrossbar_s']:.4g} s | {r['simulate_s']:.4g} s | "
            f"{r['g_nonideal_s']:.4g} s | {r['speedup_simulate']:.2f}x | {r['speedup_g_nonideal']:.2f}x | "
            f"{r['badcrossbar_peak_mib']:.0f} / {r['simulate_peak_mib']:.0f} / {r['g_nonideal_peak_mib']:.0f} | "
            f"{r['agreement_badcrossbar']:.1e} | {r['agreement_g_nonideal']:.1e} | "
            f"{'yes' if r['goal_met'] else 'NO'} | "
            f"{r['badcrossbar_warm_up_s']:.3g} s / {r['simulate_warm_up_s']:.3g} s |")
    (out / "bench_peers.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="reports")
    p.add_argument("--quick", action="store_true", help="sizes 16 and 32 only, one repeat")
    p.add_argument("--large", action="store_true", help="add 512 x 512 (minutes, over 1 GB per tool)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    if not have_badcrossbar():
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    sizes = [16, 32] if args.quick else [16, 32, 64, 128, 256] + ([512] if args.large else [])
    repeats = 1 if args.quick else args.repeats
    load0 = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for n in sizes:
            for B in (1, 64):
                row = run_case(n, B, 1 if n >= 512 else repeats, Path(d))
                rows.append(row)
                print(f"{n}x{n} B={B}: badcrossbar {row['badcrossbar_s']:.3f} s, simulate {row['simulate_s']:.3f} s "
                      f"({row['speedup_simulate']:.2f}x), g_nonideal {row['g_nonideal_s']:.3f} s, "
                      f"agreement {row['agreement_badcrossbar']:.1e}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_report(rows, out, (load0, os.getloadavg()[0]), repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
