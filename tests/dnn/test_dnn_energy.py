import pytest

torch = pytest.importorskip("torch")

from dnn_eval.energy import CATEGORIES, EnergyParams, energy_per_inference, energy_table  # noqa: E402
from dnn_eval.evaluate import make_spec  # noqa: E402
from dnn_eval.loading import load_model  # noqa: E402


def test_energy_counts_and_breakdown():
    m = load_model("convnet").module
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
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
    pos = energy_table(m, spec, torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(2)))[0]
    neg = energy_table(m, spec, torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(3)) - 0.5)[0]
    assert neg["adc"] == pytest.approx(2 * pos["adc"])
    # the buffers are read and written once per input vector: one word feeds both phases (module docstring)
    assert neg["buffer_read"] == pytest.approx(pos["buffer_read"])
    assert neg["buffer_write"] == pytest.approx(pos["buffer_write"])


def test_energy_params_validated_and_sourced():
    with pytest.raises(ValueError, match="activity"):
        EnergyParams(activity=2.0)
    with pytest.raises(ValueError, match="adc_j_8bit"):
        EnergyParams(adc_j_8bit=-1.0)
    src = EnergyParams.sources()
    assert all(k in src for k in ("adc_j_8bit", "dac_j_per_bit", "sram_read_j_per_bit", "crossbar"))


def test_sensing_schemes_count_their_arrays_adcs_and_adds():
    """Linear(256, 64) of the ConvNet's classifier on 64x64 tiles: Tk = 4 row tiles, Tn = 1, K = 256, N = 64,
    one vector, unsigned inputs (P = 1), one cycle; per scheme the counts of the module docstring's table."""
    from xbarlab.fcm import FCMOptions

    m = load_model("convnet").module
    spec = make_spec("spintronic", 64)
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    p = EnergyParams()
    g_mean = 0.5 * (spec.device.g_min + spec.device.g_max)
    cell = spec.dac.v_read ** 2 * g_mean * p.t_read_s * p.activity
    want = {  # (mapping, sensing): (arrays per tile position, columns read per array, ADCs per tile, adds)
        ("differential", "separate"): (2, 64, 128, 64 * (2 * 4 - 1)),
        ("differential", "differential"): (2, 64, 64, 64 * (4 - 1)),
        ("offset", "separate"): (1, 64, 64, 64 * (4 - 1) + 64 + 255),
        ("offset", "reference"): (1, 65, 64, 64 * (4 - 1)),
    }
    for (mapping, sensing), (a, cols, adcs, adds) in want.items():
        opts = FCMOptions(mapping=mapping, sensing=sensing)
        row = energy_table(m, spec, x, options=opts)[3]
        assert row["layer"] == "classifier.1"
        assert row["tiles"] == a * 4
        assert row["dac"] == pytest.approx(a * 4 * 64 * spec.dac.bits * p.dac_j_per_bit)
        assert row["adc"] == pytest.approx(4 * adcs * p.adc_j(spec.adc.bits)), (mapping, sensing)
        assert row["crossbar"] == pytest.approx(a * 4 * 64 * cols * cell), (mapping, sensing)
        assert row["digital_add"] == pytest.approx(adds * p.add_j), (mapping, sensing)
    default = energy_per_inference(m, spec, x)
    assert default == energy_per_inference(m, spec, x, options=FCMOptions())
    with pytest.raises(ValueError, match="options must be an FCMOptions"):
        energy_table(m, spec, x, options="differential")


def test_differential_sensing_halves_the_adc_energy_of_a_sliced_network():
    from xbarlab.fcm import FCMOptions
    from xbarlab.fcm.slicing import Slicing

    m = load_model("lenet").module
    spec = make_spec("spintronic", 64)
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    sl = Slicing(weight_slices=2)
    sep = energy_per_inference(m, spec, x, slicing=sl)
    dif = energy_per_inference(m, spec, x, slicing=sl, options=FCMOptions(sensing="differential"))
    assert dif["adc"] == pytest.approx(sep["adc"] / 2)
    assert dif["dac"] == pytest.approx(sep["dac"]) and dif["crossbar"] == pytest.approx(sep["crossbar"])
    assert dif["digital_add"] < sep["digital_add"]
    with pytest.raises(ValueError, match="weight_slices"):
        energy_per_inference(m, spec, x, slicing=sl, options=FCMOptions(mapping="offset"))


def test_phases_follow_the_whole_batch_not_its_first_image():
    # the layers were recorded on x[:1] only: a batch [unsigned, signed] cost one phase, [signed, unsigned] two
    m = load_model("mlp").module
    spec = make_spec("spintronic", 64)
    g = torch.Generator().manual_seed(2)
    pos, neg = torch.rand(1, 1, 8, 8, generator=g), torch.rand(1, 1, 8, 8, generator=g) - 0.5
    a, b = (energy_per_inference(m, spec, torch.cat(o)) for o in ((pos, neg), (neg, pos)))
    assert a == b == energy_per_inference(m, spec, neg)
    assert energy_per_inference(m, spec, torch.cat([pos, pos])) == energy_per_inference(m, spec, pos)
