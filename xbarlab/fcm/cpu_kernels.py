"""Fused CPU loops for the FCM evaluation (numba), each one pass over its data.

The FCM's evaluation (``FCM._eval_t``) is a few element-wise passes around
batched matrix products. With plain array operations each step is its own
pass over memory (``alpha - c``, then the division; the ADC's round, then
the accumulation product). These kernels do the element-wise work of one
step in a single loop; the matrix products stay with BLAS.

They compute the same operations in the same precision as the array code
(IEEE, no ``fastmath``: no reassociation, no fused multiply-add), so the DAC
voltages and the ADC codes are bitwise the same; only the accumulation over
tiles sums in another order (a rounding of the last bit of the result).

Used for numpy arrays and CPU torch tensors of float32 or float64 when numba
is installed (``pip install xbarlab[dnn]`` brings it); otherwise, or with the
environment variable ``XBARLAB_KERNELS=array``, the array code runs. The
kernels are single-threaded (as the benchmark's one torch thread) and are
compiled on first use, then cached on disk by numba.
"""

from __future__ import annotations

import os

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is in the dnn extra
    numba = None

#: values of XBARLAB_KERNELS: "auto" (numba when installed) or "array" (never)
_CHOICES = ("auto", "array")


def enabled() -> bool:
    """Whether the fused kernels run: numba is importable and XBARLAB_KERNELS is not "array"."""
    choice = os.environ.get("XBARLAB_KERNELS", "auto")
    if choice not in _CHOICES:
        raise ValueError(f"XBARLAB_KERNELS must be one of {_CHOICES}, got {choice!r}")
    return numba is not None and choice == "auto"


def _jit(f):
    if numba is None:  # pragma: no cover
        return f
    # error_model="numpy": x / 0 gives inf/nan as in numpy and torch (no check that blocks SIMD)
    return numba.njit(cache=True, nogil=True, boundscheck=False, error_model="numpy")(f)


@_jit
def dac_rowsum(alpha, ct, V):
    """ROWSUM DAC voltages of a block of tiles: V[n, t, i, r] = c / (alpha[n, t, i] - c), c = ct[t, i, r].

    alpha (N, T, M) per tile row (tiles flattened into N), ct (T, M, R) DAC
    codes, V (N, T, M, R) written. 1/B is folded into the tile's
    conductances (see ``FCM._plan``).
    """
    N, T, M = alpha.shape
    R = ct.shape[2]
    for n in range(N):
        for t in range(T):
            for i in range(M):
                a = alpha[n, t, i]
                src = ct[t, i]
                dst = V[n, t, i]
                for r in range(R):
                    c = src[r]
                    dst[r] = c / (a - c)


@_jit
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
    for n in range(N):
        for j in range(C):
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


@_jit
def dac_codes(XT, full, signed, x_max, codes, scale):
    """DAC codes of transposed inputs XT (K, R) into codes (K, P*R), P = 2 phases if ``signed``.

    Per column r the scale is ``x_max`` when > 0, else the column's largest
    value (largest magnitude when signed), 1 where that is 0; written to
    scale (R,). Code = round(x / scale * full), clipped to [0, full]; the
    negative phase (columns R..2R) codes -x. The same operations, in the
    same order, as ``FCM._codes_t``. ``full`` and ``x_max`` have XT's dtype.
    """
    K, R = XT.shape
    zero = full - full
    if x_max > 0:
        for r in range(R):
            scale[r] = x_max
    else:
        for r in range(R):
            scale[r] = 0.0
        for k in range(K):
            row = XT[k]
            if signed:
                for r in range(R):
                    scale[r] = max(scale[r], abs(row[r]))
            else:
                for r in range(R):
                    scale[r] = max(scale[r], row[r])
        for r in range(R):
            if not scale[r] > 0:
                scale[r] = 1.0
    for k in range(K):
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


@_jit
def dac_codes_conv(xt, cmax, kh, kw, sh, sw, ph, pw, dh, dw, Wo, p0, p1, full, signed, x_max, codes, scale):
    """``dac_codes`` of a convolution's im2col patches, read straight from the image (no patch matrix).

    xt (C, H, W, B): the images batch-last. The patches of output positions
    p0..p1-1 (p = ho * Wo + wo) for every image form the columns
    r = (p - p0) * B + b; row (c, i, j) (the weight matrix's (C, kh, kw)
    order, as ``torch.nn.functional.unfold``) of column r holds
    x[b, c, ho*sh - ph + i*dh, wo*sw - pw + j*dw], zero outside the image
    (zero padding ph, pw). codes (C*kh*kw, P*R) and scale (R,) are written
    exactly as ``dac_codes`` writes them for that patch matrix. Batch-last,
    every inner loop runs over the B images, contiguous in memory.

    cmax (H, W, B) is ``channel_max(xt, signed)``: a patch's largest value is
    the largest of its pixels' values over the channels, so the scale costs
    kh*kw reads per patch, not C*kh*kw (unused when ``x_max`` > 0).
    """
    C, H, W, B = xt.shape
    R = (p1 - p0) * B
    zero = full - full
    if x_max > 0:
        for r in range(R):
            scale[r] = x_max
    else:
        for r in range(R):
            scale[r] = zero
        for i in range(kh):
            for j in range(kw):
                for p in range(p0, p1):
                    h = (p // Wo) * sh - ph + i * dh
                    w = (p % Wo) * sw - pw + j * dw
                    if h < 0 or h >= H or w < 0 or w >= W:
                        continue
                    src = cmax[h, w]
                    dst = scale[(p - p0) * B:(p - p0 + 1) * B]
                    for b in range(B):
                        dst[b] = max(dst[b], src[b])
        for r in range(R):
            if not scale[r] > 0:
                scale[r] = 1.0
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = codes[(c * kh + i) * kw + j]
                for p in range(p0, p1):
                    h = (p // Wo) * sh - ph + i * dh
                    w = (p % Wo) * sw - pw + j * dw
                    base = (p - p0) * B
                    sc = scale[base:base + B]
                    pos = row[base:base + B]
                    if h < 0 or h >= H or w < 0 or w >= W:
                        for b in range(B):
                            pos[b] = zero
                        if signed:
                            neg = row[R + base:R + base + B]
                            for b in range(B):
                                neg[b] = zero
                        continue
                    src = xt[c, h, w]
                    if signed:
                        neg = row[R + base:R + base + B]
                        for b in range(B):
                            xf = src[b] / sc[b]
                            pos[b] = min(max(np.rint(xf * full), zero), full)
                            neg[b] = min(max(np.rint(-xf * full), zero), full)
                    else:
                        for b in range(B):
                            pos[b] = min(max(np.rint(src[b] / sc[b] * full), zero), full)


@_jit
def channel_max(xt, signed):
    """Per pixel and image, the largest value (largest magnitude if ``signed``) over the channels
    and 0: xt (C, H, W, B) -> (H, W, B). For ``dac_codes_conv``."""
    C, H, W, B = xt.shape
    cmax = np.zeros((H, W, B), dtype=xt.dtype)
    for c in range(C):
        for h in range(H):
            for w in range(W):
                src = xt[c, h, w]
                dst = cmax[h, w]
                if signed:
                    for b in range(B):
                        dst[b] = max(dst[b], abs(src[b]))
                else:
                    for b in range(B):
                        dst[b] = max(dst[b], src[b])
    return cmax


@_jit
def transpose(src, dst):
    """dst = src.T for 2-D arrays, in 16 x 16 blocks (cache-friendly on both sides); for the
    batch-last layout of convolutions, (B, C*H*W) <-> (C*H*W, B)."""
    P, Q = src.shape
    for p0 in range(0, P, 16):
        p1 = min(P, p0 + 16)
        for q0 in range(0, Q, 16):
            q1 = min(Q, q0 + 16)
            for q in range(q0, q1):
                for p in range(p0, p1):
                    dst[q, p] = src[p, q]
