"""Crossbar layers: a network's Linear and Conv2d evaluated on crossbar tiles through xbarlab's FCM.

Every other op (ReLU, pooling, BatchNorm, additions, the bias) stays
digital, as in the paper. Mapping of a layer onto crossbars:

* ``CrossbarLinear`` (Linear(in, out)): W (K=in, N=out) with ``y = x @ W``,
  one ``FCM``.
* ``CrossbarConv2d``: im2col with the layer's ``ConvGeometry`` (any stride,
  padding, dilation and groups; ``padding_mode`` other than zeros and
  ``padding="same"`` are applied with ``F.pad`` first). Each patch is one
  input vector of K = C/groups * kh * kw rows, in
  ``torch.nn.functional.unfold``'s order; each group is its own weight
  matrix (K, out/groups) and its own ``FCM``, so grouped and depthwise
  convolutions map to separate tiles. On CPU (float32/float64, numba
  installed) the patch matrix is never built and the DAC codes come
  straight from the image (``dnn_eval.conv_codes``); elsewhere (CUDA, or
  ``XBARLAB_KERNELS=array``) the patches are gathered into x^T (K, R)
  (``dnn_eval.im2col``) for ``FCM.matmul_t``.
* Tiling, conductance mapping, the DAC (quantized inputs), every tile's
  G_non-ideal, the ADC on each tile's column currents and the digital
  accumulation across tiles are all done by ``xbarlab.fcm.FCM``; this
  package writes no crossbar model of its own.
* Signed inputs (the first layer of a network fed mean-subtracted data, or
  any layer whose input can be negative): the FCM applies them in two
  phases, the positive part and then the negative part, both as
  non-negative DAC codes, and subtracts the two results digitally. The DAC
  scale is taken per input vector (its largest magnitude), unless
  ``FCMOptions.x_max`` fixes it.
* Each FCM is built once per hardware instance (``program(rng)``, one
  ``numpy.random.Generator`` drawn in layer order) and reused for every
  input; ``regenerate`` rebuilds it from the current weights (re-training).
* Inputs are evaluated in chunks of whole images (``chunk_rows``), so that
  each chunk's FCM work arrays stay in cache.
* Re-training (``straight_through``): ``dnn_eval.autograd.StraightThrough``
  returns the crossbar's values forward and the floating-point layer's
  gradients backward.

Networks are converted by ``dnn_eval.convert.to_crossbar``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xbarlab.backend import TorchNS
from xbarlab.fcm import FCM, FCMOptions
from xbarlab.fcm.slicing import Slicing, build
from xbarlab.spec import CrossbarSpec

from . import conv_codes
from .autograd import StraightThrough
from .im2col import PatchIndex, gather_patches_t, output_size

#: bytes of FCM work arrays per chunk of input vectors (rows are processed in chunks): small
#: enough that each chunk's arrays stay in cache between the FCM's passes over them ...
CHUNK_BYTES = 3 * 2**20
#: ... but at least this many rows, so that each tile's matrix product stays efficient
MIN_CHUNK_ROWS = 256

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _int_pair(field: str, value, minimum: int) -> tuple[int, int]:
    """(a, b) from an int or a sequence of two ints >= minimum; ValueError naming the field otherwise."""
    v = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(v) != 2 or not all(isinstance(e, (int, np.integer)) and not isinstance(e, bool) and e >= minimum
                              for e in v):
        raise ValueError(f"ConvGeometry.{field} must be an integer or a pair of integers >= {minimum}, "
                         f"got {value!r}")
    return int(v[0]), int(v[1])


@dataclass(frozen=True)
class ConvGeometry:
    """How a Conv2d layer's input becomes im2col patches (the meaning of ``torch.nn.Conv2d``'s arguments).

    kernel, stride, dilation: (height, width) pairs of positive integers (an int is both);
    padding: a pair of non-negative integers (pixels) or ``"same"`` / ``"valid"``; groups >= 1;
    padding_mode: one of ``PADDING_MODES``. Frozen; every field is checked, and normalized to pairs.
    """

    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] | str = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    padding_mode: str = "zeros"

    def __post_init__(self) -> None:
        put = object.__setattr__
        for field, minimum in (("kernel", 1), ("stride", 1), ("dilation", 1)):
            put(self, field, _int_pair(field, getattr(self, field), minimum))
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid"):
                raise ValueError(f"ConvGeometry.padding must be 'same', 'valid' or pixels, got {self.padding!r}")
            if self.padding == "same" and self.stride != (1, 1):
                raise ValueError(f"ConvGeometry.padding 'same' needs stride (1, 1), got {self.stride}")
        else:
            put(self, "padding", _int_pair("padding", self.padding, 0))
        if isinstance(self.groups, bool) or not isinstance(self.groups, (int, np.integer)) or self.groups < 1:
            raise ValueError(f"ConvGeometry.groups must be an integer >= 1, got {self.groups!r}")
        put(self, "groups", int(self.groups))
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"ConvGeometry.padding_mode must be one of {PADDING_MODES}, got {self.padding_mode!r}")

    @classmethod
    def of(cls, m: nn.Conv2d) -> "ConvGeometry":
        """The geometry of a ``torch.nn.Conv2d``."""
        return cls(tuple(m.kernel_size), tuple(m.stride), m.padding if isinstance(m.padding, str) else tuple(m.padding),
                   tuple(m.dilation), m.groups, m.padding_mode)

    def explicit_pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(x, pad): ``"same"`` and non-zero padding modes applied to x with ``F.pad``, and the zero
        padding (rows, columns) still to apply."""
        pad = self.padding
        if pad == "valid":
            return x, (0, 0)
        if pad == "same":
            th, tw = self.dilation[0] * (self.kernel[0] - 1), self.dilation[1] * (self.kernel[1] - 1)
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            return F.pad(x, [tw // 2, tw - tw // 2, th // 2, th - th // 2], mode=mode), (0, 0)
        if self.padding_mode != "zeros" and any(pad):
            return F.pad(x, [pad[1], pad[1], pad[0], pad[0]], mode=self.padding_mode), (0, 0)
        return x, pad


class CrossbarLayer(nn.Module):
    """What the crossbar Linear and Conv2d layers share: weights, FCMs, chunking and the forward switch.

    ``weight`` and ``bias`` are ``nn.Parameter``s (trainable for re-training). ``enabled`` False runs the
    layer in floating point (ideal references); with ``straight_through`` on and gradients enabled the
    forward pass returns the crossbar's values with the floating-point layer's gradient.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, spec: CrossbarSpec,
                 options: FCMOptions | None = None, name: str = "", slicing: Slicing | None = None) -> None:
        super().__init__()
        if not isinstance(spec, CrossbarSpec):
            raise ValueError(f"spec must be a CrossbarSpec, got {type(spec).__name__}")
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.spec = spec
        self.options = options or FCMOptions()
        self.slicing = slicing or Slicing()  # weight slices / bit-serial inputs (xbarlab.fcm.slicing)
        self.slicing.check(spec, self.options)
        self.name = name
        self.straight_through = False
        self.fcms: list = []
        self.enabled = True

    def matrices(self) -> list[np.ndarray]:
        """The weight matrices W (K, N), ``y = x @ W``, float64 (one per group)."""
        raise NotImplementedError

    def program(self, rng: np.random.Generator | None) -> "CrossbarLayer":
        """Build the FCMs of this layer for the current weights (one hardware instance). The FCM is
        built with default options when none are given (G_non-ideal is G itself, at no cost, for a
        circuit without parasitics)."""
        if self.sliced:
            self.fcms = [build(W, self.spec, rng, self.options, self.slicing) for W in self.matrices()]
        else:
            self.fcms = [FCM.from_weights(W, self.spec, rng, self.options) for W in self.matrices()]
        for f in self._tile_models():  # the evaluation's per-tile constants: part of generation, not of the first input
            if f.Gn is not None:
                f.compile()
        return self

    @property
    def sliced(self) -> bool:
        """Whether weights are sliced or inputs bit-serial (``SlicedFCM``s in place of plain FCMs)."""
        return not self.slicing.is_plain(self.spec)

    def _tile_models(self) -> list:
        """The plain FCMs behind ``fcms`` (each slice of a ``SlicedFCM``)."""
        return [g for f in self.fcms for g in getattr(f, "fcms", [f])]

    regenerate = program

    @property
    def n_tiles(self) -> int:
        return sum(f.n_tiles for f in self.fcms)

    def shapes(self) -> list[tuple[int, int]]:
        return [W.shape for W in self.matrices()]

    def chunk_rows(self, elsize: int) -> int:
        """Input vectors per chunk: the FCMs' per-tile work arrays of one column block of tiles
        stay within CHUNK_BYTES (cache-sized), at least MIN_CHUNK_ROWS."""
        per_row = max([f.Gn.shape[0] * f.Gn.shape[1] * max(f.Gn.shape[3], f.Gn.shape[4])
                       for f in self._tile_models() if f.Gn is not None] or [1]) * elsize
        return max(MIN_CHUNK_ROWS, CHUNK_BYTES // per_row)

    def _programmed(self) -> None:
        if not self.fcms:
            raise RuntimeError(f"crossbar layer {self.name!r} is not programmed; call program(rng) first")

    @staticmethod
    def _signed(x: torch.Tensor) -> bool:
        """Whether the layer's input has a negative entry: tested once per layer, on the activation
        before im2col (same values, and zeros), so that the chunks need no test of their own. A NaN
        (the layers skip the finiteness check) makes the minimum NaN: the other entries are tested then."""
        return TorchNS.any_negative(x)

    def forward_crossbar(self, x: torch.Tensor) -> torch.Tensor:
        """The layer's crossbar output, without the bias. The finiteness check is skipped (a NaN/Inf
        activation gives NaN/Inf outputs instead of an error, with no host synchronization)."""
        raise NotImplementedError

    def forward_float(self, x: torch.Tensor) -> torch.Tensor:
        """The layer in floating point, without the bias."""
        raise NotImplementedError

    def _straight_through(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _bias(self) -> torch.Tensor:
        """The bias, shaped to broadcast over the layer's output."""
        return self.bias

    def _add_bias(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.bias is None else y + self._bias()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            y = self.forward_float(x)
        elif self.straight_through and torch.is_grad_enabled():
            return self._straight_through(x)
        else:
            with torch.no_grad():
                y = self.forward_crossbar(x)  # a new tensor of the layer's own: the bias is added in place
                return y if self.bias is None else y.add_(self._bias())
        return self._add_bias(y)

    def extra_repr(self) -> str:
        return f"W={tuple(self.weight.shape)}, xbar={self.spec.rows}x{self.spec.cols}, tiles={self.n_tiles}"


class CrossbarLinear(CrossbarLayer):
    """A Linear layer on crossbars: one FCM of W = weight^T; inputs go to it transposed (``FCM.matmul_t``)."""

    def matrices(self) -> list[np.ndarray]:
        return [self.weight.detach().to("cpu", torch.float64).T.numpy()]

    def forward_crossbar(self, x):
        self._programmed()
        signed = self._signed(x)
        chunk = self.chunk_rows(x.element_size())
        X = x.reshape(-1, x.shape[-1])
        f = self.fcms[0]
        out = X.new_empty((X.shape[0], f.shape[1]))
        for k in range(0, X.shape[0], chunk):
            out[k:k + chunk] = f.matmul_t(X[k:k + chunk].T, check_finite=False, signed=signed).T
        return out.reshape(x.shape[:-1] + (out.shape[-1],))

    def forward_float(self, x):
        return F.linear(x, self.weight)

    def _straight_through(self, x):
        return StraightThrough.apply(x, self.weight, self.bias, self, None)

    def extra_repr(self) -> str:
        return f"linear, {super().extra_repr()}"


class CrossbarConv2d(CrossbarLayer):
    """A Conv2d layer on crossbars through im2col; one FCM per group (``ConvGeometry.groups``)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, spec: CrossbarSpec,
                 geometry: ConvGeometry, options: FCMOptions | None = None, name: str = "",
                 slicing: Slicing | None = None) -> None:
        if not isinstance(geometry, ConvGeometry):
            raise ValueError(f"geometry must be a ConvGeometry, got {type(geometry).__name__}")
        if weight.dim() != 4 or tuple(weight.shape[-2:]) != geometry.kernel or weight.shape[0] % geometry.groups:
            raise ValueError(f"conv weight of shape {tuple(weight.shape)} does not fit {geometry}: needs "
                             f"(out, in/groups, *kernel) with out divisible by groups")
        super().__init__(weight, bias, spec, options, name, slicing)
        self.geometry = geometry
        self._patch_index = PatchIndex()  # im2col gather indices (im2col path only)

    @property
    def groups(self) -> int:
        return self.geometry.groups

    def matrices(self) -> list[np.ndarray]:
        w = self.weight.detach().to("cpu", torch.float64)
        g = self.groups
        ng = w.shape[0] // g
        return [w[k * ng:(k + 1) * ng].reshape(ng, -1).T.numpy() for k in range(g)]

    def forward_crossbar(self, x):
        signed = self._signed(x)
        x, pad = self.geometry.explicit_pad(x)
        return self.forward_padded(x, pad, signed)

    def forward_padded(self, x: torch.Tensor, pad: tuple[int, int], signed: bool | None = None) -> torch.Tensor:
        """``forward_crossbar`` of an input that has had ``ConvGeometry.explicit_pad`` applied; ``pad`` is
        the zero padding still to add."""
        self._programmed()
        if signed is None:
            signed = self._signed(x)
        chunk = self.chunk_rows(x.element_size())
        if conv_codes.fused_applies(x) and not self.sliced:  # SlicedFCM: through matmul_t
            return conv_codes.conv_fused(x.contiguous(), self.fcms, self.geometry, pad, bool(signed), chunk,
                                         self.spec.dac.full_code, self.options.x_max)
        return self._im2col_path(x, pad, signed, chunk)

    def _im2col_path(self, x, pad, signed, chunk):
        """Patches gathered into x^T (K, R) per chunk of whole images, through ``FCM.matmul_t``."""
        if any(pad):
            x = F.pad(x, [pad[1], pad[1], pad[0], pad[0]])
        x = x.contiguous()
        B = x.shape[0]
        Ho, Wo = output_size(x.shape[-2], x.shape[-1], self.geometry, (0, 0))
        L, g = Ho * Wo, self.groups
        kg = self.fcms[0].shape[0]
        N = sum(f.shape[1] for f in self.fcms)
        out = x.new_empty((B, N, L))
        nb = max(1, chunk // max(L, 1))
        for b0 in range(0, B, nb):
            b1 = min(B, b0 + nb)
            XT = gather_patches_t(x, self.geometry, b0, b1, self._patch_index)
            ys = [f.matmul_t(XT[k * kg:(k + 1) * kg] if g > 1 else XT, check_finite=False, signed=signed)
                  for k, f in enumerate(self.fcms)]
            y = ys[0] if g == 1 else torch.cat(ys, dim=0)  # (N, nb*L)
            out[b0:b1] = y.reshape(N, b1 - b0, L).permute(1, 0, 2)
        return out.reshape(B, N, Ho, Wo)

    def forward_float(self, x):
        x, pad = self.geometry.explicit_pad(x)
        geo = self.geometry
        return F.conv2d(x, self.weight, None, geo.stride, pad, geo.dilation, geo.groups)

    def _straight_through(self, x):
        xp, pad = self.geometry.explicit_pad(x)  # explicit padding (other modes, "same") keeps its own autograd
        return StraightThrough.apply(xp, self.weight, self.bias, self, pad)

    def _bias(self):
        return self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"conv, {self.geometry}, {super().extra_repr()}"
