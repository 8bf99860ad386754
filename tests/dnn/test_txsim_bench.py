"""benchmarks/bench_train.py: a one-pair run gives its rows and page (the speed itself is the benchmark's, not a test's)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_train  # noqa: E402


def test_bench_train_one_pair_writes_its_page(tmp_path):
    from dnn_eval.models import MLP

    rows = bench_train.bench_network("mlp", lambda: MLP(hidden=16), batch=4, reps=1)
    assert [r["rebuild_every"] for r in rows] == ["never (interpolated)", 10, 1]
    assert all(r["plain_ms"] > 0 and r["crossbar_step_ms"] > 0 and r["rebuild_ms"] > 0 for r in rows)
    assert rows[2]["crossbar_step_ms"] > rows[0]["crossbar_step_ms"]  # the exact rebuild every step adds its time
    bench_train.write(rows, tmp_path, reps=1, threads=1)
    assert "| mlp | 4 |" in (tmp_path / "bench_train.md").read_text()


def test_bench_train_refuses_bad_options(capsys):
    assert bench_train.main(["--reps", "0"]) == 2
    assert "--reps must be in 1..1000" in capsys.readouterr().err
