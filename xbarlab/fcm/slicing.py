"""Bit-slicing: weights split over several devices of fewer bits, inputs fed bit-serially.

Composition over the public FCM (``FCM.from_tiles``, ``with_options``,
``matmul_t``): every weight slice is its own crossbar (an ``FCM`` with its own
tiles, differential pair, G_non-ideal and ADCs), and the outputs are combined
with digital shift-and-add. Nothing of the FCM's evaluation is written again.

Weights (``Slicing.weight_slices`` = S, devices of ``L = spec.device.levels``
levels, so each slice holds one base-L digit; ``bits`` b gives L = 2**b):

* the weight is quantized once to ``L**S - 1`` steps of w_max / (L**S - 1)
  (w_max = max |W|), and its integer code is written in base L: digit s of
  slice s (s = 0 the least significant). 6-bit weights on 2-bit devices are
  S = 3 slices of one 2-bit digit each.
* signed weights, ``Mapping.DIFFERENTIAL`` (sign-magnitude): the magnitude
  m = rint(|w| / w_max (L**S - 1)) is sliced, and every slice is its own
  G+/G- pair carrying sign(w) * digit_s (G+ at the digit for w > 0, G- for
  w < 0, the other cell at g_min): 2 S arrays per tile position.
* ``Mapping.OFFSET`` with more than one slice is refused (ValueError): the
  FCM's offset mapping removes the current of the mid-level cell q(1/2),
  which for 2**b levels is not a whole digit, so the slices' offsets would
  not add up to the weight's; with one slice (bit-serial inputs only) the
  offset mapping runs as in the FCM.
* each slice maps its digits with a full scale of L - 1 (``FCM.from_tiles``
  with w_max = L - 1), so a digit lands exactly on a device level even when
  no weight of the slice reaches the top digit. Variation and faults are
  drawn per slice, slice 0 first, from the one ``rng``.
* y = w_max / (L**S - 1) * sum_s L**s y_s, with y_s the slice's FCM output
  in digit units.

Inputs (``Slicing.input_bits_per_cycle`` = b of a ``spec.dac.bits`` = B-bit
input code, None = all B bits in one cycle):

* the B-bit codes are made exactly as the FCM makes them (scale per vector
  by max |x|, or the fixed ``FCMOptions.x_max``; signed inputs in two
  phases), then fed ceil(B / b) cycles of b bits each, least significant
  first, through a b-bit DAC (b = 1: TxSim's 1-bit DAC, a row at 0 V or at
  v_read). The DAC of a cycle is the spec's (same v_read and R_PD) at b bits.
* every cycle runs through the same slice FCMs (the same hardware); each
  cycle's ADC outputs are combined digitally: y = x_scale / (2**B - 1) *
  sum_k 2**(b k) y_k, then the phases are subtracted (a vector without negative codes has no
  negative phase: its cycles are not run). Inputs of a dtype that does not hold the
  B-bit codes exactly (float32 beyond 24 bits) are refused (ValueError).

ADC ranging: every slice's ADCs are those of an FCM of the spec: one per
physical column, full scale fixed (``ADCParams.full_scale_a``) or the tile's
worst case (every row at full input, i.e. at v_read, which is also the most a
b-bit cycle can drive), per slice, tile and array of the pair; resolution
``spec.adc.bits`` per conversion. A slice of low-significance digits thus
uses its ADC's full range for its own, smaller, currents; its quantization
error is then scaled down by L**s in the sum.

With one slice and all input bits in one cycle, ``SlicedFCM`` is not used
(``build`` returns the plain ``FCM``), so the default is bitwise today's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..backend import namespace_for
from ..spec import CrossbarSpec
from .mapping import Mapping, check_weights, conductances, tile
from .model import FCM
from .options import FCMOptions
from .stages import dac_codes_t

__all__ = ["Slicing", "SlicedFCM", "build", "slice_weights"]

MAX_SLICES = 16
#: the largest combined integer code: beyond 2**52 a float64 sum no longer resolves one step
MAX_CODE = 2**52


def _int_field(name: str, v, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise ValueError(f"Slicing.{name} must be an integer in {lo}..{hi}, got {v!r}")
    return int(v)


@dataclass(frozen=True)
class Slicing:
    """How weights and inputs are split (hardware choices, not model settings).

    Attributes:
        weight_slices: devices per weight, 1..16 (1: one device per weight,
            the unsliced FCM); each holds one digit of the device's levels.
        input_bits_per_cycle: DAC bits fed per cycle, 1..32, at most the
            DAC's bits; None feeds all of them in one cycle (no bit-serial).
    """

    weight_slices: int = 1
    input_bits_per_cycle: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight_slices", _int_field("weight_slices", self.weight_slices, 1, MAX_SLICES))
        if self.input_bits_per_cycle is not None:
            object.__setattr__(self, "input_bits_per_cycle",
                               _int_field("input_bits_per_cycle", self.input_bits_per_cycle, 1, 32))

    def cycles(self, dac_bits: int) -> int:
        """Input cycles per vector and phase for a ``dac_bits`` DAC code."""
        b = self.input_bits_per_cycle
        return 1 if b is None or b >= dac_bits else -(-dac_bits // b)

    def is_plain(self, spec: CrossbarSpec) -> bool:
        """Whether this is the unsliced FCM (one slice, one input cycle) on ``spec``."""
        return self.weight_slices == 1 and self.cycles(spec.dac.bits) == 1

    def check(self, spec: CrossbarSpec, options: FCMOptions | None = None) -> None:
        """ValueError naming the field when this slicing does not fit ``spec`` (and ``options``)."""
        if self.weight_slices > 1 and options is not None and options.mapping is Mapping.OFFSET:
            raise ValueError(f"Slicing.weight_slices={self.weight_slices} needs mapping 'differential' "
                             f"(sign-magnitude slices); the offset mapping's mid-level offset is not a whole digit")
        b = self.input_bits_per_cycle
        if b is not None and b > spec.dac.bits:
            raise ValueError(f"Slicing.input_bits_per_cycle must be at most the DAC's {spec.dac.bits} bits, got {b}")
        if self.weight_slices > 1:
            L = spec.device.levels
            if L is None:
                raise ValueError(f"Slicing.weight_slices={self.weight_slices} needs devices with levels "
                                 f"(DeviceParams.bits or levels); the device is analog (levels=None)")
            if L ** self.weight_slices - 1 > MAX_CODE:
                raise ValueError(f"Slicing.weight_slices={self.weight_slices} of {L}-level devices gives "
                                 f"{L}**{self.weight_slices} - 1 weight steps, beyond the 2**52 float64 resolves")

    def to_dict(self) -> dict:
        return {"weight_slices": self.weight_slices, "input_bits_per_cycle": self.input_bits_per_cycle}


def slice_weights(W, levels: int, slices: int) -> tuple[list, float]:
    """(per-slice digit matrices, w_max): W (K, N) in sign-magnitude, the magnitude code
    m = rint(|w| / w_max (L**S - 1)) written in base L = ``levels``, slice 0 least significant; slice s
    holds sign(w) * digit_s(m), so sum_s L**s W_s = sign(W) m ~ W (L**S - 1) / w_max."""
    W = check_weights(W)
    w_max = float(np.max(np.abs(W)))
    f = W / w_max if w_max > 0 else np.zeros_like(W)
    code, sign = np.rint(np.abs(f) * float(levels**slices - 1)), np.sign(f)
    out = []
    for _ in range(slices):
        d = np.mod(code, levels)
        code = (code - d) / levels  # exact: integers below 2**52
        out.append(sign * d)
    return out, w_max


class SlicedFCM:
    """Weights over ``weight_slices`` FCMs, inputs in ``cycles`` bit-serial cycles: ``matmul_t(xt) ~ (x @ W)^T``.

    Attributes (read-only by convention): spec, options, slicing, shape (K, N),
    w_max, fcms (one FCM per slice, least significant first, evaluated with
    the cycle's DAC), cycles.
    """

    def __init__(self, spec: CrossbarSpec, options: FCMOptions, slicing: Slicing, shape: tuple[int, int],
                 w_max: float, fcms: list) -> None:
        self.spec, self.options, self.slicing = spec, options, slicing
        self.shape = (int(shape[0]), int(shape[1]))
        self.w_max = float(w_max)
        self.fcms = list(fcms)
        self.cycles = slicing.cycles(spec.dac.bits)
        self.levels = 2 if spec.device.levels is None else int(spec.device.levels)

    @classmethod
    def from_weights(cls, W, spec: CrossbarSpec, rng: np.random.Generator | None,
                     options: FCMOptions | None = None, slicing: Slicing | None = None) -> "SlicedFCM":
        """Slice W (K, N) (``slice_weights``) and program each slice onto its own crossbar tiles of ``spec``."""
        options = options or FCMOptions()
        slicing = slicing or Slicing()
        if not isinstance(spec, CrossbarSpec):
            raise ValueError(f"spec must be a CrossbarSpec, got {type(spec).__name__}")
        if not isinstance(slicing, Slicing):
            raise ValueError(f"slicing must be a Slicing, got {type(slicing).__name__}")
        slicing.check(spec, options)
        W = check_weights(W)
        cyc = slicing.cycles(spec.dac.bits)
        sspec, sopts = spec, options
        if cyc > 1:  # every cycle drives the rows through a b-bit DAC whose codes are the cycle's bits
            b = slicing.input_bits_per_cycle
            sspec = spec.replace(dac=dataclasses.replace(spec.dac, bits=b))
            sopts = options.replace(x_max=float(2**b - 1))
        dev = spec.device
        random_dev = dev.variation > 0 or dev.stuck_on_rate > 0 or dev.stuck_off_rate > 0
        if rng is None and random_dev:
            raise ValueError("rng must be a numpy.random.Generator when the device has variation or faults, got None")
        if slicing.weight_slices == 1:
            fcms = [FCM.from_weights(W, sspec, rng, sopts)]
            w_max = fcms[0].w_max
        else:
            L = int(dev.levels)
            digits, w_max = slice_weights(W, L, slicing.weight_slices)
            fcms = []
            for Ws in digits:
                Gt = conductances(tile(Ws, spec.rows, spec.cols), dev, float(L - 1), options.mapping)
                Gp = dev.sample(Gt, rng) if random_dev else Gt
                fcms.append(FCM.from_tiles(Gp, sspec, sopts, W.shape, float(L - 1)))
        return cls(spec, options, slicing, W.shape, w_max, fcms)

    def regenerate(self, W, rng: np.random.Generator | None) -> "SlicedFCM":
        return type(self).from_weights(W, self.spec, rng, self.options, self.slicing)

    def with_options(self, **changes) -> "SlicedFCM":
        """The same hardware instance under other model settings (each slice's ``FCM.with_options``)."""
        opts = self.options.replace(**changes)
        cyc = {"x_max": self.fcms[0].options.x_max} if self.cycles > 1 else {}
        return type(self)(self.spec, opts, self.slicing, self.shape, self.w_max,
                          [f.with_options(**{**changes, **cyc}) for f in self.fcms])

    @property
    def n_tiles(self) -> int:
        """Physical arrays: every slice's tiles (and pairs)."""
        return sum(f.n_tiles for f in self.fcms)

    def __repr__(self) -> str:
        return (f"SlicedFCM(shape={self.shape}, slices={self.slicing.weight_slices}, cycles={self.cycles}, "
                f"tiles={self.n_tiles})")

    # ------------------------------------------------------------------ evaluation
    def matmul(self, x, *, check_finite: bool = True, signed: bool | None = None):
        """y ~ x @ W for x (B, K) or (K,): ``matmul_t`` on transposed inputs; same type as x."""
        ns, xa = namespace_for(x)
        single = xa.ndim == 1
        X = xa[None] if single else xa
        if X.ndim != 2 or X.shape[-1] != self.shape[0]:
            raise ValueError(f"x must be (K,) or (B, K) with K={self.shape[0]}, got shape {tuple(xa.shape)}")
        y = ns.contiguous(ns.permute(self.matmul_t(ns.contiguous(ns.permute(X, (1, 0))), check_finite=check_finite,
                                                   signed=signed), (1, 0)))
        return y[0] if single else y

    __call__ = matmul

    def matmul_t(self, xt, *, check_finite: bool = True, signed: bool | None = None, run=None):
        """y^T (N, R) for x^T (K, R), numpy or torch (same type back).

        ``run(fcm, inputs (K, R), signed) -> (N, R)`` evaluates one slice FCM
        (default: ``fcm.matmul_t``); ``xbarlab.verify`` passes ngspice's
        evaluation there, so the verified path is this one.
        """
        ns, xa = namespace_for(xt)
        if xa.ndim != 2 or xa.shape[0] != self.shape[0]:
            raise ValueError(f"xt must be (K, R) with K={self.shape[0]}, got shape {tuple(xa.shape)}")
        if check_finite and not ns.isfinite_all(xa):
            raise ValueError("x must be finite; found NaN or Inf")
        if run is None:
            def run(f, inp, sg):
                return f.matmul_t(inp, check_finite=False, signed=sg)
        if self.cycles == 1:
            return self._shift_add(ns, [run(f, xa, signed) for f in self.fcms])
        full = self.spec.dac.full_code
        if float(ns.scalar(full)) != full:  # (float32 beyond 2**24: the top code rounded up to 2**B, whose
            # bits B.. are past the last cycle, and it was fed as 0)
            raise ValueError(f"x's dtype does not hold the DAC's {self.spec.dac.bits}-bit codes exactly (its top "
                             f"code {full} rounds to {float(ns.scalar(full)):.0f}), so their bits cannot be fed "
                             f"serially; give float64 inputs")
        phases, s = self._input_codes(ns, xa, signed)
        b = self.slicing.input_bits_per_cycle
        y = None
        for sign, c in phases:
            # (a vector without negative codes has no negative phase: not converted, as in the FCM's plans; its
            # cycles read an ADC's offset at 0 A, and a vector's y depended on whether its batch was signed)
            keep = None if sign > 0 else ns.sum(c, 0)[None, :] > 0
            for k in range(self.cycles):
                hi = ns.floor(c / float(2 ** (b * (k + 1))))
                ck = ns.floor(c / float(2 ** (b * k))) - hi * float(2**b)  # bits b k .. b (k + 1) - 1 of the code
                yk = self._shift_add(ns, [run(f, ck, False) for f in self.fcms]) * (sign * float(2 ** (b * k)))
                yk = yk if keep is None else ns.where(keep, yk, yk * 0)
                y = yk if y is None else y + yk
        return y * (s / float(self.spec.dac.full_code))

    def _shift_add(self, ns, ys: list):
        """sum_s L**s y_s in weight units (slice outputs in digit units); the one FCM's output as is."""
        if self.slicing.weight_slices == 1:
            return ys[0]
        y = ys[0]
        for s, ys_ in enumerate(ys[1:], start=1):
            y = y + ys_ * float(self.levels**s)
        return y * (self.w_max / float(self.levels ** self.slicing.weight_slices - 1))

    def _input_codes(self, ns, xa, signed):
        """[(+1, codes), (-1, codes)] (K, R) of the spec's B-bit DAC and the scale (1, R) or the fixed
        x_max: the FCM's own DAC stage (``stages.dac_codes_t``), its two phases split."""
        c, s = dac_codes_t(ns, xa, self.spec.dac, self.options.x_max, signed)
        R = xa.shape[1]
        out = [(1.0, c[:, :R])]
        if c.shape[1] != R:  # signed: the negative phase in columns R..2R
            out.append((-1.0, c[:, R:]))
        return out, s


def build(W, spec: CrossbarSpec, rng: np.random.Generator | None, options: FCMOptions | None = None,
          slicing: Slicing | None = None):
    """The model of W under ``slicing``: the plain ``FCM`` (bitwise today's) when it is one slice and one
    input cycle, else a ``SlicedFCM``."""
    if slicing is None or (isinstance(slicing, Slicing) and slicing.is_plain(spec)):
        if slicing is not None:
            slicing.check(spec, options)
        return FCM.from_weights(W, spec, rng, options)
    return SlicedFCM.from_weights(W, spec, rng, options, slicing)


def total_weight_bits(spec: CrossbarSpec, slicing: Slicing) -> float | None:
    """Bits of a sliced weight's magnitude code, log2(L**S); None for an analog device."""
    L = spec.device.levels
    return None if L is None else slicing.weight_slices * math.log2(L)
