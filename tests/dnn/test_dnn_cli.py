import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from xbarlab.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_dnn_eval_json(capsys):
    rc = main(["dnn-eval", "mlp", "--dataset", "digits", "--xbar", "32", "--dac-bits", "6", "--adc-bits", "8",
               "--device-bits", "4", "--variation", "0.05", "--seed", "1", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["accuracy_crossbar"] <= 1 and 0.9 <= out["accuracy_fp32"] <= 1
    assert out["n_samples"] == 360
    c = out["config"]
    assert (c["xbar"], c["dac_bits"], c["adc_bits"], c["device_bits"], c["variation"], c["seed"]) == (32, 6, 8, 4, 0.05, 1)
    assert c["spec"]["rows"] == 32 and c["preset"] == "rxnn-spintronic"  # the paper's preset, by default
    # its kappa fitted at 32x32 (a fit belongs to the circuit: the overridden bits and variation keep it)
    assert c["fcm_fit"] == "xbarlab/presets/fitted/rxnn-spintronic_32x32.json"
    fit = json.loads((ROOT / c["fcm_fit"]).read_text())["options"]["load_factor"]
    assert c["fcm_options"]["load_factor"] == fit != 1.0


def test_dnn_eval_default_preset_is_stated_and_unfitted_sizes_say_so(capsys):
    from dnn_eval import DEFAULT_PRESET
    from dnn_eval.evaluate import make_spec

    assert DEFAULT_PRESET == "rxnn-spintronic" and make_spec().name == DEFAULT_PRESET
    assert main(["dnn-eval", "--help"]) == 0
    assert "Default rxnn-spintronic" in " ".join(capsys.readouterr().out.split())
    assert main(["dnn-eval", "mlp", "--xbar", "24", "--limit", "20", "--json"]) == 0
    c = json.loads(capsys.readouterr().out)["config"]
    assert c["fcm_fit"] is None and c["fcm_options"]["load_factor"] == 1.0
    assert main(["dnn-eval", "mlp", "--limit", "20"]) == 0
    assert "0.8594 (fitted: xbarlab/presets/fitted/rxnn-spintronic_64x64.json)" in capsys.readouterr().out


def test_dnn_eval_mapping(capsys):
    outs = {}
    for mapping in ("differential", "offset"):
        assert main(["dnn-eval", "convnet", "--limit", "60", "--mapping", mapping, "--json"]) == 0
        outs[mapping] = json.loads(capsys.readouterr().out)
        assert outs[mapping]["config"]["mapping"] == mapping
        assert outs[mapping]["config"]["fcm_options"]["mapping"] == mapping.upper()
    assert outs["offset"]["n_tiles"] * 2 == outs["differential"]["n_tiles"]  # one array per weight, not two


def test_dnn_eval_table_for_pt2(capsys):
    from dnn_eval.loading import WEIGHTS_DIR

    assert main(["dnn-eval", str(WEIGHTS_DIR / "convnet.pt2"), "--preset", "reram", "--limit", "50"]) == 0
    out = capsys.readouterr().out
    assert "accuracy crossbar" in out and "(pt2)" in out and "reram 64x64" in out


@pytest.mark.parametrize("argv, msg", [
    (["no_such_model.pt2"], "no such file"),
    (["convnet", "--preset", "nope"], "preset must be one of"),
    (["convnet", "--dataset", "mnist"], "--data-dir"),
    (["convnet", "--xbar", "0"], "positive integer"),
    (["convnet", "--adc-bits", "x"], "bits"),
    (["convnet", "--mapping", "bipolar"], "--mapping"),
    # --ideal fixes the ADC, the device and its variation: a flag that sets one is refused, not ignored
    (["convnet", "--ideal", "--adc-bits", "4"], "--adc-bits 4 given with --ideal"),
    (["convnet", "--ideal", "--device-bits", "2"], "--device-bits 2 given with --ideal"),
    (["convnet", "--ideal", "--variation", "0.3", "--instances", "2"], "--variation 0.3 given with --ideal"),
])
def test_dnn_eval_bad_input_one_line(argv, msg):
    r = subprocess.run([sys.executable, "-m", "xbarlab.cli", "dnn-eval", *argv], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert msg in r.stderr and "Traceback" not in r.stderr
    assert len([ln for ln in lines if "error" in ln]) == 1


def test_cli_parser_does_not_import_torch():
    code = "import sys; from xbarlab.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("argv, msg", [
    (["--adc-bits", "6"], "--adc-bits 6 given with --ideal"),
    (["--device-bits", "4"], "--device-bits 4 given with --ideal"),
    (["--variation", "0.1"], "--variation 0.1 given with --ideal"),
    (["--adc-range", "1e-5"], "--adc-range 1e-05 given with --ideal"),
    (["--adc-range", "worst-case", "--adc-calibration", "tile"], "--adc-range worst-case, --adc-calibration tile"),
])
def test_ideal_refuses_the_flags_it_would_ignore(capsys, argv, msg):
    """--ideal builds an ideal ADC (no bits, no range) and analog devices without variation: --adc-bits,
    --device-bits, --variation and the ADC range flags were silently ignored with it (in process)."""
    assert main(["dnn-eval", "mlp", "--ideal", *argv]) != 0
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err
    assert len([ln for ln in err.strip().splitlines() if "error" in ln]) == 1


def test_ideal_takes_the_dac_bits(capsys):
    assert main(["dnn-eval", "mlp", "--ideal", "--dac-bits", "8", "--limit", "20", "--json"]) == 0
    c = json.loads(capsys.readouterr().out)["config"]
    assert (c["ideal"], c["dac_bits"], c["adc_bits"]) == (True, 8, None)


@pytest.mark.parametrize("argv, msg", [
    (["--dac-bits", "25"], "--dac-bits 25: the networks run in float32"),
    (["--adc-bits", "26"], "--adc-bits 26: the networks run in float32"),
    (["--adc-bits", "26", "--sensing", "differential"], "give at most 25 bits"),
    (["--ideal", "--dac-bits", "32"], "--dac-bits 32: the networks run in float32"),
])
def test_converter_bits_float32_does_not_hold_are_refused(capsys, argv, msg):
    """The networks run in float32, which holds the codes of at most 24 bits (a bipolar ADC 25) exactly: more
    is refused by the FCM, and named by its flag here (in process)."""
    assert main(["dnn-eval", "mlp", "--limit", "5", *argv]) != 0
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err
    assert len([ln for ln in err.strip().splitlines() if "error" in ln]) == 1
