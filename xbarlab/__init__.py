"""xbarlab: crossbar non-idealities for DNNs, verified against ngspice.

``import xbarlab`` stays light: numpy and scipy only. PySpice, pandas,
matplotlib and torch are imported where they are used.
"""

from __future__ import annotations

from .api import g_nonideal, g_nonideal_stack, simulate, solve
from .engines.ngspice import NgspiceSettings
from .engines.result import SolveResult
from .errors import NgspiceNotFoundError, SpiceError, XbarlabError
from .netlist import netlist
from .params import CircuitParams

__version__ = "0.1.0"

__all__ = [
    "CircuitParams",
    "NgspiceSettings",
    "NgspiceNotFoundError",
    "SolveResult",
    "SpiceError",
    "XbarlabError",
    "g_nonideal",
    "g_nonideal_stack",
    "netlist",
    "simulate",
    "solve",
]
