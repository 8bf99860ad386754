"""Hardware configurations and accuracy on crossbars.

``make_spec`` turns the CLI's knobs into a ``CrossbarSpec``: a preset
(``DEFAULT_PRESET``, the RxNN paper's ``rxnn-spintronic``, by default) resized to Cross16/32/64, with optional
overrides of DAC, ADC and device bits and of the device variation
(sigma/mu). ``ideal_spec`` is the reference with no non-idealities: zero
wire, driver and sense resistances, an ideal DAC (no pull-down sag) of
``dac_bits``, analog devices, an ideal ADC; ``precision_spec`` keeps the
parasitics off but quantizes like the paper's Cross6 (Fig. 14).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from xbarlab.params import CircuitParams
from xbarlab.peripherals.adc import ADCParams
from xbarlab.spec import CrossbarSpec, load_preset

from . import DEFAULT_PRESET
from .convert import count_tiles, to_crossbar


def make_spec(preset: str = DEFAULT_PRESET, size: int = 64, dac_bits: int | None = None,
              adc_bits: int | None = None, device_bits: int | None = None,
              variation: float | None = None) -> CrossbarSpec:
    """A preset at size x size with the given overrides (None keeps the preset's value)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"xbar size must be an integer >= 1, got {size!r}")
    spec = load_preset(preset, size, size)
    if dac_bits is not None:
        spec = spec.replace(dac=dataclasses.replace(spec.dac, bits=dac_bits))
    if adc_bits is not None:
        spec = spec.replace(adc=dataclasses.replace(spec.adc, bits=adc_bits))
    if device_bits is not None:
        spec = spec.replace(device=dataclasses.replace(spec.device, bits=device_bits, levels=None))
    if variation is not None:
        spec = spec.replace(device=dataclasses.replace(spec.device, variation=variation))
    return spec


def ideal_spec(size: int = 64, preset: str = DEFAULT_PRESET, dac_bits: int = 16) -> CrossbarSpec:
    """No parasitics, no DAC sag, analog devices, ideal ADC: the crossbar computes x_q @ W."""
    spec = load_preset(preset, size, size)
    return spec.replace(circuit=CircuitParams.ideal(),
                        device=dataclasses.replace(spec.device, bits=None, levels=None, variation=0.0,
                                                   stuck_on_rate=0.0, stuck_off_rate=0.0, sinh_b=0.0),
                        dac=dataclasses.replace(spec.dac, bits=dac_bits, r_pd=0.0),
                        adc=ADCParams(bits=None))  # (the preset's full scale and INL dropped: the ideal ADC has none)


def precision_spec(size: int = 64, preset: str = DEFAULT_PRESET, bits: int = 6) -> CrossbarSpec:
    """The paper's ideal Cross6: ``bits`` for device, DAC and ADC, but no circuit non-idealities."""
    spec = load_preset(preset, size, size)
    return spec.replace(circuit=CircuitParams.ideal(),
                        device=dataclasses.replace(spec.device, bits=bits, levels=None, variation=0.0, sinh_b=0.0),
                        dac=dataclasses.replace(spec.dac, bits=bits, r_pd=0.0),
                        adc=dataclasses.replace(spec.adc, bits=bits))


def default_options(spec: CrossbarSpec):
    """FCM settings for ``spec``: the fitted ones (``xbarlab/presets/fitted/``) for a preset at a fitted size.

    The fit (DAC load factor, sinh gamma; ``xbarlab.verify.fitting``) belongs to
    the preset's circuit and size; it is kept when bits or variation are
    overridden, and not used for another circuit under the preset's name.
    Otherwise the FCM's defaults.
    """
    from xbarlab.fcm import FCMOptions
    from xbarlab.verify.fitting import fitted_options

    return fitted_options(spec) or FCMOptions()


def fit_file(spec: CrossbarSpec) -> str | None:
    """The saved fit ``default_options(spec)`` applies, as ``xbarlab/presets/fitted/NAME.json``; None when
    none applies (the FCM's default options)."""
    from xbarlab.verify.fitting import fit_path, fitted_options

    return f"xbarlab/presets/fitted/{fit_path(spec).name}" if fitted_options(spec) is not None else None


def predict(module, x: np.ndarray, batch: int = 512, fixed_batch: int | None = None,
            device: str = "cpu") -> np.ndarray:
    """Class predictions (argmax) of ``module`` on images x; pads a fixed-batch export's last chunk."""
    bs = fixed_batch or batch
    out = []
    with torch.no_grad():
        for k in range(0, len(x), bs):
            xb = torch.as_tensor(x[k:k + bs]).to(device)
            n = xb.shape[0]
            if fixed_batch and n < fixed_batch:
                xb = torch.cat([xb, xb.new_zeros((fixed_batch - n,) + tuple(xb.shape[1:]))])
            y = module(xb)
            if isinstance(y, (tuple, list)):
                y = y[0]
            out.append(y[:n].argmax(1).cpu().numpy())
    return np.concatenate(out)


def accuracy(module, x, y, **kw) -> float:
    return float((predict(module, x, **kw) == y).mean())


#: the FCMOptions fields that ``evaluate``'s converter ranges set per layer (reported in ``converter_ranges``)
RANGE_FIELDS = ("x_max", "adc_range")


def evaluate(lm, split, spec: CrossbarSpec, seed: int = 0, options=None, slicing=None, ranges=None,
             calibration=None) -> dict:
    """FP32 and crossbar accuracy of a loaded model on a split, with timings and tile count.

    ``options`` (``FCMOptions``) defaults to ``default_options(spec)``; ``slicing``
    (``xbarlab.fcm.slicing.Slicing``, None: unsliced) is passed to ``to_crossbar``.
    ``ranges`` (``dnn_eval.calibration.ConverterRanges``, default: per-vector DAC
    scaling and worst-case ADC ranges, the FCM's defaults) says how the converters
    get their ranges; calibrated ranges need ``calibration``, a batch of training
    images (``calibration_batch``), which must share no image with ``split``
    (ValueError otherwise). The result's ``converter_ranges`` says which ranges
    produced the number, how they were set, and each layer's values; its
    ``fcm_options`` are the other options (``x_max`` and ``adc_range`` are left
    out: ``ranges`` sets them per layer, whatever ``options`` held).
    """
    from .calibration import ConverterRanges, calibrate_network, check_disjoint

    options = options or default_options(spec)
    ranges = ConverterRanges() if ranges is None else ranges
    if not isinstance(ranges, ConverterRanges):
        raise ValueError(f"ranges must be a ConverterRanges, got {type(ranges).__name__}")
    if ranges.needs_data:
        if calibration is None:
            raise ValueError("calibrated converter ranges need a calibration batch of training images")
        check_disjoint(calibration, split.x)
    t0 = time.perf_counter()
    pred_fp = predict(lm.module, split.x, fixed_batch=lm.fixed_batch)
    t1 = time.perf_counter()
    xm = to_crossbar(lm.module, spec, np.random.default_rng(seed), options, slicing=slicing)
    per_layer = calibrate_network(xm, calibration, ranges, lm.fixed_batch)
    t2 = time.perf_counter()
    pred_x = predict(xm, split.x, fixed_batch=lm.fixed_batch)
    t3 = time.perf_counter()
    conv = {**ranges.to_dict(), "calibration_split": "train" if ranges.needs_data else None,
            "calibration_samples": int(len(calibration)) if ranges.needs_data else 0, "layers": per_layer}
    return {
        "accuracy_fp32": float((pred_fp == split.y).mean()),
        "accuracy_crossbar": float((pred_x == split.y).mean()),
        "agreement": float((pred_fp == pred_x).mean()),
        "n_samples": int(len(split.y)),
        "n_tiles": int(count_tiles(xm)), "converter_ranges": conv,
        "fcm_options": {k: v for k, v in options.to_dict().items() if k not in RANGE_FIELDS},
        "time_fp32_s": t1 - t0, "time_generate_s": t2 - t1, "time_crossbar_s": t3 - t2,
    }
