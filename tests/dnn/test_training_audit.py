"""The training paths' edge cases (TxSim, re-training, NEAT, train.py): invalid settings and data, copies."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

import xbarlab as xb
from dnn_eval.convert import to_crossbar
from dnn_eval.data import Split
from dnn_eval.evaluate import default_options
from dnn_eval.txsim import TxSimSettings, to_txsim, train_on_crossbar, train_step
from xbarlab.fcm import FCMOptions


def _ideal_spec(rows=8):
    dev = xb.DeviceParams(g_min=1e-6, g_max=1e-4, bits=None, variation=0.0)
    return xb.CrossbarSpec(rows=rows, cols=rows, circuit=xb.CircuitParams(0.0, 0.0, 0.0, 0.0), device=dev,
                           dac=xb.DACParams(bits=16, v_read=0.2), adc=xb.ADCParams(bits=None))


def _data(n=20, k=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return Split(rng.standard_normal((n, k)).astype(np.float32), rng.integers(0, classes, n))


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def test_txsim_leaves_the_model_alone_so_a_second_run_trains_its_cells_again():
    """train_on_crossbar swapped the caller's layers in place: a second run from the same model found no
    Linear layer and trained only the biases, from the first run's cells."""
    model, d = _mlp(), _data()
    s = TxSimSettings(steps=3, style="ideal", lr=0.5)
    runs = [[(h["step"], h["accuracy"], h["loss"]) for h in train_on_crossbar(model, _ideal_spec(), d, d, s)[1][1:]]
            for _ in range(2)]
    assert isinstance(model[0], nn.Linear)
    assert runs[0] == runs[1]
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        to_txsim(nn.Sequential(nn.ReLU()), _ideal_spec(), FCMOptions(), s, np.random.default_rng(0))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_txsim_conv_applies_the_padding_mode(mode):
    """A Conv2d with padding_mode reflect was trained with zero padding (F.unfold's)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 2, 3, padding=1, padding_mode=mode)
    x = torch.rand(2, 1, 5, 5)
    net, _ = to_txsim(nn.Sequential(conv), _ideal_spec(), FCMOptions(), TxSimSettings(), np.random.default_rng(0))
    with torch.no_grad():
        got, want = net(x), conv(x)
    assert got.shape == want.shape
    assert float((got - want).abs().max()) < 1e-3 * float(want.abs().max())


def test_txsim_refuses_empty_or_nonfinite_data_and_a_nonfinite_loss():
    d, s = _data(), TxSimSettings(steps=2, style="ideal")
    empty = Split(d.x[:0], d.y[:0])
    with pytest.raises(ValueError, match="train split has 0 samples"):
        train_on_crossbar(_mlp(), _ideal_spec(), empty, d, s)
    with pytest.raises(ValueError, match="test split has 0 samples"):
        train_on_crossbar(_mlp(), _ideal_spec(), d, empty, s)
    x = d.x.copy()
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="train split: images must be finite"):
        train_on_crossbar(_mlp(), _ideal_spec(), Split(x, d.y), d, s)
    with pytest.raises(ValueError, match="labels"):
        train_on_crossbar(_mlp(), _ideal_spec(), Split(d.x, d.y - 5), d, s)
    # a NaN activation in one step (here a NaN input): refused before the cells change (they went NaN)
    net, layers = to_txsim(_mlp(), _ideal_spec(), FCMOptions(), s, np.random.default_rng(0))
    G = [layer.state.G.copy() for layer in layers]
    with pytest.raises(ValueError, match="training loss is nan"):
        train_step(net, layers, None, torch.as_tensor(x), torch.as_tensor(d.y), s, np.random.default_rng(0))
    for g, layer in zip(G, layers):
        np.testing.assert_array_equal(g, layer.state.G)


def test_txsim_seed_beyond_torch_generator_range_is_refused():
    with pytest.raises(ValueError, match="seed"):
        TxSimSettings(seed=2**64)
    TxSimSettings(seed=2**63 - 1)


@pytest.mark.parametrize("kw, field", [(dict(lr=float("inf")), "lr"), (dict(lr=True), "lr"), (dict(lr="1e-3"), "lr"),
                                       (dict(seed=-1), "seed"), (dict(seed=1.5), "seed"), (dict(seed=2**64), "seed")])
def test_retrain_settings_refuse_bad_lr_and_seed(kw, field):
    """lr inf / True were accepted (inf made the weights inf, found at the next FCM build as 'W must be
    finite'), a string lr was a TypeError, a negative or float seed failed later in numpy."""
    from dnn_eval.retrain import RetrainSettings

    with pytest.raises(ValueError, match=field):
        RetrainSettings(**kw)


def test_retrain_refuses_empty_or_nonfinite_splits():
    """An empty training split ran every step on no data (NaN losses), an empty test split failed in
    numpy's concatenate, a NaN image at the first FCM rebuild ('W must be finite')."""
    from dnn_eval.retrain import RetrainSettings, retrain

    d, s = _data(), RetrainSettings(steps=2, regen_every=1, eval_every=1)
    x = d.x.copy()
    x[0, 0] = np.inf
    for train, test, msg in ((Split(d.x[:0], d.y[:0]), d, "train split has 0"), (d, Split(d.x[:0], d.y[:0]),
                             "test split has 0"), (Split(x, d.y), d, "train split: images must be finite")):
        with pytest.raises(ValueError, match=msg):
            retrain(_mlp(), _ideal_spec(), train, test, s)
    with pytest.raises(ValueError, match="RetrainSettings"):
        retrain(_mlp(), _ideal_spec(), d, d, {"steps": 2})


def _xbar_mlp():
    from dnn_eval.convert import to_crossbar
    from dnn_eval.evaluate import default_options

    return to_crossbar(_mlp(), _ideal_spec(), None, default_options(_ideal_spec()))


@pytest.mark.parametrize("kw, field", [(dict(steps=-1), "steps"), (dict(batch=0), "batch"), (dict(batch=-3), "batch"),
                                       (dict(regen_every=0), "regen_every"), (dict(lr=float("inf")), "lr"),
                                       (dict(steps=2.5), "steps"), (dict(batch=True), "batch"),
                                       (dict(seed=-1), "seed")])
def test_neat_train_refuses_bad_schedules(kw, field):
    """steps=-1 returned a history with step -1, batch=0 trained on nothing (NaN loss), regen_every=0 was a
    ZeroDivisionError, batch=-3 / 2.5 steps a RuntimeError / TypeError from torch."""
    from dnn_eval.neat import neat_train

    d = _data()
    with pytest.raises(ValueError, match=field):
        neat_train(_xbar_mlp(), d, d, **{"steps": 2, **kw})


def test_neat_refuses_empty_splits_and_choose_vg_empty_candidates():
    from dnn_eval.neat import choose_vg, neat_train

    d = _data()
    with pytest.raises(ValueError, match="train split has 0"):  # (was torch's RuntimeError from randint)
        neat_train(_xbar_mlp(), Split(d.x[:0], d.y[:0]), d, steps=2)
    with pytest.raises(ValueError, match="candidates"):  # (was an IndexError)
        choose_vg(_mlp(), _ideal_spec(), d, [])
    with pytest.raises(ValueError, match="budget"):  # (NaN kept the highest V_G for every layer)
        choose_vg(_mlp(), _ideal_spec(), d, [1.0], budget=float("nan"))


@pytest.mark.parametrize("epochs", ["0", "-1"])
def test_train_cli_refuses_epochs_below_one_and_writes_nothing(tmp_path, capsys, epochs):
    """--epochs 0 silently meant the default (40), --epochs -1 trained no epoch and wrote the untrained
    networks over the weights files."""
    from dnn_eval.train import main

    with pytest.raises(SystemExit) as exc:
        main(["--epochs", epochs, "--networks", "mlp", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "--epochs" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kw, field", [(dict(epochs=0), "epochs"), (dict(epochs=-2), "epochs"),
                                       (dict(lr=float("nan")), "lr"), (dict(lr=-1e-3), "lr"), (dict(seed=-1), "seed")])
def test_train_model_refuses_bad_settings(kw, field):
    from dnn_eval.train import train_model

    with pytest.raises(ValueError, match=field):
        train_model("mlp", **kw)


def test_txsim_trains_in_train_mode_and_evaluates_in_eval_mode():
    """The model's mode was never set: a BatchNorm (the ResNets') evaluated the test set in training
    mode, with batch statistics, and folded the test images into its running statistics."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    d, test = _data(), _data(seed=1)
    test = Split(test.x * 5 + 3, test.y)  # other statistics than the training data
    net, hist, _ = train_on_crossbar(model, _ideal_spec(), d, test, TxSimSettings(steps=0, style="ideal"))
    assert not net.training
    np.testing.assert_array_equal(net[1].running_mean.numpy(), np.zeros(5))  # no step: still the initial ones
    net, _, _ = train_on_crossbar(model, _ideal_spec(), d, test, TxSimSettings(steps=1, batch=20, style="ideal"))
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5)).train()
    ref(torch.as_tensor(d.x))  # one training batch (all 20 samples) moves the running mean
    np.testing.assert_allclose(net[1].running_mean.numpy(), ref[1].running_mean.detach().numpy(), atol=1e-3)


class _Shared(nn.Module):
    """One Linear called twice in a forward pass (shared weights), and one never called."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.lin, self.head, self.unused = nn.Linear(6, 6), nn.Linear(6, 3), nn.Linear(6, 6)

    def forward(self, x):
        return self.head(torch.relu(self.lin(torch.relu(self.lin(x)))))


def test_txsim_a_layer_called_twice_gets_both_calls_update_and_an_unused_one_none():
    """train_step applied only the first recorded call's X D^T to a shared layer (its second use was lost)
    and raised IndexError for a layer never called. Ideal cells and converters: the cells' weight change is
    -lr times the float gradient of the shared weight (both uses)."""
    s = TxSimSettings(steps=1, style="ideal", lr=0.05, w_max_scale=4.0)
    d = _data(n=8)
    x, y = torch.as_tensor(d.x), torch.as_tensor(d.y)
    ref = _Shared()
    nn.functional.cross_entropy(ref(x), y).backward()
    txm, layers = to_txsim(_Shared(), _ideal_spec(), FCMOptions(), s, np.random.default_rng(0))
    before = [layer.state.weights().copy() for layer in layers]
    train_step(txm, layers, None, x, y, s, np.random.default_rng(1))
    dW = layers[0].state.weights() - before[0]  # (K, N) = W^T of nn.Linear
    want = -s.lr * ref.lin.weight.grad.numpy().T
    assert np.abs(dW - want).max() < 0.02 * np.abs(want).max()
    assert np.array_equal(layers[2].state.weights(), before[2])  # never called: no update


def test_neat_train_reprograms_the_chip_instance_apply_programmed():
    """neat_train rebuilt the FCMs with default_rng(seed), the batch seed: with apply(rng_seed=5) every
    rebuild evaluated another chip instance (other device variation) than the one programmed."""
    from dnn_eval.convert import crossbar_layers, program_all
    from dnn_eval.neat import neat_train

    spec = _ideal_spec().replace(device=dataclasses.replace(_ideal_spec().device, variation=0.2))
    xm = to_crossbar(_mlp(), spec, np.random.default_rng(5), default_options(spec))
    d = _data()
    neat_train(xm, d, d, steps=1, regen_every=1, seed=0, rng_seed=5)
    got = [f.G.copy() for layer in crossbar_layers(xm) for f in layer.fcms]
    program_all(xm, np.random.default_rng(5))
    want = [f.G for layer in crossbar_layers(xm) for f in layer.fcms]
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    with pytest.raises(ValueError, match="rng_seed"):
        neat_train(xm, d, d, steps=1, rng_seed=-1)


def test_minibatches_drop_the_remainder_per_pass_and_warn_of_a_batch_over_the_split():
    from dnn_eval.batching import minibatches

    g = torch.Generator().manual_seed(0)
    order = minibatches(10, 4, g)
    passes = [[next(order) for _ in range(2)] for _ in range(3)]
    for p in passes:  # two batches of 4 per pass, 8 distinct samples, 2 left over
        assert all(len(b) == 4 for b in p) and len(set(torch.cat(p).tolist())) == 8
    with pytest.warns(UserWarning, match="batch 32 is larger than the train split \\(20 samples\\)"):
        big = next(minibatches(20, 32, torch.Generator().manual_seed(0)))
    assert sorted(big.tolist()) == list(range(20))
    s = TxSimSettings(steps=1, style="ideal", batch=32)
    with pytest.warns(UserWarning, match="batch 32 is larger"):
        train_on_crossbar(_mlp(), _ideal_spec(), _data(), _data(), s)
