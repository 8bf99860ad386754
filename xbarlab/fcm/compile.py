"""The compile step of the FCM's evaluation plans: a model's input-independent factors folded into its plan.

``compile_plan(fcm)`` picks the model's DAC-load strategy (``plans.RowsumPlan``,
``plans.ExactPlan``, ``plans.UnloadedPlan``) and folds into it, in numpy
float64, the ADC's units per ampere (per tile or per column), the weight of each
ADC output unit, the DAC's volt per code and the tile groups of the ROWSUM
closed form; ``Plan.to(ns)`` then moves the plan to a device and dtype. The plan
classes and their stages are in ``plans.py``.
"""

from __future__ import annotations

import numpy as np

from .mapping import Mapping
from .options import DacLoad
from .plans import ExactPlan, Layout, Plan, RowsumGroup, RowsumPlan, UnloadedPlan


#: the largest R_PD G_load (the DAC's pull-down times its row's load) evaluated: the loaded voltage's
#: denominator 1 + R_PD G_load (1 - c / full) then keeps ~10 digits in float64 at every code
MAX_DAC_LOAD = 1e6


def full_scale_columns(fs):
    """An ADC full scale (ampere) per tile (S, Tk, Tn) or per column (S, Tk, Tn, Nc) as (S, Tk, Tn, 1 or Nc),
    which broadcasts over columns; None stays None."""
    return fs if fs is None or fs.ndim == 4 else fs[..., None]


def _rowsum_groups(layout: Layout, A, B, GT, wt, fold: bool, cg=None) -> tuple:
    """The ROWSUM groups (tiles of one shape) from per-tile constants in (Tn, S, Tk, ...) order:
    A, B (.., M, 1), GT (.., Nc, M) in ADC input units per voltage unit, wt (Tn, S, Tk), cg (.., Nc, 1)
    the per-column ADC gain (None: 1)."""
    L = layout
    S, Tk, Tn, M, Nc = L.S, L.Tk, L.Tn, L.M, L.Nc
    Mr, Ncr = L.K - (Tk - 1) * M, L.N - (Tn - 1) * Nc
    tks = [(0, Tk - 1, M), (Tk - 1, Tk, Mr)] if Mr < M else [(0, Tk, M)]
    tns = [(0, Tn - 1, Nc), (Tn - 1, Tn, Ncr)] if Ncr < Nc else [(0, Tn, Nc)]
    groups = []
    for a, b, nc in tns:
        first = True
        for t0, t1, m in tks:
            if a == b or t0 == t1:
                continue
            Ag, Bg, Gg = A[a:b, :, t0:t1, :m], B[a:b, :, t0:t1, :m], GT[a:b, :, t0:t1, :nc, :m]
            common = dict(tn=(a, b), part="last" if m < M else "full", t0=t0, m=m, nc=nc, first=first,
                          w=np.ascontiguousarray(wt[a:b, :, t0:t1].reshape(b - a, 1, S * (t1 - t0))),
                          colgain=None if cg is None else np.ascontiguousarray(cg[a:b, :, t0:t1, :nc]))
            if fold and np.all(Bg > 1e-15):  # (B ~ R_PD G_load / full; tiny B: the A - B c form)
                # V = c / (A - B c) = (1/B) c / (alpha - c), alpha = A/B, with 1/B folded into the
                # tile's rows: one subtraction with a per-row constant (vectorizes well), one divide
                groups.append(RowsumGroup(**common, alpha=np.ascontiguousarray(Ag / Bg),
                                          G=np.ascontiguousarray(Gg / Bg[..., 0][..., None, :])))
            else:
                groups.append(RowsumGroup(**common, A=np.ascontiguousarray(Ag), B=np.ascontiguousarray(Bg),
                                          G=np.ascontiguousarray(Gg)))
            first = False
    return tuple(groups)


def compile_plan(fcm, q_sensed=None) -> Plan:
    """The plan of ``fcm`` (numpy float64): its strategy's class with every input-independent factor
    folded. ``Plan.to(ns)`` moves it to another namespace's device and dtype. ``q_sensed`` (S, Tk, Tn):
    ADC input units per ampere in place of the separate ADC's (a sensing scheme's ADC of the difference,
    ``sensing.compile_sensing``; only the plan's currents are then meaningful)."""
    S, Tk, Tn, M, Nc = fcm.Gn.shape
    K, N = fcm.shape
    spec, opts = fcm.spec, fcm.options
    dac, adc, dev = spec.dac, spec.adc, spec.device
    layout = Layout(S, Tk, Tn, M, Nc, K, N)
    fd = float(dac.full_code)
    fc = full_scale_columns(fcm.adc_full_scale_a)
    fs = fc.max(axis=-1)  # (S, Tk, Tn); fc (S, Tk, Tn, 1), or (S, Tk, Tn, Nc) calibrated per column:
    # each column's ADC input is scaled by its own full scale (q), the tile's weight by the tile's largest;
    # their ratio is the column's digital gain after its ADC (colgain; None, i.e. 1, per tile)
    colgain = None if fc.shape[-1] == 1 else fc / fs[..., None]
    cg = None if colgain is None else colgain.transpose(2, 0, 1, 3)[..., None]  # (Tn, S, Tk, Nc, 1)
    if adc.bits is None:
        q, wq = 1.0 / fc, fs
    elif adc.inl_lsb:
        q, wq = 1.0 / fc, fs / float(adc.full_code)
    else:
        q, wq = float(adc.full_code) / fc, fs / float(adc.full_code)
    # (a sensing scheme's ADC of the difference: its units per ampere, per tile)
    q = q if q_sensed is None else np.asarray(q_sensed, dtype=float)[..., None]
    dg = dev.g_max - dev.g_min
    if opts.mapping is Mapping.DIFFERENTIAL:  # G+ - G- (a lone array, S = 1, counts positive)
        sign, gain, off = np.array([1.0, -1.0][:S]), fcm.w_max / (dac.v_read * dg), 0.0
    else:
        sign, gain = np.array([1.0]), 2.0 * fcm.w_max / (dac.v_read * dg)
        off = gain * float(dev.quantize(0.5)) * dac.v_read / fd  # per unit of summed codes
    w = sign[:, None, None] * wq * gain  # (S, Tk, Tn): ADC output unit -> weight units
    bg = dev.sinh_b * opts.sinh_gamma
    vscale = dac.v_read / fd if bg == 0 else 1.0 / bg  # volt per unit of the voltage variable
    ksinh = 0.0 if bg == 0 else bg * dac.v_read / fd
    Gs = fcm.Gn * (vscale * q)[..., None, :]  # (S, Tk, Tn, M, Nc), ADC input units per code
    exact = opts.dac_load is DacLoad.EXACT and dac.r_pd > 0
    unloaded = dac.r_pd == 0 or opts.dac_load is DacLoad.NONE
    # The ADC's clip to [0, full] is provably a no-op when its full scale is the calibrated one
    # (the largest column current at full input, unloaded: v_read, or sinh(b v_read)/b, times the
    # largest column sum of Gn), every Gn >= 0 and the DAC output never exceeds v_read (ROWSUM:
    # V = V_th / (1 + R_th g) <= V_th <= v_read; unloaded: V = V_th): the ADC input then lies in
    # [0, full (1 + rounding)], and rounds into [0, full]. The clip is skipped only then.
    noclip = (adc.bits is not None and fcm.adc_worst_case and not adc.inl_lsb and not exact
              and bool(np.all(fcm.Gn >= 0)))
    if not unloaded:  # V = V_th / (1 + R_th G_load): at the top code 1 + R_PD G_load - R_PD G_load, whose 1
        # float64 loses (V off by ~1e-16 R_PD G_load relative; inf beyond 2**53): beyond MAX_DAC_LOAD, refused
        rg = dac.r_pd * float(np.max((1.0 if exact else opts.load_factor) * fcm.Gn.sum(axis=-1)))
        if not rg <= MAX_DAC_LOAD:
            raise ValueError(f"r_pd = {dac.r_pd!r} ohm times the largest row load ({rg / dac.r_pd:.3g} S) is {rg:.3g}, "
                             f"beyond the {MAX_DAC_LOAD:g} whose loaded DAC voltage float64 resolves")
    common = dict(layout=layout, adc=adc, w=np.ascontiguousarray(w.transpose(2, 0, 1).reshape(Tn, 1, S * Tk)),
                  q=q[..., None], off=off, ksinh=ksinh, noclip=noclip)
    if exact:
        return ExactPlan(**common, dac=dac, Y=fcm.Y, Gq=fcm.Gn * q[..., None, :], bg=bg, colgain=cg)
    if unloaded:  # (the per-column gain folded into each column's weight: wc (S, Tk, Tn, 1 or Nc))
        wc, weff = w[..., None] if colgain is None else w[..., None] * colgain, None
        if adc.bits is None:  # linear after the (shared) DAC: the whole layer is one matrix
            weff = np.einsum("stnc,stnmc->tmnc", np.broadcast_to(wc * vscale * q, (S, Tk, Tn, Nc)), fcm.Gn)
            weff = np.ascontiguousarray(weff.reshape(Tk * M, Tn * Nc)[:K, :N].T)
        wcat = np.broadcast_to(wc.transpose(1, 2, 0, 3)[..., None], (Tk, Tn, S, Nc, 1))
        return UnloadedPlan(**common, GcatT=np.ascontiguousarray(Gs.transpose(1, 2, 0, 4, 3).reshape(Tk, Tn * S * Nc, M)),
                            wcat=np.ascontiguousarray(wcat.reshape(Tk, Tn * S * Nc, 1)), WeffT=weff)
    A, B = dac.load_terms(opts.load_factor * fcm.Gn.sum(axis=-1))  # (S, Tk, Tn, M)
    # V = (v/full) c / (A - B c): the factor v/full (vscale, or 1/(b g) with k on the voltage side) is in Gs
    groups = _rowsum_groups(layout, A.transpose(2, 0, 1, 3)[..., None], B.transpose(2, 0, 1, 3)[..., None],
                            Gs.transpose(2, 0, 1, 4, 3), w.transpose(2, 0, 1), fold=ksinh == 0, cg=cg)
    fusable = (not ksinh and adc.bits is not None and not adc.inl_lsb and cg is None
               and all(g.alpha is not None for g in groups))
    return RowsumPlan(**common, groups=groups, fusable=fusable)
