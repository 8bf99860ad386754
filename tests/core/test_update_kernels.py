"""The compiled in-situ update (``xbarlab.update_kernels``) is bitwise the array code of ``xbarlab.update``:
the same draws from the generator, the same pulse counts, the same conductances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xbarlab as xb
import xbarlab.update as U
from xbarlab.update import InSituSettings, UpdateParams, apply_pulses_unchecked, batched_pulses

DEV = xb.DeviceParams(g_min=1e-6, g_max=1e-4, bits=None, levels=None)


def _both(monkeypatch, f, seed: int):
    """f(rng) by the array code, then by the compiled loops, each from a generator of ``seed``; and
    the two generators' next draw (the same when both consumed the same stream)."""
    out = []
    for compiled in (False, True):
        monkeypatch.setattr(U, "_compiled", lambda c=compiled: c)
        rng = np.random.default_rng(seed)
        out.append((f(rng), rng.random()))
    return out


@settings(max_examples=40)
@given(st.integers(1, 300), st.integers(1, 40), st.integers(1, 20), st.sampled_from([1, 10, 63, 64, 65, 130]),
       st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(1e-9, 1e-5), st.booleans(), st.integers(0, 2**32 - 1))
def test_pulse_counts_are_the_array_codes(R, K, N, BL, zx, zd, scale, negative, seed):
    """Any batch, widths, bit lengths across 64-slot words, share of zero inputs (ReLU, padding), scale
    sign and size (capped probabilities included): the same counts and the same stream consumed."""
    g = np.random.default_rng(seed)
    X = g.standard_normal((R, K)) * (g.random((R, K)) >= zx)
    D = g.standard_normal((R, N)) * (g.random((R, N)) >= zd)
    s = -scale if negative else scale
    with pytest.MonkeyPatch.context() as mp:
        (a, ra), (b, rb) = _both(mp, lambda rng: batched_pulses(X, D, s, 1e-8, InSituSettings(bit_length=BL), rng),
                                 seed)
    assert a.dtype == b.dtype == np.int64
    np.testing.assert_array_equal(a, b)
    assert ra == rb


@settings(max_examples=40)
@given(st.sampled_from([0.0, 1e-12, 1e-3, 0.1, 1.0, 5.0]), st.sampled_from([0.0, 1e-10, 0.1, 2.0]),
       st.sampled_from([0.0, 0.3, 1.0, 10.0]), st.integers(1, 2000), st.integers(0, 2**32 - 1))
def test_device_response_is_the_array_codes(nu_set, nu_reset, gamma, pulses, seed):
    """Every branch of the curves (linear, series, closed form), noise on or off, cells at and near the
    bounds, pulse counts beyond the range: bitwise equal conductances."""
    g = np.random.default_rng(seed)
    G = DEV.g_min + (DEV.g_max - DEV.g_min) * g.random((2, 3, 2, 5, 7))
    G.flat[:4] = [DEV.g_min, DEV.g_max, DEV.g_min, DEV.g_max]
    n = g.integers(-3 * pulses, 3 * pulses + 1, G.shape)
    n.flat[4:8] = 0
    up = UpdateParams(nu_set=nu_set, nu_reset=nu_reset, gamma=gamma, pulses=pulses)
    with pytest.MonkeyPatch.context() as mp:
        (a, ra), (b, rb) = _both(mp, lambda rng: apply_pulses_unchecked(G, n, DEV, up, rng), seed)
    np.testing.assert_array_equal(a, b)
    assert ra == rb


def test_float_pulses_run_the_array_code(monkeypatch):
    """Float counts (whole numbers, ``apply_pulses``' other input) keep the array code: no int cast."""
    G = np.full((3,), 5e-5)
    n = np.array([1e30, -2.0, 0.0])
    up = UpdateParams(nu_set=0.1, pulses=10)
    monkeypatch.setattr(U, "_compiled", lambda: True)
    np.testing.assert_array_equal(apply_pulses_unchecked(G, n, DEV, up, None), U.response(G, n, DEV, up).clip(
        DEV.g_min, DEV.g_max))


@pytest.mark.parametrize("compiled", [False, True])
def test_batched_pulses_refuses_mismatched_or_nonfinite_batches(monkeypatch, compiled):
    """The compiled loops read without bounds checks: D with another number of vectors than X was read
    past its end (fewer rows: heap corruption) or its extra rows ignored, a NaN gave pulses that differed
    from the array code's; both paths now refuse them."""
    monkeypatch.setattr(U, "_compiled", lambda: compiled)
    rng = np.random.default_rng(0)
    X, D = rng.standard_normal((4, 3)), rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match="same R"):
        batched_pulses(X, D, -1e-5, 1e-7, InSituSettings(), np.random.default_rng(0))
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        batched_pulses(X, D[:4], -1e-5, 1e-7, InSituSettings(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        batched_pulses(X[1:], D[1:4], -1e-5, 1e-7, InSituSettings(), None)
    with pytest.raises(ValueError, match="step_s"):
        batched_pulses(X[1:], D[1:4], -1e-5, 0.0, InSituSettings(), np.random.default_rng(0))


@pytest.mark.parametrize("compiled", [False, True])
def test_a_peak_beyond_double_precision_raises(monkeypatch, compiled):
    """scale_s max|x| max|d| / (step_s BL) past the largest double made the peak probability inf: the lines
    at zero got 0 * inf = NaN, which the compiled loops fired in every slot (counts 5 in all 6 cells, the
    array code's [[5, 0], [0, 0], [5, 0]]), and whose true p could not be resolved either way."""
    monkeypatch.setattr(U, "_compiled", lambda: compiled)
    X, D = np.array([[1e160, 0.0, 1.0]]), np.array([[1e160, 0.0]])
    with pytest.raises(ValueError, match=r"overflows double precision \(scale_s=0.001, step_s=1e-08, bit_length=5"):
        batched_pulses(X, D, 1e-3, 1e-8, InSituSettings(bit_length=5), np.random.default_rng(0))
    with pytest.raises(ValueError, match="overflows double precision"):
        U.outer_product_pulses(X[0], D[0], 1e-3, DEV, UpdateParams(pulses=100), InSituSettings(scheme="expected"))
    # one step inside the range: the same counts from both paths, the zero lines never pulsed
    n = batched_pulses(X * 1e-10, D * 1e-10, 1e-3, 1e-8, InSituSettings(bit_length=5), np.random.default_rng(0))
    np.testing.assert_array_equal(n, [[5, 0], [0, 0], [0, 0]])



@pytest.mark.parametrize("compiled", [False, True])
def test_integer_extremes_keep_their_sign(monkeypatch, compiled):
    """The compiled loops cast n to int64 and negated it there: a uint64 count >= 2**63 wrapped negative
    (RESET to g_min instead of SET to g_max) and int64's minimum stayed negative under - and abs (SET to
    g_max); numpy's integer abs made the array code's write noise of that count NaN."""
    monkeypatch.setattr(U, "_compiled", lambda: compiled)
    G = np.full(3, 5e-5)
    i64 = np.iinfo(np.int64)
    n = np.array([i64.min, i64.max, 7])
    up = UpdateParams(nu_set=0.5, nu_reset=1.0, pulses=100)
    np.testing.assert_array_equal(apply_pulses_unchecked(G, n, DEV, up, None)[:2], [DEV.g_min, DEV.g_max])
    big = np.array([2**63 + 5, 2**64 - 1, 7], dtype=np.uint64)
    np.testing.assert_array_equal(apply_pulses_unchecked(G, big, DEV, up, None)[:2], [DEV.g_max, DEV.g_max])
    noisy = UpdateParams(nu_set=0.5, nu_reset=1.0, gamma=0.3, pulses=100)
    out = apply_pulses_unchecked(G, n, DEV, noisy, np.random.default_rng(4))
    assert np.all(np.isin(out[:2], [DEV.g_min, DEV.g_max]))  # (noise of sigma ~ 900 S: either bound; was NaN)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("scheme", ["stochastic", "expected"])
def test_no_rows_or_no_columns_give_no_pulses(monkeypatch, compiled, scheme):
    """K = 0 or N = 0: zero counts of shape (K, N) from both paths; the array code (and so EXPECTED
    always) raised numpy's 'zero-size array to reduction operation maximum'."""
    monkeypatch.setattr(U, "_compiled", lambda: compiled)
    for K, N in ((0, 2), (3, 0)):
        n = batched_pulses(np.ones((4, K)), np.ones((4, N)), 1e-3, 1e-5, InSituSettings(scheme=scheme),
                           np.random.default_rng(0))
        assert n.shape == (K, N) and n.dtype == np.int64


def test_small_firing_probabilities_are_unbiased(monkeypatch):
    """A line fires with its probability p also where p is small: the streams compare float64 uniforms
    (2^-53 apart) with p. float32 uniforms (2^-24 apart) fired a line with probability ceil(p 2^24) / 2^24:
    1.19e-7 at p = 1e-7, 2^-24 = 5.96e-8 (60 p) at p = 1e-9.

    Through ``batched_pulses`` (compiled counts): every vector has a row at x = max|x| and one column at
    d = max|d| with scale_s = bit_length, step 1, so the peak probability is exactly 1 (that row and the column
    fire in every slot) and a row at x = p fires with probability p; its count at the column is its fires.
    32 rows at p = 1e-7 (1.0e8 trials) and 128 at p = 1e-9 (4.1e8 trials), BL = 1000, 32 vectors, 100 calls,
    seed 0. Bound: each total lies within the central interval of its Binomial(trials, p) that leaves 1e-7
    out on each side (the false-failure rate of the two checks together is below 4e-7): 1e-7: [0, 31]
    (mean 10.2), 1e-9: [0, 7] (mean 0.41); this seed gives 4 and 0 fires. float32 uniforms give a 1e-9 total
    of mean 24.4 (P(<= 7) = 3.5e-5): with this seed 9 and 19 fires, which fails. The array code gives the
    same counts (one call compared)."""
    from scipy.stats import binom

    R, BL, calls, a, b = 32, 1000, 100, 32, 128
    p7, p9 = 1e-7, 1e-9
    X = np.tile(np.concatenate([[1.0], np.full(a, p7), np.full(b, p9)]), (R, 1))
    D = np.ones((R, 1))
    s = InSituSettings(bit_length=BL)
    monkeypatch.setattr(U, "_compiled", lambda: True)
    rng = np.random.default_rng(0)
    f7 = f9 = 0
    for _ in range(calls):
        n = batched_pulses(X, D, float(BL), 1.0, s, rng)
        assert n[0, 0] == R * BL  # (the peak row: probability 1)
        f7 += int(n[1:1 + a, 0].sum())
        f9 += int(n[1 + a:, 0].sum())
    for fires, trials, p in ((f7, a * R * BL * calls, p7), (f9, b * R * BL * calls, p9)):
        lo, hi = binom.ppf(1e-7, trials, p), binom.isf(1e-7, trials, p)
        assert lo <= fires <= hi, (fires, trials, p, lo, hi)
    with pytest.MonkeyPatch.context() as mp:
        (c, rc), (k, rk) = _both(mp, lambda g: batched_pulses(X[:4], D[:4], float(BL), 1.0, s, g), 5)
    np.testing.assert_array_equal(c, k)
    assert rc == rk
