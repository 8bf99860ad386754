"""Model settings of the FCM (not hardware: the hardware is ``xbarlab.CrossbarSpec``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..choices import Choice
from .mapping import Mapping
from .ranges import X_MAX_BOUNDS, AdcRange, WorstCase, adc_range_from


class DacLoad(Choice):
    """How the row DACs' output sags under the crossbar load."""

    ROWSUM = "rowsum"
    EXACT = "exact"
    NONE = "none"


class Sensing(Choice):
    """How column currents reach the ADC (``xbarlab.fcm.sensing``).

    ``SEPARATE``: one ADC per array column, subtraction after it (digital);
    ``DIFFERENTIAL``: the pair's column currents subtracted before one ADC per pair (needs
    ``Mapping.DIFFERENTIAL``); ``REFERENCE``: one array plus a reference column of mid-level cells
    per tile whose current is subtracted before each column's ADC (needs ``Mapping.OFFSET``).
    """

    SEPARATE = "separate"
    DIFFERENTIAL = "differential"
    REFERENCE = "reference"


@dataclass(frozen=True)
class FCMOptions:
    """Model settings of the FCM (not hardware; the hardware is ``CrossbarSpec``).

    Attributes:
        dac_load: ``DacLoad.ROWSUM`` (default), ``EXACT`` or ``NONE``; a name is accepted.
        load_factor: kappa in G_load = kappa * sum_j Gn[i, j] (ROWSUM), > 0;
            fitted against ngspice by ``xbarlab.verify.fitting``.
        sinh_gamma: share of the row voltage across a sinh cell, in (0, 2];
            fitted by ``xbarlab.verify.fitting``; unused for linear cells.
        mapping: ``Mapping.DIFFERENTIAL`` (default) or ``OFFSET``.
        x_max: fixed input full scale (DAC code full maps to |x| = x_max,
            larger inputs clip), in the inputs' units, > 0; None scales each
            input vector by its own largest magnitude (optimistic: no real DAC
            does that; ``xbarlab.fcm.calibration.input_full_scale`` sets it from data).
        adc_range: how the ADC full scale is set (``xbarlab.fcm.ranges``):
            ``WorstCase()`` (default), ``FixedRange(a)`` or ``CalibratedRange(p)``
            (its values set by ``xbarlab.fcm.calibration.calibrate_adc``); a
            ``to_dict()`` is accepted. A fixed ``ADCParams.full_scale_a`` of the
            hardware is kept under ``WorstCase()``. The sensing schemes other than
            ``SEPARATE`` take ``WorstCase()`` only; an ideal ADC (``bits=None``) takes
            no ``FixedRange`` (``xbarlab.fcm.ranges``).
        sensing: ``Sensing.SEPARATE`` (default), ``DIFFERENTIAL`` (with the
            differential mapping) or ``REFERENCE`` (with the offset mapping); a name is accepted.
    """

    dac_load: DacLoad = DacLoad.ROWSUM
    load_factor: float = 1.0
    sinh_gamma: float = 1.0
    mapping: Mapping = Mapping.DIFFERENTIAL
    x_max: float | None = None
    adc_range: AdcRange = WorstCase()
    sensing: Sensing = Sensing.SEPARATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "adc_range", adc_range_from(self.adc_range))
        object.__setattr__(self, "dac_load", DacLoad.parse(self.dac_load))
        object.__setattr__(self, "mapping", Mapping.parse(self.mapping))
        object.__setattr__(self, "sensing", Sensing.parse(self.sensing))
        need = {Sensing.DIFFERENTIAL: Mapping.DIFFERENTIAL, Sensing.REFERENCE: Mapping.OFFSET}.get(self.sensing)
        if need is not None and self.mapping is not need:
            raise ValueError(f"sensing={self.sensing.value!r} needs mapping={need.value!r}, "
                             f"got mapping={self.mapping.value!r}")
        for name, hi in (("load_factor", None), ("sinh_gamma", 2.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0
                                           and (hi is None or v <= hi)):  # (True read as 1.0)
                raise ValueError(f"{name} must be a finite number > 0{'' if hi is None else f' and <= {hi}'}, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.x_max is not None:
            if isinstance(self.x_max, bool) or not (isinstance(self.x_max, (int, float)) and math.isfinite(self.x_max)
                                                    and self.x_max > 0):
                raise ValueError(f"x_max must be a finite number > 0 or None, got {self.x_max!r}")
            if not X_MAX_BOUNDS[0] <= self.x_max <= X_MAX_BOUNDS[1]:  # (as ranges.FixedInput: float32 cast it
                # to 0 or inf, and the fused and array paths then gave zeros or NaN)
                raise ValueError(f"x_max must be within [{X_MAX_BOUNDS[0]:g}, {X_MAX_BOUNDS[1]:g}] (float32 "
                                 f"arithmetic resolves no more), got {self.x_max!r}")
            object.__setattr__(self, "x_max", float(self.x_max))

    def replace(self, **changes) -> "FCMOptions":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {"dac_load": self.dac_load.name, "load_factor": self.load_factor,
                "sinh_gamma": self.sinh_gamma, "mapping": self.mapping.name, "x_max": self.x_max,
                "adc_range": self.adc_range.to_dict(), "sensing": self.sensing.name}
