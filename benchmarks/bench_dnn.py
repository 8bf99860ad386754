"""Crossbar inference and re-training against plain PyTorch, on the same machine in one run.

    python benchmarks/bench_dnn.py --out reports [--threads 1] [--reps 11]

* inference at batch 128: the trained ConvNet (digits, 1x8x8) and the
  ResNet-18 shape (random weights, 3x32x32 inputs, 10 classes), plain
  ``model(x)`` against the same model with every Linear/Conv2d on 64x64
  crossbars (``dnn_eval.layers``, FCM ``matmul_t``);
* re-training step at batch 128 (ConvNet): forward, backward and Adam step,
  plain against straight-through crossbar forward; the FCM rebuild every
  10 steps is reported separately and amortized;
* a lower bound for each inference row (``tile_product_floor``): the plain
  network with its weighted layers replaced by only the tile matrix
  products the FCM must do (both arrays of every differential pair);
* where the crossbar inference's time goes (``phase_breakdown``, CPU with
  the fused kernels): tile products, DAC codes, DAC load, ADC and
  accumulation, layout changes, and the rest;
* the converters' own arithmetic (``converter_floor``): every DAC and ADC
  kernel call of one inference re-timed warm, on copies of its arguments,
  and (``bare_floor``) the elements of every call charged at the cost of
  its operation alone on L1-resident data, against the 0.3 x floor that
  the 1.3 x goal leaves beyond the products;
* every inference row under each sensing scheme of ``--sensing`` (the
  ``dnn-eval --sensing`` choices, set as it sets them: ``FCMOptions.sensing``
  on the preset's fitted options; default: separate and differential);
* issue 12's two speed goals, both reported for every inference row: the
  crossbar inference <= 1.3x its tile-product floor (``plain - plain
  weighted layers + tile products``; the goal of the separate scheme) and
  <= 1.5x plain PyTorch (the goal of the differential scheme). The four
  parts (plain, crossbar, the plain weighted layers, the tile products)
  run interleaved, one of each per repetition, and each ratio is the median
  of the per-repetition ratios;
* the same inference rows with the offset mapping (one array per weight,
  ``Mapping.OFFSET``), which halves the tile products (``--no-offset``
  skips them): for speed only, since without a reference column this
  mapping loses most of the accuracy on non-ideal presets
  (``dnn_eval/README.md``). The default mapping is the differential pair.

Times are medians over ``--reps`` runs; plain and crossbar run alternately
and each ratio is the median of the per-pair ratios (``time_pair``,
``time_interleaved``), so both sides see the same machine load.

Runs on CUDA when torch has it (``cuda if available``), else on CPU with
``--threads`` torch threads for both sides. The ConvNet uses the
``spintronic`` preset; the ResNet-18 shape uses the same preset with zero
wire/driver/sense resistance so that generating its ~6000 tiles' FCMs is
quick: evaluation runs the same code path (DAC load, per-tile currents,
ADC, accumulation), so its speed does not depend on those values.
Writes ``bench_dnn.csv`` and ``bench_dnn.md``, and appends the run's inference rows (with the date,
the CPU's model name and the commit measured) to ``bench_dnn_history.csv`` in the same folder:
``bench_dnn.md`` ends with the goal ratios of every run there, since they depend on the host.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dnn_eval.convert import crossbar_layers, program_all, set_straight_through, to_crossbar
from dnn_eval.evaluate import default_options, make_spec
from dnn_eval.layers import CrossbarConv2d
from dnn_eval.loading import load_model
from dnn_eval.models import build_model
from xbarlab.cli_args import int_in, threads
from xbarlab.fcm import cpu_kernels
from xbarlab.fcm.mapping import Mapping
from xbarlab.fcm.options import Sensing
from xbarlab.host import cpu_model
from xbarlab.params import CircuitParams

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dnn_report import (FLOOR_GOAL, HISTORY_FILE, OUTPUTS, PLAIN_GOAL, append_history, code_commit,  # noqa: E402,F401
                              report_lines)
from converter_floor import CONVERTERS, bare_floor, converter_floor, wrapped  # noqa: E402


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _once(fn, dev) -> float:
    t = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - t


def timeit(fn, dev, reps: int) -> float:
    """Median seconds of ``reps`` runs of fn, after one warm-up run."""
    _once(fn, dev)
    return statistics.median(_once(fn, dev) for _ in range(reps))


def time_interleaved(fns, dev, reps: int) -> list[list[float]]:
    """Seconds of each of ``fns`` per repetition: one warm-up run of each, then ``reps`` rounds that run
    every fn once, in order, so that all of them see the same machine load (shared, noisy machines)."""
    for f in fns:
        _once(f, dev)
    times = [[] for _ in fns]
    for _ in range(reps):
        for f, t in zip(fns, times):
            t.append(_once(f, dev))
    return times


def time_pair(plain, crossbar, dev, reps: int) -> tuple[float, float, float]:
    """(median plain s, median crossbar s, median of the per-pair ratios crossbar / plain).

    The two run alternately, one of each per pair (``time_interleaved``): the ratio of each pair is
    taken within a few milliseconds, and its median is the reported ratio.
    """
    tp, tx = time_interleaved([plain, crossbar], dev, reps)
    return statistics.median(tp), statistics.median(tx), statistics.median(b / a for a, b in zip(tp, tx))


def bench_inference(name, model, x, spec, dev, reps, mapping=Mapping.DIFFERENTIAL, sensing=Sensing.SEPARATE):
    """One inference row: plain, crossbar (``mapping``, ``sensing``), its tile-product floor and phases.

    Plain, crossbar, the plain weighted layers and the tile products run interleaved
    (``time_interleaved``); ``ratio`` is the median of crossbar / plain per repetition, ``floor_goal_ratio``
    the median of crossbar / (plain - plain layers + tile products) per repetition."""
    model = model.to(dev).eval()
    opts = default_options(spec).replace(mapping=mapping, sensing=sensing)  # as dnn-eval --mapping/--sensing
    to_crossbar(model, spec, np.random.default_rng(0), opts)  # untimed: the kernels' one-off compile or load
    t0 = time.perf_counter()
    xm = to_crossbar(model, spec, np.random.default_rng(0), opts).to(dev)  # (the same seed: the same FCMs)
    gen = time.perf_counter() - t0
    with torch.no_grad():
        layers, tiles = tile_product_floor(xm, x, dev, reps)
        tp, tx, tl, tt = time_interleaved([lambda: model(x), lambda: xm(x), layers, tiles], dev, reps)
        t_cl = plain_channels_last(model, x, dev, reps, lambda m, xc: lambda: m(xc))
    phases = phase_breakdown(xm, x, reps)
    conv, bare = converter_floor(xm, x, 1), bare_floor(xm, x)
    t_fp, t_floor = statistics.median(tp), [p - a + b for p, a, b in zip(tp, tl, tt)]
    fl = statistics.median(t_floor)
    least = fl + conv["total"] if conv else math.nan  # floor + the converters' arithmetic (their kernels, warm)
    least_bare = fl + bare["total"] if bare else math.nan  # floor + their bare operations at L1 throughput
    label = ("" if mapping is Mapping.DIFFERENTIAL else f", {mapping.value} mapping") + f", sensing={sensing.value}"
    return {"benchmark": f"inference {name}{label}", "mapping": mapping.value, "sensing": sensing.value,
            "batch": x.shape[0], "plain_s": t_fp, "crossbar_s": statistics.median(tx),
            "ratio": statistics.median(b / a for a, b in zip(tp, tx)), "target": PLAIN_GOAL, "generate_s": gen,
            "plain_channels_last_s": t_cl, "plain_layers_s": statistics.median(tl),
            "tile_products_s": statistics.median(tt), "floor_s": statistics.median(t_floor),
            "floor_ratio": statistics.median(f / a for a, f in zip(tp, t_floor)),
            "floor_goal_ratio": statistics.median(b / f for b, f in zip(tx, t_floor)), "floor_target": FLOOR_GOAL,
            **({f"phase {k} s": v for k, v in phases.items()} if phases else {}),
            **({f"converters warm {k} s": v for k, v in conv.items()} if conv else {}),
            **({f"converters bare {k} s": v for k, v in bare.items()} if bare else {}),
            "converter_bound_floor_ratio": least / fl, "converter_bound_plain_ratio": least / t_fp,
            "bare_bound_floor_ratio": least_bare / fl, "bare_bound_plain_ratio": least_bare / t_fp}


def plain_channels_last(model, x, dev, reps, make_run) -> float:
    """Median seconds of ``make_run(m, xc)()``, where m and xc are a copy of the plain model and x in
    channels_last memory format (``make_run`` builds what it needs, e.g. an optimizer, on m itself):
    a reference, not the baseline of the ratios (see the report's note on max-pooling)."""
    m = copy.deepcopy(model).to(memory_format=torch.channels_last)
    return timeit(make_run(m, x.contiguous(memory_format=torch.channels_last)), dev, reps)


#: input vectors per product in ``tile_product_floor`` (one cache-sized block of columns, reused;
#: the fastest of these counts)
FLOOR_COLS = (128, 256, 512, 1024)
#: tiles per batched product in ``tile_product_floor`` (None: every tile of one shape in one call); the
#: fastest with the fastest block of columns counts. On the AMD EPYC (Zen 4) host, MKL's bmm of all of a
#: ResNet-18 layer's tiles at once ran slower than the crossbar's own products (batches of <= 64 tiles):
#: the floor was then no lower bound (2026-12-04: floor products 297 ms, the crossbar's own 239 ms)
FLOOR_TILES = (None, 64, 8)


#: the fused CPU kernels and torch functions timed by ``phase_breakdown``, by phase
PHASES = {"tile products (BLAS)": ("matmul",), **CONVERTERS,
          "layout (batch-last in, batch-first out)": ("transpose", "mul")}


def phase_breakdown(xm, x, reps) -> dict | None:
    """Seconds per crossbar inference in each phase of ``PHASES`` (the mean over ``reps`` runs),
    plus "total" and "rest" (Python, allocation, the network's other layers).

    Wraps the fused kernels (``cpu_kernels.kernels()``) and ``torch.matmul``/``torch.mul`` with
    timers for the duration of the measurement and restores them. None unless the fused CPU
    kernels run (CPU, numba)."""
    if x.device.type != "cpu" or not cpu_kernels.enabled():
        return None
    kern = cpu_kernels.kernels()
    spent = dict.fromkeys([n for names in PHASES.values() for n in names], 0.0)

    def make(name, f):
        def g(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t
        return g

    with wrapped([(torch if n in ("matmul", "mul") else kern, n) for n in spent], make), torch.no_grad():
        xm(x)
        for k in spent:
            spent[k] = 0.0
        t = time.perf_counter()
        for _ in range(reps):
            xm(x)
        total = (time.perf_counter() - t) / reps
    out = {phase: sum(spent[n] for n in names) / reps for phase, names in PHASES.items()}
    out["rest (Python, allocation, other layers)"] = total - sum(out.values())
    out["total"] = total
    return out


def tile_product_floor(xm, x, dev, reps):
    """A lower bound on the crossbar network's time, as two functions to time: (layers, tiles).

    Records each crossbar layer's input on one forward pass; ``layers()`` runs every layer in
    floating point (``CrossbarLayer.forward_float``, what the plain network runs), ``tiles()``
    only the matrix products the FCM cannot avoid: one (cols x rows) @ (rows x R) product per
    tile and DAC phase, for every tile of every array (both arrays of the differential pair, with
    either sensing scheme: under a loaded DAC their row voltages differ, so the pair's products
    cannot be merged; ``xbarlab.fcm.sensing``), unpadded tile shapes as the FCM computes them,
    batched per tile shape, on random data of the same shapes and dtype, in blocks of input
    vectors (one block, reused: the most cache-friendly case; per layer the fastest block size of
    ``FLOOR_COLS`` and number of tiles per call of ``FLOOR_TILES``, or the crossbar's own product
    calls replayed on random data (``own_products``) where those are faster, chosen here). Everything else the crossbar adds (DAC codes, DAC load, ADC,
    accumulation, layout) is left out, so ``plain - layers + tiles`` is the time a crossbar
    evaluation could reach if all of that were free.
    """
    inputs = []
    hooks = [op.register_forward_hook(lambda m, a, out: inputs.append((m, a[0])))
             for op in crossbar_layers(xm)]
    with torch.no_grad():
        xm(x)
    for h in hooks:
        h.remove()
    g = torch.Generator(device=dev).manual_seed(0)
    runs = []
    for op, a in inputs:
        if not isinstance(op, CrossbarConv2d):
            r = a.numel() // a.shape[-1]
        else:
            yb = op.forward_float(a)  # (B, N, Ho, Wo): one input vector per output pixel
            r = yb.shape[0] * yb.shape[-2] * yb.shape[-1]
        r *= 2 if bool(a.amin() < 0) else 1  # two DAC phases for signed inputs
        shapes = {}  # (rows, cols) of a tile, unpadded -> number of such tiles (every array)
        for f in op.fcms:
            S, Tk, Tn, M, Nc = f.Gn.shape
            K, N = f.shape
            for m in [M] * (K // M) + ([K % M] if K % M else []):
                for n in [Nc] * (N // Nc) + ([N % Nc] if N % Nc else []):
                    shapes[(m, n)] = shapes.get((m, n), 0) + S
        replay = own_products(op, a, g, dev)  # ... also the crossbar's own product calls, replayed, where
        need = sum(t * m * n * r for (m, n), t in shapes.items())  # they do at least the products' work
        best = (timeit(replay, dev, max(1, reps // 2)), replay) if replay.macs >= need else (math.inf, None)
        for cols in FLOOR_COLS:  # the best of a few cache-sized blocks of input vectors ...
            mats = [(torch.rand((t, n, m), generator=g, device=dev, dtype=a.dtype),
                     torch.rand((t, m, min(r, cols)), generator=g, device=dev, dtype=a.dtype))
                    for (m, n), t in shapes.items()]
            for per_call in FLOOR_TILES:  # ... and of a few numbers of tiles per batched product
                def products(mats=mats, r=r, cols=cols, per_call=per_call):
                    for G, V in mats:
                        step = per_call or G.shape[0]
                        for i in range(0, G.shape[0], step):
                            Gi, Vi = G[i:i + step], V[i:i + step]
                            for r0 in range(0, r, cols):
                                torch.bmm(Gi, Vi[..., :min(cols, r - r0)])
                t = timeit(products, dev, max(1, reps // 2))
                best = (t, products) if t < best[0] else best
        runs.append((lambda op=op, a=a: op.forward_float(a), best[1]))

    def layers():
        for f, _ in runs:
            f()

    def tiles():
        for _, f in runs:
            f()
    return layers, tiles


def own_products(op, a, g, dev):
    """A function replaying the ``torch.matmul`` calls (``phase_breakdown``'s tile products, in the FCM's own
    blocking) of one forward of crossbar layer ``op`` on ``a``, on random data of their shapes and dtypes (one
    array per shape, reused), with ``.macs``, their multiply-adds: a candidate of ``tile_product_floor``."""
    calls = []

    def make(name, f):
        def rec(A, B, *rest, **kw):
            calls.append((tuple(A.shape), tuple(B.shape), A.dtype))
            return f(A, B, *rest, **kw)
        return rec

    with wrapped([(torch, "matmul")], make), torch.no_grad():
        op(a)
    arrays = {(sh, dt): None for sa, sb, dt in calls for sh in (sa, sb)}
    arrays = {(sh, dt): torch.rand(sh, generator=g, device=dev, dtype=dt) for sh, dt in arrays}
    pairs = [(arrays[(sa, dt)], arrays[(sb, dt)]) for sa, sb, dt in calls]

    def replay():
        for A, B in pairs:
            torch.matmul(A, B)
    replay.macs = sum(math.prod(torch.broadcast_shapes(sa[:-2], sb[:-2])) * sa[-2] * sa[-1] * sb[-1]
                      for sa, sb, _ in calls)  # multiply-adds
    return replay


def bench_train(model, x, y, spec, dev, reps, regen_every=10):
    model = model.to(dev)
    loss_fn = torch.nn.CrossEntropyLoss()
    xm = to_crossbar(model, spec, np.random.default_rng(0), default_options(spec)).to(dev)
    set_straight_through(xm, True)

    def make_step(m, xb):
        m.train()
        opt = torch.optim.Adam(m.parameters(), lr=1e-4)

        def step():
            opt.zero_grad()
            loss_fn(m(xb), y).backward()
            opt.step()
        return step

    tp, tx = time_interleaved([make_step(model, x), make_step(xm, x)], dev, reps)
    t_fp, t_x = statistics.median(tp), statistics.median(tx)
    t_cl = plain_channels_last(model, x, dev, reps, make_step)
    t_regen = timeit(lambda: program_all(xm, np.random.default_rng(0)), dev, max(1, reps // 2))
    amort = t_x + t_regen / regen_every
    # both rows' ratios: the median of the per-pair ratios, as the report states (the rebuild, timed
    # apart, added to each pair's crossbar step)
    ratio = statistics.median(b / a for a, b in zip(tp, tx))
    ratio_amort = statistics.median((b + t_regen / regen_every) / a for a, b in zip(tp, tx))
    common = {"mapping": Mapping.DIFFERENTIAL.value, "sensing": Sensing.SEPARATE.value, "batch": x.shape[0], "plain_s": t_fp, "target": 2.0,
              "generate_s": t_regen, "plain_channels_last_s": t_cl}
    return [{"benchmark": "re-training step convnet", "crossbar_s": t_x, "ratio": ratio, **common},
            {"benchmark": f"re-training step convnet + FCM rebuild every {regen_every}", "crossbar_s": amort,
             "ratio": ratio_amort, **common}]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("reports"))
    p.add_argument("--threads", type=threads, default=1, help="torch CPU threads, 1..this machine's CPU count")
    p.add_argument("--reps", type=int_in(1, 1000, "a repeat count"), default=11)
    p.add_argument("--batch", type=int_in(1, 65536, "a batch size"), default=128)
    p.add_argument("--sensing", nargs="+", default=["separate", "differential"], choices=["separate", "differential"],
                   help="the sensing schemes of the inference rows (dnn-eval's --sensing; default: both)")
    p.add_argument("--no-offset", action="store_true", help="skip the inference rows with the offset mapping")
    args = p.parse_args(argv)
    load0 = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    g = torch.Generator().manual_seed(0)
    spec = make_spec("spintronic", 64)
    sensings = [Sensing.parse(s) for s in dict.fromkeys(args.sensing)]
    rows = []
    convnet = load_model("convnet").module
    x = torch.rand((args.batch, 1, 8, 8), generator=g).to(dev)
    y = torch.randint(0, 10, (args.batch,), generator=g).to(dev)
    rows += [bench_inference("convnet (digits 1x8x8)", convnet, x, spec, dev, args.reps, sensing=s) for s in sensings]
    rows += bench_train(load_model("convnet").module, x, y, spec, dev, args.reps)
    r18 = build_model("resnet18", (3, 32, 32), 10)
    xr = torch.rand((args.batch, 3, 32, 32), generator=g).to(dev)
    r18_spec, r18_reps = spec.replace(circuit=CircuitParams.ideal()), max(1, args.reps // 2)
    rows += [bench_inference("resnet18 shape (3x32x32)", r18, xr, r18_spec, dev, r18_reps, sensing=s)
             for s in sensings]
    if not args.no_offset:  # the single-array mapping: half the tile products (see the module docstring)
        rows.append(bench_inference("convnet (digits 1x8x8)", convnet, x, spec, dev, args.reps, Mapping.OFFSET))
        rows.append(bench_inference("resnet18 shape (3x32x32)", r18, xr, r18_spec, dev, r18_reps, Mapping.OFFSET))
    df = pd.DataFrame(rows)
    df["device"] = str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev)
    df["threads"] = args.threads
    df["load_start"], df["load_end"] = load0, os.getloadavg()[0]  # the machine's 1-min load average
    df["cpu"], df["reps"], df["torch"] = cpu_model(), args.reps, torch.__version__
    df["date"], df["commit"], df["source"] = started, code_commit(), "this benchmark"
    df["met"] = df["ratio"] <= df["target"]
    df["floor_met"] = df["floor_goal_ratio"] <= FLOOR_GOAL  # (NaN for the re-training rows: False)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "bench_dnn.csv", index=False)
    history = append_history(args.out / HISTORY_FILE, df)
    text = "\n".join(report_lines(df, rows, args, dev, history)) + "\n"
    (args.out / "bench_dnn.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
