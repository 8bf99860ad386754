"""The weight update of a crossbar cell: programming pulses, their non-ideal response, two write styles.

Physical model (SI; the device's bounds and levels come from ``DeviceParams``):

* **Pulses.** P = ``UpdateParams.pulses`` identical pulses take a cell from
  g_min to g_max along its potentiation (SET) curve, and P pulses back along
  its depression (RESET) curve; P defaults to ``device.levels - 1``. The
  nominal step is ΔG_step = (g_max - g_min) / P (siemens).
* **Asymmetric non-linear response** (TxSim's non-linearity factor ν, in the
  closed form NeuroSim uses for measured LTP/LTD curves: Chen, Peng, Yu,
  "NeuroSim: a circuit-level macro model for benchmarking neuro-inspired
  architectures in online learning", IEEE TCAD 2018; ``RealDevice::Write`` in
  neurosim/MLP_NeuroSim_V3.0 ``Cell.cpp``). After p pulses from g_min the SET
  curve is G(p) = g_min + B (1 - exp(-ν p / P)), B = (g_max - g_min) / (1 -
  exp(-ν)); the RESET curve is its mirror from g_max with ν_reset. ν is
  dimensionless (NeuroSim's P / A): ν = 0 is the linear device (ΔG = n
  ΔG_step), and for ν > 0 a SET pulse moves a cell less the higher it is,
  a RESET pulse more, so equal numbers of up and down pulses drift a cell to
  its symmetry point. n pulses at once follow the curve exactly (it composes).
  That TxSim's ν is this exponent is our reading: its equations are not in
  the reference material (see the write noise below).
* **Write noise** (TxSim's factor γ): an update of n pulses adds Gaussian
  noise of standard deviation γ ΔG_step sqrt(n) (independent per pulse, as
  NeuroSim's cycle-to-cycle variation, which also scales with sqrt(n)). γ is
  dimensionless: the per-pulse standard deviation in units of the nominal
  step (aihwkit's ConstantStepDevice defaults to 0.3, ``dw_min_std``; Gokmen and
  Vlasov, Front. Neurosci. 2016, 30 %). TxSim's own normalization of γ is
  not in the reference material here (``shared/reference`` holds only its
  abstract), so a curve against TxSim's γ must state this mapping.
* **Bounds** at g_min and g_max: every result is clipped to them (after the
  noise, as NeuroSim does).

Write styles:

1. ``outer_product_update``: in-situ rank-1 update by row and column pulses.
   Row i and column j each fire in ``bit_length`` time slots with
   probabilities proportional to |x_i| and |d_j|; a cell receives one pulse
   per coincidence, of the sign of x_i d_j (stochastic pulse coincidence,
   Gokmen and Vlasov 2016; TxSim's own pulse encoding is not in the
   reference material either). The
   ``EXPECTED`` scheme gives each cell the rounded expected count instead
   (deterministic, like aihwkit's deterministic pulse trains, release 0.3.0).
   ``batched_pulses`` sums the counts of many vectors (a mini-batch, a
   convolution's patches) drawn at once.
2. ``update_verify.program_and_verify``: a digitally computed update written by
   program-and-verify: the target G + ΔG is clipped and put on the device's
   levels, then rounds of pulses (counted from the inverse of the curves)
   and exact verify reads run until each cell is within the tolerance.

Every random draw comes from the ``numpy.random.Generator`` passed in; with
γ = 0 and the expected scheme no generator is needed. The stochastic batch
encoding and the device response run as compiled loops (``update_kernels``)
with the same draws and bitwise the same results as the array code here
(``XBARLAB_KERNELS=array`` runs the array code).
"""

from __future__ import annotations

import math
import os

import numpy as np

from .arrays import check_real_number_types
from .blas import one_blas_thread
from .device import DeviceParams, _finite
from .update_params import InSituSettings, PulseScheme, UpdateParams, VerifyResult, VerifySettings

__all__ = ["PulseScheme", "UpdateParams", "InSituSettings", "VerifySettings", "VerifyResult", "response",
           "apply_pulses", "apply_pulses_unchecked", "pulses_to", "outer_product_pulses", "batched_pulses",
           "outer_product_update"]


def _check_device(device) -> None:
    if not isinstance(device, DeviceParams):
        raise ValueError(f"device must be an xbarlab.DeviceParams, got {type(device).__name__}")


def _check_state(G, device: DeviceParams, name: str = "G") -> np.ndarray:
    _check_device(device)
    check_real_number_types(G, name)
    G = np.array(G, dtype=float, copy=True)
    if not np.all(np.isfinite(G)):
        raise ValueError(f"{name} must be finite")
    if G.size and (G.min() < device.g_min or G.max() > device.g_max):
        raise ValueError(f"{name} must lie in [g_min, g_max] = [{device.g_min!r}, {device.g_max!r}] S, "
                         f"got values in [{G.min()!r}, {G.max()!r}] S")
    return G


def _check_rng(rng, needed: bool):
    if rng is None and not needed:
        return None
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator (write noise or stochastic pulses draw from it), "
                         f"got {type(rng).__name__}")
    return rng


def _compiled() -> bool:
    """Whether the in-situ update runs as compiled loops (``update_kernels``, numba): unless
    XBARLAB_KERNELS=array, which runs the array code here as in ``xbarlab.fcm.cpu_kernels``."""
    return os.environ.get("XBARLAB_KERNELS", "auto") != "array"


SERIES_NU = 1e-8  # below it (times the pulses in units of P) the curves use their first-order series in ν


def _curve_gain(nu: float, k: np.ndarray) -> np.ndarray:
    """(1 - exp(-ν k)) / (1 - exp(-ν)) for k = n / P pulses of the full range: k at ν = 0.

    For ν k below ``SERIES_NU`` it is k (1 + ν (1 - k) / 2), exact to O(ν^2 k^2): the ratio of two
    expm1 would lose digits for subnormal ν.
    """
    if nu == 0:
        return k
    small = nu * np.maximum(k, 1.0) < SERIES_NU
    with np.errstate(under="ignore"):
        ratio = np.expm1(-nu * k) / math.expm1(-nu)
    return np.where(small, k * (1.0 + nu * (1.0 - k) / 2.0), ratio)


def response(G, n, device: DeviceParams, update: UpdateParams) -> np.ndarray:
    """Deterministic conductance (S) after n signed pulses per cell (> 0 SET, < 0 RESET), before noise and
    clipping: the closed form of the curves (module docstring), which continue past the bounds. G (S) and n
    (real, may be fractional): finite, of one shape (a broadcast mixed cells and counts silently)."""
    _check_update(update)
    _check_device(device)
    check_real_number_types(G, "G")
    check_real_number_types(n, "n")
    G, n = np.asarray(G, dtype=float), np.asarray(n, dtype=float)
    if not np.all(np.isfinite(G)):
        raise ValueError("G must be finite")
    if n.shape != G.shape or not np.all(np.isfinite(n)):
        raise ValueError(f"n must be finite pulse counts of G's shape {G.shape}, got shape {n.shape}")
    return _response(G, n, device, update)


def _response(G: np.ndarray, n: np.ndarray, device: DeviceParams, update: UpdateParams) -> np.ndarray:
    """``response`` without its checks (float G and n of one shape)."""
    P = update.pulse_count(device)
    span = device.g_max - device.g_min
    k = np.abs(n) / P
    y = G - device.g_min  # distance from the SET curve's start
    z = device.g_max - G  # distance from the RESET curve's start
    # (B - y)(1 - e^{-ν k}) written without B = span / (1 - e^{-ν}), which grows without bound as ν -> 0
    up = span * _curve_gain(update.nu_set, k) - (y * -np.expm1(-update.nu_set * k) if update.nu_set else 0.0)
    down = span * _curve_gain(update.nu_reset, k) - (z * -np.expm1(-update.nu_reset * k) if update.nu_reset else 0.0)
    return np.where(n > 0, G + up, np.where(n < 0, G - down, G))


def apply_pulses(G, n, device: DeviceParams, update: UpdateParams, rng: np.random.Generator | None = None):
    """Conductances (S) after applying n signed integer pulses per cell (> 0 SET, < 0 RESET).

    G: the cells' conductances, siemens, within [g_min, g_max]; n: integer
    pulse counts of G's shape. Draws one normal per cell from ``rng`` when
    γ > 0 (``rng`` may be None when γ = 0). The result is clipped to
    [g_min, g_max].
    """
    _check_update(update)
    G = _check_state(G, device)
    check_real_number_types(n, "n")
    n_arr = np.asarray(n)
    if n_arr.shape != G.shape:
        raise ValueError(f"n must have G's shape {G.shape}, got {n_arr.shape}")
    if n_arr.dtype.kind not in "iu":
        if n_arr.dtype.kind != "f" or not np.all(np.isfinite(n_arr)) or np.any(n_arr != np.rint(n_arr)):
            raise ValueError("n must hold whole numbers of pulses")
    return apply_pulses_unchecked(G, n_arr, device, update, _check_rng(rng, update.gamma > 0))


def apply_pulses_unchecked(G: np.ndarray, n: np.ndarray, device: DeviceParams, update: UpdateParams,
                           rng: np.random.Generator | None) -> np.ndarray:
    """``apply_pulses`` without its input checks, for a caller whose G (float, within the bounds), n
    (whole numbers of G's shape) and rng are valid by construction (``dnn_eval.txsim``'s cell state).
    Integer n runs as one compiled loop (``update_kernels.respond``, bitwise this array code)."""
    if _compiled() and n.dtype.kind in "iu":
        from . import update_kernels

        z = rng.standard_normal(G.shape) if update.gamma > 0 else None
        return update_kernels.respond(G, n, z, device.g_min, device.g_max, update.pulse_count(device), update.nu_set,
                                      update.nu_reset, SERIES_NU, update.gamma * update.step(device))
    out = _response(G, np.asarray(n, dtype=float), device, update)
    if update.gamma > 0:
        mag = np.abs(np.asarray(n, dtype=float))  # (in float: numpy's integer abs left int64's minimum negative)
        out += update.gamma * update.step(device) * np.sqrt(mag) * rng.standard_normal(G.shape)
    return np.clip(out, device.g_min, device.g_max, out=out)


def _check_update(update) -> None:
    if not isinstance(update, UpdateParams):
        raise ValueError(f"update must be an xbarlab.UpdateParams, got {type(update).__name__}")


def pulses_to(G, target, device: DeviceParams, update: UpdateParams) -> np.ndarray:
    """Signed (fractional) pulses that take G to ``target`` (S) along the SET or RESET curve, noiseless.

    G and target: conductances of one shape within [g_min, g_max] (a target beyond a bound is reached by
    no number of pulses: ValueError, where the non-linear curves' inverse gave NaN)."""
    _check_update(update)
    G = _check_state(G, device)
    t = _check_state(target, device, "target")
    if t.shape != G.shape:
        raise ValueError(f"target must have G's shape {G.shape}, got {t.shape}")
    return _pulses_to(G, t, device, update)


def _pulses_to(G: np.ndarray, target: np.ndarray, device: DeviceParams, update: UpdateParams) -> np.ndarray:
    """``pulses_to`` without its checks (program-and-verify's clipped targets)."""
    P = update.pulse_count(device)
    span = device.g_max - device.g_min

    def position(dist, far, nu):  # pulses from the curve's start to a cell ``dist`` from it and ``far`` from its end
        u = dist / span
        if nu == 0:
            return P * u
        if nu < SERIES_NU:  # first-order series, exact to O(ν^2) (see _curve_gain)
            return P * u * (1.0 + nu * (u - 1.0) / 2.0)
        # -(P / ν) ln(w), w = 1 - u (1 - e^-ν) = far / span + u e^-ν. Where w >= 1/2, log1p keeps its digits;
        # near the curve's end w is that sum of two positive terms, taken in logs (e^-ν underflows past ν ~ 745):
        # log1p(u expm1(-ν)) alone lost them there, ~0.7 of P = 100 pulses at ν = 37 and inf past ν ~ 37
        with np.errstate(divide="ignore"):  # (log of 0 at either end of the curve: -inf, as it should)
            lw = np.logaddexp(np.log(far / span), np.log(u) - nu)
            return -(P / nu) * np.where(lw < -math.log(2.0), lw, np.log1p(u * math.expm1(-nu)))

    lo_t, hi_t, lo_g, hi_g = target - device.g_min, device.g_max - target, G - device.g_min, device.g_max - G
    up = position(lo_t, hi_t, update.nu_set) - position(lo_g, hi_g, update.nu_set)
    down = position(hi_t, lo_t, update.nu_reset) - position(hi_g, lo_g, update.nu_reset)
    return np.where(target >= G, up, -down)


def outer_product_pulses(x, d, scale_s: float, device: DeviceParams, update: UpdateParams,
                         settings: InSituSettings = InSituSettings(), rng: np.random.Generator | None = None):
    """Signed pulse counts (M, N) of an in-situ update aiming at ΔG = scale_s * outer(x, d) (siemens).

    x (M,) drives the rows, d (N,) the columns; ``scale_s`` is in siemens per
    unit of x times d (a learning rate times the weight-to-conductance factor,
    with its sign). The desired pulses D = scale_s x d / ΔG_step are realized
    as coincidences of row and column streams of ``bit_length`` slots that fire
    with probabilities p_i = a |x_i| and q_j = b |d_j|, with a b = |D| / (x d BL)
    balanced so that the largest p and q are equal; where that exceeds 1 they
    are capped (the update saturates at BL pulses). Cell (i, j) gets the sign
    of scale_s x_i d_j.
    """
    if not isinstance(settings, InSituSettings):
        raise ValueError(f"settings must be an xbarlab.update.InSituSettings, got {type(settings).__name__}")
    check_real_number_types(x, "x")
    check_real_number_types(d, "d")
    x = np.asarray(x, dtype=float)
    d = np.asarray(d, dtype=float)
    if x.ndim != 1 or d.ndim != 1:
        raise ValueError(f"x and d must be 1-D (rows and columns), got shapes {x.shape} and {d.shape}")
    scale = _finite("scale_s", scale_s)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(d))):
        raise ValueError("x and d must be finite")
    BL = settings.bit_length
    stochastic = settings.scheme is PulseScheme.STOCHASTIC
    rng = _check_rng(rng, stochastic)
    x_max, d_max = float(np.abs(x).max(initial=0.0)), float(np.abs(d).max(initial=0.0))
    if x_max == 0 or d_max == 0 or scale == 0:
        return np.zeros((x.size, d.size), dtype=np.int64)
    step = update.step(device)
    peak = math.sqrt(abs(scale) * x_max * d_max / (step * BL))  # the largest p and q, uncapped
    _check_peak(peak, scale, step, BL)
    sign = np.sign(scale * np.outer(x, d)).astype(np.int64)
    p = np.minimum(1.0, np.abs(x) / x_max * peak)
    q = np.minimum(1.0, np.abs(d) / d_max * peak)
    if not stochastic:
        return sign * np.rint(BL * np.outer(p, q)).astype(np.int64)
    rows = rng.random((x.size, BL)) < p[:, None]
    cols = rng.random((d.size, BL)) < q[:, None]
    return sign * (rows.astype(np.int64) @ cols.T.astype(np.int64))


def batched_pulses(X: np.ndarray, D: np.ndarray, scale_s: float, step_s: float, settings: InSituSettings,
                   rng: np.random.Generator | None) -> np.ndarray:
    """Signed pulse counts (K, N): the sum over vectors r of ``outer_product_pulses(X[r], D[r], scale_s)``'s
    encoding (per-vector balanced probabilities p = a|x|, q = b|d| capped at 1, ``bit_length`` slots),
    drawn for all vectors at once. ``EXPECTED`` sums each vector's rounded expected count.

    The stochastic streams (``_streams``) draw a uniform per slot only for the lines with a firing
    probability above 0; the pulse count of each cell is exact in float32 up to 2^24 slots."""
    X, D = _check_batch(X, D, scale_s, step_s, settings, rng)
    BL = settings.bit_length
    if _compiled() and settings.scheme is PulseScheme.STOCHASTIC and scale_s != 0:
        from . import update_kernels  # (the same draws and counts in compiled loops)

        return update_kernels.pulse_counts(X, D, scale_s, step_s, BL, rng)
    xm = np.abs(X).max(axis=1, keepdims=True, initial=0.0)  # (initial: a layer of no rows or no columns)
    dm = np.abs(D).max(axis=1, keepdims=True, initial=0.0)
    live = (xm[:, 0] > 0) & (dm[:, 0] > 0)
    if scale_s == 0 or not live.any():
        return np.zeros((X.shape[1], D.shape[1]), dtype=np.int64)
    X, D, xm, dm = X[live], D[live], xm[live], dm[live]
    with np.errstate(over="ignore"):  # (raised on just below)
        peak = np.sqrt(abs(scale_s) * xm * dm / (step_s * BL))  # (R, 1)
    _check_peak(peak, scale_s, step_s, BL)
    p = np.minimum(1.0, np.abs(X) / xm * peak)
    q = np.minimum(1.0, np.abs(D) / dm * peak)
    sx, sd = np.sign(X) * np.sign(scale_s), np.sign(D)
    if settings.scheme is PulseScheme.EXPECTED:
        return np.rint(BL * np.einsum("rk,rn->rkn", sx * p, sd * q)).sum(axis=0).astype(np.int64)
    R = X.shape[0]
    exact = np.float32 if R * BL <= 2**24 else np.float64  # sums of +-1 stay exact integers
    rows = _streams(p, sx, BL, rng, exact)  # (R BL, K) signed row pulses
    cols = _streams(q, sd, BL, rng, exact)
    with one_blas_thread():  # a small product: BLAS thread pools only spin here (xbarlab.blas)
        return np.rint(rows.T @ cols).astype(np.int64)


def _check_peak(peak, scale_s: float, step_s: float, BL: int) -> None:
    """ValueError unless every vector's peak probability is finite in double precision: beyond it the
    probabilities of the lines at zero were 0 * inf = NaN (and the compiled loops fired them)."""
    if not np.all(np.asarray(peak) < np.inf):
        raise ValueError(_overflow_message(scale_s, step_s, BL))


def _overflow_message(scale_s: float, step_s: float, BL: int) -> str:
    return (f"scale_s * max|x| * max|d| / (step_s * bit_length) overflows double precision (scale_s={scale_s!r}, "
            f"step_s={step_s!r}, bit_length={BL}): the firing probabilities cannot be resolved")


def _check_batch(X, D, scale_s, step_s, settings, rng):
    """X (R, K) and D (R, N) as finite float arrays, or ValueError (the compiled loops read without bounds
    checks: a D of fewer rows than X read and wrote past its end)."""
    if not isinstance(settings, InSituSettings):
        raise ValueError(f"settings must be an xbarlab.update.InSituSettings, got {type(settings).__name__}")
    check_real_number_types(X, "X")
    check_real_number_types(D, "D")
    X, D = np.asarray(X, dtype=float), np.asarray(D, dtype=float)
    if X.ndim != 2 or D.ndim != 2 or X.shape[0] != D.shape[0]:
        raise ValueError(f"X and D must be (R, K) and (R, N) with the same R, got shapes {X.shape} and {D.shape}")
    if not (np.isfinite(X).all() and np.isfinite(D).all()):
        raise ValueError("X and D must be finite")
    _finite("scale_s", scale_s)
    _finite("step_s", step_s, lo=0.0, lo_open=True)
    _check_rng(rng, settings.scheme is PulseScheme.STOCHASTIC)
    return X, D


def _streams(prob: np.ndarray, sign: np.ndarray, BL: int, rng: np.random.Generator, dtype) -> np.ndarray:
    """Pulse streams (R BL, n) of ``dtype``: entry (r t, i) is sign[r, i] when line i fires in slot t of
    vector r, else 0; each line fires in each slot independently with probability prob[r, i].

    Uniforms are drawn (float64, numpy's 53-bit grid k 2^-53) only for the lines with prob > 0: a line at 0
    never fires, and ReLU inputs and zero padding make many of them. A line fires when u < p, so with
    probability ceil(p 2^53) / 2^53: p to within 2^-53 (1.1e-16) absolute, 1e-7 relative at p = 1e-9.
    (float32 uniforms, 2^-24 apart, fired a line with probability ceil(p 2^24) / 2^24: 19 % above p at
    1e-7, and 2^-24 = 6e-8 for any smaller p > 0, 60 times p at 1e-9. float64 costs about 10 % more time
    for the counts on the sizes of ``benchmarks/bench_train.py``, 0.5-1.3 % of a TxSim training step.) The
    compiled counts, ``update_kernels``, draw the same uniforms in the same order."""
    R, n = prob.shape
    r, i = np.nonzero(prob)
    out = np.zeros((R, BL, n), dtype=dtype)
    if r.size:
        fired = rng.random((r.size, BL)) < prob[r, i][:, None]
        out[r, :, i] = fired * sign[r, i].astype(dtype)[:, None]
    return out.reshape(R * BL, n)


def outer_product_update(G, x, d, scale_s: float, device: DeviceParams, update: UpdateParams,
                         settings: InSituSettings = InSituSettings(), rng: np.random.Generator | None = None):
    """G (M, N) after an in-situ outer-product update (``outer_product_pulses`` then ``apply_pulses``).

    Draws the row and column streams, then the write noise, from ``rng``.
    """
    G = _check_state(G, device)
    n = outer_product_pulses(x, d, scale_s, device, update, settings, rng)
    if n.shape != G.shape:
        raise ValueError(f"x and d give pulses of shape {n.shape}, but G has shape {G.shape}")
    return apply_pulses(G, n, device, update, rng)

