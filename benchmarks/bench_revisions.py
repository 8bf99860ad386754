"""Speed of the circuit core against an earlier git revision, in the same run.

    python benchmarks/bench_revisions.py --baseline 85af9f1 --out reports

Issue 10 asks that the hardening (input checks, conditioning, sense-resistor
currents) slow the exact solver by no more than 10 % on the benchmark sizes.
This script exports the baseline revision with ``git archive`` into a
temporary folder, then times ``xb.solve`` (the full exact solver: node
voltages and currents), ``xb.simulate`` and ``xb.g_nonideal`` at 16, 32 and
64 in fresh interpreters, alternating baseline and working tree in pairs
(one BLAS thread each). Each ratio is the median over pairs of
(working tree / baseline), so both sides see the same machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import json, sys, time
import numpy as np
import xbarlab as xb
n, reps = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(n)
G = 10 ** rng.uniform(-6, -4, (n, n))
V = rng.uniform(0, 0.25, n)
c = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
calls = {"solve": lambda: xb.solve(G, V, c), "simulate": lambda: xb.simulate(G, V, c),
         "g_nonideal": lambda: xb.g_nonideal(G, c)}
out = {}
for name, f in calls.items():
    f()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter(); f(); best = min(best, time.perf_counter() - t0)
    out[name] = best
print(json.dumps(out))
'''


def export(rev: str, dest: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def time_tree(tree: Path, n: int, reps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(tree), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", CHILD, str(n), str(reps)], capture_output=True, text=True,
                       env=env, cwd=tree)
    if r.returncode != 0:
        raise RuntimeError(f"timing child failed in {tree}: {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(r.stdout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default="85af9f1", help="git revision to compare against")
    ap.add_argument("--pairs", type=int, default=5, help="alternating baseline/new pairs per size")
    ap.add_argument("--reps", type=int, default=7, help="calls per child; the best is kept")
    ap.add_argument("--out", type=Path, default=ROOT / "reports")
    a = ap.parse_args(argv)
    if a.pairs < 1 or a.reps < 1:
        ap.error("--pairs and --reps must be >= 1")
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = export(a.baseline, Path(tmp))
        for n in (16, 32, 64):
            ratios: dict[str, list[float]] = {}
            times: dict[tuple[str, str], list[float]] = {}
            for p in range(a.pairs):
                order = [("baseline", base), ("new", ROOT)]
                if p % 2:
                    order.reverse()
                got = {label: time_tree(tree, n, a.reps) for label, tree in order}
                for call in got["new"]:
                    ratios.setdefault(call, []).append(got["new"][call] / got["baseline"][call])
                    for label in got:
                        times.setdefault((label, call), []).append(got[label][call])
            for call, rs in ratios.items():
                rows.append(dict(size=n, call=call, baseline_ms=1e3 * min(times[("baseline", call)]),
                                 new_ms=1e3 * min(times[("new", call)]), ratio=statistics.median(rs)))
                print(f"{n}x{n} {call}: ratio {rows[-1]['ratio']:.3f}", flush=True)
    load = os.getloadavg()[0]
    lines = [f"# Circuit core speed against revision `{a.baseline}`", "",
             f"`python benchmarks/bench_revisions.py --baseline {a.baseline}`: {a.pairs} alternating pairs per size, "
             f"best of {a.reps} calls per child, one BLAS thread; ratio = median over pairs of new / baseline "
             f"(< 1 is faster). Load average at the end: {load:.1f} on {os.cpu_count()} cores.", "",
             "| size | call | baseline (ms) | now (ms) | ratio | within +10 % |", "|---|---|---|---|---|---|"]
    for r in rows:
        ok = "yes" if r["ratio"] <= 1.10 else "**no**"
        lines.append(f"| {r['size']} | `{r['call']}` | {r['baseline_ms']:.2f} | {r['new_ms']:.2f} | "
                     f"{r['ratio']:.3f} | {ok} |")
    (a.out / "bench_revisions.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out / 'bench_revisions.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
