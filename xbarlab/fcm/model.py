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

How it is computed (``FCM._plan``; same model, same values to rounding):
every input-independent factor is folded into per-tile constants at the
first evaluation (kept with the model per array namespace, device and
dtype). The evaluation runs on transposed inputs x^T (K, R) (``matmul_t``;
``matmul`` transposes), where each row block of DAC codes is a view. Per
tile, the ROWSUM DAC voltages cost one subtraction and one division per
input element (V = c / (alpha - c) with alpha = A / B per row and 1/B folded
into the tile's conductances, or c / (A - B c)); the tile product gives the
ADC input in LSB directly; the ADC is an in-place round (and clip, skipped
only where it provably cannot act, see ``_plan``); the accumulation over the
pair and the row tiles is one small batched product with the per-tile
LSB-to-weight factors. Zero-padded rows and columns of the last tiles are not
computed (a padded row carries code 0, so V = 0 exactly). Tiles are taken in
groups of about ``GROUP_BYTES`` of work arrays so that they stay in cache.
On CPU (numpy, or CPU torch tensors of float32/float64) with numba
installed, the element-wise passes run as fused loops
(``xbarlab.fcm.cpu_kernels``: DAC codes in one pass, the ROWSUM voltages in
one pass per block of tiles, ADC and accumulation in one pass); the same
operations in the same precision, so DAC and ADC codes are bitwise those of
the array code (``XBARLAB_KERNELS=array`` forces the array code; tests
compare the two). The torch path computes in the input's dtype (float32
inputs: float32 throughout, so roundings of the DAC and ADC can differ from the float64
numpy path where a value lies within float32 precision of a rounding
boundary; float64 tensors agree with numpy to ~1e-14).
"""

from __future__ import annotations

import math

import numpy as np

from ..api import g_nonideal_stack
from ..backend import namespace_for
from ..engines.ports import row_port_admittance_stack
from ..spec import CrossbarSpec
from . import cpu_kernels
from .mapping import Mapping, check_weights, conductances, tile, tile_counts
from .options import DacLoad, FCMOptions

__all__ = ["FCM", "DacLoad", "FCMOptions"]


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


#: bytes of the per-tile work arrays (DAC voltages, ADC inputs) evaluated at a time: tiles are
#: taken in groups so that these arrays stay in cache between their few passes
GROUP_BYTES = 2 * 2**20


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
        if spec.device.access is not None:  # not silently modelled as a 1R crossbar
            raise ValueError("spec.device.access (1T-1R cells) is not modelled by the FCM yet; solve such crossbars "
                             "with xbarlab.engines.nonlinear.solve")
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

        The evaluation works on transposed inputs, x^T (K, R) -> y^T (N, R), so
        that every row block of the DAC codes is a plain view (Tk, M, R) and
        each tile's product is G^T (cols, rows) @ V (rows, R). Everything that
        does not depend on the input is folded here:

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
          digital accumulation over the pair and the row tiles (a small bmm);
        * the zero padding of the last row block and the last column block is
          skipped: a padded row has code 0, hence V = 0 exactly (it adds exact
          zeros to the sums), and a padded column's output is dropped.

        The tile axis order is (Tn, S, Tk), so the accumulation over (S, Tk)
        reads the ADC output in place.
        """
        p = getattr(self, "_plan_np", None)
        if p is not None:
            return p
        S, Tk, Tn, M, Nc = self.Gn.shape
        K, N = self.shape
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
        # The ADC's clip to [0, full] is provably a no-op when its full scale is the calibrated one
        # (the largest column current at full input, unloaded: v_read, or sinh(b v_read)/b, times the
        # largest column sum of Gn), every Gn >= 0 and the DAC output never exceeds v_read (ROWSUM:
        # V = V_th / (1 + R_th g) <= V_th <= v_read; unloaded: V = V_th): the ADC input then lies in
        # [0, full (1 + rounding)], and rounds into [0, full]. The clip is skipped only then.
        p_noclip = (adc.bits is not None and adc.full_scale_a is None and not adc.inl_lsb
                    and kind in ("rowsum", "shared") and bool(np.all(self.Gn >= 0)))
        p = {"kind": kind, "ksinh": ksinh, "off": off, "q": q[..., None, None], "noclip": p_noclip,
             "w": np.ascontiguousarray(w.transpose(2, 0, 1).reshape(Tn, 1, S * Tk))}
        Mr, Ncr = K - (Tk - 1) * M, N - (Tn - 1) * Nc
        p["Kf"] = (Tk - 1) * M if Mr < M else Tk * M  # rows of the full row blocks
        if kind == "rowsum":
            g = dac.r_pd * opts.load_factor * self.Gn.sum(axis=-1)  # (S, Tk, Tn, M): R_PD * G_load
            A = (1.0 + g).transpose(2, 0, 1, 3)[..., None]  # (Tn, S, Tk, M, 1)
            Bc = (g / fd).transpose(2, 0, 1, 3)[..., None]
            GT = Gs.transpose(2, 0, 1, 4, 3)  # (Tn, S, Tk, Nc, M)
            wt = w.transpose(2, 0, 1)  # (Tn, S, Tk)
            # groups of tiles of one shape: (tn range, full or last row block, rows, columns)
            tks = [(0, Tk - 1, M), (Tk - 1, Tk, Mr)] if Mr < M else [(0, Tk, M)]
            tns = [(0, Tn - 1, Nc), (Tn - 1, Tn, Ncr)] if Ncr < Nc else [(0, Tn, Nc)]
            groups = []
            for a, b, nc in tns:
                first = True
                for t0, t1, m in tks:
                    if a == b or t0 == t1:
                        continue
                    Ag, Bg, Gg = A[a:b, :, t0:t1, :m], Bc[a:b, :, t0:t1, :m], GT[a:b, :, t0:t1, :nc, :m]
                    grp = {"tn": (a, b), "part": "last" if m < M else "full", "m": m, "nc": nc, "first": first,
                           "w": np.ascontiguousarray(wt[a:b, :, t0:t1].reshape(b - a, 1, S * (t1 - t0)))}
                    if ksinh == 0 and np.all(Bg > 1e-15):  # (B ~ R_PD G_load / full; tiny B: the A - B c form)
                        # V = c / (A - B c) = (1/B) c / (alpha - c), alpha = A/B, with 1/B folded into the
                        # tile's rows: one subtraction with a per-row constant (vectorizes well), one divide
                        grp["alpha"] = np.ascontiguousarray(Ag / Bg)
                        grp["G"] = np.ascontiguousarray(Gg / Bg[..., 0][..., None, :])
                    else:
                        grp["A"], grp["B"] = np.ascontiguousarray(Ag), np.ascontiguousarray(Bg)
                        grp["G"] = np.ascontiguousarray(Gg)
                    groups.append(grp)
                    first = False
            p["groups"] = groups
        elif kind == "shared" and adc.bits is None:
            # linear after the (shared) DAC: the whole layer is one matrix
            weff = np.einsum("stn,stnmc->tmnc", w * vscale * q, self.Gn)
            p["WeffT"] = np.ascontiguousarray(weff.reshape(Tk * M, Tn * Nc)[:K, :N].T)
        elif kind == "shared":
            # (Tk, Tn*S*Nc, M): every tile of a row block stacked, rows ordered (tn, s, nc)
            p["GcatT"] = np.ascontiguousarray(Gs.transpose(1, 2, 0, 4, 3).reshape(Tk, Tn * S * Nc, M))
            p["wcat"] = np.ascontiguousarray(np.broadcast_to(
                w.transpose(1, 2, 0)[:, :, :, None, None], (Tk, Tn, S, Nc, 1)).reshape(Tk, Tn * S * Nc, 1))
        self._plan_np = p
        return p

    def _const(self, ns) -> dict:
        c = self._consts.get(ns.key)
        if c is None:
            def conv(v):
                if isinstance(v, np.ndarray):
                    return ns.const(v)
                if isinstance(v, list):
                    return [conv(u) for u in v]
                if isinstance(v, dict):
                    return {k: conv(u) for k, u in v.items()}
                return v

            c = conv(self._plan())
            if ns.host and c["kind"] == "rowsum":
                for g in c["groups"]:  # numpy views for the fused kernels (no tensor slicing per call)
                    if "alpha" in g:
                        g["alpha_np"] = ns.np(g["alpha"])[..., 0]
                    g["w_np"] = ns.np(g["w"])[:, 0, :]
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
        """(codes (P*B, K), x_scale (B, 1) or the fixed x_max): ``_codes_t`` on x^T, transposed back,
        so both phases are stacked along the batch axis."""
        c, s = self._codes_t(ns, ns.contiguous(ns.permute(xa, (1, 0))), signed)
        if self.options.x_max is None:
            s = ns.permute(s, (1, 0))
        return ns.permute(c, (1, 0)), s

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
            ct = ns.permute(codes, (1, 0, 2))[None, :, None]  # (1, Tk, 1, B, M)
            V = self.spec.dac.v_loaded_fast(ct, c["gload"])  # (S, Tk, Tn, B, M)
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

    def _adc_(self, ns, I, clip: bool = True):
        """The column ADC on inputs already in its units (LSB, or fraction of full scale with INL), in place.

        ``clip=False`` only where the input provably lies in [0, full] (see ``_plan``)."""
        adc = self.spec.adc
        if adc.bits is None:
            return I
        full = float(adc.full_code)
        if adc.inl_lsb:
            I = I * full + adc.inl(I, ns)
        ns.round_(I)
        if clip:
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
        promises that x >= 0 (one phase, each row scaled by its maximum; a
        negative entry would then read as code 0); True always runs both
        phases (the same result as None, in more time).
        """
        ns, xa = self._check_x(x, check_finite)
        single = xa.ndim == 1
        X = xa[None] if single else xa
        if self.Gn is None:  # all-zero W
            y = ns.zeros((X.shape[0], self.shape[1]))
            return y[0] if single else y
        with ns.no_grad():
            y = ns.contiguous(ns.permute(self._eval_t(ns, ns.contiguous(ns.permute(X, (1, 0))), signed), (1, 0)))
        return y[0] if single else y

    __call__ = matmul

    def matmul_t(self, xt, *, check_finite: bool = True, signed: bool | None = None):
        """y^T = (x @ W)^T for x^T of shape (K, R): ``matmul`` on transposed inputs and outputs.

        The evaluation's own layout (each row block of inputs is a plain
        view), so a caller that can lay out its inputs as (K, R) (im2col
        patches as columns) saves two transposing copies. Same options and
        same values as ``matmul``; returns (N, R).
        """
        ns, xa = namespace_for(xt)
        k = self.shape[0]
        if xa.ndim != 2 or xa.shape[0] != k:
            raise ValueError(f"xt must be (K, R) with K={k}, got shape {tuple(xa.shape)}")
        if check_finite and not ns.isfinite_all(xa):
            raise ValueError("x must be finite; found NaN or Inf")
        if self.Gn is None:
            return ns.zeros((self.shape[1], xa.shape[1]))
        with ns.no_grad():
            return self._eval_t(ns, ns.contiguous(xa), signed)

    def _codes_t(self, ns, XT, signed, fused=False):
        """DAC codes (K, P*R) of transposed inputs XT (K, R), both phases side by side, and the scale (1, R).

        ``signed`` (True/False) is the caller's knowledge of whether x has
        negative entries; None tests it (one reduction). Non-negative columns
        take their scale from the column maximum, signed ones from the column
        maximum of |x|. A phase of all-zero codes contributes exactly zero, so
        forcing two phases (signed=True) changes nothing but the time.
        """
        full = float(self.spec.dac.full_code)
        neg = ns.any_negative(XT) if signed is None else bool(signed)
        if fused:  # the same steps in one kernel (cpu_kernels.dac_codes)
            K, R = XT.shape
            c = ns.empty((K, 2 * R if neg else R))
            s = ns.empty((1, R))
            x_max = self.options.x_max
            xm = ns.scalar(0.0 if x_max is None else x_max)  # 0: per-column scale
            cpu_kernels.kernels().dac_codes(ns.np(XT), ns.scalar(full), neg, xm, ns.np(c), ns.np(s)[0])
            return c, (s if x_max is None else x_max)
        if self.options.x_max is None:
            s = ns.col_absmax(XT) if neg else ns.col_max(XT)
            s = ns.where(s > 0, s, s * 0 + 1.0)
        else:
            s = self.options.x_max
        xf = XT / s  # a new array: the steps below work in place on it (or on the two phases)
        c = ns.cat([xf, -xf], 1) if neg else xf
        ns.mul_(c, full)
        ns.round_(c)
        if neg or self.options.x_max is not None:
            ns.clip_(c, 0.0, full)
        # else 0 <= x <= s (its column's maximum), so 0 <= x / s * full <= full already (IEEE
        # division and multiplication are monotonic and exact at 1): the clip is a no-op
        return c, s

    def _eval_t(self, ns, XT, signed):
        """y^T (N, R) for contiguous x^T (K, R)."""
        fused = ns.host and cpu_kernels.enabled()
        codes, s = self._codes_t(ns, XT, signed, fused)  # (K, PR)
        return self._eval_codes_t(ns, codes, s, XT.shape[1], fused)

    def matmul_codes_t(self, codes, scale, n_vectors: int, *, scaled: bool = True):
        """y^T (N, R) from DAC codes already made: the second half of ``matmul_t``.

        ``codes`` (K, P*R) and ``scale`` (1, R), or the fixed ``x_max``, are
        what ``_codes_t`` (or ``cpu_kernels.dac_codes`` / ``dac_codes_conv``,
        which write the same values) gives for x^T (K, R), ``n_vectors`` = R;
        P = 2 (negative phase in columns R..2R) for signed inputs. Lets a
        caller make the codes straight from its own layout (a convolution's
        image, without the im2col matrix). No checks beyond the shape.
        ``scaled=False`` leaves out the last step, the multiplication of
        column r by its DAC scale (the caller does it, e.g. while moving the
        result to its own layout).
        """
        ns, codes = namespace_for(codes)
        if codes.ndim != 2 or codes.shape[0] != self.shape[0] or codes.shape[1] not in (n_vectors, 2 * n_vectors):
            raise ValueError(f"codes must be (K, R) or (K, 2R) with K={self.shape[0]}, R={n_vectors}; "
                             f"got shape {tuple(codes.shape)}")
        if self.Gn is None:
            return ns.zeros((self.shape[1], n_vectors))
        with ns.no_grad():
            return self._eval_codes_t(ns, codes, scale if scaled else None, n_vectors,
                                      ns.host and cpu_kernels.enabled())

    def _eval_codes_t(self, ns, codes, s, R, fused):
        """y^T (N, R) from DAC codes; s is the DAC scale to multiply by, or None for unscaled."""
        S, Tk, Tn, M, Nc = self.Gn.shape
        K, N = self.shape
        c = self._const(ns)
        PR = codes.shape[1]
        kind, k = c["kind"], c["ksinh"]
        if kind == "rowsum":
            y = self._rowsum_t(ns, c, codes, fused)
        elif kind == "shared" and "WeffT" in c:  # unloaded DAC, ideal ADC: linear
            y = ns.matmul(c["WeffT"], ns.sinh_(codes * k) if k else codes)  # (N, PR)
        elif kind == "shared":
            V = codes if K == Tk * M else ns.cat([codes, ns.zeros((Tk * M - K, PR))], 0)
            V = ns.reshape(ns.sinh_(V * k) if k else V, (Tk, M, PR))  # (V * k: codes stay intact)
            D = self._adc_(ns, ns.matmul(c["GcatT"], V), not c["noclip"])  # (Tk, Tn*S*Nc, PR)
            ns.mul_(D, c["wcat"])
            y = ns.sum(ns.reshape(ns.sum(D, 0), (Tn, S, Nc, PR)), 1)  # (Tn, Nc, PR)
        else:  # exact: per tile and input vector solves (tile_currents), rows layout
            I = self.tile_currents(ns.contiguous(ns.permute(codes, (1, 0))), ns) * c["q"]  # (S, Tk, Tn, PR, Nc)
            D = self._adc_(ns, ns.contiguous(ns.permute(I, (2, 0, 1, 4, 3))))  # (Tn, S, Tk, Nc, PR)
            y = ns.matmul(c["w"], ns.reshape(D, (Tn, S * Tk, Nc * PR)))  # (Tn, 1, Nc*PR)
        y = ns.reshape(y, (Tn * Nc, PR))[:N] if y.shape[0] != N or y.ndim != 2 else y
        if c["off"]:
            y = y - ns.sum(codes, 0)[None, :] * c["off"]
        if PR != R:
            y = y[:, :R] - y[:, R:]
        return y if s is None else y * s

    def _fusable(self, c) -> bool:
        """Whether ``_rowsum_fused`` applies: every group in the c / (alpha - c) form, linear cells,
        a plain ADC (bits, no INL)."""
        adc = self.spec.adc
        return (not c["ksinh"] and adc.bits is not None and not adc.inl_lsb
                and all("alpha_np" in g for g in c["groups"]))

    def _rowsum_fused(self, ns, c, codes):
        """``_rowsum_t`` with the fused CPU kernels: per block of tiles one pass for the DAC voltages
        (``cpu_kernels.dac_rowsum``), the tile products (BLAS), one pass for ADC + accumulation
        (``cpu_kernels.adc_accumulate``). Blocks from ``_block_slices``, as ``_rowsum_t``; their constant
        views are made once per number of input columns (``_fused_blocks``)."""
        S, Tk, Tn, M, Nc = self.Gn.shape
        K = self.shape[0]
        PR = codes.shape[1]
        cn = ns.np(codes)
        parts = self._code_parts(cn, K, M, c["Kf"])
        y = ns.empty((Tn, Nc, PR))
        yn = ns.np(y)
        full, clip = ns.scalar(self.spec.adc.full_code), not c["noclip"]
        kern = cpu_kernels.kernels()
        for part, tk, al, G, wn, vshape, ishape, y0, y1, nc, first in self._fused_blocks(c, PR, cn.itemsize):
            V = ns.empty(vshape)  # (n, s, t, m, PR)
            kern.dac_rowsum(al, parts[part][tk], ns.np(V).reshape(al.shape + (PR,)))
            I = ns.matmul(G, V)  # (n, s, t, nc, PR), ADC input in LSB
            kern.adc_accumulate(ns.np(I).reshape(ishape), wn, full, clip, yn[y0:y1, :nc], first)
        return y

    @staticmethod
    def _code_parts(codes, K: int, M: int, Kf: int) -> dict:
        """The DAC codes (K, PR) of each row-block part as views: "full" (Kf/M, M, PR) and "last"
        (1, K - Kf, PR), None where a part is empty. numpy arrays or tensors alike."""
        PR = codes.shape[1]
        return {"full": codes[:Kf].reshape(Kf // M, M, PR) if Kf else None,
                "last": codes[Kf:][None] if Kf < K else None}

    @staticmethod
    def _block_slices(g: dict, S: int, tk_r: int, fit: int) -> list:
        """How a ROWSUM group's tiles are taken, ``fit`` tiles at a time (so that V and the ADC
        input stay within GROUP_BYTES): whole column blocks (all S x tk_r tiles of a column
        block) when one fits, else runs of row blocks of one column block and one array.
        A list of (column-block slice, array slice, row-block slice, first write of y)."""
        a, b = g["tn"]
        if fit >= S * tk_r:
            step = fit // (S * tk_r)
            return [(slice(j, min(j + step, b - a)), slice(None), slice(None), g["first"])
                    for j in range(0, b - a, step)]
        return [(slice(j, j + 1), slice(si, si + 1), slice(t0, min(tk_r, t0 + fit)),
                 g["first"] and si == 0 and t0 == 0)
                for j in range(b - a) for si in range(S) for t0 in range(0, tk_r, fit)]

    def _fused_blocks(self, c, PR: int, itemsize: int) -> list:
        """The blocks of tiles of ``_rowsum_fused`` for PR input columns, with their constant views
        (cached in the namespace's constants, per PR and item size)."""
        key = ("blocks", PR, itemsize)
        blocks = c.get(key)
        if blocks is not None:
            return blocks
        S, Tk, Tn, M, Nc = self.Gn.shape
        fit = max(1, int(GROUP_BYTES // max(1, PR * max(M, Nc) * itemsize)))
        blocks = []
        for g in c["groups"]:
            tk_r = c["Kf"] // M if g["part"] == "full" else 1  # row blocks of the group
            m, nc = g["m"], g["nc"]
            a = g["tn"][0]
            for tn, si, tk, first in self._block_slices(g, S, tk_r, fit):
                al = g["alpha_np"][tn, si, tk]  # (n, s, t, m)
                n, ns_, nt = al.shape[:3]
                wn = g["w_np"][tn].reshape(n, S, tk_r)[:, si, tk].reshape(n, ns_ * nt)
                blocks.append((g["part"], tk, np.ascontiguousarray(al.reshape(n * ns_, nt, m)), g["G"][tn, si, tk],
                               np.ascontiguousarray(wn), (n, ns_, nt, m, PR), (n, ns_ * nt, nc, PR),
                               a + tn.start, a + tn.stop, nc, first))
        if sum(isinstance(k, tuple) for k in c) >= 32:  # a bounded cache: forget other column counts
            for k in [k for k in c if isinstance(k, tuple)]:
                del c[k]
        c[key] = blocks
        return blocks

    def _rowsum_t(self, ns, c, codes, fused=False):
        """ROWSUM DAC load: per tile V = c / (A - B c), ADC, accumulation over (S, Tk): (Tn, Nc, PR)."""
        if fused and self._fusable(c):
            return self._rowsum_fused(ns, c, codes)
        S, Tk, Tn, M, Nc = self.Gn.shape
        PR = codes.shape[1]
        parts = self._code_parts(codes, self.shape[0], M, c["Kf"])  # (Tk', m, PR) views
        y = ns.empty((Tn, Nc, PR))  # every row < N is written by its first group; the rest is dropped
        esize = 8 if ns.name == "numpy" else codes.element_size()
        for g in c["groups"]:
            ct = parts[g["part"]]
            tk_r, m, nc = ct.shape[0], g["m"], g["nc"]
            fit = max(1, int(GROUP_BYTES // max(1, PR * max(m, nc) * esize)))
            for tn, si, tk, first in self._block_slices(g, S, tk_r, fit):
                n = tn.stop - tn.start
                w = g["w"][tn].reshape(n, S, tk_r)[:, si, tk].reshape(n, 1, -1)  # the blocks' tiles' weights
                self._rowsum_block(ns, c, g, y, ct[tk][None, None], tn, si, tk, w, first)
        return y

    def _rowsum_block(self, ns, c, g, y, ct, tn, si, tk, w, first):
        """One block of tiles of a ROWSUM group: DAC voltages, tile products, ADC, accumulation into y."""
        a = g["tn"][0]
        nc = g["nc"]
        G = g["G"][tn, si, tk]  # (n, s, t, nc, m)
        n, ns_, nt, _, m = G.shape
        PR = ct.shape[-1]
        V = ns.empty((n, ns_, nt, m, PR))
        if "alpha" in g:
            ns.sub(g["alpha"][tn, si, tk], ct, out=V)  # alpha - c
        else:
            ns.sub_prod(g["A"][tn, si, tk], g["B"][tn, si, tk], ct, out=V)  # A - B c
        ns.div_(ct, V)  # c / (alpha - c), or c / (A - B c)
        if c["ksinh"]:
            ns.sinh_(ns.mul_(V, c["ksinh"]))
        D = self._adc_(ns, ns.matmul(G, V), not c["noclip"])  # (n, s, t, nc, PR), ADC codes
        r = ns.reshape(ns.matmul(w, ns.reshape(D, (n, ns_ * nt, nc * PR))), (n, nc, PR))
        ys = y[a + tn.start:a + tn.stop, :nc]
        if first:
            ys[...] = r
        else:
            ys += r
