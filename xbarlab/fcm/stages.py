"""The two converter stages every FCM plan shares: the row DACs' codes and the column ADC.

* ``dac_codes_t``: DAC codes of transposed inputs x^T (K, R), both phases of
  signed inputs side by side (K, 2R), and each input vector's scale; the
  fused ``cpu_kernels.dac_codes`` runs the same operations in one pass;
* ``adc_codes``: the column ADC on inputs already in its units (LSB, or a
  fraction of full scale with INL), rounded and clipped in place (then each
  column's digital gain when it has its own full scale).

What lies between them (the DAC load, the tile products) and after them
(the accumulation) is a plan's (``xbarlab.fcm.plans``).
"""

from __future__ import annotations

import numpy as np

from ..peripherals.adc import ADCParams
from ..peripherals.dac import DACParams
from . import cpu_kernels


def dac_codes_t(ns, XT, dac: DACParams, x_max: float | None, signed: bool | None, fused: bool = False):
    """DAC codes (K, P*R) of transposed inputs XT (K, R), both phases side by side, and the scale (1, R)
    (the fixed ``x_max`` when given).

    ``signed`` (True/False) is the caller's knowledge of whether x has
    negative entries; None tests it (one reduction). Non-negative columns
    take their scale from the column maximum, signed ones from the column
    maximum of |x|. A vector's negative phase of all-zero codes contributes
    exactly zero (not converted where the ADC reads an offset at 0 A,
    ``Plan._finish``), so forcing two phases (signed=True) changes nothing but the time.
    ``fused``: the same steps in one kernel (``cpu_kernels.dac_codes``; host memory only).
    """
    full = float(dac.full_code)
    if signed is not None and not isinstance(signed, (bool, np.bool_)):  # ("no" read as True)
        raise ValueError(f"signed must be None, True or False, got {signed!r}")
    neg = ns.any_negative(XT) if signed is None else bool(signed)
    if fused:
        K, R = XT.shape
        c = ns.empty((K, 2 * R if neg else R))
        s = ns.empty((1, R))
        xm = ns.scalar(0.0 if x_max is None else x_max)  # 0: per-column scale
        cpu_kernels.kernels().dac_codes(ns.np(XT), ns.scalar(full), neg, xm, ns.np(c), ns.np(s)[0])
        return c, (s if x_max is None else x_max)
    if x_max is None:
        s = ns.col_absmax(XT) if neg else ns.col_max(XT)
        s = ns.where(s > 0, s, s * 0 + 1.0)
    else:
        s = x_max
    xf = XT / s  # a new array: the steps below work in place on it (or on the two phases)
    c = ns.cat([xf, -xf], 1) if neg else xf
    ns.mul_(c, full)
    ns.round_(c)
    if neg or x_max is not None or signed is False:  # (signed=False: a negative entry reads as code 0)
        ns.clip_(c, 0.0, full)
    # else x >= 0 was tested and 0 <= x <= s (its column's maximum), so 0 <= x / s * full <= full
    # already (IEEE division and multiplication are monotonic and exact at 1): the clip is a no-op
    return c, s


def adc_codes(ns, I, adc: ADCParams, clip: bool = True, gain=None):
    """The column ADC on inputs already in its units (LSB, or fraction of full scale with INL), in place.

    ``clip=False`` only where the input provably lies in [0, full] (``compile.compile_plan`` says when).
    ``gain`` (broadcasting over I): each column's ADC full scale over its tile's, a digital gain on its
    codes after the ADC (ranges calibrated per column, ``compile.compile_plan``); None: 1, nothing done."""
    if adc.bits is None:
        return I if gain is None else ns.mul_(I, gain)
    full = float(adc.full_code)
    if adc.inl_lsb:
        I = I * full + adc.inl(I, ns)
    ns.round_(I)
    if clip:
        ns.clip_(I, 0.0, full)
    return I if gain is None else ns.mul_(I, gain)
