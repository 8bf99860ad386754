"""The timing scripts of ``make report`` never fail because a machine is slower.

Each size's ngspice runs get a wall-clock budget (``--budget-s``,
``characterization/budget.py``). A point that does not fit is written as
"not run: over the N s budget" with its reason, and the script exits 0; a
real ngspice failure (a crash, a rejected deck) still exits non-zero.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from scripts import load_benchmark

from characterization.budget import OverBudget, check_budget, timed_runs
from xbarlab.errors import NgspiceNotFoundError, SpiceError, SpiceTimeoutError

ROOT = Path(__file__).resolve().parents[2]
NOT_RUN = "not run: over the 0.001 s budget"  # no ngspice run finishes in 1 ms: process start alone is longer
SCRIPTS = {
    "fcm_speed": ([sys.executable, "-m", "characterization.fcm_speed", "--quick", "--sizes", "16"],
                  "fcm_speed.csv", "fcm_speed.md"),
    "bench_g_nonideal": ([sys.executable, "benchmarks/bench_g_nonideal.py", "--quick", "--sizes", "16"],
                         "bench_g_nonideal.csv", "bench_g_nonideal.md"),
}


def _run(cmd, tmp_path, env_extra=None, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **(env_extra or {})}
    return subprocess.run([*cmd, "--out", str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _fake_ngspice(tmp_path, body: str) -> str:
    exe = tmp_path / "fake-ngspice"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(0o755)
    return str(exe)


@pytest.mark.ngspice
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_point_over_budget_is_reported_and_exits_zero(ngspice, script, tmp_path):
    cmd, csv, md = SCRIPTS[script]
    proc = _run([*cmd, "--budget-s", "0.001"], tmp_path, {"XBARLAB_NGSPICE": ngspice})
    assert proc.returncode == 0, proc.stderr[-2000:]
    df = pd.read_csv(tmp_path / "out" / csv)
    if script == "fcm_speed":
        row = df[df.method == "ngspice"].iloc[0]
        status, reason, value = row.status, row.reason, row.seconds_per_vmm
        assert (df[df.method != "ngspice"].status == "ok").all()
    else:
        row = df.iloc[0]
        status, reason, value = row.ngspice_status, row.ngspice_reason, row.ngspice_one_vmm_s
    assert status == NOT_RUN and "ngspice at 16x16" in reason and "budget" in reason
    assert pd.isna(value)  # no number is made up for a point that did not run
    page = (tmp_path / "out" / md).read_text()
    assert NOT_RUN in page and reason.split(":")[0] in page


CRASHES = ['echo "Error: simulated ngspice crash" >&2; exit 1', "kill -SEGV $$"]


@pytest.mark.parametrize("script, body", [("fcm_speed", CRASHES[0]), ("bench_g_nonideal", CRASHES[1])])
def test_real_ngspice_failure_still_fails(script, body, tmp_path):
    cmd, csv, _ = SCRIPTS[script]
    proc = _run(cmd, tmp_path, {"XBARLAB_NGSPICE": _fake_ngspice(tmp_path, body)})
    assert proc.returncode != 0
    assert "SpiceError" in proc.stderr and "not run" not in proc.stdout
    assert not (tmp_path / "out" / csv).exists()


def test_missing_ngspice_still_fails(tmp_path):
    cmd, csv, _ = SCRIPTS["fcm_speed"]
    proc = _run(cmd, tmp_path, {"XBARLAB_NGSPICE": str(tmp_path / "no-such-ngspice")})
    assert proc.returncode != 0 and "NgspiceNotFoundError" in proc.stderr


def _script_main(script):
    if script == "fcm_speed":
        from characterization.fcm_speed import main
        return main
    return load_benchmark("bench_g_nonideal").main


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_bad_budget_fails_before_any_run(script, tmp_path, capsys):
    with pytest.raises(SystemExit) as ex:
        _script_main(script)(["--budget-s", "0", "--out", str(tmp_path / "out")])
    assert ex.value.code == 2
    assert "--budget-s" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon", ""])
def test_budget_option_rejects(value):
    import argparse

    from characterization.budget import add_budget_argument

    p = argparse.ArgumentParser()
    add_budget_argument(p, "the runs")
    with pytest.raises(SystemExit):
        p.parse_args(["--budget-s", value])
    assert p.parse_args([]).budget_s == 300.0 and p.parse_args(["--budget-s", "2.5"]).budget_s == 2.5


def test_timed_runs_tells_a_timeout_from_a_failure():
    def times_out(item, timeout_s):
        time.sleep(timeout_s)
        raise SpiceTimeoutError(f"ngspice timed out after {timeout_s} s")

    def crashes(item, timeout_s):
        raise SpiceError("ngspice failed: ngspice exited with status -11")

    def missing(item, timeout_s):
        raise NgspiceNotFoundError("ngspice was not found")

    assert len(timed_runs(lambda item, timeout_s: None, range(3), 10.0)) == 3
    with pytest.raises(OverBudget, match=r"not run: over the 0\.05 s budget") as over:
        timed_runs(times_out, range(3), 0.05)
    assert over.value.status == "not run: over the 0.05 s budget" and "run 1 of 3" in over.value.reason
    with pytest.raises(OverBudget, match="the first 1 of 2 runs took the whole budget"):
        timed_runs(lambda item, timeout_s: time.sleep(0.06), range(2), 0.05)
    with pytest.raises(SpiceError, match="status -11"):
        timed_runs(crashes, range(3), 10.0)
    with pytest.raises(NgspiceNotFoundError):
        timed_runs(missing, range(3), 1.0)
    for bad in (0, -1.0, float("nan"), float("inf"), "x"):
        with pytest.raises(ValueError, match="budget_s"):
            check_budget(bad)
