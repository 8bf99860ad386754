"""Circuit parameters of a crossbar, in SI units (ohm).

See ``netlists/README.md`` for the circuit convention these values enter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence, Union

import numpy as np

from .arrays import check_real_number_types
from .fields import check_known_fields

RDriver = Union[float, Sequence[float]]


def check_number(name: str, value, unit: str) -> float:
    """``value`` as float; ValueError naming ``name`` unless a real number (not a boolean, complex or string)."""
    check_real_number_types(value, name)
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond double precision
        raise ValueError(f"{name} must be a real number in {unit}, got {value!r}") from None


def check_positive(name: str, value) -> float:
    """``value`` as float; ValueError naming ``name`` unless a Python int or float (not a boolean), finite and > 0."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    try:
        v = float(value) if ok else math.nan
    except OverflowError:  # an int beyond double precision
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_resistance(name: str, value: float) -> float:
    """Return ``value`` as float; raise ValueError naming ``name`` unless a real number
    (not a boolean, complex or string), finite and >= 0."""
    check_real_number_types(value, name)
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond double precision
        raise ValueError(f"{name} must be a number in ohm, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0 ohm, got {value!r}")
    if v > 0 and not math.isfinite(1.0 / v):  # its conductance 1/r would overflow double precision
        raise ValueError(f"{name} must be 0 (an ideal wire) or at least 5.6e-309 ohm (1/r finite), got {value!r}")
    return v


@dataclass(frozen=True)
class CircuitParams:
    """Interconnect and peripheral resistances of one crossbar (all in ohm).

    Attributes:
        r_row: wire resistance of one row segment between adjacent cells, ohm.
            The first segment sits between the driver and cell (i, 0).
        r_col: wire resistance of one column segment, ohm. The last segment
            sits between cell (M-1, j) and the sense resistor.
        r_sense: input resistance of the sense amplifier (to its virtual
            ground), ohm.
        r_driver: output resistance of the row driver, ohm; a scalar, or a
            sequence with one value per row (stored as a tuple).

    Every value is finite and >= 0; 0 means an ideal wire and is handled
    exactly (the nodes are merged, no tiny resistor is substituted).
    """

    r_row: float = 0.0
    r_col: float = 0.0
    r_sense: float = 0.0
    r_driver: RDriver = field(default=0.0)

    def __post_init__(self) -> None:
        for name in ("r_row", "r_col", "r_sense"):
            object.__setattr__(self, name, check_resistance(name, getattr(self, name)))
        rd = self.r_driver
        try:
            ndim = np.ndim(rd)
        except ValueError:  # ragged nesting such as [[1, 2], [3]]
            ndim = -1
        if ndim == 0:
            object.__setattr__(self, "r_driver", check_resistance("r_driver", rd))
        else:
            if ndim != 1:
                got = f"shape {np.shape(rd)}" if ndim > 1 else "a ragged nested sequence"
                raise ValueError(f"r_driver must be a number or a flat sequence of ohm values (one per row), got {got}")
            arr = np.asarray(rd, dtype=object)
            if arr.size == 0:
                raise ValueError("r_driver must be a number or a non-empty sequence of ohm values, got []")
            vals = tuple(check_resistance(f"r_driver[{k}]", v) for k, v in enumerate(arr))
            object.__setattr__(self, "r_driver", vals)

    @classmethod
    def ideal(cls) -> "CircuitParams":
        """All parasitics zero: the crossbar computes exactly ``V @ G``."""
        return cls()

    def r_driver_rows(self, m: int) -> np.ndarray:
        """Driver resistance of each of ``m`` rows as a float array (ohm)."""
        if isinstance(self.r_driver, tuple):
            if len(self.r_driver) != m:
                raise ValueError(
                    f"r_driver has {len(self.r_driver)} values but the crossbar has {m} rows"
                )
            return np.array(self.r_driver, dtype=float)
        return np.full(m, float(self.r_driver))

    @property
    def is_ideal(self) -> bool:
        return self.r_row == 0 and self.r_col == 0 and self.r_sense == 0 and not np.any(
            np.asarray(self.r_driver, dtype=float)
        )

    def to_dict(self) -> dict:
        rd = list(self.r_driver) if isinstance(self.r_driver, tuple) else self.r_driver
        return {"r_row": self.r_row, "r_col": self.r_col, "r_sense": self.r_sense, "r_driver": rd}

    @classmethod
    def from_dict(cls, d: dict) -> "CircuitParams":
        check_known_fields(cls, d)
        return cls(**d)


def check_circuit(circuit) -> CircuitParams:
    """Return ``circuit``; ValueError unless it is a CircuitParams."""
    if not isinstance(circuit, CircuitParams):
        raise ValueError(f"circuit must be an xbarlab.CircuitParams, got {type(circuit).__name__}")
    return circuit
