"""Step 1 and 2 of model generation: slice W into tiles, map weights to conductances.

W has shape (K, N) as used in ``y = x @ W``: K inputs drive crossbar rows and
N outputs are read from columns. W is cut into ceil(K/rows) x ceil(N/cols)
tiles of rows x cols, zero padded at the bottom and right edges.

Signed weights (``Mapping``):

* ``DIFFERENTIAL`` (default): each weight uses a pair of cells in two
  crossbars of the same shape, G+ and G-. A weight w >= 0 sets
  G+ = q(|w| / w_max) and G- = g_min; w < 0 the reverse, where
  q(f) = g_min + f (g_max - g_min) on the device's levels. The two crossbars
  see the same inputs and their column outputs are digitised separately and
  subtracted digitally: y ~ (I+ - I-).
* ``OFFSET``: one crossbar, G = q((w / w_max + 1) / 2): for a device with
  levels, the level nearest to q(1/2) + (w / w_max) (g_max - g_min) / 2,
  rounded in levels from the mid level q(1/2) (so w = 0 is q(1/2) exactly
  and every weight is within half a level; for 2**bits levels q(1/2) is not
  the midpoint, and rounding (w / w_max + 1) / 2 itself put every weight
  half a level low on average); the ideal offset
  current sum_i V_i * q(1/2) ... is removed digitally from the DAC codes
  (no reference column), so only the mid-level cell's non-idealities remain
  in the offset.

Padding cells hold a zero weight: under DIFFERENTIAL they sit at g_min (as
the idle half of a pair does: an unprogrammed cell still conducts); under
OFFSET at q(1/2), the mid level of every zero weight. Padding rows get DAC
code 0 and padding columns are not read, but their cells still load the DAC
(ROWSUM, EXACT) and enter G_non-ideal, in the model as in ngspice.
"""

from __future__ import annotations


import math

import numpy as np

from ..arrays import check_conductance_stack, check_real_number_types
from ..choices import Choice

from ..device import DeviceParams


class Mapping(Choice):
    """How a signed weight becomes conductances."""

    DIFFERENTIAL = "differential"
    OFFSET = "offset"


#: bounds of max |W| (in the weights' units; an all-zero W aside): within what float32 (the DNN layers'
#: dtype) resolves, as ``ranges.X_MAX_BOUNDS`` for the inputs (beyond about 1e303 float64's own
#: weight-per-ampere factors overflow, and the outputs were NaN)
W_MAX_BOUNDS = (1e-30, 1e30)


def check_weights(W) -> np.ndarray:
    """W as float64 (K, N); ValueError on wrong rank, empty or non-finite values, or a largest magnitude
    outside ``W_MAX_BOUNDS``."""
    try:
        arr = np.asarray(W, dtype=float)
    except (TypeError, ValueError):
        raise ValueError("W must be a numeric array of shape (K, N)") from None
    if arr.ndim != 2:
        raise ValueError(f"W must be 2-D (K inputs, N outputs), got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"W must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(k) for k in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"W must be finite; found {arr[bad]!r} at index {bad}")
    w_max = float(np.max(np.abs(arr)))
    if w_max and not W_MAX_BOUNDS[0] <= w_max <= W_MAX_BOUNDS[1]:
        raise ValueError(f"W's largest magnitude must be 0 or within [{W_MAX_BOUNDS[0]:g}, {W_MAX_BOUNDS[1]:g}] "
                         f"(float32 arithmetic resolves no more), got {w_max!r}")
    return arr


def tile_counts(k: int, n: int, rows: int, cols: int) -> tuple[int, int]:
    return -(-k // rows), -(-n // cols)


def tile(W: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """W (K, N) -> tiles (Tk, Tn, rows, cols), zero padded."""
    k, n = W.shape
    tk, tn = tile_counts(k, n, rows, cols)
    P = np.zeros((tk * rows, tn * cols))
    P[:k, :n] = W
    return P.reshape(tk, rows, tn, cols).transpose(0, 2, 1, 3).copy()


def check_tiles(G, shape, w_max, rows: int, cols: int, extra_cols: int, mapping: Mapping) -> np.ndarray:
    """Given programmed tiles G (S, Tk, Tn, rows, cols + extra_cols) of weights of ``shape`` (K, N) whose
    largest magnitude ``w_max`` maps to g_max, as float64; ValueError naming the field unless G is real,
    finite and >= 0 S, its tile counts are those of (K, N) (``tile_counts``), it holds the arrays of
    ``mapping`` (S = 1 for OFFSET; 2, or 1 for a lone array, for DIFFERENTIAL) and w_max is finite and > 0
    (a mismatch was read silently: the padding taken for weights, the pair's currents added, y scaled by
    a NaN, 0 or a negative w_max)."""
    check_real_number_types(G, "G")
    G = np.asarray(G, dtype=float)
    if G.ndim != 5 or G.shape[-2:] != (rows, cols + extra_cols):
        raise ValueError(f"G must have shape (S, Tk, Tn, {rows}, {cols + extra_cols}), got {G.shape}")
    check_conductance_stack(G.reshape((-1,) + G.shape[-2:]), "G")
    if (len(shape) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in shape)
            or tile_counts(shape[0], shape[1], rows, cols) != G.shape[1:3]):
        raise ValueError(f"shape must be (K, N), integers >= 1 whose {rows} x {cols} tiles are G's Tk x Tn = "
                         f"{G.shape[1]} x {G.shape[2]}, got shape={tuple(shape)!r}")
    if G.shape[0] not in ((1,) if mapping is Mapping.OFFSET else (1, 2)):
        raise ValueError(f"G must hold {'1 array' if mapping is Mapping.OFFSET else '2 arrays (G+, G-) or 1'} "
                         f"for mapping={mapping.value!r}, got S={G.shape[0]}")
    if isinstance(w_max, bool) or not isinstance(w_max, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(w_max) and w_max > 0):
        raise ValueError(f"w_max must be a finite number > 0, got {w_max!r}")
    return G


def untile_cols(Y: np.ndarray, n: int) -> np.ndarray:
    """Outputs (..., Tn, cols) -> (..., N), dropping the padding columns."""
    return Y.reshape(Y.shape[:-2] + (-1,))[..., :n]


def conductances(W_tiles: np.ndarray, device: DeviceParams, w_max: float,
                 mapping: Mapping = Mapping.DIFFERENTIAL) -> np.ndarray:
    """Target conductances (S) before variation: (S, Tk, Tn, rows, cols).

    S = 2 (G+, G-) for DIFFERENTIAL, 1 for OFFSET. ``w_max`` > 0 maps to g_max.
    """
    if isinstance(w_max, bool) or not (np.isfinite(w_max) and w_max > 0):  # inf mapped every cell to g_min
        raise ValueError(f"w_max must be a finite number > 0, got {w_max!r}")
    f = W_tiles / w_max
    if mapping is Mapping.DIFFERENTIAL:
        return np.stack([device.quantize(np.maximum(f, 0.0)), device.quantize(np.maximum(-f, 0.0))])
    if device.levels is None:  # analog: q(1/2) is the midpoint itself
        return device.quantize((f + 1.0) / 2.0)[None]
    # the level nearest to q(1/2) + f (g_max - g_min) / 2, counted in levels from q(1/2), whose current the
    # digital offset removes: q((f + 1) / 2) rounded (f + 1) (L - 1) / 2, half a level off q(1/2) for an even L
    # (2**bits), so every weight was rounded half a level low on average (up to a whole level)
    top = device.levels - 1
    mid = float(np.rint(top / 2.0))  # the level of q(1/2) (DeviceParams.quantize rounds the same way)
    return device.quantize((mid + np.clip(np.rint(f * (top / 2.0)), -mid, top - mid)) / top)[None]
