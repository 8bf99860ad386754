"""im2col: a convolution's input patches gathered as the columns of one matrix.

The patch of output pixel (b, ho, wo) is one input vector of the layer's
weight matrix W (K, N), K = C * kh * kw rows in ``torch.nn.functional.unfold``'s
(C, kh, kw) order. The FCM takes its inputs transposed (``FCM.matmul_t``), so
the patches are gathered straight into x^T (K, R), one column per patch,
R = images * Ho * Wo, in one copy. This is the path for CUDA and for
``XBARLAB_KERNELS=array``; on CPU with numba the DAC codes are read from the
image instead (``dnn_eval.conv_codes``).
"""

from __future__ import annotations

import torch

#: gather indices kept per layer (one per input chunk shape and device): a network sees a
#: handful of chunk shapes (a full chunk, the last one); more are dropped oldest first
MAX_INDICES = 8


class PatchIndex:
    """The flat gather indices of ``gather_patches_t`` for each (size, stride, device) seen, at most
    ``MAX_INDICES`` of them. Owned by one layer; it holds only values derived from shapes."""

    def __init__(self) -> None:
        self._index: dict = {}

    def get(self, size: tuple, stride: tuple, device: torch.device) -> torch.Tensor:
        key = (size, stride, str(device))
        idx = self._index.get(key)
        if idx is None:
            n = size[3] * stride[3]  # images x (C * Hp * Wp): the flat length of the chunk
            idx = torch.arange(n, device=device).as_strided(size, stride).reshape(-1)
            if len(self._index) >= MAX_INDICES:
                self._index.pop(next(iter(self._index)))
            self._index[key] = idx
        return idx

    def __len__(self) -> int:
        return len(self._index)


def output_size(height: int, width: int, geometry, pad: tuple[int, int]) -> tuple[int, int]:
    """(Ho, Wo) of a convolution of ``geometry`` on an image of height x width with zero padding ``pad``;
    ValueError where the (dilated) kernel is larger than the padded image (no output position)."""
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    ho = (height + 2 * pad[0] - dh * (kh - 1) - 1) // sh + 1
    wo = (width + 2 * pad[1] - dw * (kw - 1) - 1) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"ConvGeometry.kernel {geometry.kernel} (dilation {geometry.dilation}) spans "
                         f"{dh * (kh - 1) + 1} x {dw * (kw - 1) + 1} pixels, more than the padded input "
                         f"{height + 2 * pad[0]} x {width + 2 * pad[1]}")
    return ho, wo


def gather_patches_t(x: torch.Tensor, geometry, b0: int, b1: int, index: PatchIndex) -> torch.Tensor:
    """x^T (K, (b1 - b0) * Ho * Wo): the patches of images b0..b1-1 of x (B, C, Hp, Wp), already
    zero padded and contiguous, as columns ordered (image, ho, wo).

    XT[(c, i, j), (b, ho, wo)] = x[b, c, ho*sh + i*dh, wo*sw + j*dw]. Where each patch row is a long
    contiguous run (1x1 kernels) or there are few patches, a strided copy; otherwise a flat gather
    with ``index``'s cached indices, which is faster for short runs.
    """
    _, C, Hp, Wp = x.shape
    (kh, kw), (sh, sw), (dh, dw) = geometry.kernel, geometry.stride, geometry.dilation
    Ho, Wo = output_size(Hp, Wp, geometry, (0, 0))
    L, K = Ho * Wo, C * kh * kw
    size = (C, kh, kw, b1 - b0, Ho, Wo)
    stride = (Hp * Wp, dh * Wp, dw, C * Hp * Wp, sh * Wp, sw)
    if kh * kw == 1 or L == 1:
        return x[b0:b1].as_strided(size, stride).reshape(K, (b1 - b0) * L)
    idx = index.get(size, stride, x.device)
    return x[b0:b1].reshape(-1).index_select(0, idx).reshape(K, (b1 - b0) * L)
