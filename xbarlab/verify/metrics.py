"""Error metrics of a model's column currents against a reference (ngspice).

* The paper's per-column relative error: e_j = (I_model,j - I_ref,j) / I_ref,j
  for every column of every (state, input) pair. A column whose reference
  current is below ``ZERO_FS`` of the full-scale output (rows g_max v_read)
  is treated as zero current: it has no relative error (the DAC codes are
  all 0 there, so every model and ngspice give 0 A or ngspice's round-off)
  and is counted separately; it still enters the % FS metric.
* % of full scale: 100 |I_model,j - I_ref,j| / (rows g_max v_read).
"""

from __future__ import annotations

import numpy as np

#: reference currents below this fraction of the full-scale output count as zero
ZERO_FS = 1e-9


def check_currents(name: str, I) -> np.ndarray:
    """I as float64; ValueError naming ``name`` and the first non-finite value (a NaN reference column
    would otherwise count as zero current and drop out of the relative error, and pass a verdict)."""
    a = np.asarray(I, dtype=float)
    if not np.all(np.isfinite(a)):
        bad = tuple(int(k) for k in np.argwhere(~np.isfinite(a))[0])
        raise ValueError(f"{name} must be finite; found {a[bad]!r} at index {bad}")
    return a


def column_errors(I_model, I_ref, full_scale_a: float) -> dict:
    """max/mean of |per-column relative error| and of |error| in % FS; counts of columns and near-zero ones.

    ValueError when the two differ in shape, hold a non-finite current, or ``full_scale_a`` is not a
    finite number > 0. When no column carries current (``n_rel`` 0) the relative errors are NaN: there is
    nothing to judge, and 0 would read as a perfect match."""
    I_model = check_currents("I_model", I_model)
    I_ref = check_currents("I_ref", I_ref)
    if I_model.shape != I_ref.shape:
        raise ValueError(f"I_model and I_ref must have one shape, got {I_model.shape} and {I_ref.shape}")
    if isinstance(full_scale_a, bool) or not isinstance(full_scale_a, (int, float, np.floating, np.integer)) \
            or not (np.isfinite(full_scale_a) and full_scale_a > 0):
        raise ValueError(f"full_scale_a must be a finite number > 0 (ampere), got {full_scale_a!r}")
    d = I_model - I_ref
    nz = np.abs(I_ref) > ZERO_FS * full_scale_a
    rel = np.abs(d[nz] / I_ref[nz])
    fs = np.abs(d) / full_scale_a * 100.0
    return {"n": int(d.size), "n_rel": int(rel.size), "n_zero": int(d.size - rel.size),
            "max_rel": float(rel.max()) if rel.size else float("nan"),
            "mean_rel": float(rel.mean()) if rel.size else float("nan"),
            "max_pct_fs": float(fs.max()) if fs.size else 0.0, "mean_pct_fs": float(fs.mean()) if fs.size else 0.0}
