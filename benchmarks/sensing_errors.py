"""Relative L2 error of one random layer per sensing scheme, one non-ideality at a time (EXACT DAC load).

    PYTHONPATH=. python benchmarks/sensing_errors.py

The preset (``dnn_eval.evaluate.make_spec``, 64 x 64) with no variation; W (150, 64) ~ N(0, 0.1^2),
20 non-negative inputs; error ||y - x W|| / ||x W|| of ``FCM.matmul``. Settings: the preset's parasitics
with ideal converters and analog devices; its precision (6-bit DAC, ADC, devices) with no parasitics;
row wire resistance alone; sense and driver resistance alone. Seeded: the same numbers every run.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import xbarlab as xb
from dnn_eval.evaluate import make_spec

SCHEMES = [("separate", "differential"), ("differential", "differential"), ("separate", "offset"),
           ("reference", "offset")]


def settings(spec):
    dev = dataclasses.replace(spec.device, variation=0.0)
    analog = dataclasses.replace(dev, bits=None)
    ideal_conv = dict(dac=xb.DACParams(bits=16, v_read=spec.dac.v_read, r_pd=spec.dac.r_pd),
                      adc=xb.ADCParams(bits=None))
    unloaded = dict(dac=xb.DACParams(bits=16, v_read=spec.dac.v_read, r_pd=0.0), adc=xb.ADCParams(bits=None))
    none = xb.CircuitParams(r_row=0.0, r_col=0.0, r_sense=0.0, r_driver=0.0)
    c = spec.circuit
    return [("parasitics only", spec.replace(device=analog, **ideal_conv)),
            ("precision only", spec.replace(device=dev, circuit=none,
                                            dac=xb.DACParams(bits=spec.dac.bits, v_read=spec.dac.v_read, r_pd=0.0))),
            ("row wires only", spec.replace(device=analog, circuit=xb.CircuitParams(r_row=c.r_row, r_col=0.0,
                                                                                    r_sense=0.0, r_driver=0.0),
                                            **unloaded)),
            ("sense + driver only", spec.replace(device=analog, circuit=xb.CircuitParams(
                r_row=0.0, r_col=0.0, r_sense=c.r_sense, r_driver=c.r_driver), **unloaded))]


def main() -> None:
    spec = make_spec(size=64)
    rng = np.random.default_rng(0)
    W = rng.standard_normal((150, 64)) * 0.1
    x = np.maximum(rng.standard_normal((20, 150)), 0.0)
    y0 = x @ W
    print("| setting | " + " | ".join(f"{s} ({m})" for s, m in SCHEMES) + " |")
    print("|---" * (len(SCHEMES) + 1) + "|")
    for label, sp in settings(spec):
        errs = []
        for sensing, mapping in SCHEMES:
            f = xb.FCM.from_weights(W, sp, None, xb.FCMOptions(mapping=mapping, sensing=sensing, dac_load="exact"))
            errs.append(np.linalg.norm(f.matmul(x) - y0) / np.linalg.norm(y0))
        print(f"| {label} | " + " | ".join(f"{e:.3f}" for e in errs) + " |")


if __name__ == "__main__":
    main()
