"""Why in-situ training stalls: what the pulse updates of ``dnn_eval.txsim`` deliver, layer by layer.

    python -m dnn_eval.experiments.txsim_diagnose --out reports [--steps 300] [--networks mlp,lenet]
        [--bit-lengths 10,100]

Trains as ``txsim_train``'s ``xbar-insitu`` (digits, rxnn-spintronic 32x32,
analog device, 1000 pulses over the range, ν = 0.1, γ = 1, lr 0.5, batch 32,
exact FCM rebuild every 10 steps, seed 0) at each bit length BL (the slots
of one update, ``InSituSettings.bit_length``), and measures, at every step
and every layer, against the update SGD asks for, ΔW* = -lr sum_r x_r d_r^T:

* ``capped``: the fraction of the step's vectors r whose largest desired
  count lr |x_r|max |d_r|max / ΔW_step exceeds BL (their p or q is capped at 1:
  the cell gets at most BL pulses, the update is truncated);
  ``desired_max_pulses``: the median of that largest count;
* ``gain``: <ΔW, ΔW*> / <ΔW*, ΔW*>, the realized weight change ΔW (read back
  from the cells) projected on ΔW* (1: the right size on average);
  ``cosine``: its cosine with ΔW*;
* ``desired_pulses``: the mean |ΔW*| in pulses of ΔW_step = 2 w_max / P per cell;
* ``cells_changed``: the fraction of the layer's cells whose conductance
  ever changed.

Writes ``txsim_insitu_diagnosis.csv`` (one row per network, BL, layer and
window of steps) and ``txsim_insitu_diagnosis.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from xbarlab.fcm import FCMOptions
from xbarlab.update import InSituSettings
from xbarlab.update_params import MAX_BIT_LENGTH

from ..data import load_digits_split
from ..txsim import TxSimSettings, bias_optimizer, refresh, to_txsim, train_step
from .txsim_train import LR, NETS, NONIDEAL, train_spec

WINDOWS = 3  # the run is reported in this many equal windows of steps


def _observe(state, stats: list) -> None:
    """Wrap ``state.apply_update`` so that every call appends its measurements to ``stats``."""
    orig = state.apply_update
    dev = state.spec.device
    changed = np.zeros(state.G.shape, dtype=bool)
    K, N = state.shape

    def apply_update(X, D, s, rng):
        nonlocal changed
        W0, G0 = state.weights(), state.G.copy()
        orig(X, D, s, rng)
        dW = state.weights() - W0
        changed |= state.G != G0
        want = -s.lr * (X.T @ D)
        w_step = 2.0 * state.w_max / s.update.pulse_count(dev)  # weight change of one pulse on G+ and G-
        c_max = s.lr * np.abs(X).max(axis=1) * np.abs(D).max(axis=1) / w_step
        live = c_max > 0
        ww = float((want * want).sum())
        stats.append({"capped": float((c_max[live] > s.in_situ.bit_length).mean()) if live.any() else 0.0,
                      "desired_max_pulses": float(np.median(c_max[live])) if live.any() else 0.0,
                      "gain": float((dW * want).sum() / ww) if ww > 0 else np.nan,
                      "cosine": float((dW * want).sum() / np.sqrt(ww * (dW * dW).sum())) if ww > 0 and dW.any()
                      else 0.0,
                      "desired_pulses": float(np.abs(want).mean() / w_step),
                      "cells_changed": float(state._full(changed)[..., :K, :N].mean())})

    state.apply_update = apply_update


def run(net: str, bit_length: int, steps: int, train, test) -> list[dict]:
    torch.manual_seed(0)
    s = TxSimSettings(steps=steps, batch=32, lr=LR, style="insitu", update=NONIDEAL,
                      in_situ=InSituSettings(bit_length=bit_length), rebuild_every=10, seed=0)
    rng = np.random.default_rng(s.seed)
    model, layers = to_txsim(NETS[net](), train_spec(), FCMOptions(), s, rng)
    stats = [[] for _ in layers]
    for layer, st in zip(layers, stats):
        _observe(layer.state, st)
    opt = bias_optimizer(model, s.lr)
    g = torch.Generator().manual_seed(s.seed)
    xt, yt = torch.as_tensor(train.x), torch.as_tensor(train.y)
    perm, pos, losses = torch.randperm(len(yt), generator=g), 0, []
    for step in range(1, steps + 1):  # train_on_crossbar's schedule
        if pos + s.batch > len(yt):
            perm, pos = torch.randperm(len(yt), generator=g), 0
        idx = perm[pos:pos + s.batch]
        pos += s.batch
        losses.append(train_step(model, layers, opt, xt[idx], yt[idx], s, rng))
        refresh(layers, exact=step % s.rebuild_every == 0 or step == steps)
    with torch.no_grad():
        acc = float((model(torch.as_tensor(test.x)).argmax(1).numpy() == test.y).mean())
    rows = []
    edges = np.linspace(0, steps, WINDOWS + 1).astype(int)
    for i, (layer, st) in enumerate(zip(layers, stats)):
        kind = "conv" if layer.conv else "fc"
        for a, b in zip(edges[:-1], edges[1:]):
            w = pd.DataFrame(st[a:b])
            rows.append({"network": net, "bit_length": bit_length, "layer": f"{i} {kind} {layer.state.shape[0]}x"
                         f"{layer.state.shape[1]}", "steps": f"{a + 1}-{b}", **w.mean().to_dict(),
                         "cells_changed": st[b - 1]["cells_changed"], "final_accuracy": acc,
                         "final_loss": float(np.mean(losses[-(steps // WINDOWS):]))})
    return rows


def main(argv=None) -> int:
    from .common import parse

    a = parse(__doc__, argv, steps=(int, 300), networks=(str, "mlp,lenet"), bit_lengths=(str, "10,100"))
    nets = [n for n in a.networks.split(",") if n]
    try:
        bls = [int(b) for b in a.bit_lengths.split(",") if b]
    except ValueError:
        bls = [0]
    bad = [n for n in nets if n not in NETS] + [f"bit length {b}" for b in bls if not 1 <= b <= MAX_BIT_LENGTH]
    if bad or not WINDOWS <= a.steps <= 100000:
        raise SystemExit(f"txsim_diagnose: unknown network or bad value: {', '.join(bad) or f'--steps {a.steps}'}")
    a.out.mkdir(parents=True, exist_ok=True)
    train, test = load_digits_split()
    rows = []
    for net in nets:
        for bl in bls:
            rows += run(net, bl, a.steps, train, test)
            print(f"{net} BL {bl}: accuracy {rows[-1]['final_accuracy']:.3f}", flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(a.out / "txsim_insitu_diagnosis.csv", index=False)
    lines = ["# What the in-situ pulse updates deliver (issue 14)", "",
             f"`python -m dnn_eval.experiments.txsim_diagnose --steps {a.steps}`: `txsim_train`'s xbar-insitu "
             "(digits, rxnn-spintronic 32x32, analog device, 1000 pulses, ν = 0.1, γ = 1, lr 0.5, batch 32) at "
             "bit lengths " + ", ".join(map(str, bls)) + ". Per layer and window of steps (means over the "
             "window's steps): capped = fraction of vectors whose largest desired count exceeds BL (the update "
             "is truncated to BL pulses); desired max = median of that count; gain and cosine of the realized "
             "ΔW against SGD's ΔW*; desired = mean |ΔW*| per cell in pulses; cells changed = fraction of cells "
             "whose conductance ever changed (at the window's end).", "",
             "| network | BL | layer | steps | capped | desired max pulses | gain | cosine | desired pulses per cell "
             "| cells changed | final accuracy |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['network']} | {r['bit_length']} | {r['layer']} | {r['steps']} | {r['capped']:.2f} | "
                     f"{r['desired_max_pulses']:.3g} | {r['gain']:.2f} | {r['cosine']:.2f} | "
                     f"{r['desired_pulses']:.3g} | {r['cells_changed']:.2f} | {r['final_accuracy']:.3f} |")
    (a.out / "txsim_insitu_diagnosis.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out / 'txsim_insitu_diagnosis'}.csv and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
