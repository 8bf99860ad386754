"""``g_nonideal_stack(..., device=)``: the row sweep in torch (``engines.sweep_torch``).

The torch sweep runs here on torch's CPU device (no GPU in CI); it must agree with the numpy
engines that users get without a device (the dissection for large square tiles, the row sweep
otherwise) to 1e-12 of the largest value, over the accepted parameter range: wide and tall
tiles, open cells, per-row drivers, zero driver and sense resistances, both reads. Circuits the
sweep does not take (a zero wire resistance) are solved on the CPU as without a device.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import torch

import xbarlab as xb


wire = st.floats(1e-2, 1e4)
resistance = st.one_of(st.just(0.0), wire)


def rel(a, b):
    """Largest difference over the largest |b| (the difference itself where b is all zeros)."""
    top = np.abs(b).max()
    return float(np.abs(a - b).max() / (top if top > 0 else 1.0))


@st.composite
def stacks(draw):
    t = draw(st.integers(1, 3))
    m = draw(st.integers(1, 20))
    n = draw(st.integers(1, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    G = 10.0 ** rng.uniform(-7.0, -3.0, (t, m, n))
    G[rng.random((t, m, n)) < 0.1] = 0.0  # open cells
    r_driver = tuple(rng.uniform(0.0, 1e3, m)) if draw(st.booleans()) else draw(resistance)
    c = xb.CircuitParams(r_row=draw(wire), r_col=draw(wire), r_sense=draw(resistance), r_driver=r_driver)
    return G, c


@settings(max_examples=25, deadline=None)
@given(stacks(), st.sampled_from(["forward", "backward"]))
def test_torch_sweep_matches_the_cpu_engines(case, read):
    G, c = case
    if read == "backward":
        c = xb.CircuitParams(r_row=c.r_row, r_col=c.r_col, r_sense=c.r_sense, r_driver=float(np.mean(c.r_driver_rows(G.shape[1]))))
    want = xb.g_nonideal_stack(G, c, read=read)
    got = xb.g_nonideal_stack(G, c, read=read, device="cpu")
    assert got.shape == want.shape and isinstance(got, np.ndarray)
    assert rel(got, want) <= 1e-12


def test_torch_sweep_on_a_square_tile_matches_the_dissection():
    rng = np.random.default_rng(5)
    G = 10.0 ** rng.uniform(-6.0, -4.0, (2, 64, 64))
    c = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
    assert rel(xb.g_nonideal_stack(G, c, device=torch.device("cpu")), xb.g_nonideal_stack(G, c)) <= 1e-12


def test_zero_wires_fall_back_to_the_cpu_solver():
    rng = np.random.default_rng(6)
    G = 10.0 ** rng.uniform(-6.0, -4.0, (2, 5, 4))
    c = xb.CircuitParams(r_row=0.0, r_col=2.5, r_sense=10.0, r_driver=50.0)
    assert rel(xb.g_nonideal_stack(G, c, device="cpu"), xb.g_nonideal_stack(G, c)) <= 1e-12


@pytest.mark.parametrize("device", ["no-such-device", 3.5])
def test_a_bad_device_is_refused_naming_it(device):
    with pytest.raises(ValueError, match="device"):
        xb.g_nonideal_stack(np.full((1, 2, 2), 1e-5), xb.CircuitParams(), device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is there: the refusal cannot be seen")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        xb.g_nonideal_stack(np.full((1, 2, 2), 1e-5), xb.CircuitParams(), device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_cuda_matches_the_cpu_engines():
    rng = np.random.default_rng(7)
    G = 10.0 ** rng.uniform(-6.0, -4.0, (8, 64, 64))
    c = xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)
    assert rel(xb.g_nonideal_stack(G, c, device="cuda"), xb.g_nonideal_stack(G, c)) <= 1e-12
