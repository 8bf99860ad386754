"""Fig. 16: feature maps, ideal against non-ideal crossbars, and the distortion of every conv layer.

* Maps: ConvNet on the first test image of digits, conv1 and conv3
  after ReLU; ideal = ``evaluate.ideal_spec(64)``, non-ideal = the preset at
  64x64 with sigma/mu = 10 % variation (seed 0). ``dnn_fig16_features.csv``
  (tidy: layer, kind, channel, y, x, value) and ``.png``.
* Numbers ("deeper layers distort more"): for every bundled conv network
  on every bundled data set, the relative L2 error of each conv layer's
  output over the whole test set, ||a_nonideal - a_ideal|| / ||a_ideal||,
  with the same two crossbars (the non-ideal network's layers see the
  non-ideal inputs of the layers before, as in the paper's figure).
  ``dnn_fig16_layer_error.csv`` (dataset, network, conv_index, layer,
  rel_l2_error, n_samples) and ``.png``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from torch import nn

from ..convert import to_crossbar
from ..data import Split, load_bundled_split, load_digits_split
from ..evaluate import default_options, ideal_spec, make_spec
from ..loading import load_model
from ..models import TRAINED_ON
from ..plotting import feature_maps, layer_error_lines
from .common import parse, save

LAYERS = {"conv1": 1, "conv3": 6}  # index of the ReLU after each conv in ConvNet.features


def run(preset: str = "rxnn-spintronic", image: int = 0, variation: float = 0.1) -> pd.DataFrame:
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


def _conv_outputs(model, names, x, batch: int = 250) -> list[list[torch.Tensor]]:
    """Per batch of ``x``: the outputs of the submodules ``names`` of ``model``."""
    out = []
    for k in range(0, len(x), batch):
        acts = {}
        hooks = [model.get_submodule(n).register_forward_hook(lambda m, i_, o, n=n: acts.__setitem__(n, o.detach()))
                 for n in names]
        with torch.no_grad():
            model(torch.as_tensor(x[k:k + batch]))
        for h in hooks:
            h.remove()
        out.append([acts[n] for n in names])
    return out


def layer_errors(preset: str = "rxnn-spintronic", size: int = 64, seed: int = 0, datasets=tuple(TRAINED_ON),
                 variation: float = 0.1, limit: int | None = None, nonideal=None) -> pd.DataFrame:
    """Relative L2 error of every conv layer's output over the test set (module docstring).

    ``limit`` uses only the first test images; ``nonideal`` replaces the
    non-ideal spec (default: the preset at ``size`` with ``variation``).
    """
    rows = []
    nonideal = nonideal or make_spec(preset, size, variation=variation)
    for dataset in datasets:
        _, test = load_bundled_split(dataset)
        test = test if limit is None else Split(test.x[:limit], test.y[:limit])
        for net in TRAINED_ON[dataset]:
            lm = load_model(net, test.input_shape)
            names = [n for n, m in lm.module.named_modules() if isinstance(m, nn.Conv2d)]
            if not names:
                continue
            acts = []
            for spec in (ideal_spec(size, preset), nonideal):
                xm = to_crossbar(lm.module, spec, np.random.default_rng(seed), default_options(spec))
                acts.append(_conv_outputs(xm, names, test.x))
            for j, name in enumerate(names):
                num = sum(float(((b[j] - a[j]) ** 2).sum()) for a, b in zip(*acts))
                den = sum(float((a[j] ** 2).sum()) for a in acts[0])
                rows.append({"dataset": dataset, "network": net, "xbar": size, "preset": preset, "seed": seed,
                             "variation": nonideal.device.variation, "conv_index": j + 1, "layer": name,
                             "rel_l2_error": float(np.sqrt(num / den)), "n_samples": len(test)})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    args = parse(__doc__, argv)
    df = run(args.preset)
    save(df, feature_maps(df), args.out, "dnn_fig16_features")
    err = layer_errors(args.preset)
    save(err, layer_error_lines(err), args.out, "dnn_fig16_layer_error")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
