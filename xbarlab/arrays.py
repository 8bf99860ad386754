"""Validation of the conductance matrix G (siemens) and input voltages V (volt)."""

from __future__ import annotations

import numpy as np


def check_conductances(G, name: str = "G") -> np.ndarray:
    """Return G as a float64 (M, N) array; ValueError unless 2-D, finite and >= 0 S."""
    try:
        arr = np.asarray(G, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array of conductances in siemens") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows x cols), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; found {_first_bad(arr, ~np.isfinite(arr))}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 S; found {_first_bad(arr, arr < 0)}")
    return arr


def check_conductance_stack(G, name: str = "G") -> np.ndarray:
    """Return G as (T, M, N) float64; accepts one (M, N) matrix or a stack of them."""
    arr = np.asarray(G, dtype=float)
    if arr.ndim == 2:
        return check_conductances(arr, name)[None]
    if arr.ndim != 3:
        raise ValueError(f"{name} must be (M, N) or (T, M, N), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; found {_first_bad(arr, ~np.isfinite(arr))}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0 S; found {_first_bad(arr, arr < 0)}")
    if 0 in arr.shape:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    return arr


def check_voltages(V, m: int, name: str = "V") -> np.ndarray:
    """Return V as float64 of shape (M,) or (B, M); ValueError on bad shape or values."""
    try:
        arr = np.asarray(V, dtype=float)
    except (TypeError, ValueError):
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
