"""SIGTERM stops a sweep as Ctrl-C does; SIGKILL of the sweep leaves no ngspice running, and the next run
removes the folders it left.

The sweep here is a CLI subcommand (a stand-in app registered in the script) whose tasks are real ngspice runs
of a 128 x 128 crossbar (about a minute each), in a private TMPDIR, so that the ngspice processes and their
folders can be found by that path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
LINUX = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds ngspice runs through /proc")

SWEEP_CLI = """
import sys, types
from xbarlab import cli

app = types.ModuleType("xbl_sweep_app")
app.HELP = "a sweep of real ngspice runs"
app.add_arguments = lambda p: None


def run(args):
    import sweep_tasks
    from xbarlab.sweep import run_sweep

    pts = [{{"x": x, "sleep": 60.0, "log": {log!r}}} for x in range(4)]
    run_sweep(sweep_tasks.{task}, pts, store={store!r}, progress=False, max_workers=2)
    return 0


app.run = run
sys.modules[app.__name__] = app
cli.discover = lambda root=None: {{"sweep": app.__name__}}
sys.exit(cli.main(["sweep"]))
"""


def start(tmp_path, task: str):
    """The sweep CLI running ``sweep_tasks.<task>`` on 4 points with 2 workers; (process, its TMPDIR, its log)."""
    tmp, log = tmp_path / "tmp", tmp_path / "log"
    tmp.mkdir()
    script = SWEEP_CLI.format(log=str(log), store=str(tmp_path / "s.sqlite"), task=task)
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    return proc, tmp, log


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def ngspice_runs(tmp: Path) -> list[int]:
    """Pids of the ngspice processes running on decks under ``tmp``."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if d.name.isdigit() and b"ngspice" in Path(os.fsdecode(argv[0])).name.encode() \
                and str(tmp).encode() in b" ".join(argv) and _alive(int(d.name)):
            pids.append(int(d.name))
    return pids


def _wait(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.1)
    return pred()


@pytest.fixture
def sweep(tmp_path):
    """Start the sweep CLI; yields (process, its TMPDIR, the pids of its 2 workers) once both run ngspice.
    Whatever is left is killed by pid afterwards."""
    proc, tmp, log = start(tmp_path, "runs_ngspice")
    workers: list[int] = []
    try:
        assert _wait(lambda: len(ngspice_runs(tmp)) == 2 or proc.poll() is not None, 120), "no ngspice ran"
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        workers = [int(r.split()[1]) for r in log.read_text().splitlines()]
        yield proc, tmp, workers
    finally:
        for pid in [*ngspice_runs(tmp), *workers, proc.pid]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if not proc.stdout.closed:
            proc.communicate()


@LINUX
@pytest.mark.parametrize("to", ["main", "group"])
def test_sigterm_stops_the_sweep_as_ctrl_c_does(ngspice, sweep, to):
    """SIGTERM ended the sweep's process at once, without a word: no partial files, its workers died (their
    parent-death signal) and their ngspice runs went on to the end of their decks, with no timeout, each
    leaving its folder. Sent to the process (``kill PID``) or to its group (a batch scheduler's limit)."""
    proc, tmp, workers = sweep
    runs = ngspice_runs(tmp)
    (os.killpg if to == "group" else os.kill)(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert err.strip().splitlines() == ["xbarlab: terminated by SIGTERM (finished results are saved)"]
    assert _wait(lambda: not any(_alive(p) for p in [*runs, *workers]), 5), "ngspice or a worker ran on"
    assert not list(tmp.glob("xbarlab-*")), "an ngspice run's folder was left behind"


@LINUX
def test_kill_9_of_the_sweep_leaves_no_ngspice_running(ngspice, sweep):
    """``kill -9`` of the sweep's process: its workers die (their parent-death signal), and the ngspice runs
    they started ran on to the end of their decks (a minute here, hours for a large one), with no timeout.
    Their folders stay (no process of the sweep is left to remove them) until the next ngspice run."""
    proc, tmp, workers = sweep
    runs = ngspice_runs(tmp)
    proc.kill()
    proc.wait(timeout=30)
    assert _wait(lambda: not any(_alive(p) for p in workers), 5), "a worker outlived the sweep"
    assert _wait(lambda: not any(_alive(p) for p in runs), 5), f"ngspice {runs} outlived the sweep's workers"
    assert len(list(tmp.glob("xbarlab-ngspice-*"))) == 2
    tiny = "* tiny\nv1 in 0 dc 1e0\nr1 in 0 1e3\n.op\n.end\n"
    r = subprocess.run([sys.executable, "-c", "import sys; from xbarlab.engines.ngspice import run_deck; "
                        f"run_deck(sys.argv[1])", tiny], env={**os.environ, "TMPDIR": str(tmp),
                       "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert not list(tmp.glob("xbarlab-*")), "the next run left the dead sweep's folders"


def test_sigterm_to_the_group_prints_no_worker_traceback(tmp_path):
    """A worker forked from the CLI inherited its SIGTERM handler: one idle between tasks printed a
    KeyboardInterrupt traceback beside the CLI's one line (and one in a task failed the task)."""
    proc, tmp, log = start(tmp_path, "sleepy")  # only x = 0 sleeps: the other worker waits for work
    try:
        assert _wait(lambda: log.exists() and len(log.read_text().splitlines()) == 4, 60)
        time.sleep(0.5)
        assert proc.poll() is None, "the sweep finished before it could be stopped"
        os.killpg(proc.pid, signal.SIGTERM)
        err = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert err.strip().splitlines() == ["xbarlab: terminated by SIGTERM (finished results are saved)"], err


HOLDER = """
import os, signal, sys
from xbarlab import lifetime
folder, fd = lifetime.make_run_folder(sys.argv[1])
print(folder, flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()  # holds it until the test closes stdin
lifetime.release_run_folder(folder, fd)
"""


@pytest.mark.parametrize("kind", ["xbarlab-ngspice-", "xbarlab-libngspice-"])
def test_only_the_folders_of_dead_makers_are_removed(tmp_path, monkeypatch, kind):
    from xbarlab import lifetime

    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    live = subprocess.Popen([sys.executable, "-c", HOLDER, kind, "hold"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        held = Path(live.stdout.readline().strip())
        # (the live one's first folder swept before the dead one's existed: each process sweeps once)
        dead = subprocess.run([sys.executable, "-c", HOLDER, kind, "die"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert dead.returncode == -signal.SIGKILL, dead.stderr
        old = tmp_path / f"{kind}12345-older"  # an older xbarlab's, without an owner file: not judged
        old.mkdir()
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
        assert lifetime.remove_stale_run_folders() == [Path(dead.stdout.strip()).name]
        assert held.is_dir() and old.is_dir() and not Path(dead.stdout.strip()).exists()
    finally:
        live.communicate("", timeout=60)
    assert not held.exists()
