"""Validation of the conductance matrix G (siemens) and input voltages V (volt)."""

from __future__ import annotations

import numbers

import numpy as np


def _type_name(x) -> str | None:
    """The name of a non-real kind of number (bool, complex, string), or None if real."""
    if isinstance(x, (bool, np.bool_)):
        return "boolean"
    if isinstance(x, (str, bytes, np.str_, np.bytes_)):
        return "string"
    if isinstance(x, (complex, np.complexfloating)) or (
            isinstance(x, numbers.Complex) and not isinstance(x, numbers.Real)):
        return "complex"
    return None


def check_real_number_types(x, name: str) -> None:
    """ValueError naming ``name`` if ``x`` (a scalar, sequence or array) holds booleans,
    complex numbers or strings: np.asarray(..., dtype=float) would silently convert or drop
    their imaginary part."""
    if hasattr(x, "__array__") and not isinstance(x, np.ndarray):
        x = np.asarray(x)  # e.g. a torch tensor: judge it by its numpy dtype
    kind = x.dtype.kind if isinstance(x, (np.ndarray, np.generic)) else None
    bad = {"b": "boolean", "c": "complex", "U": "string", "S": "string"}.get(kind)
    if kind == "O" or kind is None:  # Python scalars and (nested) sequences: look at each value
        obj = np.asarray(x, dtype=object) if isinstance(x, (list, tuple, np.ndarray)) else np.array([x], dtype=object)
        for v in obj.ravel():
            bad = _type_name(v)
            if bad:
                break
    if bad:
        raise ValueError(f"{name} must hold real numbers, got {bad} values")


def _real_conductance_array(G, name: str) -> np.ndarray:
    """G as float64; ValueError unless every entry is a real number (not complex, bool or str)."""
    try:
        check_real_number_types(G, name)
        return np.asarray(G, dtype=float)
    except OverflowError:  # a Python int beyond double precision
        raise ValueError(f"{name} must be finite; found an integer beyond double precision (1.8e308)") from None
    except (TypeError, ValueError) as exc:
        if "real numbers" in str(exc):
            raise
        raise ValueError(f"{name} must be a numeric array of conductances in siemens") from None


def _check_finite_nonnegative(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; found {_first_bad(arr, ~np.isfinite(arr))}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 S; found {_first_bad(arr, arr < 0)}")


def check_conductances(G, name: str = "G") -> np.ndarray:
    """Return G as a float64 (M, N) array; ValueError unless 2-D, real, finite and >= 0 S."""
    arr = _real_conductance_array(G, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows x cols), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {arr.shape}")
    _check_finite_nonnegative(arr, name)
    return arr


def check_conductance_stack(G, name: str = "G") -> np.ndarray:
    """Return G as (T, M, N) float64; accepts one (M, N) matrix or a stack of them."""
    arr = _real_conductance_array(G, name)
    if arr.ndim == 2:
        return check_conductances(arr, name)[None]
    if arr.ndim != 3:
        raise ValueError(f"{name} must be (M, N) or (T, M, N), got shape {arr.shape}")
    _check_finite_nonnegative(arr, name)
    if 0 in arr.shape:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    return arr


def check_voltages(V, m: int, name: str = "V") -> np.ndarray:
    """Return V as float64 of shape (M,) or (B, M); ValueError on bad shape or values."""
    try:
        check_real_number_types(V, name)
        arr = np.asarray(V, dtype=float)
    except OverflowError:  # a Python int beyond double precision
        raise ValueError(f"{name} must be finite; found an integer beyond double precision (1.8e308)") from None
    except (TypeError, ValueError) as exc:
        if "real numbers" in str(exc):
            raise
        raise ValueError(f"{name} must be a numeric array of voltages in volt") from None
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D (M,) or 2-D (B, M), got shape {arr.shape}")
    if arr.shape[-1] != m:
        raise ValueError(
            f"{name} has {arr.shape[-1]} values per vector but G has {m} rows; shapes must match"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; found {_first_bad(arr, ~np.isfinite(arr))}")
    return arr


def _first_bad(arr: np.ndarray, mask: np.ndarray) -> str:
    idx = tuple(int(k) for k in np.argwhere(mask)[0])
    return f"{float(arr[idx])!r} at index {idx}"
