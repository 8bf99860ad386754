"""The shared (libngspice) back end never crashes the process: threads, timeouts, crashes, a dead parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import xbarlab as xb
from xbarlab.engines import ngspice_shared
from xbarlab.engines.ngspice import NgspiceSettings, run_deck

ROOT = str(Path(__file__).resolve().parents[2])
SHARED = NgspiceSettings(backend="shared", timeout_s=60.0)
TINY_DECK = "* tiny\nv1 in 0 dc 1e0\nr1 in 0 1e3\n.op\n.end\n"
C = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)


def slow_deck() -> str:
    """A 128x128 crossbar: its .op takes about a minute here, far beyond the timeouts below."""
    rng = np.random.default_rng(128)
    return xb.netlist(10 ** rng.uniform(-6, -4, (128, 128)), rng.uniform(0, 0.25, 128), C)


def fresh_python(script: str, timeout: float = 240.0, tmp: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``script`` in a new interpreter, so that a segfault fails the test instead of killing pytest (with
    ``tmp`` as its TMPDIR, where the helpers make their folders)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT, str(Path(ROOT) / "tests")] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)


THREADS_SCRIPT = r"""
import threading
import numpy as np
import xbarlab as xb
from xbarlab.verify.spice_reference import spice_currents
S = xb.NgspiceSettings(backend="shared", timeout_s=60)
c = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
bad = []

def work(seed):
    rng = np.random.default_rng(seed)
    for _ in range(6):
        G = 10 ** rng.uniform(-6, -4, (6, 5)); V = rng.uniform(0, 0.25, 6)
        I, ref = xb.simulate(G, V, c, engine="ngspice", ngspice=S), xb.simulate(G, V, c)
        if np.abs(I - ref).max() > 1e-9 * np.abs(ref).max():
            bad.append(seed)

threads = [threading.Thread(target=work, args=(s,)) for s in (1, 2)]
for t in threads: t.start()
for t in threads: t.join()
assert not bad, bad
spec = xb.load_preset("spintronic", rows=8, cols=8)
rng = np.random.default_rng(0)
G = spec.device.quantize(rng.random((8, 8)))
codes = rng.integers(0, spec.dac.full_code + 1, (6, 8)).astype(float)
shared = spice_currents(G, codes, spec, S, workers=2)
sub = spice_currents(G, codes, spec, xb.NgspiceSettings(), workers=1)
assert np.abs(shared - sub).max() <= 1e-12 * np.abs(sub).max(), np.abs(shared - sub).max()
print("OK")
"""


@pytest.mark.ngspice
def test_two_threads_and_two_workers_on_the_shared_back_end(ngspice):
    r = fresh_python(THREADS_SCRIPT)
    assert r.returncode == 0, f"status {r.returncode}\n{r.stderr[-3000:]}"
    assert r.stdout.strip().endswith("OK")


def _check_tiny() -> None:
    vec = run_deck(TINY_DECK, SHARED)
    assert vec["i(v1)"][0] == pytest.approx(-1e-3, rel=1e-12)


@pytest.mark.ngspice
@pytest.mark.parametrize("timeout_s", [0.3, 0.01])
def test_timeout_is_honoured_and_the_next_run_works(ngspice, timeout_s):
    deck = slow_deck()
    _check_tiny()  # a warm helper: the limit is the run's own
    folder = Path(ngspice_shared._pool.idle[-1].dir)  # the one the next run takes
    t0 = time.monotonic()
    with pytest.raises(xb.SpiceError, match=rf"timed out after {timeout_s} s"):
        run_deck(deck, NgspiceSettings(backend="shared", timeout_s=timeout_s))
    assert time.monotonic() - t0 < timeout_s + 1.0
    assert folder.name.startswith("xbarlab-libngspice-") and not folder.exists()
    t0 = time.monotonic()
    _check_tiny()  # a fresh helper (its start is not part of the timeout)
    assert time.monotonic() - t0 < 30


@pytest.mark.ngspice
def test_a_crash_in_libngspice_fails_one_run_and_the_next_works(ngspice):
    # ngspice handles SIGSEGV itself; SIGKILL stands for a crash it cannot handle.
    deck = slow_deck()
    _check_tiny()
    helper = ngspice_shared._pool.idle[-1]  # the one the next run takes
    threading.Timer(1.0, os.kill, (helper.proc.pid, signal.SIGKILL)).start()  # mid-run
    t0 = time.monotonic()
    with pytest.raises(xb.SpiceError, match="crashed.*killed by signal 9"):
        run_deck(deck, SHARED)
    assert time.monotonic() - t0 < 10
    _check_tiny()


@pytest.mark.ngspice
def test_missing_libngspice_gives_the_install_hint(ngspice, tmp_path, monkeypatch):
    monkeypatch.setenv("NGSPICE_LIBRARY_PATH", str(tmp_path / "no-libngspice.so"))
    ngspice_shared._pool.close_all()
    with pytest.raises(xb.NgspiceNotFoundError, match="apt-get install ngspice"):
        run_deck(TINY_DECK, SHARED)


PARENT_SCRIPT = r"""
import os, signal
from xbarlab.engines import ngspice_shared
from xbarlab.engines.ngspice import NgspiceSettings, run_deck
run_deck("* tiny\nv1 in 0 dc 1e0\nr1 in 0 1e3\n.op\n.end\n", NgspiceSettings(backend="shared"))
print(ngspice_shared._pool.idle[0].proc.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.ngspice
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_helpers_exit_when_their_parent_is_killed(ngspice, tmp_path):
    """... and remove their folders (each left its /tmp/xbarlab-libngspice-* folder)."""
    r = fresh_python(PARENT_SCRIPT, tmp=tmp_path)
    assert r.returncode == -signal.SIGKILL, r.stderr[-3000:]
    pid = int(r.stdout.split()[0])
    deadline = time.monotonic() + 5.0
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid), f"helper {pid} outlived its parent by 5 s"
    assert not _folders(tmp_path)


def _folders(tmp: Path) -> list[str]:
    """The helpers' folders left in ``tmp``, once any helper still ending has had a second to end."""
    time.sleep(1.0)
    return [d.name for d in tmp.glob("xbarlab-libngspice-*")]


SWEEP_SCRIPT = r"""
import sys
import sweep_tasks
from xbarlab.sweep import run_sweep
df = run_sweep(sweep_tasks.runs_shared, [{"x": x} for x in range(4)], store=sys.argv[1], progress=False,
               max_workers=2)
assert (df.status == "ok").all(), df.error.tolist()
print("OK")
"""


@pytest.mark.ngspice
def test_helpers_of_sweep_workers_leave_no_folder(ngspice, tmp_path):
    """A sweep worker ends without ``atexit`` (multiprocessing), so its helpers were never closed: they exited
    with their parent, and each left its folder (2 per sweep of 2 workers)."""
    r = fresh_python(SWEEP_SCRIPT.replace("sys.argv[1]", repr(str(tmp_path / "s.sqlite"))), tmp=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "OK", r.stderr[-3000:]
    assert not _folders(tmp_path)


INTERRUPT_SCRIPT = r"""
import os, signal, threading
import numpy as np
import xbarlab as xb
from xbarlab.engines import ngspice_shared
from xbarlab.engines.ngspice import NgspiceSettings, run_deck
rng = np.random.default_rng(128)  # slow_deck()
deck = xb.netlist(10 ** rng.uniform(-6, -4, (128, 128)), rng.uniform(0, 0.25, 128),
                  xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0))
signal.signal(signal.SIGINT, signal.default_int_handler)  # (a background job may start with it ignored)
threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C mid-run
try:
    run_deck(deck, NgspiceSettings(backend="shared", timeout_s=60))
except KeyboardInterrupt:
    print("interrupted", len(ngspice_shared._pool.idle))
"""


@pytest.mark.ngspice
def test_ctrl_c_mid_run_leaves_no_helper_folder(ngspice, tmp_path):
    """The helper of a run stopped by Ctrl-C was neither closed nor pooled: it ran on to the end of the
    process, then left its folder."""
    r = fresh_python(INTERRUPT_SCRIPT, tmp=tmp_path)
    assert r.returncode == 0 and r.stdout.split() == ["interrupted", "0"], r.stderr[-3000:]
    assert not _folders(tmp_path)
