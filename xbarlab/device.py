"""Synaptic device parameters: conductance range, levels, variation, faults, I-V.

Physical assumptions (all SI units):

* A cell is programmed to one of ``levels`` conductances spaced linearly over
  [g_min, g_max] siemens (``levels=None``: any analog value in the range).
* Programming/process variation multiplies each programmed conductance by an
  independent random factor with mean 1 and relative spread ``variation``
  (sigma/mu): ``normal`` draws 1 + variation * N(0, 1) and clips the result at
  0 S; ``lognormal`` draws exp(s * N(0, 1) - s**2 / 2) with
  s**2 = ln(1 + variation**2), which has exactly that mean and sigma/mu and is
  never negative.
* A fault sticks a cell at g_max (stuck-on, rate ``stuck_on_rate``) or at
  g_min (stuck-off, rate ``stuck_off_rate``), after variation.
* I-V: linear (``sinh_b = 0``), or the common sinh form
  ``I = G * sinh(b * V) / b`` with b = ``sinh_b`` in 1/volt, i.e.
  ``a * sinh(b V)`` with a = G / b scaled per conductance state G, so that
  the small-signal conductance dI/dV at V = 0 is exactly the programmed G.
* 1T-1R: ``access`` (an ``AccessTransistor``) puts an NMOS in series with
  each linear device (``xbarlab/transistor.py``); None is a passive 1R cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .arrays import check_real_number_types
from .choices import Choice
from .fields import check_known_fields
from .transistor import AccessTransistor


class VariationKind(Choice):
    """Distribution of the multiplicative device variation."""

    NORMAL = "normal"
    LOGNORMAL = "lognormal"


def _finite(name: str, value, lo=None, hi=None, lo_open=False) -> float:
    check_real_number_types(value, name)  # float() takes True as 1 and "1e-4" as a number
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value!r}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value!r}")
    return v


def _int_or_none(name: str, value, lo: int):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= {lo} or None, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class DeviceParams:
    """A resistive synaptic device.

    Attributes:
        g_min: lowest programmable conductance, siemens, >= 0.
        g_max: highest programmable conductance, siemens, > g_min.
        bits: precision in bits (levels = 2**bits), >= 1; or None.
        levels: number of programmable levels, >= 2; None means 2**bits, or
            analog (no quantization) when ``bits`` is None too. When both are
            given they must agree.
        variation: sigma/mu of the programmed conductance (dimensionless), >= 0.
        variation_kind: ``VariationKind.NORMAL`` (default) or ``LOGNORMAL``;
            a string name is accepted.
        stuck_on_rate: probability that a cell is stuck at g_max, in [0, 1].
        stuck_off_rate: probability that a cell is stuck at g_min, in [0, 1];
            stuck_on_rate + stuck_off_rate <= 1.
        sinh_b: I-V non-linearity b, 1/volt, >= 0 (0 is a linear cell);
            I = G * sinh(b V) / b.
        access: the 1T-1R cell's access transistor (``AccessTransistor``),
            or None (default) for a passive cell; needs ``sinh_b = 0``.
    """

    g_min: float = 1.0 / 60e3
    g_max: float = 1.0 / 20e3
    bits: int | None = 4
    levels: int | None = None
    variation: float = 0.0
    variation_kind: VariationKind = field(default=VariationKind.NORMAL)
    stuck_on_rate: float = 0.0
    stuck_off_rate: float = 0.0
    sinh_b: float = 0.0
    access: AccessTransistor | None = None

    def __post_init__(self) -> None:
        g_min = _finite("g_min", self.g_min, lo=0.0)
        g_max = _finite("g_max", self.g_max, lo=0.0)
        if g_min >= g_max:
            raise ValueError(f"g_min must be < g_max, got g_min={self.g_min!r} S >= g_max={self.g_max!r} S")
        bits = _int_or_none("bits", self.bits, 1)
        levels = _int_or_none("levels", self.levels, 2)
        if bits is not None and bits > 32:
            raise ValueError(f"bits must be <= 32, got {bits!r}")
        if bits is not None and levels is not None and levels != 2**bits:
            raise ValueError(f"levels={levels!r} disagrees with bits={bits!r} (2**bits = {2**bits}); pass bits=None with levels")
        if levels is None and bits is not None:
            levels = 2**bits
        s = object.__setattr__
        s(self, "g_min", g_min)
        s(self, "g_max", g_max)
        s(self, "bits", bits)
        s(self, "levels", levels)
        s(self, "variation", _finite("variation", self.variation, lo=0.0))
        s(self, "variation_kind", VariationKind.parse(self.variation_kind))
        on = _finite("stuck_on_rate", self.stuck_on_rate, lo=0.0, hi=1.0)
        off = _finite("stuck_off_rate", self.stuck_off_rate, lo=0.0, hi=1.0)
        if on + off > 1.0:
            raise ValueError(f"stuck_on_rate + stuck_off_rate must be <= 1, got {on!r} + {off!r}")
        s(self, "stuck_on_rate", on)
        s(self, "stuck_off_rate", off)
        s(self, "sinh_b", _finite("sinh_b", self.sinh_b, lo=0.0))
        if isinstance(self.access, dict):
            s(self, "access", AccessTransistor.from_dict(self.access))
        if self.access is not None and not isinstance(self.access, AccessTransistor):
            raise ValueError(f"access must be an AccessTransistor or None, got {type(self.access).__name__}")
        if self.access is not None and self.sinh_b != 0:
            raise ValueError(f"a 1T-1R cell (access set) needs a linear device, sinh_b = 0; got sinh_b={self.sinh_b!r}")

    @property
    def r_min(self) -> float:
        """Lowest resistance 1/g_max, ohm."""
        return 1.0 / self.g_max

    @property
    def r_max(self) -> float:
        """Highest resistance 1/g_min, ohm (inf for g_min = 0)."""
        return math.inf if self.g_min == 0 else 1.0 / self.g_min

    @property
    def is_linear(self) -> bool:
        return self.sinh_b == 0.0 and self.access is None

    def quantize(self, frac) -> np.ndarray:
        """Conductance (S) for fractions ``frac`` in [0, 1] of the range, on the device's levels."""
        f = np.clip(np.asarray(frac, dtype=float), 0.0, 1.0)
        if self.levels is not None:
            f = np.rint(f * (self.levels - 1)) / (self.levels - 1)
        # (g_min + (g_max - g_min) can round 1 ulp above g_max: the top level must be g_max itself)
        return np.minimum(self.g_min + f * (self.g_max - self.g_min), self.g_max)

    def level_conductances(self) -> np.ndarray:
        """The programmable conductances (S), lowest first; ValueError for an analog device (``levels=None``)."""
        if self.levels is None:
            raise ValueError("level_conductances needs a device with levels (bits or levels set), got levels=None")
        return self.quantize(np.arange(self.levels) / (self.levels - 1))

    def random_state(self, rng: np.random.Generator, shape) -> np.ndarray:
        """A random programmed state of ``shape`` cells (S): each on a uniformly drawn level.

        For an analog device (``levels=None``) each cell is uniform over
        [g_min, g_max]. Draws one integer (or one uniform) per cell from ``rng``.
        """
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if self.levels is None:
            return self.quantize(rng.random(shape))
        return self.level_conductances()[rng.integers(0, self.levels, size=shape)]

    def sample(self, G, rng: np.random.Generator) -> np.ndarray:
        """Programmed conductances ``G`` (S) after variation and faults: one hardware instance.

        Draws, in this order, one variation factor and one fault uniform per
        cell from ``rng`` (nothing is drawn for what is disabled).
        """
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        G = np.array(G, dtype=float, copy=True)
        if self.variation > 0:
            z = rng.standard_normal(G.shape)
            if self.variation_kind is VariationKind.NORMAL:
                G *= np.maximum(1.0 + self.variation * z, 0.0)
            else:
                s2 = math.log1p(self.variation**2)
                G *= np.exp(math.sqrt(s2) * z - s2 / 2.0)
        if self.stuck_on_rate > 0 or self.stuck_off_rate > 0:
            u = rng.random(G.shape)
            G[u < self.stuck_on_rate] = self.g_max
            G[(u >= self.stuck_on_rate) & (u < self.stuck_on_rate + self.stuck_off_rate)] = self.g_min
        return G

    def current(self, G, v) -> np.ndarray:
        """Cell current, ampere, for conductance G (S) and cell voltage v (volt)."""
        G = np.asarray(G, dtype=float)
        v = np.asarray(v, dtype=float)
        if self.sinh_b == 0:
            return G * v
        return G * np.sinh(self.sinh_b * v) / self.sinh_b

    def to_dict(self) -> dict:
        return {
            "g_min": self.g_min, "g_max": self.g_max, "bits": self.bits, "levels": self.levels,
            "variation": self.variation, "variation_kind": self.variation_kind.name,
            "stuck_on_rate": self.stuck_on_rate, "stuck_off_rate": self.stuck_off_rate,
            "sinh_b": self.sinh_b,
        } | ({} if self.access is None else {"access": self.access.to_dict()})

    @classmethod
    def from_dict(cls, d: dict) -> "DeviceParams":
        check_known_fields(cls, d)
        return cls(**d)
