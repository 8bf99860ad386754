"""Evaluate one network on every setting of the loss decomposition (``settings.decomposition``).

The converter ranges are those of ``xbarlab dnn-eval`` by default
(``dnn_eval.calibration.CLI_DEFAULT``: DAC full scale calibrated per layer, ADC
full scale per tile, both at the 99.99th percentile), calibrated on
``calibration.calibration_batch`` of the TRAINING split (500 evenly spaced
images), never on the test images (``evaluate`` refuses a shared image).
"""

from __future__ import annotations

from ..calibration import CLI_DEFAULT, ConverterRanges, calibration_batch
from ..evaluate import evaluate, ideal_spec
from .settings import DEFAULT_PRESET, SETTINGS, decomposition, stderr

SEEDED = ("variation", "everything")  # the settings whose hardware instance depends on the seed


def calibration_images(train, ranges: ConverterRanges = CLI_DEFAULT):
    """The calibration batch of ``ranges`` from a training split (None when the ranges need no data)."""
    return calibration_batch(train.x, ranges.samples) if ranges.needs_data else None


def evaluate_settings(lm, test, size: int, preset: str = DEFAULT_PRESET, seed: int = 0,
                      settings=SETTINGS, ideal: bool = False, ranges: ConverterRanges = CLI_DEFAULT,
                      calibration=None) -> dict:
    """{"fp32": acc, "ideal": acc (if asked), setting: acc, ..., "n_samples", "n_tiles", "ranges": range
    columns} on hardware seed ``seed``; ``calibration``: training images (``calibration_images``)."""
    specs = decomposition(size, preset)
    out = {}
    kw = {"ranges": ranges, "calibration": calibration}
    if ideal:
        out["ideal"] = evaluate(lm, test, ideal_spec(size, preset), seed, **kw)["accuracy_crossbar"]
    for name in settings:
        r = evaluate(lm, test, specs[name], seed, **kw)
        out[name] = r["accuracy_crossbar"]
        out["fp32"], out["n_samples"], out["n_tiles"] = r["accuracy_fp32"], r["n_samples"], r["n_tiles"]
        out["ranges"] = range_columns(r["converter_ranges"])
    return out


def _one(r: dict) -> str:
    extra = {k: v for k, v in r.items() if k not in ("kind", "per")}
    per = f" per {r['per']}" if r.get("per") else ""
    return r["kind"] + per + "".join(f" {k} {v:g}" for k, v in extra.items() if v is not None)


def range_columns(conv: dict) -> dict:
    """``dac_range``, ``adc_range``, ``calibration`` of an ``evaluate`` result's ``converter_ranges``."""
    how = (f"{conv['calibration_samples']} {conv['calibration_split']} images" if conv.get("calibration_split")
           else "none")
    return {"dac_range": _one(conv["dac"]), "adc_range": _one(conv["adc"]), "calibration": how}


def wide_row(res: dict) -> dict:
    """accuracy_<setting> and stderr_<setting> columns (binomial standard error over the test images)."""
    n = res["n_samples"]
    row = {}
    for k, v in res.items():
        if k in ("n_samples", "n_tiles", "ranges"):
            continue
        col = k.replace("+", "_")
        row[f"accuracy_{col}"] = v
        row[f"stderr_{col}"] = stderr(v, n)
    return row
