"""A convolution's DAC codes read straight from the image: the fused CPU path, no patch matrix.

On CPU (float32/float64 input, the fused kernels on: numba installed and
``XBARLAB_KERNELS`` not ``array``) the im2col matrix is never built. The
images go batch-last, (C, H, W, B); per chunk of output positions (all
images) and group, one numba kernel (``dac_codes_conv``) writes the DAC code
of every patch element (zero padding included) for ``FCM.matmul_codes_t``.
The codes are those ``xbarlab.fcm.cpu_kernels.dac_codes`` writes for the
im2col matrix, bitwise (``tests/dnn/test_conv_codes.py``), so the outputs
are those of the im2col path; every inner loop runs over the batch.

The two kernels register with ``xbarlab.fcm.cpu_kernels`` (its ``_kernel``
decorator, its ``enabled()`` switch, one compiled namespace ``kernels()``
with the same numba settings), so ``XBARLAB_KERNELS=array`` turns them off
with the rest and a benchmark that times ``kernels()`` sees them too.
"""

from __future__ import annotations

import numpy as np
import torch

from xbarlab.fcm import cpu_kernels
from xbarlab.fcm.cpu_kernels import _kernel, prange

from .im2col import output_size


def fused_applies(x: torch.Tensor) -> bool:
    """Whether a convolution's DAC codes come straight from the image: CPU float32/float64 input
    with the fused kernels enabled."""
    return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and cpu_kernels.enabled()


@_kernel
def dac_codes_conv(xt, cmax, kh, kw, sh, sw, ph, pw, dh, dw, Wo, p0, p1, full, signed, x_max, codes, scale, sums):
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

    sums (P*R,), unless empty: each column's sum of its codes, in the codes' dtype, added up while
    they are written (exact where every sum is an integer below 2**24 in float32, 2**53 in float64;
    the offset mapping's digital offset, ``FCM.matmul_codes_t``). The loop over rows then adds into
    shared outputs: a parallel build would split it over columns instead.
    """
    C, H, W, B = xt.shape
    R = (p1 - p0) * B
    zero = full - full
    for p in prange(p0, p1):
        dst = scale[(p - p0) * B:(p - p0 + 1) * B]
        if x_max > 0:
            for b in range(B):
                dst[b] = x_max
            continue
        for b in range(B):
            dst[b] = zero
        for i in range(kh):
            for j in range(kw):
                h = (p // Wo) * sh - ph + i * dh
                w = (p % Wo) * sw - pw + j * dw
                if h < 0 or h >= H or w < 0 or w >= W:
                    continue
                src = cmax[h, w]
                for b in range(B):
                    dst[b] = max(dst[b], src[b])
        for b in range(B):
            if not dst[b] > 0:
                dst[b] = 1.0
    if sums.shape[0] > 0:  # (a loop of its own: the loop without sums stays as tight as it was; each run
        # of codes is added to the sums right after it is written, in a pass of its own: both loops vectorize)
        for r in range(sums.shape[0]):
            sums[r] = zero
        for k in range(C * kh * kw):  # (the sums add over rows: not a loop for a parallel build)
            c, i, j = k // (kh * kw), (k // kw) % kh, k % kw
            row = codes[k]
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
                sp = sums[base:base + B]
                if signed:
                    neg = row[R + base:R + base + B]
                    for b in range(B):
                        xf = src[b] / sc[b]
                        pos[b] = min(max(np.rint(xf * full), zero), full)
                        neg[b] = min(max(np.rint(-xf * full), zero), full)
                    sn = sums[R + base:R + base + B]
                    for b in range(B):
                        sn[b] += neg[b]
                else:
                    for b in range(B):
                        pos[b] = min(max(np.rint(src[b] / sc[b] * full), zero), full)
                for b in range(B):
                    sp[b] += pos[b]
        return
    for k in prange(C * kh * kw):
        c, i, j = k // (kh * kw), (k // kw) % kh, k % kw
        row = codes[k]
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


@_kernel
def channel_max(xt, signed, cmax):
    """cmax (H, W, B) = per pixel and image, the largest value (largest magnitude if ``signed``)
    over the channels of xt (C, H, W, B), and 0. For ``dac_codes_conv``."""
    C, H, W, B = xt.shape
    for h in prange(H):
        for w in range(W):
            dst = cmax[h, w]
            for b in range(B):
                dst[b] = 0.0
            for c in range(C):
                src = xt[c, h, w]
                if signed:
                    for b in range(B):
                        dst[b] = max(dst[b], abs(src[b]))
                else:
                    for b in range(B):
                        dst[b] = max(dst[b], src[b])


def batch_last(x: torch.Tensor) -> np.ndarray:
    """The images x (B, C, H, W) of a CPU tensor as a numpy array (C, H, W, B) (``cpu_kernels.transpose``)."""
    B, C, H, W = x.shape
    xt = np.empty((C, H, W, B), dtype=x.numpy().dtype)
    cpu_kernels.kernels().transpose(x.numpy().reshape(B, C * H * W), xt.reshape(C * H * W, B))
    return xt


def conv_codes(xt: np.ndarray, cmax: np.ndarray, geometry, pad: tuple[int, int], Wo: int, p0: int, p1: int,
               full_code: int, signed: bool, x_max: float | None, codes: np.ndarray, scale: np.ndarray,
               sums: np.ndarray | None = None) -> None:
    """The DAC codes (K, P*R) and per-column scales (R,) of output positions p0..p1-1 of every image of xt
    (C, H, W, B; one group's channels), written into ``codes`` and ``scale``; ``cmax`` is
    ``channel_max(xt, signed)`` (unused with a fixed ``x_max``). Arguments of ``xt``'s dtype.
    ``sums`` (P*R,): each column's sum of codes is written there too (``dac_codes_conv``)."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    full = np.asarray(full_code, dtype=xt.dtype)[()]
    xm = np.asarray(0.0 if x_max is None else x_max, dtype=xt.dtype)[()]
    cpu_kernels.kernels().dac_codes_conv(xt, cmax, kh, kw, sh, sw, pad[0], pad[1], dh, dw, Wo, p0, p1,
                                         full, bool(signed), xm, codes, scale,
                                         np.empty(0, dtype=xt.dtype) if sums is None else sums)


def conv_fused(x: torch.Tensor, fcms: list, geometry, pad: tuple[int, int], signed: bool, chunk: int,
               full_code: int, x_max: float | None) -> torch.Tensor:
    """A convolution's crossbar output y (B, N, Ho, Wo) without the im2col matrix.

    x (B, C, H, W) contiguous CPU input, ``pad`` the zero padding to apply, ``fcms`` one FCM per
    group. The input vectors are ordered (position, image), ``chunk`` of them at a time; the
    scale (``x_max`` too) is applied while moving each chunk to (B, N, L): one strided pass.
    The codes are made in x's dtype: one that does not hold them exactly (float32 beyond 24 bits) raises
    in ``FCM.compile`` (``xbarlab.fcm.stages.check_spec_codes``), before any output is written.
    """
    B, C, H, W = x.shape
    Ho, Wo = output_size(H, W, geometry, pad)
    L, g = Ho * Wo, geometry.groups
    kh, kw = geometry.kernel
    cg, kg = C // g, (C // g) * kh * kw
    N = sum(f.shape[1] for f in fcms)
    xt = batch_last(x)  # each group's channels contiguous
    y = x.new_empty((B, N, Ho, Wo))
    y3 = y.view(B, N, L)
    npos = max(1, chunk // max(B, 1))
    n0 = np.cumsum([0] + [f.shape[1] for f in fcms]).tolist()  # each group's first channel
    xg = [xt[k * cg:(k + 1) * cg] for k in range(g)]
    cmax = [v[0] for v in xg]  # (unused with a fixed x_max)
    if x_max is None:
        cmax = [np.empty((H, W, B), dtype=xt.dtype) for _ in xg]
        for v, m in zip(xg, cmax):
            cpu_kernels.kernels().channel_max(v, bool(signed), m)
    # the offset mapping's column sums of the codes, made with them where they are exact integers
    exact = kg * full_code < 2.0 ** (24 if x.dtype == torch.float32 else 53)
    with_sums = [exact and f.Gn is not None and f.compile().uses_code_sums for f in fcms]
    for p0 in range(0, L, npos):
        p1 = min(L, p0 + npos)
        R = (p1 - p0) * B
        for k, f in enumerate(fcms):
            codes = x.new_empty((kg, 2 * R if signed else R))
            scale = x.new_empty((1, R))
            sums = x.new_empty((codes.shape[1],)) if with_sums[k] else None
            conv_codes(xg[k], cmax[k], geometry, pad, Wo, p0, p1, full_code, signed, x_max,
                       codes.numpy(), scale.numpy()[0], None if sums is None else sums.numpy())
            yf = f.matmul_codes_t(codes, scale, R, scaled=False, code_sums=sums)  # unscaled (N_k, R)
            nk, P = f.shape[1], p1 - p0
            torch.mul(yf.view(nk, P, B).permute(2, 0, 1), scale.view(P, B).t()[:, None, :],
                      out=y3[:, n0[k]:n0[k] + nk, p0:p1])
    return y
