"""The loss decomposed: one hardware setting per non-ideality, each built from the one preset.

Every setting starts from ``load_preset(preset, size, size)`` (default
``rxnn-spintronic``, the paper's setup; ``xbarlab/presets/``) and from
``evaluate.ideal_spec`` (zero wire, driver and sense resistances, an
unloaded DAC of ``ideal_spec``'s 16 bits, analog devices without variation
or faults, an ideal ADC). No hardware value is set here; each setting only
chooses which of the preset's values it keeps:

* ``precision``: the preset's device levels, DAC bits and ADC (bits and
  full-scale rule); no parasitics (ideal circuit, R_PD = 0), no variation,
  no faults, linear cells.
* ``parasitics``: ``xbarlab.spec.group(spec, "ALL")`` (the preset's wires,
  sense resistance, driver and DAC pull-down) with ideal converters and
  analog devices.
* ``variation``: the preset's device variation (sigma/mu and its kind) and
  stuck-cell rates, everything else ideal.
* ``precision+parasitics``: the two together (the paper's NI-Cross6 of
  Fig. 14, without variation).
* ``everything``: the preset as it is.

``FP32`` is the float network. The FCM settings of every setting are
``evaluate.default_options`` (the fitted DAC load factor where the preset's
circuit at this size has a fit).
"""

from __future__ import annotations

import dataclasses
import math

from xbarlab.spec import CrossbarSpec, group, load_preset

from .. import DEFAULT_PRESET  # the one preset (dnn_eval.DEFAULT_PRESET)
from ..evaluate import ideal_spec

SETTINGS = ("precision", "parasitics", "variation", "precision+parasitics", "everything")


def _precision(spec: CrossbarSpec, ideal: CrossbarSpec) -> CrossbarSpec:
    device = dataclasses.replace(spec.device, variation=0.0, stuck_on_rate=0.0, stuck_off_rate=0.0, sinh_b=0.0)
    return ideal.replace(device=device, dac=dataclasses.replace(spec.dac, r_pd=0.0), adc=spec.adc)


def _parasitics(spec: CrossbarSpec, ideal: CrossbarSpec) -> CrossbarSpec:
    g = group(spec, "ALL")
    return g.replace(device=ideal.device, dac=dataclasses.replace(g.dac, bits=ideal.dac.bits), adc=ideal.adc)


def _variation(spec: CrossbarSpec, ideal: CrossbarSpec) -> CrossbarSpec:
    d = spec.device
    device = dataclasses.replace(ideal.device, variation=d.variation, variation_kind=d.variation_kind,
                                 stuck_on_rate=d.stuck_on_rate, stuck_off_rate=d.stuck_off_rate)
    return ideal.replace(device=device)


def _precision_parasitics(spec: CrossbarSpec, ideal: CrossbarSpec) -> CrossbarSpec:
    return _precision(spec, ideal).replace(circuit=spec.circuit, dac=spec.dac)


def decomposition(size: int, preset: str = DEFAULT_PRESET) -> dict[str, CrossbarSpec]:
    """Setting name -> spec at size x size, for every name in ``SETTINGS`` (module docstring)."""
    spec = load_preset(preset, size, size)
    ideal = ideal_spec(size, preset)
    build = {"precision": _precision, "parasitics": _parasitics, "variation": _variation,
             "precision+parasitics": _precision_parasitics}
    out = {name: f(spec, ideal).replace(name=f"{spec.name}[{name}]") for name, f in build.items()}
    out["everything"] = spec
    return out


def stderr(p: float, n: int) -> float:
    """Binomial standard error of an accuracy p measured on n test images: sqrt(p (1 - p) / n)."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)
