"""NEAT on digits: LeNet's accuracy against V_G on 1T-1R crossbars, without and with NEAT training.

    python -m dnn_eval.experiments.neat_accuracy --out reports [--steps 20] [--v-gates 0.75,0.9,1.1,1.3]

Hardware: the preset's 64x64 crossbars (wires, DAC, 6-bit ADC, its fitted
DAC-load factor) with NEAT's devices, R_ON 30 kOhm and R_OFF 300 kOhm, no
device variation (the transistor's effect alone), and the shipped FreePDK45
access NMOS at the sense side (``dnn_eval.neat``). Per V_G: ``1t1r`` (the
weights programmed over the full range, no NEAT), ``neat-clip`` (weights
clipped to W_cut, devices over [g_min, G_cut], no training) and
``neat-trained`` (then ``--steps`` re-training steps with the crossbar
forward pass, weights kept clipped); ``1r`` once, the same crossbars
without transistors. ``--per-layer`` adds V_G chosen per layer
(``neat.choose_vg``, within 1 point of the highest V_G) with NEAT training.
Writes ``neat_accuracy.csv`` / ``.png`` and ``neat_verdict.md``: NEAT's
trend (a lower V_G after NEAT training at under 1 point accuracy loss)
reproduced or not, with the numbers. ``energy_j``: energy per inference
from ``dnn_eval.energy`` with each layer's hardware (the crossbar read at
the device's mean conductance (g_min + g_max) / 2, so NEAT's narrower range
[g_min, G_cut] reads with less energy; the cells' G_eff < G and the gate
lines' own energy are not counted: an upper bound on the read, a lower one
on the total).
"""

from __future__ import annotations

import dataclasses
import time

import pandas as pd
import torch

from ..plotting import _ax
from .common import parse, save

LOSS_BUDGET = 0.01  # NEAT: under 1 % accuracy loss


def base_spec(preset: str):
    from ..evaluate import make_spec

    s = make_spec(preset, 64, variation=0.0)
    return s.replace(device=dataclasses.replace(s.device, g_min=1 / 300e3, g_max=1 / 30e3))


def energy_j(model, specs: dict, x) -> float:
    """Energy per inference (J) with each crossbar layer on its own spec ({layer name: CrossbarSpec})."""
    from ..energy import CATEGORIES, energy_table

    total = 0.0
    for spec in {id(s): s for s in specs.values()}.values():
        for row in energy_table(model, spec, x):
            if specs[row["layer"]] is spec:
                total += sum(row[c] for c in CATEGORIES)
    return total


def _layer_specs(xm) -> dict:
    from ..convert import crossbar_layers

    return {layer.name: layer.spec for layer in crossbar_layers(xm)}


def run(preset: str, v_gates, steps: int, per_layer: bool) -> pd.DataFrame:
    from .. import neat
    from ..convert import to_crossbar
    from ..data import load_digits_split
    from ..evaluate import accuracy, default_options
    from ..loading import load_model

    train, test = load_digits_split()
    lm = load_model("lenet")
    base = base_spec(preset)
    fp = accuracy(lm.module, test.x, test.y)
    t0 = time.perf_counter()
    x1r = to_crossbar(lm.module, base, None, default_options(base))
    x0 = torch.as_tensor(test.x[:1])
    e = lambda xm: energy_j(lm.module, _layer_specs(xm), x0)  # noqa: E731
    rows = [{"mode": "1r", "v_gate_v": float("nan"), "accuracy": accuracy(x1r, test.x, test.y), "clip_fraction": 1.0,
             "energy_j": e(x1r)}]
    for vg in v_gates:
        xm, cuts = neat.apply(lm.module, base, vg, False)
        rows.append({"mode": "1t1r", "v_gate_v": vg, "accuracy": accuracy(xm, test.x, test.y), "clip_fraction": 1.0,
                     "energy_j": e(xm)})
        xm, cuts = neat.apply(lm.module, base, vg, True)
        frac = min(c.fraction for c in cuts.values())
        rows.append({"mode": "neat-clip", "v_gate_v": vg, "accuracy": accuracy(xm, test.x, test.y),
                     "clip_fraction": frac, "energy_j": e(xm)})
        hist = neat.neat_train(xm, train, test, cuts, steps=steps)
        rows.append({"mode": "neat-trained", "v_gate_v": vg, "accuracy": hist[-1]["accuracy_crossbar"],
                     "clip_fraction": frac, "energy_j": e(xm)})
        print(f"V_G {vg:g} V: " + ", ".join(f"{r['mode']} {r['accuracy']:.4f}" for r in rows[-3:])
              + f" ({time.perf_counter() - t0:.0f} s)")
    if per_layer:
        vgl = neat.choose_vg(lm.module, base, test, v_gates, LOSS_BUDGET)
        xm, cuts = neat.apply(lm.module, base, vgl, True)
        hist = neat.neat_train(xm, train, test, cuts, steps=steps)
        rows.append({"mode": "neat-per-layer", "v_gate_v": sum(vgl.values()) / len(vgl),
                     "accuracy": hist[-1]["accuracy_crossbar"], "clip_fraction": min(c.fraction for c in cuts.values()),
                     "energy_j": e(xm),
                     "v_gate_per_layer": ";".join(f"{k}={v:g}" for k, v in vgl.items())})
    df = pd.DataFrame(rows)
    df["accuracy_fp32"] = fp
    df["n_samples"] = len(test.y)
    df["steps"] = steps
    return df


def verdict(df: pd.DataFrame) -> str:
    """NEAT's trend: after NEAT training, a V_G below the highest within LOSS_BUDGET of 1T-1R at the highest V_G."""
    t = df[df["mode"] == "1t1r"]
    hi = t.v_gate_v.max()
    ref = float(t[t.v_gate_v == hi].accuracy.iloc[0])
    nt = df[(df["mode"] == "neat-trained") & (df.v_gate_v < hi)]
    ok = nt[nt.accuracy >= ref - LOSS_BUDGET]
    lines = ["# NEAT on digits (LeNet, 1T-1R, dnn_eval/experiments/neat_accuracy.py)", "",
             f"FP32 {df.accuracy_fp32.iloc[0]:.4f}; 1R crossbars {float(df[df['mode'] == '1r'].accuracy.iloc[0]):.4f}; "
             f"{int(df.n_samples.iloc[0])} test images, {int(df.steps.iloc[0])} NEAT training steps.", ""]
    for _, r in df[df["mode"] != "1r"].iterrows():
        lines.append(f"- {r['mode']} at V_G {r['v_gate_v']:.3g} V: accuracy {r['accuracy']:.4f} "
                     f"(weights clipped to {r['clip_fraction']:.3f} of each layer's max)"
                     + (f", {r['energy_j'] * 1e9:.4g} nJ per inference" if "energy_j" in r else ""))
    trend = (f"a V_G below {hi:g} V after NEAT training within {100 * LOSS_BUDGET:g} point of 1T-1R at {hi:g} V "
             f"({ref:.4f})")
    if len(ok):
        best = ok.sort_values("v_gate_v").iloc[0]
        saved = ""
        if "energy_j" in df:
            e_ref = float(t[t.v_gate_v == hi].energy_j.iloc[0])
            saved = f", energy {100 * (1 - best.energy_j / e_ref):.1f} % below 1T-1R at {hi:g} V"
        lines += ["", f"Trend ({trend}): **reproduced** at V_G {best.v_gate_v:g} V ({best.accuracy:.4f}{saved})."]
    else:
        saved = ""
        if len(nt) and "energy_j" in df:
            b = nt.sort_values("accuracy").iloc[-1]
            e_ref = float(t[t.v_gate_v == hi].energy_j.iloc[0])
            saved = (f" at V_G {b.v_gate_v:g} V, with {100 * (1 - b.energy_j / e_ref):.1f} % less energy per "
                     f"inference than 1T-1R at {hi:g} V")
        lines += ["", f"Trend ({trend}): **NOT reproduced**: best NEAT-trained below {hi:g} V "
                      f"{nt.accuracy.max() if len(nt) else float('nan'):.4f}{saved}."]
    return "\n".join(lines) + "\n"


def plot(df: pd.DataFrame):
    ax = _ax(None)
    for mode, d in df[df["mode"].isin(["1t1r", "neat-clip", "neat-trained"])].groupby("mode"):
        ax.plot(d.v_gate_v, 100 * d.accuracy, "o-", label=mode)
    ax.axhline(100 * float(df[df["mode"] == "1r"].accuracy.iloc[0]), ls=":", c="k", label="1R")
    ax.axhline(100 * float(df.accuracy_fp32.iloc[0]), ls="--", c="gray", label="FP32")
    ax.set_xlabel("V_G (V)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("LeNet on digits, 1T-1R crossbars: NEAT")
    ax.legend()
    return ax


def main(argv=None) -> int:
    args = parse(__doc__, argv, steps=(int, 20), v_gates=(str, "0.75,0.9,1.1,1.3"), per_layer=(int, 0))
    vgs = [float(v) for v in args.v_gates.split(",")]
    df = run(args.preset, vgs, args.steps, bool(args.per_layer))
    save(df, plot(df), args.out, "neat_accuracy")
    page = verdict(df)
    (args.out / "neat_verdict.md").write_text(page)  # (re-made from the CSV: verdict(pd.read_csv(...)))
    from characterization.index import splice

    trend = [line for line in page.splitlines() if line.startswith("Trend")]
    section = ["<!-- neat:begin -->", "## 1T-1R cells and NEAT", "",
               "From `neat_accuracy.csv` (page: `neat_verdict.md`; single-cell G_eff and cut-off conductance: "
               "`neat_geff.csv`, `neat_cutoff.csv`).", "", *trend, "<!-- neat:end -->"]
    splice(args.out / "index.md", section[0], section[-1], "\n".join(section) + "\n")
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
