"""Reader for ngspice's binary rawfile (``-r out.raw``), by variable name."""

from __future__ import annotations

import numpy as np

from ..errors import SpiceError


def read_raw(data: bytes) -> dict[str, np.ndarray]:
    """Parse a real-valued binary rawfile into {name: values (n_points,)}.

    Names are lower-case as ngspice writes them: ``v(a0_0)``, ``i(vsense0)``.
    Only the first plot is read.
    """
    marker = b"Binary:\n"
    cut = data.find(marker)
    if cut < 0:
        raise SpiceError("ngspice rawfile has no binary section", log=data[:2000].decode("latin-1"))
    header = data[:cut].decode("latin-1").splitlines()
    n_vars = n_points = None
    names: list[str] = []
    flags = ""
    in_vars = False
    for line in header:
        if in_vars:
            parts = line.split()
            if len(parts) >= 3 and parts[0].isdigit():
                names.append(parts[1].lower())
                continue
            in_vars = False
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "no. variables":
            n_vars = _count(value, header)
        elif key == "no. points":
            n_points = _count(value, header)
        elif key == "flags":
            flags = value.strip().lower()
        elif key == "variables":
            in_vars = True
    if n_vars is None or n_points is None or len(names) != n_vars or len(set(names)) != n_vars:
        raise SpiceError("ngspice rawfile header is malformed", log="\n".join(header))
    if "complex" in flags:
        raise SpiceError("complex rawfiles are not supported", log="\n".join(header))
    body = np.frombuffer(data[cut + len(marker):], dtype="<f8")
    if body.size < n_vars * n_points:
        raise SpiceError("ngspice rawfile is truncated", log="\n".join(header))
    values = body[: n_vars * n_points].reshape(n_points, n_vars)
    return {name: values[:, k].copy() for k, name in enumerate(names)}


def _count(value: str, header: list[str]) -> int:
    """A variable or point count of the header: an integer >= 1 (a negative one would slice the data
    from its end, zero points leave nothing to read), else SpiceError."""
    v = value.strip()
    if not (v.isascii() and v.isdigit() and int(v) >= 1):
        raise SpiceError(f"ngspice rawfile header has a count {v[:40]!r}, not an integer >= 1",
                         log="\n".join(header))
    return int(v)
