"""Re-training for crossbars: crossbar-abstracted forward, floating-point backward.

Every crossbar layer returns ``y_fp + (y_xbar - y_fp).detach()``
(straight-through): the loss sees the crossbar's outputs, with every
non-ideality, and the gradient is the floating-point layer's. The weights
stay floating point; the DAC, ADC and device quantization are re-applied
when the weights are programmed again.

Programming the crossbars (FCM generation: tiling, mapping, G_non-ideal
of every tile) costs far more than a training step, so the FCMs are
rebuilt from the current weights every ``regen_every`` steps (and before
every evaluation), not every step; in between, the forward pass uses the
last programmed crossbars. Each rebuild uses a fresh
``numpy.random.default_rng(seed)``, so the same cells get the same
variation: the network is re-trained for one fixed chip instance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xbarlab.params import check_positive

from .batching import minibatches
from .convert import program_all, set_straight_through, to_crossbar
from .evaluate import accuracy, default_options


@dataclass(frozen=True)
class RetrainSettings:
    """Re-training schedule.

    Attributes:
        steps: optimizer steps (iterations), >= 0.
        batch: mini-batch size, >= 1 (``dnn_eval.batching``: shuffled passes, the remainder dropped).
        lr: Adam learning rate, > 0.
        regen_every: steps between FCM rebuilds, >= 1.
        eval_every: steps between test evaluations, a multiple of regen_every.
        seed: seeds the hardware instance and the batch order.
    """

    steps: int = 150
    batch: int = 64
    lr: float = 1e-3
    regen_every: int = 10
    eval_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for k, lo in (("steps", 0), ("batch", 1), ("regen_every", 1), ("eval_every", 1), ("seed", 0)):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo or (k == "seed" and v >= 2**63):
                raise ValueError(f"{k} must be an integer >= {lo}{' and < 2**63' * (k == 'seed')}, got {v!r}")
        check_positive("lr", self.lr)
        if self.eval_every % self.regen_every:
            raise ValueError(f"eval_every ({self.eval_every}) must be a multiple of regen_every ({self.regen_every})")


def retrain(model: nn.Module, spec, train, test, settings: RetrainSettings | None = None,
            options=None, device: str = "cpu") -> tuple[nn.Module, list[dict]]:
    """Re-train ``model`` for crossbars of ``spec``; returns (crossbar model, history).

    ``options`` (``FCMOptions``) defaults to ``evaluate.default_options(spec)``.
    ``history`` has one row per evaluation: ``step``, ``accuracy_crossbar``
    (test, crossbar forward) and ``loss`` (mean training loss since the last row).
    """
    s = settings or RetrainSettings()
    if not isinstance(s, RetrainSettings):
        raise ValueError(f"settings must be a RetrainSettings, got {type(s).__name__}")
    train, test = train.check("train"), test.check("test")
    options = options or default_options(spec)
    hw = lambda: np.random.default_rng(s.seed)  # noqa: E731 - the same chip instance each time
    xm = to_crossbar(model, spec, hw(), options).to(device)
    set_straight_through(xm, True)
    opt = torch.optim.Adam([p for p in xm.parameters() if p.requires_grad], lr=s.lr)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(s.seed)
    xt, yt = torch.as_tensor(train.x), torch.as_tensor(train.y)
    hist = [{"step": 0, "accuracy_crossbar": accuracy(xm, test.x, test.y, device=device), "loss": float("nan")}]
    losses, order = [], minibatches(len(yt), s.batch, g)
    for step in range(1, s.steps + 1):
        idx = next(order)
        xm.train()
        opt.zero_grad()
        loss = loss_fn(xm(xt[idx].to(device)), yt[idx].to(device))
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step % s.regen_every == 0:
            program_all(xm, hw())
        if step % s.eval_every == 0:
            xm.eval()
            hist.append({"step": step, "accuracy_crossbar": accuracy(xm, test.x, test.y, device=device),
                         "loss": float(np.mean(losses))})
            losses = []
    xm.eval()
    return xm, hist
