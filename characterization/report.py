"""The main job: every step that writes ``reports/``, two at a time on two cores, each timed.

    python -m characterization.report --out reports          # what `make report` runs
    python -m characterization.report --list                 # the steps, in priority order, with what they wait for
    python -m characterization.report --only fcm-speed,overview
    python -m characterization.report --from dnn-fig12a      # this step and every later one in the list
    python -m characterization.report --jobs 1               # one step at a time
    python -m characterization.report --plan reports/report_run.json   # the schedule those times would give

Each step runs in its own interpreter (the same one as this script), so one
step's memory or threads never leak into the next. ``--jobs N`` steps
(default: min(2, CPU count)) run at once (``characterization.report_schedule``):
a step starts when the steps whose files it reads are done (``after``); the
speed benchmarks whose numbers are ratios run alone (``exclusive``); a step
that shares the machine gets one BLAS thread and ``cpus // jobs`` workers.
Progress goes to stdout as ``[k/N] step: started`` / ``finished in ... s``, each
step's own lines prefixed with its name. The wall and CPU seconds of every step
(CPU: user + system of the step's process tree, which depends much less on the
machine's load than the wall time), its start and end in the job, and the job's
wall time are written to ``reports/report_run.md`` and ``report_run.json``, next
to the time budget of the whole job (15 min on the 2-core development machine,
issue 13). The budget is reported, never enforced: a slower machine gets a
longer run and a line saying by how much the budget was exceeded, not a failed
job. The sweeps inside the steps are cached (``reports/.cache/``), so a rerun
after an interruption recomputes only what did not finish.

A step that fails starts no further step; the steps running then finish (their
files are written) and the job stops with one line on stderr naming the failed
step, its exit status and the ``--only`` list of the steps still to run (its own
output, with ngspice's or Python's message, is above it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

from . import report_schedule
from .report_schedule import Step

BUDGET_S = 15 * 60.0
#: the steps that read the fitted kappa files ``fcm-accuracy`` saves (``xbarlab/presets/fitted/``,
#: through ``dnn_eval.evaluate.default_options``): every DNN, TxSim and NEAT step and their benchmarks
FIT = ("fcm-accuracy",)

#: priority order: the longest steps and those others wait for first, the benchmarks (alone) last
STEPS: tuple[Step, ...] = (
    Step("fcm-accuracy", "characterization.fcm_accuracy", ("--out", "{out}", "--pairs", "20"),
         "Fig. 10 at the preset's R_PD (20 pairs per size; --pairs 100 is the paper's count)",
         workers="--workers"),
    Step("characterize", "xbarlab.cli", ("characterize", "all", "--out", "{out}", "--no-progress"),
         "RxNN Fig. 2/3 sensitivity studies (report mode; --full for the paper's counts)", workers="--workers"),
    Step("fcm-accuracy-rpd200", "characterization.fcm_accuracy",
         ("--out", "{out}", "--pairs", "20", "--r-pd", "200", "--name", "fcm_accuracy_rpd200"),
         "Fig. 10 at the strong 200 ohm DAC load (the same counts)", workers="--workers"),
    Step("txsim-train", "dnn_eval.experiments.txsim_train", ("--out", "{out}", "--seeds", "3"),
         "TxSim: training on crossbars (issue 14), 3 seeds",
         after=FIT),
    Step("txsim-sensitivity", "dnn_eval.experiments.txsim_sensitivity", ("--out", "{out}", "--seeds", "3"),
         "TxSim sensitivity curves, 3 seeds", after=("txsim-train",)),
    Step("fcm-speed", "characterization.fcm_speed", ("--out", "{out}", "--ngspice-max", "64"),
         "Fig. 11: FCM against ngspice (ngspice up to 64x64; without --ngspice-max also the 128x128 deck, 1-2.5 min)"),
    Step("dnn-fig12a", "dnn_eval.experiments.fig12_accuracy", what="Fig. 12(a) accuracy, the loss decomposed",
         after=FIT),
    Step("dnn-fig14", "dnn_eval.experiments.fig14_sensitivity",
         ("--out", "{out}", "--seed0-from", "{out}/dnn_fig12a_accuracy.csv"),
         "Fig. 14 sensitivity (its seed-0 evaluations at 64x64 are Fig. 12(a)'s: taken from its CSV)",
         after=("dnn-fig12a",)),
    Step("fcm-sinh", "xbarlab.verify.fcm_sinh", what="the sinh-cell FCM against the Newton solver (issue 15)"),
    Step("fcm-1t1r", "xbarlab.verify.fcm_1t1r",
         what="the 1T-1R FCM against the Newton solver and ngspice, 16-64, over V_G and R_ON/R_OFF (issue 15)"),
    Step("neat-accuracy", "dnn_eval.experiments.neat_accuracy", what="NEAT: accuracy and energy against V_G",
         after=FIT),
    Step("validate", "xbarlab.cli", ("validate", "--out", "{out}"), "exact solver and G_non-ideal against ngspice"),
    Step("dnn-fig15", "dnn_eval.experiments.fig15_retrain", what="Fig. 15 re-training", after=FIT),
    Step("neat-cell", "dnn_eval.experiments.neat_cell", what="NEAT: 1T-1R G_eff and cut-off from ngspice", after=FIT),
    Step("dnn-fig16", "dnn_eval.experiments.fig16_features", what="Fig. 16 feature maps, per-layer error",
         after=FIT),
    Step("dnn-fig12b", "dnn_eval.experiments.fig12_energy", what="Fig. 12(b)/13 energy", after=FIT),
    Step("dnn-verdicts", "dnn_eval.experiments.verdicts", what="the paper's DNN statements judged from the CSVs",
         after=("dnn-fig12a", "dnn-fig14", "dnn-fig15", "dnn-fig16")),
    Step("bench-g-nonideal", "benchmarks/bench_g_nonideal.py", what="g_nonideal speed (issue 13)", exclusive=True),
    Step("bench-train", "benchmarks/bench_train.py", what="one training step against plain PyTorch",
         after=FIT, exclusive=True),
    Step("bench-dnn", "benchmarks/bench_dnn.py", what="dnn_eval inference and re-training speed",
         after=FIT, exclusive=True),
)
#: the last step reads every other step's files
STEPS += (Step("overview", "characterization.overview", what="headline numbers at the top of reports/index.md",
               after=tuple(s.name for s in STEPS)),)


def _select(names: str | None, start: str | None) -> list[Step]:
    known = [s.name for s in STEPS]
    if names is not None and start is not None:
        raise ValueError(f"only and from: give one of them, got --only {names!r} and --from {start!r}")
    if names is not None:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        bad = [n for n in wanted if n not in known]
        if bad:
            raise ValueError(f"only: unknown step {bad[0]!r}; steps: {', '.join(known)}")
        if not wanted:
            raise ValueError(f"only: no step named in {names!r}; steps: {', '.join(known)}")
        return [s for s in STEPS if s.name in wanted]
    if start is not None:
        if start not in known:
            raise ValueError(f"from: unknown step {start!r}; steps: {', '.join(known)}")
        return list(STEPS[known.index(start):])
    return list(STEPS)


def default_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def write_run(out: Path, rows: list[dict], budget_s: float, wall: float, jobs: int) -> None:
    """Write ``report_run.json`` and ``report_run.md`` for a complete run (``wall``: the job's wall time, s)."""
    rows = sorted(rows, key=lambda r: r["start_s"])
    cpu = sum(r["cpu_s"] for r in rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    meta = {"finished_at_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "cpus": os.cpu_count(),
            "jobs": jobs, "load_average_1min": round(load, 2), "wall_s_total": round(wall, 1),
            "cpu_s_total": round(cpu, 1), "wall_s_steps_sum": round(sum(r["wall_s"] for r in rows), 1),
            "budget_s": budget_s, "steps": rows}
    (out / "report_run.json").write_text(json.dumps(meta, indent=1) + "\n")
    verdict = ("within the budget" if wall <= budget_s
               else f"**over the budget by {wall - budget_s:.0f} s** on this machine")
    alone = [r["step"] for r in rows if r.get("exclusive")]
    workers = report_schedule.workers_per_step(os.cpu_count() or 1, jobs)
    lines = ["# The main job's run time", "",
             f"`python -m characterization.report --out reports` (`make report`), finished "
             f"{meta['finished_at_utc']} UTC on {meta['cpus']} CPUs, {jobs} step(s) at a time, load average "
             f"{load:.1f} at the end.", "",
             f"Total: {wall / 60:.1f} min wall (first start to last end), {cpu / 60:.1f} min CPU (user + system "
             f"of every step's processes); budget {budget_s / 60:.0f} min (issue 13, the 2-core development "
             f"machine): {verdict}.", "",
             "Schedule: a step starts when a slot is free and the steps whose files it reads are done "
             "(`python -m characterization.report --list`). "
             + (f"The speed benchmarks {', '.join(alone)} ran alone: nothing else loaded the machine while "
                "they timed. " if alone else "")
             + (f"Every other step shared the machine with at most {jobs - 1} other(s), with one BLAS thread and "
                f"{workers} worker process(es) each (the steps at once never ask for more threads than the "
                f"{meta['cpus']} cores); fcm-speed's ngspice and FCM times are therefore taken beside other "
                "single-threaded steps." if jobs > 1 else ""),
             "", "| step | what | start (s) | end (s) | wall (s) | CPU (s) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['step']}{' (alone)' if r.get('exclusive') else ''} | {r['what']} | {r['start_s']:.0f} | "
              f"{r['end_s']:.0f} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} |" for r in rows]
    lines += ["", "Wall time depends on the machine's load; CPU time much less. A step's CPU can exceed its wall "
              "time where it runs two workers."]
    (out / "report_run.md").write_text("\n".join(lines) + "\n")


def plan(path: Path, steps: list[Step], jobs: int) -> list[str]:
    """The schedule ``steps`` would follow on ``jobs`` slots with the times of a ``report_run.json``: a step
    that shares the machine is taken to last its CPU seconds (one core each), one alone its wall seconds."""
    data = json.loads(path.read_text())
    runs = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, dict) and isinstance(r.get("step"), str) for r in runs):
        raise ValueError(f"plan: {path} is not a report_run.json (a 'steps' list of records with a 'step' name)")
    rec = {r["step"]: r for r in runs}
    missing = [s.name for s in steps if s.name not in rec]
    if missing:
        raise ValueError(f"plan: {path} has no time for step {missing[0]!r}")
    secs = {s.name: rec[s.name].get("wall_s" if s.exclusive or jobs == 1 else "cpu_s") for s in steps}
    bad = [n for n, v in secs.items()
           if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v >= 0)]
    if bad:
        raise ValueError(f"plan: {path} has no time (a finite number of seconds >= 0) for step {bad[0]!r}, "
                         f"got {secs[bad[0]]!r}")
    rows = report_schedule.project(steps, secs, jobs)
    end = max(r["end_s"] for r in rows)
    out = [f"{r['step']:22s} {r['start_s']:7.0f} {r['end_s']:7.0f}" for r in sorted(rows, key=lambda r: r["start_s"])]
    return ["step                     start     end (s)", *out,
            f"projected wall: {end:.0f} s = {end / 60:.1f} min on {jobs} slot(s), from {path}"]


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m characterization.report", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="reports", help="report folder (default: reports)")
    ap.add_argument("--list", action="store_true", help="print the steps (priority order) and exit")
    ap.add_argument("--only", help="comma-separated step names to run")
    ap.add_argument("--from", dest="start", help="run this step and every later one in the list")
    ap.add_argument("--jobs", default=None, help="steps at once (default: min(2, CPU count))")
    ap.add_argument("--budget-min", type=float, default=BUDGET_S / 60, help="time budget reported against (min)")
    ap.add_argument("--plan", type=Path, metavar="RUN_JSON",
                    help="print the schedule the steps would follow with the times of this report_run.json; run nothing")
    a = ap.parse_args(argv)
    if a.list:
        for s in STEPS:
            after = "" if not s.after else " [after " + (
                "every other step" if s.name == "overview" else ", ".join(s.after)) + "]"
            print(f"{s.name:22s} {s.what}{' (alone)' if s.exclusive else ''}{after}")
        return 0
    try:
        if not a.budget_min > 0:
            raise ValueError(f"budget-min: must be > 0, got {a.budget_min!r}")
        try:
            jobs = default_jobs() if a.jobs is None else _jobs(a.jobs)
        except argparse.ArgumentTypeError as e:
            raise ValueError(f"jobs: {e}") from None
        report_schedule.check_steps(STEPS)
        steps = _select(a.only, a.start)
        if a.plan is not None:
            if not a.plan.is_file():
                raise ValueError(f"plan: no such file {str(a.plan)!r}")
            print("\n".join(plan(a.plan, steps, jobs)))
            return 0
    except (ValueError, KeyError, json.JSONDecodeError) as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    root = Path(__file__).resolve().parents[1]
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    # the steps run from the repository root: hand them the folder relative to it where it lies inside
    out_arg = os.path.relpath(out, root) if out.is_relative_to(root) else str(out)
    t0 = time.perf_counter()
    try:
        rows, failed = report_schedule.run(steps, out_arg, root, jobs, os.cpu_count() or 1)
    except KeyboardInterrupt as e:
        finished = {r["step"] for r in getattr(e, "records", [])}
        left = [s.name for s in steps if s.name not in finished]
        print(f"report: interrupted; {len(finished)} finished steps' files are written; rerun the rest with "
              f"--only {','.join(left)}", file=sys.stderr)
        return 130
    wall = time.perf_counter() - t0
    if failed is not None:
        left = [s.name for s in steps if s.name not in {r["step"] for r in rows}]
        print(f"report: step {failed['step']!r} failed with exit status {failed['rc']} (its message is above); "
              f"{len(rows)} finished steps' files are written; rerun the rest with --only {','.join(left)}",
              file=sys.stderr)
        return 1
    rows = [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    if len(steps) == len(STEPS):
        write_run(out, rows, a.budget_min * 60, wall, jobs)
        print(f"report: {wall / 60:.1f} min; wrote {out / 'report_run.md'}", flush=True)
    else:
        print(f"report: {wall / 60:.1f} min for {len(steps)} of {len(STEPS)} steps (a partial run leaves "
              f"{out / 'report_run.md'} as it was)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
