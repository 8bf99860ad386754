"""The Fast Crossbar Model (RxNN paper section V): generation and the evaluation's entry points.

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
   crossbar row (``xbarlab.peripherals.dac``):

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

How it is computed: the DAC codes by ``stages.dac_codes_t`` (or the fused
``cpu_kernels.dac_codes``), everything after them by the model's plan
(``xbarlab.fcm.plans``: one frozen class per DAC-load strategy, compiled once
per model and (device, dtype) by ``FCM.compile``). The evaluation runs on
transposed inputs x^T (K, R) (``matmul_t``; ``matmul`` transposes), where each
row block of DAC codes is a view. On CPU (numpy, or CPU torch tensors of
float32/float64) with numba installed, the element-wise passes run as fused
loops (``xbarlab.fcm.cpu_kernels``) with the same operations in the same
precision, so DAC and ADC codes are bitwise those of the array code
(``XBARLAB_KERNELS=array`` forces the array code; tests compare the two).
The torch path computes in the input's dtype (float32 inputs: float32
throughout, so roundings of the DAC and ADC can differ from the float64
numpy path where a value lies within float32 precision of a rounding
boundary; float64 tensors agree with numpy to ~1e-14; refused where the
converters' codes exceed 2**24: ``stages.check_spec_codes``). The
stage-by-stage oracle of all of it is ``xbarlab.verify.reference``.
"""

from __future__ import annotations

import math

import numpy as np

from ..api import g_nonideal_stack
from ..backend import NumpyNS, namespace_for
from ..engines.ports import row_port_admittance_stack
from ..spec import CrossbarSpec
from . import cpu_kernels
from .compile import full_scale_columns
from .mapping import Mapping, check_tiles, check_weights, conductances, tile, tile_counts
from . import sensing
from .options import DacLoad, FCMOptions, Sensing
from .plans import Plan
from .ranges import CalibratedRange, FixedRange, WorstCase
from .stages import check_spec_codes, dac_codes_t

__all__ = ["FCM", "DacLoad", "FCMOptions"]


def _g_nonideal(G: np.ndarray, spec: CrossbarSpec) -> np.ndarray:
    """G_non-ideal of every tile of G (..., rows, cols); G itself, exactly, without parasitics."""
    if spec.circuit.is_ideal:
        return G.copy()
    flat = G.reshape((-1,) + G.shape[-2:])
    return g_nonideal_stack(flat, spec.circuit).reshape(G.shape)


def _cell_conductances(G: np.ndarray, spec: CrossbarSpec) -> np.ndarray:
    """The linear conductances the crossbar model sees: G, or for 1T-1R cells their G_eff at the
    operating point (``xbarlab.fcm.cells``)."""
    if spec.device.access is None:
        return G
    from .cells import effective_tiles

    return effective_tiles(G, spec)


def _port_admittance(G: np.ndarray, spec: CrossbarSpec) -> np.ndarray:
    """Row-port admittance Y (..., rows, rows); diag(row sums of G), exactly, without parasitics."""
    if spec.circuit.is_ideal:
        Y = np.zeros(G.shape[:-1] + (G.shape[-2],))
        idx = np.arange(G.shape[-2])
        Y[..., idx, idx] = G.sum(axis=-1)
        return Y
    flat = G.reshape((-1,) + G.shape[-2:])
    return row_port_admittance_stack(flat, spec.circuit).reshape(G.shape[:-1] + (spec.rows,))


def _adc_full_scale(spec: CrossbarSpec, options: FCMOptions, Gn: np.ndarray, calibrated=None) -> np.ndarray:
    """ADC full scale per tile (S, Tk, Tn), ampere, as ``options.adc_range`` says (``xbarlab.fcm.ranges``):

    * ``FixedRange(a)``: a everywhere;
    * ``CalibratedRange``: ``calibrated`` (S, Tk, Tn) (``per="tile"``) or (S, Tk, Tn, Nc) (``per="column"``),
      finite and > 0, from ``calibration.calibrate_adc``; None gives the worst case below as a placeholder
      (``FCM.compile`` refuses to evaluate it);
    * ``WorstCase()``: the hardware's fixed ``ADCParams.full_scale_a`` when set, else the largest column
      current at full-scale input, unloaded (v_read, or sinh(b g v_read) / (b g) for sinh cells, times Gn).
    """
    adc, rule = spec.adc, options.adc_range
    if isinstance(rule, FixedRange):
        return np.full(Gn.shape[:3], rule.full_scale_a)
    if isinstance(rule, CalibratedRange) and calibrated is not None:
        fs = np.asarray(calibrated, dtype=float)
        shape = Gn.shape[:3] + ((Gn.shape[4],) if rule.per == "column" else ())
        if fs.shape != shape or not np.all(np.isfinite(fs)) or not np.all(fs > 0):
            raise ValueError(f"adc_full_scale_a must be finite, > 0 ampere and of shape {shape} (one per "
                             f"{rule.per}), got shape {fs.shape} in [{np.min(fs)!r}, {np.max(fs)!r}]")
        return fs.copy()
    if adc.full_scale_a is not None and not isinstance(rule, CalibratedRange):
        return np.full(Gn.shape[:3], adc.full_scale_a)
    v = spec.dac.v_read
    b = spec.device.sinh_b * options.sinh_gamma
    if b > 0:
        v = math.sinh(b * v) / b
    fs = v * Gn.sum(axis=-2).max(axis=-1)
    return np.where(fs > 0, fs, 1.0)


def _model_full_scale(spec: CrossbarSpec, options: FCMOptions, Gn, given) -> np.ndarray | None:
    """The model's ADC full scale (ampere): ``_adc_full_scale`` for separate ADCs, else the sensing
    scheme's (one ADC per pair or per data column: (1, Tk, Tn), the difference's full scale)."""
    if given is not None and not isinstance(options.adc_range, CalibratedRange):
        raise ValueError(f"adc_full_scale_a values need adc_range CalibratedRange, got {options.adc_range!r}")
    if spec.adc.bits is None and isinstance(options.adc_range, FixedRange):  # (it was ignored: y the same)
        raise ValueError(f"adc_range {options.adc_range!r} given with an ideal ADC (bits=None), which neither clips nor "
                         f"quantizes: a fixed full scale has no effect on it (give the ADC bits, or adc_range WorstCase())")
    if Gn is None:
        return None
    if options.sensing is Sensing.SEPARATE:
        return _adc_full_scale(spec, options, Gn, given)
    return sensing.full_scale(spec, options, Gn)


class FCM:
    """A weight matrix programmed onto crossbar tiles: ``y = fcm.matmul(x) ~ x @ W``.

    Build with ``FCM.from_weights`` (or ``FCM.from_tiles`` for given
    conductances). Attributes (read-only by convention):

        spec, options: the hardware and the model settings.
        shape: (K, N) of W.
        w_max: the weight that maps to g_max (max |W|).
        G: programmed conductances after variation and faults, S,
            shape (S, Tk, Tn, rows, cols) with S = 2 (G+, G-) or 1.
        Gn: G_non-ideal of each tile, S, same shape (for 1T-1R cells built on their
            G_eff at the operating point, ``xbarlab.fcm.cells``).
        Y: row-port admittance of each tile, S, (S, Tk, Tn, rows, rows),
            only for ``DacLoad.EXACT`` (else None).
        adc_full_scale_a: ADC full scale per tile, ampere, (S, Tk, Tn), or per
            column (S, Tk, Tn, Nc) for ``CalibratedRange(per="column")``, as
            ``options.adc_range`` says (``_adc_full_scale``); the calibrated
            values are given to the constructor (``calibration.calibrate_adc``).
            ``adc_full_scale_columns`` is it as (S, Tk, Tn, 1 or Nc).
        adc_calibrated: False only for a ``CalibratedRange`` model without its
            values (it refuses to evaluate).

    ``matmul`` accepts numpy arrays or torch tensors (CPU or CUDA) and
    returns the same type. The evaluation's plan is compiled once per
    (device, dtype) (``compile``) and kept with the model, which is otherwise immutable.
    """

    def __init__(self, spec: CrossbarSpec, options: FCMOptions, shape: tuple[int, int], w_max: float,
                 G: np.ndarray | None, Gn: np.ndarray | None, Y: np.ndarray | None = None,
                 adc_full_scale_a=None) -> None:
        if not isinstance(spec, CrossbarSpec):
            raise ValueError(f"spec must be a CrossbarSpec, got {type(spec).__name__}")
        if not isinstance(options, FCMOptions):
            raise ValueError(f"options must be an FCMOptions, got {type(options).__name__}")
        self.spec, self.options, self.shape, self.w_max = spec, options, (int(shape[0]), int(shape[1])), float(w_max)
        self.G, self.Gn, self.Y = G, Gn, Y
        if options.dac_load is DacLoad.EXACT and Gn is not None and Y is None:
            raise ValueError("DacLoad.EXACT needs the row-port admittance Y")
        sensing.check(spec, options)
        self.adc_full_scale_a = _model_full_scale(spec, options, Gn, adc_full_scale_a)
        self.adc_calibrated = not isinstance(options.adc_range, CalibratedRange) or adc_full_scale_a is not None
        # the ADC's clip provably cannot act only under the worst-case range (compile.compile_plan)
        self.adc_worst_case = isinstance(options.adc_range, WorstCase) and spec.adc.full_scale_a is None
        self._plans: dict = {}  # (device, dtype) -> Plan (``compile``)
        self._compiled = None  # the plan compiled, before its move to any (device, dtype)

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
        if options.sensing is Sensing.REFERENCE:  # + the reference column of each tile (sensing.py)
            Gt = sensing.with_reference_column(Gt, dev)
        Gp = dev.sample(Gt, rng) if random_dev else Gt
        return cls.from_tiles(Gp, spec, options, W.shape, w_max)

    @classmethod
    def from_tiles(cls, G, spec: CrossbarSpec, options: FCMOptions, shape: tuple[int, int],
                   w_max: float) -> "FCM":
        """A model of programmed G (S, Tk, Tn, rows, cols (+1 reference)), S, for W (K, N) = ``shape``, max |W| = ``w_max``
        (checked: ``mapping.check_tiles``)."""
        G = check_tiles(G, shape, w_max, spec.rows, spec.cols, int(options.sensing is Sensing.REFERENCE), options.mapping)
        Gc = _cell_conductances(G, spec)
        Gn = _g_nonideal(Gc, spec)
        Y = _port_admittance(Gc, spec) if options.dac_load is DacLoad.EXACT else None
        return cls(spec, options, shape, w_max, G, Gn, Y)

    def regenerate(self, W, rng: np.random.Generator | None) -> "FCM":
        """A new model of the same spec and options for new weights (e.g. after re-training)."""
        return type(self).from_weights(W, self.spec, rng, self.options)

    def with_options(self, **changes) -> "FCM":
        """The same hardware instance under other model settings (no re-sampling). Calibrated ADC
        values are not carried over (they depend on the settings): calibrate the new model again."""
        opts = self.options.replace(**changes)
        if opts.mapping is not self.options.mapping:  # (G+, G- read as one offset array, or the reverse)
            raise ValueError(f"mapping={opts.mapping.value!r}: the conductances were programmed for mapping="
                             f"{self.options.mapping.value!r} (from_weights maps W anew)")
        if (opts.sensing is Sensing.REFERENCE) != (self.options.sensing is Sensing.REFERENCE):
            raise ValueError(f"sensing={opts.sensing.value!r}: a reference column is programmed with the "
                             f"model (from_weights), not switched on a model of sensing={self.options.sensing.value!r}")
        if self.Gn is None:
            return type(self)(self.spec, opts, self.shape, self.w_max, None, None)
        Y = self.Y
        if opts.dac_load is DacLoad.EXACT and Y is None:
            Y = _port_admittance(_cell_conductances(self.G, self.spec), self.spec)
        return type(self)(self.spec, opts, self.shape, self.w_max, self.G, self.Gn, Y)

    def __repr__(self) -> str:
        return (f"FCM(shape={self.shape}, spec={self.spec.name or 'custom'!r} {self.spec.rows}x{self.spec.cols}, "
                f"tiles={self.n_tiles}, dac_load={self.options.dac_load.value}, mapping={self.options.mapping.value})")

    @property
    def adc_full_scale_columns(self) -> np.ndarray | None:
        """``adc_full_scale_a`` as (S, Tk, Tn, C), ampere: C = Nc per column, 1 per tile (broadcasts over columns)."""
        return full_scale_columns(self.adc_full_scale_a)

    @property
    def n_tiles(self) -> int:
        k, n = self.shape
        tk, tn = tile_counts(k, n, self.spec.rows, self.spec.cols)
        return tk * tn * (2 if self.options.mapping is Mapping.DIFFERENTIAL else 1)

    # ------------------------------------------------------------------ evaluation
    def compile(self, ns=None) -> Plan:
        """The evaluation plan of this model for namespace ``ns`` (numpy float64 when None): compiled
        once (``compile.compile_plan``) and moved to each (device, dtype) once, then kept with the model."""
        ns = ns or NumpyNS()
        if not self.adc_calibrated:
            raise ValueError("adc_range is CalibratedRange but this model has no calibrated ADC full scales; "
                             "use xbarlab.fcm.calibration.calibrate_adc(fcm, x_calibration)")
        p = self._plans.get(ns.key)
        if p is None:
            check_spec_codes(ns, self.spec, self.options.sensing)  # (float32 holds codes up to 2**24 only)
            if self._compiled is None:  # (float64 numpy arrays, moved to numpy too for its host views)
                self._compiled = sensing.compile_sensing(self)
            p = self._plans[ns.key] = self._compiled.to(ns)
        return p

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
        """(codes (P, B, K), x_scale: (B, 1), or the fixed x_max as a float) of the DAC for x (B, K); P = 1 or 2."""
        ns, xa = self._check_x(x)
        X = xa if xa.ndim == 2 else xa[None]
        # stages.dac_codes_t on x^T, transposed back: both phases stacked along the batch axis
        c, s = dac_codes_t(ns, ns.contiguous(ns.permute(X, (1, 0))), self.spec.dac, self.options.x_max, None)
        if self.options.x_max is None:
            s = ns.permute(s, (1, 0))
        return ns.reshape(ns.permute(c, (1, 0)), (-1,) + tuple(X.shape)), s

    def tile_currents(self, codes):
        """Analog column currents (A) before the ADC for DAC codes (B', K): (S, Tk, Tn, B', cols) (cols + 1 with
        ``Sensing.REFERENCE``: the reference column last).

        The plan's first stage, the same code that ``matmul`` runs before its ADC; the zero padding's columns past
        N are not part of y (0, or their padding cells' current). numpy codes are checked (integers in 0..full)."""
        ns, c = namespace_for(codes)
        if c.ndim != 2 or c.shape[1] != self.shape[0]:
            raise ValueError(f"codes must be (B, K) with K={self.shape[0]}, got shape {tuple(c.shape)}")
        if ns.name == "numpy":
            c = self.spec.dac.check_codes(c)
        if self.Gn is None:
            raise ValueError("an all-zero W has no tiles (matmul returns zeros)")
        with ns.no_grad():
            I = self.compile(ns).currents(ns, ns.contiguous(ns.permute(c, (1, 0))), ns.host and cpu_kernels.enabled())
        return ns.permute(I, (0, 1, 2, 4, 3))

    def matmul(self, x, *, check_finite: bool = True, signed: bool | None = None):
        """y ~ x @ W for x of shape (B, K) (or (K,)), in the weights' units.

        x is a numpy array (result float64 numpy) or a torch.Tensor (result of
        x's floating dtype, torch's default for integers, on x's device, without
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
        """y^T = (x @ W)^T (N, R) for x^T (K, R): ``matmul`` (same options, same values) in the evaluation's own
        layout, which saves two transposing copies for a caller with (K, R) inputs (im2col patches as columns)."""
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

    def _eval_t(self, ns, XT, signed):
        """y^T (N, R) for contiguous x^T (K, R)."""
        fused = ns.host and cpu_kernels.enabled()
        codes, s = dac_codes_t(ns, XT, self.spec.dac, self.options.x_max, signed, fused)  # (K, PR)
        return self._eval_codes_t(ns, codes, s, XT.shape[1], fused)

    def matmul_codes_t(self, codes, scale, n_vectors: int, *, scaled: bool = True, code_sums=None):
        """y^T (N, R) from DAC codes already made (``codes`` (K, P*R), ``scale`` (1, R) or the fixed x_max,
        as ``stages.dac_codes_t`` or ``cpu_kernels.dac_codes[_conv]`` give them for x^T (K, R), R = ``n_vectors``,
        P = 2 with the negative phase in columns R..2R): the second half of ``matmul_t``, for a caller that
        makes codes from its own layout (a convolution's image). No checks beyond the shape. ``scaled=False``
        leaves out the multiplication of column r by its DAC scale (the caller does it in its own layout).
        ``code_sums`` (P*R,): each column's sum of codes, exact, when the caller made them with the codes and
        ``compile().uses_code_sums`` (the offset mapping's digital offset), else None (summed here)."""
        ns, codes = namespace_for(codes)
        if codes.ndim != 2 or codes.shape[0] != self.shape[0] or codes.shape[1] not in (n_vectors, 2 * n_vectors):
            raise ValueError(f"codes must be (K, R) or (K, 2R) with K={self.shape[0]}, R={n_vectors}; "
                             f"got shape {tuple(codes.shape)}")
        if self.Gn is None:
            return ns.zeros((self.shape[1], n_vectors))
        with ns.no_grad():
            return self._eval_codes_t(ns, codes, scale if scaled else None, n_vectors,
                                      ns.host and cpu_kernels.enabled(), code_sums)

    def _eval_codes_t(self, ns, codes, s, R, fused, code_sums=None):
        """y^T (N, R) from DAC codes; s is the DAC scale to multiply by, or None for unscaled."""
        y = self.compile(ns).evaluate(ns, codes, R, fused, code_sums)
        return y if s is None else y * s
