"""Converter ranges of a network on crossbars, calibrated on training data (``xbarlab.fcm.ranges``).

``ConverterRanges`` says how the DAC input full scale (per layer) and the ADC
full scale (per tile, or per column with ``CalibratedRange(per="column")``) are
set. ``calibrate_network`` runs a calibration batch (training images) through
the floating-point network, records each crossbar
layer's input, and sets

* the layer's DAC input full scale (``FCMOptions.x_max``) from its inputs
  (``xbarlab.fcm.calibration.input_full_scale``), and
* each tile's (or column's) ADC full scale from its column currents for those
  inputs (``calibrate_adc``: the FCM's own current stage under that x_max; only
  the DAC codes of the input vectors it uses are made, so a convolution's
  im2col patches are gathered one by one rather than all unfolded),

replacing the layer's FCMs by calibrated copies (same hardware instance).
Calibration images are never test images: ``check_disjoint`` refuses a
calibration batch that shares an image with the evaluated split.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from xbarlab.fcm.calibration import MAX_VECTORS, _evenly, calibrate_adc, input_full_scale, selected_codes
from xbarlab.fcm.ranges import (AdcRange, CalibratedInput, CalibratedRange, InputRange, PerVector, WorstCase,
                                adc_range_from, input_range_from)

# (torch, .convert and .layers are imported where used: the CLI's parser reads this module's defaults
# without importing torch)

#: calibration images taken from the training split by default (evenly spaced, deterministic)
DEFAULT_SAMPLES = 500
#: the percentile of the calibrated ranges by default (TensorRT-style percentile calibration)
DEFAULT_PERCENTILE = 99.99


@dataclass(frozen=True)
class ConverterRanges:
    """How a network's converters get their ranges.

    Attributes:
        dac: an ``InputRange`` (``PerVector()``, ``FixedInput(x)``, ``CalibratedInput(p)``), per layer.
        adc: an ``AdcRange`` (``WorstCase()``, ``FixedRange(a)``, ``CalibratedRange(p, per)``), per tile
            (or per column: ``CalibratedRange(p, "column")``).
        samples: calibration images taken from the training split (evenly spaced), >= 1.
        max_vectors: input vectors (im2col patches) per layer used for the ADC currents, >= 1.
    """

    dac: InputRange = PerVector()
    adc: AdcRange = WorstCase()
    samples: int = DEFAULT_SAMPLES
    max_vectors: int = MAX_VECTORS

    def __post_init__(self) -> None:
        object.__setattr__(self, "dac", input_range_from(self.dac))
        object.__setattr__(self, "adc", adc_range_from(self.adc))
        for name in ("samples", "max_vectors"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"ConverterRanges.{name} must be an integer >= 1, got {v!r}")
            object.__setattr__(self, name, int(v))

    @property
    def needs_data(self) -> bool:
        return isinstance(self.dac, CalibratedInput) or isinstance(self.adc, CalibratedRange)

    def to_dict(self) -> dict:
        return {"dac": self.dac.to_dict(), "adc": self.adc.to_dict(), "samples": self.samples,
                "max_vectors": self.max_vectors}

    @classmethod
    def from_dict(cls, d: dict) -> "ConverterRanges":
        return cls(d["dac"], d["adc"], d["samples"], d["max_vectors"])


#: what ``xbarlab dnn-eval`` uses unless told otherwise: both ranges calibrated at DEFAULT_PERCENTILE
CLI_DEFAULT = ConverterRanges(CalibratedInput(DEFAULT_PERCENTILE), CalibratedRange(DEFAULT_PERCENTILE))


def _digest_rows(x: np.ndarray) -> set:
    a = np.ascontiguousarray(x)
    return {hashlib.sha256(r.tobytes()).hexdigest() for r in a.reshape(len(a), -1)}


def check_disjoint(calibration: np.ndarray, test: np.ndarray) -> None:
    """ValueError when a calibration image equals an image of the evaluated (test) split."""
    shared = _digest_rows(calibration) & _digest_rows(np.asarray(test, dtype=np.asarray(calibration).dtype))
    if shared:
        raise ValueError(f"the calibration batch shares {len(shared)} image(s) with the evaluated split; "
                         "converter ranges must be calibrated on training data only")


def calibration_batch(train_x: np.ndarray, samples: int) -> np.ndarray:
    """``samples`` training images, evenly spaced over the split (all when it has fewer)."""
    return _evenly(np.asarray(train_x), int(samples))


def _layer_inputs(model, x: np.ndarray, fixed_batch: int | None = None, batch: int = 256) -> dict:
    """Each crossbar layer's input (concatenated over chunks) for images x, the network run in floating
    point. A fixed-batch export gets chunks of exactly ``fixed_batch`` images (the last one filled up
    with the batch's first images again); the filler images' inputs are dropped (an input whose first
    axis is the chunk's images), so every image counts once in a percentile and in the ADC's vectors."""
    import torch

    from .convert import crossbar_layers
    layers = crossbar_layers(model)
    seen: dict = {}
    hooks = [layer.register_forward_pre_hook(lambda m, a: seen.setdefault(id(m), []).append(a[0].detach().cpu()))
             for layer in layers]
    was = [layer.enabled for layer in layers]
    bs = fixed_batch or batch
    try:
        for layer in layers:
            layer.enabled = False
        with torch.no_grad():
            for k in range(0, len(x), bs):
                xb = x[k:k + bs]
                n = len(xb)
                if fixed_batch and len(xb) < fixed_batch:
                    xb = np.resize(x, (fixed_batch,) + x.shape[1:])[:fixed_batch] if k == 0 else \
                        np.concatenate([xb, x[:fixed_batch - len(xb)]])
                before = {key: len(v) for key, v in seen.items()}
                model(torch.as_tensor(np.ascontiguousarray(xb)))
                if n < len(xb):  # (the filler: the chunk's images past n, in every input of this chunk)
                    for key, v in seen.items():
                        for i in range(before.get(key, 0), len(v)):
                            if v[i].shape[0] == len(xb):
                                v[i] = v[i][:n]
    finally:
        for layer, e in zip(layers, was):
            layer.enabled = e
        for h in hooks:
            h.remove()
    return {k: torch.cat(v) for k, v in seen.items()}


def _vectors(layer, x: torch.Tensor) -> list:
    """The FCM input vectors of the layer's input x, per FCM (im2col patches per group), without making
    them all: (n, signed, rows) with n vectors (n, K), ``signed`` whether any of them has a negative
    entry, ``rows(i)`` the vectors i as float64 (len(i), K), in ``F.unfold``'s order (image, ho, wo) x
    (channel, i, j); a convolution's patches are gathered from a strided view of the padded image."""
    import torch
    import torch.nn.functional as F

    from .im2col import output_size
    from .layers import CrossbarConv2d
    if not bool(torch.isfinite(x).all()):
        raise ValueError("the calibration batch must be finite; found NaN or Inf")
    if not isinstance(layer, CrossbarConv2d):
        X = x.reshape(-1, x.shape[-1])
        return [(len(X), bool((X < 0).any()), lambda i: X[torch.as_tensor(i)].double().numpy())]
    geo = layer.geometry
    xp, pad = geo.explicit_pad(x)
    xp = F.pad(xp, [pad[1], pad[1], pad[0], pad[0]]).contiguous()  # the zero padding unfold applies
    B, C, Hp, Wp = xp.shape
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    Ho, Wo = output_size(Hp, Wp, geo, (0, 0))
    view = xp.as_strided((B, Ho, Wo, C, kh, kw), (C * Hp * Wp, sh * Wp, sw, Hp * Wp, dh * Wp, dw))
    cg = C // geo.groups
    # a negative entry in some patch of a group: the largest -x over every window > 0 (x >= 0 skips it)
    neg = torch.zeros(C, dtype=torch.bool) if not bool((xp < 0).any()) else \
        (F.max_pool2d(-xp, (kh, kw), (sh, sw), dilation=(dh, dw)) > 0).any(dim=(0, 2, 3))

    def rows(k):
        def get(i):
            i = torch.as_tensor(i)
            b, hw = i // (Ho * Wo), i % (Ho * Wo)
            return view[b, hw // Wo, hw % Wo, k * cg:(k + 1) * cg].reshape(len(i), -1).double().numpy()
        return get
    return [(B * Ho * Wo, bool(neg[k * cg:(k + 1) * cg].any()), rows(k)) for k in range(geo.groups)]


def _calibrated(f, vectors, x_max, rule: CalibratedRange, max_vectors: int):
    """The layer model f (an ``FCM`` or a ``SlicedFCM``) under ``x_max`` with its ADC ranges calibrated on
    its input vectors (``_vectors``). Each weight slice is calibrated on what its tiles see: the inputs
    themselves, or with bit-serial inputs the codes of every cycle (and phase) as ``SlicedFCM`` makes them."""
    from xbarlab.fcm.slicing import SlicedFCM

    n, signed, rows = vectors

    def calibrated(g):  # only the DAC codes the calibration uses are made (selected_codes)
        return calibrate_adc(g, None, rule, max_vectors, codes=selected_codes(g, n, signed, rows, max_vectors))
    if not isinstance(f, SlicedFCM):
        return calibrated(f.with_options(x_max=x_max, adc_range=WorstCase()))
    sf = f.with_options(x_max=x_max, adc_range=WorstCase())
    if sf.cycles == 1:
        return SlicedFCM(sf.spec, sf.options.replace(adc_range=rule), sf.slicing, sf.shape, sf.w_max,
                         [calibrated(g) for g in sf.fcms])
    slices = [calibrate_adc(g, _cycle_codes(sf, n, signed, rows, max_vectors), rule, max_vectors) for g in sf.fcms]
    return SlicedFCM(sf.spec, sf.options.replace(adc_range=rule), sf.slicing, sf.shape, sf.w_max, slices)


def _cycle_codes(sf, n: int, signed: bool, rows, max_vectors: int) -> np.ndarray:
    """The per-cycle DAC codes of bit-serial inputs that a slice's calibration uses: of the rows (phase,
    cycle, vector) of every vector's codes, phase-major then cycle, only the ``select_vectors`` rows, made
    from the vectors they need alone (not the codes of all n vectors: B x H x W patches of a conv layer).
    Each vector's codes depend on it alone, so these are the very rows the full set gives."""
    from xbarlab.backend import NumpyNS
    from xbarlab.fcm.calibration import select_vectors

    P, cycles = (2 if signed else 1), sf.cycles
    _, r = select_vectors(P * cycles * n, 1, max_vectors)
    u, inv = np.unique(r % n, return_inverse=True)
    phases, _ = sf._input_codes(NumpyNS(), np.ascontiguousarray(rows(u).T), bool(signed))
    codes = np.stack([c for _, c in phases])  # (P, K, len(u))
    c = codes[r // n // cycles, :, inv]  # (len(r), K)
    q, k = float(2 ** sf.slicing.input_bits_per_cycle), (r // n % cycles)[:, None]
    return np.floor(c / q**k) - np.floor(c / q ** (k + 1)) * q


def calibrate_network(model, x_calibration: np.ndarray, ranges: ConverterRanges,
                      fixed_batch: int | None = None) -> list[dict]:
    """Set every crossbar layer's converter ranges of a converted, programmed model (``to_crossbar``)
    from the calibration images; returns one summary per layer (name, x_max, ADC full scale range)."""
    from .convert import crossbar_layers

    if not isinstance(ranges, ConverterRanges):
        raise ValueError(f"ranges must be a ConverterRanges, got {type(ranges).__name__}")
    inputs = _layer_inputs(model, np.asarray(x_calibration), fixed_batch) if ranges.needs_data else {}
    out = []
    for layer in crossbar_layers(model):
        x = inputs.get(id(layer))
        if ranges.needs_data and x is None:
            raise ValueError(f"crossbar layer {layer.name!r} saw no input in the calibration run")
        x_max = input_full_scale(x if isinstance(ranges.dac, CalibratedInput) else np.ones(1), ranges.dac)
        adc_rule = ranges.adc
        opts = layer.options.replace(x_max=x_max, adc_range=adc_rule)
        if isinstance(adc_rule, CalibratedRange):
            fcms = [_calibrated(f, v, x_max, adc_rule, ranges.max_vectors) for f, v in zip(layer.fcms, _vectors(layer, x))]
        else:
            fcms = [f.with_options(x_max=x_max, adc_range=adc_rule) for f in layer.fcms]
        tiles = [g for f in fcms for g in getattr(f, "fcms", [f])]  # (each slice of a SlicedFCM)
        for g in tiles:
            if g.Gn is not None:
                g.compile()
        layer.options, layer.fcms = opts, fcms
        fs = np.concatenate([g.adc_full_scale_a.ravel() for g in tiles if g.Gn is not None] or [np.zeros(0)])
        out.append({"layer": layer.name, "x_max": x_max,
                    "adc_full_scale_a": None if not fs.size else
                    {"min": float(fs.min()), "median": float(np.median(fs)), "max": float(fs.max())}})
    return out
