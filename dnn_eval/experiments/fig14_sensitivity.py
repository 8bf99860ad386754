"""Fig. 14: accuracy at 64x64 per non-ideality, FP32 -> Cross6 -> NI-Cross6 -> NI-Cross6 + variation.

One row per (data set, network, setting, hardware seed); the settings of
``experiments.settings``, all from the one preset (``rxnn-spintronic`` by
default): ``FP32``; ``precision`` (the paper's Cross6: 6-bit devices, DAC
and ADC, no parasitics); ``parasitics`` (ideal converters); ``variation``
(the preset's sigma/mu = 10 %); ``precision+parasitics`` (the paper's
NI-Cross6-64x64); ``everything`` (NI-Cross6-64x64 with variation). The
settings with variation run ``--seeds`` hardware instances (default 5), the
others are deterministic and run once (``--seed0-from CSV`` takes the seed-0
results from a Fig. 12(a) CSV of the same run, which makes these very
evaluations at 64x64). ``stderr`` is the binomial standard
error over the test images, sqrt(p (1 - p) / n). Converter ranges: those of
``xbarlab dnn-eval`` (``calibration.CLI_DEFAULT``, calibrated on 500 training
images; ``experiments.decompose``), named in the columns ``dac_range``,
``adc_range`` and ``calibration`` of every row. Writes
``dnn_fig14_sensitivity.csv`` / ``.png``.
"""

from __future__ import annotations

import pandas as pd

from ..data import load_bundled_split
from ..loading import load_model
from ..models import TRAINED_ON
from .common import parse, save
from .decompose import SEEDED, calibration_images, evaluate_settings
from ..plotting import sensitivity_lines
from .settings import DEFAULT_PRESET, SETTINGS, stderr


def run(preset: str = DEFAULT_PRESET, seeds: int = 5, size: int = 64, datasets=tuple(TRAINED_ON),
        networks=None, known: dict | None = None) -> pd.DataFrame:
    """``known``: (dataset, network) -> the hardware-seed-0 results of ``seed0_results`` (the same
    ``evaluate_settings`` calls Fig. 12(a) makes at this size), taken instead of evaluating them again."""
    rows = []
    for dataset in datasets:
        train, test = load_bundled_split(dataset)
        calibration = calibration_images(train)
        for net in networks or TRAINED_ON[dataset]:
            lm = load_model(net, test.input_shape)
            fp32, none = None, {"dac_range": "none (float)", "adc_range": "none (float)", "calibration": "none"}
            for setting in SETTINGS:
                for seed in range(seeds if setting in SEEDED else 1):
                    res = (known or {}).get((dataset, net)) if seed == 0 else None
                    if res is None:
                        res = evaluate_settings(lm, test, size, preset, seed, (setting,), calibration=calibration)
                    n = res["n_samples"]
                    if fp32 is None:
                        fp32 = res["fp32"]
                        rows.append(_row(dataset, net, size, preset, "FP32", 0, fp32, n, none))
                    rows.append(_row(dataset, net, size, preset, setting, seed, res[setting], n, res["ranges"]))
    return pd.DataFrame(rows)


def seed0_results(csv, preset: str, size: int = 64) -> dict:
    """(dataset, network) -> {setting: accuracy, "fp32", "n_samples", "ranges"} from a Fig. 12(a) CSV
    (``fig12_accuracy``: hardware seed 0, every setting, the same converter ranges and calibration),
    for its rows at ``size`` on ``preset``: the evaluations of this figure at seed 0, already made."""
    a = pd.read_csv(csv)
    a = a[(a["xbar"] == size) & (a["preset"] == preset) & (a["seed"] == 0)]
    out = {}
    for r in a.to_dict("records"):
        res = {s: r["accuracy_" + ("nonideal" if s == "everything" else s.replace("+", "_"))] for s in SETTINGS}
        res.update(fp32=r["accuracy_fp32"], n_samples=int(r["n_samples"]),
                   ranges={k: r[k] for k in ("dac_range", "adc_range", "calibration")})
        out[(r["dataset"], r["network"])] = res
    return out


def _row(dataset, net, size, preset, implementation, seed, acc, n, ranges: dict) -> dict:
    return {"dataset": dataset, "network": net, "xbar": size, "preset": preset, "implementation": implementation,
            "seed": seed, "accuracy": acc, "stderr": stderr(acc, n), "n_samples": n, **ranges}


def main(argv=None) -> int:
    args = parse(__doc__, argv, seeds=(int, 5), seed0_from=(str, None))
    # --seed0-from CSV: the seed-0 accuracies from this run's Fig. 12(a) CSV (make report passes its own)
    known = seed0_results(args.seed0_from, args.preset) if args.seed0_from else None
    df = run(args.preset, args.seeds, known=known)
    save(df, sensitivity_lines(df), args.out, "dnn_fig14_sensitivity")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
