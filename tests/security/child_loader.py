"""Run a load in a child process and measure that child's own peak memory.

``child_main`` loads a list of files, each in its own forked process, and
prints, per file, what loading raised and that process's peak RSS; ``run_measured`` starts a command
and reads its peak RSS from ``os.wait4`` (that child only, unlike
``RUSAGE_CHILDREN``). ``guard_memory`` caps the child's address space a
few GiB above what its imports took, so a regression cannot take the
machine with it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

GiB = 1 << 30

REPO = Path(__file__).resolve().parents[2]
GUARD_BYTES = 3 * GiB  # address space a child may add after its imports (keeps a regression from eating the machine)


def _vm_size() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


PEAK_ENV = "XBARLAB_TEST_PEAK_FILE"


def _write_peak() -> None:
    """At exit: this process's own peak RSS (VmHWM, bytes) into the file ``run_measured`` named."""
    path = os.environ.get(PEAK_ENV)
    if not path:
        return
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            Path(path).write_text(str(int(line.split()[1]) * 1024))


def guard_memory() -> None:
    """Cap this process's address space at what it has now plus GUARD_BYTES (Linux), and have it report
    its own peak RSS at exit (``run_measured``)."""
    import atexit
    import resource

    atexit.register(_write_peak)
    vm = _vm_size()
    if vm:
        resource.setrlimit(resource.RLIMIT_AS, (vm + GUARD_BYTES, vm + GUARD_BYTES))


def _load(case) -> tuple[str, str]:
    from dnn_eval.data import load_mnist_idx, read_idx
    from dnn_eval.loading import load_model

    try:
        if case["kind"] == "pt2":
            load_model(case["path"])
        elif case["kind"] == "mnist":
            load_mnist_idx(case["path"], case["labels"])
        else:
            read_idx(case["path"])
        return "accepted", ""
    except BaseException as exc:  # noqa: BLE001 - the test reports whatever happened
        return type(exc).__name__, str(exc)


def child_main(spec_json: str) -> None:
    """Load each case of ``spec_json`` ([{name, kind, path}]) in its own fork; one JSON line per case.

    The imports happen once here; each case then runs in a forked process
    under ``guard_memory``, and its peak RSS is that process's own
    (``os.wait4``), so one case's memory never shows up in another's.
    """
    import torch  # noqa: F401 - the imports every case shares, done before forking

    import dnn_eval.data  # noqa: F401
    import dnn_eval.loading  # noqa: F401

    for case in json.loads(spec_json):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the case's own process
            os.close(r)
            try:
                guard_memory()
                outcome, message = _load(case)
                os.write(w, json.dumps([outcome, message]).encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as fr:
            raw = fr.read()
        _pid, status, usage = os.wait4(pid, 0)
        outcome, message = json.loads(raw) if raw else (f"died (status {status})", "")
        print(json.dumps({"name": case["name"], "outcome": outcome, "message": message,
                          "maxrss": usage.ru_maxrss * 1024}), flush=True)


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def run_measured(cmd, timeout_s: float = 300.0) -> tuple[int, str, str, int]:
    """(exit code, stdout, stderr, that child's own peak RSS in bytes).

    The peak is the child's VmHWM, written at its exit by ``guard_memory``'s hook. ``os.wait4``'s
    ru_maxrss is only the fallback: Linux carries the high-water mark of the forking process (pytest,
    over 1 GB late in a full run) across fork and exec into it, which once read 1210 MB for a CLI run
    that peaks far lower on its own.
    """
    import subprocess
    import tempfile
    import threading

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".peak") as peak_file:
        env = {**child_env(), PEAK_ENV: peak_file.name}
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)
        timer = threading.Timer(timeout_s, p.kill)
        timer.start()
        try:
            _pid, status, usage = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        own = Path(peak_file.name).read_text().strip()
        peak = int(own) if own else usage.ru_maxrss * 1024
        return p.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"), peak


CLI_WRAPPER = (
    "import sys, runpy, torch; sys.path.insert(0, {here!r}); import child_loader; child_loader.guard_memory(); "
    "sys.argv = ['xbarlab'] + sys.argv[1:]; runpy.run_module('xbarlab.cli', run_name='__main__')")
