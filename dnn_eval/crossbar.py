"""Run a network's Linear and Conv2d layers on crossbars through xbarlab's FCM.

Each weighted layer becomes a ``CrossbarOp``. Every other op (ReLU,
pooling, BatchNorm, additions, the bias) stays digital, as in the paper.

Mapping of a layer onto crossbars:

* Linear(in, out): W (K=in, N=out) with ``y = x @ W``, one ``FCM``.
* Conv2d: im2col (any stride, padding, dilation; ``padding_mode`` other
  than zeros and ``padding="same"`` are applied with ``F.pad`` first). Each
  patch is one input vector of K = C/groups * kh * kw rows, in
  ``torch.nn.functional.unfold``'s order; each group is its own weight
  matrix (K, out/groups) and its own ``FCM``, so grouped and depthwise
  convolutions map to separate tiles. On CPU (float32/float64, numba
  installed) the patch matrix is never built: the images go batch-last and
  ``xbarlab.fcm.cpu_kernels.dac_codes_conv`` writes every patch's DAC codes
  straight from them for ``FCM.matmul_codes_t`` (the same codes, tested
  against the im2col path); elsewhere (CUDA, or ``XBARLAB_KERNELS=array``)
  the patches are gathered into x^T (K, R) for ``FCM.matmul_t``.
* Tiling, conductance mapping, the DAC (quantized inputs), every tile's
  G_non-ideal, the ADC on each tile's column currents and the digital
  accumulation across tiles are all done by ``xbarlab.fcm.FCM.matmul``;
  this module writes no crossbar model of its own.
* Signed inputs (the first layer of a network fed mean-subtracted data, or
  any layer whose input can be negative): the FCM applies them in two
  phases, the positive part and then the negative part, both as
  non-negative DAC codes, and subtracts the two results digitally. The
  DAC scale is taken per input vector (its largest magnitude), unless
  ``FCMOptions.x_max`` fixes it.
* Each FCM is built once per hardware instance (``program(rng)``, one
  ``numpy.random.Generator`` drawn in layer order) and reused for every
  input; ``regenerate`` rebuilds it from the current weights (re-training).
* Re-training (``straight_through``): ``_StraightThrough`` returns the
  crossbar's values forward and the floating-point layer's gradients
  backward, i.e. ``y_fp + (y_xbar - y_fp).detach()`` without computing
  y_fp (the backward needs only the input and the weight).

Networks come in two forms:

* an ``nn.Module`` (bundled architectures): each ``nn.Linear`` /
  ``nn.Conv2d`` submodule is replaced by a ``CrossbarOp``;
* a ``torch.export`` program: ``ExportedProgram.module()`` gives a
  ``GraphModule`` whose graph calls ``aten.linear`` / ``aten.conv2d`` /
  ``aten.convolution`` with the weights as ``get_attr`` nodes. Each such
  node is rewritten into a ``call_module`` of a ``CrossbarOp`` (the graph
  keeps its shape guards), then the module is recompiled. Tested with
  torch 2.13 (``torch.export.export``'s default IR, not decomposed to
  ``addmm``).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

try:  # the FCM's public home; its module while the package has no __init__
    from xbarlab.fcm import FCM, FCMOptions
except ImportError:  # pragma: no cover
    from xbarlab.fcm.model import FCM, FCMOptions

from xbarlab.fcm import cpu_kernels
from xbarlab.spec import CrossbarSpec

#: bytes of FCM work arrays per chunk of input vectors (rows are processed in chunks): small
#: enough that each chunk's arrays stay in cache between the FCM's passes over them ...
CHUNK_BYTES = 3 * 2**20
#: ... but at least this many rows, so that each tile's matrix product stays efficient
MIN_CHUNK_ROWS = 256


def _fcm(W: np.ndarray, spec: CrossbarSpec, rng, options: FCMOptions | None):
    """``FCM.from_weights`` with default options (G_non-ideal is G itself, at
    no cost, for a circuit without parasitics)."""
    return FCM.from_weights(W, spec, rng, options or FCMOptions())


class CrossbarOp(nn.Module):
    """A Linear or Conv2d layer evaluated on crossbars.

    ``weight`` and ``bias`` are ``nn.Parameter``s (trainable for
    re-training). With ``straight_through`` on and gradients enabled the
    forward pass returns ``y_fp + (y_xbar - y_fp).detach()``: the crossbar's
    values with the floating-point layer's gradient.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, spec: CrossbarSpec,
                 options: FCMOptions | None = None, conv: dict | None = None, name: str = "") -> None:
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.spec = spec
        self.options = options or FCMOptions()
        self.conv = None if conv is None else dict(conv)
        self.name = name
        self.straight_through = False
        self.fcms: list = []
        self.enabled = True  # False: run the layer in floating point (for ideal references)
        self._im2col_index: dict = {}  # im2col gather indices per input chunk shape (a cache)

    # ------------------------------------------------------------ mapping
    @property
    def groups(self) -> int:
        return 1 if self.conv is None else int(self.conv["groups"])

    def matrices(self) -> list[np.ndarray]:
        """The weight matrices W (K, N), ``y = x @ W``, one per group, float64."""
        w = self.weight.detach().to("cpu", torch.float64)
        if self.conv is None:
            return [w.T.numpy()]
        g = self.groups
        ng = w.shape[0] // g
        return [w[k * ng:(k + 1) * ng].reshape(ng, -1).T.numpy() for k in range(g)]

    def program(self, rng: np.random.Generator | None) -> "CrossbarOp":
        """Build the FCMs of this layer for the current weights (one hardware instance)."""
        self.fcms = [_fcm(W, self.spec, rng, self.options) for W in self.matrices()]
        for f in self.fcms:  # the evaluation's per-tile constants: part of generation, not of the first input
            if f.Gn is not None:
                f._plan()
        return self

    regenerate = program

    @property
    def n_tiles(self) -> int:
        return sum(f.n_tiles for f in self.fcms)

    def shapes(self) -> list[tuple[int, int]]:
        return [W.shape for W in self.matrices()]

    # ------------------------------------------------------------ evaluation
    def _pad(self, x):
        c = self.conv
        pad = c["padding"]
        if isinstance(pad, str):
            if pad == "valid":
                return x, (0, 0)
            kh, kw = self.weight.shape[-2:]
            dh, dw = c["dilation"]
            th, tw = dh * (kh - 1), dw * (kw - 1)
            mode = c.get("padding_mode", "zeros")
            x = F.pad(x, [tw // 2, tw - tw // 2, th // 2, th - th // 2], mode="constant" if mode == "zeros" else mode)
            return x, (0, 0)
        if c.get("padding_mode", "zeros") != "zeros" and any(pad):
            x = F.pad(x, [pad[1], pad[1], pad[0], pad[0]], mode=c["padding_mode"])
            return x, (0, 0)
        return x, tuple(pad)

    def _chunk_rows(self, elsize: int) -> int:
        """Input vectors per chunk: the FCMs' per-tile work arrays of one column block of tiles
        stay within CHUNK_BYTES (cache-sized), at least MIN_CHUNK_ROWS."""
        per_row = max([f.Gn.shape[0] * f.Gn.shape[1] * max(f.Gn.shape[3], f.Gn.shape[4])
                       for f in self.fcms if f.Gn is not None] or [1]) * elsize
        return max(MIN_CHUNK_ROWS, CHUNK_BYTES // per_row)

    def _xbar(self, x):
        """The layer's crossbar output. Inputs go to the FCMs transposed (``FCM.matmul_t``):
        x^T (K, R) with one input vector per column, im2col patches gathered straight
        into that layout, in chunks of whole images.

        The finiteness check is skipped here (a NaN/Inf activation gives
        NaN/Inf outputs instead of an error, with no host synchronization);
        ``signed`` (whether the layer's input has a negative entry) is tested
        once per layer on the activation before im2col, which holds the same
        values (and zeros), and passed on, so the chunks need no test of their own.
        """
        if not self.fcms:
            raise RuntimeError(f"crossbar layer {self.name!r} is not programmed; call program(rng) first")
        signed = x.numel() > 0 and bool(x.amin() < 0)
        chunk = self._chunk_rows(x.element_size())
        if self.conv is None:
            lead = x.shape[:-1]
            X = x.reshape(-1, x.shape[-1])
            f = self.fcms[0]
            out = X.new_empty((X.shape[0], f.shape[1]))
            for k in range(0, X.shape[0], chunk):
                out[k:k + chunk] = f.matmul_t(X[k:k + chunk].T, check_finite=False, signed=signed).T
            return out.reshape(lead + (out.shape[-1],))
        x, pad = self._pad(x)
        return self._xbar_padded(x, pad, signed)

    def _xbar_padded(self, x, pad, signed=None):
        """``_xbar`` of a convolution whose input has had ``_pad`` applied; ``pad`` is the zero
        padding still to add."""
        if not self.fcms:
            raise RuntimeError(f"crossbar layer {self.name!r} is not programmed; call program(rng) first")
        if signed is None:
            signed = x.numel() > 0 and bool(x.amin() < 0)
        chunk = self._chunk_rows(x.element_size())
        c = self.conv
        B, C = x.shape[:2]
        kh, kw = self.weight.shape[-2:]
        if self._fused(x):
            return self._xbar_fused(x.contiguous(), pad, signed, chunk)
        if any(pad):
            x = F.pad(x, [pad[1], pad[1], pad[0], pad[0]])
        x = x.contiguous()
        Hp, Wp = x.shape[-2:]
        sh, sw = c["stride"]
        dh, dw = c["dilation"]
        Ho = (Hp - dh * (kh - 1) - 1) // sh + 1
        Wo = (Wp - dw * (kw - 1) - 1) // sw + 1
        L, K = Ho * Wo, C * kh * kw
        g = self.groups
        kg = K // g
        N = sum(f.shape[1] for f in self.fcms)
        out = x.new_empty((B, N, L))
        nb = max(1, chunk // max(L, 1))
        for b0 in range(0, B, nb):
            b1 = min(B, b0 + nb)
            # im2col as columns: XT[(c, i, j), (b, ho, wo)] = x[b, c, ho*sh + i*dh, wo*sw + j*dw],
            # rows in the (C, kh, kw) order of the weight matrix (as F.unfold), one gathering copy
            size = (C, kh, kw, b1 - b0, Ho, Wo)
            stride = (Hp * Wp, dh * Wp, dw, C * Hp * Wp, sh * Wp, sw)
            if kh * kw == 1 or L == 1:  # long contiguous runs, or few elements: a strided copy
                XT = x[b0:b1].as_strided(size, stride).reshape(K, (b1 - b0) * L)
            else:  # short runs: a flat gather with a cached index is faster than the strided copy
                key = (size, stride, str(x.device))
                idx = self._im2col_index.get(key)
                if idx is None:
                    idx = torch.arange((b1 - b0) * C * Hp * Wp, device=x.device).as_strided(size, stride).reshape(-1)
                    self._im2col_index[key] = idx
                XT = x[b0:b1].reshape(-1).index_select(0, idx).reshape(K, (b1 - b0) * L)
            ys = [f.matmul_t(XT[k * kg:(k + 1) * kg] if g > 1 else XT, check_finite=False, signed=signed)
                  for k, f in enumerate(self.fcms)]
            y = ys[0] if g == 1 else torch.cat(ys, dim=0)  # (N, nb*L)
            out[b0:b1] = y.reshape(N, b1 - b0, L).permute(1, 0, 2)
        return out.reshape(B, N, Ho, Wo)

    def _fused(self, x) -> bool:
        """Whether the DAC codes come straight from the image (``cpu_kernels.dac_codes_conv``): CPU
        float32/float64 input with the fused kernels enabled."""
        return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
                and cpu_kernels.enabled())

    def _xbar_fused(self, x, pad, signed, chunk):
        """``_xbar_padded`` without the im2col matrix. The images go batch-last, (C, H, W, B), and
        the input vectors are ordered (position, image): per chunk of output positions (all
        images) and group, one kernel (``cpu_kernels.dac_codes_conv``) writes the DAC codes of
        every patch (zero padding included) for ``FCM.matmul_codes_t``. The same codes, hence
        the same outputs, as the im2col path; every inner loop runs over the batch."""
        c = self.conv
        B, C, H, W = x.shape
        kh, kw = self.weight.shape[-2:]
        (sh, sw), (dh, dw), (ph, pw) = c["stride"], c["dilation"], pad
        Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        L, g = Ho * Wo, self.groups
        cg, kg = C // g, (C // g) * kh * kw
        N = sum(f.shape[1] for f in self.fcms)
        x_max = self.options.x_max
        xt = np.empty((C, H, W, B), dtype=x.numpy().dtype)  # batch-last; each group's channels contiguous
        kern = cpu_kernels.kernels()
        kern.transpose(x.numpy().reshape(B, C * H * W), xt.reshape(C * H * W, B))
        full = np.asarray(self.spec.dac.full_code, dtype=xt.dtype)[()]
        xm = np.asarray(0.0 if x_max is None else x_max, dtype=xt.dtype)[()]
        y = x.new_empty((B, N, Ho, Wo))
        y3 = y.view(B, N, L)
        npos = max(1, chunk // max(B, 1))
        n0 = np.cumsum([0] + [f.shape[1] for f in self.fcms]).tolist()  # each group's first channel
        xg = [xt[k * cg:(k + 1) * cg] for k in range(g)]
        cmax = [v[0] for v in xg]  # (unused with a fixed x_max)
        if x_max is None:
            cmax = [np.empty((H, W, B), dtype=xt.dtype) for _ in xg]
            for v, m in zip(xg, cmax):
                kern.channel_max(v, bool(signed), m)
        for p0 in range(0, L, npos):
            p1 = min(L, p0 + npos)
            R = (p1 - p0) * B
            for k, f in enumerate(self.fcms):
                codes = x.new_empty((kg, 2 * R if signed else R))
                scale = x.new_empty((1, R))
                kern.dac_codes_conv(xg[k], cmax[k], kh, kw, sh, sw, ph, pw, dh, dw, Wo, p0, p1,
                                    full, bool(signed), xm, codes.numpy(), scale.numpy()[0])
                # unscaled (N_k, R); the scale (x_max too, written by dac_codes_conv) is applied
                # while moving the chunk to (B, N, L): one strided pass
                yf = f.matmul_codes_t(codes, scale, R, scaled=False)
                nk, P = f.shape[1], p1 - p0
                torch.mul(yf.view(nk, P, B).permute(2, 0, 1), scale.view(P, B).t()[:, None, :],
                          out=y3[:, n0[k]:n0[k] + nk, p0:p1])
        return y

    def _fp(self, x):
        if self.conv is None:
            return F.linear(x, self.weight)
        c = self.conv
        x, pad = self._pad(x)
        return F.conv2d(x, self.weight, None, c["stride"], pad, c["dilation"], c["groups"])

    def forward(self, x):
        if not self.enabled:
            y = self._fp(x)
        elif self.straight_through and torch.is_grad_enabled():
            if self.conv is None:
                return _StraightThrough.apply(x, self.weight, self.bias, self, None)
            xp, pad = self._pad(x)  # explicit padding (other modes, "same") keeps its own autograd
            return _StraightThrough.apply(xp, self.weight, self.bias, self, pad)
        else:
            with torch.no_grad():
                y = self._xbar(x)
        if self.bias is not None:
            y = y + (self.bias if self.conv is None else self.bias.view(1, -1, 1, 1))
        return y

    def extra_repr(self) -> str:
        kind = "linear" if self.conv is None else f"conv{tuple(self.weight.shape[-2:])} {self.conv}"
        return f"{kind}, W={tuple(self.weight.shape)}, xbar={self.spec.rows}x{self.spec.cols}, tiles={self.n_tiles}"


class _StraightThrough(torch.autograd.Function):
    """Crossbar values forward, the floating-point layer's gradients backward.

    Equal to ``y_fp + (y_xbar - y_fp).detach()`` but without computing
    y_fp: the backward pass of a linear or convolution layer needs only its
    input and weight (``aten.convolution_backward``, or two matrix products),
    so a re-training step costs one crossbar forward and one ordinary
    backward pass. ``pad`` is the zero padding still to apply (convolutions;
    other padding was applied by the caller, under autograd). The bias is
    added here too, so that its gradient comes from the same backward call.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, op, pad):
        ctx.op, ctx.pad = op, pad
        ctx.save_for_backward(x, weight)
        with torch.no_grad():
            y = op._xbar(x) if pad is None else op._xbar_padded(x, pad)
            if bias is not None:
                y += bias if pad is None else bias.view(1, -1, 1, 1)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        op = ctx.op
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if ctx.pad is None:
            gx = gy @ w if need_x else None
            g2 = gy.reshape(-1, gy.shape[-1])
            gw = g2.T @ x.reshape(-1, x.shape[-1]) if need_w else None
            gb = g2.sum(0) if need_b else None
            return gx, gw, gb, None, None
        c = op.conv
        gx, gw, gb = torch.ops.aten.convolution_backward(
            gy, x, w, [w.shape[0]] if need_b else None, list(c["stride"]), list(ctx.pad), list(c["dilation"]),
            False, [0, 0], int(c["groups"]), [need_x, need_w, need_b])
        return gx, gw, gb, None, None


def _conv_args(m: nn.Conv2d) -> dict:
    return {"stride": tuple(m.stride), "padding": m.padding if isinstance(m.padding, str) else tuple(m.padding),
            "dilation": tuple(m.dilation), "groups": m.groups, "padding_mode": m.padding_mode}


def _pair(v, default):
    if v is None:
        return default
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return (int(v[0]), int(v[-1]))


def _swap_modules(model: nn.Module, spec, options) -> list[CrossbarOp]:
    ops = []
    for name, m in list(model.named_modules()):
        for cname, child in list(m.named_children()):
            full = f"{name}.{cname}" if name else cname
            if isinstance(child, nn.Linear):
                op = CrossbarOp(child.weight, child.bias, spec, options, None, full)
            elif isinstance(child, nn.Conv2d):
                op = CrossbarOp(child.weight, child.bias, spec, options, _conv_args(child), full)
            else:
                continue
            setattr(m, cname, op)
            ops.append(op)
    return ops


_LINEAR = ("aten.linear.default",)
_CONV = ("aten.conv2d.default", "aten.conv2d.padding", "aten.convolution.default")


def _attr(gm, node):
    if node is None:
        return None
    if getattr(node, "op", None) != "get_attr":
        raise ValueError(f"crossbar mapping needs constant weights; {node} is computed in the graph")
    obj = gm
    for part in node.target.split("."):
        obj = getattr(obj, part)
    return obj


def _rewrite_graph(gm: torch.fx.GraphModule, spec, options) -> list[CrossbarOp]:
    ops = []
    for node in list(gm.graph.nodes):
        if node.op != "call_function":
            continue
        target = str(node.target)
        if target not in _LINEAR + _CONV:
            continue
        a = list(node.args) + [None] * 9
        kw = node.kwargs
        x, w, b = a[0], _attr(gm, a[1]), _attr(gm, a[2] if a[2] is not None else kw.get("bias"))
        if target in _LINEAR:
            op = CrossbarOp(w, b, spec, options, None, node.name)
        else:
            if target == "aten.convolution.default":
                if a[6] or w.dim() != 4:  # transposed, or not 2-D
                    continue
                stride, padding, dilation, groups = a[3], a[4], a[5], a[8]
            else:
                stride, padding, dilation, groups = a[3], a[4], a[5], a[6]
            if w.dim() != 4:
                continue
            conv = {"stride": _pair(stride, (1, 1)),
                    "padding": padding if isinstance(padding, str) else _pair(padding, (0, 0)),
                    "dilation": _pair(dilation, (1, 1)), "groups": int(groups or 1), "padding_mode": "zeros"}
            op = CrossbarOp(w, b, spec, options, conv, node.name)
        mod_name = f"xbar_{len(ops)}_{node.name}"
        gm.add_module(mod_name, op)
        with gm.graph.inserting_before(node):
            new = gm.graph.call_module(mod_name, (x,))
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        ops.append(op)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return ops


def crossbar_layers(model: nn.Module) -> list[CrossbarOp]:
    """The crossbar layers of a converted model, in registration order."""
    return [m for m in model.modules() if isinstance(m, CrossbarOp)]


def to_crossbar(model: nn.Module, spec: CrossbarSpec, rng: np.random.Generator | None,
                options: FCMOptions | None = None, program: bool = True) -> nn.Module:
    """A copy of ``model`` whose Linear/Conv2d layers run on crossbars of ``spec``.

    ``rng`` draws the hardware instance (variation, faults), layer by layer
    in order; it may be None for a device without variation or faults.
    """
    if not isinstance(spec, CrossbarSpec):
        raise ValueError(f"spec must be a CrossbarSpec, got {type(spec).__name__}")
    with warnings.catch_warnings():  # torch 2.13 warns about its own pytree internals when copying a GraphModule
        warnings.simplefilter("ignore", FutureWarning)
        m = copy.deepcopy(model)
    if isinstance(m, torch.fx.GraphModule) and any(
            n.op == "call_function" and str(n.target) in _LINEAR + _CONV for n in m.graph.nodes):
        ops = _rewrite_graph(m, spec, options)
    else:
        ops = _swap_modules(m, spec, options)
    if not ops:
        raise ValueError("the model has no Linear or Conv2d layer to map onto crossbars")
    if program:
        for op in ops:
            op.program(rng)
    return m.eval()


def program_all(model: nn.Module, rng: np.random.Generator | None) -> None:
    """(Re)build every crossbar layer's FCMs from its current weights."""
    for op in crossbar_layers(model):
        op.program(rng)


def set_straight_through(model: nn.Module, on: bool = True) -> None:
    for op in crossbar_layers(model):
        op.straight_through = on


def count_tiles(model: nn.Module) -> int:
    return sum(op.n_tiles for op in crossbar_layers(model))
