"""The weight-update model (issue 14, TxSim): pulse response, write noise, bounds, levels, both write styles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import xbarlab as xb
from xbarlab.update import (InSituSettings, PulseScheme, UpdateParams, VerifySettings, apply_pulses,
                            outer_product_pulses, outer_product_update, pulses_to, response)
from xbarlab.update_verify import program_and_verify

pytestmark = pytest.mark.property

DEV = xb.DeviceParams(g_min=1.0 / 60e3, g_max=1.0 / 20e3, bits=5)  # 32 levels: P = 31 pulses
nus = st.floats(0.0, 5.0)


@st.composite
def states(draw, size: int = 6):
    """(G within [g_min, g_max] in S, signed integer pulses n) of ``size`` cells."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    G = DEV.g_min + rng.random(size) * (DEV.g_max - DEV.g_min)
    n = rng.integers(-40, 41, size)
    return G, n


@given(st.integers(-40, 40))
def test_nu_zero_is_linear(n):
    """ν = 0: every pulse moves a cell by exactly ΔG_step until the bound."""
    u = UpdateParams()
    k = np.arange(DEV.levels)
    G = DEV.level_conductances()
    out = apply_pulses(G, np.full(G.shape, n), DEV, u)
    expect = DEV.g_min + np.clip(k + n, 0, DEV.levels - 1) * u.step(DEV)
    np.testing.assert_allclose(out, expect, rtol=1e-12, atol=0)


@given(states(), nus, nus, st.integers(0, 40))
def test_monotone_in_pulses_and_in_state(case, nu_set, nu_reset, extra):
    G, n = case
    u = UpdateParams(nu_set=nu_set, nu_reset=nu_reset)
    a = apply_pulses(G, n, DEV, u)
    b = apply_pulses(G, n + extra, DEV, u)  # more SET or fewer RESET pulses never lower a cell
    assert np.all(b >= a)
    hi = np.minimum(G * 1.05, DEV.g_max)  # a higher start never ends lower
    assert np.all(apply_pulses(hi, n, DEV, u) >= a - 1e-18)


@given(states(), nus, nus, st.floats(0.0, 50.0), st.integers(0, 2**32 - 1))
def test_bounded_at_g_min_and_g_max(case, nu_set, nu_reset, gamma, seed):
    G, n = case
    out = apply_pulses(G, n * 10, DEV, UpdateParams(nu_set, nu_reset, gamma), np.random.default_rng(seed))
    assert np.all(out >= DEV.g_min) and np.all(out <= DEV.g_max)


@given(states(), nus, nus)
def test_gamma_zero_is_deterministic(case, nu_set, nu_reset):
    G, n = case
    u = UpdateParams(nu_set, nu_reset, gamma=0.0)
    a = apply_pulses(G, n, DEV, u)
    assert np.array_equal(a, apply_pulses(G, n, DEV, u, np.random.default_rng(1)))
    assert np.array_equal(a, apply_pulses(G, n, DEV, u, np.random.default_rng(2)))
    noisy = UpdateParams(nu_set, nu_reset, gamma=1.0)
    same = apply_pulses(G, n, DEV, noisy, np.random.default_rng(3))
    assert np.array_equal(same, apply_pulses(G, n, DEV, noisy, np.random.default_rng(3)))  # seeded: repeatable


@given(states(), nus, st.integers(1, 40))
def test_pulses_compose(case, nu, n):
    """n pulses at once land where n single pulses do (the closed form follows the curve)."""
    G, _ = case
    u = UpdateParams(nu_set=nu, nu_reset=nu / 2)
    for sign in (1, -1):
        one = G.copy()
        for _ in range(n):
            one = response(one, np.full(G.shape, sign), DEV, u)
        np.testing.assert_allclose(response(G, np.full(G.shape, sign * n), DEV, u), one, rtol=1e-12)


@given(states(), nus, nus)
def test_pulses_to_inverts_the_curves(case, nu_set, nu_reset):
    G, _ = case
    u = UpdateParams(nu_set, nu_reset)
    t = G[::-1].copy()
    np.testing.assert_allclose(response(G, pulses_to(G, t, DEV, u), DEV, u), t, rtol=1e-10)


@given(st.floats(0.05, 5.0))
def test_asymmetry_sign(nu):
    """ν > 0: a SET pulse moves a cell less the higher it is, a RESET pulse more; with equal ν the steps
    are equal at mid-range, so one up and one down pulse lift a low cell and lower a high one."""
    u = UpdateParams(nu_set=nu, nu_reset=nu)
    G = DEV.g_min + np.linspace(0.05, 0.95, 19) * (DEV.g_max - DEV.g_min)
    up = response(G, np.ones(19), DEV, u) - G
    down = G - response(G, -np.ones(19), DEV, u)
    assert np.all(np.diff(up) < 0) and np.all(np.diff(down) > 0)
    assert np.all((up > down)[:9]) and np.all((up < down)[10:])
    np.testing.assert_allclose(up[9], down[9], rtol=1e-12)
    net = response(response(G, np.ones(19), DEV, u), -np.ones(19), DEV, u) - G
    assert np.all(net[:9] > 0) and np.all(net[10:] < 0)
    # a stronger SET than RESET non-linearity makes the SET step the larger one at mid-range (the mid
    # step grows with ν as (ν / 2) coth(ν / 2)): the symmetry point moves above mid-range. Below ν ~ 6 / P
    # the finite pulse (its step is set where it starts, -ν / 2P^2 to first order) outweighs that growth.
    if nu >= 0.5:
        skew = UpdateParams(nu_set=2 * nu, nu_reset=nu)
        mid = G[9:10]
        assert (response(mid, [1], DEV, skew) - mid)[0] > (mid - response(mid, [-1], DEV, skew))[0]


@pytest.mark.parametrize("nu", [0.0, 0.5, 3.0])
def test_finite_levels(nu):
    """From g_min, single SET pulses visit P + 1 states and stop at g_max; at ν = 0 they are the device's levels."""
    u = UpdateParams(nu_set=nu, nu_reset=nu)
    G, seen = np.array([DEV.g_min]), [DEV.g_min]
    for _ in range(DEV.levels + 5):
        G = apply_pulses(G, [1], DEV, u)
        seen.append(float(G[0]))
    states_ = np.unique(np.round(np.array(seen) / DEV.g_max, 12))
    assert len(states_) == DEV.levels and seen[-1] == DEV.g_max
    if nu == 0:
        np.testing.assert_allclose(np.array(seen[:DEV.levels]), DEV.level_conductances(), rtol=1e-12)
    down = apply_pulses(np.array([DEV.g_max]), [-(DEV.levels - 1)], DEV, u)
    np.testing.assert_allclose(down, [DEV.g_min], rtol=1e-12)  # P RESET pulses from g_max reach g_min


def test_the_devices_own_levels_are_accepted():
    """For about 1 in 80 bound pairs g_min + (g_max - g_min) rounds 1 ulp above g_max: the top level of
    ``level_conductances`` and ``random_state`` lay outside the bounds, and ``apply_pulses`` and
    ``program_and_verify`` refused the device's own states."""
    dev = xb.DeviceParams(g_min=5.202130106440961e-06, g_max=2.3064220899374745e-05, bits=4)
    assert dev.g_min + (dev.g_max - dev.g_min) > dev.g_max  # the case
    G = dev.level_conductances()
    assert G[-1] == dev.g_max and dev.quantize(1.0) == dev.g_max
    np.testing.assert_array_equal(apply_pulses(G, np.zeros(G.shape, int), dev, UpdateParams()), G)
    r = program_and_verify(G, G[::-1], dev, UpdateParams())
    assert r.unconverged == 0 and r.g.max() == dev.g_max
    assert dev.random_state(np.random.default_rng(0), 1000).max() == dev.g_max


def test_write_noise_scales_with_gamma_and_sqrt_pulses():
    """σ of an n-pulse update is γ ΔG_step sqrt(n): measured on 40,000 mid-range cells, seeded."""
    rng = np.random.default_rng(7)
    u = UpdateParams(gamma=0.3)
    step = u.step(DEV)
    G = np.full(40_000, DEV.g_min + 10 * step)
    for n in (1, 4, 9):
        dG = apply_pulses(G, np.full(G.shape, n), DEV, u, rng) - G
        assert abs(dG.mean() / (n * step) - 1) < 0.01
        assert abs(dG.std() / (0.3 * step * np.sqrt(n)) - 1) < 0.02


def test_outer_product_expected_scheme_gives_the_rounded_pulses():
    x = np.array([1.0, 0.5, -0.25, 0.0])
    d = np.array([0.4, -1.0, 0.8])
    u = UpdateParams()
    scale = 2.0 * u.step(DEV)  # desired pulses: 2 x d
    s = InSituSettings(bit_length=10, scheme="expected")
    n = outer_product_pulses(x, d, scale, DEV, u, s)
    np.testing.assert_array_equal(n, np.rint(2 * np.outer(x, d)).astype(int))
    G = np.full((4, 3), DEV.g_min + 5 * u.step(DEV))
    np.testing.assert_allclose(outer_product_update(G, x, d, scale, DEV, u, s), G + n * u.step(DEV), rtol=1e-12)
    # saturation: at most bit_length pulses per update, signs kept
    big = outer_product_pulses(x, d, 1e3 * scale, DEV, u, s)
    assert np.abs(big).max() == 10 and np.array_equal(np.sign(big), np.sign(np.outer(x, d)).astype(int))


def test_outer_product_stochastic_is_unbiased_and_bounded():
    """Row and column streams of BL slots: each cell's mean count is the desired one (no saturation),
    never above BL; 4000 updates from one seeded generator."""
    rng = np.random.default_rng(11)
    x = np.array([1.0, 0.5, -0.3])
    d = np.array([0.6, -1.0])
    u = UpdateParams()
    D = 3.0 * np.outer(x, d)  # desired pulses, |D| <= 3 < BL = 10
    s = InSituSettings(bit_length=10)
    counts = np.stack([outer_product_pulses(x, d, 3.0 * u.step(DEV), DEV, u, s, rng) for _ in range(4000)])
    assert np.abs(counts).max() <= 10
    assert np.all(np.sign(counts) * np.sign(D) >= 0)
    se = counts.std(axis=0) / np.sqrt(len(counts))
    assert np.all(np.abs(counts.mean(axis=0) - D) <= 4 * se + 1e-12)


def test_program_and_verify_lands_on_the_levels():
    rng = np.random.default_rng(5)
    G = DEV.random_state(rng, (8, 8))
    dG = rng.normal(0, 3e-6, (8, 8))  # a digitally computed update, siemens
    r = program_and_verify(G, G + dG, DEV, UpdateParams())  # linear and noiseless: one round, exact
    target = DEV.quantize((np.clip(G + dG, DEV.g_min, DEV.g_max) - DEV.g_min) / (DEV.g_max - DEV.g_min))
    np.testing.assert_allclose(r.g, target, rtol=1e-12)
    assert r.rounds == 1 and r.unconverged == 0
    assert np.array_equal(r.pulses, np.abs(np.rint((target - G) / UpdateParams().step(DEV))).astype(int))


def _verify(u, rounds, seed=6):
    rng = np.random.default_rng(seed)
    G, target = DEV.random_state(rng, (16, 16)), DEV.random_state(rng, (16, 16))
    return program_and_verify(G, target, DEV, u, VerifySettings(tolerance=0.5, max_rounds=rounds), rng), target


def test_program_and_verify_corrects_non_linearity_and_noise():
    """Open loop (one round) misses most targets under ν and γ; verify rounds bring them within the
    tolerance, except where one pulse is coarser than it (the steep ends of a non-linear curve)."""
    step = UpdateParams().step(DEV)
    noisy = UpdateParams(nu_set=1.0, nu_reset=1.5, gamma=0.2)
    open_loop, _ = _verify(noisy, 1)
    closed, target = _verify(noisy, 10)
    assert closed.unconverged == int(np.count_nonzero(np.abs(closed.g - target) > 0.5 * step))
    assert closed.unconverged < open_loop.unconverged / 4  # measured 25 against 110 of 256
    assert np.all((closed.g >= DEV.g_min) & (closed.g <= DEV.g_max))
    linear, target = _verify(UpdateParams(gamma=0.2), 10)  # linear: every pulse is one step, all converge
    assert linear.unconverged == 0 and linear.rounds >= 2
    exact, target = _verify(UpdateParams(nu_set=1.0, nu_reset=1.5), 10)
    # noiseless: off by at most half of the coarsest pulse, step * ν / (1 - e^-ν) at ν = 1.5
    assert np.abs(exact.g - target).max() <= 0.5 * step * 1.5 / -np.expm1(-1.5)


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="nu_set must be >= 0.0, got -1"):
        UpdateParams(nu_set=-1)
    with pytest.raises(ValueError, match="gamma must be finite, got nan"):
        UpdateParams(gamma=float("nan"))
    with pytest.raises(ValueError, match="pulses must be >= 1, got 0"):
        UpdateParams(pulses=0)
    with pytest.raises(ValueError, match="pulses must be an integer"):
        UpdateParams(pulses=1.5)
    with pytest.raises(ValueError, match="bit_length must be >= 1, got 0"):
        InSituSettings(bit_length=0)
    with pytest.raises(ValueError, match=r"bit_length must be <= MAX_BIT_LENGTH \(1024\), got 1025"):
        InSituSettings(bit_length=1025)
    assert InSituSettings(bit_length=1024).bit_length == 1024
    with pytest.raises(ValueError, match=r"^scheme must be one of \['stochastic', 'expected'\], got 'random'"):
        InSituSettings(scheme="random")  # (the message named pulse_scheme, not the field)
    with pytest.raises(ValueError, match=r"pulses must be <= 2\*\*53 .*, got 10{400}$"):
        UpdateParams(pulses=10**400)  # (its step raised an OverflowError)
    with pytest.raises(ValueError, match=r"below 2\*\*-40 of g_max"):  # (accepted, its pulses changed nothing)
        UpdateParams(pulses=2**53).step(xb.DeviceParams(bits=None))
    with pytest.raises(ValueError, match="tolerance must be > 0.0, got 0"):
        VerifySettings(tolerance=0)
    with pytest.raises(ValueError, match="pulses must be set for an analog device"):
        UpdateParams().step(xb.DeviceParams(bits=None))
    assert UpdateParams(pulses=100).step(xb.DeviceParams(bits=None)) > 0
    u = UpdateParams(nu_set=0.1, nu_reset=1.0, gamma=5.0, pulses=63)
    assert UpdateParams.from_dict(u.to_dict()) == u
    with pytest.raises(ValueError, match="unknown field"):
        UpdateParams.from_dict({"nu": 1.0})
    assert InSituSettings(scheme="EXPECTED").scheme is PulseScheme.EXPECTED


def test_bad_inputs_raise():
    G = np.full(3, DEV.g_min)
    u = UpdateParams(gamma=1.0)
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator"):
        apply_pulses(G, [1, 2, 3], DEV, u)
    with pytest.raises(ValueError, match=r"G must lie in \[g_min, g_max\]"):
        apply_pulses(G * 0.5, [1, 2, 3], DEV, UpdateParams())
    with pytest.raises(ValueError, match="whole numbers of pulses"):
        apply_pulses(G, [1.5, 2, 3], DEV, UpdateParams())
    with pytest.raises(ValueError, match="n must have G's shape"):
        apply_pulses(G, [1, 2], DEV, UpdateParams())
    with pytest.raises(ValueError, match="device must be an xbarlab.DeviceParams"):
        apply_pulses(G, [1, 2, 3], {"g_min": 1e-5}, UpdateParams())
    with pytest.raises(ValueError, match="update must be an xbarlab.UpdateParams"):
        apply_pulses(G, [1, 2, 3], DEV, {"nu_set": 1})
    with pytest.raises(ValueError, match="rng must be"):
        outer_product_pulses([1.0], [1.0], 1e-6, DEV, UpdateParams())  # the stochastic scheme draws
    with pytest.raises(ValueError, match="scale_s must be finite"):
        outer_product_pulses([1.0], [1.0], float("inf"), DEV, UpdateParams(), InSituSettings(scheme="expected"))
    with pytest.raises(ValueError, match="x and d give pulses of shape"):
        outer_product_update(np.full((2, 2), DEV.g_min), [1.0], [1.0], 1e-6, DEV, UpdateParams(),
                             InSituSettings(scheme="expected"))
    with pytest.raises(ValueError, match="x must hold real numbers, got complex"):
        outer_product_pulses([1.0 + 1j], [1.0], 1e-6, DEV, UpdateParams(), InSituSettings(scheme="expected"))
    with pytest.raises(ValueError, match="n must hold real numbers, got boolean"):
        apply_pulses(G, [True, False, True], DEV, UpdateParams())
    with pytest.raises(ValueError, match="target must be finite"):
        program_and_verify(G, [np.nan, 1e-5, 1e-5], DEV, UpdateParams())


def test_pulses_to_refuses_unreachable_or_invalid_targets():
    """A target beyond a bound is reached by no number of pulses: the inverse of a non-linear curve gave
    NaN (log1p of a negative number) with only a RuntimeWarning, a linear one more than P pulses."""
    u = UpdateParams(nu_set=5.0, nu_reset=1.0)
    G = np.full(2, DEV.g_min)
    with pytest.raises(ValueError, match=r"target must lie in \[g_min, g_max\]"):
        pulses_to(G, [DEV.g_max, 2 * DEV.g_max], DEV, u)
    with pytest.raises(ValueError, match="G must be finite"):
        pulses_to([np.nan, DEV.g_min], G, DEV, u)
    with pytest.raises(ValueError, match="target must have G's shape"):
        pulses_to(G, [DEV.g_max], DEV, u)
    with pytest.raises(ValueError, match="update must be an xbarlab.UpdateParams"):
        pulses_to(G, G, DEV, {"nu_set": 5.0})
    with pytest.raises(ValueError, match="update must be an xbarlab.UpdateParams"):
        program_and_verify(G, G, DEV, {"nu_set": 5.0})  # (was an AttributeError)
    np.testing.assert_allclose(pulses_to(G, [DEV.g_max, DEV.g_min], DEV, u), [u.pulse_count(DEV), 0.0], rtol=1e-12)


@pytest.mark.parametrize("nu", [20.0, 37.0, 40.0, 100.0, 1000.0])
def test_pulses_to_the_end_of_a_steep_curve(nu):
    """From g_min, g_max lies exactly P pulses along the SET curve (and g_min P along the RESET curve) for
    any ν. ln(1 - u (1 - e^-ν)) as log1p lost its digits near the end: 99.29 of 100 pulses at ν = 37, inf
    past ν ~ 37, and program-and-verify then cast inf to int64's minimum and drove the cells to g_min."""
    u = UpdateParams(nu_set=nu, nu_reset=nu, pulses=100)
    G = np.array([DEV.g_min, DEV.g_max, DEV.g_min + 0.5 * (DEV.g_max - DEV.g_min)])
    t = np.array([DEV.g_max, DEV.g_min, DEV.g_max])
    n = pulses_to(G, t, DEV, u)
    # from mid-range: P minus the position of mid-range, -(P / ν) ln(1/2 + e^-ν / 2)
    mid = 100 + (100 / nu) * math.log(0.5 + 0.5 * math.exp(-nu))
    np.testing.assert_allclose(n, [100.0, -100.0, mid], rtol=1e-12)
    r = program_and_verify(G, t, DEV, u)
    np.testing.assert_allclose(r.g, t, rtol=1e-12)  # (from mid-range: a whole number of pulses, within 1e-12)
    assert r.unconverged == 0 and r.pulses.tolist() == [100, 100, round(mid)]


def test_a_step_double_precision_cannot_resolve_raises():
    # pulses = 2**60 on a 1e-6..5e-5 S device: a step of 4.2e-23 S, which left G = 5e-5 S unchanged by a
    # pulse with no error
    dev = xb.DeviceParams(g_min=1e-6, g_max=5e-5, levels=None)
    up = UpdateParams(pulses=2**52)
    with pytest.raises(ValueError, match=r"pulses=4503599627370496 .* below 2\*\*-40 of g_max"):
        apply_pulses(np.full((1, 1), 5e-5 - 1e-9), np.ones((1, 1), dtype=np.int64), dev, up, None)
    assert UpdateParams(pulses=2**30).step(dev) == pytest.approx(4.9e-5 / 2**30)


def test_response_and_split_update_refuse_mismatched_shapes():
    # both broadcast silently: a (3,) n on (3, 1) cells gave a (3, 3) answer, a (1,) half moved every pair
    u = UpdateParams()
    G = DEV.level_conductances()[:3]
    with pytest.raises(ValueError, match=r"n must be finite pulse counts of G's shape \(3, 1\)"):
        response(G[:, None], np.ones(3), DEV, u)
    with pytest.raises(ValueError, match="G must be finite"):
        response(G * np.nan, np.ones(3), DEV, u)
    np.testing.assert_array_equal(response(G, np.zeros(3), DEV, u), G)
    from xbarlab.update_verify import split_update

    with pytest.raises(ValueError, match="one shape"):
        split_update(G, G, np.ones(1) * 1e-6, DEV.g_min, DEV.g_max)
    with pytest.raises(ValueError, match="g_min < g_max"):
        split_update(G, G, np.zeros(3), DEV.g_max, DEV.g_min)
    tp, tm = split_update(G, G, np.zeros(3), DEV.g_min, DEV.g_max)
    np.testing.assert_array_equal(tp, G) and np.testing.assert_array_equal(tm, G)
