"""All plotting of the characterization figures. Every function builds from a saved DataFrame and takes ax=None."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .technology import GROUPS  # noqa: E402

MARKERS = dict(zip(GROUPS, "osD^v"))


def _ax(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.6))
    return ax


def plot_size(df, g_state: str, ax=None):
    """Last-column error (%) against N for each group, one G state (fig2bc_size.csv)."""
    ax = _ax(ax)
    d = df[df["g_state"] == g_state]
    dac = d["dac"] if "dac" in d else None
    for group in GROUPS:
        s = d[(d["group"] == group) & ((dac == "preset") if dac is not None else True)].sort_values("N")
        if len(s):
            ax.plot(s["N"], 100 * s["error_last_col"], marker=MARKERS[group], label=group)
    if dac is not None:
        for name, s in d[dac != "preset"].groupby("dac"):
            s = s.sort_values("N")
            ax.plot(s["N"], 100 * s["error_last_col"], ls="--", color="0.4", marker=MARKERS.get(s["group"].iloc[0], "x"),
                    label=f"{s['group'].iloc[0]}, R_PD = {s['r_pd_ohm'].iloc[0]:g} ohm ({name})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(d["N"].unique()), [str(int(n)) for n in sorted(d["N"].unique())])
    ax.set_xlabel("crossbar size N (NxN)")
    ax.set_ylabel("error of last column (%)")
    ax.set_title(f"all cells at {g_state}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def size_figure(df):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    plot_size(df, "G_MIN", axes[0])
    plot_size(df, "G_MAX", axes[1])
    fig.suptitle("Fig. 2(b)/(c): error = (I_ideal - I_nonideal) / I_ideal vs crossbar size")
    return fig


def plot_columns(df, ax=None, title: str = ""):
    """MAX / MIN / AVG error (%) per column and the sample run (montecarlo summary frame)."""
    ax = _ax(ax)
    x = df["column"] + 1
    ax.fill_between(x, 100 * df["error_min"], 100 * df["error_max"], color="0.85", label="MIN..MAX")
    ax.plot(x, 100 * df["error_max"], color="C3", label="MAX")
    ax.plot(x, 100 * df["error_avg"], color="C0", label="AVG")
    ax.plot(x, 100 * df["error_min"], color="C2", label="MIN")
    if "error_sample" in df:
        ax.plot(x, 100 * df["error_sample"], color="k", lw=0.8, marker=".", ms=3, label="Sample-Run")
    ax.set_xlabel("column")
    ax.set_ylabel("error (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return ax


def columns_figure(df, title: str = ""):
    fig, ax = plt.subplots(figsize=(7, 3.8), constrained_layout=True)
    plot_columns(df, ax, title + "\nerror = (I_ideal - I_nonideal) / I_ideal per column")
    return fig


def plot_dac(df, ax=None):
    """DAC output (V) against code for each load (fig3a_dac.csv)."""
    ax = _ax(ax)
    for k, (r, s) in enumerate(df.groupby("r_load_ohm")):
        ax.plot(s["code"], s["v_out_ngspice_V"], marker=".", color=f"C{k}", label=f"Nonideal DAC_OUT, R_load = {r / 1e3:g} kOhm")
    s = df[df["r_load_ohm"] == df["r_load_ohm"].iloc[0]]
    ax.plot(s["code"], s["v_ideal_V"], "k--", lw=0.8, label="ideal")
    ax.set_xlabel("input code")
    ax.set_ylabel("DAC output (V)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_dac_error(df, ax=None):
    ax = _ax(ax)
    for k, (r, s) in enumerate(df.groupby("r_load_ohm")):
        ax.plot(s["code"], 100 * s["dac_error"].astype(float), color=f"C{k}", label=f"R_load = {r / 1e3:g} kOhm")
    ax.set_xlabel("input code")
    ax.set_ylabel("(V_ideal - V_out) / V_ideal (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def _two_panels(df, left, right, title: str):
    """One figure of two panels side by side, ``left(df, ax)`` and ``right(df, ax)``."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    left(df, axes[0])
    right(df, axes[1])
    fig.suptitle(title)
    return fig


def dac_figure(df):
    return _two_panels(df, plot_dac, plot_dac_error, "Fig. 3(a): non-ideal divider DAC under load (ngspice)")


def plot_sneak_cells(df, ax=None):
    """Cell currents at the preset's R_sense, ngspice bars and exact markers (fig3b_sneak.csv)."""
    ax = _ax(ax)
    ch = df[df["preset"]]
    for k, (eng, s) in enumerate(ch.groupby("engine")):
        labels = [f"({r + 1},{c + 1})" for r, c in zip(s["row"], s["col"])]
        if eng == "ngspice":
            colors = ["C3" if v < 0 else "C0" for v in s["i_cell_A"]]
            ax.bar(labels, 1e6 * s["i_cell_A"], color=colors, label="ngspice (red: reversed)")
        else:
            ax.plot(labels, 1e6 * s["i_cell_A"], "kx", label="exact solver")
    ax.axhline(0, color="k", lw=0.6)
    if len(ch):
        ax.set_title(f"at the preset's R_sense = {ch['r_sense_ohm'].iloc[0]:g} ohm", fontsize=10)
    ax.set_xlabel("cell (row, column), 1-based")
    ax.set_ylabel("cell current a -> b (uA)")
    ax.legend(fontsize=8)
    return ax


def plot_sneak_sweep(df, ax=None, row: int = 1, col: int = 1):
    """Current of one cell against R_sense, both engines."""
    ax = _ax(ax)
    d = df[(df["row"] == row) & (df["col"] == col)]
    for eng, style in (("ngspice", "o"), ("exact", "-")):
        s = d[d["engine"] == eng].sort_values("r_sense_ohm")
        ax.plot(s["r_sense_ohm"], 1e6 * s["i_cell_A"], style, mfc="none", label=eng)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("R_sense (ohm)")
    ax.set_ylabel(f"current of cell ({row + 1},{col + 1}) (uA)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def sneak_figure(df):
    return _two_panels(df, plot_sneak_cells, plot_sneak_sweep,
                       "Fig. 3(b): sneak path in a 3x2 crossbar (all 20 kOhm; 0.2, 0.01, 0.2 V)")


def no_data_figure(name: str):
    """The figure of a sweep whose every point failed: says so (the page says why)."""
    fig, ax = plt.subplots(figsize=(7, 2.0), constrained_layout=True)
    ax.axis("off")
    ax.text(0.5, 0.5, f"{name}: no data, every point failed (see the page)", ha="center", va="center", color="C3")
    return fig
