"""Fig. 12(b) and Fig. 13: energy per inference for Cross16/32/64 and its breakdown.

Networks: the three digits networks (one digits image) and the ResNet-18 and
ResNet-50 shapes on one 3x224x224 image with 1000 classes (ImageNet
shapes, random weights: energy depends only on shapes). Energy model and
sources: ``dnn_eval.energy``. Writes ``dnn_fig12b_energy.csv``/``.png``,
``dnn_fig13_breakdown.csv``/``.png``, ``dnn_energy_sources.csv`` and
``dnn_energy_sensing.csv``: at Cross64, every network under each mapping and
sensing scheme (``FCMOptions.mapping``/``.sensing``, dnn-eval's ``--mapping``/``--sensing``);
the other files use the default, the differential pair with separate sensing.
"""

from __future__ import annotations

import pandas as pd
import torch

from ..data import load_digits_split
from ..energy import CATEGORIES, EnergyParams, energy_per_inference
from .. import DEFAULT_PRESET
from ..evaluate import make_spec
from ..loading import load_model
from ..models import build_model
from ..plotting import energy_breakdown, energy_per_image
from .common import NETWORKS, SIZES, parse, save


def run(preset: str = DEFAULT_PRESET) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    _, test = load_digits_split()
    nets = [(n, load_model(n).module, torch.as_tensor(test.x[:1])) for n in NETWORKS]
    g = torch.Generator().manual_seed(0)
    for n in ("resnet18", "resnet50"):
        nets.append((n, build_model(n, (3, 224, 224), 1000), torch.rand((1, 3, 224, 224), generator=g)))
    rows, parts = [], []
    for name, model, x in nets:
        for s in SIZES:
            e = energy_per_inference(model, make_spec(preset, s), x)
            rows.append({"network": name, "xbar": s, "energy_j": e["total"], "tiles": e["tiles"],
                         **{f"{c}_j": e[c] for c in CATEGORIES}})
            if s == 64:
                parts += [{"network": name, "category": c, "energy_j": e[c], "fraction": e[c] / e["total"]}
                          for c in CATEGORIES]
    df = pd.DataFrame(rows)
    ref = df[df["xbar"] == 64].set_index("network")["energy_j"]
    df["energy_norm"] = df["energy_j"] / df["network"].map(ref)
    return df, pd.DataFrame(parts), sensing_energy(preset, nets)


#: (mapping, sensing) pairs the FCM accepts, the default first
SCHEMES = (("differential", "separate"), ("differential", "differential"), ("offset", "separate"),
           ("offset", "reference"))


def sensing_energy(preset: str, nets) -> pd.DataFrame:
    """Energy per inference at Cross64 of each (network, mapping, sensing), with its ratio to the default scheme."""
    from xbarlab.fcm import FCMOptions

    rows = []
    spec = make_spec(preset, 64)
    for name, model, x in nets:
        for mapping, sensing in SCHEMES:
            e = energy_per_inference(model, spec, x, options=FCMOptions(mapping=mapping, sensing=sensing))
            rows.append({"network": name, "xbar": 64, "mapping": mapping, "sensing": sensing,
                         "energy_j": e["total"], "arrays": e["tiles"], **{f"{c}_j": e[c] for c in CATEGORIES}})
    df = pd.DataFrame(rows)
    df["energy_vs_default"] = df["energy_j"] / df.groupby("network")["energy_j"].transform("first")
    return df


def main(argv=None) -> int:
    args = parse(__doc__, argv)
    df, parts, schemes = run(args.preset)
    save(df, energy_per_image(df), args.out, "dnn_fig12b_energy")
    save(parts, energy_breakdown(parts), args.out, "dnn_fig13_breakdown")
    p = EnergyParams()
    schemes.to_csv(args.out / "dnn_energy_sensing.csv", index=False)
    pd.DataFrame([{"parameter": k, "value": getattr(p, k, ""), "source": v}
                  for k, v in EnergyParams.sources().items()]).to_csv(args.out / "dnn_energy_sources.csv", index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
