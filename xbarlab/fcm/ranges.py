"""Converter ranges: how the ADC full scale and the DAC input full scale are set (small frozen strategies).

ADC full scale (``FCMOptions.adc_range``), per tile of the model:

* ``WorstCase()`` (the default, the FCM's behaviour before calibration
  existed): the largest column current with every row at full-scale input,
  unloaded (``v_read @ G_non-ideal``). Nothing ever clips, but with a low
  ON/OFF ratio most of the range carries the common-mode current of g_min.
* ``FixedRange(full_scale_a)``: one full-scale current for every ADC, ampere.
* ``CalibratedRange(percentile, per)``: with ``per="tile"`` (the default) one
  full scale per tile, the ``percentile`` of all that tile's column currents
  over a calibration batch (100: their maximum); with ``per="column"`` one per
  column ADC, the ``percentile`` of that column's currents alone (each column's
  ADC with its own reference, trimmed at calibration). The values are data of the FCM
  (``FCM.adc_full_scale_a``: (S, Tk, Tn) per tile, (S, Tk, Tn, Nc) per column),
  set by ``xbarlab.fcm.calibration.calibrate_adc``, which returns a new FCM. A
  model with this option and no data refuses to evaluate.

An ideal ADC (``ADCParams(bits=None)``) neither clips nor quantizes: its
output does not depend on the full scale (the FCM scales by it and back).
``FixedRange`` with it is refused (ValueError: the given full scale would be
ignored); ``WorstCase`` and ``CalibratedRange`` are accepted (a network-wide
rule, ``dnn_eval.calibration.ConverterRanges``, may meet ideal and real ADCs
alike), and y is the ideal ADC's under either, to rounding.

DAC input full scale (the value of |x| that maps to the full DAC code, per
layer; ``xbarlab.fcm.calibration.input_full_scale`` turns it into
``FCMOptions.x_max``):

* ``PerVector()``: every input vector scaled by its own largest magnitude
  (``x_max=None``). Optimistic: no real DAC rescales itself per vector
  (a dynamic range per im2col patch of every sample).
* ``FixedInput(x_max)``: a given full scale, in the inputs' units.
* ``CalibratedInput(percentile)``: the ``percentile`` of |x| over a
  calibration batch, fixed per layer, as static post-training quantization
  sets activation ranges (Jacob et al., CVPR 2018; percentile calibration as
  in TensorRT / torchao's static quantization).

Every class is frozen and validated; ``to_dict`` / ``range_from_dict`` round-trip through JSON.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


def _percentile(name: str, p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not (math.isfinite(p) and 0 < p <= 100):
        raise ValueError(f"{name}.percentile must be a number in (0, 100], got {p!r}")
    return float(p)


#: bounds of a fixed ADC full scale (ampere): far beyond any crossbar's column currents on both sides,
#: and within what float32 (the DNN layers' dtype) resolves: a current over the full scale stays finite
ADC_FULL_SCALE_BOUNDS_A = (1e-15, 1e3)
#: bounds of a fixed DAC input full scale (the inputs' units), for the same reason
X_MAX_BOUNDS = (1e-30, 1e30)


def _positive(name: str, v, unit: str = "", bounds: tuple[float, float] | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0{unit}, got {v!r}")
    if bounds is not None and not bounds[0] <= v <= bounds[1]:
        raise ValueError(f"{name} must be within [{bounds[0]:g}, {bounds[1]:g}]{unit} (float32 arithmetic "
                         f"resolves no more), got {v!r}")
    return float(v)


class _Strategy:
    """A frozen strategy dataclass named by ``kind``; ``to_dict`` is its kind and its fields."""

    kind = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, **dataclasses.asdict(self)}


class AdcRange(_Strategy):
    """How the ADC full scale is set (base class of ``WorstCase``, ``FixedRange``, ``CalibratedRange``)."""


@dataclass(frozen=True)
class WorstCase(AdcRange):
    """ADC full scale: every row at full-scale input (the largest column current, unloaded)."""

    kind = "worst-case"


@dataclass(frozen=True)
class FixedRange(AdcRange):
    """ADC full scale fixed at ``full_scale_a`` ampere (within ``ADC_FULL_SCALE_BOUNDS_A``) for every ADC."""

    full_scale_a: float
    kind = "fixed"

    def __post_init__(self) -> None:
        object.__setattr__(self, "full_scale_a", _positive("FixedRange.full_scale_a", self.full_scale_a, " ampere",
                                                            ADC_FULL_SCALE_BOUNDS_A))


#: what a calibrated ADC full scale is shared by: every column of a tile, or each column alone
CALIBRATION_UNITS = ("tile", "column")


@dataclass(frozen=True)
class CalibratedRange(AdcRange):
    """ADC full scale from a calibration batch (``calibration.calibrate_adc``): the ``percentile``
    (in (0, 100], 100 = max) of the column currents of each tile (``per="tile"``) or of each
    column alone (``per="column"``)."""

    percentile: float = 100.0
    per: str = "tile"
    kind = "calibrated"

    def __post_init__(self) -> None:
        object.__setattr__(self, "percentile", _percentile("CalibratedRange", self.percentile))
        if not isinstance(self.per, str) or self.per not in CALIBRATION_UNITS:
            raise ValueError(f"CalibratedRange.per must be one of {list(CALIBRATION_UNITS)} (one ADC range per "
                             f"tile, or per column), got {self.per!r}")


class InputRange(_Strategy):
    """How the DAC input full scale is set (base class of ``PerVector``, ``FixedInput``, ``CalibratedInput``)."""


@dataclass(frozen=True)
class PerVector(InputRange):
    """Each input vector scaled by its own max |x| (optimistic: no real DAC does this)."""

    kind = "per-vector"


@dataclass(frozen=True)
class FixedInput(InputRange):
    """DAC input full scale fixed at ``x_max`` (the inputs' units, within ``X_MAX_BOUNDS``)."""

    x_max: float
    kind = "fixed"

    def __post_init__(self) -> None:
        object.__setattr__(self, "x_max", _positive("FixedInput.x_max", self.x_max, "", X_MAX_BOUNDS))


@dataclass(frozen=True)
class CalibratedInput(InputRange):
    """DAC input full scale per layer: the ``percentile`` of |x| over a calibration batch."""

    percentile: float = 100.0
    kind = "calibrated"

    def __post_init__(self) -> None:
        object.__setattr__(self, "percentile", _percentile("CalibratedInput", self.percentile))


_ADC = {c.kind: c for c in (WorstCase, FixedRange, CalibratedRange)}
_DAC = {c.kind: c for c in (PerVector, FixedInput, CalibratedInput)}


def _from(table: dict, base, field: str, value):
    if isinstance(value, base):
        return value
    if isinstance(value, dict) and value.get("kind") in table:
        args = {k: v for k, v in value.items() if k != "kind"}
        try:
            return table[value["kind"]](**args)
        except TypeError:
            raise ValueError(f"{field} {value!r} has unknown fields for kind {value['kind']!r}") from None
    if isinstance(value, str) and value in table:
        try:
            return table[value]()
        except TypeError:
            raise ValueError(f"{field} {value!r} needs its parameters (give the object or its to_dict())") from None
    raise ValueError(f"{field} must be one of {list(table)} (a {base.__name__} or its to_dict()), got {value!r}")


def adc_range_from(value) -> AdcRange:
    """An ``AdcRange`` from itself, its ``to_dict()`` or a kind name without parameters."""
    return _from(_ADC, AdcRange, "adc_range", value)


def input_range_from(value) -> InputRange:
    """An ``InputRange`` from itself, its ``to_dict()`` or a kind name without parameters."""
    return _from(_DAC, InputRange, "input_range", value)
