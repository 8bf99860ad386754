"""A/B timing of g_nonideal_stack in two source trees, as a ratio within one run.

    python benchmarks/ab_dissection.py REF_TREE NEW_TREE --n 256 --tiles 1 --reps 5 [--circuit bench|ideal]

Each repetition runs both trees in fresh subprocesses (one BLAS thread), in alternating
order, each timing the best of --calls calls after a warm-up, in wall time and in the
process's CPU time; the medians and their ratios are printed. On a loaded machine, read the
ratios (the CPU-time one is the less disturbed by other processes), not the absolute times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

CODE = """
import time, numpy as np
from xbarlab.params import CircuitParams
from xbarlab.engines import structured
rng = np.random.default_rng(0)
if "{circuit}" == "bench":  # benchmarks/bench_g_nonideal.py's circuit, on which the goals are measured
    G = 10 ** rng.uniform(-6, -4, ({T}, {n}, {n}))
    c = CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
else:  # "ideal": ideal sense amplifiers and drivers (a smaller final elimination)
    G = rng.uniform(1e-6, 1e-4, ({T}, {n}, {n}))
    c = CircuitParams(r_row=1.0, r_col=1.0)
structured.g_nonideal_stack(G[:1], c)
ts, cs = [], []
for _ in range({calls}):
    t, p = time.perf_counter(), time.process_time()
    structured.g_nonideal_stack(G, c)
    ts.append(time.perf_counter() - t)
    cs.append(time.process_time() - p)
print(min(ts), min(cs))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref")
    ap.add_argument("new")
    ap.add_argument("--n", type=int, default=256, help="array side")
    ap.add_argument("--tiles", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--calls", type=int, default=2, help="timed calls per subprocess (the best is kept)")
    ap.add_argument("--circuit", choices=("bench", "ideal"), default="bench",
                    help="bench: bench_g_nonideal.py's circuit (r_sense 100 ohm, r_driver 50 ohm); "
                         "ideal: r_sense = r_driver = 0")
    a = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    wall = {a.ref: [], a.new: []}
    cpu = {a.ref: [], a.new: []}
    for r in range(a.reps):
        for tree in (a.ref, a.new) if r % 2 == 0 else (a.new, a.ref):
            run = subprocess.run([sys.executable, "-c", CODE.format(T=a.tiles, n=a.n, calls=a.calls, circuit=a.circuit)], cwd=tree,
                                 env={**env, "PYTHONPATH": os.path.abspath(tree)}, capture_output=True, text=True)
            if run.returncode:
                sys.exit(f"ab_dissection: {tree}: {run.stderr.strip().splitlines()[-1]}")
            w, c = (float(x) for x in run.stdout.split()[-2:])
            wall[tree].append(w)
            cpu[tree].append(c)
    med = {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in wall}
    (rw, rc), (nw, nc) = med[a.ref], med[a.new]
    print(f"{a.n}x{a.n}, {a.tiles} tiles, median of {a.reps}: wall ref {rw * 1e3:.1f} ms, new {nw * 1e3:.1f} ms, "
          f"speed-up {rw / nw:.2f}x; CPU ref {rc * 1e3:.1f} ms, new {nc * 1e3:.1f} ms, speed-up {rc / nc:.2f}x "
          f"(wall ref {[round(x, 4) for x in wall[a.ref]]}, new {[round(x, 4) for x in wall[a.new]]})")


if __name__ == "__main__":
    main()
