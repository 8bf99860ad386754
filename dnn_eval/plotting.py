"""All figures of ``dnn_eval``, drawn only from saved DataFrames (``ax=None`` creates one)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def ax_or_new(ax, size=(6, 4)):
    """``ax``, or the axes of a new figure of ``size`` (inches) when it is None."""
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def energy_per_image(df: pd.DataFrame, ax=None):
    """Fig. 12(b): energy per inference normalized to Cross64, per network and size."""
    ax = ax_or_new(ax)
    piv = df.pivot(index="network", columns="xbar", values="energy_norm")
    nets, sizes = list(piv.index), list(piv.columns)
    w = 0.8 / len(sizes)
    for k, s in enumerate(sizes):
        ax.bar(np.arange(len(nets)) + k * w, piv[s].values, w, label=f"Cross{s}")
    ax.set_xticks(np.arange(len(nets)) + w * (len(sizes) - 1) / 2, nets)
    ax.set_ylabel("energy per image / Cross64")
    ax.set_title("Fig. 12(b): normalized energy per image")
    ax.legend()
    return ax


def energy_breakdown(df: pd.DataFrame, ax=None):
    """Fig. 13: share of each energy category per network (Cross64)."""
    ax = ax_or_new(ax)
    cats = [c for c in df["category"].unique()]
    piv = df.pivot(index="network", columns="category", values="fraction")[cats]
    bottom = np.zeros(len(piv))
    for c in cats:
        ax.bar(piv.index, piv[c].values, bottom=bottom, label=c)
        bottom += piv[c].values
    ax.set_ylabel("fraction of energy per image")
    ax.set_title("Fig. 13: energy breakdown (Cross64)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    return ax


def retrain_curve(df: pd.DataFrame, ax=None):
    """Fig. 15: crossbar test accuracy over re-training iterations."""
    ax = ax_or_new(ax)
    for net, g in df.groupby("network", sort=False):
        line, = ax.plot(g["step"], 100 * g["accuracy_crossbar"], marker=".", label=f"{net} (crossbar)")
        ax.axhline(100 * g["accuracy_fp32"].iloc[0], ls="--", color=line.get_color(), lw=0.8)
    ax.set_xlabel("re-training iteration")
    ax.set_ylabel("test accuracy on crossbars (%)")
    ax.set_title("Fig. 15: re-training (dashed: FP32)")
    ax.legend()
    return ax


def feature_maps(df: pd.DataFrame, fig=None, channels: int = 4):
    """Fig. 16: feature maps, ideal against non-ideal, one row per (layer, kind)."""
    keys = list(dict.fromkeys(zip(df["layer"], df["kind"])))
    kinds = list(dict.fromkeys(df["kind"]))
    # per layer: the most active channels of the first kind (the ideal maps), one colour scale per layer
    top = {layer: list(g[g["kind"] == kinds[0]].groupby("channel")["value"].apply(lambda v: v.abs().sum())
                       .sort_values(ascending=False).index[:channels]) for layer, g in df.groupby("layer")}
    vmax = {layer: (g["value"].abs().max() or 1.0) for layer, g in df.groupby("layer")}
    fig = fig or plt.figure(figsize=(1.6 * channels, 1.7 * len(keys)))
    axes = fig.subplots(len(keys), channels, squeeze=False)
    for r, (layer, kind) in enumerate(keys):
        sub = df[(df["layer"] == layer) & (df["kind"] == kind)]
        for k, c in enumerate(top[layer]):
            ch = sub[sub["channel"] == c]
            img = ch.pivot(index="y", columns="x", values="value").values
            ax = axes[r, k]
            ax.imshow(img, cmap="viridis", vmin=0, vmax=vmax[layer])
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(f"{layer}\n{kind}", fontsize=8)
            ax.set_title(f"channel {c}", fontsize=8)
    fig.suptitle("Fig. 16: ConvNet feature maps, ideal vs non-ideal crossbar")
    return fig


COLUMNS = (("fp32", "FP32"), ("precision", "precision only"), ("parasitics", "parasitics only"),
           ("variation", "variation only"), ("nonideal", "everything"))


def decomposition_bars(df):
    """Fig. 12(a): accuracy per setting (bars, +-1 standard error), one panel per data set and size."""
    panels = [(d, n) for d in dict.fromkeys(df["dataset"]) for n in sorted(df["xbar"].unique())]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), sharey=True, squeeze=False)
    w = 0.8 / len(COLUMNS)
    for ax, (d, n) in zip(axes[0], panels):
        g = df[(df["dataset"] == d) & (df["xbar"] == n)]
        x = np.arange(len(g))
        for k, (col, label) in enumerate(COLUMNS):
            ax.bar(x + k * w, 100 * g[f"accuracy_{col}"], w, yerr=100 * g[f"stderr_{col}"], capsize=2, label=label)
        ax.set_xticks(x + w * (len(COLUMNS) - 1) / 2, g["network"], rotation=30)
        ax.set_title(f"{d}, Cross{n}", fontsize=9)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Fig. 12(a): accuracy on crossbars, the loss decomposed")
    return fig


def sensitivity_lines(df):
    """Fig. 14: mean accuracy per setting over hardware seeds (error bar: the larger of the seed spread and 1 SE)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    order = list(dict.fromkeys(df["implementation"]))
    for (d, net), g in df.groupby(["dataset", "network"], sort=False):
        s = g.groupby("implementation", sort=False).agg(mean=("accuracy", "mean"), std=("accuracy", "std"),
                                                         se=("stderr", "mean")).reindex(order)
        err = np.maximum(s["std"].fillna(0), s["se"])
        ax.errorbar(range(len(order)), 100 * s["mean"], yerr=100 * err, marker="o", capsize=3, label=f"{net} ({d})")
    ax.set_xticks(range(len(order)), order, rotation=20, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Fig. 14: accuracy per non-ideality (64x64)")
    ax.legend(fontsize=7)
    return fig


def layer_error_lines(df):
    """Fig. 16 as numbers: relative L2 error of each conv layer's output, ideal against non-ideal."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for (d, net), g in df.groupby(["dataset", "network"], sort=False):
        ax.plot(g["conv_index"], 100 * g["rel_l2_error"], marker="o", label=f"{net} ({d})")
    ax.set_xlabel("conv layer (1 = first)")
    ax.set_ylabel("relative L2 error of the layer output (%)")
    ax.set_title("Fig. 16: distortion per conv layer (64x64)")
    ax.legend(fontsize=7)
    return fig
