"""ngspice runs only what xbarlab wrote: startup files are never read, foreign decks never run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xbarlab as xb
from xbarlab.engines import ngspice_shared
from xbarlab.engines.ngspice import NgspiceSettings, check_deck, run_deck

ROOT = str(Path(__file__).resolve().parents[2])
BACKENDS = ("subprocess", "shared")
# One run in a fresh process (HOME, cwd and environment are the test's): rel. deviation from the exact solver.
SCRIPT = r"""
import json, sys
import numpy as np
import xbarlab as xb
G = 10 ** np.random.default_rng(3).uniform(-6, -4, (4, 3))
V = np.array([0.2, 0.1, 0.05, 0.15])
c = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
I = xb.simulate(G, V, c, engine="ngspice", ngspice=xb.NgspiceSettings(backend=sys.argv[1], timeout_s=60))
ref = xb.simulate(G, V, c)
print(json.dumps({"rel": float(np.abs(I - ref).max() / np.abs(ref).max())}))
"""


def hostile_init(markers: Path, tag: str) -> str:
    """A startup file that runs a shell command and shifts every result (rshunt = 100 ohm)."""
    return f"shell touch {markers / tag}\noption rshunt=1e2\n"


def plant(tmp_path: Path, where: tuple[str, ...]) -> tuple[Path, Path, dict[str, str]]:
    """Hostile startup files at ``where`` (home, cwd, userinit, spinit): (markers, cwd, environment)."""
    markers, home, cwd, userinit, scripts = (tmp_path / d for d in ("markers", "home", "cwd", "userinit", "scripts"))
    for d in (markers, home, cwd, userinit, scripts):
        d.mkdir()
    files = {"home": home / ".spiceinit", "cwd": cwd / ".spiceinit",
             "userinit": userinit / ".spiceinit", "spinit": scripts / "spinit"}
    env = {"HOME": str(home)}
    for tag in where:
        files[tag].write_text(hostile_init(markers, tag))
    if "userinit" in where:
        env["SPICE_USERINIT_DIR"] = str(userinit)
    if "spinit" in where:
        env["SPICE_SCRIPTS"] = str(scripts)
    return markers, cwd, env


G3 = 10 ** np.random.default_rng(3).uniform(-6, -4, (4, 3))
V3 = np.array([0.2, 0.1, 0.05, 0.15])
C3 = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)


@pytest.mark.ngspice
@pytest.mark.parametrize("where", ["home", "cwd", "userinit", "spinit"])
def test_subprocess_backend_reads_no_startup_file(ngspice, tmp_path, monkeypatch, where):
    # ngspice -b reads only the first of $SPICE_USERINIT_DIR, ./, $HOME: one location per case.
    markers, cwd, env = plant(tmp_path, (where,))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(cwd)
    I = xb.simulate(G3, V3, C3, engine="ngspice", ngspice=NgspiceSettings(timeout_s=60))
    assert sorted(p.name for p in markers.iterdir()) == []  # no shell command ran
    ref = xb.simulate(G3, V3, C3)
    assert np.abs(I - ref).max() <= 1e-9 * np.abs(ref).max()  # rshunt = 100 ohm was not applied


@pytest.mark.ngspice
def test_shared_backend_reads_no_startup_file(ngspice, tmp_path):
    # A fresh process: libngspice reads its startup files once, when it starts.
    markers, cwd, env = plant(tmp_path, ("home", "cwd", "userinit", "spinit"))
    env = dict(os.environ, **env, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    r = subprocess.run([sys.executable, "-c", SCRIPT, "shared"], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in markers.iterdir()) == []
    assert json.loads(r.stdout.strip().splitlines()[-1])["rel"] <= 1e-9


@pytest.mark.ngspice
def test_shared_refuses_to_start_while_the_passwd_home_has_a_spiceinit(ngspice, tmp_path, monkeypatch):
    # libngspice 39 reads ~/.spiceinit from the password database's home (not $HOME) and cannot
    # skip it: the test points that lookup at a folder of its own.
    init = tmp_path / ".spiceinit"
    init.write_text(hostile_init(tmp_path, "marker"))
    monkeypatch.setattr(ngspice_shared, "passwd_home_init", lambda: init)
    ngspice_shared._pool.close_all()  # a running helper has started already; the check is at start
    G, V, c = np.full((2, 2), 1e-5), np.array([0.1, 0.2]), xb.CircuitParams()
    with pytest.raises(xb.SpiceError, match=r"refusing to start libngspice.*\.spiceinit.*backend='subprocess'") as err:
        xb.simulate(G, V, c, engine="ngspice", ngspice=NgspiceSettings(backend="shared"))
    assert str(init) in str(err.value)
    assert not (tmp_path / "marker").exists()


FOREIGN = {
    "control shell": "* x\nv1 a 0 dc 1e0\nr1 a 0 1e3\n.control\nshell touch {m}\n.endc\n.op\n.end\n",
    "control after end": "* x\nv1 a 0 dc 1e0\nr1 a 0 1e3\n.op\n.end\n.control\nshell touch {m}\n.endc\n",
    "bare shell": "* x\nshell touch {m}\nv1 a 0 dc 1e0\n.op\n.end\n",
    "include": "* x\n.include {m}\nv1 a 0 dc 1e0\n.op\n.end\n",
    "lib": "* x\n.lib {m} tt\nv1 a 0 dc 1e0\n.op\n.end\n",
    "ng_script title": "*ng_script\nshell touch {m}\n.op\n.end\n",
    "comment command": "* x\n*# shell touch {m}\nv1 a 0 dc 1e0\n.op\n.end\n",
    "continuation": "* x\nv1 a 0 dc 1e0\nr1 a 0\n+ 1e3\n.op\n.end\n",
    # a '+' line continues the card before it: only after .model (ngspice ran these, 11x and 1000x the current)
    "options continued": "* x\n.options numdgt=15\n+ rshunt=1e2\nv1 a 0 dc 1e0\nr1 a 0 1e3\n.op\n.end\n",
    "element continued": "* x\nv1 a 0 dc 1e0\nr1 a 0 1e3\n+ m=1e3\n.op\n.end\n",
    "scale suffix": "* x\nv1 a 0 dc 1e0\nr1 a 0 1M\n.op\n.end\n",
    "parameter": "* x\n.param rr=1e3\nv1 a 0 dc 1e0\nr1 a 0 {{rr}}\n.op\n.end\n",
    "other option": "* x\n.options rshunt=1e2\nv1 a 0 dc 1e0\nr1 a 0 1e3\n.op\n.end\n",
    "subcircuit": "* x\nx1 a 0 evil\nv1 a 0 dc 1e0\n.op\n.end\n",
    "tran": "* x\nv1 a 0 dc 1e0\nr1 a 0 1e3\n.tran 1e-9 1e-3\n.end\n",
    "b source function": "* x\nv1 a 0 dc 1e0\nb1 a 0 i=1e-3*exp(1e0*(v(a)-0))\n.op\n.end\n",
    "carriage return": "* x\r\nv1 a 0 dc 1e0\r\n.op\r\n.end\r\n",
    "backslash comment": "* x \\\nv1 a 0 dc 1e0\n.op\n.end\n",
    "upper case": "* x\nV1 a 0 dc 1e0\n.op\n.end\n",
    "no end": "* x\nv1 a 0 dc 1e0\n.op\n",
    "no title": "v1 a 0 dc 1e0\nr1 a 0 1e3\n.op\n.end\n",
}


@pytest.mark.ngspice
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(FOREIGN))
def test_run_deck_refuses_cards_xbarlab_does_not_write(ngspice, tmp_path, backend, case):
    marker = tmp_path / "marker"
    with pytest.raises(ValueError, match="deck"):
        run_deck(FOREIGN[case].format(m=marker), NgspiceSettings(backend=backend, timeout_s=30))
    assert not marker.exists()


def test_every_deck_xbarlab_writes_passes_the_check():
    from xbarlab.netlist import dac_divider_netlist, dac_netlist

    rng = np.random.default_rng(7)
    G = 10 ** rng.uniform(-6, -4, (3, 4))
    G[1, 2] = 0.0
    circuits = [xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0),
                xb.CircuitParams(r_row=0.0, r_col=1e-2, r_sense=0.0, r_driver=[0.0, 1.0, 1e4])]
    for c in circuits:
        check_deck(xb.netlist(G, [0.2, -0.1, 0.0], c))
        for r_pd, sinh_b in ((0.0, 0.0), (1e3, 0.0), (2e3, 3.0)):
            dac = xb.DACParams(bits=4, v_read=0.25, r_pd=r_pd)
            check_deck(dac_netlist(G, np.array([0, 7, 15]), c, dac, sinh_b))
    dac = xb.DACParams(bits=4, v_read=0.25, r_pd=1e3)
    for code in (0, 7, 15):  # R_DAC open, finite, zero (output tied to v_read)
        check_deck(dac_divider_netlist(dac, code, 3.2e3))
