"""The sweep engine: content keys, resume after kill -9, recompute on change, failures, timeout, Dask."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import sweep_tasks
from xbarlab.sweep import ResultStore, canonical_json, grid, make_tasks, run_sweep, task_key

HERE = Path(__file__).resolve().parents[1]  # tests/, where sweep_tasks.py lives


def executions(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_keys_are_canonical():
    assert canonical_json({"b": 1, "a": (1.0, 2)}) == '{"a":[1,2],"b":1}'
    k = task_key("m:f", {"n": 8, "g": "x"}, 0)
    assert k == task_key("m:f", {"g": "x", "n": 8.0}, 0)
    assert k != task_key("m:f", {"g": "x", "n": 9}, 0)
    assert k != task_key("m:f", {"g": "x", "n": 8}, 1)
    assert k != task_key("m:g", {"g": "x", "n": 8}, 0)
    assert k != task_key("m:f", {"g": "x", "n": 8}, 0, version="2")
    with pytest.raises(ValueError, match="finite"):
        canonical_json({"x": float("nan")})


def test_grid_and_tasks():
    pts = grid(n=[8, 16], g=["min", "max"])
    assert len(pts) == 4 and {"n": 16, "g": "max"} in pts
    assert len(make_tasks(sweep_tasks.square, pts + pts, seeds=[0, 1])) == 8  # duplicates kept once
    with pytest.raises(ValueError, match="module-level"):
        make_tasks(lambda p, s: {}, pts)


def test_rerun_skips_and_changed_param_recomputes(tmp_path):
    log, store = tmp_path / "log", tmp_path / "s.sqlite"
    pts = [{"x": x, "log": str(log)} for x in (1, 2, 4)]
    df = run_sweep(sweep_tasks.square, pts, seeds=[0, 1], store=store, progress=False)
    assert df.attrs["counts"] == {"total": 6, "skipped": 0, "ok": 6, "failed": 0}
    assert len(executions(log)) == 6
    # tidy: params and seed as columns, one row per list element
    assert {"x", "seed", "status", "y", "col", "err"} <= set(df.columns) and len(df) == 12
    assert df.loc[(df.x == 4) & (df.seed == 1), "y"].tolist() == [17, 17]
    df2 = run_sweep(sweep_tasks.square, pts, seeds=[0, 1], store=store, progress=False)
    assert df2.attrs["counts"]["skipped"] == 6 and len(executions(log)) == 6
    assert df2.drop(columns="elapsed_s").equals(df.drop(columns="elapsed_s"))
    pts[2] = {"x": 5, "log": str(log)}  # one changed parameter
    df3 = run_sweep(sweep_tasks.square, pts, seeds=[0, 1], store=store, progress=False)
    assert df3.attrs["counts"] == {"total": 6, "skipped": 4, "ok": 2, "failed": 0}
    assert executions(log)[6:] == ["5 0", "5 1"] or sorted(executions(log)[6:]) == ["5 0", "5 1"]


def test_failed_point_recorded_and_sweep_goes_on(tmp_path):
    log, store = tmp_path / "log", tmp_path / "s.sqlite"
    pts = [{"x": x, "log": str(log)} for x in (1, 3, 4)]
    df = run_sweep(sweep_tasks.square, pts, store=store, progress=False, scheduler="inline")
    assert df.attrs["counts"] == {"total": 3, "skipped": 0, "ok": 2, "failed": 1}
    bad = df[df.status == "error"]
    assert bad.x.tolist() == [3] and "ValueError: x = 3 is a bad point" in bad.error.iloc[0]
    with ResultStore(store) as st:
        assert st.count("error") == 1 and st.count("ok") == 2
    # a rerun retries it (only it) unless told not to
    again = run_sweep(sweep_tasks.square, pts, store=store, progress=False)
    assert again.attrs["counts"] == {"total": 3, "skipped": 2, "ok": 0, "failed": 1}
    assert run_sweep(sweep_tasks.square, pts, store=store, progress=False,
                     retry_failed=False).attrs["counts"]["skipped"] == 3
    assert len(executions(log)) == 4


@pytest.mark.parametrize("scheduler", ["inline", None])
def test_result_json_cannot_hold_is_a_failed_point_not_a_failed_sweep(tmp_path, scheduler):
    # it raised TypeError from the store's put in the sweep's own process: the sweep stopped, and so did
    # every rerun, at the same point
    log, store = tmp_path / "log", tmp_path / "s.sqlite"
    pts = [{"x": x, "log": str(log)} for x in (0, 1, 2)]
    df = run_sweep(sweep_tasks.unjson, pts, store=store, progress=False, scheduler=scheduler, max_workers=1)
    assert df.attrs["counts"] == {"total": 3, "skipped": 0, "ok": 2, "failed": 1}
    bad = df[df.status == "error"]
    assert bad.x.tolist() == [1] and "JSON" in bad.error.iloc[0] and "set" in bad.error.iloc[0]
    again = run_sweep(sweep_tasks.unjson, pts, store=store, progress=False, scheduler=scheduler)
    assert again.attrs["counts"] == {"total": 3, "skipped": 2, "ok": 0, "failed": 1}
    assert sorted(executions(log)) == ["0 None", "1 None", "1 None", "2 None"]


@pytest.mark.parametrize("bad", [True, "5", 0, float("nan")])
def test_sweep_timeout_must_be_a_number(tmp_path, bad):
    # True was a 1 s timeout (every longer task failed), "5" raised TypeError
    with pytest.raises(ValueError, match="timeout_s"):
        run_sweep(sweep_tasks.square, [{"x": 1, "log": str(tmp_path / "log")}], store=tmp_path / "s.sqlite",
                  progress=False, timeout_s=bad)
    assert not (tmp_path / "log").exists()


def test_timeout_kills_task_and_others_finish(tmp_path):
    log, store = tmp_path / "log", tmp_path / "s.sqlite"
    pts = [{"x": x, "sleep": 60.0, "log": str(log)} for x in range(4)]
    t0 = time.perf_counter()
    df = run_sweep(sweep_tasks.sleepy, pts, store=store, progress=False, timeout_s=1.0, max_workers=2)
    assert time.perf_counter() - t0 < 20
    assert df.attrs["counts"] == {"total": 4, "skipped": 0, "ok": 3, "failed": 1}
    assert "TimeoutError" in df.loc[df.x == 0, "error"].iloc[0]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_resume_after_interrupt_computes_only_the_rest(tmp_path, sig):
    log, store = tmp_path / "log", tmp_path / "s.sqlite"
    n, sleep_s = 12, 0.3
    # SIGINT as in an interactive shell: a job started in the background by a non-interactive shell (a CI
    # runner, `make test &`) inherits SIGINT ignored, and an ignored signal stays ignored across exec
    script = textwrap.dedent(f"""
        import signal; signal.signal(signal.SIGINT, signal.default_int_handler)
        import sys; sys.path.insert(0, {str(HERE)!r})
        import sweep_tasks
        from xbarlab.sweep import run_sweep
        pts = [{{"x": x, "sleep": {sleep_s}, "log": {str(log)!r}}} for x in range(10, 10 + {n})]
        run_sweep(sweep_tasks.square, pts, store={str(store)!r}, progress=False, max_workers=2)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.time() + 60
        done = 0
        while time.time() < deadline and done < 4:
            time.sleep(0.1)
            if store.exists():
                try:
                    with sqlite3.connect(store) as db:
                        done = db.execute("SELECT COUNT(*) FROM results WHERE status='ok'").fetchone()[0]
                except sqlite3.OperationalError:
                    pass
        assert proc.poll() is None, "the sweep finished before it could be killed"
        os.killpg(proc.pid, sig)  # the sweep and its worker processes, mid-run (Ctrl-C hits the whole group)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with ResultStore(store) as st:
        finished = st.count("ok")
    assert 4 <= finished < n
    before = len(executions(log))
    pts = [{"x": x, "sleep": sleep_s, "log": str(log)} for x in range(10, 10 + n)]
    df = run_sweep(sweep_tasks.square, pts, store=store, progress=False, max_workers=2)
    assert df.attrs["counts"] == {"total": n, "skipped": finished, "ok": n - finished, "failed": 0}
    assert len(executions(log)) - before == n - finished  # only the rest was computed
    assert sorted(df.drop_duplicates("x").y) == sorted(x * x for x in range(10, 10 + n))


def test_ctrl_c_prints_no_worker_traceback(tmp_path):
    """Ctrl-C hits the whole process group: a worker idle between tasks printed a KeyboardInterrupt traceback
    beside the CLI's one line. Only the sweep's own process may see the interrupt."""
    log, store = tmp_path / "log", tmp_path / "s.sqlite"
    script = textwrap.dedent(f"""
        import signal; signal.signal(signal.SIGINT, signal.default_int_handler)
        import sys; sys.path.insert(0, {str(HERE)!r})
        import sweep_tasks
        from xbarlab.sweep import run_sweep
        pts = [{{"x": x, "sleep": 60.0, "log": {str(log)!r}}} for x in range(4)]  # (only x = 0 sleeps)
        try:
            run_sweep(sweep_tasks.sleepy, pts, store={str(store)!r}, progress=False, max_workers=2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(executions(log)) < 4:  # x = 0 runs, a worker waits for work
            time.sleep(0.1)
        time.sleep(0.5)
        assert proc.poll() is None, "the sweep finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        err = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert err.strip() == "interrupted", err


def test_dask_scheduler_address(tmp_path):
    distributed = pytest.importorskip("distributed")
    log, store = tmp_path / "log", tmp_path / "s.sqlite"
    pts = [{"x": x, "log": str(log)} for x in (1, 2, 3)]
    slow = [{"x": x, "sleep": 3.0, "log": str(log)} for x in (0, 1)]
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster:
        df = run_sweep(sweep_tasks.square, pts, store=store, progress=False, scheduler=cluster.scheduler_address)
        # a task past its timeout is cancelled and recorded; the others finish
        late = run_sweep(sweep_tasks.sleepy, slow, store=store, progress=False, timeout_s=0.5,
                         scheduler=cluster.scheduler_address)
    assert df.attrs["counts"] == {"total": 3, "skipped": 0, "ok": 2, "failed": 1}
    assert "bad point" in df.loc[df.x == 3, "error"].iloc[0]
    assert late.set_index("x")["status"].to_dict() == {0: "error", 1: "ok"}
    assert "TimeoutError" in late.loc[late.x == 0, "error"].iloc[0]
    # the same store resumes locally: nothing recomputed (but the failed point, unless told not to)
    assert run_sweep(sweep_tasks.square, pts, store=store, progress=False,
                     retry_failed=False).attrs["counts"]["skipped"] == 3


def test_sweep_import_is_light():
    code = ("import sys, xbarlab.sweep; "
            "print(' '.join(m for m in ('pandas', 'tqdm', 'distributed', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""


def test_a_result_field_named_like_a_sweep_column_is_refused(tmp_path):
    """A task field "error" took the column of the failed tasks' messages (a mixed column of numbers and
    text, which broke the Monte Carlo pages when one chunk failed); a field "x" replaced the param x."""
    for x, field in ((0, "error"), (1, "x")):
        with pytest.raises(ValueError, match=rf"returned field\(s\) \['{field}'\] named like the sweep's own columns"):
            run_sweep(sweep_tasks.echoes, [{"x": x, "log": str(tmp_path / "log")}], store=tmp_path / f"s{x}.sqlite",
                      progress=False)
