"""Array back ends for ``FCM.matmul``: numpy, or torch when given a tensor.

torch is never imported here at module import time: ``namespace_for(x)``
recognises a tensor by its type's module name, and only then imports torch.
Both namespaces expose the few operations the model evaluation needs, with
one signature, so the evaluation code is written once.
"""

from __future__ import annotations

import numpy as np


def is_torch_tensor(x) -> bool:
    """True for torch.Tensor (and subclasses such as Parameter), without importing torch."""
    for t in type(x).__mro__:
        if t.__module__.startswith("torch") and t.__name__ == "Tensor":
            return True
    return False


class NumpyNS:
    """numpy operations, float64."""

    name = "numpy"
    #: (device, dtype): what an FCM's compiled plans are keyed by (``FCM.compile``)
    key = ("numpy", "float64")

    def asarray(self, x):
        return np.asarray(x, dtype=float)

    def const(self, arr: np.ndarray):
        return np.asarray(arr, dtype=float)

    def clip(self, a, lo, hi):
        return np.clip(a, lo, hi)

    def round(self, a):
        return np.rint(a)

    def floor(self, a):
        return np.floor(a)

    def abs(self, a):
        return np.abs(a)

    def sinh(self, a):
        return np.sinh(a)

    def row_absmax(self, a):
        return np.max(np.abs(a), axis=-1, keepdims=True)

    def any_negative(self, a) -> bool:
        # a NaN (an unchecked input) makes the minimum NaN and would hide the other entries' signs
        m = float(np.min(a)) if a.size else 0.0
        return m < 0 or (m != m and bool(np.any(a < 0)))

    def row_max(self, a):
        return np.max(a, axis=-1, keepdims=True)

    def col_max(self, a):
        return np.max(a, axis=0, keepdims=True)

    def col_absmax(self, a):
        return np.max(np.abs(a), axis=0, keepdims=True)

    def zeros(self, shape):
        return np.zeros(shape)

    def pad_last(self, a, n: int):
        if n == 0:
            return a
        return np.concatenate([a, np.zeros(a.shape[:-1] + (n,))], axis=-1)

    def stack(self, items, axis=0):
        return np.stack(items, axis=axis)

    def matmul(self, a, b):
        return np.matmul(a, b)

    def solve(self, A, b):
        return np.linalg.solve(A, b)

    def where(self, c, a, b):
        return np.where(c, a, b)

    def to_index(self, a):
        return a.astype(np.int64)

    def isfinite_all(self, a) -> bool:
        # NaN/Inf propagate to the sum, so a finite sum proves every element finite
        # (one cheap pass); only an overflowing sum needs the element-wise check.
        return bool(np.isfinite(np.sum(a))) or bool(np.all(np.isfinite(a)))

    def permute(self, a, axes):
        return np.transpose(a, axes)

    def sum(self, a, axis):
        return a.sum(axis=axis)

    # ---- used by FCM.matmul's fused evaluation (in place where possible)
    def no_grad(self):
        import contextlib

        return contextlib.nullcontext()

    def row_minmax(self, a):
        return np.min(a, axis=-1, keepdims=True), np.max(a, axis=-1, keepdims=True)

    def any_true(self, a) -> bool:
        return bool(np.any(a))

    def cat(self, items, axis=0):
        return np.concatenate(items, axis=axis)

    def round_(self, a):
        return np.rint(a, out=a)

    def clip_(self, a, lo, hi):
        return np.clip(a, lo, hi, out=a)

    def mul_(self, a, b):
        return np.multiply(a, b, out=a)

    def sinh_(self, a):
        return np.sinh(a, out=a)

    def sub_prod(self, a, b, c, out=None):
        """a - b * c, broadcast (into ``out`` when given)."""
        out = np.multiply(b, c, out=out)
        return np.subtract(a, out, out=out)

    def empty(self, shape):
        return np.empty(shape)

    def sub(self, a, b, out=None):
        return np.subtract(a, b, out=out)

    def div_(self, a, b):
        """b <- a / b in place (b has the broadcast shape)."""
        return np.divide(a, b, out=b)

    def contiguous(self, a):
        return np.ascontiguousarray(a)

    def reshape(self, a, shape):
        return a.reshape(shape)

    # ---- fused CPU kernels (``xbarlab.fcm.cpu_kernels``) work on numpy views
    @property
    def host(self) -> bool:
        """Whether arrays of this namespace have numpy views (CPU memory, float32/float64)."""
        return True

    def np(self, a):
        return a

    def scalar(self, v):
        """v as a numpy scalar of this namespace's dtype (numba then computes in that dtype)."""
        return np.float64(v)


class TorchNS:
    """torch operations on the input's device and floating dtype."""

    name = "torch"

    def __init__(self, like) -> None:
        import torch

        self.torch = torch
        self.device = like.device
        self.dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
        if like.is_complex() or self.dtype not in (torch.float32, torch.float64):
            # (float16 overflowed the plans' constants to inf, or gave inf outputs, silently)
            raise ValueError(f"x must be a real tensor of float32, float64 or an integer dtype (the model's "
                             f"constants need float32's range), got dtype {like.dtype}")
        self.key = (str(self.device), str(self.dtype))  # (device, dtype), e.g. ("cpu", "torch.float32")

    def asarray(self, x):
        return x.to(dtype=self.dtype)

    def const(self, arr: np.ndarray):
        a = np.asarray(arr, dtype=float)
        if self.dtype == self.torch.float32 and self.device.type == "cpu":  # numpy's cast (the same rounding):
            return self.torch.from_numpy(a.astype(np.float32))  # a third of as_tensor's time on small arrays
        if not a.flags.writeable:  # a broadcast view: torch wants memory of its own
            a = a.copy()
        return self.torch.as_tensor(a, dtype=self.dtype, device=self.device)

    def clip(self, a, lo, hi):
        return self.torch.clamp(a, lo, hi)

    def round(self, a):
        return self.torch.round(a)

    def floor(self, a):
        return self.torch.floor(a)

    def abs(self, a):
        return self.torch.abs(a)

    def sinh(self, a):
        return self.torch.sinh(a)

    def row_absmax(self, a):
        return self.torch.amax(self.torch.abs(a), dim=-1, keepdim=True)

    @staticmethod
    def any_negative(a) -> bool:
        # one full reduction (fast), not a boolean tensor; NaN (rejected unless the caller
        # skips the finiteness check) reads as non-negative, but makes the minimum NaN, and
        # then the other entries' signs are tested (see NumpyNS.any_negative)
        m = float(a.amin()) if a.numel() else 0.0
        return m < 0 or (m != m and bool((a < 0).any()))

    def row_max(self, a):
        return self.torch.amax(a, dim=-1, keepdim=True)

    def col_max(self, a):
        return self.torch.amax(a, dim=0, keepdim=True)

    def col_absmax(self, a):
        return self.torch.amax(self.torch.abs(a), dim=0, keepdim=True)

    def zeros(self, shape):
        return self.torch.zeros(shape, dtype=self.dtype, device=self.device)

    def pad_last(self, a, n: int):
        if n == 0:
            return a
        return self.torch.nn.functional.pad(a, (0, n))

    def stack(self, items, axis=0):
        return self.torch.stack(items, dim=axis)

    def matmul(self, a, b):
        return self.torch.matmul(a, b)

    def solve(self, A, b):
        return self.torch.linalg.solve(A, b)

    def where(self, c, a, b):
        return self.torch.where(c, a, b)

    def to_index(self, a):
        return a.long()

    def isfinite_all(self, a) -> bool:
        # see NumpyNS.isfinite_all
        return bool(self.torch.isfinite(a.sum())) or bool(self.torch.isfinite(a).all())

    def permute(self, a, axes):
        return a.permute(*axes)

    def sum(self, a, axis):
        return a.sum(dim=axis)

    # ---- used by FCM.matmul's fused evaluation (in place where possible)
    def no_grad(self):
        return self.torch.no_grad()

    def row_minmax(self, a):
        return self.torch.aminmax(a, dim=-1, keepdim=True)

    def any_true(self, a) -> bool:
        return bool(a.any())

    def cat(self, items, axis=0):
        return self.torch.cat(items, dim=axis)

    def round_(self, a):
        return a.round_()

    def clip_(self, a, lo, hi):
        return a.clamp_(lo, hi)

    def mul_(self, a, b):
        return a.mul_(b)

    def sinh_(self, a):
        return a.sinh_()

    def sub_prod(self, a, b, c, out=None):
        """a - b * c, broadcast (into ``out`` when given), one fused pass."""
        if out is None:
            return self.torch.addcmul(a, b, c, value=-1.0)
        return self.torch.addcmul(a, b, c, value=-1.0, out=out)

    def empty(self, shape):
        return self.torch.empty(shape, dtype=self.dtype, device=self.device)

    def sub(self, a, b, out=None):
        return self.torch.sub(a, b) if out is None else self.torch.sub(a, b, out=out)

    def div_(self, a, b):
        """b <- a / b in place (b has the broadcast shape)."""
        return self.torch.div(a, b, out=b)

    def contiguous(self, a):
        return a.contiguous()

    def reshape(self, a, shape):
        return a.reshape(shape)

    @property
    def host(self) -> bool:
        return self.device.type == "cpu" and self.dtype in (self.torch.float32, self.torch.float64)

    def np(self, a):
        return a.numpy()  # a view: the same memory

    def scalar(self, v):
        return np.float32(v) if self.dtype == self.torch.float32 else np.float64(v)


def namespace_for(x):
    """(namespace, array) for an input: torch tensors stay torch, all else becomes numpy float64."""
    if is_torch_tensor(x):
        ns = TorchNS(x)
        return ns, ns.asarray(x)
    ns = NumpyNS()
    if np.iscomplexobj(x):  # (numpy's cast to float drops the imaginary part with a warning only)
        raise ValueError(f"x must be a real array, got dtype {np.asarray(x).dtype}")
    try:
        return ns, ns.asarray(x)
    except (TypeError, ValueError):
        raise ValueError("x must be a numeric numpy array or a torch.Tensor") from None

