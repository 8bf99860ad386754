"""The ``shared`` back end of the ngspice adapter: libngspice through PySpice.

Imported only when that back end is chosen (it imports PySpice). libngspice
is one instance per process, so runs are serialized by the library itself;
each run loads its deck, runs ``.op`` in ngspice's background thread (so
that a timeout can halt it), reads the vectors by name, and then removes its
circuit and plots again.

Three defects of PySpice 1.5 are worked around in a subclass instead of
being patched: its background-thread callback returns ``None`` where C
expects an int (cffi then prints "Exception ignored" on every run); it reads
that callback's flag as "running" where libngspice passes "exited", so a run
seems to end as soon as it starts; and it logs every ngspice stderr line as
an error. Here ngspice's output is only collected and reported through
``SpiceError``; PySpice's own messages (such as "Unsupported Ngspice
version") go to the ``xbarlab.engines.ngspice_shared`` logger.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError, NgSpiceCommandError, NgSpiceShared, ffi

from ..errors import INSTALL_HINT, NgspiceNotFoundError, SpiceError

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())

HALT_WAIT_S = 10.0  # how long a halted run may take to stop, seconds


class _NgSpice(NgSpiceShared):
    """NgSpiceShared with a correct background-thread callback and quiet output."""

    _instances: dict = {}  # separate from PySpice's own registry
    _logger = _log

    def __init__(self, ngspice_id: int = 0, send_data: bool = False, verbose: bool = False) -> None:
        self.runs_finished = 0  # set before the callbacks are registered
        super().__init__(ngspice_id=ngspice_id, send_data=send_data, verbose=verbose)

    @staticmethod
    def _background_thread_running(exited, ngspice_id, user_data):
        # libngspice passes "the thread has exited": false when a bg_run
        # starts, true when it ends (not "is running", as PySpice assumes).
        self = ffi.from_handle(user_data)
        self._is_running = not exited
        if exited:
            self.runs_finished += 1
        return 0

    @staticmethod
    def _send_char(message_c, ngspice_id, user_data):
        self = ffi.from_handle(user_data)
        prefix, _, content = ffi.string(message_c).decode("utf-8", "replace").partition(" ")
        if prefix == "stderr":
            self._stderr.append(content)
            if not content.startswith("Warning:"):
                self._error_in_stderr = True
        else:
            self._stdout.append(content)
            if "error" in content.lower():
                self._error_in_stdout = True
        return 0


def _instance() -> _NgSpice:
    try:
        return _NgSpice.new_instance()
    except Exception as exc:  # OSError/cffi errors when libngspice is missing
        raise NgspiceNotFoundError(f"{INSTALL_HINT} (libngspice: {exc})") from None


def run(deck: str, timeout_s: float, check_log, tail) -> dict[str, np.ndarray]:
    """Run one ``.op`` deck in libngspice; return {vector name: values}.

    ``check_log(text, rc)`` raises ``SpiceError`` on an ngspice error in the
    log, and ``tail(text)`` shortens a log; both come from the adapter so
    that both back ends judge ngspice's output the same way.
    """
    ng = _instance()
    log: list[str] = []
    clean = True

    def output() -> str:
        return "\n".join(s for s in (ng.stdout, ng.stderr) if s)

    def command(cmd: str, *, cleanup: bool = False) -> None:
        try:
            ng.exec_command(cmd)
        except NgSpiceCommandError:
            log.append(output())
            if not cleanup:
                raise SpiceError(f"ngspice (shared) command {cmd!r} failed", log=tail("\n".join(log))) from None
            return
        log.append(output())

    try:
        try:
            ng.load_circuit(deck)
        except NgSpiceCircuitError:
            log.append(output())
            check_log("\n".join(log), None)
            raise SpiceError("ngspice (shared) rejected the deck", log=tail("\n".join(log))) from None
        log.append(output())
        check_log("\n".join(log), None)
        finished = ng.runs_finished
        command("bg_run")
        if not _wait(ng, finished, timeout_s):
            command("bg_halt", cleanup=True)
            if not _wait(ng, finished, HALT_WAIT_S):
                clean = False  # the thread still runs: freeing its circuit would crash
            raise SpiceError(f"ngspice (shared) timed out after {timeout_s} s", log=tail("\n".join(log)))
        log.append(output())
        text = "\n".join(log)
        check_log(text, None)
        name = ng.last_plot
        if not name or name == "const":
            raise SpiceError("ngspice (shared) produced no plot", log=tail(text))
        out = {}
        for key, vec in ng.plot(None, name).items():
            k = key.lower()
            if k.endswith("#branch"):
                k = f"i({k[:-len('#branch')]})"
            elif not k.startswith(("v(", "i(")):
                k = f"v({k})"
            out[k] = np.real(np.asarray(vec._data)).astype(float).ravel()
        return out
    finally:
        if clean:  # leave the library empty for the next run: no circuit, no plots
            command("remcirc", cleanup=True)
            command("destroy all", cleanup=True)


def _wait(ng: _NgSpice, finished: int, timeout_s: float) -> bool:
    """Wait until the background run that started after ``finished`` runs has ended."""
    start = time.monotonic()
    while ng.runs_finished == finished:
        if time.monotonic() - start > timeout_s:
            return False
        time.sleep(0.0002)
    return True
