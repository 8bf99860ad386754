"""Fig. 14: FP32 -> ideal 6-bit crossbar -> non-ideal 64x64 -> non-ideal + variation.

* FP32: the float network;
* Cross6: 64x64, 6-bit device, DAC and ADC, no circuit non-idealities
  (``evaluate.precision_spec``);
* NI-Cross6-64x64: the preset (parasitics, DAC sag, 6-bit everything);
* NI-Cross6-64x64 + var: the same with sigma/mu = 10 % device variation
  (the paper's value), 5 hardware seeds.

Writes ``dnn_fig14_sensitivity.csv`` / ``.png``.
"""

from __future__ import annotations

import pandas as pd

from ..data import load_digits_split
from ..evaluate import evaluate, make_spec, precision_spec
from ..loading import load_model
from ..plotting import sensitivity
from .common import NETWORKS, parse, save


def run(preset: str = "spintronic", seeds: int = 5, variation: float = 0.1) -> pd.DataFrame:
    _, test = load_digits_split()
    rows = []
    for net in NETWORKS:
        lm = load_model(net)
        r = evaluate(lm, test, precision_spec(64, preset, 6))
        rows.append({"network": net, "implementation": "FP32", "seed": 0, "accuracy": r["accuracy_fp32"]})
        rows.append({"network": net, "implementation": "Cross6", "seed": 0, "accuracy": r["accuracy_crossbar"]})
        r = evaluate(lm, test, make_spec(preset, 64, 6, 6, 6))
        rows.append({"network": net, "implementation": "NI-Cross6-64x64", "seed": 0, "accuracy": r["accuracy_crossbar"]})
        for s in range(seeds):
            r = evaluate(lm, test, make_spec(preset, 64, 6, 6, 6, variation), seed=s)
            rows.append({"network": net, "implementation": f"NI-Cross6-64x64 +{variation:.0%} var", "seed": s,
                         "accuracy": r["accuracy_crossbar"]})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    args = parse(__doc__, argv)
    df = run(args.preset)
    save(df, sensitivity(df), args.out, "dnn_fig14_sensitivity")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
