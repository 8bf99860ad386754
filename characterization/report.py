"""The main job: every step that writes ``reports/``, in order, each timed.

    python -m characterization.report --out reports          # what `make report` runs
    python -m characterization.report --list                 # the steps
    python -m characterization.report --from dnn-fig12a      # resume from a step (earlier outputs are kept)
    python -m characterization.report --only fcm-speed,overview

Each step runs in its own interpreter (the same one as this script), so one
step's memory or threads never leak into the next. Progress goes to stdout as
``[i/N] step ... s``; the wall and CPU seconds of every step (CPU: user + system
of the step's process tree, which depends much less on the machine's load than
the wall time) are written to ``reports/report_run.md`` and ``report_run.json``,
next to the time budget of the whole job (15 min on the 2-core development
machine, issue 13). The budget is reported, never enforced: a slower machine
gets a longer run and a line saying by how much the budget was exceeded, not a
failed job. The sweeps inside the steps are cached (``reports/.cache/``), so a
rerun after an interruption recomputes only what did not finish.

A step that fails stops the job with one line on stderr naming the step and
its exit status (its own output, with ngspice's or Python's message, is above
it); the steps before it have written their files already.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BUDGET_S = 15 * 60.0


@dataclass(frozen=True)
class Step:
    """One step of the main job: a name, the module or script it runs, its arguments (``{out}`` is the folder)."""

    name: str
    target: str
    args: tuple[str, ...] = ("--out", "{out}")
    what: str = ""

    def argv(self, out: str) -> list[str]:
        head = [self.target] if self.target.endswith(".py") else ["-m", self.target]
        return [sys.executable, *head, *(a.replace("{out}", out) for a in self.args)]


STEPS: tuple[Step, ...] = (
    Step("validate", "xbarlab.cli", ("validate", "--out", "{out}"),
         "exact solver and G_non-ideal against ngspice"),
    Step("characterize", "xbarlab.cli", ("characterize", "all", "--out", "{out}", "--no-progress"),
         "RxNN Fig. 2/3 sensitivity studies (report mode; --full for the paper's counts)"),
    Step("bench-g-nonideal", "benchmarks/bench_g_nonideal.py", what="g_nonideal speed (issue 13)"),
    Step("fcm-accuracy", "characterization.fcm_accuracy", ("--out", "{out}", "--pairs", "20"),
         "Fig. 10 at the preset's R_PD (20 pairs per size; --pairs 100 is the paper's count)"),
    Step("fcm-accuracy-rpd200", "characterization.fcm_accuracy",
         ("--out", "{out}", "--pairs", "20", "--r-pd", "200", "--name", "fcm_accuracy_rpd200"),
         "Fig. 10 at the strong 200 ohm DAC load"),
    Step("fcm-speed", "characterization.fcm_speed", what="Fig. 11: FCM against ngspice"),
    Step("fcm-sinh", "xbarlab.verify.fcm_sinh", what="the sinh-cell FCM against the Newton solver (issue 15)"),
    Step("fcm-1t1r", "xbarlab.verify.fcm_1t1r",
         what="the 1T-1R FCM against the Newton solver and ngspice, 16-64, over V_G and R_ON/R_OFF (issue 15)"),
    Step("dnn-fig12a", "dnn_eval.experiments.fig12_accuracy", what="Fig. 12(a) accuracy, the loss decomposed"),
    Step("dnn-fig12b", "dnn_eval.experiments.fig12_energy", what="Fig. 12(b)/13 energy"),
    Step("dnn-fig14", "dnn_eval.experiments.fig14_sensitivity", what="Fig. 14 sensitivity"),
    Step("dnn-fig15", "dnn_eval.experiments.fig15_retrain", what="Fig. 15 re-training"),
    Step("dnn-fig16", "dnn_eval.experiments.fig16_features", what="Fig. 16 feature maps, per-layer error"),
    Step("dnn-verdicts", "dnn_eval.experiments.verdicts", what="the paper's DNN statements judged from the CSVs"),
    Step("txsim-train", "dnn_eval.experiments.txsim_train", what="TxSim: training on crossbars (issue 14)"),
    Step("txsim-sensitivity", "dnn_eval.experiments.txsim_sensitivity", ("--out", "{out}", "--seeds", "3"),
         "TxSim sensitivity curves, 3 seeds"),
    Step("bench-train", "benchmarks/bench_train.py", what="one training step against plain PyTorch"),
    Step("neat-cell", "dnn_eval.experiments.neat_cell", what="NEAT: 1T-1R G_eff and cut-off from ngspice"),
    Step("neat-accuracy", "dnn_eval.experiments.neat_accuracy", what="NEAT: accuracy and energy against V_G"),
    Step("bench-dnn", "benchmarks/bench_dnn.py", what="dnn_eval inference and re-training speed"),
    Step("overview", "characterization.overview", what="headline numbers at the top of reports/index.md"),
)


def _select(names: str | None, start: str | None) -> list[Step]:
    known = [s.name for s in STEPS]
    if names is not None:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        bad = [n for n in wanted if n not in known]
        if bad:
            raise ValueError(f"only: unknown step {bad[0]!r}; steps: {', '.join(known)}")
        return [s for s in STEPS if s.name in wanted]
    if start is not None:
        if start not in known:
            raise ValueError(f"from: unknown step {start!r}; steps: {', '.join(known)}")
        return list(STEPS[known.index(start):])
    return list(STEPS)


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_step(step: Step, out: str, root: Path) -> tuple[int, float, float]:
    """Run one step from the repository root; return (exit status, wall s, CPU s of its process tree)."""
    cpu0, t0 = _cpu_children(), time.perf_counter()
    rc = subprocess.call(step.argv(out), cwd=root)
    return rc, time.perf_counter() - t0, _cpu_children() - cpu0


def write_run(out: Path, rows: list[dict], budget_s: float) -> None:
    """Write ``report_run.json`` and ``report_run.md`` for a complete run."""
    wall = sum(r["wall_s"] for r in rows)
    cpu = sum(r["cpu_s"] for r in rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    meta = {"finished_at_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "cpus": os.cpu_count(),
            "load_average_1min": round(load, 2), "wall_s_total": round(wall, 1), "cpu_s_total": round(cpu, 1),
            "budget_s": budget_s, "steps": rows}
    (out / "report_run.json").write_text(json.dumps(meta, indent=1) + "\n")
    verdict = ("within the budget" if wall <= budget_s
               else f"**over the budget by {wall - budget_s:.0f} s** on this machine")
    lines = ["# The main job's run time", "",
             f"`python -m characterization.report --out reports` (`make report`), finished "
             f"{meta['finished_at_utc']} UTC on {meta['cpus']} CPUs, load average {load:.1f} at the end.", "",
             f"Total: {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU (user + system of every step's processes); "
             f"budget {budget_s / 60:.0f} min (issue 13, the 2-core development machine): {verdict}.", "",
             "| step | what | wall (s) | CPU (s) |", "|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['what']} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} |" for r in rows]
    lines += ["", "Wall time depends on the machine's load; CPU time much less. A step's CPU can exceed its wall "
              "time where it runs two workers."]
    (out / "report_run.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m characterization.report", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="reports", help="report folder (default: reports)")
    ap.add_argument("--list", action="store_true", help="print the steps and exit")
    ap.add_argument("--only", help="comma-separated step names to run")
    ap.add_argument("--from", dest="start", help="run from this step to the end")
    ap.add_argument("--budget-min", type=float, default=BUDGET_S / 60, help="time budget reported against (min)")
    a = ap.parse_args(argv)
    if a.list:
        for s in STEPS:
            print(f"{s.name:22s} {s.what}")
        return 0
    try:
        if not a.budget_min > 0:
            raise ValueError(f"budget-min: must be > 0, got {a.budget_min!r}")
        steps = _select(a.only, a.start)
    except ValueError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[1]
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # the steps run from the repository root: hand them the folder relative to it where it lies inside
    out_arg = os.path.relpath(out, root) if out.is_relative_to(root) else str(out)
    rows: list[dict] = []
    for i, step in enumerate(steps, 1):
        print(f"[{i}/{len(steps)}] {step.name}: {step.what}", flush=True)
        rc, wall, cpu = run_step(step, out_arg, root)
        print(f"[{i}/{len(steps)}] {step.name}: {'done' if rc == 0 else 'FAILED'} in {wall:.1f} s "
              f"(CPU {cpu:.1f} s)", flush=True)
        if rc != 0:
            print(f"report: step {step.name!r} failed with exit status {rc} (its message is above); the "
                  f"earlier steps' files are written; rerun with --from {step.name}", file=sys.stderr)
            return 1
        rows.append({"step": step.name, "what": step.what, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)})
    total = sum(r["wall_s"] for r in rows) / 60
    if len(steps) == len(STEPS):
        write_run(out, rows, a.budget_min * 60)
        print(f"report: {total:.1f} min; wrote {out / 'report_run.md'}", flush=True)
    else:
        print(f"report: {total:.1f} min for {len(steps)} of {len(STEPS)} steps (a partial run leaves "
              f"{out / 'report_run.md'} as it was)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
