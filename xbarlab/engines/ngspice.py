"""The one ngspice adapter: runs a deck and returns its vectors by name.

Two back ends:

* ``"subprocess"`` (default): ``ngspice -b -r out.raw deck.cir`` in a private
  temporary directory, with a hard timeout (the process is killed), full
  double precision through the binary rawfile, and isolation: a crash or a
  hang in ngspice cannot take the Python process with it, and runs can go in
  parallel processes.
* ``"shared"``: libngspice through PySpice, in process. It saves the process
  start (a few ms) per run but is a process-wide singleton, so it is neither
  thread-safe nor killable; the timeout halts the background thread.

The executable is found lazily (``XBARLAB_NGSPICE`` or ``PATH``), never at
import time. Decks come only from ``xbarlab.netlist``; this module adds no
control block, so nothing in a deck can run a shell command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import INSTALL_HINT, NgspiceNotFoundError, SpiceError
from .rawfile import read_raw

BACKENDS = ("subprocess", "shared")
_ERROR_PAT = re.compile(r"(error|singular|no convergence|timestep too small|failed|unknown|abort)", re.I)
_IGNORED_PAT = re.compile(r"(no compatibility mode selected|no \.plot, \.print, or \.fourier)", re.I)


@dataclass(frozen=True)
class NgspiceSettings:
    """Numerical and execution settings of the ngspice engine (not physics).

    Attributes:
        backend: ``"subprocess"`` (default) or ``"shared"`` (PySpice/libngspice).
        timeout_s: wall-clock limit of one run, seconds.
        executable: ngspice executable; ``None`` means ``$XBARLAB_NGSPICE`` or ``ngspice`` on PATH.
    """

    backend: str = "subprocess"
    timeout_s: float = 120.0
    executable: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if not (self.timeout_s > 0 and np.isfinite(self.timeout_s)):
            raise ValueError(f"timeout_s must be a finite number > 0 seconds, got {self.timeout_s!r}")


def find_ngspice(settings: NgspiceSettings = NgspiceSettings()) -> str:
    """Path of the ngspice executable, or NgspiceNotFoundError with the install hint."""
    exe = settings.executable or os.environ.get("XBARLAB_NGSPICE") or "ngspice"
    path = shutil.which(exe)
    if path is None:
        raise NgspiceNotFoundError(INSTALL_HINT)
    return path


def run_deck(deck: str, settings: NgspiceSettings = NgspiceSettings()) -> dict[str, np.ndarray]:
    """Run one deck (``.op``) and return {vector name: values} from ngspice."""
    if settings.backend == "shared":
        return _run_shared(deck, settings)
    return _run_subprocess(deck, settings)


def _check_log(log: str, rc: int | None) -> None:
    bad = [ln for ln in log.splitlines() if _ERROR_PAT.search(ln) and not _IGNORED_PAT.search(ln)]
    if rc not in (0, None) or bad:
        first = bad[0].strip() if bad else f"ngspice exited with status {rc}"
        raise SpiceError(f"ngspice failed: {first}", log=_tail(log))


def _tail(text: str, n: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _run_subprocess(deck: str, settings: NgspiceSettings) -> dict[str, np.ndarray]:
    exe = find_ngspice(settings)
    with tempfile.TemporaryDirectory(prefix="xbarlab-ngspice-") as tmp:
        cir = Path(tmp) / "deck.cir"
        raw = Path(tmp) / "out.raw"
        cir.write_text(deck)
        try:
            proc = subprocess.run(
                [exe, "-b", "-r", str(raw), str(cir)],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=settings.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            raise SpiceError(
                f"ngspice timed out after {settings.timeout_s} s", log=str(out)[-4000:]
            ) from None
        except FileNotFoundError:
            raise NgspiceNotFoundError(INSTALL_HINT) from None
        log = proc.stdout + "\n" + proc.stderr
        _check_log(log, proc.returncode)
        if not raw.exists() or raw.stat().st_size == 0:
            raise SpiceError("ngspice wrote no results", log=_tail(log))
        return read_raw(raw.read_bytes())


def _run_shared(deck: str, settings: NgspiceSettings) -> dict[str, np.ndarray]:
    try:
        from PySpice.Spice.NgSpice.Shared import NgSpiceShared
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise NgspiceNotFoundError(f"{INSTALL_HINT} (PySpice import failed: {exc})") from None
    try:
        ng = NgSpiceShared.new_instance()
    except Exception as exc:  # OSError from ctypes when libngspice is missing
        raise NgspiceNotFoundError(f"{INSTALL_HINT} (libngspice: {exc})") from None
    ng.clear_output()
    ng.remove_circuit()
    ng.destroy()
    lines = [ln for ln in deck.splitlines() if ln.strip()]
    ng.load_circuit("\n".join(lines))
    ng.run(background=True)
    start = time.monotonic()
    while ng.is_running():
        if time.monotonic() - start > settings.timeout_s:
            ng.halt()
            raise SpiceError(f"ngspice (shared) timed out after {settings.timeout_s} s", log=ng.stdout)
        time.sleep(0.001)
    log = ng.stdout + "\n" + ng.stderr
    _check_log(log, None)
    name = ng.last_plot
    if not name or name == "const":
        raise SpiceError("ngspice (shared) produced no plot", log=_tail(log))
    plot = ng.plot(None, name)
    out = {}
    for key, vec in plot.items():
        k = key.lower()
        if k.endswith("#branch"):
            k = f"i({k[:-7]})"
        elif not k.startswith(("v(", "i(")):
            k = f"v({k})"
        out[k] = np.real(np.asarray(vec._data, dtype=complex if np.iscomplexobj(vec._data) else float)).ravel()
    return out
