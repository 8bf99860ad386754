"""Re-training's straight-through function: crossbar values forward, float gradients backward."""

from __future__ import annotations

import torch


class StraightThrough(torch.autograd.Function):
    """Crossbar values forward, the floating-point layer's gradients backward.

    Equal to ``y_fp + (y_xbar - y_fp).detach()`` but without computing
    y_fp: the backward pass of a linear or convolution layer needs only its
    input and weight (``aten.convolution_backward``, or two matrix products),
    so a re-training step costs one crossbar forward and one ordinary
    backward pass. ``layer`` is the crossbar layer (``dnn_eval.layers``);
    ``pad`` is None for a Linear layer and, for a convolution, the zero
    padding still to apply (other padding was applied by the caller, under
    autograd). The bias is added here too, so that its gradient comes from
    the same backward call.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, layer, pad):
        ctx.layer, ctx.pad = layer, pad
        ctx.save_for_backward(x, weight)
        with torch.no_grad():
            if pad is None:
                y = layer.forward_crossbar(x)
                if bias is not None:
                    y += bias
            else:
                y = layer.forward_padded(x, pad)
                if bias is not None:
                    y += bias.view(1, -1, 1, 1)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        if ctx.pad is None:
            gx = gy @ w if need_x else None
            g2 = gy.reshape(-1, gy.shape[-1])
            gw = g2.T @ x.reshape(-1, x.shape[-1]) if need_w else None
            gb = g2.sum(0) if need_b else None
            return gx, gw, gb, None, None
        geo = ctx.layer.geometry
        gx, gw, gb = torch.ops.aten.convolution_backward(
            gy, x, w, [w.shape[0]] if need_b else None, list(geo.stride), list(ctx.pad), list(geo.dilation),
            False, [0, 0], geo.groups, [need_x, need_w, need_b])
        return gx, gw, gb, None, None
