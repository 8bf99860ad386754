"""ConvGeometry: frozen, validated, normalized; crossbar layers refuse what does not fit."""

import dataclasses

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from dnn_eval.convert import crossbar_layers, to_crossbar  # noqa: E402
from dnn_eval.evaluate import ideal_spec  # noqa: E402
from dnn_eval.layers import ConvGeometry, CrossbarConv2d, CrossbarLinear  # noqa: E402


def test_fields_are_normalized_to_pairs_and_frozen():
    g = ConvGeometry(3, stride=2, padding=1, dilation=[1, 2], groups=2)
    assert (g.kernel, g.stride, g.padding, g.dilation, g.groups) == ((3, 3), (2, 2), (1, 1), (1, 2), 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.stride = (1, 1)
    assert ConvGeometry(3, padding="same").padding == "same"


@pytest.mark.parametrize("kw, field", [
    (dict(kernel=0), "kernel"), (dict(kernel=(3, 3, 3)), "kernel"), (dict(kernel=3, stride=0), "stride"),
    (dict(kernel=3, stride=1.5), "stride"), (dict(kernel=3, dilation=(1, -1)), "dilation"),
    (dict(kernel=3, padding=-1), "padding"), (dict(kernel=3, padding="full"), "padding"),
    (dict(kernel=3, padding="same", stride=2), "padding"), (dict(kernel=3, groups=0), "groups"),
    (dict(kernel=3, groups=True), "groups"), (dict(kernel=3, padding_mode="mirror"), "padding_mode"),
    (dict(kernel=True), "kernel"),
])
def test_invalid_fields_raise_naming_the_field_and_value(kw, field):
    with pytest.raises(ValueError, match=rf"ConvGeometry\.{field} .*got"):
        ConvGeometry(**kw)


@pytest.mark.parametrize("conv", [nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
                                  nn.Conv2d(2, 2, (3, 1), padding="same", padding_mode="reflect", dilation=2),
                                  nn.Conv2d(1, 3, 2, padding="valid")])
def test_geometry_of_a_conv2d(conv):
    g = ConvGeometry.of(conv)
    assert g.kernel == tuple(conv.kernel_size) and g.stride == tuple(conv.stride) and g.groups == conv.groups
    assert g.padding == (conv.padding if isinstance(conv.padding, str) else tuple(conv.padding))
    assert g.padding_mode == conv.padding_mode
    layer, = crossbar_layers(to_crossbar(nn.Sequential(conv), ideal_spec(8), None, program=False))
    assert isinstance(layer, CrossbarConv2d) and layer.geometry == g


def test_layers_refuse_a_weight_that_does_not_fit():
    spec = ideal_spec(8)
    with pytest.raises(ValueError, match="does not fit"):
        CrossbarConv2d(torch.ones(6, 2, 3, 3), None, spec, ConvGeometry(2))
    with pytest.raises(ValueError, match="does not fit"):
        CrossbarConv2d(torch.ones(5, 2, 3, 3), None, spec, ConvGeometry(3, groups=2))
    with pytest.raises(ValueError, match="geometry must be a ConvGeometry"):
        CrossbarConv2d(torch.ones(6, 2, 3, 3), None, spec, {"stride": (1, 1)})
    with pytest.raises(ValueError, match="spec must be a CrossbarSpec"):
        CrossbarLinear(torch.ones(2, 3), None, "spintronic")


@pytest.mark.parametrize("path", ["auto", "array"])
@pytest.mark.parametrize("kw, size", [(dict(kernel_size=9), (9, 7)), (dict(kernel_size=(9, 1)), (5, 6)),
                                      (dict(kernel_size=8, padding=1), (5, 9)), (dict(kernel_size=3, dilation=4), (8, 8))])
def test_a_kernel_larger_than_the_padded_input_raises(monkeypatch, path, kw, size):
    """No output position (as F.conv2d refuses it): a ValueError naming the kernel and the padded input,
    on both paths (they raised RuntimeErrors about negative tensor sizes or integer overflow)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, bias=False, **kw)
    xm = to_crossbar(nn.Sequential(conv), ideal_spec(8), None)
    monkeypatch.setenv("XBARLAB_KERNELS", path)
    for B in (0, 1, 2):
        with pytest.raises(ValueError, match=r"ConvGeometry\.kernel .* more than the padded input"), torch.no_grad():
            xm(torch.rand(B, 2, *size))
