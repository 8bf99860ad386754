"""A/B timing of g_nonideal_stack in two source trees, as a ratio within one process.

    python benchmarks/ab_dissection.py REF_TREE NEW_TREE --n 64 --tiles 64 --reps 7 [--circuit bench|ideal]

REF_TREE is typically /work/main: its package is imported under another name (``xbarlab_ref``,
its own modules from its own files) next to NEW_TREE's ``xbarlab``, in this one process, with
one BLAS thread (threadpoolctl). After a warm-up of both, each repetition calls the two in
alternating order, in wall time and in the process's CPU time; the medians, their ratios, the
load average before and after, and the largest relative difference between the two results (the
same inputs) are printed. On a loaded machine read the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits


def load(tree: str, name: str):
    """The ``structured`` and ``params`` modules of the xbarlab package in ``tree``, imported as
    package ``name``."""
    root = os.path.join(os.path.abspath(tree), "xbarlab")
    spec = importlib.util.spec_from_file_location(name, os.path.join(root, "__init__.py"),
                                                  submodule_search_locations=[root])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return importlib.import_module(f"{name}.engines.structured"), importlib.import_module(f"{name}.params")


def inputs(params, circuit: str, T: int, n: int):
    rng = np.random.default_rng(0)
    if circuit == "bench":  # benchmarks/bench_g_nonideal.py's circuit, on which the goals are measured
        G = 10 ** rng.uniform(-6, -4, (T, n, n))
        return G, params.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
    G = rng.uniform(1e-6, 1e-4, (T, n, n))  # "ideal": ideal sense amplifiers and drivers
    return G, params.CircuitParams(r_row=1.0, r_col=1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref")
    ap.add_argument("new")
    ap.add_argument("--n", type=int, default=256, help="array side")
    ap.add_argument("--tiles", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--circuit", choices=("bench", "ideal"), default="bench",
                    help="bench: bench_g_nonideal.py's circuit (r_sense 100 ohm, r_driver 50 ohm); "
                         "ideal: r_sense = r_driver = 0")
    a = ap.parse_args()
    sys.path.insert(0, os.path.abspath(a.new))
    trees = {"ref": load(a.ref, "xbarlab_ref"), "new": load(a.new, "xbarlab")}
    cases = {k: inputs(p, a.circuit, a.tiles, a.n) for k, (_, p) in trees.items()}
    wall = {k: [] for k in trees}
    cpu = {k: [] for k in trees}
    out = {}
    load_before = os.getloadavg()[0]
    with threadpool_limits(1):
        for k, (s, _) in trees.items():
            G, c = cases[k]
            s.g_nonideal_stack(G[:1], c)
            out[k] = s.g_nonideal_stack(G, c)
        for r in range(a.reps):
            for k in ("ref", "new") if r % 2 == 0 else ("new", "ref"):
                G, c = cases[k]
                t, p = time.perf_counter(), time.process_time()
                trees[k][0].g_nonideal_stack(G, c)
                wall[k].append(time.perf_counter() - t)
                cpu[k].append(time.process_time() - p)
    diff = float(np.max(np.abs(out["new"] - out["ref"]) / np.abs(out["ref"])))
    (rw, nw), (rc, nc) = ((statistics.median(x["ref"]), statistics.median(x["new"])) for x in (wall, cpu))
    print(f"{a.n}x{a.n}, {a.tiles} tiles, {a.circuit} circuit, 1 BLAS thread, median of {a.reps}: "
          f"wall ref {rw * 1e3:.1f} ms, new {nw * 1e3:.1f} ms, speed-up {rw / nw:.2f}x; "
          f"CPU ref {rc * 1e3:.1f} ms, new {nc * 1e3:.1f} ms, speed-up {rc / nc:.2f}x")
    runs = {k: [round(x * 1e3, 1) for x in v] for k, v in wall.items()}
    print(f"  wall ref {runs['ref']} ms, new {runs['new']} ms; "
          f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
          f"max relative difference new vs ref {diff:.2e}")
    if a.tiles > 1:
        print(f"  throughput: ref {a.tiles / rw:.0f} tiles/s, new {a.tiles / nw:.0f} tiles/s (wall); "
              f"ref {a.tiles / rc:.0f}, new {a.tiles / nc:.0f} tiles/s (CPU)")


if __name__ == "__main__":
    main()
