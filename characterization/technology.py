"""The hardware of the sensitivity studies: one preset, its non-ideality groups, random states and inputs.

Every hardware value (device, wire, sense, driver, DAC) comes from the
preset ``PRESET`` in ``xbarlab/presets/`` (``rxnn-spintronic``: the RxNN
paper's setup; each value there carries its source, or an ASSUMED/DERIVED
mark with the reason). This module holds none of its own: it turns a
``CrossbarSpec`` into the circuits the figures solve, through the library
(``xbarlab.spec.group``, ``DACParams.thevenin_rows``,
``DeviceParams.random_state`` and ``DeviceParams.sample``).

Groups (Sec. IV-B, Fig. 2(b)/(c)): each keeps only its own non-idealities
and sets every other one to ideal (``xbarlab.spec.group``). The DAC+DRIVER
group (and ALL) drives each row by the DAC's Thevenin source, V_th(code)
behind r_driver + R_th(code), which is exact for the divider DAC.

The ideal output is ``I_ideal = V_ideal(code) @ G`` and the error of column j
is ``(I_ideal[j] - I_nonideal[j]) / I_ideal[j]`` (positive: the crossbar
delivers less current than ideal).
"""

from __future__ import annotations

import numpy as np

from xbarlab.params import CircuitParams
from xbarlab.spec import GROUPS, CrossbarSpec, group, load_preset

PRESET = "rxnn-spintronic"
STRONG_DAC = "strong-dac"  # the preset's variant with a strong DAC load (its R_PD and source are in the preset file)
ERROR_DEFINITION = "(I_ideal - I_nonideal) / I_ideal per column"

__all__ = ["PRESET", "STRONG_DAC", "GROUPS", "ERROR_DEFINITION", "default_spec", "group_circuit", "column_error",
           "random_codes", "random_state"]


def default_spec() -> CrossbarSpec:
    """The studies' preset, at its own size."""
    return load_preset(PRESET)


def group_circuit(spec: CrossbarSpec, name: str, codes) -> tuple[np.ndarray, CircuitParams]:
    """Row voltages (V) and circuit (ohm) of group ``name`` of ``spec`` for DAC input ``codes`` (one per row).

    The row sources are the DAC's unloaded outputs V_th(code) in every group
    (V_th equals the ideal input); only DAC+DRIVER and ALL keep R_PD, so only
    they put the DAC's Thevenin resistance (and the driver) in series with
    each row.
    """
    g = group(spec, name)
    return g.dac.thevenin_rows(g.circuit, codes)


def column_error(i_ideal, i_nonideal) -> np.ndarray:
    """The studies' error: (I_ideal - I_nonideal) / I_ideal, elementwise (per column)."""
    i_ideal = np.asarray(i_ideal, dtype=float)
    return (i_ideal - np.asarray(i_nonideal, dtype=float)) / i_ideal


def random_codes(rng: np.random.Generator, m: int, spec: CrossbarSpec, low: int = 1) -> np.ndarray:
    """Random DAC codes in [low, full] (code 0 would give a zero ideal input)."""
    return rng.integers(low, spec.dac.full_code + 1, size=m).astype(float)


def random_state(rng: np.random.Generator, m: int, n: int, spec: CrossbarSpec) -> np.ndarray:
    """A random crossbar state (S): each cell on a uniformly drawn level of the preset's device."""
    return spec.device.random_state(rng, (m, n))
