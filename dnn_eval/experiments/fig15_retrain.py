"""Fig. 15: re-training on crossbars (crossbar forward, floating-point backward).

LeNet and ConvNet on the preset's non-ideal 64x64 crossbars with an 8-bit
ADC and sigma/mu = 20 % device variation (one hardware instance, seed 0),
150 iterations (as the paper), Adam lr 3e-4, batch 64, FCMs rebuilt every
10 iterations (``dnn_eval.retrain``). With the preset's 6-bit ADC the loss
is dominated by ADC rounding of small column currents, which re-training
with a straight-through gradient barely recovers (see README). Writes ``dnn_fig15_retrain.csv``
/ ``.png``.
"""

from __future__ import annotations

import pandas as pd

from ..data import load_digits_split
from ..evaluate import accuracy, make_spec
from ..loading import load_model
from ..plotting import retrain_curve
from ..retrain import RetrainSettings, retrain
from .common import parse, save


def run(preset: str = "rxnn-spintronic", steps: int = 150, lr: float = 3e-4, adc_bits: int = 8,
        variation: float = 0.2) -> pd.DataFrame:
    train, test = load_digits_split()
    rows = []
    for net in ("lenet", "convnet"):
        lm = load_model(net)
        fp = accuracy(lm.module, test.x, test.y)
        _, hist = retrain(lm.module, make_spec(preset, 64, adc_bits=adc_bits, variation=variation), train, test, RetrainSettings(steps=steps, lr=lr))
        rows += [{"network": net, "xbar": 64, "adc_bits": adc_bits, "variation": variation, "accuracy_fp32": fp,
                  "n_samples": len(test), **h} for h in hist]
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    args = parse(__doc__, argv, steps=(int, 150), lr=(float, 3e-4))
    df = run(args.preset, args.steps, args.lr)
    save(df, retrain_curve(df), args.out, "dnn_fig15_retrain")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
