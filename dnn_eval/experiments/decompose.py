"""Evaluate one network on every setting of the loss decomposition (``settings.decomposition``)."""

from __future__ import annotations

from ..evaluate import evaluate, ideal_spec
from .settings import DEFAULT_PRESET, SETTINGS, decomposition, stderr

SEEDED = ("variation", "everything")  # the settings whose hardware instance depends on the seed


def evaluate_settings(lm, test, size: int, preset: str = DEFAULT_PRESET, seed: int = 0,
                      settings=SETTINGS, ideal: bool = False) -> dict:
    """{"fp32": acc, "ideal": acc (if asked), setting: acc, ..., "n_samples", "n_tiles"} on hardware seed ``seed``."""
    specs = decomposition(size, preset)
    out = {}
    if ideal:
        out["ideal"] = evaluate(lm, test, ideal_spec(size, preset), seed)["accuracy_crossbar"]
    for name in settings:
        r = evaluate(lm, test, specs[name], seed)
        out[name] = r["accuracy_crossbar"]
        out["fp32"], out["n_samples"], out["n_tiles"] = r["accuracy_fp32"], r["n_samples"], r["n_tiles"]
    return out


def wide_row(res: dict) -> dict:
    """accuracy_<setting> and stderr_<setting> columns (binomial standard error over the test images)."""
    n = res["n_samples"]
    row = {}
    for k, v in res.items():
        if k in ("n_samples", "n_tiles"):
            continue
        col = k.replace("+", "_")
        row[f"accuracy_{col}"] = v
        row[f"stderr_{col}"] = stderr(v, n)
    return row
