"""The floor section of ``bench_g_nonideal.py``'s page: the flops of the dissection's elimination
plan (counted by a dry run), the rate each case ran at, and where the time goes, stage by stage.

The caller passes the benchmark's circuit, its stack goal (tiles/s), its one-BLAS-thread context
manager and its number format, so that the page's figures all come from one run of the benchmark.
"""

from __future__ import annotations

import contextlib
import time
from unittest import mock

import numpy as np

from xbarlab.engines import dissection, dissection_finish, dissection_lanes, gth_blas


def dense_flops(P: int, m: int, k: int) -> float:
    """Eliminating k of m nodes densely in each of P networks: sum_p<k (m - p)^2 flops each."""
    return P * sum((m - p) ** 2 for p in range(k))


def terminal_flops(W, pos, k, Ra, Rb) -> float:
    """``dissection_finish._terminals``' flops: the terminals are kept nodes, so eliminating the k
    nodes of each network is ``dense_flops`` of k of k + r_a + r_b nodes."""
    return dense_flops(W.shape[0], k + Ra.shape[-1] + Rb.shape[-1], k)


def plan_flops(n: int, tiles: int, circuit) -> float:
    """Floating-point operations per tile of ``dissection.g_nonideal_stack`` on n x n tiles, counted
    from its elimination plan by a dry run (the compute kernels replaced by counters, nothing is
    solved): eliminating k of m nodes densely costs sum_p<k (m - p)^2 (the factorization plus the
    rank-k update of the kept block, one multiply and one add each), the final step too (its
    terminals kept as nodes). The grid leaves are sparse, so their dense count is an upper bound."""
    total = [0.0]

    def dense(P, m, k):
        total[0] += dense_flops(P, m, k)

    def merged(WA, ia, runs_a, WB, ib, runs_b, k, out, *_):
        dense(out.shape[0], out.shape[1] + k, k)
        out[...] = 0.0

    def program(blocks, npos, steps, runs, offsets, size, out, *_):
        for k, r in steps[:, 6:8]:
            dense(out.shape[0], int(k + r), int(k))
        out[...] = 0.0

    def terminal(W, pos, k, Ra, Rb):
        total[0] += terminal_flops(W, pos, k, Ra, Rb)
        return np.zeros((W.shape[0], Ra.shape[-1], Rb.shape[-1]))

    with contextlib.ExitStack() as stack:
        patch = lambda mod, name, f: stack.enter_context(mock.patch.object(mod, name, f))  # noqa: E731
        patch(dissection_lanes, "leaves", lambda G, gr, gc, h, w, pa, pb, k, nat, Y, *_:
              dense(Y.shape[0] * Y.shape[3], pa.size + pb.size, k))
        patch(dissection_lanes, "merge", lambda X, pa, pb, m, k, Y, *_: dense(Y.shape[0] * Y.shape[3], m, k))
        patch(dissection_lanes, "merge_blocks", lambda X, pa, pb, m, k, Y: dense(Y.shape[0], m, k))
        patch(gth_blas, "merge_stack", merged)
        patch(dissection_finish, "_run", program)
        patch(dissection_finish, "_terminals", terminal)
        dissection.g_nonideal_stack(np.full((tiles, n, n), 1e-5), circuit)
    return total[0] / tiles


def dgemm_gflops(n: int, one_thread) -> float:
    """This machine's one-thread matrix product rate at n x n (best of a few), GFLOP/s."""
    a, b = np.random.default_rng(n).random((2, n, n))
    reps = max(1, int(2e8 // n ** 3))
    best = np.inf
    with one_thread():
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ b
            best = min(best, (time.perf_counter() - t0) / reps)
    return 2 * n ** 3 / best / 1e9


def floor_section(rows: list, T: int, t_stack: float, repeats: int, *, circuit, goal_tiles_s: float, one_thread,
                  fmt) -> list:
    """The report's floor: each measured dissection size's flop count (``plan_flops``), the rate
    it ran at, and the time the same flops would take at this run's one-thread dgemm rate, the
    best this machine does on dense products (a bound no elimination of these sizes reaches)."""
    gemm = {n: dgemm_gflops(n, one_thread) for n in (128, 1024)}
    peak = max(gemm.values())
    profiles = {"128x128": stage_profile(128, 1, repeats, circuit, one_thread),
                f"stack of {T} x 64x64": stage_profile(64, T, repeats, circuit, one_thread)}
    cases = [(r["size"], r["n"], 1, r["g_nonideal_one_blas_thread_s"], r["target_s"], profiles.get(r["size"]))
             for r in rows if dissection.applicable(r["n"], r["n"])]
    cases.append((f"stack of {T} x 64x64, per tile", 64, T, t_stack / T, 1.0 / goal_tiles_s,
                  profiles[f"stack of {T} x 64x64"]))
    out = ["", "## Floor: the flops of the elimination plan against the achieved rate", "",
           f"This run's one-thread dgemm: {gemm[128]:.1f} GFLOP/s at 128 x 128, {gemm[1024]:.1f} GFLOP/s at "
           "1024 x 1024 (on a loaded machine both are low too). Flops per tile are counted from the "
           "dissection's elimination plan by a dry run (`plan_flops`: dense count, an upper bound for the "
           "sparse grid leaves and for the final step, whose panels skip the terminals they do not reach yet); "
           "\"at dgemm rate\" is that count at the faster of the two dgemm rates, the "
           "time below which no implementation of this plan can go on this machine.", "",
           "| case | Mflop per tile | time, 1 BLAS thread | achieved GFLOP/s | at dgemm rate | goal | "
           "the goal is stopped by |", "|---|---|---|---|---|---|---|"]
    for name, n, tiles, t, goal, prof in cases:
        flops = plan_flops(n, tiles, circuit)
        floor = flops / (peak * 1e9)
        if not np.isnan(goal) and np.isnan(t):
            why = "not measured"
        elif np.isnan(goal) or t <= goal:
            why = "– (met)" if not np.isnan(goal) else "–"
        elif floor > goal:
            why = "the algorithm: its flops at dgemm rate exceed the goal"
        else:
            why = (f"the rate: {flops / t / 1e9:.1f} GFLOP/s achieved on small eliminations "
                   f"({100 * flops / t / 1e9 / peak:.0f} % of dgemm), not the flop count")
            if prof:  # the stage that takes the most time, from the table below
                slow = max(prof, key=lambda s: prof[s][0])
                share = prof[slow][0] / sum(x for x, _ in prof.values())
                why += (f"; the largest share: {slow}, {100 * share:.0f} % of the time at "
                        f"{prof[slow][1] / prof[slow][0] / 1e9:.1f} GFLOP/s")
        out.append(f"| {name} | {flops / 1e6:.1f} | {fmt(t)} | {flops / t / 1e9:.2f} | {fmt(floor)} | "
                   f"{fmt(goal)} | {why} |")
    return out + stage_section(profiles, peak, repeats, fmt) + [""]


STAGES = ("leaves (lanes)", "merges in lanes", "merges in batched BLAS", "last merges, tile by tile",
          "final elimination onto the terminals")


def stage_profile(n: int, tiles: int, repeats: int, circuit, one_thread) -> dict:
    """Wall time (median of ``repeats`` calls, 1 BLAS thread) and flops (``plan_flops``' count) of
    each stage of ``dissection.g_nonideal_stack`` on ``tiles`` n x n tiles of the benchmark's
    conductances, per tile: {stage: (seconds, flops)}. Each stage's functions are wrapped with
    timers; the last merges are ``_finish`` less its final elimination."""
    G = 10 ** np.random.default_rng(n).uniform(-6, -4, (tiles, n, n))
    now = {}

    def timed(stage, f, flops):
        def run(*a):
            t0 = time.perf_counter()
            r = f(*a)
            now[stage][0] += time.perf_counter() - t0
            now[stage][1] += flops(*a)
            return r
        return run

    wrap = [(STAGES[0], dissection_lanes, "leaves", lambda G_, gr, gc, h, w, pa, pb, k, nat, Y, *_:
             dense_flops(Y.shape[0] * Y.shape[3], pa.size + pb.size, k)),
            (STAGES[1], dissection_lanes, "merge",
             lambda X, pa, pb, m, k, Y, *_: dense_flops(Y.shape[0] * Y.shape[3], m, k)),
            (STAGES[1], dissection_lanes, "merge_blocks", lambda X, pa, pb, m, k, Y: dense_flops(Y.shape[0], m, k)),
            (STAGES[2], dissection, "_merge_level", lambda WA, WB, pa, pb, m, k: dense_flops(WA.shape[0], m, k)),
            (STAGES[3], dissection, "_finish", lambda *a: 0.0),
            (STAGES[4], dissection_finish, "_terminals", terminal_flops)]
    runs = []
    with contextlib.ExitStack() as stack, one_thread():
        for stage, mod, name, flops in wrap:
            stack.enter_context(mock.patch.object(mod, name, timed(stage, getattr(mod, name), flops)))
        for r in range(repeats + 1):  # the first is a warm-up
            now.update({s: [0.0, 0.0] for s in STAGES})
            dissection.g_nonideal_stack(G, circuit)
            runs.append({s: tuple(v) for s, v in now.items()} if r else None)
        runs = runs[1:]
    out = {s: [float(np.median([r[s][0] for r in runs])), runs[-1][s][1]] for s in STAGES}
    last, final = STAGES[3], STAGES[4]
    out[last][0] -= out[final][0]  # _finish's own merges, without its final elimination
    out[last][1] = plan_flops(n, tiles, circuit) * tiles - sum(out[s][1] for s in STAGES if s != last)
    return {s: (t / tiles, f / tiles) for s, (t, f) in out.items()}


def stage_section(profiles: dict, peak: float, repeats: int, fmt) -> list:
    """Where the time goes: each stage's share, flops and rate, per case (``stage_profile``)."""
    out = ["", "Where the time goes (`stage_profile`: each stage's functions timed in more calls of each case, "
           f"1 BLAS thread, median of {repeats} calls, per tile; flops as above, so the leaves' rate, on their "
           "dense count, is an upper bound; the stage's rate against this run's dgemm):", "",
           "| case | stage | time per tile | share | Mflop per tile | GFLOP/s | % of dgemm |",
           "|---|---|---|---|---|---|---|"]
    for name, prof in profiles.items():
        total = sum(t for t, _ in prof.values())
        for s, (t, f) in prof.items():
            if t <= 0 and f <= 0:
                continue
            rate = f / t / 1e9 if t > 0 else np.nan
            out.append(f"| {name} | {s} | {fmt(t)} | {100 * t / total:.0f} % | {f / 1e6:.2f} | {rate:.2f} | "
                       f"{100 * rate / peak:.0f} % |")
        slow = max(prof, key=lambda s: prof[s][0])
        out.append(f"| {name} | **the largest share: {slow}** | {fmt(prof[slow][0])} | "
                   f"{100 * prof[slow][0] / total:.0f} % | | | |")
    return out
