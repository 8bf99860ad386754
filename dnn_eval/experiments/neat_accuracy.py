"""NEAT: LeNet's accuracy and energy against V_G on 1T-1R crossbars, without and with NEAT training.

    python -m dnn_eval.experiments.neat_accuracy --out reports [--datasets digits,mnist5k] [--steps 20]
        [--v-gates 0.75,0.9,1.1,1.3] [--mnist-test 200] [--wide-w-m 4e-7] [--full 1] [--from-csv 1]

Hardware: the preset's 64x64 crossbars (wires, DAC, 6-bit ADC, its fitted
DAC-load factor) with NEAT's devices, R_ON 30 kOhm and R_OFF 300 kOhm, no
device variation (the transistor's effect alone), and the shipped FreePDK45
access NMOS (W 100 nm, L 50 nm) at the sense side (``dnn_eval.neat``). Per
data set (digits, mnist5k: the LeNet of the DNN issue trained on each) and
V_G: ``1t1r`` (the weights programmed over the full range, no NEAT),
``neat-clip`` (weights clipped to W_cut, devices over [g_min, G_cut], no
training) and ``neat-trained`` (then ``--steps`` re-training steps with the
crossbar forward pass, weights kept clipped); ``1r`` once, the same
crossbars without transistors. On digits the same three modes again with a
wider access NMOS (``--wide-w-m``, column ``w_m``; 0 skips it) at the lowest
and highest V_G (every V_G with ``--full 1``). ``--per-layer``
adds V_G chosen per layer (``neat.choose_vg``, on training images: as many
as the test split has, evenly spaced over the training split) with NEAT training.

Counts: digits' whole test split (360 images); mnist5k's first
``--mnist-test`` test images (default 200 of 1,000) to keep the run short;
``--full 1`` takes all 1,000 and at least 60 training steps.

``energy_j``: energy per inference from ``dnn_eval.energy`` with each
layer's hardware, gate lines included (``energy_gate_j``: every array read
charges each access transistor's gate, from its BSIM4 card, and an ASSUMED
0.05 fF of gate line per cell to V_G); the crossbar read at the device's
mean conductance (g_min + g_max) / 2, so NEAT's narrower range [g_min,
G_cut] reads with less energy, and the cells' G_eff < G is not counted (an
upper bound on the read). Writes ``neat_accuracy.csv`` / ``.png`` (accuracy
and energy against V_G) and ``neat_verdict.md``: NEAT's trend (a lower V_G
after NEAT training at under 1 point accuracy loss, with the energy saved)
reproduced or not per data set, with the numbers; ``--from-csv 1`` writes
them again from the saved ``neat_accuracy.csv`` without recomputing.
"""

from __future__ import annotations

import dataclasses
import math
import time

import pandas as pd
import torch

from .common import parse, save

LOSS_BUDGET = 0.01  # NEAT: under 1 % accuracy loss
ENERGY_SAVED = 0.15  # NEAT: "about 20 %" energy saved; judged reproduced from 15 %
MODES = ("1t1r", "neat-clip", "neat-trained")


def base_spec(preset: str, w_m: float | None = None):
    """The preset at 64x64 with NEAT's devices; ``w_m``: an access NMOS of that width (m) set now."""
    from xbarlab.transistor import AccessTransistor

    from ..evaluate import make_spec

    s = make_spec(preset, 64, variation=0.0)
    dev = dataclasses.replace(s.device, g_min=1 / 300e3, g_max=1 / 30e3)
    if w_m is not None:
        dev = dataclasses.replace(dev, access=AccessTransistor(w_m=w_m))
    return s.replace(device=dev)


def energy_j(model, specs: dict, x) -> tuple[float, float]:
    """(energy per inference, its gate-line part) in J with each crossbar layer on its own spec
    ({layer name: CrossbarSpec})."""
    from ..energy import CATEGORIES, GATE, energy_table

    total = gate = 0.0
    for spec in {id(s): s for s in specs.values()}.values():
        for row in energy_table(model, spec, x):
            if specs[row["layer"]] is spec:
                total += sum(row[c] for c in CATEGORIES) + row[GATE]
                gate += row[GATE]
    return total, gate


def _layer_specs(xm) -> dict:
    from ..convert import crossbar_layers

    return {layer.name: layer.spec for layer in crossbar_layers(xm)}


def _data(dataset: str, n_test: int | None):
    from ..data import Split, load_bundled_split

    train, test = load_bundled_split(dataset)
    if n_test is not None and n_test < len(test.y):
        test = Split(test.x[:n_test], test.y[:n_test])
    return train, test


def _sweep(lm, base, train, test, v_gates, steps, energy, w_m=None) -> list[dict]:
    """The three modes at every V_G on hardware ``base``."""
    from .. import neat
    from ..evaluate import accuracy

    rows, t0 = [], time.perf_counter()
    for vg in v_gates:
        found = {}
        xm, _ = neat.apply(lm.module, base, vg, False)
        found["1t1r"] = (accuracy(xm, test.x, test.y), 1.0, energy(xm))
        xm, cuts = neat.apply(lm.module, base, vg, True)
        frac = min(c.fraction for c in cuts.values())
        found["neat-clip"] = (accuracy(xm, test.x, test.y), frac, energy(xm))
        hist = neat.neat_train(xm, train, test, steps=steps)
        found["neat-trained"] = (hist[-1]["accuracy_crossbar"], frac, energy(xm))
        for mode, (acc, f, (e, eg)) in found.items():
            rows.append({"mode": mode, "v_gate_v": vg, "accuracy": acc, "clip_fraction": f, "energy_j": e,
                         "energy_gate_j": eg, "w_m": w_m})
        print(f"V_G {vg:g} V" + (f", W {w_m:g} m" if w_m else "") + ": "
              + ", ".join(f"{m} {a[0]:.4f}" for m, a in found.items()) + f" ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    return rows


def run(preset: str, v_gates, steps: int, per_layer: bool, dataset: str = "digits", n_test: int | None = None,
        wide_w_m: float = 0.0, full: bool = False) -> pd.DataFrame:
    from xbarlab.transistor import AccessTransistor

    from .. import neat
    from ..convert import to_crossbar
    from ..evaluate import accuracy, default_options
    from ..loading import load_model

    train, test = _data(dataset, n_test)
    lm = load_model("lenet", in_shape=test.input_shape)
    base = base_spec(preset)
    w0 = AccessTransistor().w_m
    fp = accuracy(lm.module, test.x, test.y)
    x1r = to_crossbar(lm.module, base, None, default_options(base))
    x0 = torch.as_tensor(test.x[:1])

    def energy(xm):
        return energy_j(lm.module, _layer_specs(xm), x0)

    e1r = energy(x1r)
    rows = [{"mode": "1r", "v_gate_v": float("nan"), "accuracy": accuracy(x1r, test.x, test.y), "clip_fraction": 1.0,
             "energy_j": e1r[0], "energy_gate_j": e1r[1], "w_m": float("nan")}]
    rows += _sweep(lm, base, train, test, v_gates, steps, energy, w0)
    if wide_w_m:  # the wider transistor at the lowest and highest V_G (every V_G with --full)
        wide_vgs = v_gates if full else sorted({min(v_gates), max(v_gates)})
        rows += _sweep(lm, base_spec(preset, wide_w_m), train, test, wide_vgs, steps, energy, wide_w_m)
    if per_layer:
        # chosen on as many training images as the test split has, never on the test split itself
        vgl = neat.choose_vg(lm.module, base, neat.selection_split(train, len(test.y)), v_gates, LOSS_BUDGET)
        xm, cuts = neat.apply(lm.module, base, vgl, True)
        hist = neat.neat_train(xm, train, test, steps=steps)
        e = energy(xm)
        rows.append({"mode": "neat-per-layer", "v_gate_v": sum(vgl.values()) / len(vgl),
                     "accuracy": hist[-1]["accuracy_crossbar"], "clip_fraction": min(c.fraction for c in cuts.values()),
                     "energy_j": e[0], "energy_gate_j": e[1], "w_m": w0,
                     "v_gate_per_layer": ";".join(f"{k}={v:g}" for k, v in vgl.items())})
    df = pd.DataFrame(rows)
    df.insert(0, "dataset", dataset)
    df["accuracy_fp32"] = fp
    df["n_samples"] = len(test.y)
    df["steps"] = steps
    return df


def _trend(df: pd.DataFrame, what: str) -> str:
    """One verdict line: after NEAT training, a V_G below the highest within LOSS_BUDGET of 1T-1R at the highest
    V_G (the rows of one data set and transistor), with the energy saved against 1T-1R at the highest V_G."""
    t = df[df["mode"] == "1t1r"]
    hi = t.v_gate_v.max()
    ref = t[t.v_gate_v == hi].iloc[0]
    nt = df[(df["mode"] == "neat-trained") & (df.v_gate_v < hi)]
    ok = nt[nt.accuracy >= ref.accuracy - LOSS_BUDGET]
    has_e = "energy_j" in df

    def saved(r) -> str:
        return f", {100 * (1 - r.energy_j / ref.energy_j):.1f} % less energy per inference" if has_e else ""

    se = ""
    if "n_samples" in df:  # the binomial standard error of one accuracy on this test set
        se = f", 1 SE {math.sqrt(ref.accuracy * (1 - ref.accuracy) / float(ref.n_samples)):.4f}"
    trend = (f"Trend{what} (a V_G below {hi:g} V after NEAT training within {100 * LOSS_BUDGET:g} point of 1T-1R at "
             f"{hi:g} V ({ref.accuracy:.4f}{se}))")
    if len(ok):
        best = ok.sort_values("v_gate_v").iloc[0]
        line = f"{trend}: **reproduced** at V_G {best.v_gate_v:g} V ({best.accuracy:.4f}{saved(best)})."
        if has_e:
            pct = 100 * (1 - best.energy_j / ref.energy_j)
            line += (f" NEAT's energy saving (about 20 %; criterion >= {100 * ENERGY_SAVED:g} %): "
                     f"{'**reproduced**' if pct >= 100 * ENERGY_SAVED else '**NOT reproduced**'} ({pct:.1f} %).")
        return line
    if not len(nt):
        return f"{trend}: **NOT reproduced**: no NEAT-trained row below {hi:g} V."
    b = nt.sort_values("accuracy").iloc[-1]
    return (f"{trend}: **NOT reproduced**: best NEAT-trained below {hi:g} V {b.accuracy:.4f} at V_G "
            f"{b.v_gate_v:g} V{saved(b)} than 1T-1R at {hi:g} V.")


def _groups(df: pd.DataFrame):
    """(label, rows) per data set and access width; the 1r row goes with every group of its data set."""
    sets = df.groupby("dataset", sort=False) if "dataset" in df else [(None, df)]
    for ds, d in sets:
        widths = sorted(d.w_m.dropna().unique()) if "w_m" in d else [None]
        for w in widths or [None]:
            g = d if w is None else d[(d.w_m == w) | (d["mode"] == "1r")]
            label = "" if ds is None else f" on {ds}" + ("" if w is None else f", W {w * 1e9:g} nm")
            yield label, g, w


def verdict(df: pd.DataFrame) -> str:
    """The page: every row and, per data set and access width, NEAT's trend (``_trend``)."""
    lines = ["# NEAT (LeNet, 1T-1R, dnn_eval/experiments/neat_accuracy.py)", ""]
    trends = []
    for label, g, w in _groups(df):
        r1 = g[g["mode"] == "1r"]
        lines += [f"## LeNet{label}", "",
                  f"FP32 {g.accuracy_fp32.iloc[0]:.4f}; 1R crossbars "
                  f"{float(r1.accuracy.iloc[0]) if len(r1) else float('nan'):.4f}; "
                  f"{int(g.n_samples.iloc[0])} test images, {int(g.steps.iloc[0])} NEAT training steps.", ""]
        for _, r in g[g["mode"] != "1r"].iterrows():
            e = ""
            if "energy_j" in r:
                e = f", {r['energy_j'] * 1e9:.4g} nJ per inference"
                if "energy_gate_j" in r:
                    e += f" ({r['energy_gate_j'] * 1e12:.3g} pJ of it gate lines)"
            lines.append(f"- {r['mode']} at V_G {r['v_gate_v']:.3g} V: accuracy {r['accuracy']:.4f} "
                         f"(weights clipped to {r['clip_fraction']:.3f} of each layer's max){e}")
        trends.append(_trend(g, label))
        lines += ["", trends[-1], ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def plot(df: pd.DataFrame):
    import matplotlib.pyplot as plt

    groups = list(_groups(df))
    fig, axes = plt.subplots(2, len(groups), figsize=(4.2 * len(groups), 6.5), squeeze=False)
    for k, (label, g, _) in enumerate(groups):
        ax, ax_e = axes[0, k], axes[1, k]
        for mode, d in g[g["mode"].isin(MODES)].groupby("mode"):
            ax.plot(d.v_gate_v, 100 * d.accuracy, "o-", label=mode)
            if "energy_j" in d:
                ax_e.plot(d.v_gate_v, d.energy_j * 1e9, "o-", label=mode)
        r1 = g[g["mode"] == "1r"]
        if len(r1):
            ax.axhline(100 * float(r1.accuracy.iloc[0]), ls=":", c="k", label="1R")
            if "energy_j" in r1:
                ax_e.axhline(float(r1.energy_j.iloc[0]) * 1e9, ls=":", c="k", label="1R")
        ax.axhline(100 * float(g.accuracy_fp32.iloc[0]), ls="--", c="gray", label="FP32")
        ax.set_title(f"LeNet{label}", fontsize=9)
        ax.set_ylabel("accuracy (%)")
        ax_e.set_xlabel("V_G (V)")
        ax_e.set_ylabel("energy per inference (nJ)")
        ax.legend(fontsize=6)
        ax_e.legend(fontsize=6)
    fig.suptitle("1T-1R crossbars: NEAT, accuracy and energy against V_G")
    return fig


def write_pages(df: pd.DataFrame, out) -> str:
    """``neat_verdict.md`` and the neat section of ``index.md`` in ``out`` from the table; returns the page."""
    from characterization.index import splice

    page = verdict(df)
    (out / "neat_verdict.md").write_text(page)
    trend = [line for line in page.splitlines() if line.startswith("Trend")]
    section = ["<!-- neat:begin -->", "## 1T-1R cells and NEAT", "",
               "From `neat_accuracy.csv` (page: `neat_verdict.md`; single-cell G_eff and cut-off conductance: "
               "`neat_geff.csv`, `neat_cutoff.csv`; the sinh FCM against the Newton solver: `fcm_sinh.md`). "
               "Energy per inference includes the gate lines (`dnn_eval.energy`).", "",
               *[f"- {t}" for t in trend], "<!-- neat:end -->"]
    splice(out / "index.md", section[0], section[-1], "\n".join(section) + "\n")
    return page


def main(argv=None) -> int:
    args = parse(__doc__, argv, steps=(int, 20), v_gates=(str, "0.75,0.9,1.1,1.3"), per_layer=(int, 0),
                 datasets=(str, "digits,mnist5k"), mnist_test=(int, 200), wide_w_m=(float, 4e-7), full=(int, 0),
                 from_csv=(int, 0))
    vgs = [float(v) for v in args.v_gates.split(",")]
    sets = [d for d in args.datasets.split(",") if d]
    if not sets or any(d not in ("digits", "mnist5k") for d in sets):
        raise SystemExit(f"--datasets must name digits and/or mnist5k, got {args.datasets!r}")
    if not 1 <= args.mnist_test <= 1000 or not 0 <= args.wide_w_m <= 1e-3 or args.steps < 0:
        raise SystemExit(f"--mnist-test must be in 1..1000, --wide-w-m in [0, 1e-3] m and --steps >= 0; got "
                         f"{args.mnist_test}, {args.wide_w_m!r}, {args.steps}")
    if args.from_csv:  # the pages again from the saved table, nothing recomputed
        print(write_pages(pd.read_csv(args.out / "neat_accuracy.csv"), args.out))
        return 0
    steps = max(args.steps, 60) if args.full else args.steps
    t0 = time.perf_counter()
    frames = [run(args.preset, vgs, steps, bool(args.per_layer), ds,
                  None if args.full or ds == "digits" else args.mnist_test, args.wide_w_m if ds == "digits" else 0.0,
                  bool(args.full))
              for ds in sets]
    df = pd.concat(frames, ignore_index=True)
    save(df, plot(df), args.out, "neat_accuracy")
    print(write_pages(df, args.out))
    print(f"neat_accuracy: {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
