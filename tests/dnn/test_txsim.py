"""dnn_eval.txsim: training in all three phases on crossbars (issue 14)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

import xbarlab as xb
from dnn_eval.txsim import (CrossbarState, TxLayer, TxSimSettings, batched_pulses, to_txsim, train_on_crossbar,
                            train_step, weight_matrix)
from xbarlab.fcm import FCMOptions
from xbarlab.update import (InSituSettings, PulseScheme, UpdateParams, apply_pulses, apply_pulses_unchecked,
                            outer_product_pulses)


def _ideal_spec(rows=8, cols=8, dac_bits=16):
    dev = xb.DeviceParams(g_min=1e-6, g_max=1e-4, bits=None, variation=0.0)
    return xb.CrossbarSpec(rows=rows, cols=cols, circuit=xb.CircuitParams(0.0, 0.0, 0.0, 0.0), device=dev,
                           dac=xb.DACParams(bits=dac_bits, v_read=0.2), adc=xb.ADCParams(bits=None))


def _spintronic(rows=8):
    spec = xb.load_preset("rxnn-spintronic", rows, rows)
    return spec.replace(device=dataclasses.replace(spec.device, bits=None, levels=None))


def test_batched_pulses_is_outer_product_pulses_summed():
    rng = np.random.default_rng(0)
    X, D = rng.standard_normal((3, 5)), rng.standard_normal((3, 4))
    dev, up = _ideal_spec().device, UpdateParams(pulses=100)
    exp = InSituSettings(bit_length=10, scheme=PulseScheme.EXPECTED)
    want = sum(outer_product_pulses(X[r], D[r], -0.3e-6, dev, up, exp) for r in range(3))
    np.testing.assert_array_equal(batched_pulses(X, D, -0.3e-6, up.step(dev), exp, None), want)
    # stochastic: the mean of many draws approaches the expected (unrounded) count
    sto = InSituSettings(bit_length=10)
    mean = np.mean([batched_pulses(X[:1], D[:1], -0.3e-6, up.step(dev), sto, rng) for _ in range(4000)], axis=0)
    peak = np.sqrt(0.3e-6 * np.abs(X[0]).max() * np.abs(D[0]).max() / (up.step(dev) * 10))
    p = np.minimum(1, np.abs(X[0]) / np.abs(X[0]).max() * peak)
    q = np.minimum(1, np.abs(D[0]) / np.abs(D[0]).max() * peak)
    expected = -np.sign(np.outer(X[0], D[0])) * 10 * np.outer(p, q)
    assert np.abs(mean - expected).max() < 0.25


def test_batched_pulse_streams_have_the_law_of_independent_slots():
    """Mean, variance of every cell and the covariance of two cells on one row (they share the row's
    stream) are those of BL independent slots, within 5 standard errors of each estimate. A cell's count is
    +-Binomial(BL, pq): its sample variance's standard error is sqrt((mu4 - var^2) / n), mu4 = var (1 + 3
    (BL - 2) pq (1 - pq)) the fourth central moment (the Gaussian sqrt(2 / n) var, used before, is about half
    of it for the cells of small pq: 0.0027 against 0.0058 at var 0.12, pq 0.02, where the stream of float64
    uniforms fell 2.5 true standard errors, 5.4 Gaussian ones, off)."""
    rng = np.random.default_rng(5)
    x, d = np.array([0.9, 0.0, -0.4, 0.2]), np.array([0.5, -1.0, 0.3])
    dev, up, sto = _ideal_spec().device, UpdateParams(pulses=100), InSituSettings(bit_length=6)
    n, BL, scale = 4000, 6, 2e-6
    a = np.array([batched_pulses(x[None], d[None], scale, up.step(dev), sto, rng) for _ in range(n)], dtype=float)
    peak = np.sqrt(scale * 0.9 * 1.0 / (up.step(dev) * BL))
    p, q = np.abs(x) / 0.9 * peak, np.abs(d) / 1.0 * peak
    pq = np.outer(p, q)
    mean, var = np.sign(np.outer(x, d)) * BL * pq, BL * pq * (1 - pq)
    cov01 = np.sign(d[0] * d[1]) * BL * p[0] * (1 - p[0]) * q[0] * q[1]  # cells (0, 0) and (0, 1)
    assert np.all(np.abs(a.mean(0) - mean) <= 5 * np.sqrt(var / n))
    mu4 = var * (1 + 3 * (BL - 2) * pq * (1 - pq))
    assert np.all(np.abs(a.var(0) - var) <= 5 * np.sqrt((mu4 - var**2) / n) + 1e-12)
    got = np.mean((a[:, 0, 0] - a[:, 0, 0].mean()) * (a[:, 0, 1] - a[:, 0, 1].mean()))
    assert abs(got - cov01) <= 5 * np.sqrt(var[0, 0] * var[0, 1] / n), (got, cov01)


def test_unchecked_apply_is_apply_pulses():
    dev = _ideal_spec().device
    up = UpdateParams(nu_set=0.3, nu_reset=0.1, gamma=1.0, pulses=50)
    G = np.random.default_rng(0).uniform(dev.g_min, dev.g_max, (2, 3, 4))
    n = np.random.default_rng(1).integers(-20, 20, G.shape)
    np.testing.assert_array_equal(apply_pulses_unchecked(G, n, dev, up, np.random.default_rng(2)),
                                  apply_pulses(G, n, dev, up, np.random.default_rng(2)))


def test_the_first_layer_builds_no_backward_read():
    from dnn_eval.models import MLP

    torch.manual_seed(0)
    s = TxSimSettings(lr=0.1)
    rng = np.random.default_rng(0)
    model, layers = to_txsim(MLP(in_shape=(1, 4, 4), hidden=8), _spintronic(8), FCMOptions(), s, rng)
    train_step(model, layers, None, torch.rand(5, 1, 4, 4), torch.arange(5), s, rng)
    for layer in layers:
        layer.state.estimate()
        layer.state.rebuild()
    assert layers[0].state._bwd is None and layers[1].state._bwd is not None


def test_cells_are_the_weights_and_the_ideal_update_is_sgd():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((11, 6))
    s = TxSimSettings(style="ideal", lr=0.01)
    st = CrossbarState(W, _ideal_spec(), FCMOptions(), s, rng)
    np.testing.assert_allclose(st.weights(), W, rtol=0, atol=1e-12 * np.abs(W).max())
    X, D = rng.standard_normal((4, 11)), rng.standard_normal((4, 6))
    st.apply_update(X, D, s, rng)
    np.testing.assert_allclose(st.weights(), W - 0.01 * X.T @ D, rtol=0, atol=1e-12 * np.abs(W).max())


def test_verify_and_insitu_updates_move_the_weights_downhill():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((9, 5))
    X, D = rng.standard_normal((16, 9)), rng.standard_normal((16, 5))
    step = -X.T @ D
    for style in ("verify", "insitu"):
        s = TxSimSettings(style=style, lr=0.02, update=UpdateParams(pulses=1000, nu_set=0.1, nu_reset=0.1, gamma=1.0))
        st = CrossbarState(W, _ideal_spec(), FCMOptions(), s, np.random.default_rng(3))
        st.apply_update(X, D, s, np.random.default_rng(4))
        dW = st.weights() - W
        cos = float((dW * step).sum() / np.linalg.norm(dW) / np.linalg.norm(step))
        assert cos > 0.8, (style, cos)


def test_forward_and_backward_reads_on_ideal_crossbars_are_the_float_layer():
    torch.manual_seed(0)
    lin = nn.Linear(12, 7)
    ref = nn.Linear(12, 7)
    ref.load_state_dict(lin.state_dict())
    s = TxSimSettings(w_max_scale=1.0)
    layer = TxLayer(lin, CrossbarState(weight_matrix(lin), _ideal_spec(5, 3), FCMOptions(), s,
                                       np.random.default_rng(0)))
    x = torch.rand(4, 12, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    y, y2 = layer(x), ref(x2)
    assert float((y - y2).detach().abs().max()) < 1e-4 * float(y2.detach().abs().max())
    g = torch.randn(4, 7)
    y.backward(g)
    y2.backward(g)
    assert float((x.grad - x2.grad).abs().max()) < 1e-4 * float(x2.grad.abs().max())
    X, D = layer.records[0]
    np.testing.assert_allclose(X.T @ D, ref.weight.grad.double().numpy().T, rtol=1e-5, atol=1e-6)


def test_conv_layer_backward_read_matches_float_conv():
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    ref = nn.Conv2d(2, 3, 3, padding=1)
    ref.load_state_dict(conv.state_dict())
    layer = TxLayer(conv, CrossbarState(weight_matrix(conv), _ideal_spec(8, 4), FCMOptions(), TxSimSettings(),
                                        np.random.default_rng(0)))
    x = torch.rand(2, 2, 5, 5, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    y, y2 = layer(x), ref(x2)
    assert y.shape == y2.shape and float((y - y2).detach().abs().max()) < 1e-4 * float(y2.detach().abs().max())
    g = torch.randn_like(y)
    y.backward(g)
    y2.backward(g)
    assert float((x.grad - x2.grad).abs().max()) < 1e-4 * float(x2.grad.abs().max())


def test_backward_bits_are_the_backward_reads():
    st = CrossbarState(np.ones((4, 4)), _spintronic(8), FCMOptions(), TxSimSettings(backward_adc_bits=9,
                                                                                    backward_dac_bits=4), np.random.default_rng(0))
    assert (st.bwd.spec.adc.bits, st.bwd.spec.dac.bits, st.fwd.spec.adc.bits) == (9, 4, 6)


def test_backward_read_carries_the_backward_parasitics():
    """On the spintronic preset the error read is the backward FCM's, not W^T's: it differs from the ideal."""
    torch.manual_seed(2)
    lin = nn.Linear(8, 8, bias=False)
    st = CrossbarState(weight_matrix(lin), _spintronic(8), FCMOptions(), TxSimSettings(), np.random.default_rng(0))
    d = torch.randn(3, 8, dtype=torch.float64)
    got = st.bwd.matmul(d.numpy())
    np.testing.assert_allclose(got, st.bwd.matmul(d).numpy(), rtol=1e-12, atol=1e-15)
    ideal = d.numpy() @ st.weights().T
    assert 1e-3 < np.abs(got - ideal).max() / np.abs(ideal).max() < 0.3


def test_settings_are_checked():
    with pytest.raises(ValueError, match="style"):
        TxSimSettings(style="sgd")
    with pytest.raises(ValueError, match="lr"):
        TxSimSettings(lr=0)
    with pytest.raises(ValueError, match="backward_adc_bits"):
        TxSimSettings(backward_adc_bits=0)
    with pytest.raises(ValueError, match="in_situ"):
        TxSimSettings(in_situ=10)
    with pytest.raises(ValueError, match="differential"):
        CrossbarState(np.ones((2, 2)), _ideal_spec(), FCMOptions(mapping="offset"), TxSimSettings(), None)


def test_a_short_run_learns_and_is_seeded():
    from dnn_eval.data import load_digits_split
    from dnn_eval.models import MLP

    train, test = load_digits_split()
    s = TxSimSettings(steps=8, lr=0.5, eval_every=8, rebuild_every=4, seed=3)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        _, hist, timing = train_on_crossbar(MLP(hidden=16), _spintronic(32), train, test, s)
        runs.append([(h["step"], h["accuracy"], h["loss"]) for h in hist[1:]] + [hist[0]["accuracy"]])
    assert runs[0] == runs[1]
    assert runs[0][0][1] > runs[0][-1]  # accuracy after 8 steps above the initial one
    assert timing["rebuilds"] == 2 and timing["steps"] == 8
