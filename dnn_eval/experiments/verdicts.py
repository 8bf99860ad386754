"""The `## DNNs on crossbars` verdicts of ``reports/index.md``, computed from the saved CSVs.

    python -m dnn_eval.experiments.verdicts --out reports

Reads ``dnn_fig12a_accuracy.csv``, ``dnn_fig14_sensitivity.csv``,
``dnn_fig15_retrain.csv`` and ``dnn_fig16_layer_error.csv`` (nothing is
recomputed) and writes one line per statement of the RxNN paper: the
criterion, whether this run reproduced it, and the numbers it was judged
on. A missing CSV is reported as missing. The section sits between
``<!-- dnn:begin -->`` and ``<!-- dnn:end -->`` (``characterization.index.splice``).

A difference of two accuracies counts only beyond its standard error
sqrt(se1**2 + se2**2), each se the binomial sqrt(p (1 - p) / n) over the n
test images (the two are measured on the same images, so this overstates
the noise of a paired difference: the criteria are conservative).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

BEGIN = "<!-- dnn:begin -->"
END = "<!-- dnn:end -->"
PAPER_LOSS_CROSS64 = {"lenet": 0.05, "convnet": 2.2}  # % at Cross64, the paper's Fig. 12(a) (issue 12)
SMALL_LOSS_PTS = max(PAPER_LOSS_CROSS64.values())  # "little": no more than the paper's largest small-network loss


def _yn(ok: bool) -> str:
    return "**reproduced**" if ok else "**NOT reproduced**"


def _se(*ses) -> float:
    return math.sqrt(sum(s * s for s in ses))


def _read(out: Path, name: str):
    import pandas as pd

    p = out / f"{name}.csv"
    return pd.read_csv(p) if p.exists() else None


def _missing(name: str, module: str) -> str:
    return f"| ({name}.csv missing) | run `python -m dnn_eval.experiments.{module} --out reports` |"


def small_networks(a) -> str:
    big = a[(a["xbar"] == a["xbar"].max()) & a["network"].isin(list(PAPER_LOSS_CROSS64))]
    parts, ok = [], True
    for _, r in big.iterrows():
        loss = 100 * (r.accuracy_ideal - r.accuracy_nonideal)
        se = 100 * _se(r.stderr_ideal, r.stderr_nonideal)
        good = loss <= SMALL_LOSS_PTS + se
        ok &= good
        parts.append(f"{r.network} ({r.dataset}) loses {loss:.1f} +- {se:.1f} points (ideal {r.accuracy_ideal:.3f} -> "
                     f"everything {r.accuracy_nonideal:.3f}; precision only {r.accuracy_precision:.3f}, parasitics "
                     f"only {r.accuracy_parasitics:.3f}, variation only {r.accuracy_variation:.3f})")
    ok &= bool(parts)  # nothing judged is not a reproduction
    n = int(a["xbar"].max())
    return (f"| Small networks (LeNet, ConvNet) lose little at Cross{n} (Fig. 12(a); criterion: loss against the ideal "
            f"crossbar, everything on, <= {SMALL_LOSS_PTS:g} points (the paper's ConvNet loss) + 1 SE) | "
            f"{_yn(ok)}: " + ("; ".join(parts) or f"no LeNet or ConvNet row at Cross{n}") + " |")


def _grows(a, col: str) -> tuple[int, list[str]]:
    """(networks whose loss against the ideal crossbar rises at every size step beyond 1 SE, their lines);
    one size has no step, and shows no rise."""
    parts, n_ok = [], 0
    sizes = sorted(a["xbar"].unique())
    for (d, net), g in a.groupby(["dataset", "network"], sort=False):
        g = g.set_index("xbar").reindex(sizes)
        deg = (100 * (g["accuracy_ideal"] - g[f"accuracy_{col}"])).to_numpy()
        se = (100 * (g["stderr_ideal"] ** 2 + g[f"stderr_{col}"] ** 2) ** 0.5).to_numpy()
        good = len(sizes) > 1 and all(deg[k + 1] - deg[k] > _se(se[k], se[k + 1]) for k in range(len(sizes) - 1))
        n_ok += good
        parts.append(f"{net} ({d}) " + " -> ".join(f"{v:.1f}" for v in deg) + ("" if good else " (no)"))
    return n_ok, parts


def size_trend(a) -> str:
    sizes = sorted(a["xbar"].unique())
    n_ok, parts = _grows(a, "nonideal")
    n_nv, _ = _grows(a, "precision_parasitics")
    return (f"| Degradation grows Cross{sizes[0]} < ... < Cross{sizes[-1]} (Fig. 12(a); criterion: the loss against the "
            f"ideal crossbar, everything on, rises at each step by more than 1 SE of the difference, in every network) | "
            f"{_yn(0 < n_ok == len(parts))}: holds in {n_ok} of {len(parts)} networks; loss in points at "
            + "/".join(str(s) for s in sizes) + ": " + "; ".join(parts)
            + f". Without variation (precision + parasitics, no hardware-instance draw) it holds in {n_nv} of "
            f"{len(parts)} |")


def fp32_cross6(s) -> str:
    m = s.groupby(["dataset", "network", "implementation"], sort=False).agg(
        acc=("accuracy", "mean"), se=("stderr", "mean"), k=("seed", "count")).reset_index()
    parts, ok, n_ok = [], True, 0
    for (d, net), g in m.groupby(["dataset", "network"], sort=False):
        g = g.set_index("implementation")
        lack = [k for k in ("FP32", "precision", "precision+parasitics") if k not in g.index]
        if lack:
            ok = False
            parts.append(f"{net} ({d}) has no {', '.join(lack)} row (no)")
            continue
        fp, c6, ni = (g.loc[k] for k in ("FP32", "precision", "precision+parasitics"))
        good = fp.acc - c6.acc > _se(fp.se, c6.se) and c6.acc - ni.acc > _se(c6.se, ni.se)
        ok &= good
        n_ok += good
        var = g.loc["everything"] if "everything" in g.index else None
        parts.append(f"{net} ({d}) FP32 {fp.acc:.3f}, Cross6 {c6.acc:.3f}, NI-Cross6 {ni.acc:.3f}" + ("" if good else " (no)")
                     + (f", + variation {var.acc:.3f} (mean of {int(var.k)} seeds)" if var is not None else ""))
    ok &= bool(parts)
    return ("| FP32 > Cross6 > NI-Cross6 (Fig. 14; Cross6 = precision only, NI-Cross6 = precision + parasitics, "
            "64x64; criterion: each step lower by more than 1 SE of the difference, in every network) | "
            f"{_yn(ok)}: holds in {n_ok} of {len(parts)} networks: " + "; ".join(parts) + " |")


def retraining(r) -> str:
    parts, ok = [], True
    for net, g in r.groupby("network", sort=False):
        g = g.sort_values("step")
        a0, a1, fp = g["accuracy_crossbar"].iloc[0], g["accuracy_crossbar"].iloc[-1], g["accuracy_fp32"].iloc[0]
        n = int(g["n_samples"].iloc[0]) if "n_samples" in g else 360
        se = _se(math.sqrt(a0 * (1 - a0) / n), math.sqrt(a1 * (1 - a1) / n))
        share = (a1 - a0) / (fp - a0) if fp > a0 else float("nan")
        good = a1 - a0 > se and share >= 0.5
        ok &= good
        parts.append(f"{net}: {a0:.3f} -> {a1:.3f} after {int(g['step'].iloc[-1])} steps (FP32 {fp:.3f}; "
                     f"{100 * share:.0f} % of the loss won back)")
    cfg = r.iloc[0]
    return (f"| Re-training recovers accuracy (Fig. 15, digits, 64x64, {int(cfg.adc_bits)}-bit ADC, sigma/mu = "
            f"{cfg.variation:g}; criterion: gain > 1 SE and at least half of the loss to FP32 won back) | {_yn(ok)}: "
            + "; ".join(parts) + " |")


def deeper_layers(e) -> str:
    parts, ok, n_ok = [], True, 0
    for (d, net), g in e.groupby(["dataset", "network"], sort=False):
        v = g.sort_values("conv_index")["rel_l2_error"].to_numpy()
        good = len(v) > 1 and bool((v[1:] > v[:-1]).all())  # one layer shows no trend with depth
        ok &= good
        n_ok += good
        parts.append(f"{net} ({d}) " + " -> ".join(f"{100 * x:.1f}" for x in v) + ("" if good else " (no)"))
    ok &= bool(parts)
    return ("| Deeper layers distort more (Fig. 16 as a number: relative L2 error of each conv layer's output, ideal "
            "against non-ideal 64x64 crossbars, over the test set; criterion: strictly increasing with depth in every "
            f"network) | {_yn(ok)}: holds in {n_ok} of {len(parts)} networks; error in % per conv layer: "
            + "; ".join(parts) + " |")


def deeper_networks(a) -> str:
    big = a[a["xbar"] == a["xbar"].max()]
    parts, ok = [], True
    for d, g in big.groupby("dataset", sort=False):
        g = g.set_index("network")
        if "vgg" not in g.index:
            continue
        loss = 100 * (g["accuracy_ideal"] - g["accuracy_nonideal"])
        se = 100 * (g["stderr_ideal"] ** 2 + g["stderr_nonideal"] ** 2) ** 0.5
        shallow = [n for n in ("lenet", "convnet") if n in g.index]
        good = bool(shallow) and all(loss["vgg"] - loss[n] > _se(se["vgg"], se[n]) for n in shallow)
        ok &= good
        parts.append(f"{d}: vgg {loss['vgg']:.1f} vs " + (", ".join(f"{n} {loss[n]:.1f}" for n in shallow)
                                                          or "no LeNet or ConvNet row"))
    ok &= bool(parts)
    n = int(a["xbar"].max())
    return (f"| Deeper networks degrade more (VGG, 6 conv layers, against LeNet and ConvNet at Cross{n}; criterion: "
            f"VGG's loss against the ideal crossbar exceeds each shallower network's by more than 1 SE) | {_yn(ok)}: "
            "loss in points, " + ("; ".join(parts) or "no VGG row") + " |")


def ranges_line(a, s=None) -> str:
    """Which converter ranges produced the figures (the CSVs' ``dac_range``, ``adc_range``, ``calibration``)."""
    parts = []
    for name, df in (("Fig. 12(a)", a), ("Fig. 14", s)):
        if df is None:
            continue
        if "dac_range" not in df:
            parts.append(f"{name}: the FCM's defaults (per-vector DAC scaling, worst-case ADC full scale; the CSV "
                         "predates the range columns)")
            continue
        if "implementation" in df:
            df = df[df["implementation"] != "FP32"]
        combos = df[["dac_range", "adc_range", "calibration"]].drop_duplicates()
        parts.append(f"{name}: " + "; ".join(
            f"DAC {r.dac_range}, ADC {r.adc_range}, " + ("not calibrated" if r.calibration == "none" else
                                                         f"calibrated on {r.calibration}")
            for r in combos.itertuples()))
    return ("Converter ranges (the CSV columns `dac_range`, `adc_range`, `calibration`; `xbarlab dnn-eval`'s "
            "defaults are calibrated on the training split only, `dnn_eval/calibration.py`): " + ". ".join(parts) + ".")


def decomposition_table(a) -> list[str]:
    cols = ("fp32", "ideal", "precision", "parasitics", "variation", "precision_parasitics", "nonideal")
    L = ["| data set | network | size | FP32 | ideal | precision only | parasitics only | variation only | "
         "precision + parasitics | everything |", "|---|---|---|" + "---|" * len(cols)]
    for _, r in a.iterrows():
        L.append(f"| {r.dataset} | {r.network} | {int(r.xbar)} | " + " | ".join(
            f"{r[f'accuracy_{c}']:.3f} +- {r[f'stderr_{c}']:.3f}" for c in cols) + " |")
    return L


def lines(out: Path) -> list[str]:
    out = Path(out)
    a, s = _read(out, "dnn_fig12a_accuracy"), _read(out, "dnn_fig14_sensitivity")
    r, e = _read(out, "dnn_fig15_retrain"), _read(out, "dnn_fig16_layer_error")
    L = [BEGIN, "## DNNs on crossbars: the paper's statements", "",
         "Regenerate with `python -m dnn_eval.experiments.fig12_accuracy`, `fig14_sensitivity`, `fig15_retrain`, "
         "`fig16_features` (each `--out reports`), then `python -m dnn_eval.experiments.verdicts --out reports`.", ""]
    if a is not None and "accuracy_precision" in a:
        pre = ", ".join(sorted(a["preset"].unique()))
        L += [f"Every setting is built from the one preset (`{pre}`, `dnn_eval/experiments/settings.py`): precision "
              "only = its device levels, DAC and ADC, no parasitics or variation; parasitics only = "
              "`xbarlab.spec.group(spec, \"ALL\")` with ideal converters and analog devices; variation only = its "
              "sigma/mu and faults alone; everything = the preset. +- is the binomial standard error over the test "
              "images.", "", ranges_line(a, s), ""]
    L += ["| paper's statement | this run |", "|---|---|"]
    if a is None or "accuracy_precision" not in a:
        L.append(_missing("dnn_fig12a_accuracy (with the decomposition)", "fig12_accuracy"))
    else:
        L += [small_networks(a), size_trend(a), deeper_networks(a)]
    L.append(_missing("dnn_fig14_sensitivity", "fig14_sensitivity") if s is None or "stderr" not in s
             else fp32_cross6(s))
    L.append(_missing("dnn_fig15_retrain", "fig15_retrain") if r is None else retraining(r))
    L.append(_missing("dnn_fig16_layer_error", "fig16_features") if e is None else deeper_layers(e))
    if a is not None and "accuracy_precision" in a:
        L += ["", "### Fig. 12(a), the loss decomposed (hardware seed 0)", ""] + decomposition_table(a)
    L += ["", END]
    return L


def write(out) -> Path:
    from characterization.index import splice

    return splice(Path(out) / "index.md", BEGIN, END, "\n".join(lines(out)) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("reports"))
    args = p.parse_args(argv)
    print(write(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
