"""Compiled loops (numba) of the in-situ update: the pulse coincidences and the device response per cell.

``xbarlab.update`` states the model in array code (``_streams`` and a matrix
product for the pulse counts, ``response`` for the curves). With a mini-batch
of convolution patches that array code builds streams of R x BL x K entries,
mostly zeros, and spends its time on memory and on many short numpy calls.
These loops compute the same numbers in one pass each:

* ``coincidences``: from the same uniforms (drawn by the caller from its
  generator, in the array code's order), each cell's signed pulse count, as
  the sum over vectors and time slots of the products of the fired row and
  column signs. Integer arithmetic: the counts are exactly those of the
  array code's float product (itself exact below 2^24 slots).
* ``respond``: the closed-form SET/RESET curves, the write noise and the
  clip to the bounds, with the same IEEE operations in the same order as
  ``response`` and ``apply_pulses_unchecked`` (no ``fastmath``: no fused
  multiply-add, no reassociation). Its only transcendental, expm1, is passed
  in, computed by numpy on the same array as the array code does (numpy's
  SIMD expm1 and libm's differ in the last bit), so the result is bitwise
  the array code's (``tests/core/test_update_kernels.py``).

Imported on first use (``import xbarlab`` does not load numba); compiled on
first use, then cached on disk by numba. Single-threaded (see
``xbarlab.fcm.cpu_kernels`` on numba's and torch's thread pools).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


_jit = njit(cache=True, nogil=True, boundscheck=False, error_model="numpy")
_inline = njit(cache=True, nogil=True, boundscheck=False, error_model="numpy", inline="always")  # (helpers)


def pulse_counts(X: np.ndarray, D: np.ndarray, scale_s: float, step_s: float, BL: int, rng) -> np.ndarray:
    """``update.batched_pulses``' stochastic counts (K, N) for X (R, K), D (R, N), scale_s != 0, from the same
    draws of ``rng``: the probabilities of the array code (``_probabilities``), then one float64 uniform
    per slot of each line with probability != 0, rows first, in (vector, line) order (``update._streams``:
    a line fires with probability p to within 2^-53)."""
    X = np.ascontiguousarray(X, dtype=float)
    D = np.ascontiguousarray(D, dtype=float)
    P, Q = np.empty_like(X), np.empty_like(D)
    lines = np.empty((X.shape[0], 2), dtype=np.int64)  # per vector: rows and columns with probability != 0
    nr, nc = _probabilities(X, D, abs(scale_s), 1.0 if scale_s > 0 else -1.0, step_s * BL, P, Q, lines)
    if nr < 0:  # (a vector's peak probability overflowed)
        from .update import _overflow_message

        raise ValueError(_overflow_message(scale_s, step_s, BL))
    if nr == 0 or nc == 0:  # (no live vector: the array code draws nothing either)
        return np.zeros((X.shape[1], D.shape[1]), dtype=np.int64)
    ur = rng.random((nr, BL))
    uc = rng.random((nc, BL))
    out = np.zeros((X.shape[1], D.shape[1]), dtype=np.int64)
    _coincidences(P, Q, lines, ur, uc, out)
    return out


@_jit
def _probabilities(X, D, scale, sign, slots, P, Q, lines):
    """Signed firing probabilities P (R, K) of the rows and Q (R, N) of the columns, as the array code:
    per vector peak = sqrt(scale max|x| max|d| / slots), p = min(1, |x| / max|x| * peak) with the sign
    of x (times ``sign``, the scale's), q likewise with d's; a vector whose x or d is all zero is 0.
    ``lines`` (R, 2): each vector's rows and columns with a probability != 0; returns their totals,
    or (-1, -1) when a vector's peak is not finite (its zero lines would be 0 * inf)."""
    R, K = X.shape
    N = D.shape[1]
    nr = 0
    nc = 0
    for r in range(R):
        xm = 0.0
        for i in range(K):
            xm = max(xm, abs(X[r, i]))
        dm = 0.0
        for j in range(N):
            dm = max(dm, abs(D[r, j]))
        lines[r, 0] = 0
        lines[r, 1] = 0
        if not (xm > 0 and dm > 0):
            P[r] = 0.0
            Q[r] = 0.0
            continue
        peak = np.sqrt(scale * xm * dm / slots)
        if not peak < np.inf:
            return -1, -1
        for i in range(K):
            x = X[r, i]
            v = min(1.0, abs(x) / xm * peak)
            P[r, i] = np.copysign(v, x) * sign  # (x = 0: v = 0, a zero that no mask reads)
            lines[r, 0] += v != 0
        for j in range(N):
            d = D[r, j]
            v = min(1.0, abs(d) / dm * peak)
            Q[r, j] = np.copysign(v, d)
            lines[r, 1] += v != 0
        nr += lines[r, 0]
        nc += lines[r, 1]
    return nr, nc


def respond(G: np.ndarray, n: np.ndarray, z, g_min: float, g_max: float, P: int, nu_set: float, nu_reset: float,
            small_nu: float, noise: float) -> np.ndarray:
    """``update.apply_pulses_unchecked``'s result (a new array of G's shape) for float G and whole-number
    n of one shape (integers, read in float64 as the array code reads them); z: the standard normals per
    cell (None when noise = 0), noise = γ ΔG_step (S)."""
    G = np.ascontiguousarray(G, dtype=float)
    # n in float64, as the array code reads it (an int64 cast wrapped uint64 counts >= 2**63, and the
    # loop's -n and |n| left int64's minimum negative: RESET pulses that SET)
    n = np.ascontiguousarray(n, dtype=float)
    k = np.abs(n) / P  # (the array code's k: its expm1 here, numpy's, on the same array)
    e_set = np.expm1(-nu_set * k) if nu_set else k
    e_reset = np.expm1(-nu_reset * k) if nu_reset else k
    zz = k if z is None else np.ascontiguousarray(z, dtype=float)
    out = np.empty_like(G)
    _respond(G.ravel(), n.ravel(), e_set.ravel(), e_reset.ravel(), zz.ravel(), g_min, g_max, float(P),
                 nu_set, nu_reset, math.expm1(-nu_set), math.expm1(-nu_reset), small_nu, noise, out.ravel())
    return out


_M1, _M2, _M4, _H01 = (np.uint64(0x5555555555555555), np.uint64(0x3333333333333333), np.uint64(0x0F0F0F0F0F0F0F0F),
                       np.uint64(0x0101010101010101))
_ONE, _SIX = np.uint64(1), np.uint64(56)


@_inline
def _popcount(x):
    """Set bits of a uint64 (SWAR)."""
    x = x - ((x >> _ONE) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> _SIX


@_inline
def _masks(prob, r, u, u0, idx, s, mask):
    """The lines of vector r with a signed firing probability != 0 (prob (R, n)): index, sign and the bit
    mask of the slots where each fires (float64 uniform u[u0 + line, t] < |prob|); returns how many."""
    n = 0
    BL = u.shape[1]
    for i in range(prob.shape[1]):
        v = prob[r, i]
        if v != 0:
            pf = abs(v)
            row = u0 + n
            for w in range(mask.shape[1]):
                m = np.uint64(0)
                for t in range(64 * w, min(BL, 64 * w + 64)):
                    m |= np.uint64(u[row, t] < pf) << np.uint64(t - 64 * w)
                mask[n, w] = m
            idx[n] = i
            s[n] = 1 if v > 0 else -1
            n += 1
    return n


@_jit
def _coincidences(p, q, lines, ur, uc, out):
    """out (K, N) int64 += the signed coincidences of row streams (p: (R, K) signed probabilities)
    and column streams (q: (R, N)), ``lines`` (R, 2) the live rows and columns of each vector; ur, uc (float64, (lines, BL)): one uniform per slot of each line
    with probability != 0, in row-major (vector, line) order. Line i fires in slot t when u < |p| (float64);
    cell (i, j) of vector r gets sign_i sign_j times the slots where both fire (a popcount of their masks)."""
    R, K = p.shape
    N = q.shape[1]
    W = (ur.shape[1] + 63) // 64
    ri = np.empty(K, np.int64)
    rs = np.empty(K, np.int64)
    rm = np.empty((K, W), np.uint64)
    ci = np.empty(N, np.int64)
    cs = np.empty(N, np.int64)
    cm = np.empty((N, W), np.uint64)
    ur0 = 0
    uc0 = 0
    for r in range(R):
        nr, nc = lines[r, 0], lines[r, 1]
        if nr > 0 and nc > 0:  # (a vector with no live row or no live column pulses no cell)
            _masks(p, r, ur, ur0, ri, rs, rm)
            _masks(q, r, uc, uc0, ci, cs, cm)
        else:
            nr = nc = 0
        ur0 += lines[r, 0]
        uc0 += lines[r, 1]
        for a in range(nr):
            i, sa = ri[a], rs[a]
            if W == 1:  # (BL <= 64: one word per line, the common case)
                m = rm[a, 0]
                for b in range(nc):
                    out[i, ci[b]] += sa * cs[b] * np.int64(_popcount(m & cm[b, 0]))
                continue
            for b in range(nc):
                c = np.uint64(0)
                for w in range(W):
                    c += _popcount(rm[a, w] & cm[b, w])
                out[i, ci[b]] += sa * cs[b] * np.int64(c)


@_inline
def _move(k, rel, e, em, nu, span, small_nu):
    """The conductance change, S, of k = |n| / P pulses along one curve (SET from g_min, RESET from g_max):
    ``rel`` the cell's distance from the curve's start, ``e`` = expm1(-nu k), ``em`` = expm1(-nu)."""
    if nu == 0:
        return span * k - 0.0
    if nu * max(k, 1.0) < small_nu:
        gain = k * (1.0 + nu * (1.0 - k) / 2.0)
    else:
        gain = e / em
    return span * gain - rel * -e


@_jit
def _respond(G, n, e_set, e_reset, z, g_min, g_max, P, nu_set, nu_reset, em_set, em_reset, small_nu, noise,
             out):
    """out = clip(response(G, n) + noise sqrt(|n|) z, g_min, g_max) over flat arrays, as the array code:
    ``e_set`` = expm1(-nu_set |n| / P) (numpy's), ``em_set`` = expm1(-nu_set) (math's), the same for
    RESET; ``small_nu``: the series threshold (``update.SERIES_NU``); z is read only when noise > 0."""
    span = g_max - g_min
    for c in range(G.size):
        g = G[c]
        m = n[c]
        if m > 0:
            v = g + _move(m / P, g - g_min, e_set[c], em_set, nu_set, span, small_nu)
        elif m < 0:
            v = g - _move(-m / P, g_max - g, e_reset[c], em_reset, nu_reset, span, small_nu)
        else:
            v = g
        if noise > 0:
            v += noise * np.sqrt(abs(m)) * z[c]
        out[c] = min(max(v, g_min), g_max)
