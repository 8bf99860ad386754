"""Exceptions raised by xbarlab."""

from __future__ import annotations


class XbarlabError(Exception):
    """Base class of xbarlab's own errors."""


class SpiceError(XbarlabError):
    """ngspice failed: it rejected the deck, did not converge, or timed out.

    ``log`` holds the tail of ngspice's own output so that the cause is never
    lost; ``str(err)`` includes it.
    """

    def __init__(self, message: str, log: str = "") -> None:
        self.log = log
        tail = log.strip()
        super().__init__(f"{message}\n--- ngspice output (tail) ---\n{tail}" if tail else message)


class SpiceTimeoutError(SpiceError):
    """ngspice did not finish within its timeout (``NgspiceSettings.timeout_s``) and was stopped."""


class NgspiceNotFoundError(SpiceError):
    """No ngspice executable or shared library could be found."""


INSTALL_HINT = (
    "ngspice was not found. Install it with: "
    "sudo apt-get install ngspice libngspice0-dev  (Debian/Ubuntu), "
    "or set XBARLAB_NGSPICE to the path of the ngspice executable."
)
