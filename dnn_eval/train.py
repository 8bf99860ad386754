"""Train the bundled small networks (seeded, CPU, one torch thread).

    python -m dnn_eval.train [--dataset digits|mnist5k] [--networks vgg,...] [--epochs N] [--out dnn_eval/weights]

On digits (default; 40 epochs, seconds per network) it writes ``mlp.pt``,
``lenet.pt``, ``convnet.pt``, ``vgg.pt`` and ``convnet.pt2`` (``torch.export``
with a dynamic batch dimension); on mnist5k (20 epochs, about a minute for
LeNet and a few for the VGG on 2 cores) ``lenet_mnist5k.pt`` and
``vgg_mnist5k.pt`` (``models.weights_file``). State_dicts load with
``torch.load(weights_only=True)``. Adam, lr 3e-3, batch 64, cross-entropy,
training split only; one ``torch.manual_seed`` per network, so a rerun gives
the same weights on the same torch build. ``--networks`` trains a subset
(the others' files are left as they are).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xbarlab.cli_args import int_in
from xbarlab.params import check_positive

from .data import load_bundled_split
from .models import TRAINED_ON, build_model, weights_file

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 512) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for k in range(0, len(y), batch):
            out = model(torch.as_tensor(x[k:k + batch]))
            correct += int((out.argmax(1).numpy() == y[k:k + batch]).sum())
    return correct / len(y)


EPOCHS = {"digits": 40, "mnist5k": 20}


def train_model(name: str, epochs: int = 40, seed: int = 0, lr: float = 3e-3,
                dataset: str = "digits") -> tuple[nn.Module, float]:
    """(trained model in eval mode, test accuracy) of one bundled network on a bundled data set."""
    for k, v, lo in (("epochs", epochs, 1), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{k} must be an integer >= {lo}, got {v!r}")
    check_positive("lr", lr)
    train, test = load_bundled_split(dataset)
    model = build_model(name, train.input_shape, 10, seed=seed)
    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(train.x), torch.as_tensor(train.y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(yt), generator=g)
        for k in range(0, len(yt), 64):
            idx = perm[k:k + 64]
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    return model, accuracy(model, test.x, test.y)


def export_program(model: nn.Module, in_shape, path, dynamic_batch: bool = True, batch: int = 2) -> None:
    """Save ``model`` as a torch.export .pt2 (dynamic batch dimension by default)."""
    x = torch.zeros((batch,) + tuple(in_shape))
    dyn = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
    ep = torch.export.export(model.eval(), (x,), dynamic_shapes=dyn)
    torch.export.save(ep, str(path))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    p.add_argument("--dataset", default="digits", choices=sorted(TRAINED_ON))
    p.add_argument("--networks", default=None, help="comma-separated subset of the data set's networks")
    p.add_argument("--epochs", type=int_in(1, 100000, "a number of epochs"), default=None,
                   help="1..100000 (default: 40 on digits, 20 on mnist5k)")
    args = p.parse_args(argv)
    nets = TRAINED_ON[args.dataset] if args.networks is None else tuple(args.networks.split(","))
    bad = [n for n in nets if n not in TRAINED_ON[args.dataset]]
    if bad:
        p.error(f"--networks: {bad} not among {list(TRAINED_ON[args.dataset])} for {args.dataset}")
    epochs = EPOCHS[args.dataset] if args.epochs is None else args.epochs
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in nets:
        t0 = time.perf_counter()
        model, acc = train_model(name, epochs, dataset=args.dataset)
        shape = load_bundled_split(args.dataset)[1].input_shape
        path = args.out / weights_file(name, shape)
        torch.save(model.state_dict(), path)
        print(f"{name} on {args.dataset}: test accuracy {acc:.4f}, {time.perf_counter() - t0:.0f} s -> {path}")
        if name == "convnet" and args.dataset == "digits":
            export_program(model, shape, args.out / "convnet.pt2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
