"""The loss decomposed: each setting keeps only its own preset values; the verdicts follow their criteria."""

import dataclasses
import inspect

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from dnn_eval.evaluate import ideal_spec  # noqa: E402
from dnn_eval.experiments import verdicts  # noqa: E402
from dnn_eval.experiments.settings import SETTINGS, decomposition, stderr  # noqa: E402
from xbarlab.params import CircuitParams  # noqa: E402
from xbarlab.spec import load_preset  # noqa: E402


@pytest.mark.parametrize("preset", ["rxnn-spintronic", "reram"])
@pytest.mark.parametrize("size", [16, 64])
def test_each_setting_keeps_only_its_own_non_idealities(preset, size):
    spec, ideal = load_preset(preset, size, size), ideal_spec(size, preset)
    d = decomposition(size, preset)
    assert tuple(d) == SETTINGS and d["everything"] == spec
    zero = CircuitParams.ideal()
    p = d["precision"]
    assert p.circuit == zero and p.dac == dataclasses.replace(spec.dac, r_pd=0.0) and p.adc == spec.adc
    assert (p.device.bits, p.device.levels) == (spec.device.bits, spec.device.levels)
    assert (p.device.variation, p.device.stuck_on_rate, p.device.stuck_off_rate, p.device.sinh_b) == (0, 0, 0, 0)
    q = d["parasitics"]
    assert q.circuit == spec.circuit and q.dac.r_pd == spec.dac.r_pd and q.dac.v_read == spec.dac.v_read
    assert q.device == ideal.device and q.adc == ideal.adc and q.dac.bits == ideal.dac.bits
    v = d["variation"]
    assert v.circuit == zero and v.dac == ideal.dac and v.adc == ideal.adc and v.device.bits is None
    assert (v.device.variation, v.device.variation_kind) == (spec.device.variation, spec.device.variation_kind)
    pp = d["precision+parasitics"]
    assert pp.circuit == spec.circuit and pp.dac == spec.dac and pp.adc == spec.adc and pp.device.variation == 0
    for s in d.values():  # same array, same cell conductance range: nothing of our own
        assert (s.rows, s.cols, s.device.g_min, s.device.g_max) == (size, size, spec.device.g_min, spec.device.g_max)


def test_stderr_is_binomial():
    assert stderr(0.9, 100) == pytest.approx(0.03)
    assert stderr(1.0, 360) == 0.0


def test_fig12_and_fig14_rows_on_a_small_case():
    import torch

    from dnn_eval.experiments import fig12_accuracy, fig14_sensitivity

    torch.set_num_threads(1)
    a = fig12_accuracy.run(sizes=(16,), datasets=("digits",), networks=("mlp",))
    r = a.iloc[0]
    for c in ("fp32", "ideal", "precision", "parasitics", "variation", "precision_parasitics", "nonideal"):
        assert 0 <= r[f"accuracy_{c}"] <= 1 and r[f"stderr_{c}"] == pytest.approx(stderr(r[f"accuracy_{c}"], 360))
    assert abs(r.accuracy_ideal - r.accuracy_fp32) <= 2 / 360  # the ideal crossbar is the float network up to a flip
    s = fig14_sensitivity.run(seeds=2, size=16, datasets=("digits",), networks=("mlp",))
    counts = s.groupby("implementation", sort=False)["seed"].count()
    assert list(counts.index) == ["FP32", *SETTINGS]
    assert counts["variation"] == counts["everything"] == 2 and counts["precision"] == 1
    same = s[(s.implementation == "everything") & (s.seed == 0)].accuracy.iloc[0]
    assert same == pytest.approx(r.accuracy_nonideal)  # the same setting and seed in both figures
    # the CLI's default converter ranges, calibrated on training images, named in every row
    cli = {"dac_range": "calibrated percentile 99.99", "adc_range": "calibrated per tile percentile 99.99",
           "calibration": "500 train images"}
    assert {k: r[k] for k in cli} == cli
    hw = s[s.implementation != "FP32"]
    assert (hw[list(cli)] == pd.Series(cli)).all().all() and (s[s.implementation == "FP32"].calibration == "none").all()
    line = verdicts.ranges_line(a, s)
    assert line.count("DAC calibrated percentile 99.99, ADC calibrated per tile percentile 99.99, calibrated on 500 "
                      "train images") == 2


def test_the_experiments_use_the_cli_default_ranges():
    from dnn_eval.calibration import CLI_DEFAULT
    from dnn_eval.cli import ranges_of
    from dnn_eval.experiments import decompose

    assert inspect.signature(decompose.evaluate_settings).parameters["ranges"].default is CLI_DEFAULT
    args = type("Args", (), {"dataset": "digits", "sensing": "separate", "calibration_percentile": 99.99,
                             "calibration_samples": 500})()
    assert ranges_of(args) == CLI_DEFAULT  # the command line's defaults are the experiments' ranges


def test_ranges_line_names_old_csvs():
    old = pd.DataFrame(_fig12(0.0, 0.05, 0.20))
    assert "Fig. 12(a): the FCM's defaults (per-vector DAC scaling, worst-case ADC" in verdicts.ranges_line(old)


def test_layer_error_is_zero_against_itself_and_positive_on_the_preset():
    import torch

    from dnn_eval.experiments.fig16_features import layer_errors

    torch.set_num_threads(1)
    e = layer_errors(datasets=("digits",), limit=12)
    assert set(e.network) == {"lenet", "convnet", "vgg"}
    assert (e[e.network == "vgg"].conv_index.tolist()) == [1, 2, 3, 4, 5, 6]
    assert (e.rel_l2_error > 0).all() and (e.n_samples == 12).all()
    z = layer_errors(datasets=("digits",), limit=12, nonideal=ideal_spec(64, "rxnn-spintronic"))
    np.testing.assert_array_equal(z.rel_l2_error, 0.0)


def _fig12(loss16, loss32, loss64, net="lenet", dataset="digits", n=360):
    rows = []
    for size, loss in zip((16, 32, 64), (loss16, loss32, loss64)):
        ideal, non = 0.96, 0.96 - loss
        row = {"dataset": dataset, "network": net, "xbar": size, "preset": "rxnn-spintronic", "n_samples": n}
        for c, v in (("fp32", 0.96), ("ideal", ideal), ("precision", 0.9), ("parasitics", 0.95), ("variation", 0.93),
                     ("precision_parasitics", 0.89), ("nonideal", non)):
            row[f"accuracy_{c}"], row[f"stderr_{c}"] = v, stderr(v, n)
        rows.append(row)
    return rows


def test_verdicts_follow_their_criteria(tmp_path):
    a = pd.DataFrame(_fig12(0.0, 0.05, 0.20, "lenet") + _fig12(0.0, 0.0, 0.01, "convnet")
                     + _fig12(0.01, 0.1, 0.3, "vgg"))
    small = verdicts.small_networks(a)
    assert "**NOT reproduced**" in small and "lenet (digits) loses 20.0" in small and "convnet (digits) loses 1.0" in small
    trend = verdicts.size_trend(a)  # convnet 0 -> 0 -> 1 point: within the noise of 360 images
    assert "**NOT reproduced**: holds in 2 of 3 networks" in trend and "convnet (digits) 0.0 -> 0.0 -> 1.0 (no)" in trend
    assert verdicts.deeper_networks(a).startswith("| Deeper networks") and "**reproduced**" in verdicts.deeper_networks(a)
    close = pd.DataFrame(_fig12(0.0, 0.05, 0.20, "lenet") + _fig12(0.0, 0.05, 0.21, "vgg"))  # 1 point, SE ~3.5
    assert "**NOT reproduced**" in verdicts.deeper_networks(close)
    assert "**NOT reproduced**" in verdicts.small_networks(pd.DataFrame(_fig12(0.0, 0.0, 0.05, "convnet")))  # 5 > 2.2 + 1.8
    assert "**reproduced**: convnet" in verdicts.small_networks(pd.DataFrame(_fig12(0.0, 0.0, 0.035, "convnet")))  # 3.5 <= 2.2 + 1.8
    e = pd.DataFrame({"dataset": "digits", "network": ["vgg"] * 3, "conv_index": [1, 2, 3],
                      "rel_l2_error": [0.3, 0.6, 0.5]})
    line = verdicts.deeper_layers(e)
    assert "**NOT reproduced**: holds in 0 of 1" in line and "30.0 -> 60.0 -> 50.0 (no)" in line
    r = pd.DataFrame({"network": "lenet", "xbar": 64, "adc_bits": 8, "variation": 0.2, "accuracy_fp32": 0.96,
                      "n_samples": 360, "step": [0, 150], "accuracy_crossbar": [0.40, 0.90], "loss": [np.nan, 0.1]})
    assert "**reproduced**: lenet: 0.400 -> 0.900 after 150 steps (FP32 0.960; 89 % of the loss won back)" in \
        verdicts.retraining(r)


def test_verdict_section_is_spliced_and_reports_missing_csvs(tmp_path):
    (tmp_path / "index.md").write_text("<!-- overview:begin -->\nkept\n<!-- overview:end -->\n")
    verdicts.write(tmp_path)
    pd.DataFrame(_fig12(0.0, 0.05, 0.20)).to_csv(tmp_path / "dnn_fig12a_accuracy.csv", index=False)
    page = verdicts.write(tmp_path).read_text()
    assert page.count(verdicts.BEGIN) == 1 and page.index("kept") < page.index(verdicts.BEGIN)
    assert "dnn_fig14_sensitivity.csv missing" in page and "dnn_fig16_layer_error.csv missing" in page
    assert "| digits | lenet | 64 |" in page


def test_fp32_cross6_verdict():
    def rows(net, accs):
        return [{"dataset": "digits", "network": net, "implementation": k, "seed": 0, "accuracy": v,
                 "stderr": stderr(v, 360)} for k, v in zip(("FP32", "precision", "precision+parasitics", "everything"), accs)]
    ok = verdicts.fp32_cross6(pd.DataFrame(rows("lenet", (0.96, 0.90, 0.85, 0.80))))
    assert "**reproduced**: holds in 1 of 1" in ok and "FP32 0.960, Cross6 0.900, NI-Cross6 0.850" in ok
    bad = verdicts.fp32_cross6(pd.DataFrame(rows("mlp", (0.967, 0.956, 0.967, 0.93))))
    assert "**NOT reproduced**: holds in 0 of 1" in bad and "NI-Cross6 0.967 (no)" in bad


def test_a_verdict_with_nothing_to_judge_is_not_reproduced():
    # a single size, a single conv layer, no LeNet/ConvNet or no VGG row: every one of them read "reproduced"
    one = pd.DataFrame([r for r in _fig12(0.0, 0.05, 0.20) + _fig12(0.0, 0.1, 0.3, "vgg") if r["xbar"] == 64])
    assert "**NOT reproduced**: holds in 0 of 2" in verdicts.size_trend(one)
    e = pd.DataFrame({"dataset": "digits", "network": ["lenet", "vgg"], "conv_index": [1, 1], "rel_l2_error": [0.3, 0.4]})
    assert "**NOT reproduced**: holds in 0 of 2" in verdicts.deeper_layers(e)
    vgg = pd.DataFrame(_fig12(0.0, 0.1, 0.3, "vgg"))
    assert "**NOT reproduced**" in verdicts.small_networks(vgg) and "no LeNet or ConvNet row" in verdicts.small_networks(vgg)
    assert "**NOT reproduced**" in verdicts.deeper_networks(vgg)
    assert "**NOT reproduced**" in verdicts.deeper_networks(pd.DataFrame(_fig12(0.0, 0.05, 0.20)))


def test_fp32_cross6_without_an_implementations_rows_is_not_reproduced_not_a_keyerror():
    def rows(net, impls):
        return [{"dataset": "digits", "network": net, "implementation": k, "seed": 0, "accuracy": v,
                 "stderr": stderr(v, 360)} for k, v in impls]
    s = pd.DataFrame(rows("lenet", (("FP32", 0.96), ("precision", 0.90), ("everything", 0.80)))
                     + rows("vgg", (("FP32", 0.96), ("precision", 0.90), ("precision+parasitics", 0.85))))
    line = verdicts.fp32_cross6(s)
    assert "**NOT reproduced**: holds in 1 of 2" in line and "lenet (digits) has no precision+parasitics row (no)" in line
    assert line.endswith("vgg (digits) FP32 0.960, Cross6 0.900, NI-Cross6 0.850 |")  # no 'everything' rows: no variation
