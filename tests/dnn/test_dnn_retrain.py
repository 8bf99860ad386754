import pytest

torch = pytest.importorskip("torch")

from dnn_eval.data import load_digits_split  # noqa: E402
from dnn_eval.evaluate import make_spec  # noqa: E402
from dnn_eval.loading import load_model  # noqa: E402
from dnn_eval.retrain import RetrainSettings, retrain  # noqa: E402


def test_retraining_recovers_accuracy():
    torch.set_num_threads(1)
    train, test = load_digits_split()
    spec = make_spec("spintronic", 64, adc_bits=8, variation=0.2)
    _, hist = retrain(load_model("lenet").module, spec, train, test,
                      RetrainSettings(steps=40, lr=1e-3, regen_every=10, eval_every=20, seed=0))
    assert [h["step"] for h in hist] == [0, 20, 40]
    assert hist[-1]["accuracy_crossbar"] > hist[0]["accuracy_crossbar"] + 0.1


def test_settings_validated():
    with pytest.raises(ValueError, match="multiple of regen_every"):
        RetrainSettings(regen_every=7, eval_every=10)
    with pytest.raises(ValueError, match="steps"):
        RetrainSettings(steps=-1)
