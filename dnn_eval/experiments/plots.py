"""Figures of the decomposed experiments, drawn only from their saved DataFrames."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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
