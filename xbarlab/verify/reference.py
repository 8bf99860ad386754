"""The FCM evaluated stage by stage, in plain float64 numpy: the oracle of ``FCM.matmul``.

Each stage is one small function on full arrays, in the order the hardware
works (RxNN paper section V), with no folding of constants and no fused loops:

1. ``dac_codes``: input scale per vector (max |x|, or the fixed ``x_max``)
   and DAC codes round(x / scale * full), clipped; signed inputs give two
   phases (positive part, negative part);
2. ``tile_codes``: the codes of each row block of tiles (zero padded);
3. ``loaded_voltages``: each row DAC's output under its load
   (``DACParams.v_loaded`` for ROWSUM with G_load = kappa sum_j Gn[i, j],
   ``DACParams.v_loaded_ports``, the row-port solve, for EXACT, with the row-port
   admittance of the cells' linear conductances, ``cell_conductances``: G_eff for
   1T-1R cells; V_th for NONE: the package's DAC-load formulas, which the fast
   plans fold but do not restate);
4. ``tile_currents``: I = f(V) @ Gn per tile (f = sinh(b g V) / (b g) for sinh cells);
5. ``adc``: the column ADC's codes (``adc_input`` gives its input in LSB);
6. ``accumulate``: ADC values back to ampere, the differential pair (or the
   offset mapping's digital offset), the row tiles, the phases (a vector's
   negative phase of all-zero codes is not converted: it has no negative
   entry), and the scale to weight units.

``evaluate`` chains them; ``xbarlab.verify.spice_reference`` swaps stage 3-4
for ngspice on the full circuit. Shapes: P phases, B vectors, S arrays of the
pair, Tk x Tn tiles of M x Nc.
"""

from __future__ import annotations

import numpy as np

from ..backend import NumpyNS
from ..engines.ports import row_port_admittance_stack
from ..fcm import sensing as sens
from ..fcm.cells import effective_tiles
from ..fcm.mapping import Mapping
from ..fcm.model import FCM, DacLoad
from ..fcm.options import Sensing


def dac_codes(fcm: FCM, x) -> tuple[np.ndarray, np.ndarray]:
    """(codes (P, B, K), scale (B,)) of inputs x (B, K); P = 2 when any input is negative. ValueError for
    an x of another width or with NaN/Inf (as ``FCM.matmul``; a NaN became a NaN code)."""
    x = np.asarray(x, dtype=float)
    K = fcm.shape[0]
    if x.ndim != 2 or x.shape[1] != K:
        raise ValueError(f"x must be (B, {K}), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite; found NaN or Inf")
    full = float(fcm.spec.dac.full_code)
    signed = bool(np.any(x < 0))
    if fcm.options.x_max is not None:
        scale = np.full(x.shape[0], fcm.options.x_max)
    else:
        scale = np.max(np.abs(x) if signed else x, axis=1)
        scale = np.where(scale > 0, scale, 1.0)
    xf = x / scale[:, None]
    phases = [xf, -xf] if signed else [xf]
    return np.stack([np.clip(np.rint(p * full), 0.0, full) for p in phases]), scale


def tile_codes(fcm: FCM, codes: np.ndarray) -> np.ndarray:
    """codes (P, B, K) -> (P, B, Tk, M), the last row block zero padded (code 0: 0 V behind R_PD)."""
    S, Tk, Tn, M, Nc = fcm.Gn.shape
    P, B, K = codes.shape
    padded = np.zeros((P, B, Tk * M))
    padded[..., :K] = codes
    return padded.reshape(P, B, Tk, M)


def loaded_voltages(fcm: FCM, tc: np.ndarray) -> np.ndarray:
    """Row voltages V (P, B, S, Tk, Tn, M) at the crossbar's row sources for tile codes tc (P, B, Tk, M).

    The DAC-load formulas are ``DACParams``' own: ``v_loaded`` (ROWSUM, G_load = kappa sum_j Gn[i, j]),
    ``v_loaded_ports`` (EXACT, with the row-port admittance of ``cell_conductances``), ``thevenin`` (NONE)."""
    S, Tk, Tn, M, Nc = fcm.Gn.shape
    dac = fcm.spec.dac
    c = tc[:, :, None, :, None, :]  # (P, B, 1, Tk, 1, M)
    shape = tc.shape[:2] + (S, Tk, Tn, M)
    mode = fcm.options.dac_load
    if mode is DacLoad.NONE or dac.r_pd == 0:
        return np.broadcast_to(dac.thevenin(c)[0], shape).copy()
    if mode is DacLoad.ROWSUM:
        return dac.v_loaded(c, fcm.options.load_factor * fcm.Gn.sum(axis=-1))
    Y = row_port_admittance_stack(cell_conductances(fcm).reshape(-1, M, Nc), fcm.spec.circuit)
    return dac.v_loaded_ports(dac.check_codes(c), Y.reshape(S, Tk, Tn, M, M), NumpyNS())


def cell_conductances(fcm: FCM) -> np.ndarray:
    """The linear conductances (S, Tk, Tn, M, Nc), siemens, of the cells the FCM's crossbar model sees: the
    programmed G, or for 1T-1R cells their G_eff at the operating point (``xbarlab.fcm.cells``), on which
    G_non-ideal and the row-port admittance of EXACT are built."""
    if fcm.spec.device.access is None:
        return fcm.G
    return effective_tiles(fcm.G, fcm.spec)


def tile_currents(fcm: FCM, V: np.ndarray) -> np.ndarray:
    """Column currents (A) (P, B, S, Tk, Tn, Nc) of every tile for row voltages V (P, B, S, Tk, Tn, M)."""
    bg = fcm.spec.device.sinh_b * fcm.options.sinh_gamma
    f = np.sinh(bg * V) / bg if bg > 0 else V
    return np.einsum("pbstnm,stnmc->pbstnc", f, fcm.Gn)


def sensed(fcm: FCM, I: np.ndarray) -> np.ndarray:
    """What reaches the ADCs (..., S', Tk, Tn, Nc) from column currents I (..., S, Tk, Tn, Nc'): I itself
    (SEPARATE), or the analog difference with S' = 1: I+ - I- (DIFFERENTIAL), each data column minus the
    tile's reference column (REFERENCE) (``xbarlab.fcm.sensing``)."""
    s = fcm.options.sensing
    if s is Sensing.SEPARATE:
        return I
    nc = fcm.spec.cols
    if s is Sensing.DIFFERENTIAL:
        d = I[..., 0, :, :, :] - I[..., 1, :, :, :] if I.shape[-4] == 2 else I[..., 0, :, :, :]
    else:
        d = I[..., 0, :, :, :nc] - I[..., 0, :, :, nc:nc + 1]
    return d[..., None, :, :, :]


def adc_input(fcm: FCM, I: np.ndarray) -> np.ndarray:
    """The ADC's input in LSB (before rounding, INL included): I / I_fs * full + INL; I (..., S, Tk, Tn, Nc).

    Sensing schemes: the difference (``sensed``) over the bipolar ADC's LSB, I_fs / 2**(bits-1)."""
    adc = fcm.spec.adc
    if fcm.options.sensing is not Sensing.SEPARATE:
        return sensed(fcm, I) / sens.lsb_a(adc, fcm.adc_full_scale_a)[..., None]
    u = I / fcm.adc_full_scale_columns  # (S, Tk, Tn, 1 or Nc)
    x = u * float(adc.full_code)
    return x + adc.inl(u) if adc.inl_lsb else x


def adc(fcm: FCM, I: np.ndarray) -> np.ndarray:
    """ADC codes (..., S, Tk, Tn, Nc) of column currents I; the currents themselves for an ideal ADC."""
    if fcm.spec.adc.bits is None:
        return sensed(fcm, I)
    if fcm.options.sensing is not Sensing.SEPARATE:
        return np.clip(np.rint(adc_input(fcm, I)), *sens.code_range(fcm.spec.adc))
    return np.clip(np.rint(adc_input(fcm, I)), 0.0, float(fcm.spec.adc.full_code))


def adc_values(fcm: FCM, D: np.ndarray) -> np.ndarray:
    """The digital column values in ampere of ADC codes D (the currents for an ideal ADC)."""
    if fcm.spec.adc.bits is None:
        return D
    if fcm.options.sensing is not Sensing.SEPARATE:
        return D * sens.lsb_a(fcm.spec.adc, fcm.adc_full_scale_a)[..., None]
    return D * (fcm.adc_full_scale_columns / float(fcm.spec.adc.full_code))


def accumulate(fcm: FCM, D: np.ndarray, codes: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """y (B, N) in weight units from ADC codes D (P, B, S, Tk, Tn, Nc), DAC codes (P, B, K) and scale (B,)."""
    spec = fcm.spec
    dac, dev = spec.dac, spec.device
    A = adc_values(fcm, D).sum(axis=3)  # over the row tiles: (P, B, S, Tn, Nc)
    gain = fcm.w_max / (dac.v_read * (dev.g_max - dev.g_min))  # ampere per volt-siemens -> weight
    if fcm.options.sensing is not Sensing.SEPARATE:  # subtracted before the ADC: nothing left to do
        I, gain = A[:, :, 0], sens.gain(fcm)
    elif fcm.options.mapping is Mapping.DIFFERENTIAL:
        I = A[:, :, 0] - A[:, :, 1] if A.shape[2] == 2 else A[:, :, 0]  # I+ - I- (or a lone array)
    else:  # G = q((w / w_max + 1) / 2): twice the gain, minus the mid-level cells' ideal current
        gain *= 2.0
        off = codes.sum(axis=-1) * float(dev.quantize(0.5)) * dac.v_read / dac.full_code  # (P, B)
        I = A[:, :, 0] - off[..., None, None]
    y = I.reshape(I.shape[:2] + (-1,))[..., :fcm.shape[1]] * gain  # (P, B, N)
    if y.shape[0] == 2:  # (a vector's negative phase of all-zero codes is not converted: 0, not the ADC's offset)
        y = y[0] - y[1] * (codes[1].sum(axis=-1) > 0)[:, None]
    else:
        y = y[0]
    return y * scale[:, None]


def evaluate(fcm: FCM, x) -> dict:
    """Every stage of ``fcm.matmul(x)`` for x (B, K): a dict of the arrays above, ``y`` the output."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    codes, scale = dac_codes(fcm, x)
    tc = tile_codes(fcm, codes)
    V = loaded_voltages(fcm, tc)
    I = tile_currents(fcm, V)
    D = adc(fcm, I)
    return {"codes": codes, "scale": scale, "tile_codes": tc, "V": V, "I": I, "D": D,
            "y": accumulate(fcm, D, codes, scale)}
