"""Converter ranges from calibration data (``xbarlab.fcm.ranges`` says which strategies exist).

* ``input_full_scale(x, rule)``: the DAC input full scale (``FCMOptions.x_max``)
  of a layer from its calibration inputs: None (per vector), the fixed value,
  or a percentile of |x|.
* ``calibrate_adc(fcm, x, rule)``: a new FCM of the same hardware instance
  whose ADC full scale per tile is a percentile (100: the maximum) of that
  tile's column currents for the calibration inputs x, made by the model's own
  current stage (``FCM.tile_currents``: the DAC codes under the model's
  ``x_max``, the DAC load, G_non-ideal). The FCM itself is never changed.

The calibration inputs must come from training data, never from the data an
accuracy is measured on (``dnn_eval`` checks that the two are disjoint).
Sources for the practice: static per-layer activation ranges from a
calibration set in post-training quantization (Jacob et al., "Quantization and
training of neural networks for efficient integer-arithmetic-only inference",
CVPR 2018; percentile calibration as in TensorRT's calibrators and torchao's
static quantization, https://docs.pytorch.org/ao/stable/static_quantization.html);
ADC ranges calibrated from the outputs of a calibration set as CrossSim's
``adc_range_option`` CALIBRATED (sandialabs/cross-sim, simulator/circuits/adc/README.md).
"""

from __future__ import annotations

import numpy as np

from .model import FCM
from .ranges import CalibratedInput, CalibratedRange, FixedInput, InputRange, PerVector, WorstCase

#: input vectors (times DAC phases) whose tile currents a calibration uses at most: evenly spaced
#: over the batch, so that a large batch of im2col patches stays within memory (deterministic)
MAX_VECTORS = 4096


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().to("cpu").double().numpy()
    a = np.asarray(x, dtype=float)
    if a.size == 0:
        raise ValueError("the calibration batch is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError("the calibration batch must be finite; found NaN or Inf")
    return a


def _evenly(a: np.ndarray, n: int) -> np.ndarray:
    """At most n rows of a (B, K), evenly spaced (all when B <= n)."""
    if len(a) <= n:
        return a
    return a[np.linspace(0, len(a) - 1, n).round().astype(np.int64)]


def input_full_scale(x, rule: InputRange) -> float | None:
    """``FCMOptions.x_max`` of a layer for its calibration inputs x (any shape): None for ``PerVector``,
    the fixed value, or the ``percentile`` of |x| (ValueError when that is 0: no range to set)."""
    if isinstance(rule, PerVector):
        return None
    if isinstance(rule, FixedInput):
        return rule.x_max
    if not isinstance(rule, CalibratedInput):
        raise ValueError(f"rule must be an InputRange (PerVector, FixedInput, CalibratedInput), got {rule!r}")
    a = np.abs(_as_numpy(x)).ravel()
    v = float(a.max() if rule.percentile == 100.0 else np.percentile(a, rule.percentile))
    if not v > 0:
        raise ValueError(f"the calibration inputs have |x| percentile {rule.percentile} = 0; no DAC input range "
                         f"can be set from them (choose a higher percentile or other data)")
    return v


def tile_current_stats(fcm: FCM, x, percentile: float, max_vectors: int = MAX_VECTORS) -> np.ndarray:
    """Per tile (S, Tk, Tn), the ``percentile`` of its column currents (ampere) over the inputs x (B, K),
    the zero padding's columns left out; 0 where a tile carries no current."""
    if fcm.Gn is None:
        raise ValueError("an all-zero W has no tiles to calibrate")
    X = _as_numpy(x)
    if X.ndim != 2 or X.shape[1] != fcm.shape[0]:
        raise ValueError(f"calibration inputs must be (B, K) with K={fcm.shape[0]}, got shape {X.shape}")
    base = FCM(fcm.spec, fcm.options.replace(adc_range=WorstCase()), fcm.shape, fcm.w_max, fcm.G, fcm.Gn, fcm.Y)
    codes, _ = base.codes(X)  # (P, B, K), under the model's x_max
    c = _evenly(codes.reshape(-1, X.shape[1]), max_vectors)
    I = base.tile_currents(c)  # (S, Tk, Tn, B', cols)
    S, Tk, Tn, _, cols = I.shape
    ncl = fcm.shape[1] - (Tn - 1) * cols  # valid columns of the last column block
    out = np.empty((S, Tk, Tn))
    for tn in range(Tn):
        v = I[:, :, tn, :, :ncl] if tn == Tn - 1 else I[:, :, tn]
        v = v.reshape(S, Tk, -1)
        out[:, :, tn] = v.max(axis=-1) if percentile == 100.0 else np.percentile(v, percentile, axis=-1)
    return out


def calibrate_adc(fcm: FCM, x, rule: CalibratedRange | None = None, max_vectors: int = MAX_VECTORS) -> FCM:
    """A new FCM (same hardware instance, options with ``adc_range=rule``) whose ADC full scale per tile
    is the ``rule.percentile`` of the tile's column currents for calibration inputs x (B, K); a tile that
    carries no current keeps the worst-case range. ``rule`` defaults to the model's own
    ``CalibratedRange`` or ``CalibratedRange()`` (the maximum)."""
    if not isinstance(fcm, FCM):
        raise ValueError(f"fcm must be an FCM, got {type(fcm).__name__}")
    if rule is None:
        rule = fcm.options.adc_range if isinstance(fcm.options.adc_range, CalibratedRange) else CalibratedRange()
    if not isinstance(rule, CalibratedRange):
        raise ValueError(f"rule must be a CalibratedRange, got {rule!r}")
    if isinstance(max_vectors, bool) or not isinstance(max_vectors, (int, np.integer)) or max_vectors < 1:
        raise ValueError(f"max_vectors must be an integer >= 1, got {max_vectors!r}")
    opts = fcm.options.replace(adc_range=rule)
    if fcm.Gn is None:
        return FCM(fcm.spec, opts, fcm.shape, fcm.w_max, None, None)
    fs = tile_current_stats(fcm, x, rule.percentile, int(max_vectors))
    worst = FCM(fcm.spec, fcm.options.replace(adc_range=WorstCase()), fcm.shape, fcm.w_max, fcm.G, fcm.Gn,
                fcm.Y).adc_full_scale_a
    fs = np.where(fs > 0, fs, worst)
    return FCM(fcm.spec, opts, fcm.shape, fcm.w_max, fcm.G, fcm.Gn, fcm.Y, adc_full_scale_a=fs)
