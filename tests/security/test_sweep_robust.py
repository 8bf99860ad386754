"""Sweeps lose nothing and redo nothing (issue 10, point 6): failed points retried, workers die with their
parent, concurrent runs share the work, read-only and corrupt stores, worker cap, bad scheduler addresses."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from types import SimpleNamespace
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))

import sweep_tasks  # noqa: E402
from xbarlab.sweep import OversubscribedWarning, ResultStore, SweepStoreError, run_sweep  # noqa: E402
from xbarlab.sweep import executors, runner  # noqa: E402
from characterization import cli  # noqa: E402
from characterization.common import RunConfig  # noqa: E402


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}


def dead(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_rerun_after_the_cause_is_fixed_recomputes_only_the_failed_points(tmp_path):
    log, store, tool = tmp_path / "log", tmp_path / "s.sqlite", tmp_path / "ngspice"
    pts = [{"x": x, "log": str(log), "needs": str(tool) if x % 2 else ""} for x in range(6)]
    df = run_sweep(sweep_tasks.needs_file, pts, store=store, progress=False)
    assert df.attrs["counts"] == {"total": 6, "skipped": 0, "ok": 3, "failed": 3}
    assert sorted(df.loc[df.status == "error", "x"]) == [1, 3, 5]
    tool.write_text("")  # the cause is fixed
    before = len(lines(log))
    df2 = run_sweep(sweep_tasks.needs_file, pts, store=store, progress=False)
    assert df2.attrs["counts"] == {"total": 6, "skipped": 3, "ok": 3, "failed": 0}
    assert sorted(int(r.split()[0]) for r in lines(log)[before:]) == [1, 3, 5]  # only the failed ones ran
    assert (df2.status == "ok").all() and sorted(df2.y) == list(range(6))


def test_kill_9_of_the_main_process_leaves_no_worker(tmp_path):
    log, store = tmp_path / "log", tmp_path / "s.sqlite"
    script = textwrap.dedent(f"""
        import sweep_tasks
        from xbarlab.sweep import run_sweep
        pts = [{{"x": x, "sleep": 60.0, "log": {str(log)!r}}} for x in range(4)]
        run_sweep(sweep_tasks.pid_sleep, pts, store={str(store)!r}, progress=False, max_workers=2)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env=env())
    workers: list[int] = []
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(workers) < 2:
            time.sleep(0.1)
            workers = [int(r.split()[1]) for r in lines(log)]
        assert len(workers) == 2 and proc.poll() is None
        proc.kill()  # kill -9 of the main process only, not its process group
        proc.wait(timeout=10)
        t0 = time.time()
        while time.time() - t0 < 5 and not all(dead(p) for p in workers):
            time.sleep(0.1)
        assert all(dead(p) for p in workers), f"workers {workers} outlived their parent by 5 s"
    finally:
        for p in workers:
            if not dead(p):
                os.kill(p, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()


def test_processes_opening_a_new_store_at_once_all_open_it(tmp_path):
    """Switching a new store to WAL can be refused at once with "database is locked" (SQLite does not
    always wait its busy timeout for it); the store retries that. Before the retry, 14 of 50 such opens
    failed on the development machine (2 processes per store, started at the same instant)."""
    script = textwrap.dedent("""
        import sys, time
        from xbarlab.sweep import ResultStore
        path, t_go = sys.argv[1], float(sys.argv[2])
        while time.time() < t_go:
            pass
        ResultStore(path).close()
        print("ok")
    """)
    for trial in range(5):
        path, t_go = tmp_path / f"s{trial}.sqlite", time.time() + 1.0
        procs = [subprocess.Popen([sys.executable, "-c", script, str(path), repr(t_go)], env=env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0 and out.strip() == "ok", err.strip().splitlines()[-1:]


def test_two_concurrent_sweeps_do_each_task_once(tmp_path):
    log, store = tmp_path / "log", tmp_path / "s.sqlite"
    n = 12
    script = textwrap.dedent(f"""
        import json, sweep_tasks
        from xbarlab.sweep import run_sweep
        pts = [{{"x": x, "sleep": 0.3, "log": {str(log)!r}}} for x in range(10, 10 + {n})]
        df = run_sweep(sweep_tasks.square, pts, store={str(store)!r}, progress=False, max_workers=2)
        print(json.dumps({{**df.attrs["counts"], "rows_ok": int((df.status == "ok").sum())}}))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env(), stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    xs = sorted(int(r.split()[0]) for r in lines(log))
    assert xs == list(range(10, 10 + n)), f"tasks computed more than once (or not at all): {xs}"
    assert sum(o["ok"] for o in outs) == n and all(o["ok"] > 0 for o in outs)  # the work was shared
    assert all(o["rows_ok"] == 2 * n and o["failed"] == 0 for o in outs)  # and both got every result
    with ResultStore(store) as st:
        assert st.claims() == []


def test_stale_claim_of_a_dead_run_is_taken_over(tmp_path):
    log, store = tmp_path / "log", tmp_path / "s.sqlite"
    pts = [{"x": x, "log": str(log)} for x in (1, 2)]
    tasks = runner.make_tasks(sweep_tasks.square, pts)
    dead_pid = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
    with ResultStore(store) as st:
        st.claim(tasks[0].key, "x", 0.0)
        st._db.execute("UPDATE claims SET pid=?, owner=?", (int(dead_pid), f"{st.host}:{dead_pid}:dead"))
        st._db.commit()
    t0 = time.perf_counter()
    df = run_sweep(sweep_tasks.square, pts, store=store, progress=False, scheduler="inline")
    assert time.perf_counter() - t0 < 10 and df.attrs["counts"]["ok"] == 2


def _make_readonly(store: Path):
    """Make the store and its folder unwritable for this process; the undo function, or None where this
    process cannot (root without the immutable attribute)."""
    if os.geteuid() != 0:
        os.chmod(store, 0o444)
        os.chmod(store.parent, 0o555)
        return lambda: (os.chmod(store.parent, 0o755), os.chmod(store, 0o644))
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(store), str(store.parent)],
                                        capture_output=True).returncode != 0:
        return None
    return lambda: subprocess.run([chattr, "-i", str(store), str(store.parent)], check=True)


def test_read_only_store_with_everything_cached_returns_results(tmp_path):
    store = tmp_path / "ro" / "s.sqlite"
    pts = [{"x": x, "log": str(tmp_path / "log")} for x in (1, 2)]
    want = run_sweep(sweep_tasks.square, pts, store=store, progress=False, scheduler="inline")
    assert not Path(str(store) + "-wal").exists()  # closed cleanly: a reader has only the file itself
    undo = _make_readonly(store)
    try:
        tasks = runner.make_tasks(sweep_tasks.square, pts)
        with ResultStore(store, readonly=undo is None) as st:  # detected when the store really is read-only
            assert st.readonly
            counts = runner.run_tasks(tasks, st, progress=False)
            df = runner.collect(tasks, st)
            with pytest.raises(SweepStoreError, match=f"sweep store {store} is read-only and 1 of its 3 tasks"):
                runner.run_tasks(tasks + runner.make_tasks(sweep_tasks.square, [{"x": 7, "log": "/nonexistent"}]),
                                 st, progress=False)
        if undo is not None:  # and through the path, as the characterization scripts open it
            assert run_sweep(sweep_tasks.square, pts, store=store, progress=False).attrs["counts"]["skipped"] == 2
    finally:
        if undo is not None:
            undo()
    assert counts == {"total": 2, "skipped": 2, "ok": 0, "failed": 0}
    assert df.drop(columns="elapsed_s").equals(want.drop(columns="elapsed_s"))
    assert len(lines(tmp_path / "log")) == 2  # nothing recomputed


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_store_error_names_the_file_and_the_way_out(tmp_path, damage):
    store = tmp_path / "s.sqlite"
    pts = [{"x": x, "log": str(tmp_path / "log")} for x in range(200)]
    if damage == "garbage":
        store.write_bytes(b"this is not a database" * 100)
    else:
        run_sweep(sweep_tasks.sleepy, pts, store=store, progress=False, scheduler="inline")
        data = store.read_bytes()
        store.write_bytes(data[: len(data) // 2])
    with pytest.raises(SweepStoreError) as exc:
        run_sweep(sweep_tasks.sleepy, pts, store=store, progress=False, scheduler="inline")
    msg = str(exc.value)
    assert str(store) in msg and "delete it" in msg and "\n" not in msg


def test_a_result_that_is_not_json_names_the_store_and_the_task(tmp_path):
    import sqlite3
    store = tmp_path / "s.sqlite"
    pts = [{"x": x, "log": str(tmp_path / "log")} for x in range(2)]
    run_sweep(sweep_tasks.sleepy, pts, store=store, progress=False, scheduler="inline")
    with sqlite3.connect(store) as db:  # a row edited by hand or written by other code
        db.execute("UPDATE results SET result='{\"y\": nan'")
    with pytest.raises(SweepStoreError) as exc:
        run_sweep(sweep_tasks.sleepy, pts, store=store, progress=False, scheduler="inline")
    msg = str(exc.value)
    assert str(store) in msg and "not JSON" in msg and "task" in msg and "\n" not in msg


def test_corrupt_store_cli_is_one_line(tmp_path):
    cache = tmp_path / ".cache"
    cache.mkdir()
    (cache / "fig3b_sneak.sweep.sqlite").write_bytes(b"\x00garbage" * 512)
    out = subprocess.run([sys.executable, "-m", "xbarlab.cli", "characterize", "fig3b_sneak", "--quick", "--out",
                          str(tmp_path), "--no-progress"], capture_output=True, text=True, timeout=120, env=env())
    err = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(err) == 1, out.stderr
    assert "fig3b_sneak.sweep.sqlite" in err[0] and "delete it" in err[0]


def test_workers_capped_at_the_tasks_and_warned_above_the_cores(tmp_path, monkeypatch):
    started = []
    real_pool = executors._pool
    monkeypatch.setattr(executors, "_pool", lambda n: started.append(n) or real_pool(n))
    monkeypatch.setattr(runner, "_cores", lambda: 1)
    pts = [{"x": x, "log": str(tmp_path / "log")} for x in (1, 2)]
    with pytest.warns(OversubscribedWarning, match="2 sweep workers on 1 CPU cores"):
        df = run_sweep(sweep_tasks.sleepy, pts, store=tmp_path / "s.sqlite", progress=False, max_workers=40)
    assert started == [2] and df.attrs["counts"]["ok"] == 2


def test_cli_workers_above_the_cores_warns_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "xbarlab.cli", "characterize", "index", "--out", str(tmp_path),
                          "--workers", "4000"], capture_output=True, text=True, timeout=120, env=env())
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines() == [
        l for l in out.stderr.strip().splitlines() if l.startswith("xbarlab: warning: --workers 4000 is above")]
    assert len(out.stderr.strip().splitlines()) == 1
    bad = subprocess.run([sys.executable, "-m", "xbarlab.cli", "characterize", "index", "--out", str(tmp_path),
                          "--workers", "0"], capture_output=True, text=True, timeout=120, env=env())
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1 and "--workers" in bad.stderr


@pytest.fixture
def not_a_scheduler():
    """tcp://127.0.0.1:PORT of a listener that answers, but not as a dask scheduler."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                conn.sendall(b"hello, I am not dask\n" * 4)
            except OSError:
                return

    threading.Thread(target=serve, daemon=True).start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    srv.close()


@pytest.mark.parametrize("address", ["bogus", "tcp://127.0.0.1:1", "tcp://bad host:8786", "tcp://h:99999",
                                     "not-dask"])
def test_bad_scheduler_exits_fast_with_one_line(tmp_path, address, request):
    if address == "not-dask":
        address = request.getfixturevalue("not_a_scheduler")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "xbarlab.cli", "characterize", "fig3b_sneak", "--quick", "--out",
                          str(tmp_path), "--no-progress", "--scheduler", address],
                         capture_output=True, text=True, timeout=120, env=env())
    wall = time.perf_counter() - t0
    err = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(err) == 1, out.stderr
    assert address in err[0] and wall < 20, (wall, err)


def test_bad_scheduler_in_the_library_raises_at_once(tmp_path):
    pts = [{"x": 1, "log": str(tmp_path / "log")}]
    with pytest.raises(ValueError, match="scheduler must be a dask scheduler address"):
        run_sweep(sweep_tasks.square, pts, store=tmp_path / "s.sqlite", progress=False, scheduler="bogus")
    t0 = time.perf_counter()
    with pytest.raises(ConnectionError, match="cannot reach the dask scheduler at tcp://127.0.0.1:1"):
        run_sweep(sweep_tasks.square, pts, store=tmp_path / "s.sqlite", progress=False, scheduler="tcp://127.0.0.1:1")
    assert time.perf_counter() - t0 < 10
    assert not (tmp_path / "log").exists()  # nothing ran


@pytest.mark.ngspice
def test_figure_without_ngspice_says_so_and_the_rerun_retries_only_those_points(tmp_path, ngspice, monkeypatch):
    monkeypatch.setenv("XBARLAB_NGSPICE", str(tmp_path / "no-ngspice-here"))
    for fig in ("fig2d_state", "fig3a_dac"):  # fig3a_dac: every point fails (was a KeyError)
        args = SimpleNamespace(figure=fig, quick=True, full=False, out=str(tmp_path), scheduler=None, workers=2,
                               no_progress=True)
        assert cli.run(args) == 1  # a check that never ran is not a pass
    md = (tmp_path / "fig2d_state.md").read_text()
    assert "**FAILED: 1 of 1 ngspice check instances**" in md and "NgspiceNotFoundError" in md
    assert "ngspice check: **NOT RUN**" in md
    assert json.loads((tmp_path / "fig2d_state.json").read_text())["ngspice_check"] == "not run"
    assert "**FAILED: 18 of 18 points**" in (tmp_path / "fig3a_dac.md").read_text()
    monkeypatch.setenv("XBARLAB_NGSPICE", ngspice)  # the cause is fixed
    cfg = RunConfig(out=tmp_path, mode="quick", progress=False)
    from characterization import fig2d_state

    fig2d_state.run(cfg)
    exact, check = cfg.counts["fig2d_state"], cfg.counts["fig2d_state_ngspice"]
    assert exact["skipped"] == exact["total"] and exact["ok"] == 0  # the fast path is not redone
    assert check == {"total": 1, "skipped": 0, "ok": 1, "failed": 0}  # the failed check is
    md = (tmp_path / "fig2d_state.md").read_text()
    assert "FAILED" not in md and "NOT RUN" not in md


def test_timeout_kills_the_processes_a_task_started(tmp_path):
    log = tmp_path / "log"
    df = run_sweep(sweep_tasks.runs_a_child, [{"x": 0, "log": str(log)}], store=tmp_path / "s.sqlite",
                   progress=False, timeout_s=1.0)
    assert "TimeoutError" in df.error.iloc[0]
    child = int(lines(log)[0])
    t0 = time.time()
    while time.time() - t0 < 5 and not dead(child):
        time.sleep(0.1)
    assert dead(child)


def test_timeout_removes_the_folder_of_the_ngspice_run_it_killed(tmp_path):
    """The killed worker cannot remove the private folder of its ngspice run: every timed-out (or interrupted)
    ngspice task left a /tmp/xbarlab-ngspice-* folder with its deck and rawfile (1.2 MB at 96 x 96)."""
    log = tmp_path / "log"
    df = run_sweep(sweep_tasks.runs_in_a_run_folder, [{"x": 0, "log": str(log)}], store=tmp_path / "s.sqlite",
                   progress=False, timeout_s=1.0)
    assert "TimeoutError" in df.error.iloc[0]
    folder = Path(lines(log)[0])
    assert folder.name.startswith("xbarlab-ngspice-") and not folder.exists()


def test_a_worker_crash_is_charged_to_the_task_that_caused_it(tmp_path):
    """Every task in flight sees a broken pool: the one running beside the crashing task was counted as a
    death too and, after the second break, recorded as "worker process died (twice)". Tasks in flight at a
    shared break now rerun alone: the crasher fails, the others finish."""
    log = tmp_path / "log"
    pts = [{"x": x, "sleep": 1.0, "log": str(log)} for x in range(3)]
    df = run_sweep(sweep_tasks.crashes, pts, store=tmp_path / "s.sqlite", progress=False, max_workers=2)
    by_x = df.set_index("x")
    assert list(by_x.loc[[1, 2], "status"]) == ["ok", "ok"] and list(by_x.loc[[1, 2], "y"]) == [1, 2]
    assert by_x.loc[0, "status"] == "error" and "died (twice) while running this task alone" in by_x.loc[0, "error"]
