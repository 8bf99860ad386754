"""Fig. 12(a): accuracy degradation against the ideal crossbar for Cross16/32/64, per network.

Ideal: ``evaluate.ideal_spec`` (no parasitics, analog devices, 16-bit DAC,
ideal ADC). Non-ideal: the preset (default ``spintronic``) at each size,
hardware seed 0. Writes ``dnn_fig12a_accuracy.csv`` / ``.png``.
"""

from __future__ import annotations

import pandas as pd

from ..data import load_digits_split
from ..evaluate import evaluate, ideal_spec, make_spec
from ..loading import load_model
from ..plotting import accuracy_degradation
from .common import NETWORKS, SIZES, parse, save


def run(preset: str = "spintronic", seed: int = 0) -> pd.DataFrame:
    _, test = load_digits_split()
    rows = []
    for net in NETWORKS:
        lm = load_model(net)
        for n in SIZES:
            ideal = evaluate(lm, test, ideal_spec(n, preset), seed)
            real = evaluate(lm, test, make_spec(preset, n), seed)
            rows.append({"network": net, "xbar": n, "preset": preset, "seed": seed,
                         "accuracy_fp32": ideal["accuracy_fp32"], "accuracy_ideal": ideal["accuracy_crossbar"],
                         "accuracy_nonideal": real["accuracy_crossbar"], "n_tiles": real["n_tiles"],
                         "degradation_pct": 100 * (ideal["accuracy_crossbar"] - real["accuracy_crossbar"]),
                         "n_samples": real["n_samples"]})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    args = parse(__doc__, argv)
    df = run(args.preset)
    save(df, accuracy_degradation(df), args.out, "dnn_fig12a_accuracy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
