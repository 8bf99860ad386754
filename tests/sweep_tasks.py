"""Module-level task functions for tests/core/test_sweep.py (importable by worker processes).

Each call appends one line to the file named by params["log"], so a test can
count how many times each point was really computed.
"""

import os
import time


def _log(p, seed):
    with open(p["log"], "a") as f:
        f.write(f"{p['x']} {seed}\n")
        f.flush()
        os.fsync(f.fileno())


def square(p, seed):
    _log(p, seed)
    if p["x"] == 3:
        raise ValueError("x = 3 is a bad point")
    time.sleep(p.get("sleep", 0.0))
    return {"y": p["x"] ** 2 + (seed or 0), "col": [0, 1], "err": [0.5 * p["x"], 0.25 * p["x"]]}


def sleepy(p, seed):
    _log(p, seed)
    time.sleep(p["sleep"] if p["x"] == 0 else 0.0)
    return {"y": p["x"]}


def needs_file(p, seed):
    """Fails while the file params["needs"] (when given) is missing, as a point fails without ngspice."""
    _log(p, seed)
    if p.get("needs") and not os.path.exists(p["needs"]):
        raise FileNotFoundError(f"{p['needs']} is missing")
    return {"y": p["x"]}


def pid_sleep(p, seed):
    """Logs 'x pid' (the worker's pid), then sleeps params["sleep"] seconds."""
    with open(p["log"], "a") as f:
        f.write(f"{p['x']} {os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())
    time.sleep(p["sleep"])
    return {"y": p["x"]}


def runs_a_child(p, seed):
    """Starts a child process (as the ngspice engine does), logs its pid, waits for it."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(p["log"], "a") as f:
        f.write(f"{child.pid}\n")
    child.wait()
    return {"y": 0}


def unjson(p, seed):
    """Returns a value JSON cannot hold (a set) at x = 1, a number elsewhere."""
    _log(p, seed)
    return {"y": {1, 2}} if p["x"] == 1 else {"y": p["x"]}


def crashes(p, seed):
    """Kills its worker process (as a segfaulting ngspice library would) at x = 0 after a short wait; the
    other points sleep params["sleep"] seconds, so they are in flight beside it."""
    _log(p, seed)
    if p["x"] == 0:
        time.sleep(0.2)
        os._exit(3)
    time.sleep(p["sleep"])
    return {"y": p["x"]}


def echoes(p, seed):
    """Returns a field named like a sweep column: "error" (a list, one row per element) or the param "x"."""
    _log(p, seed)
    return {"error": [0.1, 0.2]} if p["x"] == 0 else {"x": p["x"] + 1}


def runs_in_a_run_folder(p, seed):
    """As an ngspice run: a child working in a private folder ``xbarlab-ngspice-PID-*`` that the task removes
    when the child ends; logs the folder and waits for the child."""
    import subprocess
    import sys
    import tempfile

    from xbarlab.lifetime import run_folder_prefix

    with tempfile.TemporaryDirectory(prefix=run_folder_prefix("xbarlab-ngspice-")) as tmp:
        with open(p["log"], "a") as f:
            f.write(f"{tmp}\n")
        subprocess.run([sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp)
    return {"y": 0}


def runs_ngspice(p, seed):
    """A real ngspice run (the subprocess back end) of a 128 x 128 crossbar, whose .op takes about a minute:
    logs the worker's pid first, so that a test can kill the sweep while ngspice runs."""
    import numpy as np

    import xbarlab as xb
    from xbarlab.engines.ngspice import NgspiceSettings, run_deck

    with open(p["log"], "a") as f:
        f.write(f"{p['x']} {os.getpid()}\n")
    rng = np.random.default_rng(128 + p["x"])
    c = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
    deck = xb.netlist(10 ** rng.uniform(-6, -4, (128, 128)), rng.uniform(0, 0.25, 128), c)
    run_deck(deck, NgspiceSettings(timeout_s=600.0))
    return {"y": p["x"]}


def runs_shared(p, seed):
    """A tiny deck on the shared (libngspice) back end: the worker keeps its helper for the next task."""
    from xbarlab.engines.ngspice import NgspiceSettings, run_deck

    vec = run_deck("* tiny\nv1 in 0 dc 1e0\nr1 in 0 1e3\n.op\n.end\n", NgspiceSettings(backend="shared"))
    return {"i": float(vec["i(v1)"][0])}
