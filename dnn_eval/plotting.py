"""All figures of ``dnn_eval``, drawn only from saved DataFrames (``ax=None`` creates one)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _ax(ax, size=(6, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    return ax


def accuracy_degradation(df: pd.DataFrame, ax=None):
    """Fig. 12(a): accuracy loss (percentage points) against the ideal crossbar, per network and size."""
    ax = _ax(ax)
    piv = df.pivot(index="network", columns="xbar", values="degradation_pct")
    nets, sizes = list(piv.index), list(piv.columns)
    w = 0.8 / len(sizes)
    for k, s in enumerate(sizes):
        ax.bar(np.arange(len(nets)) + k * w, piv[s].values, w, label=f"Cross{s}")
    ax.set_xticks(np.arange(len(nets)) + w * (len(sizes) - 1) / 2, nets)
    ax.set_ylabel("accuracy degradation vs ideal (%)")
    ax.set_title("Fig. 12(a): accuracy loss on non-ideal crossbars (digits)")
    ax.legend()
    return ax


def energy_per_image(df: pd.DataFrame, ax=None):
    """Fig. 12(b): energy per inference normalized to Cross64, per network and size."""
    ax = _ax(ax)
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
    ax = _ax(ax)
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


def sensitivity(df: pd.DataFrame, ax=None):
    """Fig. 14: accuracy for FP32 -> ideal 6-bit -> non-ideal 64x64 -> + variation."""
    ax = _ax(ax)
    order = list(dict.fromkeys(df["implementation"]))
    for net, g in df.groupby("network", sort=False):
        g = g.groupby("implementation", sort=False)["accuracy"].agg(["mean", "std"]).reindex(order)
        ax.errorbar(range(len(order)), 100 * g["mean"], yerr=100 * g["std"].fillna(0), marker="o", capsize=3, label=net)
    ax.set_xticks(range(len(order)), order, rotation=15, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Fig. 14: accuracy as non-idealities are added")
    ax.legend()
    return ax


def retrain_curve(df: pd.DataFrame, ax=None):
    """Fig. 15: crossbar test accuracy over re-training iterations."""
    ax = _ax(ax)
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
