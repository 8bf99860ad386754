"""Evaluation plans of the FCM: one small frozen class per DAC-load strategy (see README.md).

``compile.compile_plan`` folds every input-independent constant of a model
(numpy float64) into its strategy's class; ``Plan.to(ns)`` moves it to a device and
dtype (``FCM.compile`` keeps one per (device, dtype)). On DAC codes laid out
transposed, (K, P*R), every plan has two stages: ``currents``, the tile column
currents before the ADC (S, Tk, Tn, Nc, P*R) ampere (the zero padding's
columns past N: 0); ``evaluate``, the same currents by the same code, then the
column ADC and the digital accumulation over row tiles, pair (or offset) and
phases, (N, R) before the inputs' DAC scale. ``RowsumPlan``: the paper's closed
form (``DACParams.load_terms`` folded per tile row); ``ExactPlan``: the row-port
solve (``DACParams.v_loaded_ports``); ``UnloadedPlan``: V = V_th (NONE, or
R_PD = 0). Each tile's conductances are scaled so that its product gives the
ADC's input in its units, and zero-padded rows and columns are not computed
(a padded row has code 0: V = 0 exactly). A new strategy (a sensing scheme, a
backward read, non-linear cells) is a new ``Plan`` subclass, chosen in ``compile.compile_plan``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..peripherals.adc import ADCParams
from ..peripherals.dac import DACParams
from . import cpu_kernels
from .stages import adc_codes

#: bytes of the per-tile work arrays (DAC voltages, ADC inputs) of ROWSUM evaluated at a time:
#: tiles are taken in blocks so that these arrays stay in cache between their few passes
GROUP_BYTES = 2 * 2**20


@dataclass(frozen=True)
class Layout:
    """Tile shapes: S arrays (2 for a differential pair), Tk x Tn tiles of M x Nc, weights K x N."""

    S: int
    Tk: int
    Tn: int
    M: int
    Nc: int
    K: int
    N: int

    @property
    def Kf(self) -> int:
        """Rows of the full row blocks (the last block is partial when K is not a multiple of M)."""
        return (self.Tk - 1) * self.M if self.K < self.Tk * self.M else self.Tk * self.M


def _replace(obj, **changes):
    """``dataclasses.replace`` for the plan classes (frozen, every field set by ``__init__``, no
    ``__post_init__``): a shallow copy with ``changes``, without re-running ``__init__`` (a training step
    rebuilds its plans, and replace was most of a plan's move to torch)."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    return new


class _Arrays:
    """Mixin of frozen dataclasses whose array fields move to a namespace with ``to``."""

    def to(self, ns):
        """The same object with every numpy array field as a constant of ``ns`` (its device and dtype)."""
        def conv(v):
            if isinstance(v, np.ndarray):
                return ns.const(v)
            return tuple(conv(u) for u in v) if isinstance(v, tuple) else v.to(ns) if isinstance(v, _Arrays) else v

        # (every attribute of a plan is one of its fields: ``__dict__`` is ``dataclasses.fields`` here, faster)
        return _replace(self, **{k: conv(v) for k, v in self.__dict__.items()})


@dataclass(frozen=True, eq=False)
class Plan(_Arrays):
    """What every plan holds. ``w`` (Tn, 1, S*Tk): each tile's ADC-output-to-weight factor, tiles in
    (Tn, S, Tk) order; ``q`` (S, Tk, Tn, 1 or Nc, 1): ADC input units per ampere; ``off``: the offset
    mapping's digital offset per unit of summed codes (0 otherwise); ``ksinh``: the sinh argument per
    unit of the voltage variable (0: linear cells); ``noclip``: the ADC's clip provably cannot act."""

    layout: Layout
    adc: ADCParams
    w: object
    q: object
    off: float
    ksinh: float
    noclip: bool

    def currents(self, ns, codes, fused: bool = False):
        """Tile column currents (S, Tk, Tn, Nc, PR), ampere, before the ADC, of DAC codes (K, PR)."""
        raise NotImplementedError

    def evaluate(self, ns, codes, R: int, fused: bool = False, code_sums=None):
        """y^T (N, R) from DAC codes (K, PR), PR = R or 2R (two phases), before the DAC scale;
        ``fused``: the fused CPU kernels may run (host memory, numba); ``code_sums`` (PR,): each
        column's sum of codes, when the caller made them with the codes (``uses_code_sums``), else
        None (summed here)."""
        raise NotImplementedError

    @property
    def reads_offset(self) -> bool:
        """Whether the ADC reads a code > 0 at 0 A (its INL at 0 rounds to >= 1 LSB)."""
        return bool(self.adc.bits is not None and self.adc.inl_lsb and np.rint(self.adc.inl_lsb[0]) > 0)

    @property
    def uses_code_sums(self) -> bool:
        """Whether ``evaluate`` needs each column's sum of codes (the offset mapping's digital offset, or
        the negative phases not converted where the ADC reads an offset, ``_finish``)."""
        return bool(self.off) or self.reads_offset

    def _finish(self, ns, y, codes, R: int, code_sums=None):
        """(Tn, Nc, PR) or (N, PR) digital sums -> y^T (N, R): padding dropped, offset removed, phases.
        ``code_sums``: the codes' column sums when given (``evaluate``)."""
        L = self.layout
        PR = codes.shape[1]
        if y.ndim != 2 or y.shape[0] != L.N:
            y = ns.reshape(y, (L.Tn * L.Nc, PR))[:L.N]
        if self.off:  # (in place: y is the plan's own new array)
            y = ns.sub(y, (ns.sum(codes, 0) if code_sums is None else code_sums)[None, :] * self.off, out=y)
        if PR != R:
            yn = y[:, R:]
            if self.reads_offset:  # a vector without negative codes has no negative phase: its all-zero one is not
                # converted (it read the ADC's offset, and a vector's y depended on whether its batch was signed)
                cs = ns.sum(codes, 0) if code_sums is None else code_sums
                yn = ns.where(cs[None, R:] > 0, yn, yn * 0)
            y = y[:, :R] - yn
        return y

    def _row_blocks(self, ns, codes):
        """codes (K, PR) -> (Tk, M, PR), the last row block zero padded (code 0: V = 0 exactly)."""
        L = self.layout
        PR = codes.shape[1]
        c = codes if L.K == L.Tk * L.M else ns.cat([codes, ns.zeros((L.Tk * L.M - L.K, PR))], 0)
        return ns.reshape(c, (L.Tk, L.M, PR))

    def _amperes(self, ns, I):
        """ADC input units (S, Tk, Tn, Nc, PR) -> ampere, the zero padding's columns past N set to 0."""
        I = I / self.q
        L = self.layout
        if L.N < L.Tn * L.Nc:
            I[:, :, -1, L.N - (L.Tn - 1) * L.Nc:] = 0.0
        return I


@dataclass(frozen=True, eq=False)
class UnloadedPlan(Plan):
    """V = V_th (``DacLoad.NONE`` or R_PD = 0). ``GcatT`` (Tk, Tn*S*Nc, M): every tile of a row block
    stacked, rows ordered (tn, s, nc); ``wcat`` (Tk, Tn*S*Nc, 1) their weights; ``WeffT`` (N, K): the
    whole layer as one matrix when the ADC is ideal (the evaluation is then linear after the DAC)."""

    GcatT: object = None
    wcat: object = None
    WeffT: object = None

    def _adc_input(self, ns, codes):
        V = self._row_blocks(ns, codes)
        V = ns.sinh_(V * self.ksinh) if self.ksinh else V  # (V * k: the codes stay intact)
        return ns.matmul(self.GcatT, V)  # (Tk, Tn*S*Nc, PR)

    def currents(self, ns, codes, fused: bool = False):
        L = self.layout
        I = ns.reshape(self._adc_input(ns, codes), (L.Tk, L.Tn, L.S, L.Nc, codes.shape[1]))
        return self._amperes(ns, ns.contiguous(ns.permute(I, (2, 0, 1, 3, 4))))

    def evaluate(self, ns, codes, R: int, fused: bool = False, code_sums=None):
        L = self.layout
        PR = codes.shape[1]
        if self.WeffT is not None:
            return self._finish(ns, ns.matmul(self.WeffT, ns.sinh_(codes * self.ksinh) if self.ksinh else codes),
                                codes, R, code_sums)
        D = adc_codes(ns, self._adc_input(ns, codes), self.adc, not self.noclip)
        ns.mul_(D, self.wcat)
        return self._finish(ns, ns.sum(ns.reshape(ns.sum(D, 0), (L.Tn, L.S, L.Nc, PR)), 1), codes, R, code_sums)


@dataclass(frozen=True, eq=False)
class ExactPlan(Plan):
    """V = solve(I + diag(R_th) Y, V_th) per tile and input vector (``DACParams.v_loaded_ports``).
    ``Y`` (S, Tk, Tn, M, M) row-port admittance, ``Gq`` (S, Tk, Tn, M, Nc) = Gn * q, ``bg`` the sinh
    cells' b * gamma (0: linear), ``colgain`` (Tn, S, Tk, Nc, 1) the per-column ADC gain (None: 1)."""

    dac: DACParams = None
    Y: object = None
    Gq: object = None
    bg: float = 0.0
    colgain: object = None

    def _adc_input(self, ns, codes):
        c = ns.permute(self._row_blocks(ns, codes), (0, 2, 1))[None, :, None]  # (1, Tk, 1, PR, M)
        V = self.dac.v_loaded_ports(c, self.Y[:, :, :, None], ns)  # (S, Tk, Tn, PR, M)
        if self.bg:
            V = ns.sinh(V * self.bg) / self.bg
        return ns.matmul(V, self.Gq)  # (S, Tk, Tn, PR, Nc)

    def currents(self, ns, codes, fused: bool = False):
        return self._amperes(ns, ns.contiguous(ns.permute(self._adc_input(ns, codes), (0, 1, 2, 4, 3))))

    def evaluate(self, ns, codes, R: int, fused: bool = False, code_sums=None):
        L = self.layout
        D = adc_codes(ns, ns.contiguous(ns.permute(self._adc_input(ns, codes), (2, 0, 1, 4, 3))), self.adc,
                      gain=self.colgain)
        y = ns.matmul(self.w, ns.reshape(D, (L.Tn, L.S * L.Tk, L.Nc * codes.shape[1])))  # (Tn, 1, Nc*PR)
        return self._finish(ns, y, codes, R, code_sums)


@dataclass(frozen=True, eq=False)
class RowsumGroup(_Arrays):
    """ROWSUM tiles of one shape: column blocks ``tn`` = (a, b), the full row blocks or the last one
    (``part``, first row block ``t0``), m x nc cells. ``G`` (n, S, t, nc, m): tile conductances^T in
    ADC input units; either ``alpha`` (n, S, t, m, 1) = A / B with 1/B folded into G
    (V = c / (alpha - c)), or ``A``, ``B`` (V = c / (A - B c)); ``w`` (n, 1, S*t) the tiles' weights.
    ``first``: the group writes its columns of y first. ``alpha_np``, ``w_np``: numpy views of alpha
    (n, S, t, m) and w (n, S, t) for the fused kernels; ``runs``: G[j, s] (t, nc, m) of each column block
    j and array s, in (j, s) order, so that a block of one array's row tiles is one slice (host memory only).
    ``colgain`` (n, S, t, nc, 1): the per-column ADC gain (None: 1)."""

    tn: tuple
    part: str
    t0: int
    m: int
    nc: int
    first: bool
    G: object
    w: object
    alpha: object = None
    A: object = None
    B: object = None
    alpha_np: object = None
    w_np: object = None
    colgain: object = None
    runs: tuple = ()

    def to(self, ns):
        """The group's arrays on ``ns``; its host views are left behind (``RowsumPlan.to`` makes them there)."""
        return _Arrays.to(_replace(self, alpha_np=None, w_np=None, runs=()), ns)

    def with_host_views(self, ns) -> "RowsumGroup":
        n, S, t = self.G.shape[:3]
        return _replace(self, alpha_np=None if self.alpha is None else ns.np(self.alpha)[..., 0],
                        w_np=np.ascontiguousarray(ns.np(self.w)[:, 0, :]).reshape(n, S, t),
                        runs=tuple(self.G[j, s] for j in range(n) for s in range(S)))

    def blocks(self, S: int, tk_r: int, fit: int, pairs: bool = False) -> list:
        """How the group's tiles are taken, ``fit`` tiles at a time (so that V and the ADC input stay
        within GROUP_BYTES): whole column blocks (all S x tk_r tiles of a column block) when one fits,
        else runs of row blocks of one column block and one array (of both arrays with ``pairs``: the
        analog difference needs them together). A list of (column-block slice, array slice, row-block
        slice, first write of y)."""
        a, b = self.tn
        if fit >= S * tk_r * (b - a):  # (the common case: one block of every tile of the group)
            return [(slice(0, b - a), slice(None), slice(None), self.first)]
        if fit >= S * tk_r:
            step = fit // (S * tk_r)
            return [(slice(j, min(j + step, b - a)), slice(None), slice(None), self.first)
                    for j in range(0, b - a, step)]
        step, arrays = (max(1, fit // S), [slice(None)]) if pairs else (fit, [slice(si, si + 1) for si in range(S)])
        return [(slice(j, j + 1), si, slice(t0, min(tk_r, t0 + step)), self.first and si.start in (None, 0) and t0 == 0)
                for j in range(b - a) for si in arrays for t0 in range(0, tk_r, step)]


@dataclass(frozen=True, eq=False)
class RowsumPlan(Plan):
    """The paper's closed-form DAC load, per tile V = (v/full) c / (A - B c), A = 1 + R_PD G_load,
    B = R_PD G_load / full, G_load = kappa sum_j Gn[i, j] (``DACParams.load_terms``), in ``groups``
    of tiles of one shape. ``fusable``: every group has the alpha form, linear cells and a plain ADC
    (bits, no INL), so that the fused CPU kernels apply."""

    groups: tuple = ()
    fusable: bool = False

    def to(self, ns):
        p = super().to(ns)
        if ns.host:
            p = _replace(p, groups=tuple(g.with_host_views(ns) for g in p.groups))
        return p

    def _parts(self, codes) -> dict:
        """The DAC codes (K, PR) of each row-block part as views: "full" (Kf/M, M, PR) and "last"
        (1, K - Kf, PR), None where a part is empty. numpy arrays or tensors alike."""
        L = self.layout
        Kf, PR = L.Kf, codes.shape[1]
        return {"full": codes[:Kf].reshape(Kf // L.M, L.M, PR) if Kf else None,
                "last": codes[Kf:][None] if Kf < L.K else None}

    def _blocks(self, ns, codes, fused: bool, pairs: bool = False):
        """Per block of tiles: (group, column-block slice, array slice, row-block slice, first,
        ADC input (n, s, t, nc, PR)); ``pairs``: both arrays in every block (``RowsumGroup.blocks``).
        The voltages: ``cpu_kernels.dac_rowsum`` when ``fused``."""
        L = self.layout
        PR = codes.shape[1]
        parts = self._parts(ns.np(codes) if fused else codes)
        esize = codes.element_size() if ns.name == "torch" else codes.itemsize
        kern = cpu_kernels.kernels() if fused else None
        for g in self.groups:
            ct = parts[g.part]
            tk_r = ct.shape[0]
            fit = max(1, int(GROUP_BYTES // max(1, PR * max(g.m, g.nc) * esize)))
            blocks = g.blocks(L.S, tk_r, fit, pairs)
            whole = len(blocks) == 1  # one block of all the group's tiles: its arrays as they are
            for tn, si, tk, first in blocks:
                if fused and not whole and si.start is not None:  # one array's run of row tiles: one slice
                    G = g.runs[tn.start * L.S + si.start][tk]  # (t, nc, m), the product broadcasts
                    n, s_, (t_, _, m) = 1, 1, G.shape
                else:
                    G = g.G if whole else g.G[tn, si, tk]  # (n, s, t, nc, m)
                    n, s_, t_, _, m = G.shape
                V = ns.empty((n, s_, t_, m, PR))
                c = ct if whole else ct[tk]
                if fused:
                    al = g.alpha_np if whole else g.alpha_np[tn, si, tk]
                    kern.dac_rowsum(np.ascontiguousarray(al.reshape(n * s_, t_, m)), c, ns.np(V).reshape(n * s_, t_, m, PR))
                else:
                    c = c[None, None]
                    if g.alpha is not None:
                        ns.sub(g.alpha if whole else g.alpha[tn, si, tk], c, out=V)  # alpha - c
                    else:
                        A, B = (g.A, g.B) if whole else (g.A[tn, si, tk], g.B[tn, si, tk])
                        ns.sub_prod(A, B, c, out=V)  # A - B c
                    ns.div_(c, V)  # c / (alpha - c), or c / (A - B c)
                if self.ksinh:
                    ns.sinh_(ns.mul_(V, self.ksinh))
                yield g, tn, si, tk, first, ns.matmul(G, V)

    def currents(self, ns, codes, fused: bool = False):
        L = self.layout
        out = ns.zeros((L.Tn, L.S, L.Tk, L.Nc, codes.shape[1]))
        for g, tn, si, tk, _, I in self._blocks(ns, codes, fused and self.fusable):
            a, r0 = g.tn[0], g.t0 + (tk.start or 0)
            rows = slice(r0, r0 + I.shape[2])
            out[a + tn.start:a + tn.stop, si, rows, :g.nc] = I
        return self._amperes(ns, ns.contiguous(ns.permute(out, (1, 2, 0, 3, 4))))

    def evaluate(self, ns, codes, R: int, fused: bool = False, code_sums=None):
        L = self.layout
        PR = codes.shape[1]
        fused = fused and self.fusable
        y = ns.empty((L.Tn, L.Nc, PR))  # every row < N is written by its first group; the rest is dropped
        if fused:
            yn, kern = ns.np(y), cpu_kernels.kernels()
            full, clip = ns.scalar(self.adc.full_code), not self.noclip
        for g, tn, si, tk, first, I in self._blocks(ns, codes, fused):
            n, s_, t_, nc = I.shape[:4]
            y0, y1 = g.tn[0] + tn.start, g.tn[0] + tn.stop
            if fused:  # ADC and accumulation in one pass (cpu_kernels.adc_accumulate)
                wn = g.w_np[tn, si, tk].reshape(n, s_ * t_)  # (a contiguous view in every kind of block)
                kern.adc_accumulate(ns.np(I).reshape(n, s_ * t_, nc, PR), wn, full, clip, yn[y0:y1, :nc], first)
                continue
            w = g.w[tn].reshape(n, L.S, -1)[:, si, tk].reshape(n, 1, -1)
            D = adc_codes(ns, I, self.adc, not self.noclip, None if g.colgain is None else g.colgain[tn, si, tk])
            r = ns.reshape(ns.matmul(w, ns.reshape(D, (n, s_ * t_, nc * PR))), (n, nc, PR))
            ys = y[y0:y1, :nc]
            if first:
                ys[...] = r
            else:
                ys += r
        return self._finish(ns, y, codes, R, code_sums)
