"""Bit-slicing through dnn_eval: the CLI flags, the JSON config, the default unchanged, the energy model."""

from __future__ import annotations

import json
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dnn_eval.convert import count_tiles, to_crossbar  # noqa: E402
from dnn_eval.energy import EnergyParams, energy_table  # noqa: E402
from dnn_eval.evaluate import make_spec  # noqa: E402
from dnn_eval.loading import load_model  # noqa: E402
from xbarlab.cli import main  # noqa: E402
from xbarlab.fcm.slicing import Slicing  # noqa: E402


def test_dnn_eval_slicing_flags_in_the_json_config(capsys):
    assert main(["dnn-eval", "mlp", "--xbar", "32", "--limit", "30", "--device-bits", "2", "--weight-slices", "3",
                 "--input-bits-per-cycle", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    c = out["config"]
    assert (c["weight_slices"], c["input_bits_per_cycle"], c["input_cycles"], c["weight_bits"]) == (3, 1, 6, 6.0)
    assert 0 <= out["accuracy_crossbar"] <= 1
    assert main(["dnn-eval", "mlp", "--xbar", "32", "--limit", "30", "--device-bits", "2", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert out["n_tiles"] == 3 * plain["n_tiles"]  # one crossbar per weight slice
    assert (plain["config"]["weight_slices"], plain["config"]["input_cycles"]) == (1, 1)


def test_default_slicing_is_bitwise_the_unsliced_network():
    m = load_model("convnet").module
    spec = make_spec("spintronic", 16)
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    a = to_crossbar(m, spec, np.random.default_rng(0))
    b = to_crossbar(m, spec, np.random.default_rng(0), slicing=Slicing(1, spec.dac.bits))
    with torch.no_grad():
        assert torch.equal(a(x), b(x))
    s = to_crossbar(m, spec.replace(device=spec.device.__class__(**{**spec.device.to_dict(), "bits": 2, "levels": None})),
                    np.random.default_rng(0), slicing=Slicing(3, 2))
    with torch.no_grad():
        ys = s(x)
    assert ys.shape == a(x).shape and torch.isfinite(ys).all()
    assert count_tiles(s) == 3 * count_tiles(a)


@pytest.mark.parametrize("argv, msg", [
    (["--weight-slices", "0"], "--weight-slices: expected a number of weight slices in 1..16, got 0"),
    (["--weight-slices", "17"], "got 17"),
    (["--weight-slices", "two"], "got 'two'"),
    (["--input-bits-per-cycle", "0"], "--input-bits-per-cycle: bits must be in 1..32, got 0"),
    (["--input-bits-per-cycle", "7"], "--input-bits-per-cycle 7 exceeds the DAC's 6 bits"),
    (["--ideal", "--weight-slices", "2"], "--weight-slices 2 needs devices with a number of bits"),
    (["--mapping", "offset", "--weight-slices", "2"], "--weight-slices 2 needs --mapping differential"),
    (["--instances", "2", "--weight-slices", "2"], "not yet available with --instances"),
])
def test_bad_slicing_flags_one_line(capsys, argv, msg):
    assert main(["dnn-eval", "mlp", *argv]) != 0  # in process (the subprocess form is tests/dnn/test_dnn_cli.py's)
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err
    assert len([ln for ln in err.strip().splitlines() if "error" in ln]) == 1


def test_energy_counts_slices_and_input_cycles():
    m = load_model("convnet").module
    spec = make_spec("spintronic", 64)  # 6-bit DAC
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    p = EnergyParams()
    plain = energy_table(m, spec, x)
    assert energy_table(m, spec, x, slicing=Slicing()) == plain
    sl = energy_table(m, spec, x, slicing=Slicing(3, 1))  # 3 slices, 6 cycles of a 1-bit DAC
    for a, b in zip(plain, sl):
        assert b["tiles"] == 3 * a["tiles"]
        assert b["adc"] == pytest.approx(3 * 6 * a["adc"])  # every cycle converts every column of every slice
        assert b["crossbar"] == pytest.approx(3 * 6 * a["crossbar"])
        assert b["dac"] == pytest.approx(3 * a["dac"])  # 6 one-bit conversions in place of one 6-bit one
        assert b["buffer_read"] == a["buffer_read"] and b["buffer_write"] == a["buffer_write"]
        assert b["digital_add"] > a["digital_add"]
    # first conv: 64 output pixels, 1 x 1 tile position, 2 x 3 arrays, 64 rows, 6 cycles of 1 bit
    assert sl[0]["dac"] == pytest.approx(64 * 6 * 64 * 6 * 1 * p.dac_j_per_bit)
    with pytest.raises(ValueError, match="input_bits_per_cycle"):
        energy_table(m, spec, x, slicing=Slicing(1, 7))
