"""Sensing schemes: where the subtraction of a signed weight's two currents happens (``Sensing``).

* ``SEPARATE`` (default): each array column has its own ADC (full scale: its largest column current
  at full input) and the pair's (or the offset's) subtraction is digital, after the ADCs. The plans of
  ``xbarlab.fcm.plans`` as they are.
* ``DIFFERENTIAL``: the column currents of the pair G+, G- are subtracted in the analog domain, before
  one ADC per column pair. Modelled as *ideal current subtraction* d = I+ - I- (as the
  current-mirror / differential sense amplifiers of RRAM macros do it, e.g. PRIME, Chi et al.,
  ISCA 2016, and the differential current sensing of Mochida et al., VLSI 2018: two arrays (or two
  columns) for w+ and w-, one sense circuit per pair). The mirror's own error is not modelled.
* ``REFERENCE``: the offset mapping G = q((w / w_max + 1) / 2) on one array, plus one reference
  column per tile whose cells are all programmed to the mid level q(1/2) (the conductance of w = 0).
  The reference column is a real column of the tile: it shares the rows (and their DAC load, driver
  and wire resistance) with the data columns, so the tile is rows x (cols + 1) and every parasitic of
  the reference column is in G_non-ideal and in the ngspice circuit. Its current, the array's
  common mode sum_i V_i q(1/2) as the circuit really delivers it, is subtracted (ideally) from every
  data column of the tile before that column's ADC; nothing is subtracted digitally. Reference cells
  are programmed devices: variation and faults are drawn for them like for every cell.

The ADC of a difference is bipolar, two's complement: ``bits`` bits, codes -2**(bits-1) ..
2**(bits-1) - 1, LSB = I_fs / 2**(bits-1), d clipped to that range. Its full scale I_fs (per tile,
ampere) is the fixed ``ADCParams.full_scale_a`` when given, else the worst case of the difference,
the analogue of the separate ADC's rule: v * max_j sum_i |Ga[i, j] - Gb[i, j]| on G_non-ideal
(v = v_read, or sinh(b g v_read) / (b g) for sinh cells), which bounds |d| where both arrays see the same
row voltages in [0, v_read]; under a loaded DAC (R_PD > 0) each array's rows droop by their own load, so
d can in principle exceed it (none found in the tests), and is clipped then like any ADC input. Ga, Gb are the pair, or the data column and the reference column. The range holds no
common-mode current (the separate ADC's spends g_min / g_max of it on G_min), but the sign costs one
bit (so ``bits`` >= 2: 1 bit, codes -1..0, would read every positive difference as 0; refused), and
sum_i |Ga - Gb| can exceed a separate array's largest column sum (rows of both signs).
ADC INL is not modelled for these schemes (refused).

``SensingPlan`` wraps the model's DAC-load plan (``compile.compile_plan``): its ``currents`` stage is
that plan's, every column (the reference column included) in ampere; ``evaluate`` subtracts, runs the
bipolar ADC and accumulates over row tiles and phases. The oracle is ``xbarlab.verify.reference``.
For DIFFERENTIAL the base plan's products give each array's current in units of the difference's LSB,
and on CPU with the fused kernels, under the ROWSUM load with linear cells, the difference, the ADC and
the accumulation run in one pass per block of tiles (``cpu_kernels.diff_accumulate``) on the base plan's
blocks, both arrays of a pair in every block. The pair's two products are merged into one with
G+ - G- only where both arrays see the same row voltages: the unloaded DAC (``DacLoad.NONE``, or
R_PD = 0: V = V_th, or sinh of it, for both). Under a loaded DAC (ROWSUM, EXACT) each array's row
voltages depend on its own row conductances, so the two arrays of a pair see different voltages and
both products are computed.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass

import numpy as np

from . import cpu_kernels
from .mapping import Mapping
from .options import Sensing
from .compile import compile_plan
from .plans import Plan, RowsumPlan, UnloadedPlan, _Arrays


def with_reference_column(G: np.ndarray, device) -> np.ndarray:
    """Offset-mapped tiles (1, Tk, Tn, M, Nc) -> (1, Tk, Tn, M, Nc + 1): the last column at q(1/2) (siemens)."""
    ref = np.full(G.shape[:-1] + (1,), float(device.quantize(0.5)))
    return np.concatenate([G, ref], axis=-1)


def data_cols(fcm) -> int:
    """Data columns per tile (the reference column, when there is one, is not one)."""
    return fcm.spec.cols


def difference(I, sensing: Sensing, nc: int):
    """Analog difference (..., Tk, Tn, Nc, X) of column currents I (..., S, Tk, Tn, Nc', X) (S the axis -5)."""
    if sensing is Sensing.DIFFERENTIAL:
        return I[..., 0, :, :, :, :] - I[..., 1, :, :, :, :] if I.shape[-5] == 2 else I[..., 0, :, :, :, :]
    return I[..., 0, :, :, :nc, :] - I[..., 0, :, :, nc:nc + 1, :]


def full_scale(spec, options, Gn: np.ndarray) -> np.ndarray:
    """ADC full scale (1, Tk, Tn), ampere, of the difference (the module's rule)."""
    adc = spec.adc
    if adc.full_scale_a is not None:
        return np.full((1,) + Gn.shape[1:3], adc.full_scale_a)
    v = spec.dac.v_read
    b = spec.device.sinh_b * options.sinh_gamma
    if b > 0:
        v = math.sinh(b * v) / b
    nc = spec.cols
    if options.sensing is Sensing.DIFFERENTIAL:  # (Tk, Tn, M, Nc): Ga - Gb
        d = Gn[0] - Gn[1] if Gn.shape[0] == 2 else Gn[0]
    else:
        d = Gn[0, ..., :nc] - Gn[0, ..., nc:nc + 1]
    fs = v * np.abs(d).sum(axis=-2).max(axis=-1)
    return np.where(fs > 0, fs, 1.0)[None]


def code_range(adc) -> tuple[float, float]:
    """The bipolar ADC's lowest and highest code."""
    h = 2.0 ** (adc.bits - 1)
    return -h, h - 1.0


def lsb_a(adc, fs):
    """Ampere per code of the bipolar ADC of full scale fs (ampere); fs itself for an ideal ADC."""
    return fs if adc.bits is None else fs / 2.0 ** (adc.bits - 1)


def gain(fcm) -> float:
    """Weight units per ampere of difference (per unit of DAC scale)."""
    dac, dev = fcm.spec.dac, fcm.spec.device
    g = fcm.w_max / (dac.v_read * (dev.g_max - dev.g_min))
    return 2.0 * g if fcm.options.mapping is Mapping.OFFSET else g


def check(spec, options) -> None:
    """ValueError for a setting these schemes do not model."""
    if options.sensing is not Sensing.SEPARATE and spec.adc.inl_lsb:
        raise ValueError(f"inl_lsb is not modelled with sensing={options.sensing.value!r}; "
                         f"got inl_lsb={spec.adc.inl_lsb!r}")
    if options.sensing is not Sensing.SEPARATE and spec.adc.bits is not None and spec.adc.bits < 2:
        # (two's complement of 1 bit: codes -1 .. 0, every positive difference read as 0)
        raise ValueError(f"bits must be >= 2 for the bipolar ADC of sensing={options.sensing.value!r} (the sign "
                         f"takes one bit), got bits={spec.adc.bits!r}")
    from .ranges import WorstCase

    if options.sensing is not Sensing.SEPARATE and not isinstance(options.adc_range, WorstCase):
        raise ValueError(f"adc_range {options.adc_range!r} is not modelled with sensing={options.sensing.value!r} "
                         "(its ADC of the difference takes the worst-case range)")


@dataclass(frozen=True, eq=False)
class SensingPlan(_Arrays):
    """Subtraction before the ADC on top of a DAC-load plan ``base``. ``u`` (Tk, Tn, 1, 1): ADC input
    units per ampere of difference (1/LSB; 1 for an ideal ADC); ``wu`` (Tk, Tn, 1, 1): weight units per
    ADC unit; ``lo``, ``hi``: the code range (None: ideal ADC); ``nc`` data columns, ``n`` outputs.
    ``wd``: per group of a fusable ROWSUM base (DIFFERENTIAL, linear cells), its tiles' ``wu`` (n, t)
    for ``cpu_kernels.diff_accumulate``; empty otherwise. ``base``'s products are then in ADC units.
    ``GdT`` (Tk, Tn*Nc, M), ``wdT`` (Tk, Tn*Nc, 1): with an unloaded DAC base (DIFFERENTIAL), the pair
    merged, (G+ - G-) in ADC units per voltage unit, and each tile's ``wu``; None otherwise."""

    base: Plan
    sensing: Sensing
    u: object
    wu: object
    lo: float | None
    hi: float | None
    nc: int
    n: int
    wd: tuple = ()
    GdT: object = None
    wdT: object = None

    def currents(self, ns, codes, fused: bool = False):
        """Every column's current (S, Tk, Tn, Nc', PR), ampere, the reference column last (``base``)."""
        return self.base.currents(ns, codes, fused)

    #: the sensed difference needs no column sums of the codes (``Plan.uses_code_sums``)
    uses_code_sums = False

    def evaluate(self, ns, codes, R: int, fused: bool = False, code_sums=None):
        """y^T (N, R) from DAC codes (K, PR), before the DAC scale (``Plan.evaluate``; ``code_sums`` unused)."""
        if fused and self.wd:
            return self._evaluate_fused(ns, codes, R)
        if self.GdT is not None:  # one product per tile with the merged pair (same row voltages)
            V = self.base._row_blocks(ns, codes)
            D = ns.matmul(self.GdT, ns.sinh_(V * self.base.ksinh) if self.base.ksinh else V)  # (Tk, Tn*Nc, PR)
            wu = self.wdT
        else:
            D = difference(self.base.currents(ns, codes, fused), self.sensing, self.nc) * self.u  # (Tk, Tn, Nc, PR)
            wu = self.wu
        if self.lo is not None:
            ns.round_(D)
            ns.clip_(D, self.lo, self.hi)
        ns.mul_(D, wu)
        PR = codes.shape[1]
        L = self.base.layout  # (Tn * Nc rows, not -1: an empty batch, PR = 0, has no size to infer them from)
        y = ns.reshape(ns.sum(D, 0), (L.Tn * self.nc, PR))[:self.n]
        return y[:, :R] - y[:, R:] if PR != R else y

    def _evaluate_fused(self, ns, codes, R: int):
        """``evaluate`` on host memory: per block of tiles of the ROWSUM base (both arrays of a pair),
        ``cpu_kernels.diff_accumulate`` on the block's products, straight into y."""
        base, PR = self.base, codes.shape[1]
        L = base.layout
        y = ns.empty((L.Tn, L.Nc, PR))  # every row < N is written by its first group; the rest is dropped
        yn, kern = ns.np(y), cpu_kernels.kernels()
        quantize = self.lo is not None
        lo, hi = ns.scalar(self.lo if quantize else 0.0), ns.scalar(self.hi if quantize else 0.0)
        wds = dict(zip(map(id, base.groups), self.wd))
        for g, tn, _, tk, first, I in base._blocks(ns, codes, True, pairs=True):
            n, _, t_, nc = I.shape[:4]
            wd = ns.np(wds[id(g)])
            w = wd if wd.shape == (n, t_) else np.ascontiguousarray(wd[tn, tk])
            y0 = g.tn[0] + tn.start
            kern.diff_accumulate(ns.np(I), w, lo, hi, quantize, yn[y0:y0 + n, :nc], first)
        y = ns.reshape(y, (L.Tn * L.Nc, PR))[:self.n]
        return y[:, :R] - y[:, R:] if PR != R else y


def compile_sensing(fcm):
    """The plan of ``fcm``: ``compile.compile_plan`` for SEPARATE, else a ``SensingPlan`` around it."""
    opts = fcm.options
    if opts.sensing is Sensing.SEPARATE:
        return compile_plan(fcm)
    S, Tk, Tn, M, Ncp = fcm.Gn.shape
    # REFERENCE: the base plan computes every physical column (N' = Tn Nc': no column is padding to it,
    # the reference column is a real one); DIFFERENTIAL: the data columns, the zero padding's past N
    # not computed (0, as with SEPARATE; their difference is dropped anyway)
    diff = opts.sensing is Sensing.DIFFERENTIAL  # (the base's products in units of the difference's LSB)
    view = types.SimpleNamespace(Gn=fcm.Gn, Y=fcm.Y, spec=fcm.spec, options=opts, w_max=fcm.w_max,
                                 shape=fcm.shape if diff else (fcm.shape[0], Tn * Ncp),
                                 adc_full_scale_a=fcm.adc_full_scale_a,
                                 adc_worst_case=False)  # only its current stage is used here
    adc = fcm.spec.adc
    fs = fcm.adc_full_scale_a[0]  # (Tk, Tn)
    lsb = lsb_a(adc, fs)
    base = compile_plan(view, q_sensed=(1.0 / lsb)[None] if diff else None)
    lo, hi = (None, None) if adc.bits is None else code_range(adc)
    u = (1.0 / lsb)[..., None, None]
    wl = lsb * gain(fcm)  # (Tk, Tn)
    wd = ()
    if diff and isinstance(base, RowsumPlan) and not base.ksinh and all(g.alpha is not None for g in base.groups):
        wd = tuple(np.ascontiguousarray(wl[g.t0:g.t0 + g.G.shape[2], g.tn[0]:g.tn[1]].T) for g in base.groups)
    GdT = wdT = None
    if diff and isinstance(base, UnloadedPlan):  # V = V_th for both arrays: (G+ - G-) in one product
        G = base.GcatT.reshape(Tk, Tn, S, Ncp, M)
        GdT = np.ascontiguousarray((G[:, :, 0] - G[:, :, 1] if S == 2 else G[:, :, 0]).reshape(Tk, Tn * Ncp, M))
        wdT = np.ascontiguousarray(np.repeat(wl, Ncp, axis=1)[..., None])  # (Tk, Tn*Nc, 1)
    return SensingPlan(base=base, sensing=opts.sensing, u=u, wu=wl[..., None, None], lo=lo, hi=hi,
                       nc=data_cols(fcm), n=fcm.shape[1], wd=wd, GdT=GdT, wdT=wdT)
