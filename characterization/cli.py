"""``xbarlab characterize FIGURE|all``: the RxNN sensitivity studies (Fig. 2, Fig. 3).

Modes: ``--quick`` (tiny counts, seconds, for CI), default (``make report``:
paper counts for the exact-solver sweeps, smaller ngspice samples, exact
solver at N = 128; well under 15 minutes on 2 cores) and ``--full`` (paper
counts, ngspice at every size and larger ngspice samples). Finished points
are cached in ``OUT/.cache/`` and a rerun computes only what is missing or
failed. A run with failed points writes every page (each says what failed
and why), then exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import warnings

from xbarlab.cli_args import check_out_dir

HELP = "reproduce the RxNN sensitivity studies (Fig. 2, Fig. 3) into reports/"  # xbarlab --help
FIGURES = ("fig2bc_size", "fig2d_state", "fig2e_inputs", "fig2f_variation", "fig3a_dac", "fig3b_sneak")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("figure", choices=[*FIGURES, "all", "index"], help="figure to run, 'all', or 'index' (page only)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="tiny counts for CI (seconds)")
    mode.add_argument("--full", action="store_true", help="paper counts, ngspice at every size (tens of minutes)")
    p.add_argument("--out", default="reports", help="output folder (default: reports); checked writable first")
    p.add_argument("--preset", default="rxnn-spintronic",
                   help="hardware preset of xbarlab/presets/ every figure runs on (default: rxnn-spintronic)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="address of a running dask.distributed scheduler (default: local processes)")
    p.add_argument("--workers", type=int, default=2,
                   help="tasks in flight at once, >= 1 (default 2; each sweep starts at most one per task)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (none either when stderr is not a "
                   "terminal)")


def check_parallel(workers: int, scheduler: str | None) -> None:
    """``--workers`` and ``--scheduler`` before anything runs: one-line ValueError, or a one-line warning
    on stderr when more local workers than cores are asked for."""
    from xbarlab.sweep import check_scheduler

    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    try:
        check_scheduler(scheduler)
    except ValueError as exc:
        raise ValueError(f"--scheduler: {exc}") from None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if scheduler is None and workers > cores:
        print(f"xbarlab: warning: --workers {workers} is above the {cores} CPU cores of this machine; each sweep "
              "starts at most one worker per task", file=sys.stderr)


def run(args) -> int:
    from xbarlab.spec import load_preset
    from xbarlab.sweep import OversubscribedWarning

    from . import index
    from .common import RunConfig
    from .technology import PRESET

    check_parallel(args.workers, args.scheduler)
    spec = load_preset(getattr(args, "preset", None) or PRESET)  # (a bad preset: before --out is made)
    check_out_dir(args.out)
    mode = "quick" if args.quick else "full" if args.full else "report"
    # progress bars only on a terminal: redirected, they would share lines with the messages
    cfg = RunConfig(out=args.out, mode=mode, workers=args.workers, scheduler=args.scheduler,
                    progress=not args.no_progress and sys.stderr.isatty(), spec=spec)
    names = FIGURES if args.figure == "all" else () if args.figure == "index" else (args.figure,)
    times, failed = {}, {}
    t0 = time.perf_counter()
    for name in names:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OversubscribedWarning)  # said once above
            summary = importlib.import_module(f"characterization.{name}").run(cfg)
        times[name] = time.perf_counter() - t
        if summary and summary.get("failed"):
            failed[name] = summary["failed"]
        print(f"{name}: {times[name]:.1f} s -> {cfg.out / (name + '.md')}")
    if args.figure == "all":
        log_path = cfg.out / "characterization_run.json"
        history = index.run_history(log_path)
        if history is not None:
            tasks = {k: v for k, v in cfg.counts.items()}
            history.append({"mode": mode, "workers": args.workers, "scheduler": args.scheduler,
                            "wall_s_total": time.perf_counter() - t0, "wall_s": times,
                            "tasks_computed": sum(c.get("ok", 0) + c.get("failed", 0) for c in tasks.values()),
                            "tasks_cached": sum(c.get("skipped", 0) for c in tasks.values()),
                            "finished_at_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())})
            log_path.write_text(json.dumps({"runs": history[-20:]}, indent=1) + "\n")
    if names == FIGURES or args.figure == "index":
        page = index.write_index(cfg.out)
        print(f"index: {page}")
    if failed:
        n = sum(int(f.split(" x ", 1)[0]) for fs in failed.values() for f in fs)
        first = next(iter(failed.values()))[0].split(" x ", 1)[1]
        print(f"xbarlab: error: {n} sweep points failed ({', '.join(failed)}; first: {first}); they are left out of "
              "the figures, their pages say why, and a rerun retries them", file=sys.stderr)
        return 1
    return 0
