"""Energy of 1T-1R crossbars: the gate lines (``dnn_eval.energy``), and the NEAT page per data set."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from dnn_eval.energy import CATEGORIES, GATE, EnergyParams, energy_per_inference, energy_table, gate_capacitance_f  # noqa: E402
from dnn_eval.evaluate import make_spec  # noqa: E402
from dnn_eval.loading import load_model  # noqa: E402
from xbarlab.transistor import AccessTransistor  # noqa: E402


def with_gate(spec, **acc):
    return spec.replace(device=dataclasses.replace(spec.device, access=AccessTransistor(**acc)))


def test_gate_capacitance_from_the_card():
    acc = AccessTransistor()
    p = dict(acc.model_card().params)
    cox = p["epsrox"] * 8.8541878128e-12 / p["toxe"]
    w = acc.w_m - 2 * p["wint"]  # the shipped card: no XW, DWC, DLC; DWC = WINT, DLC = LINT
    l_eff = acc.l_m + p["xl"] - 2 * p["lint"]
    assert gate_capacitance_f(acc) == pytest.approx(cox * w * l_eff + (p["cgso"] + p["cgdo"]) * w, rel=1e-12)
    assert 1e-17 < gate_capacitance_f(acc) < 1e-15  # a 45 nm device: tenths of a femtofarad
    assert gate_capacitance_f(AccessTransistor(w_m=4e-7)) > 3 * gate_capacitance_f(acc)


def test_gate_lines_cost_c_vg_squared_per_cell_and_read():
    m = load_model("mlp").module
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    spec = make_spec("spintronic", 64)
    plain = energy_table(m, spec, x)
    assert all(r[GATE] == 0.0 for r in plain)
    p = EnergyParams()
    lo, hi = (energy_table(m, with_gate(spec, v_gate_v=v), x) for v in (0.65, 1.3))
    c = gate_capacitance_f(AccessTransistor()) + p.gate_wire_c_f_per_cell
    for r0, a, b in zip(plain, lo, hi):
        assert all(a[k] == r0[k] for k in CATEGORIES)  # the other categories are unchanged
        cells = r0["crossbar"] / (spec.dac.v_read**2 * 0.5 * (spec.device.g_min + spec.device.g_max)
                                  * p.t_read_s * p.activity)  # cell reads of the layer
        assert a[GATE] == pytest.approx(cells * c * 0.65**2, rel=1e-12)
        assert b[GATE] == pytest.approx(4 * a[GATE], rel=1e-12)
    tot = energy_per_inference(m, with_gate(spec, v_gate_v=1.3), x)
    assert tot["total"] == pytest.approx(sum(tot[k] for k in CATEGORIES + (GATE,)))


def test_neat_page_has_a_trend_per_dataset_and_width():
    import pandas as pd

    from dnn_eval.experiments.neat_accuracy import verdict

    rows = []
    for ds, good in (("digits", 0.945), ("mnist5k", 0.80)):
        rows += [(ds, "1r", float("nan"), 0.95, float("nan")), (ds, "1t1r", 0.75, 0.93, 1e-7),
                 (ds, "1t1r", 1.3, 0.95, 1e-7), (ds, "neat-trained", 0.75, good, 1e-7),
                 (ds, "neat-trained", 1.3, 0.95, 1e-7)]
    rows += [("digits", "1t1r", 1.3, 0.95, 4e-7), ("digits", "neat-trained", 0.75, 0.90, 4e-7)]
    df = pd.DataFrame(rows, columns=["dataset", "mode", "v_gate_v", "accuracy", "w_m"])
    df["clip_fraction"], df["energy_j"], df["energy_gate_j"] = 0.5, 4e-8, 1e-12
    df.loc[df["mode"] == "neat-trained", "energy_j"] = 3e-8
    df["accuracy_fp32"], df["n_samples"], df["steps"] = 0.96, 360, 20
    trends = [line for line in verdict(df).splitlines() if line.startswith("Trend")]
    assert len(trends) == 3
    assert "on digits, W 100 nm" in trends[0] and "**reproduced** at V_G 0.75 V" in trends[0]
    assert "25.0 % less energy" in trends[0]
    assert "energy saving (about 20 %; criterion >= 15 %): **reproduced** (25.0 %)" in trends[0]
    assert "on digits, W 400 nm" in trends[1] and "**NOT reproduced**" in trends[1]
    assert "on mnist5k" in trends[2] and "**NOT reproduced**" in trends[2]


def test_neat_pages_again_from_the_csv(tmp_path):
    import pandas as pd

    from dnn_eval.experiments import neat_accuracy

    rows = [("digits", "1r", float("nan"), 0.95, float("nan"), 4e-8), ("digits", "1t1r", 1.3, 0.95, 1e-7, 4e-8),
            ("digits", "neat-trained", 0.75, 0.20, 1e-7, 3e-8)]
    df = pd.DataFrame(rows, columns=["dataset", "mode", "v_gate_v", "accuracy", "w_m", "energy_j"])
    df["clip_fraction"], df["energy_gate_j"], df["accuracy_fp32"], df["n_samples"], df["steps"] = 0.2, 0.0, 0.96, 360, 20
    df.to_csv(tmp_path / "neat_accuracy.csv", index=False)
    assert neat_accuracy.main(["--out", str(tmp_path), "--from-csv", "1"]) == 0
    index = (tmp_path / "index.md").read_text()
    assert "<!-- neat:begin -->" in index and "**NOT reproduced**" in index
    with pytest.raises(SystemExit, match="--datasets"):
        neat_accuracy.main(["--out", str(tmp_path), "--datasets", "cifar10"])
