"""Option checks shared by the ``xbarlab`` subcommands.

Every number an option takes is bounded here, so that a zero, a negative or
an absurd value fails at once with one line naming the option
(``xbarlab validate: error: argument --vectors: ...``), before anything
heavy is imported or computed. The caps are documented in each option's
help; they keep a typo from exhausting memory or crashing a library.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

SEED_MAX = 2**63 - 1  # numpy and torch both take seeds in 0 .. 2**63 - 1


def cpu_count() -> int:
    return os.cpu_count() or 1


def int_in(lo: int, hi: int, what: str = "an integer"):
    """An argparse type: an integer in lo..hi (inclusive)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} in {lo}..{hi}, got {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"expected {what} in {lo}..{hi}, got {v}")
        return v

    parse.__name__ = what  # argparse names the type in its own messages
    return parse


def float_in(interval: str, name: str, what: str, unit: str = ""):
    """An argparse type: a number in ``interval``, written as it is shown (``"[0, 5]"``, ``"(0, 1e6]"``,
    ``"[0, 10)"``: a round bracket leaves its end out). ``what`` names the expected text (``"a gate
    voltage in volt"``), ``name`` the quantity in the range message, ``unit`` follows the interval."""
    lo_text, hi_text = interval[1:-1].split(",")
    lo, hi = float(lo_text), float(hi_text)
    lo_open, hi_open = interval[0] == "(", interval[-1] == ")"
    shown = f"{interval}{' ' + unit if unit else ''}"

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ((v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)):
            raise argparse.ArgumentTypeError(f"{name} must be in {shown}, got {v}")
        return v

    parse.__name__ = what  # argparse names the type in its own messages
    return parse


def seed(text: str) -> int:
    """An argparse type: a seed in 0 .. 2**63 - 1."""
    return int_in(0, SEED_MAX, "a seed")(text)


def threads(text: str) -> int:
    """An argparse type: a thread count in 1 .. this machine's CPU count."""
    return int_in(1, cpu_count(), "a thread count (at most this machine's CPU count)")(text)


def check_out_dir(path, option: str = "--out") -> Path:
    """Create ``path`` if needed and prove it writable by writing a probe file, before any computing.

    ValueError naming ``option`` and the path when it cannot be written.
    """
    if not str(path).strip():  # (Path("") is the current folder: an empty option value is a mistake)
        raise ValueError(f"{option} must name a folder, got {str(path)!r}")
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".xbarlab-write-check-"):
            pass
    except OSError as exc:
        raise ValueError(f"{option} {str(p)!r} is not a writable folder: {exc.strerror or exc}") from None
    return p
