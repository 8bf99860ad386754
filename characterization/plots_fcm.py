"""Figures of the FCM studies (Fig. 10 accuracy, Fig. 11 speed), built only from saved DataFrames.

Every ``plot_*`` function takes the DataFrame its script writes as CSV and
an optional ``ax``; ``*_figure`` functions lay several of them out.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {
    "ngspice": dict(color="black", lw=2.0, label="ngspice"),
    "fcm_exact": dict(color="tab:green", lw=1.2, ls="--", label="FCM exact"),
    "fcm_rowsum": dict(color="tab:blue", lw=1.2, ls="-.", label="FCM rowsum"),
    "fcm_rowsum_fitted": dict(color="tab:cyan", lw=1.2, ls=":", label="FCM rowsum (fitted)"),
    "baseline": dict(color="tab:red", lw=1.2, label="MNSIM-style baseline"),
    "fcm_none": dict(color="tab:gray", lw=1.0, ls="--", label="FCM, no DAC load"),
}


def _ax(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    return ax


def plot_column_errors(df, size: int = 64, pair: int = 0, ax=None):
    """Error vs ideal (% FS) per column for one (state, input) pair, every model (Fig. 10)."""
    ax = _ax(ax)
    d = df[(df["size"] == size) & (df["pair"] == pair)]
    for model, st in STYLE.items():
        m = d[d.model == model].sort_values("column")
        if len(m):
            ax.plot(m["column"], m["error_pct_fs"], **st)
    ax.set_xlabel("crossbar column")
    ax.set_ylabel("error vs ideal (% of full scale)")
    ax.set_title(f"{size}x{size}, pair {pair}")
    ax.legend(fontsize=7)
    return ax


def plot_max_deviation(summary, ax=None):
    """Largest per-column relative error against ngspice (%, log scale) per model and size, with the
    paper's FCM (0.28 %) and MNSIM (3.51 %) figures."""
    ax = _ax(ax)
    models = [m for m in STYLE if m != "ngspice" and m in set(summary.model)]
    sizes = sorted(summary["size"].unique())
    w = 0.8 / max(len(models), 1)
    for k, model in enumerate(models):
        s = summary[summary.model == model].set_index("size").reindex(sizes)
        ax.bar([i + k * w for i in range(len(sizes))], s["max_rel_pct"].clip(lower=1e-16), width=w,
               color=STYLE[model]["color"], label=STYLE[model]["label"])
    for y, text in ((0.28, "paper FCM 0.28 %"), (3.51, "paper MNSIM 3.51 %")):
        ax.axhline(y, color="gray", ls="--", lw=0.8)
        ax.text(len(sizes) - 0.6, y * 1.15, text, fontsize=7, color="gray", ha="right")
    ax.set_yscale("log")
    ax.set_xticks([i + w * (len(models) - 1) / 2 for i in range(len(sizes))])
    ax.set_xticklabels([f"{s}x{s}" for s in sizes])
    ax.set_ylabel("max per-column relative error vs ngspice (%)")
    ax.legend(fontsize=7)
    return ax


def accuracy_figure(df, summary):
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    plot_column_errors(df, size=int(df["size"].max()), pair=0, ax=axes[0])
    plot_max_deviation(summary, ax=axes[1])
    fig.tight_layout()
    return fig


def plot_speed(df, ax=None):
    """Time per VMM (s, log) vs crossbar size for ngspice, the exact solver and the FCM (Fig. 11)."""
    ax = _ax(ax)
    styles = {"ngspice": ("black", "o"), "exact": ("tab:orange", "s"), "fcm_single": ("tab:blue", "^"),
              "fcm_batched": ("tab:green", "v"), "fcm_exact_batched": ("tab:cyan", "D")}
    for method, (color, marker) in styles.items():
        d = df[df.method == method].dropna(subset=["seconds_per_vmm"]).sort_values("size")  # NaN: not run
        if len(d):
            ax.plot(d["size"], d["seconds_per_vmm"], marker=marker, color=color, label=method)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("crossbar size N (N x N)")
    ax.set_ylabel("seconds per VMM")
    ax.legend(fontsize=7)
    return ax


def plot_speedup(df, ax=None):
    """Speed-up of the FCM over ngspice (measured in the same run)."""
    ax = _ax(ax)
    ng = df[df.method == "ngspice"].dropna(subset=["seconds_per_vmm"]).set_index("size")["seconds_per_vmm"]
    for method, color in (("fcm_single", "tab:blue"), ("fcm_batched", "tab:green")):
        d = df[df.method == method].set_index("size")["seconds_per_vmm"]
        idx = sorted(set(ng.index) & set(d.index))
        ax.plot(idx, [ng[i] / d[i] for i in idx], marker="o", color=color, label=f"ngspice / {method}")
    ax.axhline(1e5, color="gray", ls="--", lw=0.8)
    if ng.empty:  # every ngspice point over its time budget: nothing to divide by
        ax.text(0.5, 0.5, "ngspice not run", transform=ax.transAxes, ha="center")
        ax.set_xlim(df["size"].min() / 1.5, df["size"].max() * 1.5)
        ax.set_ylim(1.0, 1e8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("crossbar size N (N x N)")
    ax.set_ylabel("speed-up")
    ax.legend(fontsize=7)
    return ax


def plot_generation(gen, ax=None):
    """Model-generation time per crossbar (s) next to the paper's."""
    ax = _ax(ax)
    for col, st in (("seconds_rowsum", dict(color="tab:blue", marker="o", label="this FCM (Gn)")),
                    ("seconds_exact", dict(color="tab:cyan", marker="D", label="this FCM (Gn + Y)")),
                    ("paper_seconds", dict(color="gray", marker="x", ls="--", label="RxNN paper"))):
        d = gen.dropna(subset=[col]).sort_values("size")
        ax.plot(d["size"], d[col], **st)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("crossbar size N (N x N)")
    ax.set_ylabel("model generation, s per crossbar")
    ax.legend(fontsize=7)
    return ax


def speed_figure(df, gen):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    plot_speed(df, ax=axes[0])
    plot_speedup(df, ax=axes[1])
    plot_generation(gen, ax=axes[2])
    fig.tight_layout()
    return fig
