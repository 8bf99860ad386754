"""``xbarlab dnn-eval MODEL --instances N``: the accuracy distribution over N chip instances.

The sweep (``dnn_eval.instances``) keeps every finished instance in
``OUT/.cache/dnn_instances.sweep.sqlite``; the command then writes
``OUT/dnn_instances-MODEL-KEY-nN.csv`` (one row per instance) and ``.json``
(what ``--json`` prints), KEY being the first 10 hex digits of the setup's
sha256 and N the instance count, so runs of other setups or counts into the
same folder keep their files (the cache is shared: a run of fewer instances
takes them from a larger one's). An
interrupted run (Ctrl-C, SIGTERM) writes both with the instances finished so far
(``not run`` for the rest); rerunning the same command computes only the
instances that are missing or failed. Failed instances are listed, left out
of the statistics, and make the command exit 1 after writing the files.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from pathlib import Path

from xbarlab.cli_args import check_out_dir

from .instances import (SEED_RULE, InstanceSetup, has_variation, instance_tasks, run_instances, summarize)
from .table_rows import hardware_rows

STORE_NAME = "dnn_instances.sweep.sqlite"


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_args(args) -> Path:
    """The sweep's options before anything loads: one-line ValueErrors, a one-line warning above the core
    count; returns the output folder, proven writable."""
    from xbarlab.sweep import check_scheduler

    try:
        check_scheduler(args.scheduler)
    except ValueError as exc:
        raise ValueError(f"--scheduler: {exc}") from None
    workers = args.workers or 1
    if args.scheduler is None and workers > _cores():
        print(f"xbarlab: warning: --workers {workers} is above the {_cores()} CPU cores of this machine",
              file=sys.stderr)
    return check_out_dir("reports" if args.out is None else args.out, "--out")  # (an empty --out is refused)


def show_progress(args, stream=None) -> bool:
    """The progress bar is drawn on stderr only when it is a terminal, and never with --json or --no-progress."""
    stream = sys.stderr if stream is None else stream
    return not args.json and not args.no_progress and bool(getattr(stream, "isatty", lambda: False)())


def _cluster(args):
    """(scheduler, workers) for the sweep. On a Dask cluster without --workers: a ``distributed.Client``
    (``xbarlab.sweep``'s own connection, one-line ConnectionError) and the cluster's thread count."""
    if args.scheduler in (None, "inline") or args.workers is not None:
        return args.scheduler, args.workers or 1
    from xbarlab.sweep.executors import connect

    client = connect(args.scheduler)
    return client, max(1, sum(client.nthreads().values()))


def _stem(out: Path, model: str, key: str, n: int) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(model).stem)[:40] or "model"
    return out / f"dnn_instances-{name}-{key[:10]}-n{n}"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # a reader never sees half a file


def write_results(stem: Path, obj: dict) -> None:
    import pandas as pd

    _write(stem.with_suffix(".json"), json.dumps(obj, indent=1) + "\n")
    _write(stem.with_suffix(".csv"), pd.DataFrame(obj["instances"]).to_csv(index=False))


def _f(v, fmt: str = ".4f") -> str:
    return "n/a" if v is None else format(v, fmt)


def table(obj: dict) -> str:
    c, a, n = obj["config"], obj["accuracy_crossbar"], obj["counts"]
    rows = [("model", f"{c['model']} ({c['model_format']})"),
            ("dataset", f"{c['dataset']} ({obj['n_samples']} test samples)" if obj["n_samples"] else c["dataset"]),
            ("crossbar", f"{c['preset']} {c['xbar']}x{c['xbar']}{' ideal' if c['ideal'] else ''}"
                         + (f", {obj['n_tiles']} tiles" if obj["n_tiles"] else "")),
            ("DAC / ADC / device bits", f"{c['dac_bits']} / {c['adc_bits']} / {c['device_bits']}"),
            ("variation sigma/mu", f"{c['variation']:g}"), ("weight mapping", c["mapping"]),
            *hardware_rows(c),
            ("FCM DAC load factor", f"{c['fcm_options']['load_factor']:.4g} "
                                    f"({'fitted: ' + c['fcm_fit'] if c.get('fcm_fit') else 'not fitted'})"),
            ("instances", f"{obj['n_instances']} from base seed {c['base_seed']} ({n['ok'] + n['failed']} computed, "
                          f"{n['skipped']} from cache, {obj['n_failed']} failed)"),
            ("accuracy FP32", _f(obj["accuracy_fp32"])),
            ("accuracy crossbar", f"mean {_f(a['mean'])} (s.e. {_f(a['sem'])})  std {_f(a['std'])}  min {_f(a['min'])}  "
                                  f"max {_f(a['max'])}"),
            ("accuracy drop (mean)", _f(obj["accuracy_drop_mean"], "+.4f")),
            ("results", f"{obj['files']['csv']} (and .json)")]
    w = max(len(k) for k, _ in rows)
    lines = [f"{k:<{w}}  {v}" for k, v in rows]
    lines += ["", f"{'instance':>8}  {'seed':>19}  {'accuracy':>8}  {'agreement':>9}"]
    for r in obj["instances"]:
        tail = (f"{_f(r['accuracy_crossbar']):>8}  {_f(r['agreement']):>9}" if r["status"] == "ok"
                else f"{r['status'].upper()}{': ' + r['error'] if r['error'] else ''}")
        lines.append(f"{r['instance']:>8}  {r['seed']:>19}  {tail}")
    return "\n".join(lines)


def run_instances_cli(args) -> int:
    from xbarlab.sweep import OversubscribedWarning

    from .cli import calibration_of, check_data_args, config_of, hardware, load_inputs, ranges_of
    from .evaluate import RANGE_FIELDS

    out = check_args(args)
    check_data_args(args.dataset, args.data_dir)  # (its warning before anything heavy loads)
    ranges = ranges_of(args)
    calibration_of(args, ranges)  # a data set without a training split is refused here, before the sweep
    split, lm = load_inputs(args)
    spec, options = hardware(args)
    if not has_variation(spec):
        print(f"xbarlab: warning: the hardware has no device variation or faults (sigma/mu 0, no stuck cells): "
              f"the {args.instances} instances are identical; give --variation", file=sys.stderr)
    setup = InstanceSetup.from_loaded(lm, split, args.model, args.arch, args.dataset, args.data_dir, args.limit,
                                      spec, options, args.seed, args.threads, ranges)
    store = out / ".cache" / STORE_NAME
    stem = _stem(out, args.model, setup.key, args.instances)
    config = {**config_of(args, lm, spec, {k: v for k, v in options.to_dict().items() if k not in RANGE_FIELDS}), "instances": args.instances, "base_seed": args.seed,
              "seed_rule": SEED_RULE, "workers": args.workers or 1, "scheduler": args.scheduler,
              "timeout_s": args.timeout_s}
    files = {"csv": str(stem.with_suffix(".csv")), "json": str(stem.with_suffix(".json")), "store": str(store)}
    scheduler, workers = _cluster(args)
    config["workers"] = workers
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OversubscribedWarning)  # said once above
            res = run_instances(setup, args.instances, store, workers=workers, scheduler=scheduler,
                                timeout_s=args.timeout_s, progress=show_progress(args))
    except KeyboardInterrupt:  # keep what finished in the files too; the store has it already
        part = summarize(instance_tasks(setup, args.instances), store)
        write_results(stem, {**part, "interrupted": True, "config": config, "files": files})
        raise
    finally:
        if scheduler is not args.scheduler:
            scheduler.close()
    obj = {**res, "interrupted": False, "config": config, "files": files}
    write_results(stem, obj)
    print(json.dumps(obj) if args.json else table(obj))
    if res["failed"]:
        first = res["failed"][0]
        print(f"xbarlab: error: {res['n_failed']} of {res['n_instances']} chip instances failed (first: instance "
              f"{first['instance']}: {first['error']}); they are left out of the statistics and a rerun retries them",
              file=sys.stderr)
        return 1
    return 0
