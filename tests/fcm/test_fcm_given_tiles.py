"""A model of given conductances (``FCM.from_tiles``) and a model under other settings (``FCM.with_options``)
refuse what they would read wrongly: tiles of another weight shape, the arrays of another mapping, a w_max
that is not a finite number > 0, conductances that are not finite and >= 0 S (ValueError naming the field)."""

from __future__ import annotations

import numpy as np
import pytest

import xbarlab as xb


def _model(mapping="differential", ideal=False):
    spec = xb.load_preset("spintronic", rows=4, cols=3)
    if ideal:
        spec = spec.replace(circuit=xb.CircuitParams.ideal())
    rng = np.random.default_rng(11)
    return xb.FCM.from_weights(rng.standard_normal((6, 5)), spec, None, xb.FCMOptions(mapping=mapping)), spec


@pytest.mark.parametrize("shape", [(20, 5), (3, 5), (6, 2), (6, 9), (6, 0), (6.0, 5), (True, 5), (6, 5, 1)])
def test_from_tiles_refuses_a_shape_whose_tiles_are_not_g(shape):
    f, spec = _model()
    with pytest.raises(ValueError, match=r"shape must be \(K, N\).*Tk x Tn = 2 x 2, got shape="):
        xb.FCM.from_tiles(f.G, spec, f.options, shape, f.w_max)
    assert xb.FCM.from_tiles(f.G, spec, f.options, (5, 4), f.w_max).shape == (5, 4)  # the same tile counts


@pytest.mark.parametrize("w_max", [float("nan"), float("inf"), 0.0, -1.0, True, "1"])
def test_from_tiles_refuses_a_w_max_that_is_not_finite_and_positive(w_max):
    f, spec = _model()
    with pytest.raises(ValueError, match="w_max must be a finite number > 0, got"):
        xb.FCM.from_tiles(f.G, spec, f.options, f.shape, w_max)


def test_from_tiles_refuses_the_arrays_of_another_mapping():
    f, spec = _model()
    with pytest.raises(ValueError, match="G must hold 1 array for mapping='offset', got S=2"):
        xb.FCM.from_tiles(f.G, spec, f.options.replace(mapping="offset"), f.shape, f.w_max)
    with pytest.raises(ValueError, match=r"G must hold 2 arrays \(G\+, G-\) or 1 for mapping='differential', got S=3"):
        xb.FCM.from_tiles(np.concatenate([f.G, f.G[:1]]), spec, f.options, f.shape, f.w_max)
    lone = xb.FCM.from_tiles(f.G[:1], spec, f.options, f.shape, f.w_max)  # a lone array: counts positive
    assert lone.G.shape[0] == 1


@pytest.mark.parametrize("bad, match", [(np.nan, "G must be finite; found nan"), (np.inf, "G must be finite"),
                                        (-1e-5, "G must be >= 0 S; found -1e-05")])
def test_from_tiles_refuses_conductances_that_are_not_finite_and_nonnegative(bad, match):
    f, spec = _model(ideal=True)  # (the ideal circuit skips G_non-ideal's own checks)
    G = f.G.copy()
    G[0, 1, 0, 2, 1] = bad
    with pytest.raises(ValueError, match=match):
        xb.FCM.from_tiles(G, spec, f.options, f.shape, f.w_max)
    with pytest.raises(ValueError, match="G must hold real numbers"):
        xb.FCM.from_tiles(f.G > 0, spec, f.options, f.shape, f.w_max)


@pytest.mark.parametrize("mapping, other", [("differential", "offset"), ("offset", "differential")])
def test_with_options_refuses_another_mapping_of_the_programmed_conductances(mapping, other):
    """G+, G- read as one offset array (the pair's currents added, less an offset) gave y ~ 1.6 for
    x @ W ~ -0.4; an offset array read as a lone differential one, y ~ 6 for ~ -0.7."""
    f, _ = _model(mapping)
    with pytest.raises(ValueError, match=f"mapping='{other}': the conductances were programmed for mapping='{mapping}'"):
        f.with_options(mapping=other)
    assert f.with_options(mapping=mapping, dac_load="none").options.mapping.value == mapping
