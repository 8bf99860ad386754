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
            out = exc.stdout or ""  # bytes on timeout, even with text=True
            if isinstance(out, bytes):
                out = out.decode("utf-8", "replace")
            raise SpiceError(f"ngspice timed out after {settings.timeout_s} s", log=_tail(out)) from None
        except FileNotFoundError:
            raise NgspiceNotFoundError(INSTALL_HINT) from None
        log = proc.stdout + "\n" + proc.stderr
        _check_log(log, proc.returncode)
        if not raw.exists() or raw.stat().st_size == 0:
            raise SpiceError("ngspice wrote no results", log=_tail(log))
        return read_raw(raw.read_bytes())


def _run_shared(deck: str, settings: NgspiceSettings) -> dict[str, np.ndarray]:
    try:
        from . import ngspice_shared
    except ImportError as exc:  # PySpice missing or broken
        raise NgspiceNotFoundError(f"{INSTALL_HINT} (PySpice import failed: {exc})") from None
    return ngspice_shared.run(deck, settings.timeout_s, _check_log, _tail)
