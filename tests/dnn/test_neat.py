"""dnn_eval.neat: the cut-off from the transistor table, the NEAT layer hardware, weight clipping, V_G per layer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dnn_eval import neat  # noqa: E402
from dnn_eval.convert import crossbar_layers, to_crossbar  # noqa: E402
from dnn_eval.evaluate import make_spec  # noqa: E402
from dnn_eval.models import build_model  # noqa: E402


def base_spec():
    s = make_spec("rxnn-spintronic", 16, variation=0.0)
    return s.replace(device=dataclasses.replace(s.device, g_min=1 / 300e3, g_max=1 / 30e3))


def test_neat_layer_spec_programs_up_to_the_cutoff():
    base = base_spec()
    cut = neat.Cutoff(0.9, 1 / 100e3, (1 / 100e3 - 1 / 300e3) / (1 / 30e3 - 1 / 300e3))
    s = neat.neat_layer_spec(base, cut)
    assert s.device.g_max == cut.g_cut and s.device.g_min == base.device.g_min
    assert s.device.access.v_gate_v == 0.9
    # the weight-to-conductance scale is unchanged: W_cut = fraction * w_max maps to G_cut
    assert np.isclose((s.device.g_max - s.device.g_min) / cut.fraction, base.device.g_max - base.device.g_min)
    assert neat.neat_layer_spec(base, neat.Cutoff(1.3, 1.0, 1.0)).device.g_max == base.device.g_max
    with pytest.raises(ValueError, match="G_cut"):
        neat.neat_layer_spec(base, neat.Cutoff(0.5, 1e-7, 0.0))


def test_clip_weights_to_the_fraction_of_each_layer_max():
    torch.manual_seed(0)
    xm = to_crossbar(build_model("mlp", (1, 8, 8)), base_spec(), None)
    before = {l.name: float(l.weight.detach().abs().max()) for l in crossbar_layers(xm)}
    wcut = neat.clip_weights(xm, {name: 0.3 for name in before})
    for l in crossbar_layers(xm):
        assert np.isclose(wcut[l.name], 0.3 * before[l.name])
        assert float(l.weight.detach().abs().max()) <= wcut[l.name] * (1 + 1e-7)


@pytest.mark.ngspice
def test_cutoff_fraction_from_the_transistor_table(ngspice):
    base = base_spec()
    c = neat.cutoff(base, 0.9)
    d = base.device
    assert d.g_min < c.g_cut < d.g_max  # the shipped NMOS at 0.9 V: G_cut ~ 1/118 kOhm
    assert np.isclose(c.fraction, (c.g_cut - d.g_min) / (d.g_max - d.g_min))


def test_verdict_reads_the_trend_from_the_table():
    import pandas as pd

    from dnn_eval.experiments.neat_accuracy import verdict

    rows = [("1r", float("nan"), 0.95, 1.0), ("1t1r", 0.75, 0.93, 1.0), ("1t1r", 1.3, 0.95, 1.0),
            ("neat-trained", 0.75, 0.945, 0.2), ("neat-trained", 1.3, 0.95, 0.3)]
    df = pd.DataFrame(rows, columns=["mode", "v_gate_v", "accuracy", "clip_fraction"])
    df["accuracy_fp32"], df["n_samples"], df["steps"] = 0.96, 360, 20
    assert "**reproduced** at V_G 0.75 V" in verdict(df)
    df.loc[3, "accuracy"] = 0.90
    assert "**NOT reproduced**" in verdict(df)


def test_per_layer_vg_is_chosen_on_training_images_not_the_test_split(monkeypatch):
    """``--per-layer`` chose V_G on the test split and reported the accuracy on that same split."""
    from dnn_eval.experiments import neat_accuracy as na

    class Chosen(Exception):
        pass
    seen = {}

    def spy(model, base, data, candidates, budget):
        seen["data"] = data
        raise Chosen
    monkeypatch.setattr(neat, "choose_vg", spy)
    monkeypatch.setattr(na, "_sweep", lambda *a, **k: [])  # (the V_G sweep itself is not under test)
    with pytest.raises(Chosen):
        na.run("rxnn-spintronic", [0.9, 1.3], 0, True, "digits")
    train, test = na._data("digits", None)
    want = neat.selection_split(train, len(test.y))
    assert len(want.y) == len(test.y) and 0 < len(test.y) < len(train.y)
    np.testing.assert_array_equal(seen["data"].x, want.x)
    np.testing.assert_array_equal(seen["data"].y, want.y)
    picked = {r.tobytes() for r in want.x}
    assert {r.tobytes() for r in train.x} >= picked


def test_apply_takes_a_numpy_gate_voltage_and_names_a_missing_layer():
    net = build_model("mlp", (1, 8, 8))
    a, _ = neat.apply(net, base_spec(), np.float32(0.9), True)  # (was a TypeError: not subscriptable)
    names = [layer.name for layer in crossbar_layers(a)]
    with pytest.raises(ValueError, match="names no gate voltage for crossbar layer"):
        neat.apply(net, base_spec(), {names[0]: 0.9}, True)
    with pytest.raises(ValueError, match="vg must be a gate voltage"):
        neat.apply(net, base_spec(), "0.9", True)
