"""xbarlab: crossbar non-idealities for DNNs, verified against ngspice.

``import xbarlab`` stays light: numpy and scipy only. PySpice, pandas,
matplotlib and torch are imported where they are used.
"""

from __future__ import annotations

from .api import g_nonideal, g_nonideal_stack, simulate, solve
from .device import DeviceParams, VariationKind
from .engines.ngspice import NgspiceSettings
from .engines.nonlinear import NewtonConvergenceError, SinhCells, cells_for_device
from .engines.result import SolveResult
from .errors import NgspiceNotFoundError, SpiceError, SpiceTimeoutError, XbarlabError
from .netlist import netlist
from .params import CircuitParams
from .peripherals.adc import ADCParams
from .peripherals.dac import DACParams
from .spec import CrossbarSpec, load_preset, preset_names
from .update import UpdateParams
from .fcm import FCM, DacLoad, FCMOptions, Mapping

__version__ = "0.1.0"

__all__ = [
    "ADCParams",
    "CircuitParams",
    "CrossbarSpec",
    "DACParams",
    "DacLoad",
    "DeviceParams",
    "FCM",
    "FCMOptions",
    "Mapping",
    "VariationKind",
    "load_preset",
    "preset_names",
    "NgspiceSettings",
    "NewtonConvergenceError",
    "SinhCells",
    "cells_for_device",
    "NgspiceNotFoundError",
    "SolveResult",
    "SpiceError",
    "SpiceTimeoutError",
    "UpdateParams",
    "XbarlabError",
    "g_nonideal",
    "g_nonideal_stack",
    "netlist",
    "simulate",
    "solve",
]
