"""One TxSim training step on crossbars against a plain PyTorch step of the same network, in one run.

    python benchmarks/bench_train.py --out reports [--reps 11] [--batch 32] [--threads 1]

For the MLP and LeNet (digits, 1x8x8, random initial weights seeded), at
batch ``--batch``:

* plain: forward, cross-entropy, backward and an SGD step, float32 PyTorch;
* crossbar (``dnn_eval.txsim.train_step``): the same network with every
  Linear/Conv2d on 32x32 ``rxnn-spintronic`` crossbars (analog device, its
  wires, DAC load and 6-bit DAC/ADC) in all three phases: forward FCMs, the
  error through backward FCMs (transposed read), in-situ outer-product updates
  with a non-ideal device (ν = 0.1 SET and RESET, γ = 1, 1000 pulses; ASSUMED
  values for the benchmark, not a device's), then the interpolated FCMs
  (``refresh(exact=False)``);
* the exact FCM rebuild (``refresh(exact=True)``: forward and backward
  G_non-ideal of every tile; the first layer has no backward read) separately,
  and the step with a rebuild every ``L`` steps amortized, L = 1 and 10;
* the crossbar step's phases (forward, backward, update, estimate), timed in a
  copy of the step.

Plain and crossbar run alternately; each ratio is the median of the
per-pair ratios, so both sides see the same machine load. Goal (issue 14):
crossbar step <= 5x plain. Writes ``bench_train.csv`` and ``bench_train.md``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dnn_eval.data import load_digits_split  # noqa: E402
from dnn_eval.evaluate import make_spec  # noqa: E402
from dnn_eval.models import MLP, LeNet  # noqa: E402
from dnn_eval.txsim import TxSimSettings, bias_optimizer, refresh, to_txsim, train_step  # noqa: E402
from xbarlab.backend import TorchNS  # noqa: E402
from xbarlab.fcm import FCMOptions  # noqa: E402
from xbarlab.host import cpu_model  # noqa: E402
from xbarlab.update import UpdateParams  # noqa: E402

GOAL = 5.0
PHASES = ("compile", "forward", "backward", "update", "estimate")  # of one crossbar step (xbar_phases)
UPDATE = UpdateParams(nu_set=0.1, nu_reset=0.1, gamma=1.0, pulses=1000)


def bench_spec(size: int = 32):
    spec = make_spec("rxnn-spintronic", size=size)
    return spec.replace(device=dataclasses.replace(spec.device, bits=None, levels=None))


def _time(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def _times(f) -> tuple[float, float]:
    """(wall, CPU) seconds of f(): the CPU time of this process is what other processes' load
    changes least (every phase here runs on one thread)."""
    t, c = time.perf_counter(), time.process_time()
    f()
    return time.perf_counter() - t, time.process_time() - c


def bench_network(name: str, net_fn, batch: int, reps: int) -> list[dict]:
    train, _ = load_digits_split()
    x, y = torch.as_tensor(train.x[:batch]), torch.as_tensor(train.y[:batch])
    torch.manual_seed(0)
    plain = net_fn()
    xnet = copy.deepcopy(plain)
    s = TxSimSettings(style="insitu", update=UPDATE, lr=0.5, batch=batch)
    rng = np.random.default_rng(0)
    xnet, layers = to_txsim(xnet, bench_spec(), FCMOptions(), s, rng)
    opt_p = torch.optim.SGD(plain.parameters(), lr=0.5)
    opt_x = bias_optimizer(xnet, s.lr)

    def plain_step():
        opt_p.zero_grad()
        F.cross_entropy(plain(x), y).backward()
        opt_p.step()

    def xbar_step():
        train_step(xnet, layers, opt_x, x, y, s, rng)
        refresh(layers, exact=False)

    ns = TorchNS(x)

    def xbar_phases() -> dict:
        """``xbar_step`` with a timer per phase (the same work, in train_step's order; the plans of the
        FCMs that the last estimate made, which the step compiles in its forward and backward, first)."""
        t = [time.perf_counter()]
        for layer in layers:
            layer.state.compile(ns)
        t.append(time.perf_counter())
        for layer in layers:
            layer.records.clear()
        opt_x.zero_grad()
        loss = F.cross_entropy(xnet(x), y)
        t.append(time.perf_counter())
        loss.backward()
        t.append(time.perf_counter())
        opt_x.step()
        for layer in layers:
            layer.state.apply_update(*layer.records[0], s, rng)
            layer.records.clear()
        t.append(time.perf_counter())
        refresh(layers, exact=False)
        t.append(time.perf_counter())
        return dict(zip(PHASES, np.diff(t)))

    for _ in range(2):  # warm-up: numba kernels, lazy imports, FCM plans
        plain_step()
        xbar_step()
        refresh(layers, exact=True)
    tp, tx, tr, ratios, ph, cpu = [], [], [], [], [], []
    for _ in range(reps):
        (a, ca), (b, cb) = _times(plain_step), _times(xbar_step)
        c, cc = _times(lambda: refresh(layers, exact=True))
        tr.append(c)
        ph.append(xbar_phases())
        tp.append(a)
        tx.append(b)
        ratios.append(b / a)
        cpu.append((ca, cb, cc))
    p, xs, r = float(np.median(tp)), float(np.median(tx)), float(np.median(tr))
    phases = {f"{k}_ms": 1e3 * float(np.median([d[k] for d in ph])) for k in PHASES}
    tiles = sum(l.state.fwd.n_tiles for l in layers)
    rows = []
    for L in (None, 10, 1):
        step = xs if L is None else xs + r / L
        ratio = float(np.median(ratios)) if L is None else float(np.median([(b + c / L) / a for a, b, c in
                                                                            zip(tp, tx, tr)]))
        rows.append({"network": name, "batch": batch, "tiles": tiles, "rebuild_every": L or "never (interpolated)",
                     "plain_ms": 1e3 * p, "crossbar_step_ms": 1e3 * step, "rebuild_ms": 1e3 * r,
                     "ratio": ratio, "goal": GOAL, "met": ratio <= GOAL,
                     "ratio_cpu": float(np.median([(b + c / (L or np.inf)) / a for a, b, c in cpu])), **phases})
    return rows


def write(rows: list[dict], out: Path, reps: int, threads: int, load=(float("nan"),) * 2) -> None:
    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows)
    df.to_csv(out / "bench_train.csv", index=False)
    lines = [
        "# One training step on crossbars (all three phases) against plain PyTorch",
        "",
        f"`python benchmarks/bench_train.py --out {out}` on {cpu_model()}, "
        f"{os.cpu_count()} CPUs (1-minute load average {load[0]:.1f} at the start, {load[1]:.1f} at the end), "
        f"torch threads {threads}, medians over {reps} alternating pairs (ratio: median of per-pair ratios). "
        "A loaded machine slows the crossbar step (many short numpy calls) more than the plain step: compare "
        "ratios measured at the same load, or the CPU-time ratios.",
        "",
        "Crossbar step: forward through forward FCMs, the error through backward FCMs, in-situ outer-product "
        "updates (ν = 0.1, γ = 1, 1000 pulses; ASSUMED benchmark values), interpolated FCMs. The exact rebuild "
        "(forward and backward G_non-ideal of every tile; the first layer has no backward read) is timed apart "
        "and amortized every L steps. "
        f"32x32 rxnn-spintronic tiles, analog device. Goal: <= {GOAL:g}x plain.",
        "",
        "| network | batch | tiles | exact rebuild every | plain ms | crossbar step ms | rebuild ms | ratio | goal met "
        "| ratio in CPU time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['network']} | {r['batch']} | {r['tiles']} | {r['rebuild_every']} | {r['plain_ms']:.2f} | "
                     f"{r['crossbar_step_ms']:.2f} | {r['rebuild_ms']:.1f} | {r['ratio']:.1f}x | "
                     f"{'yes' if r['met'] else 'no'} | {r['ratio_cpu']:.1f}x |")
    lines += ["", "Ratio in CPU time: the same median of per-pair ratios in this process's CPU time instead of "
              "wall time (every phase runs on one thread), which other processes' load changes much less.",
              "", "Where the crossbar step's time goes (medians of a timed copy of the step, ms): compile (the "
              "evaluation plans of the FCMs that the last estimate made, forward and backward: the step "
              "itself compiles them in its forward and backward), forward (the forward FCMs, im2col and "
              "the loss), backward (the backward FCMs and autograd), update (the pulse streams and the device "
              "response of every cell, and the digital biases), estimate (the interpolated FCMs' new "
              "G_non-ideal estimates). Wall time: on a loaded machine these medians are noisy.", "",
              "| network | plain step | compile | forward | backward | update | estimate |",
              "|---|---|---|---|---|---|---|"]
    for r in rows[::3]:
        lines.append(f"| {r['network']} | {r['plain_ms']:.2f} | {r['compile_ms']:.2f} | {r['forward_ms']:.2f} | "
                     f"{r['backward_ms']:.2f} | {r['update_ms']:.2f} | {r['estimate_ms']:.2f} |")
    lines += ["", "TxSim reports 14x against a GPU, RxNN's forward-only re-training 2.75x (issue 14).", ""]
    (out / "bench_train.md").write_text("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("reports"))
    p.add_argument("--reps", type=int, default=11)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    for name, v, lo, hi in (("--reps", a.reps, 1, 1000), ("--batch", a.batch, 1, 1437),
                            ("--threads", a.threads, 1, os.cpu_count() or 1)):
        if not lo <= v <= hi:
            print(f"bench_train: {name} must be in {lo}..{hi}, got {v}", file=sys.stderr)
            return 2
    torch.set_num_threads(a.threads)
    start = os.getloadavg()[0]
    rows = bench_network("mlp", MLP, a.batch, a.reps) + bench_network("lenet", LeNet, a.batch, a.reps)
    write(rows, a.out, a.reps, a.threads, (start, os.getloadavg()[0]))
    for r in rows:
        print(f"{r['network']:6s} rebuild every {r['rebuild_every']!s:22s} plain {r['plain_ms']:.2f} ms  crossbar "
              f"{r['crossbar_step_ms']:.2f} ms  rebuild {r['rebuild_ms']:.1f} ms  ratio {r['ratio']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
