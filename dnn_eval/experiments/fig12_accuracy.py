"""Fig. 12(a): accuracy on Cross16/32/64 per network, the loss decomposed.

For each bundled data set (digits: mlp, lenet, convnet, vgg; mnist5k: lenet,
vgg; ``models.TRAINED_ON``) and each size, hardware seed 0, one column per
setting of ``experiments.settings`` (all from the one preset,
``rxnn-spintronic`` by default): FP32, ideal crossbar (``evaluate.ideal_spec``,
the paper's reference), precision only, parasitics only, variation only,
precision + parasitics, and everything (``accuracy_nonideal``). Each
accuracy has its binomial standard error ``stderr_*`` = sqrt(p (1 - p) / n)
over the n test images. ``degradation_pct`` = 100 (ideal - everything).
Converter ranges: those of ``xbarlab dnn-eval`` (``calibration.CLI_DEFAULT``,
calibrated on 500 training images; ``experiments.decompose``), named in the
columns ``dac_range``, ``adc_range`` and ``calibration`` of every row.
Writes ``dnn_fig12a_accuracy.csv`` / ``.png``.
"""

from __future__ import annotations

import pandas as pd

from ..data import load_bundled_split
from ..loading import load_model
from ..models import TRAINED_ON
from .common import SIZES, parse, save
from .decompose import calibration_images, evaluate_settings, wide_row
from ..plotting import decomposition_bars
from .settings import DEFAULT_PRESET


def run(preset: str = DEFAULT_PRESET, seed: int = 0, datasets=tuple(TRAINED_ON), sizes=SIZES,
        networks=None) -> pd.DataFrame:
    rows = []
    for dataset in datasets:
        train, test = load_bundled_split(dataset)
        calibration = calibration_images(train)
        for net in networks or TRAINED_ON[dataset]:
            lm = load_model(net, test.input_shape)
            for n in sizes:
                res = evaluate_settings(lm, test, n, preset, seed, ideal=True, calibration=calibration)
                row = {"dataset": dataset, "network": net, "xbar": n, "preset": preset, "seed": seed,
                       "n_samples": res["n_samples"], "n_tiles": res["n_tiles"], **res["ranges"], **wide_row(res)}
                row["accuracy_nonideal"] = row.pop("accuracy_everything")
                row["stderr_nonideal"] = row.pop("stderr_everything")
                row["degradation_pct"] = 100 * (row["accuracy_ideal"] - row["accuracy_nonideal"])
                rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    args = parse(__doc__, argv)
    df = run(args.preset)
    save(df, decomposition_bars(df), args.out, "dnn_fig12a_accuracy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
