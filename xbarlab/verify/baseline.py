"""A simple MNSIM-style error model: the RxNN paper's Fig. 10 baseline.

The output of every column is the ideal output scaled by one constant:

    I = (1 - eps) * (V_ideal @ G),    V_ideal = v_read * code / full,

with eps independent of the inputs, the crossbar state and the column, as
in MNSIM's average-case error model (Xia et al., DATE 2016 / TCAD 2018). eps
is fitted by least squares on reference (ngspice) outputs of training
samples for one crossbar size.
"""

from __future__ import annotations

import numpy as np

from ..spec import CrossbarSpec
from .metrics import check_currents


def ideal_currents(G: np.ndarray, codes: np.ndarray, spec: CrossbarSpec) -> np.ndarray:
    """V_ideal @ G (A): unloaded DAC, no parasitics; codes (B, M) -> (B, N)."""
    return spec.dac.v_ideal(np.atleast_2d(codes)) @ np.asarray(G, dtype=float)


def fit_eps(I_ideal: np.ndarray, I_ref: np.ndarray) -> float:
    """Least-squares eps of I_ref ~ (1 - eps) I_ideal.

    ValueError when the two differ in shape (a broadcast would fit eps to other columns), hold a
    non-finite current, or I_ideal is all zero (every DAC code 0: nothing determines eps)."""
    I_ideal, I_ref = check_currents("I_ideal", I_ideal), check_currents("I_ref", I_ref)
    if I_ideal.shape != I_ref.shape:
        raise ValueError(f"I_ideal and I_ref must have one shape, got {I_ideal.shape} and {I_ref.shape}")
    den = float(np.sum(I_ideal * I_ideal))
    if not den > 0:
        raise ValueError("I_ideal is all zero (every DAC code 0): the training samples do not determine eps")
    return 1.0 - float(np.sum(I_ref * I_ideal)) / den


def baseline_currents(G: np.ndarray, codes: np.ndarray, spec: CrossbarSpec, eps: float) -> np.ndarray:
    return (1.0 - eps) * ideal_currents(G, codes, spec)
