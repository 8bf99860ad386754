"""Crossbar mapping of Linear/Conv2d through the FCM: exactness when ideal, trends when not."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from dnn_eval.convert import crossbar_layers, set_straight_through, to_crossbar  # noqa: E402
from dnn_eval.data import load_digits_split  # noqa: E402
from dnn_eval.evaluate import evaluate, ideal_spec, make_spec, predict  # noqa: E402
from dnn_eval.layers import CrossbarLinear  # noqa: E402
from dnn_eval.loading import WEIGHTS_DIR, load_model  # noqa: E402
from xbarlab.fcm import FCMOptions  # noqa: E402
from xbarlab.fcm.mapping import Mapping  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def test_split():
    return load_digits_split()[1]


@pytest.mark.parametrize("model", ["mlp", "lenet", "convnet", str(WEIGHTS_DIR / "convnet.pt2")])
def test_ideal_crossbar_predictions_equal_fp32(model, test_split):
    lm = load_model(model)
    r = evaluate(lm, test_split, ideal_spec(64))
    assert r["n_samples"] == 360
    assert r["agreement"] == 1.0
    assert r["accuracy_crossbar"] == r["accuracy_fp32"]


def test_accuracy_loss_grows_with_crossbar_size_convnet(test_split):
    lm = load_model("convnet")
    loss = {n: evaluate(lm, test_split, make_spec("spintronic", n), seed=0) for n in (16, 32, 64)}
    drop = [loss[n]["accuracy_fp32"] - loss[n]["accuracy_crossbar"] for n in (16, 32, 64)]
    assert drop[0] < drop[1] < drop[2], drop
    assert drop[2] > 0.02


def test_pt2_and_state_dict_give_the_same_crossbar_outputs(test_split):
    spec = make_spec("spintronic", 32, variation=0.1)
    a = to_crossbar(load_model("convnet").module, spec, np.random.default_rng(3))
    b = to_crossbar(load_model(str(WEIGHTS_DIR / "convnet.pt2")).module, spec, np.random.default_rng(3))
    assert len(crossbar_layers(b)) == 5
    x = torch.as_tensor(test_split.x[:50])
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw", [
    dict(stride=2, padding=1), dict(stride=(1, 2), padding=(2, 0), dilation=2), dict(groups=2, padding=1),
    dict(groups=4, padding="same"), dict(padding=1, padding_mode="reflect"), dict(kernel_size=1, stride=2),
    dict(padding="same", padding_mode="replicate", dilation=2),
])
def test_conv_variants_match_conv2d_on_ideal_crossbar(kw):
    torch.manual_seed(0)
    kw = {"kernel_size": 3, **kw}
    conv = nn.Conv2d(4, 8, bias=True, **kw)
    x = torch.rand(3, 4, 9, 7)
    xm = to_crossbar(nn.Sequential(conv), ideal_spec(16), None)
    with torch.no_grad():
        ref, got = conv(x), xm(x)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=0, atol=2e-3 * ref.abs().max().item())


def test_signed_inputs_use_two_phases():
    torch.manual_seed(0)
    lin = nn.Linear(70, 5)
    x = torch.randn(16, 70)  # signed: the first-layer case of mean-subtracted data
    xm = to_crossbar(nn.Sequential(lin), ideal_spec(32), None)
    with torch.no_grad():
        torch.testing.assert_close(xm(x), lin(x), rtol=0, atol=1e-3)


def test_non_ideal_crossbar_changes_outputs_but_not_shapes(test_split):
    lm = load_model("lenet")
    xm = to_crossbar(lm.module, make_spec("spintronic", 64, variation=0.1), np.random.default_rng(0))
    x = torch.as_tensor(test_split.x[:8])
    with torch.no_grad():
        y0, y1 = lm.module(x), xm(x)
    assert y1.shape == y0.shape and not torch.allclose(y0, y1)


def test_same_seed_same_hardware_instance(test_split):
    spec = make_spec("spintronic", 16, variation=0.1)
    lm = load_model("mlp")
    p = [predict(to_crossbar(lm.module, spec, np.random.default_rng(s)), test_split.x) for s in (1, 1, 2)]
    assert (p[0] == p[1]).all()
    assert not np.array_equal(to_crossbar(lm.module, spec, np.random.default_rng(1))(torch.as_tensor(test_split.x[:20])).detach(),
                              to_crossbar(lm.module, spec, np.random.default_rng(2))(torch.as_tensor(test_split.x[:20])).detach())


def test_straight_through_gradient_is_the_float_gradient():
    torch.manual_seed(0)
    lin = nn.Linear(20, 3)
    x = torch.rand(4, 20)
    xm = to_crossbar(nn.Sequential(lin), make_spec("spintronic", 16), None)
    set_straight_through(xm, True)
    op = crossbar_layers(xm)[0]
    y = xm(x)
    with torch.no_grad():
        assert torch.allclose(y, op.forward_crossbar(x) + op.bias)
    y.sum().backward()
    lin(x).sum().backward()
    torch.testing.assert_close(op.weight.grad, lin.weight.grad)


def test_model_without_weighted_layers_is_refused():
    with pytest.raises(ValueError, match="no Linear or Conv2d"):
        to_crossbar(nn.Sequential(nn.ReLU()), ideal_spec(16), None)


def test_crossbar_layer_requires_programming():
    op = CrossbarLinear(torch.ones(2, 3), None, ideal_spec(16))
    with pytest.raises(RuntimeError, match="not programmed"):
        op(torch.ones(1, 3))


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.b = nn.Conv2d(4, 4, 3, padding=1, groups=2)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        h = torch.relu(self.bn(self.a(x)))
        h = torch.relu(h + self.b(h))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1))


def test_exported_graph_with_bn_groups_residual_matches_on_ideal_crossbar(tmp_path):
    from dnn_eval.train import export_program

    torch.manual_seed(0)
    net = _Block().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.1, 0.1)
        net.bn.running_var.uniform_(0.5, 1.5)
    export_program(net, (1, 8, 8), tmp_path / "block.pt2")
    lm = load_model(str(tmp_path / "block.pt2"))
    xm = to_crossbar(lm.module, ideal_spec(16), None)
    assert len(crossbar_layers(xm)) == 3
    assert {tuple(op.weight.shape) for op in crossbar_layers(xm)} == {(4, 1, 3, 3), (4, 2, 3, 3), (10, 4)}
    x = torch.rand(6, 1, 8, 8)
    with torch.no_grad():
        ref, got = net(x), xm(x)
    torch.testing.assert_close(got, ref, rtol=0, atol=2e-3 * ref.abs().max().item())


@pytest.mark.parametrize("conv", [dict(stride=1, padding=1), dict(stride=2, padding=0, groups=2),
                                  dict(stride=1, padding="same", padding_mode="reflect", dilation=2)])
def test_straight_through_conv_gradients_are_the_float_gradients(conv):
    """The straight-through step skips the float forward; its gradients (input, weight, bias) must
    still be exactly those of the float layer, for every kind of padding and groups."""
    torch.manual_seed(1)
    layer = nn.Conv2d(4, 6, 3, **conv)
    x = torch.randn(3, 4, 9, 9)
    xm = to_crossbar(nn.Sequential(layer), make_spec("spintronic", 16), None)
    set_straight_through(xm, True)
    op = crossbar_layers(xm)[0]
    xa = x.clone().requires_grad_(True)
    y = xm(xa)
    with torch.no_grad():
        torch.testing.assert_close(y, op.forward_crossbar(x) + op.bias.view(1, -1, 1, 1))
    g = torch.randn_like(y)
    (y * g).sum().backward()
    xb = x.clone().requires_grad_(True)
    (layer(xb) * g).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)
    torch.testing.assert_close(op.weight.grad, layer.weight.grad)
    torch.testing.assert_close(op.bias.grad, layer.bias.grad)


@pytest.mark.parametrize("kw", [
    dict(stride=2, padding=1), dict(stride=(1, 2), padding=(2, 0), dilation=2), dict(groups=2, padding=1),
    dict(padding="same", padding_mode="reflect"), dict(kernel_size=1, stride=2), dict(padding=3),
])
@pytest.mark.parametrize("signed", [False, True])
def test_fused_conv_codes_match_the_im2col_path(monkeypatch, kw, signed):
    """On CPU the DAC codes of a convolution come straight from the image (dnn_eval.conv_codes.dac_codes_conv);
    the outputs must be those of the im2col matrix path, non-ideal crossbar, float64 and float32 (the offset
    mapping: its column sums of the codes made with them, against the array path's own sum)."""
    torch.manual_seed(0)
    kw = {"kernel_size": 3, **kw}
    conv = nn.Conv2d(4, 6, bias=False, **kw)
    x = torch.randn(5, 4, 9, 7) if signed else torch.rand(5, 4, 9, 7)
    for opts in (None, FCMOptions(x_max=2.0), FCMOptions(mapping=Mapping.OFFSET)):
        xm = to_crossbar(nn.Sequential(conv), make_spec("spintronic", 16), None, opts)
        for dtype in (torch.float64, torch.float32):
            xd = x.to(dtype)
            with torch.no_grad():
                monkeypatch.setenv("XBARLAB_KERNELS", "array")
                ref = xm.to(dtype)(xd)
                monkeypatch.setenv("XBARLAB_KERNELS", "auto")
                got = xm(xd)
            tol = (1e-12 if dtype == torch.float64 else 1e-5) * ref.abs().max().item()
            torch.testing.assert_close(got, ref, rtol=0, atol=tol)


@pytest.mark.parametrize("path", ["auto", "array"])
@pytest.mark.parametrize("dac_bits, adc_bits", [(26, 6), (6, 26), (24, 24)])
def test_float32_layers_refuse_converters_whose_codes_it_does_not_hold(monkeypatch, path, dac_bits, adc_bits):
    """A network of float32 with a DAC or ADC of more than 24 bits (whose codes float32 rounded): ValueError
    naming the converter, its bits and float32, from the Linear and the Conv2d (the fused image codes too);
    the same network in float64 runs, and 24 bits still run in float32 (within 1e-4 of max |y| of float64)."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(2, 3, kernel_size=3, padding=1, bias=False), nn.Flatten(),
                        nn.Linear(3 * 5 * 4, 4, bias=False))
    xm = to_crossbar(net, make_spec("spintronic", 16, dac_bits=dac_bits, adc_bits=adc_bits), None)
    x = torch.randn(2, 2, 5, 4)
    monkeypatch.setenv("XBARLAB_KERNELS", path)
    with torch.no_grad():
        y64 = xm.to(torch.float64)(x.double())
        xm.to(torch.float32)
        if max(dac_bits, adc_bits) <= 24:
            assert float((xm(x).double() - y64).abs().max()) <= 1e-4 * float(y64.abs().max())
            return
        name = "DAC" if dac_bits > 24 else "ADC"
        for layer, xin in ((xm, x), (xm[2], torch.randn(3, 3 * 5 * 4))):  # the Conv2d first, the Linear alone
            with pytest.raises(ValueError, match=rf"the 26-bit {name}'s codes .* not exact integers in float32"):
                layer(xin)


@pytest.mark.parametrize("path", ["auto", "array"])
def test_nan_in_one_image_leaves_the_others_alone(monkeypatch, path):
    """The layers skip the finiteness check: a NaN in one image gives NaN outputs for that image, and the
    other images' outputs are those without it (their signed inputs still run in two phases; a NaN made
    the signedness test's minimum NaN, and every negative entry of the batch then read as 0)."""
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(3, 4, kernel_size=3, padding=1, bias=False), nn.Flatten(),
                        nn.Linear(4 * 6 * 5, 3, bias=False))
    xm = to_crossbar(net, make_spec("spintronic", 16), None).to(torch.float64)
    x = torch.randn(3, 3, 6, 5, dtype=torch.float64)
    bad = x.clone()
    bad[1, 0, 2, 2] = float("nan")
    monkeypatch.setenv("XBARLAB_KERNELS", path)
    with torch.no_grad():
        for layer in (xm, xm[0]):  # the network (Conv2d, then Linear on its NaN-free images), the Conv2d alone
            want, got = layer(x), layer(bad)
            assert torch.isnan(got[1]).any()
            torch.testing.assert_close(got[[0, 2]], want[[0, 2]], rtol=0, atol=1e-12 * want.abs().max().item())


@pytest.mark.parametrize("signed", [False, True])
def test_conv_chunk_boundaries(monkeypatch, signed):
    """Chunks of 15 vectors: the fused path takes 3 output positions of the 5 images at a time (20 positions,
    not a multiple of 3), the im2col path one image at a time. Both equal the unchunked fused output."""
    import dnn_eval.layers as layers

    torch.manual_seed(1)
    conv = nn.Conv2d(4, 6, kernel_size=3, stride=(2, 1), padding=1, bias=False)
    x = torch.randn(5, 4, 8, 5, dtype=torch.float64) if signed else torch.rand(5, 4, 8, 5, dtype=torch.float64)
    xm = to_crossbar(nn.Sequential(conv), make_spec("spintronic", 16), None).to(torch.float64)
    with torch.no_grad():
        whole = xm(x)
        monkeypatch.setattr(layers, "MIN_CHUNK_ROWS", 15)
        monkeypatch.setattr(layers, "CHUNK_BYTES", 1)
        assert crossbar_layers(xm)[0].chunk_rows(8) == 15
        fused = xm(x)
        monkeypatch.setenv("XBARLAB_KERNELS", "array")
        im2col = xm(x)
    tol = 1e-12 * whole.abs().max().item()
    torch.testing.assert_close(fused, whole, rtol=0, atol=tol)
    torch.testing.assert_close(im2col, whole, rtol=0, atol=tol)


def test_array_path_and_fused_kernels_agree_on_a_network(monkeypatch, test_split):
    """The array path (what CUDA runs; XBARLAB_KERNELS=array) and the CPU kernels give the same
    network outputs under the default non-idealities, up to float32 rounding carried through the
    layers: the two sum a layer's tiles in different orders, so a value within rounding of a DAC
    or ADC code boundary can land on either side, and one flipped code moves an output by an LSB
    (measured: 2 of 737,280 second-layer outputs, 0.5 % of the logits by the last layer)."""
    lm = load_model("convnet")
    xm = to_crossbar(lm.module, make_spec("spintronic", 32), np.random.default_rng(0))
    x = torch.as_tensor(test_split.x)
    with torch.no_grad():
        monkeypatch.setenv("XBARLAB_KERNELS", "array")
        ref = xm(x)
        monkeypatch.setenv("XBARLAB_KERNELS", "auto")
        got = xm(x)
    assert (ref.argmax(1) == got.argmax(1)).float().mean().item() >= 0.99
    differ = ((got - ref).abs() > 1e-3 * ref.abs().max()).float().mean().item()
    assert differ <= 0.02, differ
