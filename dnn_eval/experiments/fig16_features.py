"""Fig. 16: ConvNet feature maps, ideal against non-ideal crossbars, for conv1 and conv3.

The first test image of digits; ideal = ``evaluate.ideal_spec(64)``,
non-ideal = the preset at 64x64 with sigma/mu = 10 % variation (seed 0).
The maps are the conv layers' outputs after ReLU. Writes
``dnn_fig16_features.csv`` (tidy: layer, kind, channel, y, x, value) and
``.png``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..convert import to_crossbar
from ..data import load_digits_split
from ..evaluate import default_options, ideal_spec, make_spec
from ..loading import load_model
from ..plotting import feature_maps
from .common import parse, save

LAYERS = {"conv1": 1, "conv3": 6}  # index of the ReLU after each conv in ConvNet.features


def run(preset: str = "spintronic", image: int = 0, variation: float = 0.1) -> pd.DataFrame:
    _, test = load_digits_split()
    lm = load_model("convnet")
    x = torch.as_tensor(test.x[image:image + 1])
    rows = []
    for kind, spec in (("ideal", ideal_spec(64, preset)), ("non-ideal", make_spec(preset, 64, variation=variation))):
        xm = to_crossbar(lm.module, spec, np.random.default_rng(0), default_options(spec))
        acts = {}
        hooks = [xm.features[i].register_forward_hook(lambda m, i_, o, k=k: acts.__setitem__(k, o[0].detach()))
                 for k, i in LAYERS.items()]
        with torch.no_grad():
            xm(x)
        for h in hooks:
            h.remove()
        for layer, a in acts.items():
            C, H, W = a.shape
            yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
            for c in range(C):
                rows.append(pd.DataFrame({"layer": layer, "kind": kind, "channel": c, "y": yy.ravel(),
                                          "x": xx.ravel(), "value": a[c].numpy().ravel()}))
    return pd.concat(rows, ignore_index=True)


def main(argv=None) -> int:
    args = parse(__doc__, argv)
    df = run(args.preset)
    save(df, feature_maps(df), args.out, "dnn_fig16_features")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
