"""A/B timing of g_nonideal_stack in two source trees, as a ratio within one run.

    python benchmarks/ab_dissection.py REF_TREE NEW_TREE --n 256 --tiles 1 --reps 5

Each repetition runs both trees in fresh subprocesses (one BLAS thread), in alternating
order, each timing the best of two calls after a warm-up; the medians and their ratio are
printed. On a loaded machine, read the ratio, not the absolute times.
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
G = np.random.default_rng(0).uniform(1e-6, 1e-4, ({T}, {n}, {n}))
c = CircuitParams(r_row=1.0, r_col=1.0)
structured.g_nonideal_stack(G[:1], c)
ts = []
for _ in range(2):
    t = time.perf_counter(); structured.g_nonideal_stack(G, c); ts.append(time.perf_counter() - t)
print(min(ts))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref")
    ap.add_argument("new")
    ap.add_argument("--n", type=int, default=256, help="array side")
    ap.add_argument("--tiles", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    times = {a.ref: [], a.new: []}
    for r in range(a.reps):
        for tree in (a.ref, a.new) if r % 2 == 0 else (a.new, a.ref):
            run = subprocess.run([sys.executable, "-c", CODE.format(T=a.tiles, n=a.n)], cwd=tree,
                                 env={**env, "PYTHONPATH": os.path.abspath(tree)}, capture_output=True, text=True)
            if run.returncode:
                sys.exit(f"ab_dissection: {tree}: {run.stderr.strip().splitlines()[-1]}")
            times[tree].append(float(run.stdout.split()[-1]))
    ref, new = statistics.median(times[a.ref]), statistics.median(times[a.new])
    print(f"{a.n}x{a.n}, {a.tiles} tiles: ref {ref * 1e3:.1f} ms, new {new * 1e3:.1f} ms, "
          f"speed-up {ref / new:.2f}x (ref {times[a.ref]}, new {times[a.new]})")


if __name__ == "__main__":
    main()
