"""The two converter stages every FCM plan shares: the row DACs' codes and the column ADC.

* ``dac_codes_t``: DAC codes of transposed inputs x^T (K, R), both phases of
  signed inputs side by side (K, 2R), and each input vector's scale; the
  fused ``cpu_kernels.dac_codes`` runs the same operations in one pass;
* ``adc_codes``: the column ADC on inputs already in its units (LSB, or a
  fraction of full scale with INL), rounded and clipped in place (then each
  column's digital gain when it has its own full scale);
* ``check_exact_codes``: both stages compute codes in the inputs' dtype, so a
  dtype that does not hold every code of a converter as an exact integer is
  refused (float32 holds the integers up to 2**24 only: a unipolar converter
  of more than 24 bits, a bipolar ADC of more than 25). Beyond that its codes
  were rounded (measured at 26 bits: DAC codes up to 3 codes off, the top
  code 2**26 - 1 read as 2**26, beyond the range), so they were not the
  converter's codes.

What lies between them (the DAC load, the tile products) and after them
(the accumulation) is a plan's (``xbarlab.fcm.plans``).
"""

from __future__ import annotations

import math

import numpy as np

from ..peripherals.adc import ADCParams
from ..peripherals.dac import DACParams
from . import cpu_kernels


#: the largest integer n such that every integer of magnitude <= n is exact in float32 (float64: 2**53,
#: beyond any converter's codes: bits <= 32)
FLOAT32_EXACT = 2**24


def check_exact_codes(ns, name: str, bits: int, top: int) -> None:
    """ValueError naming ``name`` (the converter: "DAC", "ADC"), its ``bits`` and the dtype unless every
    integer code of magnitude up to ``top`` (2**bits - 1 unipolar, 2**(bits - 1) for the bipolar ADC) is
    exact in ``ns``'s dtype (float32: up to 2**24; float64 holds them all)."""
    if top <= FLOAT32_EXACT or not isinstance(ns.scalar(0.0), np.float32):
        return
    most = int(math.log2(FLOAT32_EXACT)) + (top != 2**bits - 1)  # (the bipolar ADC's sign takes a bit)
    raise ValueError(f"the {bits}-bit {name}'s codes (up to {top}) are not exact integers in float32, which holds "
                     f"every integer only up to 2**24: its codes would be rounded (the top one read as "
                     f"{float(np.float32(top)):.0f}); give float64 inputs, or {'an' if name == 'ADC' else 'a'} "
                     f"{name} of at most {most} bits")


def converter_codes(spec, sensing) -> list:
    """(name, bits, largest code magnitude) of ``spec``'s DAC and, unless ideal, its ADC under ``sensing``
    (a ``Sensing``: the separate ADC's codes reach 2**bits - 1, the bipolar ADC of a difference 2**(bits - 1))."""
    dac, adc = spec.dac, spec.adc
    out = [("DAC", dac.bits, dac.full_code)]
    if adc.bits is not None:
        out.append(("ADC", adc.bits, adc.full_code if sensing.value == "separate" else 2 ** (adc.bits - 1)))
    return out


def check_spec_codes(ns, spec, sensing) -> None:
    """``check_exact_codes`` of every converter of ``converter_codes(spec, sensing)``."""
    for name, bits, top in converter_codes(spec, sensing):
        check_exact_codes(ns, name, bits, top)


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
    A dtype that does not hold the codes exactly (float32 beyond 24 bits) raises (``check_exact_codes``).
    """
    check_exact_codes(ns, "DAC", dac.bits, dac.full_code)
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
