"""Why G_non-ideal runs with one BLAS thread: the structured elimination in parallel processes.

    python benchmarks/bench_blas_threads.py [--workers 2] [--tiles 40] [--size 64]

Times the structured elimination (``xbarlab.engines.structured._eliminate``,
the body of ``g_nonideal_stack`` without its one-thread limit) on a stack of
random tiles, in ``--workers`` processes at once, each with (a) the BLAS
libraries' default thread count and (b) one BLAS thread, and once in a
single process both ways. Prints seconds per stack (median over the
workers' runs); nothing is written.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from xbarlab.blas import one_blas_thread
from xbarlab.engines.structured import _eliminate
from xbarlab.params import CircuitParams

CIRCUIT = CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=1e3)


def _stack(seed: int, tiles: int, size: int) -> float:
    G = np.random.default_rng(seed).uniform(1e-5, 1e-4, (tiles, size, size))
    t = time.perf_counter()
    _eliminate(G, CIRCUIT)
    return time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tiles", type=int, default=40)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--runs", type=int, default=6)
    a = p.parse_args(argv)
    args = [(s, a.tiles, a.size) for s in range(a.runs)]
    for label, init in (("default BLAS threads", None), ("one BLAS thread", one_blas_thread)):
        with ProcessPoolExecutor(a.workers, initializer=init) as ex:
            ts = list(ex.map(_stack, *zip(*args)))
        print(f"{a.workers} processes, {label}: {statistics.median(ts):.3f} s per stack "
              f"({a.tiles} tiles of {a.size}x{a.size}; runs {', '.join(f'{t:.2f}' for t in ts)})")
        with ProcessPoolExecutor(1, initializer=init) as ex:
            ts = list(ex.map(_stack, *zip(*args)))
        print(f"1 process, {label}: {statistics.median(ts):.3f} s per stack")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
