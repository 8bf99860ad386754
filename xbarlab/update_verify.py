"""Write style 2 of ``xbarlab.update``: a digitally computed update written by program-and-verify.

``program_and_verify`` clips the target to the device's bounds and puts it on its levels, then runs rounds
of pulses (counted from the inverse of the SET and RESET curves, ``update.pulses_to``) and exact verify
reads until each cell is within the tolerance. ``split_update`` turns a change of a differential pair's
G+ - G- into the two cells' targets.
"""

from __future__ import annotations

import math

import numpy as np

from .arrays import check_real_number_types
from .device import DeviceParams
from .update import _check_rng, _check_state, _check_update, _pulses_to, apply_pulses
from .update_params import UpdateParams, VerifyResult, VerifySettings

__all__ = ["program_and_verify", "split_update"]


def program_and_verify(G, target, device: DeviceParams, update: UpdateParams,
                       settings: VerifySettings = VerifySettings(),
                       rng: np.random.Generator | None = None) -> VerifyResult:
    """Write ``target`` (S, e.g. G + a digitally computed ΔG) by program-and-verify.

    The target is clipped to [g_min, g_max] and put on the device's levels
    (``DeviceParams.quantize``; analog devices keep it). Each round gives every
    cell beyond ``settings.tolerance`` steps from its target the rounded
    number of pulses the noiseless curves ask for (``pulses_to``), applies
    them (``apply_pulses``, with write noise) and reads the result back
    exactly. A cell that needs less than half a pulse is left as it is.
    """
    if not isinstance(settings, VerifySettings):
        raise ValueError(f"settings must be an xbarlab.update.VerifySettings, got {type(settings).__name__}")
    _check_update(update)
    G = _check_state(G, device)
    check_real_number_types(target, "target")
    t = np.asarray(target, dtype=float)
    if t.shape != G.shape or not np.all(np.isfinite(t)):
        raise ValueError(f"target must be finite with G's shape {G.shape}, got shape {t.shape}")
    span = device.g_max - device.g_min
    t = device.quantize((np.clip(t, device.g_min, device.g_max) - device.g_min) / span)
    tol = settings.tolerance * update.step(device)
    rng = _check_rng(rng, update.gamma > 0)
    total = np.zeros(G.shape, dtype=np.int64)
    rounds = 0
    for rounds in range(1, settings.max_rounds + 1):
        n = np.where(np.abs(G - t) > tol, np.rint(_pulses_to(G, t, device, update)), 0.0).astype(np.int64)
        if not n.any():
            rounds -= 1
            break
        G = apply_pulses(G, n, device, update, rng)
        total += np.abs(n)
    return VerifyResult(g=G, pulses=total, rounds=rounds, unconverged=int(np.count_nonzero(np.abs(G - t) > tol)))


def split_update(gp: np.ndarray, gm: np.ndarray, half: np.ndarray, g_min: float, g_max: float):
    """Targets (G+, G-) for a change of 2 ``half`` in G+ - G- (S): +half on G+, -half on G-, and what a
    bound takes from one cell given to the other (a digital write knows both cells' states). gp, gm and half:
    finite arrays of one shape (a broadcast paired the wrong cells silently); g_min < g_max."""
    gp, gm, half = (np.asarray(a, dtype=float) for a in (gp, gm, half))
    if not (gp.shape == gm.shape == half.shape):
        raise ValueError(f"gp, gm and half must have one shape, got {gp.shape}, {gm.shape} and {half.shape}")
    if not (np.all(np.isfinite(gp)) and np.all(np.isfinite(gm)) and np.all(np.isfinite(half))):
        raise ValueError("gp, gm and half must be finite")
    if not (math.isfinite(g_min) and math.isfinite(g_max) and 0 <= g_min < g_max):
        raise ValueError(f"split_update needs finite 0 <= g_min < g_max (S), got {g_min!r} and {g_max!r}")
    tp, tm = gp + half, gm - half
    cp, cm = np.clip(tp, g_min, g_max), np.clip(tm, g_min, g_max)
    tp, tm = cp - (tm - cm), cm - (tp - cp)  # the remainder the bound refused, moved to the partner
    return np.clip(tp, g_min, g_max), np.clip(tm, g_min, g_max)
