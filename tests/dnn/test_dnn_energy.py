import pytest

torch = pytest.importorskip("torch")

from dnn_eval.energy import CATEGORIES, EnergyParams, energy_per_inference, energy_table  # noqa: E402
from dnn_eval.evaluate import make_spec  # noqa: E402
from dnn_eval.loading import load_model  # noqa: E402


def test_energy_counts_and_breakdown():
    m = load_model("convnet").module
    x = torch.rand(1, 1, 8, 8)
    e = {n: energy_per_inference(m, make_spec("spintronic", n), x) for n in (16, 64)}
    for v in e.values():
        assert v["total"] == pytest.approx(sum(v[c] for c in CATEGORIES))
        assert all(v[c] > 0 for c in CATEGORIES)
    assert e[16]["tiles"] > e[64]["tiles"]
    rows = energy_table(m, make_spec("spintronic", 64), x)
    assert [r["layer"] for r in rows] == ["features.0", "features.2", "features.5", "classifier.1", "classifier.3"]
    # first conv: 64 output pixels, K = 9 rows -> 1 x 1 tile pair, 64 DAC rows of 6 bits each
    p = EnergyParams()
    assert rows[0]["dac"] == pytest.approx(64 * 2 * 64 * 6 * p.dac_j_per_bit)
    assert rows[0]["adc"] == pytest.approx(64 * 2 * 64 * p.adc_j(6))


def test_signed_inputs_cost_two_phases():
    m = load_model("mlp").module
    spec = make_spec("spintronic", 64)
    pos = energy_table(m, spec, torch.rand(1, 1, 8, 8))[0]
    neg = energy_table(m, spec, torch.rand(1, 1, 8, 8) - 0.5)[0]
    assert neg["adc"] == pytest.approx(2 * pos["adc"])


def test_energy_params_validated_and_sourced():
    with pytest.raises(ValueError, match="activity"):
        EnergyParams(activity=2.0)
    with pytest.raises(ValueError, match="adc_j_8bit"):
        EnergyParams(adc_j_8bit=-1.0)
    src = EnergyParams.sources()
    assert all(k in src for k in ("adc_j_8bit", "dac_j_per_bit", "sram_read_j_per_bit", "crossbar"))
