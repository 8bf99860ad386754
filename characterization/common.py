"""What every figure script shares: run modes, the sweep store, output files."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xbarlab.spec import CrossbarSpec
from xbarlab.sweep import canonical_json, check_scheduler, run_sweep

from .technology import ERROR_DEFINITION, PRESET, default_spec

MODES = ("quick", "report", "full")
CODE_VERSION = "3"  # bump when a task function's numerics or fields change: old cached results are then recomputed
# (3: montecarlo.chunk_task's "error" field became "column_error")


@dataclass
class RunConfig:
    """How a figure runs.

    Attributes:
        out: output folder (CSV, PNG, markdown); the sweep stores go to ``out/.cache/``.
        mode: ``quick`` (CI, seconds), ``report`` (``make report``, < 15 min in all) or ``full`` (paper counts).
        workers: bounded parallelism of the sweeps.
        scheduler: address of a dask.distributed scheduler, or None for local processes.
        progress: show progress bars.
        spec: the hardware (a ``CrossbarSpec``, default the preset ``rxnn-spintronic`` at its own size);
            every hardware value of every figure comes from it.
    """

    out: Path
    mode: str = "report"
    workers: int = 2
    scheduler: str | None = None
    progress: bool = True
    spec: CrossbarSpec = field(default_factory=default_spec)
    counts: dict = field(default_factory=dict)  # sweep name -> {total, skipped, ok, failed} of this run

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not isinstance(self.spec, CrossbarSpec):
            raise ValueError(f"spec must be an xbarlab.CrossbarSpec, got {type(self.spec).__name__}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {self.workers!r}")
        check_scheduler(self.scheduler)
        self.out = Path(self.out)
        self.out.mkdir(parents=True, exist_ok=True)

    @property
    def spec_json(self) -> str:
        return canonical_json(self.spec.to_dict())

    def hardware_line(self) -> str:
        """One caption line naming the preset and its DAC, for every figure page."""
        s = self.spec
        return (f"Hardware: preset `{s.name or PRESET}` (`xbarlab/presets/`, every value with its source): "
                f"DAC {s.dac.bits} bit, v_read = {s.dac.v_read:g} V, R_PD = {s.dac.r_pd:g} ohm; r_row = r_col = "
                f"{s.circuit.r_row:g} ohm/segment, r_sense = {s.circuit.r_sense:g} ohm, r_driver = "
                f"{s.circuit.r_driver} ohm; cells {1 / s.device.g_max / 1e3:g}..{1 / s.device.g_min / 1e3:g} kOhm, "
                f"{s.device.levels} levels.")

    def sweep(self, fn, points, name: str, seeds=(0,), timeout_s: float = 600.0, desc: str | None = None):
        """Run a cached sweep; the hardware spec travels in each task's params (column dropped)."""
        points = [{"spec": self.spec_json, **p} for p in points]
        df = run_sweep(fn, points, seeds, store=self.out / ".cache" / f"{name}.sweep.sqlite",
                       max_workers=self.workers, timeout_s=timeout_s, scheduler=self.scheduler,
                       progress=self.progress, version=CODE_VERSION, desc=desc or name)
        counts = df.attrs.get("counts", {})
        self.counts[name] = counts
        df = df.drop(columns=["spec"], errors="ignore")
        df.attrs["counts"] = counts
        return df


def spec_of(params: dict) -> CrossbarSpec:
    """The hardware spec a task was given (``params["spec"]``, JSON), else the default preset."""
    return CrossbarSpec.from_dict(json.loads(params["spec"])) if "spec" in params else default_spec()


def failures(df) -> list[str]:
    """'n x error' lines of the failed tasks of a sweep frame (one task may span rows)."""
    if "status" not in df or df.empty:
        return []
    bad = df[df["status"] != "ok"]
    cols = [c for c in bad.columns if c not in ("error", "elapsed_s", "status")]
    bad = bad.drop_duplicates(subset=[c for c in cols if bad[c].map(lambda v: isinstance(v, (int, float, str))).all()])
    return [f"{n} x {err}" for err, n in bad["error"].value_counts().items()]


def ok_rows(df, columns=()):
    """The rows of the tasks that succeeded, with every column in ``columns`` present (NaN where no
    task produced it, e.g. when all failed): failed points never reach a figure or its numbers."""
    ok = df[df["status"] == "ok"] if "status" in df else df
    missing = [c for c in columns if c not in ok.columns]
    return ok.reindex(columns=[*ok.columns, *missing]).copy()


def failure_note(df, what: str = "points") -> str | None:
    """The page's line on a sweep's failed tasks, or None when none failed: how many, and why."""
    fails = failures(df)
    if not fails:
        return None
    n_bad = sum(int(f.split(" x ", 1)[0]) for f in fails)
    total = df.attrs.get("counts", {}).get("total", n_bad)
    return (f"**FAILED: {n_bad} of {total} {what}**, left out of the figure and of every number on this page: "
            + "; ".join(f.rstrip(".") for f in fails) + ". A rerun retries them.")


def write_figure(cfg: RunConfig, name: str, df, fig, caption: list[str], extra_csv: dict | None = None) -> None:
    """Write ``name.csv`` (with the error definition as a column), ``name.png`` and ``name.md``."""
    df = df.copy()
    if "error_definition" not in df:
        df["error_definition"] = ERROR_DEFINITION
    df.to_csv(cfg.out / f"{name}.csv", index=False)
    for suffix, frame in (extra_csv or {}).items():
        frame.to_csv(cfg.out / f"{name}_{suffix}.csv", index=False)
    fig.savefig(cfg.out / f"{name}.png", dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    files = ", ".join(f"`{name}_{s}.csv`" for s in (extra_csv or {}))
    lines = [f"# {name}", "", f"![{name}]({name}.png)", "", cfg.hardware_line(), "", *caption, "",
             f"Data: `{name}.csv`{', ' + files if files else ''}. Mode: `{cfg.mode}`. "
             f"Regenerate: `xbarlab characterize {name} --out {cfg.out}{'' if cfg.mode == 'report' else ' --' + cfg.mode}`."]
    (cfg.out / f"{name}.md").write_text("\n".join(lines) + "\n")


def write_summary(cfg: RunConfig, name: str, summary: dict) -> None:
    """Numbers the index page reads (``name.json``): counts, times, disagreements."""
    def plain(x):
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        if isinstance(x, np.generic):
            return x.item()
        return x

    summary = {**summary, "hardware": cfg.spec.to_dict()}
    (cfg.out / f"{name}.json").write_text(json.dumps(plain(summary), indent=1, sort_keys=True) + "\n")


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.s = time.perf_counter() - self.t0


def sample_ids(n_total: int, k: int, seed: int) -> list[int]:
    """k distinct instance ids of n_total, drawn with a seeded generator."""
    rng = np.random.default_rng([seed, 99])
    return sorted(int(i) for i in rng.choice(n_total, size=min(k, n_total), replace=False))


def pct(x: float) -> str:
    return f"{100 * x:.3g} %"
