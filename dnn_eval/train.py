"""Train the bundled small networks on digits (seeded, CPU, seconds each).

    python -m dnn_eval.train [--out dnn_eval/weights] [--epochs 40]

writes ``mlp.pt``, ``lenet.pt``, ``convnet.pt`` (state_dicts, loadable with
``torch.load(weights_only=True)``) and ``convnet.pt2`` (``torch.export``
with a dynamic batch dimension). Adam, lr 3e-3, batch 64, cross-entropy;
one ``torch.manual_seed`` per network, so a rerun gives the same weights on
the same torch build.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import load_digits_split
from .models import TRAINED, build_model

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray, batch: int = 512) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for k in range(0, len(y), batch):
            out = model(torch.as_tensor(x[k:k + batch]))
            correct += int((out.argmax(1).numpy() == y[k:k + batch]).sum())
    return correct / len(y)


def train_model(name: str, epochs: int = 40, seed: int = 0, lr: float = 3e-3) -> tuple[nn.Module, float]:
    """(trained model in eval mode, test accuracy) of one bundled network on digits."""
    train, test = load_digits_split()
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
    p.add_argument("--epochs", type=int, default=40)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in TRAINED:
        model, acc = train_model(name, args.epochs)
        torch.save(model.state_dict(), args.out / f"{name}.pt")
        print(f"{name}: test accuracy {acc:.4f} -> {args.out / (name + '.pt')}")
        if name == "convnet":
            export_program(model, (1, 8, 8), args.out / "convnet.pt2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
