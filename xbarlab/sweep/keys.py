"""Content keys of sweep tasks: canonical JSON -> sha256."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
import sys
from typing import Any, Callable

import numpy as np


def _plain(obj: Any) -> Any:
    """A JSON-ready copy of ``obj``: numpy scalars/arrays, tuples, Enums, dataclasses unwrapped."""
    if isinstance(obj, enum.Enum):
        return obj.name
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__type__": type(obj).__name__,
                **{f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_plain(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        if not math.isfinite(x):
            raise ValueError(f"sweep parameters must be finite numbers, got {x!r}")
        # integral floats hash like ints, so 8 and 8.0 are the same point
        return int(x) if x.is_integer() and abs(x) < 2**53 else x
    if obj is None or isinstance(obj, str):
        return obj
    raise ValueError(f"cannot key a sweep parameter of type {type(obj).__name__}: {obj!r}")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, floats by ``repr`` (round-trip exact)."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def function_id(fn: Callable) -> str:
    """``module:qualname`` of a module-level function (``__main__`` resolved to its real module)."""
    module = fn.__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        if spec is not None and spec.name:
            module = spec.name
    qual = fn.__qualname__
    if "<locals>" in qual or "<lambda>" in qual:
        raise ValueError(f"sweep functions must be module-level (picklable), got {module}:{qual}")
    return f"{module}:{qual}"


def task_key(fn: Callable | str, params: dict, seed: int | None, version: str = "") -> str:
    """sha256 hex digest of the task's inputs."""
    fid = fn if isinstance(fn, str) else function_id(fn)
    text = canonical_json({"fn": fid, "version": version, "params": params, "seed": seed})
    return hashlib.sha256(text.encode()).hexdigest()
