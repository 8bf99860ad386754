"""The fused conv DAC codes (dnn_eval.conv_codes) against the im2col matrix, and their kernel registration."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from dnn_eval import conv_codes  # noqa: E402
from dnn_eval.im2col import PatchIndex, gather_patches_t, output_size  # noqa: E402
from dnn_eval.layers import ConvGeometry  # noqa: E402
from xbarlab.fcm import cpu_kernels  # noqa: E402

needs_kernels = pytest.mark.skipif(not cpu_kernels.enabled(), reason="the fused CPU kernels are off")

GEOMETRIES = [
    ConvGeometry(3), ConvGeometry(3, stride=2, padding=1), ConvGeometry((3, 2), stride=(1, 2), padding=(2, 0), dilation=2),
    ConvGeometry(1, stride=2), ConvGeometry(3, padding=3), ConvGeometry((2, 3), padding=(1, 2), dilation=(2, 1)),
]


def _unfold_t(x, geo, pad):
    """x^T (K, B*L) from torch's own unfold, columns ordered (image, position)."""
    cols = F.unfold(x, geo.kernel, dilation=geo.dilation, padding=pad, stride=geo.stride)  # (B, K, L)
    return cols.permute(1, 0, 2).reshape(cols.shape[1], -1).contiguous()


@needs_kernels
@pytest.mark.parametrize("geo", GEOMETRIES, ids=str)
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("x_max", [None, 0.75])
def test_conv_codes_equal_dac_codes_of_the_im2col_matrix_bitwise(geo, signed, dtype, x_max):
    """Every code and scale that conv_codes writes from the image equals what cpu_kernels.dac_codes
    writes for F.unfold's patch matrix (columns reordered from (position, image) to (image, position))."""
    g = torch.Generator().manual_seed(7)
    x = torch.rand((5, 3, 9, 7), generator=g, dtype=dtype)
    if signed:
        x = 2 * x - 1
    x[0, :, 2:5, 1:4] = 0  # patches of zeros: scale 1
    pad = geo.padding
    B, C, H, W = x.shape
    Ho, Wo = output_size(H, W, geo, pad)
    L = Ho * Wo
    K = C * geo.kernel[0] * geo.kernel[1]
    full = 63
    xt = conv_codes.batch_last(x)
    cmax = np.empty((H, W, B), dtype=xt.dtype)
    cpu_kernels.kernels().channel_max(xt, signed, cmax)
    P = 2 if signed else 1
    p0, p1 = 1, L - 1  # a chunk of positions, not the whole image
    R = (p1 - p0) * B
    codes, scale = np.full((K, P * R), -1.0, dtype=xt.dtype), np.full(R, -1.0, dtype=xt.dtype)
    conv_codes.conv_codes(xt, cmax, geo, pad, Wo, p0, p1, full, signed, x_max, codes, scale)

    XT = _unfold_t(x, geo, pad).numpy().reshape(K, B, L)[:, :, p0:p1].transpose(0, 2, 1).reshape(K, R).copy()
    ref_codes, ref_scale = np.empty_like(codes), np.empty_like(scale)
    xm = np.asarray(0.0 if x_max is None else x_max, dtype=XT.dtype)[()]
    cpu_kernels.kernels().dac_codes(XT, np.asarray(full, dtype=XT.dtype)[()], signed, xm, ref_codes, ref_scale)
    np.testing.assert_array_equal(scale, ref_scale)
    np.testing.assert_array_equal(codes, ref_codes)
    assert codes.max() == full and codes.min() == 0
    # with the column sums of the codes (the offset mapping's): the same codes and scales, and the sums exact
    codes2, scale2, sums = np.full_like(codes, -1.0), np.full_like(scale, -1.0), np.full(P * R, -1.0, dtype=xt.dtype)
    conv_codes.conv_codes(xt, cmax, geo, pad, Wo, p0, p1, full, signed, x_max, codes2, scale2, sums)
    np.testing.assert_array_equal(codes2, codes)
    np.testing.assert_array_equal(scale2, scale)
    np.testing.assert_array_equal(sums, codes.astype(np.float64).sum(axis=0))


@pytest.mark.parametrize("geo", GEOMETRIES, ids=str)
def test_gather_patches_equals_unfold(geo):
    x = torch.rand((4, 3, 9, 7), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    pad = geo.padding
    xp = F.pad(x, [pad[1], pad[1], pad[0], pad[0]]).contiguous()
    index = PatchIndex()
    got = gather_patches_t(xp, geo, 1, 3, index)
    ref = _unfold_t(x[1:3], geo, pad)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)


def test_patch_index_is_bounded():
    index = PatchIndex()
    for b in range(1, 20):
        index.get((1, 2, 2, b, 3, 3), (25, 5, 1, 25, 5, 1), torch.device("cpu"))
    assert len(index) <= 8


def test_fused_path_follows_the_kernel_switch(monkeypatch):
    x = torch.zeros((1, 1, 3, 3))
    monkeypatch.setenv("XBARLAB_KERNELS", "array")
    assert not conv_codes.fused_applies(x)
    monkeypatch.setenv("XBARLAB_KERNELS", "auto")
    assert conv_codes.fused_applies(x) == cpu_kernels.enabled()
    assert not conv_codes.fused_applies(x.to(torch.float16))


def test_conv_kernels_join_the_fcm_kernel_namespace():
    """dnn_eval's conv kernels are compiled with cpu_kernels' own (one namespace, one switch), also when
    that namespace was built before they registered."""
    assert {"dac_codes_conv", "channel_max"} <= set(cpu_kernels._KERNELS)
    assert "dac_codes_conv" not in vars(cpu_kernels) and "channel_max" not in vars(cpu_kernels)
    if not cpu_kernels.enabled():
        return
    cpu_kernels.kernels()  # built now

    def late_kernel(a):
        return a + 1

    try:
        cpu_kernels._kernel(late_kernel)
        ns = cpu_kernels.kernels()
        assert ns.late_kernel(1) == 2 and hasattr(ns, "dac_codes_conv")
    finally:
        del cpu_kernels._KERNELS["late_kernel"]
        cpu_kernels._BUILD.clear()
