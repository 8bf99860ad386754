"""Fused CPU loops for the FCM evaluation (numba), each one pass over its data.

The FCM's evaluation (``xbarlab.fcm.plans``) is a few element-wise passes around
batched matrix products. With plain array operations each step is its own
pass over memory (``alpha - c``, then the division; the ADC's round, then
the accumulation product). These kernels do the element-wise work of one
step in a single loop; the matrix products stay with BLAS.

They compute the same operations in the same precision as the array code
(IEEE, no ``fastmath``: no reassociation, no fused multiply-add), so the DAC
voltages and the ADC codes are bitwise the same; only the accumulation over
tiles sums in another order (a rounding of the last bit of the result).

Used for numpy arrays and CPU torch tensors of float32 or float64 when numba
is installed (a dependency of xbarlab); otherwise, or with the environment
variable ``XBARLAB_KERNELS=array``, the array code runs.

The kernels are single-threaded; the matrix products between them use
torch's (or numpy's BLAS) threads. A ``parallel=True`` build was tried: on a
2-core machine numba's thread pool and torch's OpenMP pool (whose threads
spin between regions) slowed each other, plain torch inference included, so
it is not offered. The outer loops are written so that each iteration writes
its own outputs, should a parallel build be revisited. Compiled on first
use, then cached on disk by numba.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from types import SimpleNamespace

import numpy as np

prange = range  # each iteration of a loop written with prange writes its own outputs (see above)

#: values of XBARLAB_KERNELS: "auto" (numba when installed) or "array" (never)
_CHOICES = ("auto", "array")


@functools.cache
def _have_numba() -> bool:
    """numba is installed (found without importing it: ``import xbarlab`` stays light)."""
    return importlib.util.find_spec("numba") is not None


def enabled() -> bool:
    """Whether the fused kernels run: numba is installed and XBARLAB_KERNELS is not "array"."""
    choice = os.environ.get("XBARLAB_KERNELS", "auto")
    if choice not in _CHOICES:
        raise ValueError(f"XBARLAB_KERNELS must be one of {_CHOICES}, got {choice!r}")
    return choice == "auto" and _have_numba()


_KERNELS: dict = {}  # name -> python function, filled by @_kernel
_BUILD: list = []  # the compiled kernels, built on first use


def _kernel(f):
    _KERNELS[f.__name__] = f
    _BUILD.clear()  # registered after a build (an app's kernels, dnn_eval.conv_codes): the next kernels() has it
    return f


def kernels() -> SimpleNamespace:
    """The compiled kernels (a namespace of numba functions, compiled on first use)."""
    if not _BUILD:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency of xbarlab
            raise RuntimeError("the fused CPU kernels need numba: pip install numba "
                               "(or set XBARLAB_KERNELS=array)") from None
        # error_model="numpy": x / 0 gives inf/nan as in numpy and torch (no check that blocks SIMD)
        jit = numba.njit(cache=True, nogil=True, boundscheck=False, error_model="numpy")
        _BUILD.append(SimpleNamespace(**{k: jit(f) for k, f in _KERNELS.items()}))
    return _BUILD[0]


@_kernel
def dac_rowsum(alpha, ct, V):
    """ROWSUM DAC voltages of a block of tiles: V[n, t, i, r] = c / (alpha[n, t, i] - c), c = ct[t, i, r].

    alpha (N, T, M) per tile row (tiles flattened into N), ct (T, M, R) DAC
    codes, V (N, T, M, R) written. 1/B is folded into the tile's
    conductances (see ``plans.RowsumPlan``).
    """
    N, T, M = alpha.shape
    R = ct.shape[2]
    for q in prange(N * T * M):
        n, t, i = q // (T * M), (q // M) % T, q % M
        a = alpha[n, t, i]
        src = ct[t, i]
        dst = V[n, t, i]
        for r in range(R):
            c = src[r]
            dst[r] = c / (a - c)


@_kernel
def adc_accumulate(I, w, full, clip, y, first):
    """ADC on every tile's column currents, then the weighted digital sum over the tiles.

    I (N, K, C, R): ADC inputs in LSB for N column blocks of K tiles each
    (pair x row tiles); w (N, K) each tile's LSB-to-weight factor; y (N, C, R)
    receives sum_k w[n, k] round(I[n, k]) (clipped to [0, full] when
    ``clip``), written when ``first`` and added otherwise. Round half to even,
    as numpy's rint and torch's round. ``full`` has the arrays' dtype.
    """
    N, K, C, R = I.shape
    zero = full - full  # constants in the arrays' dtype: float32 data is computed in float32
    for q in prange(N * C):
        n, j = q // C, q % C
        out = y[n, j]
        for k in range(K):
            wk = w[n, k]
            src = I[n, k, j]
            if first and k == 0:
                for r in range(R):
                    d = np.rint(src[r])
                    if clip:
                        d = min(max(d, zero), full)
                    out[r] = wk * d
            else:
                for r in range(R):
                    d = np.rint(src[r])
                    if clip:
                        d = min(max(d, zero), full)
                    out[r] += wk * d


@_kernel
def diff_accumulate(I, w, lo, hi, quantize, y, first):
    """The ADC of the analog difference (``sensing.Sensing.DIFFERENTIAL``), then the weighted digital sum.

    I (N, S, K, C, R): each array's column currents in units of the difference's LSB, for N column
    blocks of S arrays (2: the pair, 1: a lone array) and K row tiles; w (N, K) each tile's
    LSB-to-weight factor; y (N, C, R) receives sum_k w[n, k] D[n, k], D = I[n, 0, k] - I[n, 1, k]
    (the lone array: I[n, 0, k]), rounded half to even and clipped to [lo, hi] when ``quantize``;
    written when ``first``, added otherwise. ``lo``, ``hi`` have the arrays' dtype.
    """
    N, S, K, C, R = I.shape
    for q in prange(N * C):
        n, j = q // C, q % C
        out = y[n, j]
        for k in range(K):
            wk = w[n, k]
            a = I[n, 0, k, j]
            b = I[n, S - 1, k, j]
            for r in range(R):
                d = a[r] - b[r] if S == 2 else a[r]
                if quantize:
                    d = min(max(np.rint(d), lo), hi)
                if first and k == 0:
                    out[r] = wk * d
                else:
                    out[r] += wk * d


#: input vectors per parallel block of the scale pass of ``dac_codes``
_RBLOCK = 256


@_kernel
def dac_codes(XT, full, signed, x_max, codes, scale):
    """DAC codes of transposed inputs XT (K, R) into codes (K, P*R), P = 2 phases if ``signed``.

    Per column r the scale is ``x_max`` when > 0, else the column's largest
    value (largest magnitude when signed), 1 where that is 0; written to
    scale (R,). Code = round(x / scale * full), clipped to [0, full]; the
    negative phase (columns R..2R) codes -x. The same operations, in the
    same order, as ``stages.dac_codes_t``. ``full`` and ``x_max`` have XT's dtype.
    """
    K, R = XT.shape
    zero = full - full
    for rb in prange((R + _RBLOCK - 1) // _RBLOCK):
        r0, r1 = rb * _RBLOCK, min(R, (rb + 1) * _RBLOCK)
        if x_max > 0:
            for r in range(r0, r1):
                scale[r] = x_max
            continue
        for r in range(r0, r1):
            scale[r] = zero
        for k in range(K):
            row = XT[k]
            if signed:
                for r in range(r0, r1):
                    scale[r] = max(scale[r], abs(row[r]))
            else:
                for r in range(r0, r1):
                    scale[r] = max(scale[r], row[r])
        for r in range(r0, r1):
            if not scale[r] > 0:
                scale[r] = 1.0
    for k in prange(K):
        row = XT[k]
        pos = codes[k]
        if signed:
            for r in range(R):
                xf = row[r] / scale[r]
                pos[r] = min(max(np.rint(xf * full), zero), full)
                pos[R + r] = min(max(np.rint(-xf * full), zero), full)
        else:
            for r in range(R):
                pos[r] = min(max(np.rint(row[r] / scale[r] * full), zero), full)


@_kernel
def transpose(src, dst):
    """dst = src.T for 2-D arrays, in 16 x 16 blocks (cache-friendly on both sides); for the
    batch-last layout of convolutions, (B, C*H*W) <-> (C*H*W, B)."""
    P, Q = src.shape
    for qb in prange((Q + 15) // 16):
        q0, q1 = qb * 16, min(Q, qb * 16 + 16)
        for p0 in range(0, P, 16):
            p1 = min(P, p0 + 16)
            for q in range(q0, q1):
                for p in range(p0, p1):
                    dst[q, p] = src[p, q]

