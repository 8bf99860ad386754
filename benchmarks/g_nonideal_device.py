"""The device section of ``bench_g_nonideal.py``: ``g_nonideal_stack(..., device=)`` (the row sweep in
torch, ``xbarlab/engines/sweep_torch.py``) on CUDA when this machine has it, in tiles/s at 64, 128 and
256, with its agreement with the CPU engines; the same torch code on torch's CPU device is timed at
64 x 64 for reference (the code path, not a GPU figure)."""

from __future__ import annotations

import time

import numpy as np

import xbarlab as xb

CUDA_TILES = {64: 256, 128: 64, 256: 16}  # tiles per timed call
CHECKED = 4  # tiles compared with the CPU engines per size


def _rel(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def _timed(fn, sync, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def device_section(rng, circuit) -> list[str]:
    """Markdown lines of the section (measured now)."""
    import torch

    lines = ["## GPU: `g_nonideal_stack(G, c, device=...)`", ""]
    G = 10 ** rng.uniform(-6, -4, (8, 64, 64))
    ref = xb.g_nonideal_stack(G, circuit)
    xb.g_nonideal_stack(G[:1], circuit, device="cpu")
    t_cpu = _timed(lambda: xb.g_nonideal_stack(G, circuit, device="cpu"), lambda: None)
    diff = _rel(xb.g_nonideal_stack(G, circuit, device="cpu"), ref)
    lines += [f"The torch row sweep on torch's CPU device, 8 tiles of 64x64: {8 / t_cpu:.0f} tiles/s, largest "
              f"difference from the CPU engines {diff:.1e} of the largest value (the code path only: the CPU "
              "engines above are the ones to use on a CPU).", ""]
    if not torch.cuda.is_available():
        return lines + ["CUDA: not run, this machine has no CUDA device (`torch.cuda.is_available()` is False). "
                        "Run `python benchmarks/bench_g_nonideal.py` where it has one for the tiles/s at 64, 128 "
                        "and 256 (issue 13).", ""]
    name = torch.cuda.get_device_name(0)
    lines += [f"CUDA device: {name}.", "", "| tile | tiles per call | seconds per call | tiles/s | "
              f"largest difference from the CPU engines ({CHECKED} tiles) |", "|---|---|---|---|---|"]
    for n, T in CUDA_TILES.items():
        S = 10 ** rng.uniform(-6, -4, (T, n, n))
        xb.g_nonideal_stack(S[:2], circuit, device="cuda")  # warm-up
        t = _timed(lambda: xb.g_nonideal_stack(S, circuit, device="cuda"), torch.cuda.synchronize)
        d = _rel(xb.g_nonideal_stack(S[:CHECKED], circuit, device="cuda"), xb.g_nonideal_stack(S[:CHECKED], circuit))
        lines.append(f"| {n}x{n} | {T} | {t:.4g} | {T / t:.0f} | {d:.1e} |")
    return lines + [""]
