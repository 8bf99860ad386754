"""Column ADC: converts each column's output current (ampere) to a code.

One ADC per physical column. It converts a unipolar current in
[0, full_scale] to codes 0 .. 2**bits - 1:

    code = clip(round(I / I_fs * full + INL(I / I_fs)), 0, full)

and the digital value handed on is ``code / full * I_fs`` (ampere). Currents
outside the range clip (a reversed, negative column current reads 0).

``bits=None`` is the ideal converter: no quantization, no clipping, no INL;
it hands on the current itself. It takes neither a fixed full scale nor an
INL curve (ValueError naming the field): it has no range to clip to and no
LSB to express INL in, so either would be silently ignored.

``full_scale_a`` is a fixed full-scale current, or ``None`` to calibrate it
per tile at model generation: the largest output current of any column of
that tile with every row at full-scale input (``v_read @ G_non-ideal``).

The optional INL curve gives the integral non-linearity in LSB at
``len(inl_lsb)`` evenly spaced points over the input range [0, 1] of full
scale (linear interpolation between them); it is added before rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..arrays import check_real_number_types
from ..fields import check_known_fields


class _NumpyOps:
    """The few numpy operations ``convert`` and ``inl`` need when no array namespace is given
    (the parameters do not import the FCM's back ends)."""

    clip = staticmethod(np.clip)
    round = staticmethod(np.rint)
    floor = staticmethod(np.floor)

    @staticmethod
    def const(a):
        return np.asarray(a, dtype=float)

    @staticmethod
    def to_index(a):
        return np.asarray(a).astype(np.int64)


_NUMPY = _NumpyOps()


@dataclass(frozen=True)
class ADCParams:
    """A column ADC.

    Attributes:
        bits: resolution, >= 1; ``None`` is an ideal converter (no
            quantization, no clipping, no INL: it takes neither
            ``full_scale_a`` nor ``inl_lsb``, ValueError).
        full_scale_a: full-scale current, ampere, > 0; ``None`` calibrates it
            per tile (see module docstring). Needs ``bits``.
        inl_lsb: INL curve in LSB at evenly spaced points over [0, 1] of full
            scale (at least 2 points), or empty for none. Needs ``bits``.
    """

    bits: int | None = 8
    full_scale_a: float | None = None
    inl_lsb: tuple = field(default=())

    def __post_init__(self) -> None:
        if self.bits is not None:
            if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)) or self.bits < 1:
                raise ValueError(f"bits must be an integer >= 1 or None, got {self.bits!r}")
            if self.bits > 32:
                raise ValueError(f"bits must be <= 32, got {self.bits!r}")
            object.__setattr__(self, "bits", int(self.bits))
        if self.full_scale_a is not None:
            check_real_number_types(self.full_scale_a, "full_scale_a")  # float() takes True and "1"
            try:
                fs = float(self.full_scale_a)
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"full_scale_a must be a number in ampere or None, got {self.full_scale_a!r}") from None
            if not (math.isfinite(fs) and fs > 0):
                raise ValueError(f"full_scale_a must be finite and > 0 ampere, got {self.full_scale_a!r}")
            object.__setattr__(self, "full_scale_a", fs)
        check_real_number_types(self.inl_lsb, "inl_lsb")
        table = np.asarray(self.inl_lsb, dtype=float)
        if table.ndim != 1:  # (a 2-D table was flattened into points it does not describe)
            raise ValueError(f"inl_lsb must be a 1-D sequence of values in LSB, got shape {table.shape}: "
                             f"{self.inl_lsb!r}")
        inl = tuple(float(v) for v in table)
        if inl and (len(inl) < 2 or not all(math.isfinite(v) for v in inl)):
            raise ValueError(f"inl_lsb must be empty or >= 2 finite values in LSB, got {self.inl_lsb!r}")
        object.__setattr__(self, "inl_lsb", inl)
        if self.bits is None and (self.full_scale_a is not None or inl):
            names = [k for k, v in (("full_scale_a", self.full_scale_a is not None), ("inl_lsb", bool(inl))) if v]
            raise ValueError(f"{' and '.join(f'{k}={getattr(self, k)!r}' for k in names)} given with bits=None: an "
                             f"ideal ADC neither clips nor quantizes, so it has no full scale and no LSB to apply "
                             f"{'them' if len(names) > 1 else 'it'} to (give bits, or leave {' and '.join(names)} out)")

    @property
    def ideal(self) -> bool:
        return self.bits is None

    @property
    def full_code(self) -> int:
        if self.bits is None:
            raise ValueError("an ideal ADC (bits=None) has no codes")
        return 2**self.bits - 1

    def convert(self, i_out, full_scale_a, ns=None):
        """Digital estimate (ampere) of column currents ``i_out``.

        ``full_scale_a`` (ampere) broadcasts against ``i_out`` (per tile, per
        column). ``ns`` is an array namespace with clip, round, floor, const
        and to_index (``xbarlab.backend`` has numpy and torch ones), so that
        torch tensors stay torch; numpy float64 when None (this module does
        not import the FCM's back ends). On the numpy path a ``full_scale_a`` that is not finite and > 0
        raises ValueError (0 gave NaN).
        """
        if self.bits is None:
            return i_out
        if ns is None:
            fs = np.asarray(full_scale_a, dtype=float)
            if not (np.all(np.isfinite(fs)) and np.all(fs > 0)):
                raise ValueError(f"full_scale_a must be finite and > 0 ampere, got {full_scale_a!r}")
        ns = ns or _NUMPY
        full = float(self.full_code)
        if self.inl_lsb:
            u = i_out / full_scale_a
            x = u * full + self.inl(u, ns)
        else:
            x = i_out * (full / full_scale_a)
        return ns.clip(ns.round(x), 0.0, full) * (full_scale_a / full)

    def inl(self, u, ns=None):
        """INL in LSB at fractions ``u`` of full scale (linear interpolation, clamped ends)."""
        ns = ns or _NUMPY
        pts = len(self.inl_lsb)
        pos = ns.clip(u, 0.0, 1.0) * (pts - 1)
        k = ns.clip(ns.floor(pos), 0.0, pts - 2)
        t = pos - k
        table = ns.const(np.asarray(self.inl_lsb))
        ki = ns.to_index(k)
        return table[ki] * (1 - t) + table[ki + 1] * t

    def to_dict(self) -> dict:
        return {"bits": self.bits, "full_scale_a": self.full_scale_a, "inl_lsb": list(self.inl_lsb)}

    @classmethod
    def from_dict(cls, d: dict) -> "ADCParams":
        check_known_fields(cls, d)
        return cls(**d)
