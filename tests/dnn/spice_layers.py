"""The ngspice reference of a network layer, built from the layer's definition alone.

Used by ``test_layers_spice.py``. Nothing here reads ``dnn_eval``'s internals:
the reference takes the ``nn.Linear`` / ``nn.Conv2d`` module itself and

* builds the layer's weight matrices as ``dnn_eval`` documents them (Linear:
  W = weight^T, y = x @ W; Conv2d: one (C/groups * kh * kw, out/groups) matrix
  per group, rows in ``F.unfold``'s (C, kh, kw) order) and their FCMs with
  ``FCM.from_weights`` (one generator drawn in group order: the same hardware
  instance as ``to_crossbar``);
* builds each FCM's input matrix (Linear: x; Conv2d: that group's im2col
  patches by ``F.unfold``, one row per (image, output position));
* lets ``xbarlab.verify.spice_reference.spice_evaluate_layer`` solve every tile
  at those DAC codes in ngspice and apply the model's ADC and accumulation;
* puts the outputs back into the layer's output shape and adds the bias.

``dac_codes`` writes the documented DAC codes in a given dtype
(round(x / scale * full), clipped to [0, full], scale the vector's largest
magnitude), so a float32 layer is compared with ngspice at its own codes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import xbarlab as xb
from xbarlab.verify import reference as ref
from xbarlab.verify.spice_reference import spice_evaluate_layer


def weight_matrices(module: nn.Module) -> list[np.ndarray]:
    """W (K, N) float64 per FCM of the layer: y = x @ W (one per convolution group)."""
    w = module.weight.detach().to(torch.float64)
    if isinstance(module, nn.Linear):
        return [w.T.numpy()]
    g = module.groups
    ng = w.shape[0] // g
    return [w[k * ng:(k + 1) * ng].reshape(ng, -1).T.numpy() for k in range(g)]


def layer_fcms(module: nn.Module, spec: xb.CrossbarSpec, seed: int, options: xb.FCMOptions) -> list[xb.FCM]:
    """The layer's FCMs: ``FCM.from_weights`` per matrix, one generator of ``seed`` drawn in order."""
    rng = np.random.default_rng(seed)
    return [xb.FCM.from_weights(W, spec, rng, options) for W in weight_matrices(module)]


def input_matrices(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Each FCM's input matrix (R, K_g) in x's dtype: x itself, or a group's im2col patches (zero padding)."""
    if isinstance(module, nn.Linear):
        return [x.reshape(-1, x.shape[-1])]
    g, C = module.groups, x.shape[1]
    cg = C // g
    out = []
    for k in range(g):
        p = F.unfold(x[:, k * cg:(k + 1) * cg], module.kernel_size, dilation=module.dilation,
                     padding=module.padding, stride=module.stride)  # (B, K_g, L)
        out.append(p.transpose(1, 2).reshape(-1, p.shape[1]))
    return out


def to_layer(module: nn.Module, x: torch.Tensor, mats: list[np.ndarray]) -> np.ndarray:
    """Per-FCM outputs (R, N_g) back into the layer's output shape: (B, N) or (B, out, Ho, Wo)."""
    if isinstance(module, nn.Linear):
        return mats[0].reshape(tuple(x.shape[:-1]) + (mats[0].shape[-1],))
    B = x.shape[0]
    Ho, Wo = (int(v) for v in module(x[:1].to(module.weight.dtype)).shape[-2:])
    y = np.concatenate(mats, axis=-1)  # (B * L, out), rows (image, position)
    return y.reshape(B, Ho * Wo, -1).transpose(0, 2, 1).reshape(B, -1, Ho, Wo)


def bias_of(module: nn.Module, shape) -> np.ndarray:
    if module.bias is None:
        return np.zeros(shape)
    b = module.bias.detach().to(torch.float64).numpy()
    return np.broadcast_to(b if len(shape) == 2 else b[:, None, None], shape)


def dac_codes(X: torch.Tensor, full: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes (P, R, K), scale (R,)) of input matrix X (R, K) in X's dtype: the documented steps."""
    signed = bool((X < 0).any())
    s = (X.abs() if signed else X).amax(dim=1)
    s = torch.where(s > 0, s, torch.ones_like(s))
    xf = X / s[:, None]
    phases = [xf, -xf] if signed else [xf]
    c = torch.stack([torch.clamp(torch.round(p * full), 0, full) for p in phases])
    return c.to(torch.float64).numpy(), s.to(torch.float64).numpy()


def spice_layer(module, x, fcms, codes=None, workers: int = 2) -> list[dict]:
    """``spice_evaluate_layer`` of the layer's FCMs on its float64 input matrices (or at given codes)."""
    xs = [m.to(torch.float64).numpy() for m in input_matrices(module, x)]
    return spice_evaluate_layer(fcms, xs, workers=workers, codes=codes)


def gain(fcm) -> float:
    """Weight units per (ampere of digital column value) at input scale 1."""
    dev, dac = fcm.spec.device, fcm.spec.dac
    return fcm.w_max / (dac.v_read * (dev.g_max - dev.g_min)) * (2.0 if fcm.options.mapping.value == "offset" else 1.0)


def to_y(fcm, A: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Non-negative column amounts A (P, B, S, Tk, Tn, Nc) in ampere -> their sum's weight in y (B, N)."""
    a = A.sum(axis=(0, 2, 3))  # (B, Tn, Nc)
    return a.reshape(a.shape[0], -1)[:, :fcm.shape[1]] * gain(fcm) * scale[:, None]


def lsb_a(fcm) -> np.ndarray:
    """One ADC code in ampere per tile (S, Tk, Tn, 1)."""
    return (fcm.adc_full_scale_a / float(fcm.spec.adc.full_code))[..., None]


def magnitude(fcm, sp: dict) -> np.ndarray:
    """The scale of y's float rounding (B, N): sum of |digital values| (plus the offset mapping's offset)."""
    m = to_y(fcm, np.abs(ref.adc_values(fcm, sp["D"])), sp["scale"])
    if fcm.options.mapping.value == "offset":
        dev, dac = fcm.spec.device, fcm.spec.dac
        off = sp["codes"].sum(axis=(0, 2)) * float(dev.quantize(0.5)) * dac.v_read / dac.full_code
        m = m + off[:, None] * gain(fcm) * sp["scale"][:, None]
    return m


def boundary_distance(fcm, I: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance in LSB of each ADC input to its nearest rounding boundary k + 1/2, the input in LSB)."""
    a = ref.adc_input(fcm, I)
    return np.abs(a - np.floor(a) - 0.5), a
