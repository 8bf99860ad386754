"""The markdown report of ``bench_dnn.py`` (split out of it to keep each file small), and issue 12's goals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import torch

from xbarlab.fcm import cpu_kernels

#: issue 12's goals: crossbar inference <= FLOOR_GOAL x its tile-product floor (separate sensing) and
#: <= PLAIN_GOAL x plain PyTorch (differential sensing; issue 5's inference target); both ratios are
#: reported for every inference row
FLOOR_GOAL, PLAIN_GOAL = 1.3, 1.5


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def report_lines(df, rows, args, dev, history: pd.DataFrame | None = None) -> list[str]:
    """The markdown report of one run's rows, with the goals of every run in ``history`` (``append_history``)."""
    lines = ["# dnn_eval speed: crossbar against plain PyTorch", "",
             f"Machine: {df['cpu'][0]}, device {df['device'][0]}, "
             f"{args.threads} torch thread(s) ({os.cpu_count()} CPUs; 1-min load average {df['load_start'][0]:.1f} at the "
             f"start, {df['load_end'][0]:.1f} at the end), torch {torch.__version__}, FCM CPU kernels: "
             f"{'numba (fused)' if dev.type == 'cpu' and cpu_kernels.enabled() else 'array code'}. "
             f"Median of {args.reps} runs (ResNet-18 rows: {max(1, args.reps // 2)}); plain and crossbar run "
             "alternately, and the ratio is the median of the per-pair ratios. "
             "Targets from issue 5 (paper: 2.5x inference, 2.75x re-training). Default mapping: the differential "
             "pair; the offset-mapping rows use one array per weight (speed only: without a reference column this "
             "mapping loses most of the accuracy on non-ideal presets, see dnn_eval/README.md). `sensing=` is "
             "dnn-eval's `--sensing` (`xbarlab/fcm/sensing.py`): separate, one ADC per array; differential, the "
             "pair's currents subtracted before one ADC per pair.",
             "", "| benchmark | batch | plain (ms) | crossbar (ms) | ratio | target | met | FCM generation (s) | "
             "plain, channels_last (ms) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['benchmark']} | {r['batch']} | {1e3 * r['plain_s']:.2f} | {1e3 * r['crossbar_s']:.2f} | "
                     f"{r['ratio']:.2f} | <= {r['target']} | {_yes(r['ratio'] <= r['target'])} | "
                     f"{r['generate_s']:.2f} | {1e3 * r['plain_channels_last_s']:.2f} |")
    lines += ["", "Both sides of every ratio run the network as given, in PyTorch's default NCHW memory format, "
              "so the layers that stay digital (pooling, ReLU, BatchNorm) cost the same on both sides. The "
              "last column is a reference only: the plain network and its input in channels_last format. For "
              "the ConvNet this is much faster, mostly because PyTorch's CPU max-pooling of small NCHW images is "
              "slow, and that cost is part of both sides of the ConvNet ratios: against a channels_last plain "
              "network they would be correspondingly larger."]
    lines += ["", "## Issue 12's speed goals: the tile-product floor and plain PyTorch", "",
              "The differential pair maps every weight onto two arrays (G+ and G-) whose column currents the FCM "
              "must both compute, with either sensing scheme: the DAC's load (ROWSUM, R_PD > 0) depends on each "
              "array's own row conductances, so the two arrays see different row voltages and the pair's "
              "products cannot be merged into one product with G+ - G-. That is twice the multiply-adds of the "
              "layer, in products whose inner dimension is the tile's row count (64), against the layer's full "
              "K in the plain network. `tile_product_floor` times only those products (random data, same "
              "shapes, batched per layer, or the crossbar's own product calls replayed where those are faster) "
              "and the plain network's weighted layers; floor = plain - plain "
              "weighted layers + tile products is what the crossbar evaluation would reach if the DAC, DAC load, "
              "ADC, accumulation and layout work were free. The four parts run interleaved, one of each per "
              "repetition, and each ratio is the median of the per-repetition ratios. Goals (issue 12): "
              f"crossbar <= {FLOOR_GOAL}x floor with the separate scheme, and <= {PLAIN_GOAL}x plain PyTorch with "
              "the differential scheme; both ratios are given for every row, `goal` names the one that applies. "
              "`own products` is the crossbar's own BLAS time (`phase_breakdown`, below): the floor is a lower "
              "bound only where its tile products take no longer than these; a row where they take longer "
              "says so (`floor > own`), and its floor ratio flatters the crossbar.",
              "", "| benchmark | plain (ms) | plain weighted layers (ms) | tile products (ms) | own products (ms) | "
              f"floor (ms) | crossbar (ms) | crossbar / floor | <= {FLOOR_GOAL} | crossbar / plain | "
              f"<= {PLAIN_GOAL} | goal |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "floor_goal_ratio" in r:
            goal = {"separate": "floor" if r["mapping"] == "differential" else "(none)",
                    "differential": "plain"}.get(r["sensing"], "(none)")
            own = r.get("phase tile products (BLAS) s")
            own_cell = "n/a" if own is None else f"{1e3 * own:.2f}" + (" (floor > own)" if own < r["tile_products_s"] else "")
            lines.append(f"| {r['benchmark']} | {1e3 * r['plain_s']:.2f} | {1e3 * r['plain_layers_s']:.2f} | "
                         f"{1e3 * r['tile_products_s']:.2f} | {own_cell} | {1e3 * r['floor_s']:.2f} | "
                         f"{1e3 * r['crossbar_s']:.2f} | {r['floor_goal_ratio']:.2f} | "
                         f"{_yes(r['floor_goal_ratio'] <= FLOOR_GOAL)} | {r['ratio']:.2f} | "
                         f"{_yes(r['ratio'] <= PLAIN_GOAL)} | {goal} |")
    phase_cols = [c for c in df.columns if c.startswith("phase ")]
    if phase_cols:
        lines += ["", "## Where the crossbar inference's time goes", "",
                  "`phase_breakdown`: the fused CPU kernels and the BLAS products timed inside one crossbar "
                  "inference (mean over the runs; times in ms, share of the total in parentheses). The "
                  "plain network's time is given for scale; `rest` holds Python, allocation and the "
                  "network's layers that stay digital (pooling, ReLU, BatchNorm), which the plain network "
                  "runs too.", "",
                  "| benchmark | plain | " + " | ".join(c[6:-2] for c in phase_cols) + " |",
                  "|---|---|" + "---|" * len(phase_cols)]
        for r in rows:
            if phase_cols[0] in r:
                tot = r["phase total s"]
                cells = [f"{1e3 * r[c]:.2f}" + ("" if c == "phase total s" else f" ({100 * r[c] / tot:.0f} %)")
                         for c in phase_cols]
                lines.append(f"| {r['benchmark']} | {1e3 * r['plain_s']:.2f} | " + " | ".join(cells) + " |")
    return lines + _converter_lines(df, rows) + history_lines(history)


def _converter_lines(df, rows) -> list[str]:
    """The converters' arithmetic (``converter_floor``: their kernels warm; ``bare_floor``: their bare
    operations at L1 throughput) against what the floor goal leaves."""
    cols = [c for c in df.columns if c.startswith("converters warm ")]
    if not cols:
        return []
    bare = "converters bare total s" in df.columns
    lines = ["", "## The converters' own arithmetic against the floor goal", "",
             "`converter_floor` (`benchmarks/converter_floor.py`): every call of the DAC and ADC kernels in one "
             "inference run again, right after the real call, on copies of its arguments, the second of two "
             "runs timed: their per-element arithmetic (one IEEE division per DAC code and per ROWSUM row "
             "voltage, one rounding and clip per ADC sample, the weighted sum over the tiles) with its data "
             "already in the caches as far as it fits, and no layout or Python. These warm runs still move "
             "data: arrays beyond the L2 cache stream from the outer caches, and the DAC codes are written as "
             "a matrix that an implementation fused with the products need not write. `bare_floor` takes "
             "that away: the elements of every converter call (one per DAC input, ROWSUM row voltage and ADC "
             "sample) charged at the cost of that operation alone, in a compiled loop over data in the L1 "
             "cache, in the arrays' dtype (`op_costs`, the fastest of 7 runs; the per-vector DAC scale's "
             "channel-max pass is not charged). That is the lower bound for any implementation that keeps "
             "these IEEE operations, fused with the products or not, to the extent that such a loop reaches "
             "the CPU's vector throughput (the loops run at the same speed with 512-bit vectors as with "
             "256-bit ones; the division runs at the divider's throughput). "
             f"The floor goal (crossbar <= {FLOOR_GOAL}x floor) leaves {FLOOR_GOAL - 1:.1f}x floor for "
             "everything beyond the products. `(floor + converters) / floor` is the least ratio an "
             "implementation with these kernels' data movement could reach, `(floor + bare) / floor` the "
             "least for any implementation that keeps the operations; `/ plain` the same for the plain goal "
             f"(crossbar <= {PLAIN_GOAL}x plain). A NO in a `reachable` column: the goal lies below that "
             "floor: with the warm kernels, it needs the converters fused with the products; with the bare "
             "operations, it needs a cheaper arithmetic (such as a multiply by a reciprocal, which would change "
             "DAC and ADC codes at rounding ties). A yes leaves `goal - bound` of the floor for reading the "
             "inputs, the layout and Python.", "",
             "| benchmark | floor (ms) | " + " | ".join(c[16:-2] + " (ms)" for c in cols) +
             f" | (floor + converters) / floor | <= {FLOOR_GOAL} reachable | (floor + converters) / plain | "
             f"<= {PLAIN_GOAL} reachable |" +
             (f" bare total (ms) | (floor + bare) / floor | <= {FLOOR_GOAL} reachable | (floor + bare) / plain | "
              f"<= {PLAIN_GOAL} reachable |" if bare else ""),
             "|---|---|" + "---|" * (len(cols) + 4 + (5 if bare else 0))]
    for r in rows:
        if cols[0] in r and "floor_s" in r:
            bound, plain = r["converter_bound_floor_ratio"], r["converter_bound_plain_ratio"]
            cells = [f"{1e3 * r[c]:.2f}" for c in cols]
            line = (f"| {r['benchmark']} | {1e3 * r['floor_s']:.2f} | " + " | ".join(cells) +
                    f" | {bound:.2f} | {_yes(bound <= FLOOR_GOAL)} | {plain:.2f} | {_yes(plain <= PLAIN_GOAL)} |")
            if bare:
                bb, bp = r["bare_bound_floor_ratio"], r["bare_bound_plain_ratio"]
                line += (f" {1e3 * r['converters bare total s']:.2f} | {bb:.2f} | {_yes(bb <= FLOOR_GOAL)} | "
                         f"{bp:.2f} | {_yes(bp <= PLAIN_GOAL)} |")
            lines.append(line)
    return lines


#: what the history (``HISTORY_FILE``) keeps of a run, and of each of its inference rows
HISTORY_RUN_COLS = ("date", "cpu", "device", "threads", "reps", "torch", "load_start", "load_end", "commit", "source")
HISTORY_ROW_COLS = ("benchmark", "mapping", "sensing", "batch", "plain_s", "crossbar_s", "floor_s", "ratio",
                    "floor_goal_ratio", "converter_bound_floor_ratio", "bare_bound_floor_ratio",
                    "converter_bound_plain_ratio", "bare_bound_plain_ratio")
#: every run's inference rows, appended by each run into its --out folder (earlier runs are never rewritten)
HISTORY_FILE = "bench_dnn_history.csv"
#: the history table's goal columns: (network prefix of ``benchmark``, sensing, ratio column, heading)
HISTORY_GOALS = (("inference convnet", "separate", "floor_goal_ratio", f"ConvNet / floor (<= {FLOOR_GOAL})"),
                 ("inference resnet18", "separate", "floor_goal_ratio", f"ResNet-18 / floor (<= {FLOOR_GOAL})"),
                 ("inference convnet", "differential", "ratio", f"ConvNet differential / plain (<= {PLAIN_GOAL})"),
                 ("inference resnet18", "differential", "ratio",
                  f"ResNet-18 differential / plain (<= {PLAIN_GOAL})"),
                 ("inference convnet", "separate", "bare_bound_floor_ratio", "ConvNet bare bound / floor"),
                 ("inference resnet18", "separate", "bare_bound_floor_ratio", "ResNet-18 bare bound / floor"))


def append_history(path: Path, df: pd.DataFrame) -> pd.DataFrame | None:
    """Append this run's inference rows (``HISTORY_RUN_COLS`` + ``HISTORY_ROW_COLS`` of ``df``) to the
    history CSV at ``path`` (made when missing) and return the whole history. A history that cannot be
    read is left as it is (nothing of it is lost): one line on stderr, and None."""
    new = df.loc[df["floor_goal_ratio"].notna()].reindex(columns=list(HISTORY_RUN_COLS + HISTORY_ROW_COLS))
    if path.exists():
        try:
            old = pd.read_csv(path)
            missing = sorted(set(HISTORY_RUN_COLS + ("benchmark", "sensing", "mapping")) - set(old.columns))
            if missing:
                raise ValueError(f"no column {', '.join(missing)}")
        except (ValueError, OSError, pd.errors.ParserError) as e:
            print(f"bench_dnn: {path} left as it is, this run not added to it: cannot read it ({e})", file=sys.stderr)
            return None
        new = pd.concat([old, new], ignore_index=True)
    tmp = path.with_name(path.name + ".tmp")
    new.to_csv(tmp, index=False)
    tmp.replace(path)  # (the old history stays whole until the new one is written)
    return new


def history_lines(history: pd.DataFrame | None) -> list[str]:
    """The goal ratios of every run in the history, one line per run, oldest first."""
    if history is None or history.empty:
        return []
    lines = ["", "## The goals in every run of this benchmark", "",
             f"From `{HISTORY_FILE}` (each run appends its inference rows; the runs from before that file existed "
             "are the versions of `reports/bench_dnn.csv` in git, named in `source`, dated by their commit: "
             "they did not record the CPU). The code changed between runs (`commit`: the code measured, "
             "`+changes` for uncommitted work); so did the CPU: the same code's ratios differ between hosts by "
             "more than the noise of either, "
             "because the tile products run at the host's BLAS speed and the converters at its divider's and "
             "memory's. Default (differential-pair) mapping; `bare bound`: `(floor + bare) / floor` of the "
             "converters' table above.", "",
             "| run (UTC) | CPU | load (start, end) | commit | " + " | ".join(h for *_, h in HISTORY_GOALS) + " |",
             "|---|---|---|---|" + "---|" * len(HISTORY_GOALS)]
    h = history[history["mapping"].fillna("differential") == "differential"]
    for (date, source), run in h.groupby(["date", "source"], sort=False, dropna=False):
        cells = []
        for prefix, sensing, col, _ in HISTORY_GOALS:
            v = run.loc[run["benchmark"].str.startswith(prefix) & (run["sensing"] == sensing), col]
            cells.append(f"{v.iloc[0]:.2f}" if len(v) and pd.notna(v.iloc[0]) else "n/a")
        first = run.iloc[0]
        load = ("n/a" if pd.isna(first["load_start"]) else f"{first['load_start']:.1f}, {first['load_end']:.1f}")
        lines.append(f"| {date} | {first['cpu']} | {load} | {first['commit']} | " + " | ".join(cells) + " |")
    return lines


#: what the main job (``make report``) rewrites: the reports and the fitted kappa of the presets
OUTPUTS = ("reports", "xbarlab/presets/fitted")


def code_commit(root: Path = Path(__file__).resolve().parent.parent) -> str:
    """The commit of the code measured (``git describe --always``), "+changes" appended when a tracked
    file has uncommitted changes, other than what ``make report`` writes before this benchmark runs
    (``OUTPUTS``: output, not code); "not a git checkout" where git cannot tell. ``root``: the checkout."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)

    try:
        commit = git("describe", "--always")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                      *(f":(exclude){o}" for o in OUTPUTS))
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    if commit.returncode:
        return "not a git checkout"
    return commit.stdout.strip() + ("+changes" if changed.stdout.strip() else "")
