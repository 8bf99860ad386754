"""App-level Monte Carlo: the accuracy of N chip instances of one network on one technology.

A *chip instance* is one draw of the device variation and faults of the
hardware spec (``FCM.from_weights``'s ``rng``); the network, its weights,
the test data, the circuit and the model settings are the same for every
instance. Instance ``i`` of base seed ``s`` uses the integer seed

    SeedSequence(s).spawn(N)[i].generate_state(1, uint64)[0] >> 1

(63 bits, so it is a valid ``--seed``; the seeds of N = 5 are the first five
of N = 10). ``xbarlab dnn-eval ... --seed SEED`` evaluates that one instance
alone, with the same result for a trained network (the random-weight
``resnet18``/``resnet50`` draw their weights from the torch seed: here the
base seed, for every instance).

The instances run as a sweep on ``xbarlab.sweep``: one task per instance,
keyed by the shared setup (the hardware spec and FCM options as JSON, the
sha256 of the model file and of the test images and labels), the
instance's seed and the versions of xbarlab, torch and numpy
(``code_version``; code changed in a working tree without a version bump
is not seen: use another store), each result committed to a SQLite store
as it finishes. A
rerun computes only the instances that are missing or failed; local worker
processes, this process (``scheduler="inline"``) or a dask.distributed
cluster (``scheduler="tcp://host:8786"``; the model file and data folder
must then be readable at the same paths on the workers) run them. A worker
checks that the model file and the test data it loads have the fingerprints
of the setup, so an instance is never computed on other inputs than its key
says.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xbarlab.cli_args import SEED_MAX
from xbarlab.fcm import FCMOptions
from xbarlab.spec import CrossbarSpec
from xbarlab.sweep import canonical_json, collect, make_tasks, run_tasks

MAX_INSTANCES = 100_000  # a cap against typos: each instance is one full evaluation of the test set
VERSION = "1"  # bump when instance_task's numerics change: cached instances are then recomputed (code_version)
SEED_RULE = "SeedSequence(seed).spawn(N)[i].generate_state(1, uint64)[0] >> 1"
STD_DEFINITION = ("std: sample standard deviation over the finished instances (ddof = 1), sem: std / sqrt(n), "
                  "the standard error of the mean over instances; both null for fewer than 2")
RESULT_FIELDS = ("accuracy_crossbar", "accuracy_fp32", "agreement", "n_samples", "n_tiles",
                 "time_generate_s", "time_crossbar_s")


def check_instances(n) -> int:
    """``n`` as an int in 1..MAX_INSTANCES, else ValueError naming ``instances`` and the value."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_INSTANCES:
        raise ValueError(f"instances must be an integer in 1..{MAX_INSTANCES}, got {n!r}")
    return int(n)


def instance_seeds(seed: int, n: int) -> list[int]:
    """The integer seeds of ``n`` chip instances derived from the base ``seed`` (module docstring)."""
    n = check_instances(n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be an integer in 0..{SEED_MAX}, got {seed!r}")
    return [int(c.generate_state(1, np.uint64)[0] >> np.uint64(1))
            for c in np.random.SeedSequence(int(seed)).spawn(n)]


def has_variation(spec: CrossbarSpec) -> bool:
    """Whether the spec's devices draw anything per instance (variation or stuck faults)."""
    d = spec.device
    return d.variation > 0 or d.stuck_on_rate > 0 or d.stuck_off_rate > 0


def split_sha256(split) -> str:
    """sha256 of a split's images (float32, C order) and labels (int64) with their shapes."""
    h = hashlib.sha256()
    for a, dt in ((split.x, np.float32), (split.y, np.int64)):
        a = np.ascontiguousarray(a, dtype=dt)
        h.update(repr(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def model_sha256(lm) -> str:
    """sha256 of the file a loaded model came from; ``random-init`` for the random-weight networks."""
    if lm.kind == "random":
        return "random-init"
    h = hashlib.sha256()
    with open(lm.path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_int(name: str, v, lo: int, hi: int, optional: bool = False) -> None:
    if optional and v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}{' or None' if optional else ''}, got {v!r}")


@dataclass(frozen=True)
class InstanceSetup:
    """What every chip instance shares.

    Attributes:
        model: a bundled network's name, or the path of a .pt2 / state_dict .pt (made absolute).
        arch: architecture of a state_dict, or None.
        dataset: data set name (``dnn_eval.data``); data_dir: its folder (absolute) or None.
        limit: evaluate only the first ``limit`` test samples (None: all).
        spec: the hardware; options: the FCM settings.
        base_seed: the seed the instance seeds derive from (and the torch seed of random-weight networks).
        threads: torch CPU threads per instance.
        model_sha256, data_sha256: fingerprints of the model file and of the test split
            (``model_sha256``, ``split_sha256``); a worker refuses inputs that differ.
        ranges: the converter ranges (``dnn_eval.calibration.ConverterRanges.to_dict()``), None for the
            defaults; calibrated ranges are set per instance from the training split (``calibration_of``).
    """

    model: str
    arch: str | None
    dataset: str
    data_dir: str | None
    limit: int | None
    spec: CrossbarSpec
    options: FCMOptions
    base_seed: int
    threads: int
    model_sha256: str
    data_sha256: str
    ranges: dict | None = None

    def __post_init__(self) -> None:
        for name in ("model", "dataset", "model_sha256", "data_sha256"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        for name in ("arch", "data_dir"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string or None, got {getattr(self, name)!r}")
        if not isinstance(self.spec, CrossbarSpec):
            raise ValueError(f"spec must be a CrossbarSpec, got {type(self.spec).__name__}")
        if not isinstance(self.options, FCMOptions):
            raise ValueError(f"options must be an FCMOptions, got {type(self.options).__name__}")
        _check_int("limit", self.limit, 1, 2**31, optional=True)
        _check_int("base_seed", self.base_seed, 0, SEED_MAX)
        _check_int("threads", self.threads, 1, 4096)
        if self.ranges is not None:
            from .calibration import ConverterRanges

            object.__setattr__(self, "ranges", ConverterRanges.from_dict(self.ranges).to_dict())

    @classmethod
    def from_loaded(cls, lm, split, model: str, arch: str | None, dataset: str, data_dir, limit,
                    spec: CrossbarSpec, options: FCMOptions, base_seed: int, threads: int = 1,
                    ranges=None) -> "InstanceSetup":
        """The setup of a model and a split already loaded (and checked) here, fingerprinted."""
        if lm.kind != "random" and Path(model).exists():
            model = str(Path(model).resolve())
        return cls(model, arch, dataset, None if data_dir is None else str(Path(data_dir).resolve()), limit,
                   spec, options, int(base_seed), int(threads), model_sha256(lm), split_sha256(split),
                   None if ranges is None or ranges == type(ranges)() else ranges.to_dict())

    def to_params(self) -> dict:
        """The sweep parameters: JSON values only (the spec and options as canonical JSON text)."""
        return {"model": self.model, "arch": self.arch, "dataset": self.dataset, "data_dir": self.data_dir,
                "limit": self.limit, "spec": canonical_json(self.spec.to_dict()),
                "options": canonical_json(self.options.to_dict()), "base_seed": self.base_seed,
                "threads": self.threads, "model_sha256": self.model_sha256, "data_sha256": self.data_sha256,
                **({} if self.ranges is None else {"ranges": canonical_json(self.ranges)})}

    @classmethod
    def from_params(cls, p: dict) -> "InstanceSetup":
        return cls(p["model"], p["arch"], p["dataset"], p["data_dir"], p["limit"],
                   CrossbarSpec.from_dict(json.loads(p["spec"])), FCMOptions(**json.loads(p["options"])),
                   p["base_seed"], p["threads"], p["model_sha256"], p["data_sha256"],
                   json.loads(p["ranges"]) if p.get("ranges") else None)

    @property
    def key(self) -> str:
        """sha256 of the setup's parameters: names its output files."""
        return hashlib.sha256(canonical_json(self.to_params()).encode()).hexdigest()

    def load(self):
        """(split, loaded model) as a worker sees them; ValueError if they differ from the fingerprints."""
        import torch

        from .data import Split, load_test_split
        from .loading import load_model

        torch.set_num_threads(self.threads)
        split = load_test_split(self.dataset, self.data_dir)
        if self.limit:
            split = Split(split.x[:self.limit], split.y[:self.limit])
        if split_sha256(split) != self.data_sha256:
            raise ValueError(f"the test data of {self.dataset!r} (data_dir {self.data_dir!r}) differ from the data "
                             "this sweep was started with (sha256 mismatch)")
        torch.manual_seed(self.base_seed)
        lm = load_model(self.model, split.input_shape, self.arch)
        if model_sha256(lm) != self.model_sha256:
            raise ValueError(f"the model file {self.model!r} differs from the one this sweep was started with "
                             "(sha256 mismatch)")
        return split, lm


def instance_task(params: dict, seed: int) -> dict:
    """One chip instance (a sweep task): FP32 and crossbar accuracy for the hardware drawn from ``seed``."""
    import torch

    from . import evaluate

    setup = InstanceSetup.from_params(params)
    split, lm = setup.load()
    torch.manual_seed(seed)  # as a single ``dnn-eval --seed SEED`` run
    ranges, calibration = None, None
    if setup.ranges is not None:
        from .calibration import ConverterRanges, calibration_batch
        from .data import load_bundled_split

        ranges = ConverterRanges.from_dict(setup.ranges)
        if ranges.needs_data:
            calibration = calibration_batch(load_bundled_split(setup.dataset)[0].x, ranges.samples)
    res = evaluate.evaluate(lm, split, setup.spec, seed, setup.options, ranges=ranges, calibration=calibration)
    return {k: res[k] for k in RESULT_FIELDS}


def code_version() -> str:
    """The tasks' version: ``VERSION`` and the versions of xbarlab, torch and numpy, so that an upgrade
    recomputes the instances instead of returning numbers of other code."""
    import torch

    import xbarlab

    return f"{VERSION}/xbarlab-{xbarlab.__version__}/torch-{torch.__version__}/numpy-{np.__version__}"


def instance_tasks(setup: InstanceSetup, n: int) -> list:
    """The sweep tasks of instances 0..n-1, in order (their seeds: ``instance_seeds``)."""
    if not isinstance(setup, InstanceSetup):
        raise ValueError(f"setup must be an InstanceSetup, got {type(setup).__name__}")
    tasks = make_tasks(instance_task, [setup.to_params()], instance_seeds(setup.base_seed, n), code_version())
    if len(tasks) != n:  # pragma: no cover - two equal 63-bit seeds
        raise ValueError(f"the base seed {setup.base_seed} gives two equal instance seeds in {n}; choose another")
    return tasks


def run_instances(setup: InstanceSetup, n: int, store, *, workers: int = 1, scheduler=None,
                  timeout_s: float | None = None, progress: bool = False) -> dict:
    """Evaluate ``n`` chip instances as a cached, resumable sweep in ``store``; return ``summarize``'s dict
    with ``counts`` ({total, skipped, ok, failed} of this call) added.

    ``scheduler``: None (local worker processes, at most ``workers``), ``"inline"`` (this process) or a
    dask.distributed address or ``Client``. Failed instances are retried by the next call. Local workers
    with ``setup.threads > 1`` start from a fork server (``_fork_safe_workers``), so a script calling
    this needs the ``if __name__ == "__main__":`` guard that ``multiprocessing`` asks for.
    """
    tasks = instance_tasks(setup, n)
    with _fork_safe_workers(scheduler is None and setup.threads > 1):
        counts = run_tasks(tasks, store, max_workers=workers, timeout_s=timeout_s, scheduler=scheduler,
                           progress=progress, desc="chip instances")
    return {**summarize(tasks, store), "counts": counts}


@contextlib.contextmanager
def _fork_safe_workers(needed: bool):
    """Local workers started by a fork server instead of ``fork`` while the block runs, when ``needed``.

    A forked worker hangs in its first multi-threaded torch op when this process has run one before
    (libgomp's thread pool does not survive ``fork``; measured: torch 2.13, Linux). Workers with one torch
    thread are safe and keep ``fork`` (no re-import); with more, each worker imports torch afresh.
    """
    if not needed or multiprocessing.get_start_method() != "fork":
        yield
        return
    multiprocessing.set_start_method("forkserver", force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method("fork", force=True)


def _num(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v.item() if isinstance(v, np.generic) else v


def summarize(tasks, store) -> dict:
    """The instances' outcomes in the store: the distribution of the crossbar accuracy and each instance.

    Instances not in the store (an interrupted run) have status ``not run``. The statistics are over the
    instances that finished (``ok``).
    """
    df = collect(tasks, store)
    by_seed = {int(s): r for s, r in zip(df["seed"], df.to_dict("records"))} if len(df) else {}
    rows, failed = [], []
    for i, t in enumerate(tasks):
        r = by_seed.get(t.seed)
        row = {"instance": i, "seed": t.seed, "status": "not run" if r is None else r["status"]}
        row.update({k: None if r is None else _num(r.get(k)) for k in ("accuracy_crossbar", "agreement",
                                                                         "accuracy_fp32", "elapsed_s")})
        row["error"] = None if r is None else _num(r.get("error"))
        rows.append(row)
        if row["status"] == "error":
            failed.append({"instance": i, "seed": t.seed, "error": row["error"]})
    ok = [r for r in rows if r["status"] == "ok"]
    acc = np.array([r["accuracy_crossbar"] for r in ok], dtype=float)
    first = by_seed[ok[0]["seed"]] if ok else {}
    stats = {"mean": None, "std": None, "sem": None, "min": None, "max": None}
    if len(acc):
        std = float(acc.std(ddof=1)) if len(acc) > 1 else None
        stats = {"mean": float(acc.mean()), "std": std, "sem": None if std is None else std / math.sqrt(len(acc)),
                 "min": float(acc.min()), "max": float(acc.max())}
    fp32 = _num(first.get("accuracy_fp32"))
    return {
        "n_instances": len(tasks), "n_ok": len(ok), "n_failed": len(failed),
        "n_not_run": sum(r["status"] == "not run" for r in rows),
        "accuracy_fp32": fp32, "accuracy_crossbar": stats,
        "accuracy_drop_mean": None if fp32 is None or stats["mean"] is None else fp32 - stats["mean"],
        "n_samples": _num(first.get("n_samples")), "n_tiles": _num(first.get("n_tiles")),
        "std_definition": STD_DEFINITION, "seed_rule": SEED_RULE,
        "instances": rows, "failed": failed,
    }
