"""Converter ranges from calibration data (``xbarlab.fcm.ranges`` says which strategies exist).

* ``input_full_scale(x, rule)``: the DAC input full scale (``FCMOptions.x_max``)
  of a layer from its calibration inputs: None (per vector), the fixed value,
  or a percentile of |x|.
* ``calibrate_adc(fcm, x, rule)``: a new FCM of the same hardware instance
  whose ADC full scale per tile (``rule.per="tile"``) or per column
  (``"column"``) is a percentile (100: the maximum) of that tile's, or that
  column's, currents for the calibration inputs x, made by the model's own
  current stage (``FCM.tile_currents``: the DAC codes under the model's
  ``x_max``, the DAC load, G_non-ideal). The FCM itself is never changed.
* ``calibration_codes`` / ``select_vectors``: the DAC codes a calibration
  uses (at most ``max_vectors``, evenly spaced over the batch and its
  phases), so that a caller with many input vectors (im2col patches) can
  make only those (``dnn_eval.calibration``).

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

from ..backend import NumpyNS
from .model import FCM
from .stages import dac_codes_t
from .ranges import (CALIBRATION_UNITS, CalibratedInput, CalibratedRange, FixedInput, InputRange, PerVector,
                     WorstCase, _percentile)

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


def select_vectors(n: int, phases: int, max_vectors: int = MAX_VECTORS) -> tuple[np.ndarray, np.ndarray]:
    """(phase, vector) indices of the DAC codes a calibration uses out of ``phases`` x ``n`` (the codes
    (P, n, K) as P*n rows): at most ``max_vectors`` rows, evenly spaced (all when there are fewer)."""
    r = np.arange(phases * n) if phases * n <= max_vectors else \
        np.linspace(0, phases * n - 1, max_vectors).round().astype(np.int64)
    return r // n, r % n


def _worst_case(fcm: FCM) -> FCM:
    """The same hardware instance and options under the worst-case ADC range (fcm itself when it has it)."""
    if isinstance(fcm.options.adc_range, WorstCase):
        return fcm
    return FCM(fcm.spec, fcm.options.replace(adc_range=WorstCase()), fcm.shape, fcm.w_max, fcm.G, fcm.Gn, fcm.Y)


def selected_codes(fcm: FCM, n: int, signed: bool, rows, max_vectors: int = MAX_VECTORS) -> np.ndarray:
    """``calibration_codes`` of n input vectors given by ``rows(i)`` (the vectors i, (len(i), K)), only those
    of ``select_vectors`` made: for a caller whose vectors are many and cheap to make one by one (im2col
    patches). ``signed``: whether any of the n vectors has a negative entry (two DAC phases)."""
    ph, v = select_vectors(int(n), 2 if signed else 1, max_vectors)
    u, inv = np.unique(v, return_inverse=True)
    X = _as_numpy(rows(u))
    if X.ndim != 2 or X.shape != (len(u), fcm.shape[0]):
        raise ValueError(f"calibration inputs must be (B, K) with K={fcm.shape[0]}, got shape {X.shape}")
    # (stages.dac_codes_t as FCM.codes runs it, each vector's codes its own, the phases known in advance)
    c, _ = dac_codes_t(NumpyNS(), np.ascontiguousarray(X.T), fcm.spec.dac, fcm.options.x_max, bool(signed))
    return c.T.reshape(-1, len(u), X.shape[1])[ph, inv]  # (P, U, K) -> the selected (phase, vector) rows


def calibration_codes(fcm: FCM, x, max_vectors: int = MAX_VECTORS) -> np.ndarray:
    """The DAC codes (B', K) under the model's ``x_max`` that ``tile_current_stats`` uses for inputs x
    (B, K): those of ``select_vectors`` out of the codes (P, B, K) of every input and phase."""
    X = _as_numpy(x)
    if X.ndim != 2 or X.shape[1] != fcm.shape[0]:
        raise ValueError(f"calibration inputs must be (B, K) with K={fcm.shape[0]}, got shape {X.shape}")
    return selected_codes(fcm, len(X), bool(np.any(X < 0)), lambda i: X[i], max_vectors)


def current_stats(fcm: FCM, codes: np.ndarray, percentile: float, per: str = "tile") -> np.ndarray:
    """The ``percentile`` of the column currents (ampere) for DAC codes (B', K), under the worst-case
    range's current stage: per tile (S, Tk, Tn) over all its columns, or per column (S, Tk, Tn, Nc);
    the zero padding's columns left out (per column: 0 there); 0 where a tile (column) carries no current."""
    if fcm.Gn is None:
        raise ValueError("an all-zero W has no tiles to calibrate")
    percentile = _percentile("current_stats", percentile)  # (ValueError naming it: a bool, NaN, > 100)
    if not isinstance(per, str) or per not in CALIBRATION_UNITS:
        raise ValueError(f"per must be one of {list(CALIBRATION_UNITS)}, got {per!r}")
    I = _worst_case(fcm).tile_currents(codes)  # (S, Tk, Tn, B', cols)
    S, Tk, Tn, _, cols = I.shape
    if per == "column":  # (the padding's currents are 0: its percentile is 0)
        return I.max(axis=-2) if percentile == 100.0 else np.percentile(I, percentile, axis=-2)
    ncl = fcm.shape[1] - (Tn - 1) * cols  # valid columns of the last column block
    out = np.empty((S, Tk, Tn))
    for tn in range(Tn):
        v = I[:, :, tn, :, :ncl] if tn == Tn - 1 else I[:, :, tn]
        v = v.reshape(S, Tk, -1)
        out[:, :, tn] = v.max(axis=-1) if percentile == 100.0 else np.percentile(v, percentile, axis=-1)
    return out


def tile_current_stats(fcm: FCM, x, percentile: float, max_vectors: int = MAX_VECTORS,
                       per: str = "tile") -> np.ndarray:
    """Per tile (S, Tk, Tn), or per column (S, Tk, Tn, Nc) with ``per="column"``, the ``percentile`` of
    the column currents (ampere) over the inputs x (B, K) (``current_stats`` of ``calibration_codes``)."""
    if fcm.Gn is None:
        raise ValueError("an all-zero W has no tiles to calibrate")
    return current_stats(fcm, calibration_codes(fcm, x, max_vectors), percentile, per)


def calibrate_adc(fcm: FCM, x, rule: CalibratedRange | None = None, max_vectors: int = MAX_VECTORS,
                  codes=None) -> FCM:
    """A new FCM (same hardware instance, options with ``adc_range=rule``) whose ADC full scale per tile
    (``rule.per="tile"``) or per column (``"column"``) is the ``rule.percentile`` of the tile's (column's)
    currents for calibration inputs x (B, K); a tile (column) that carries no current keeps its tile's
    worst-case range. ``rule`` defaults to the model's own ``CalibratedRange`` or ``CalibratedRange()``
    (the maximum). ``codes``: the DAC codes ``calibration_codes(fcm, x, max_vectors)`` when the caller
    made them already (x is then not used)."""
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
    worst = _worst_case(fcm)
    if codes is None:
        codes = calibration_codes(worst, x, int(max_vectors))
    fs = current_stats(worst, codes, rule.percentile, rule.per)
    w = worst.adc_full_scale_a
    fs = np.where(fs > 0, fs, w if fs.ndim == 3 else w[..., None])
    return FCM(fcm.spec, opts, fcm.shape, fcm.w_max, fcm.G, fcm.Gn, fcm.Y, adc_full_scale_a=fs)
