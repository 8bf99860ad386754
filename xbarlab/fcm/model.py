"""The Fast Crossbar Model (RxNN paper section V): generation and evaluation.

Generation (``FCM.from_weights``, once per weight matrix and hardware
instance):

1. slice W (K, N) into rows x cols tiles, zero padded (``mapping.tile``);
2. map weights onto conductances (``mapping.conductances``: differential
   pair by default) on the device's levels, then sample variation and faults
   per cell with the caller's ``numpy.random.Generator`` (one seed = one
   hardware instance);
3. compute each tile's G_non-ideal with the exact circuit core
   (``xbarlab.g_nonideal_stack``), plus what the DAC load model needs.

Evaluation (``FCM.matmul``, per input batch), all in batched BLAS calls:

1. DAC: each input vector is scaled by its largest magnitude (or the fixed
   ``FCMOptions.x_max``) and quantized to codes 0..2**bits-1. Signed inputs
   run in two phases, the positive part and the negative part, whose results
   are subtracted digitally. Each row DAC is a Thevenin source
   (V_th = v_read code/full, R_th = R_PD (1 - code/full)) loaded by its
   crossbar row:

   * ``ROWSUM`` (the paper's closed form): V = V_th / (1 + R_th G_load), with
     G_load = load_factor * sum_j Gn[i, j] (a fitted load-correction factor);
   * ``EXACT``: V = solve(I + diag(R_th) Y, V_th) with the row-port
     admittance Y; equal to the full circuit for linear cells;
   * ``NONE``: the unloaded DAC, V = V_th.

2. Crossbar: I = f(V) @ Gn per tile, where f is the identity for linear
   cells, and f(V) = sinh(b g V) / (b g) for sinh cells (g = ``sinh_gamma``,
   a fitted share of the row voltage across the cells); exact when the
   parasitics are zero.
3. ADC per physical column (``ADCParams``), then digital accumulation over
   the row tiles and the differential pair, and rescaling to weight units:
   y = sum(I+ - I-) * x_scale * w_max / (v_read * (g_max - g_min)).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

import numpy as np

from ..api import g_nonideal_stack
from ..backend import namespace_for
from ..engines.ports import row_port_admittance_stack
from ..spec import CrossbarSpec
from .mapping import Mapping, check_weights, conductances, tile, tile_counts


def _g_nonideal(G: np.ndarray, spec: CrossbarSpec) -> np.ndarray:
    """G_non-ideal of every tile of G (..., rows, cols); G itself, exactly, without parasitics."""
    if spec.circuit.is_ideal:
        return G.copy()
    flat = G.reshape((-1,) + G.shape[-2:])
    return g_nonideal_stack(flat, spec.circuit).reshape(G.shape)


def _port_admittance(G: np.ndarray, spec: CrossbarSpec) -> np.ndarray:
    """Row-port admittance Y (..., rows, rows); diag(row sums of G), exactly, without parasitics."""
    if spec.circuit.is_ideal:
        Y = np.zeros(G.shape[:-1] + (G.shape[-2],))
        idx = np.arange(G.shape[-2])
        Y[..., idx, idx] = G.sum(axis=-1)
        return Y
    flat = G.reshape((-1,) + G.shape[-2:])
    return row_port_admittance_stack(flat, spec.circuit).reshape(G.shape[:-1] + (spec.rows,))


class DacLoad(enum.Enum):
    """How the row DACs' output sags under the crossbar load."""

    ROWSUM = "rowsum"
    EXACT = "exact"
    NONE = "none"

    @classmethod
    def parse(cls, value) -> "DacLoad":
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for k in cls:
                if value.lower() in (k.name.lower(), k.value):
                    return k
        raise ValueError(f"dac_load must be one of {[k.name for k in cls]}, got {value!r}")


@dataclass(frozen=True)
class FCMOptions:
    """Model settings of the FCM (not hardware; the hardware is ``CrossbarSpec``).

    Attributes:
        dac_load: ``DacLoad.ROWSUM`` (default), ``EXACT`` or ``NONE``; a name is accepted.
        load_factor: kappa in G_load = kappa * sum_j Gn[i, j] (ROWSUM), > 0;
            fitted against ngspice by ``xbarlab.fcm.fitting``.
        sinh_gamma: share of the row voltage across a sinh cell, in (0, 2];
            fitted by ``xbarlab.fcm.fitting``; unused for linear cells.
        mapping: ``Mapping.DIFFERENTIAL`` (default) or ``OFFSET``.
        x_max: fixed input full scale (DAC code full maps to |x| = x_max,
            larger inputs clip), in the inputs' units, > 0; None scales each
            input vector by its own largest magnitude.
    """

    dac_load: DacLoad = DacLoad.ROWSUM
    load_factor: float = 1.0
    sinh_gamma: float = 1.0
    mapping: Mapping = Mapping.DIFFERENTIAL
    x_max: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dac_load", DacLoad.parse(self.dac_load))
        object.__setattr__(self, "mapping", Mapping.parse(self.mapping))
        for name, hi in (("load_factor", None), ("sinh_gamma", 2.0)):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0 and (hi is None or v <= hi)):
                raise ValueError(f"{name} must be a finite number > 0{'' if hi is None else f' and <= {hi}'}, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.x_max is not None:
            if not (isinstance(self.x_max, (int, float)) and math.isfinite(self.x_max) and self.x_max > 0):
                raise ValueError(f"x_max must be a finite number > 0 or None, got {self.x_max!r}")
            object.__setattr__(self, "x_max", float(self.x_max))

    def replace(self, **changes) -> "FCMOptions":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {"dac_load": self.dac_load.name, "load_factor": self.load_factor,
                "sinh_gamma": self.sinh_gamma, "mapping": self.mapping.name, "x_max": self.x_max}


class FCM:
    """A weight matrix programmed onto crossbar tiles: ``y = fcm.matmul(x) ~ x @ W``.

    Build with ``FCM.from_weights`` (or ``FCM.from_tiles`` for given
    conductances). Attributes (read-only by convention):

        spec, options: the hardware and the model settings.
        shape: (K, N) of W.
        w_max: the weight that maps to g_max (max |W|).
        G: programmed conductances after variation and faults, S,
            shape (S, Tk, Tn, rows, cols) with S = 2 (G+, G-) or 1.
        Gn: G_non-ideal of each tile, S, same shape.
        Y: row-port admittance of each tile, S, (S, Tk, Tn, rows, rows),
            only for ``DacLoad.EXACT`` (else None).
        adc_full_scale_a: ADC full scale per tile, ampere, (S, Tk, Tn).

    ``matmul`` accepts numpy arrays or torch tensors (CPU or CUDA) and
    returns the same type. Constant tensors are converted once per
    (device, dtype) and kept with the model, which is otherwise immutable.
    """

    def __init__(self, spec: CrossbarSpec, options: FCMOptions, shape: tuple[int, int], w_max: float,
                 G: np.ndarray | None, Gn: np.ndarray | None, Y: np.ndarray | None = None) -> None:
        if not isinstance(spec, CrossbarSpec):
            raise ValueError(f"spec must be a CrossbarSpec, got {type(spec).__name__}")
        if not isinstance(options, FCMOptions):
            raise ValueError(f"options must be an FCMOptions, got {type(options).__name__}")
        self.spec = spec
        self.options = options
        self.shape = (int(shape[0]), int(shape[1]))
        self.w_max = float(w_max)
        self.G = G
        self.Gn = Gn
        self.Y = Y
        if options.dac_load is DacLoad.EXACT and Gn is not None and Y is None:
            raise ValueError("DacLoad.EXACT needs the row-port admittance Y")
        self.adc_full_scale_a = None if Gn is None else self._adc_full_scale()
        self._consts: dict = {}

    # ------------------------------------------------------------------ generation
    @classmethod
    def from_weights(cls, W, spec: CrossbarSpec, rng: np.random.Generator | None,
                     options: FCMOptions | None = None) -> "FCM":
        """Map W (K, N) onto crossbars of ``spec`` and compute every tile's G_non-ideal.

        ``rng`` draws variation and faults (one seed = one hardware
        instance); it may be None only when the device has neither.
        """
        options = options or FCMOptions()
        W = check_weights(W)
        if not isinstance(spec, CrossbarSpec):
            raise ValueError(f"spec must be a CrossbarSpec, got {type(spec).__name__}")
        dev = spec.device
        random_dev = dev.variation > 0 or dev.stuck_on_rate > 0 or dev.stuck_off_rate > 0
        if rng is None and random_dev:
            raise ValueError("rng must be a numpy.random.Generator when the device has variation or faults, got None")
        if rng is not None and not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        w_max = float(np.max(np.abs(W)))
        if w_max == 0.0:
            return cls(spec, options, W.shape, 0.0, None, None)
        Gt = conductances(tile(W, spec.rows, spec.cols), dev, w_max, options.mapping)
        Gp = dev.sample(Gt, rng) if random_dev else Gt
        return cls.from_tiles(Gp, spec, options, W.shape, w_max)

    @classmethod
    def from_tiles(cls, G, spec: CrossbarSpec, options: FCMOptions, shape: tuple[int, int],
                   w_max: float) -> "FCM":
        """A model of given programmed conductances G (S, Tk, Tn, rows, cols), siemens."""
        G = np.asarray(G, dtype=float)
        if G.ndim != 5 or G.shape[-2:] != (spec.rows, spec.cols):
            raise ValueError(f"G must have shape (S, Tk, Tn, {spec.rows}, {spec.cols}), got {G.shape}")
        Gn = _g_nonideal(G, spec)
        Y = _port_admittance(G, spec) if options.dac_load is DacLoad.EXACT else None
        return cls(spec, options, shape, w_max, G, Gn, Y)

    def regenerate(self, W, rng: np.random.Generator | None) -> "FCM":
        """A new model of the same spec and options for new weights (e.g. after re-training)."""
        return type(self).from_weights(W, self.spec, rng, self.options)

    def with_options(self, **changes) -> "FCM":
        """The same hardware instance under other model settings (no re-sampling)."""
        opts = self.options.replace(**changes)
        if self.Gn is None:
            return type(self)(self.spec, opts, self.shape, self.w_max, None, None)
        Y = self.Y
        if opts.dac_load is DacLoad.EXACT and Y is None:
            Y = _port_admittance(self.G, self.spec)
        return type(self)(self.spec, opts, self.shape, self.w_max, self.G, self.Gn, Y)

    def _adc_full_scale(self) -> np.ndarray:
        adc = self.spec.adc
        if adc.full_scale_a is not None:
            return np.full(self.Gn.shape[:3], adc.full_scale_a)
        v = self.spec.dac.v_read
        b = self.spec.device.sinh_b * self.options.sinh_gamma
        if b > 0:
            v = math.sinh(b * v) / b
        fs = v * self.Gn.sum(axis=-2).max(axis=-1)
        return np.where(fs > 0, fs, 1.0)

    def __repr__(self) -> str:
        return (f"FCM(shape={self.shape}, spec={self.spec.name or 'custom'!r} {self.spec.rows}x{self.spec.cols}, "
                f"tiles={self.n_tiles}, dac_load={self.options.dac_load.value}, mapping={self.options.mapping.value})")

    @property
    def n_tiles(self) -> int:
        k, n = self.shape
        tk, tn = tile_counts(k, n, self.spec.rows, self.spec.cols)
        return tk * tn * (2 if self.options.mapping is Mapping.DIFFERENTIAL else 1)

    # ------------------------------------------------------------------ evaluation
    def _plan(self) -> dict:
        """Per-model constants of the fused evaluation (numpy float64), computed once.

        Everything that does not depend on the input is folded here:

        * the DAC load (ROWSUM): with t = code/full, V_th = v t and
          R_th = R_PD (1 - t), V = V_th / (1 + R_th g) = (v/full) c / (A - B c)
          for code c, A = 1 + R_PD g, B = R_PD g / full, g the row's load;
          A and B are per tile row, so V costs two passes per input element
          and tile (one fused multiply-subtract, one divide);
        * the scale to ADC units: each tile's conductances are multiplied by
          v/full (or 1/(b g) for sinh cells, whose argument scale k = b g v/full
          goes on the voltage side) and by full_adc / I_fs, so the matmul gives
          the ADC's input in LSB and the ADC is round + clip in place;
        * the ADC's LSB back to ampere, the differential pair's sign and the
          rescaling to weight units: one weight per tile, applied in the
          digital accumulation over the pair and the row tiles (a small bmm).

        The tile axis order is (Tn, S, Tk), so the accumulation over (S, Tk)
        reads the ADC output in place.
        """
        p = getattr(self, "_plan_np", None)
        if p is not None:
            return p
        S, Tk, Tn, M, Nc = self.Gn.shape
        spec, opts = self.spec, self.options
        dac, adc, dev = spec.dac, spec.adc, spec.device
        fd = float(dac.full_code)
        fs = self.adc_full_scale_a  # (S, Tk, Tn)
        if adc.bits is None:
            q, wq = 1.0 / fs, fs
        elif adc.inl_lsb:
            q, wq = 1.0 / fs, fs / float(adc.full_code)
        else:
            q, wq = float(adc.full_code) / fs, fs / float(adc.full_code)
        dg = dev.g_max - dev.g_min
        if opts.mapping is Mapping.DIFFERENTIAL:
            sign = np.array([1.0, -1.0])
            gain = self.w_max / (dac.v_read * dg)
            off = 0.0
        else:
            sign = np.array([1.0])
            gain = 2.0 * self.w_max / (dac.v_read * dg)
            off = gain * float(dev.quantize(0.5)) * dac.v_read / fd  # per unit of summed codes
        w = sign[:, None, None] * wq * gain  # (S, Tk, Tn): ADC output unit -> weight units
        bg = dev.sinh_b * opts.sinh_gamma
        vscale = dac.v_read / fd if bg == 0 else 1.0 / bg
        ksinh = 0.0 if bg == 0 else bg * dac.v_read / fd
        Gs = self.Gn * (vscale * q)[..., None, None]  # (S, Tk, Tn, M, Nc), ADC input units per code
        if opts.dac_load is DacLoad.EXACT and dac.r_pd > 0:
            kind = "exact"
        elif dac.r_pd == 0 or opts.dac_load is DacLoad.NONE:
            kind = "shared"
        else:
            kind = "rowsum"
        p = {"kind": kind, "ksinh": ksinh, "off": off, "q": q[..., None, None],
             "w": np.ascontiguousarray(w.transpose(2, 0, 1).reshape(Tn, 1, S * Tk))}
        if kind == "rowsum":
            g = dac.r_pd * opts.load_factor * self.Gn.sum(axis=-1)  # (S, Tk, Tn, M): R_PD * G_load
            p["A"] = np.ascontiguousarray((1.0 + g).transpose(2, 0, 1, 3)[:, :, :, None, :])
            p["B"] = np.ascontiguousarray((g / fd).transpose(2, 0, 1, 3)[:, :, :, None, :])
            p["G"] = np.ascontiguousarray(Gs.transpose(2, 0, 1, 3, 4))  # (Tn, S, Tk, M, Nc)
        elif kind == "shared" and adc.bits is None:
            # linear after the (shared) DAC: the whole layer is one matrix
            K, N = self.shape
            weff = np.einsum("stn,stnmc->tmnc", w * vscale * q, self.Gn)
            p["Weff"] = np.ascontiguousarray(weff.reshape(Tk * M, Tn * Nc)[:K, :N])
        elif kind == "shared":
            # (Tk, M, Tn*S*Nc): every tile of a row block side by side, columns ordered (tn, s, nc)
            p["Gcat"] = np.ascontiguousarray(Gs.transpose(1, 3, 2, 0, 4).reshape(Tk, M, Tn * S * Nc))
            p["wcat"] = np.ascontiguousarray(np.broadcast_to(
                w.transpose(1, 2, 0)[:, None, :, :, None], (Tk, 1, Tn, S, Nc)).reshape(Tk, 1, Tn * S * Nc))
        self._plan_np = p
        return p

    def _const(self, ns) -> dict:
        c = self._consts.get(ns.key)
        if c is None:
            c = {k: (v if isinstance(v, (str, float)) else ns.const(v)) for k, v in self._plan().items()}
            self._consts[ns.key] = c
        return c

    def _legacy_const(self, ns) -> dict:
        """Constants of ``tile_currents`` (currents in ampere, per tile)."""
        key = ns.key + ("tiles",)
        c = self._consts.get(key)
        if c is None:
            S, Tk, Tn, M, Nc = self.Gn.shape
            c = {
                "Gn": ns.const(self.Gn),
                # (Tk, M, S*Tn*Nc): every tile of one row block side by side, for the unloaded DAC
                "Gn_cat": ns.const(np.ascontiguousarray(self.Gn.transpose(1, 3, 0, 2, 4).reshape(Tk, M, S * Tn * Nc))),
                "gload": ns.const(self.options.load_factor * self.Gn.sum(axis=-1)[:, :, :, None, :]),
            }
            if self.Y is not None:
                c["Y"] = ns.const(self.Y)
            self._consts[key] = c
        return c

    def _check_x(self, x, check_finite: bool = True):
        ns, xa = namespace_for(x)
        k = self.shape[0]
        if xa.ndim not in (1, 2):
            raise ValueError(f"x must be (K,) or (B, K) with K={k}, got shape {tuple(xa.shape)}")
        if xa.shape[-1] != k:
            raise ValueError(f"x has width {xa.shape[-1]} but W has K={k} rows; x must be (B, {k})")
        if check_finite and not ns.isfinite_all(xa):
            raise ValueError("x must be finite; found NaN or Inf")
        return ns, xa

    def codes(self, x):
        """(codes (P, B, K), x_scale (B, 1)) of the DAC for inputs x (B, K); P = 1 or 2 phases."""
        ns, xa = self._check_x(x)
        X = xa if xa.ndim == 2 else xa[None]
        codes, s = self._codes(ns, X)
        return ns.reshape(codes, (-1,) + tuple(X.shape)), s

    def _codes(self, ns, xa, signed=None):
        """(codes (P*B, K), x_scale): both phases stacked along the batch axis.

        One pass finds each row's min and max (the scale, and whether any
        input is negative); ``signed`` (True/False) skips the latter test.
        A phase of all-zero codes contributes exactly zero, so forcing two
        phases changes nothing but the time.
        """
        full = float(self.spec.dac.full_code)
        if self.options.x_max is None:
            lo, hi = ns.row_minmax(xa)
            s = ns.where(-lo > hi, -lo, hi)  # the row's largest magnitude
            s = ns.where(s > 0, s, s * 0 + 1.0)
            neg = ns.any_true(lo < 0) if signed is None else bool(signed)
        else:
            s = self.options.x_max
            neg = ns.any_true(xa < 0) if signed is None else bool(signed)
        xf = xa / s
        c = ns.cat([xf, -xf]) if neg else xf
        c = c * full
        ns.round_(c)
        ns.clip_(c, 0.0, full)
        return c, s

    def tile_currents(self, codes, ns=None):
        """Analog column currents (A) before the ADC for DAC codes (B', K): (S, Tk, Tn, B', cols)."""
        if ns is None:
            ns, codes = namespace_for(codes)
        c = self._legacy_const(ns)
        S, Tk, Tn, M, Nc = self.Gn.shape
        B = codes.shape[0]
        codes = ns.pad_last(codes, Tk * M - codes.shape[-1]).reshape(B, Tk, M)
        vth, rth = self.spec.dac.thevenin_fast(ns.permute(codes, (1, 0, 2)))  # (Tk, B, M)
        mode = self.options.dac_load
        if self.spec.dac.r_pd == 0 or mode is DacLoad.NONE:
            if self.spec.device.sinh_b == 0:
                I = ns.matmul(vth, c["Gn_cat"])  # (Tk, B, S*Tn*Nc)
                return ns.permute(I.reshape(Tk, B, S, Tn, Nc), (2, 0, 3, 1, 4))
            V = vth[None, :, None]
        elif mode is DacLoad.ROWSUM:
            V = vth[None, :, None] / (1.0 + rth[None, :, None] * c["gload"])  # (S, Tk, Tn, B, M)
        else:  # EXACT: (I + diag(R_th) Y) V = V_th per tile and input vector
            Y = c["Y"][:, :, :, None]  # (S, Tk, Tn, 1, M, M)
            eye = ns.const(np.eye(M))
            A = eye + rth[None, :, None, :, :, None] * Y
            rhs = vth[None, :, None, :, :, None] + 0.0 * Y[..., :1]
            V = ns.solve(A, rhs)[..., 0]
        b = self.spec.device.sinh_b
        if b > 0:
            bg = b * self.options.sinh_gamma
            V = ns.sinh(bg * V) / bg
        return ns.matmul(V, c["Gn"])  # (S, Tk, Tn, B, Nc)

    def _adc_(self, ns, I):
        """The column ADC on inputs already in its units (LSB, or fraction of full scale with INL), in place."""
        adc = self.spec.adc
        if adc.bits is None:
            return I
        full = float(adc.full_code)
        if adc.inl_lsb:
            I = I * full + adc.inl(I, ns)
        ns.round_(I)
        ns.clip_(I, 0.0, full)
        return I

    def matmul(self, x, *, check_finite: bool = True, signed: bool | None = None):
        """y ~ x @ W for x of shape (B, K) (or (K,)), in the weights' units.

        x is a numpy array (result float64 numpy) or a torch.Tensor (result a
        tensor of x's dtype on x's device, computed in that dtype, without
        autograd history). Forward only: rounding has no useful gradient;
        train with a straight-through estimator.

        ``check_finite`` (default True) rejects NaN/Inf inputs with a
        ValueError; with False a non-finite input gives non-finite outputs
        instead (no check, no host synchronization). ``signed``: None
        detects negative inputs (two DAC phases when there are any); False
        promises that x >= 0 (one phase; a negative input would then clip
        to code 0); True always runs both phases (same result).
        """
        ns, xa = self._check_x(x, check_finite)
        single = xa.ndim == 1
        X = xa[None] if single else xa
        B = X.shape[0]
        K, N = self.shape
        if self.Gn is None:  # all-zero W
            y = ns.zeros((B, N))
            return y[0] if single else y
        with ns.no_grad():
            y = self._eval(ns, X, signed)
        return y[0] if single else y

    __call__ = matmul

    def _eval(self, ns, X, signed):
        S, Tk, Tn, M, Nc = self.Gn.shape
        B = X.shape[0]
        K, N = self.shape
        c = self._const(ns)
        codes, s = self._codes(ns, X, signed)  # (P*B, K)
        PB = codes.shape[0]
        kind, k = c["kind"], c["ksinh"]
        if kind == "shared" and "Weff" in c:  # unloaded DAC, ideal ADC: linear
            V = codes
            if k:
                V = ns.sinh_(codes * k)
            y = ns.matmul(V, c["Weff"])  # (PB, N)
        else:
            cp = ns.reshape(ns.pad_last(codes, Tk * M - K), (PB, Tk, M))
            # (Tk, PB, M), contiguous: a small copy, and the broadcast results below then come out
            # contiguous in (Tn, S, Tk, PB, M) order, as the batched matmul needs them
            ct = ns.contiguous(ns.permute(cp, (1, 0, 2)))
            if kind == "rowsum":
                V = ns.sub_prod(c["A"], c["B"], ct[None, None])  # (Tn, S, Tk, PB, M): A - B c
                V = ns.div_(ct[None, None], V)  # c / (A - B c)
            elif kind == "shared":
                V = ct  # (Tk, PB, M)
            else:  # exact
                V = None
            if V is not None and k:
                V = ns.sinh_(ns.mul_(V, k) if kind == "rowsum" else V * k)  # (ct may share codes' memory)
            if kind == "rowsum":
                D = ns.matmul(V, c["G"])  # (Tn, S, Tk, PB, Nc), ADC units
            elif kind == "exact":
                I = self.tile_currents(codes, ns) * c["q"]  # (S, Tk, Tn, PB, Nc)
                D = ns.contiguous(ns.permute(I, (2, 0, 1, 3, 4)))
            else:
                D = ns.matmul(V, c["Gcat"])  # (Tk, PB, Tn*S*Nc)
            D = self._adc_(ns, D)
            if kind == "shared":
                ns.mul_(D, c["wcat"])
                y = ns.reshape(ns.sum(D, 0), (PB, Tn, S, Nc))
                y = ns.reshape(ns.sum(y, 2), (PB, Tn * Nc))
            else:
                y = ns.matmul(c["w"], ns.reshape(D, (Tn, S * Tk, PB * Nc)))  # (Tn, 1, PB*Nc)
                y = ns.reshape(y, (Tn, PB, Nc))
                y = ns.reshape(ns.permute(y, (1, 0, 2)), (PB, Tn * Nc)) if Tn > 1 else y[0]
            y = y[:, :N]
        if c["off"]:
            y = y - ns.sum(codes, 1)[:, None] * c["off"]
        if PB != B:
            y = y[:B] - y[B:]
        return y * s
