"""The fast paths of TxSim training are refactors: same seed, same cells after N steps as the readable code."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import xbarlab as xb
import xbarlab.update as U
from dnn_eval.txsim import TxSimSettings, bias_optimizer, refresh, to_txsim, train_step
from xbarlab.fcm import FCMOptions
from xbarlab.update import UpdateParams


def _spintronic(rows=32):
    spec = xb.load_preset("rxnn-spintronic", rows, rows)
    return spec.replace(device=dataclasses.replace(spec.device, bits=None, levels=None))


def _run(net_name: str, steps: int, rebuild_every: int = 3):
    """G+ and G- of every layer after ``steps`` in-situ steps (ν, γ > 0), interpolated FCMs between exact
    rebuilds every ``rebuild_every``; the bench's setting at a smaller batch."""
    from dnn_eval.data import load_digits_split
    from dnn_eval.models import MLP, LeNet

    train, _ = load_digits_split()
    x, y = torch.as_tensor(train.x[:16]), torch.as_tensor(train.y[:16])
    torch.manual_seed(0)
    net = {"mlp": lambda: MLP(hidden=24), "lenet": LeNet}[net_name]()
    s = TxSimSettings(style="insitu", lr=0.5, batch=16,
                      update=UpdateParams(nu_set=0.1, nu_reset=0.2, gamma=1.0, pulses=1000))
    rng = np.random.default_rng(7)
    net, layers = to_txsim(net, _spintronic(), FCMOptions(), s, rng)
    opt = bias_optimizer(net, s.lr)
    for step in range(1, steps + 1):
        train_step(net, layers, opt, x, y, s, rng)
        refresh(layers, exact=step % rebuild_every == 0)
    return [l.state.G.copy() for l in layers] + [rng.random()]


@pytest.mark.parametrize("net", ["mlp", "lenet"])
def test_compiled_update_is_bitwise_the_array_code(monkeypatch, net):
    """6 steps of the MLP and of LeNet (convolution patches): every conductance bitwise equal, and the
    generator at the same place, with the compiled update loops and with the array code."""
    monkeypatch.setattr(U, "_compiled", lambda: False)
    want = _run(net, 6)
    monkeypatch.setattr(U, "_compiled", lambda: True)
    got = _run(net, 6)
    assert len(got) == len(want)
    for a, b in zip(want[:-1], got[:-1]):
        np.testing.assert_array_equal(a, b)
    assert want[-1] == got[-1]


@pytest.mark.parametrize("kind", ["numpy", "float32", "float64"])
def test_backward_read_in_the_turned_layout_is_the_row_layout(kind):
    """``BackwardFCM.matmul`` drives the turned read with X^T (``FCM.matmul_t``): bitwise the row layout (the
    errors padded, flipped per block, read by ``FCM.matmul``, the outputs flipped back), partial blocks too."""
    from xbarlab.fcm import FCM
    from xbarlab.fcm.backward import BackwardFCM

    rng = np.random.default_rng(4)
    W = rng.standard_normal((13, 11))
    b = BackwardFCM.from_fcm(FCM.from_weights(W, _spintronic(8), rng))
    d = rng.standard_normal((6, 11))
    if kind != "numpy":
        d = torch.as_tensor(d, dtype=getattr(torch, kind))
    got = b.matmul(d, check_finite=False, signed=True)
    tn, nc = b._blocks[2], b._blocks[3]
    Dp = (torch.zeros((6, tn * nc), dtype=d.dtype) if kind != "numpy" else np.zeros((6, tn * nc)))
    Dp[:, :11] = d
    want = b.turned.matmul(Dp[:, b._in_idx], check_finite=False, signed=True)[:, b._out_idx]
    if kind == "numpy":
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(b.matmul(d[0], signed=True), want[0])
    else:
        torch.testing.assert_close(got, want, rtol=0, atol=0)
