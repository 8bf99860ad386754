"""The one ngspice adapter: runs an xbarlab deck and returns its vectors by name.

Two back ends:

* ``"subprocess"`` (default): ``ngspice -b -n -r out.raw deck.cir`` in a
  private temporary directory, with a hard timeout (the process is killed),
  full double precision through the binary rawfile, and isolation: a crash or
  a hang in ngspice cannot take the Python process with it, and runs can go
  in parallel processes. On Linux ngspice dies with the process that started
  it, even by ``kill -9`` (``xbarlab.lifetime.dies_with_parent``).
* ``"shared"``: libngspice through PySpice, in a helper process kept alive
  between runs (``ngspice_shared``): it saves ngspice's start per run, and a
  timeout or a crash ends only the helper.

ngspice runs only what xbarlab wrote: ``run_deck`` refuses any deck with a
card that ``xbarlab.netlist`` does not write (``check_deck``: no
``.control``, ``.include``, ``.lib``, ``shell``, parameters or scale
suffixes), and neither back end lets ngspice read a user's startup file
(``.spiceinit``, ``$SPICE_USERINIT_DIR``, ``$SPICE_SCRIPTS``): see
``xbarlab/engines/README.md``. The executable is found lazily
(``XBARLAB_NGSPICE`` or ``PATH``), never at import time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import INSTALL_HINT, NgspiceNotFoundError, SpiceError, SpiceTimeoutError
from ..lifetime import dies_with_parent, run_folder
from ..params import check_number
from .rawfile import read_raw

BACKENDS = ("subprocess", "shared")
MAX_TIMEOUT_S = 1e6  # about 11 days; subprocess's wait cannot take 1e9 s (OverflowError: timeout is too large)
_ERROR_PAT = re.compile(r"(error|singular|no convergence|timestep too small|failed|unknown|abort)", re.I)
_IGNORED_PAT = re.compile(r"(no compatibility mode selected|no \.plot, \.print, or \.fourier)", re.I)


@dataclass(frozen=True)
class NgspiceSettings:
    """Numerical and execution settings of the ngspice engine (not physics).

    Attributes:
        backend: ``"subprocess"`` (default) or ``"shared"`` (libngspice through PySpice, in helper processes).
        timeout_s: wall-clock limit of one run, seconds, in (0, 1e6] (a shared helper's start is not counted).
        executable: ngspice executable; ``None`` means ``$XBARLAB_NGSPICE`` or ``ngspice`` on PATH.
    """

    backend: str = "subprocess"
    timeout_s: float = 120.0
    executable: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        t = check_number("timeout_s", self.timeout_s, "seconds")
        if not 0 < t <= MAX_TIMEOUT_S:
            raise ValueError(f"timeout_s must be a number > 0 and <= {MAX_TIMEOUT_S:g} seconds, got {self.timeout_s!r}")
        object.__setattr__(self, "timeout_s", t)
        if self.executable is not None and not isinstance(self.executable, str):
            raise ValueError(f"executable must be a path string or None, got {self.executable!r}")


def find_ngspice(settings: NgspiceSettings = NgspiceSettings()) -> str:
    """Path of the ngspice executable, or NgspiceNotFoundError with the install hint."""
    exe = settings.executable or os.environ.get("XBARLAB_NGSPICE") or "ngspice"
    path = shutil.which(exe)
    if path is None:
        raise NgspiceNotFoundError(INSTALL_HINT)
    return os.path.abspath(path)  # ngspice runs in its own temporary folder: a relative path would miss it


# The cards xbarlab.netlist writes, and nothing else. Lower-case names, numbers
# without scale suffixes (SPICE reads M as milli), no braces, parameters,
# continuation lines or dot commands beyond these. A comment is "*" or "* "
# and printable text without a backslash ("*#" and "*ng_script" are commands).
_NAME = r"[a-z0-9_]*"
_NODE = r"[a-z0-9_]+"
_NUM = r"[+-]?[0-9]+(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?"
_VOLT = rf"(?:v\({_NODE}\)|0)"
_COMMENT = re.compile(r"\*(?: [ -\[\]-~]*)?")
_PARAM = r"[a-z][a-z0-9_]*"
_CARDS = re.compile("|".join((
    _COMMENT.pattern,
    rf"\.options numdgt=[0-9]+(?: (?:reltol|vntol|abstol)={_NUM})*",
    r"\.op",
    rf"r{_NAME} {_NODE} {_NODE} {_NUM}",
    rf"v{_NAME} {_NODE} {_NODE} dc {_NUM}",
    rf"b{_NAME} {_NODE} {_NODE} i={_NUM}\*sinh\({_NUM}\*\({_VOLT}-{_VOLT}\)\)",
    # 1T-1R decks (xbarlab.netlist_1t1r): the access nmos, its model re-written from a validated card
    # (xbarlab.cards: numbers only), and the one-transistor sweep of the solver's table
    rf"m{_NAME} {_NODE} {_NODE} {_NODE} {_NODE} {_PARAM} w={_NUM} l={_NUM}",
    rf"\.model {_PARAM} nmos level=54",
    rf"\+(?: {_PARAM}={_NUM})+",
    rf"\.dc v{_NAME} {_NUM} {_NUM} {_NUM}(?: v{_NAME} {_NUM} {_NUM} {_NUM})?",
)))


def check_deck(deck: str) -> str:
    """Return ``deck`` if it holds only cards that ``xbarlab.netlist`` writes; else ValueError.

    The first line is a comment (ngspice's title line), then comments,
    ``.options numdgt=N`` (optionally with reltol/vntol/abstol numbers),
    ``r``/``v``/``b`` element cards in the writer's exact form, the 1T-1R
    cards (``m`` elements, one ``.model ... nmos level=54`` with ``+``
    lines of name=number right after it, a two-source ``.dc``), ``.op``, and ``.end`` as
    the last line (blank lines may follow). Anything else, ``.control``, ``shell``, ``.include`` and
    ``.lib`` among them, is refused before ngspice sees it.
    """
    if not isinstance(deck, str):
        raise ValueError(f"deck must be a str, got {type(deck).__name__}")
    lines = deck.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines or not _COMMENT.fullmatch(lines[0]):
        first = lines[0] if lines else ""
        raise ValueError(f"deck line 1 must be a '* ' comment title, got {first[:80]!r}")
    if lines[-1] != ".end":
        raise ValueError(f"deck must end with '.end', got {lines[-1][:80]!r}")
    for k, line in enumerate(lines[1:-1], start=2):
        if line and not _CARDS.fullmatch(line):
            raise ValueError(
                f"deck line {k} is not a card xbarlab writes, refused: {line[:80]!r} "
                "(run_deck runs only comments, r/v/b elements, .options numdgt, .op and .end)")
        # a '+' line continues the card before it: only the model's parameters are written that way
        # (an '+ m=1e3' after a resistor or '+ rshunt=1e2' after .options would change the circuit)
        if line.startswith("+") and not lines[k - 2].startswith((".model ", "+")):
            raise ValueError(
                f"deck line {k} continues a card that is not a .model, refused: {line[:80]!r} "
                f"(after {lines[k - 2][:80]!r})")
    return deck


def run_deck(deck: str, settings: NgspiceSettings = NgspiceSettings()) -> dict[str, np.ndarray]:
    """Run one xbarlab deck (``.op``) and return {vector name: values} from ngspice.

    The deck is checked first (``check_deck``): a deck with any card that
    ``xbarlab.netlist`` does not write raises ValueError and never runs.
    """
    if not isinstance(settings, NgspiceSettings):  # e.g. ngspice="shared" for NgspiceSettings(backend="shared")
        raise ValueError(f"ngspice settings must be an xbarlab.NgspiceSettings, got {type(settings).__name__} "
                         f"{settings!r:.80}")
    check_deck(deck)
    if settings.backend == "shared":
        return _run_shared(deck, settings)
    return _run_subprocess(deck, settings)


def clean_env(home: str) -> dict[str, str]:
    """The environment ngspice runs in: ours without ``SPICE_*``/``NGSPICE_*``, ``HOME`` = ``home``.

    ngspice reads ``$SPICE_SCRIPTS/spinit`` and ``$SPICE_USERINIT_DIR/.spiceinit``
    at start (even with ``-n`` for the former), so those variables are removed;
    ``PySpice``'s own ``NGSPICE_LIBRARY_PATH`` (where libngspice is) is kept.
    """
    keep = {"NGSPICE_LIBRARY_PATH"}
    env = {k: v for k, v in os.environ.items()
           if k in keep or not k.upper().startswith(("SPICE_", "NGSPICE_"))}
    env.pop("USERPROFILE", None)
    env["HOME"] = home
    return env


def _check_log(log: str, rc: int | None) -> None:
    bad = [ln for ln in log.splitlines() if _ERROR_PAT.search(ln) and not _IGNORED_PAT.search(ln)]
    if rc not in (0, None) or bad:
        first = bad[0].strip() if bad else f"ngspice exited with status {rc}"
        raise SpiceError(f"ngspice failed: {first}", log=_tail(log))


def _tail(text: str, n: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _run_subprocess(deck: str, settings: NgspiceSettings) -> dict[str, np.ndarray]:
    exe = find_ngspice(settings)
    with run_folder("xbarlab-ngspice-") as tmp:
        cir = Path(tmp) / "deck.cir"
        raw = Path(tmp) / "out.raw"
        cir.write_text(deck)
        try:
            proc = subprocess.run(
                [exe, "-b", "-n", "-r", str(raw), str(cir)],  # -n: no .spiceinit
                cwd=tmp,
                env=clean_env(tmp),
                capture_output=True,
                text=True,
                timeout=settings.timeout_s,
                stdin=subprocess.DEVNULL,
                preexec_fn=dies_with_parent(),  # (a sweep worker killed with kill -9 left it running)
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or ""  # bytes on timeout, even with text=True
            if isinstance(out, bytes):
                out = out.decode("utf-8", "replace")
            raise SpiceTimeoutError(f"ngspice timed out after {settings.timeout_s} s", log=_tail(out)) from None
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
    except ImportError as exc:  # not a POSIX system (pwd, select on pipes)
        raise NgspiceNotFoundError(f"{INSTALL_HINT} (the shared back end could not load: {exc})") from None
    return ngspice_shared.run(deck, settings.timeout_s, _check_log, _tail)
