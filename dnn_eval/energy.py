"""Energy per inference of a network on crossbars: a per-operation count model.

For every crossbar layer and every input vector it multiplies (one per
output pixel of a convolution, one per sample of a Linear layer), with
P = 2 phases for signed inputs (see ``dnn_eval.layers``) and 1 otherwise,
S = 2 crossbars per tile for the differential weight mapping, and
Tk x Tn tiles of rows x cols:

==================  =========================================================
operation           count per input vector and phase
==================  =========================================================
DAC conversion      S * Tk * Tn * rows (every row of every tile is driven,
                    used or not: an under-filled tile still pays)
ADC conversion      S * Tk * Tn * cols
crossbar read       S * Tk * Tn * rows * cols cells, each v_read**2 *
                    g_mean * t_read * activity joule
buffer read         K input words of ``dac.bits`` bits (im2col re-reads),
                    per input vector only: one read word feeds both
                    phases and every input cycle
buffer write        N output words of ``out_bits`` bits, per input vector
digital add         N * (P * S * Tk - 1) partial-sum additions
==================  =========================================================

Bit-slicing (``xbarlab.fcm.slicing.Slicing``): with W weight slices every
tile position holds W times the arrays (S * W per tile), and with inputs fed
in C = ceil(dac.bits / b) cycles of b bits every array is read C times per
input vector and phase. Then, per input vector and phase: DAC conversions
S * W * Tk * Tn * rows * C, each of b bits (a 1-bit DAC per cycle for
TxSim's setting); ADC conversions and crossbar reads S * W * Tk * Tn * cols
* C and S * W * Tk * Tn * rows * cols * C; digital adds N * (P * S * W * Tk
* C - 1) (the shift of shift-and-add is wiring). Buffer reads and writes
are unchanged (counted once per input vector, not per phase or cycle). The cell energy keeps ``activity`` (ASSUMED the same for a
bit-serial cycle's 0/1 inputs). W = C = 1 is the table above.

Mapping and sensing (``FCMOptions.mapping``, ``.sensing``; ``xbarlab.fcm.sensing``)
set A, the arrays per tile position, and where the subtraction happens:

==========================  ===  ========================  ======================  ==================
mapping / sensing           A    cells read per array      ADC conversions         digital adds
==========================  ===  ========================  ======================  ==================
differential / separate     2    rows * cols               A * cols (one per       N * (P*C*W*A*Tk - 1)
                                                           array column)
differential / differential 2    rows * cols               cols (one per pair)     N * (P*C*W*Tk - 1)
offset / separate           1    rows * cols               cols                    N * (P*C*Tk - 1) + N
                                                                                   + P*C*(K - 1)
offset / reference          1    rows * (cols + 1)         cols (the reference     N * (P*C*Tk - 1)
                                                           column has none)
==========================  ===  ========================  ======================  ==================

per tile, input vector, phase and cycle (ADC, cells) or per input vector (adds); DAC conversions are
A * W * Tk * Tn * rows * C per vector and phase in every case. The offset mapping's digital offset
(separate sensing) is the sum of the K codes (K - 1 adds per phase and cycle) and one subtraction per
output; the bipolar ADC of a difference is counted at the cost of the separate ADC of the same bits.
The default (``options=None``) is the default FCMOptions: differential pair, separate sensing.

1T-1R cells (``spec.device.access`` set) add the gate lines (category
``gate_line``, outside ``CATEGORIES``: 0 for 1R hardware): every array read
charges the gates of all its rows x cols access transistors and their share
of the gate line to V_G, C V_G**2 joule per cell (``gate_c_f_per_cell``),
with C = the transistor's gate capacitance from its BSIM4 card
(``gate_capacitance_f``) + ``gate_wire_c_f_per_cell``.

Energies per operation are technology inputs (``EnergyParams``), each with
its source in ``EnergyParams.sources()``. Anything not taken from a source
is marked ASSUMED. Operations other than the crossbar layers (pooling,
BatchNorm, activations) are left out, as in the paper, which runs them on
the host. Categories map onto the paper's Fig. 13 as: CMOS-Mem-Read =
buffer read, CMOS-Mem-Write = buffer write, Cross-Computation = DAC + ADC +
crossbar + digital add.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from xbarlab.spec import CrossbarSpec

from .convert import crossbar_layers, to_crossbar
from .layers import CrossbarConv2d

CATEGORIES = ("dac", "adc", "crossbar", "buffer_read", "buffer_write", "digital_add")
GATE = "gate_line"  # 1T-1R gate lines; 0 for 1R hardware
EPS0_F_PER_M = 8.8541878128e-12  # vacuum permittivity (CODATA 2018)


@dataclass(frozen=True)
class EnergyParams:
    """Energy per operation (joule) and timing (second); see ``sources()``.

    Attributes:
        adc_j_8bit: one 8-bit ADC conversion, J.
        adc_bits_ref: resolution of ``adc_j_8bit``, bits.
        dac_j_per_bit: one DAC conversion per bit of resolution, J.
        t_read_s: crossbar read (integration) time, s.
        activity: mean of (input fraction of full scale)**2 over the rows,
            dimensionless, in [0, 1].
        sram_read_j_per_bit: buffer read per bit, J.
        sram_write_j_per_bit: buffer write per bit, J.
        add_j: one 32-bit integer addition, J.
        out_bits: width of a stored output word, bits.
        gate_wire_c_f_per_cell: gate-line wire capacitance per cell pitch, farad (1T-1R cells).
    """

    adc_j_8bit: float = 1.56e-12
    adc_bits_ref: int = 8
    dac_j_per_bit: float = 0.39e-12
    t_read_s: float = 100e-9
    activity: float = 0.1
    sram_read_j_per_bit: float = 20e-12 / 64
    sram_write_j_per_bit: float = 20e-12 / 64
    add_j: float = 0.1e-12
    out_bits: int = 16
    gate_wire_c_f_per_cell: float = 0.05e-15

    def __post_init__(self) -> None:
        for k, v in asdict(self).items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{k} must be a finite number >= 0, got {v!r}")
        if self.activity > 1:
            raise ValueError(f"activity must be in [0, 1], got {self.activity!r}")

    @staticmethod
    def sources() -> dict:
        return {
            "adc_j_8bit": "ISAAC (Shafiee et al., ISCA 2016, Table 1, 32 nm): 8 ADCs of 8 bits at 1.28 GS/s draw "
                          "16 mW -> 2 mW / 1.28e9 = 1.56 pJ per conversion",
            "adc_bits_ref": "resolution of the ISAAC ADC; other resolutions scale as 2**bits (Walden figure of merit, "
                            "R. H. Walden, IEEE JSAC 17(4), 1999; Murmann, ADC Performance Survey) - ASSUMED scaling",
            "dac_j_per_bit": "ISAAC Table 1: 8 x 128 one-bit DACs draw 4 mW over a 100 ns cycle -> 0.39 pJ per 1-bit "
                             "conversion; a b-bit DAC is counted as b of them (bit-serial equivalent) - ASSUMED scaling",
            "t_read_s": "ISAAC: one crossbar read cycle of 100 ns",
            "activity": "ASSUMED 0.1: mean squared input fraction of full scale (post-ReLU activations are sparse)",
            "sram_read_j_per_bit": "Horowitz, 'Computing's energy problem', ISSCC 2014 (45 nm): 64-bit read from a "
                                   "32 KB SRAM = 20 pJ",
            "sram_write_j_per_bit": "ASSUMED equal to the read energy (Horowitz 2014 gives reads only)",
            "add_j": "Horowitz ISSCC 2014 (45 nm): 32-bit integer add = 0.1 pJ",
            "out_bits": "ASSUMED 16-bit stored activations",
            "gate_wire_c_f_per_cell": "ASSUMED 0.05 fF: about 0.2 fF/um of minimum-pitch interconnect times an "
                                      "ASSUMED 0.25 um 1T-1R cell pitch",
            "gate_capacitance": "per access transistor: Cox W_eff L_eff + (CGSO + CGDO) W_eff from its BSIM4 card "
                                "(Cox = EPSROX eps0 / TOXE; L_eff = L + XL - 2 DLC, W_eff = W + XW - 2 DWC; "
                                "the strong-inversion gate capacitance, an upper estimate), charged to V_G once "
                                "per array read - ASSUMED every gate line is switched per read",
            "crossbar": "cell energy v_read**2 * g * t_read with g = (g_min + g_max) / 2 of the CrossbarSpec's device",
        }

    def adc_j(self, bits: int | None) -> float:
        b = self.adc_bits_ref if bits is None else bits
        return self.adc_j_8bit * 2.0 ** (b - self.adc_bits_ref)


def gate_capacitance_f(access) -> float:
    """Gate capacitance (F) of one access NMOS (``xbarlab.transistor.AccessTransistor``) from its BSIM4 card:
    Cox W_eff L_eff + (CGSO + CGDO) W_eff, Cox = EPSROX eps0 / TOXE, L_eff = L + XL - 2 DLC and
    W_eff = W + XW - 2 DWC (DLC, DWC default to LINT, WINT as in BSIM4; CGSO, CGDO default to
    0.6 DLC Cox, BSIM4 4.7 manual). ValueError when the card leaves no positive W_eff, L_eff or TOXE."""
    p = dict(access.model_card().params)
    toxe = float(p.get("toxe", 3e-9))
    cox = float(p.get("epsrox", 3.9)) * EPS0_F_PER_M / toxe if toxe > 0 else float("nan")
    dlc = float(p.get("dlc", p.get("lint", 0.0)))
    dwc = float(p.get("dwc", p.get("wint", 0.0)))
    l_eff = access.l_m + float(p.get("xl", 0.0)) - 2 * dlc
    w_eff = access.w_m + float(p.get("xw", 0.0)) - 2 * dwc
    if not (l_eff > 0 and w_eff > 0 and cox > 0):
        raise ValueError(f"the card leaves no gate (W_eff {w_eff!r} m, L_eff {l_eff!r} m, TOXE {toxe!r} m)")
    ov = sum(float(p.get(k, 0.6 * max(dlc, 0.0) * cox)) for k in ("cgso", "cgdo"))
    return cox * w_eff * l_eff + ov * w_eff


def gate_c_f_per_cell(spec: CrossbarSpec, params: "EnergyParams") -> float:
    """Gate-line capacitance per cell (F): the access transistor's gate and its gate-line wire; 0 for 1R."""
    acc = spec.device.access
    return 0.0 if acc is None else gate_capacitance_f(acc) + params.gate_wire_c_f_per_cell


def _layer_records(model: torch.nn.Module, spec: CrossbarSpec, x: torch.Tensor) -> list[dict]:
    """Shapes and input-vector counts of every crossbar layer for one forward pass of x."""
    xm = to_crossbar(model, spec, None, program=False)
    recs = []

    def hook(op, inp, out):
        a = inp[0]
        signed = bool((a < 0).any())
        per_sample = out[0].numel() // out.shape[1] if isinstance(op, CrossbarConv2d) else int(np.prod(out.shape[1:-1] or (1,)))
        recs.append({"layer": op.name, "shapes": op.shapes(), "vectors": per_sample, "phases": 2 if signed else 1})

    handles = []
    for op in crossbar_layers(xm):
        op.enabled = False
        handles.append(op.register_forward_hook(hook))
    with torch.no_grad():
        xm(x)
    for h in handles:
        h.remove()
    return recs


def _scheme(options) -> tuple[int, int, bool, bool]:
    """(arrays per tile position, extra columns per array, ADC per array (not per pair),
    digital offset) of ``options`` (FCMOptions or None: the defaults); module docstring."""
    from xbarlab.fcm import FCMOptions
    from xbarlab.fcm.mapping import Mapping
    from xbarlab.fcm.options import Sensing

    o = FCMOptions() if options is None else options
    if not isinstance(o, FCMOptions):
        raise ValueError(f"options must be an FCMOptions or None, got {type(o).__name__}")
    pair = o.mapping is Mapping.DIFFERENTIAL
    return (2 if pair else 1, 1 if o.sensing is Sensing.REFERENCE else 0,
            o.sensing is Sensing.SEPARATE, not pair and o.sensing is Sensing.SEPARATE)


def energy_table(model: torch.nn.Module, spec: CrossbarSpec, x: torch.Tensor,
                 params: EnergyParams | None = None, slicing=None, options=None) -> list[dict]:
    """Energy per inference (J) by layer and category, for input images x (B, C, H, W).

    One row per crossbar layer with columns ``layer``, ``tiles`` (arrays), one per
    ``CATEGORIES`` entry and ``gate_line`` (1T-1R gate lines, 0 for 1R); the phases (signed inputs) are taken from x:
    two where any image of x gives the layer a negative input (as the crossbar layers decide per batch), whatever its order.
    ``slicing`` (``xbarlab.fcm.slicing.Slicing``; None: one device per weight,
    all input bits in one cycle) multiplies arrays and cycles; ``options`` (``xbarlab.fcm.FCMOptions``;
    None: its defaults) gives the mapping and sensing scheme (module docstring).
    """
    from xbarlab.fcm.slicing import Slicing

    p = params or EnergyParams()
    sl = slicing or Slicing()
    if not isinstance(sl, Slicing):
        raise ValueError(f"slicing must be a Slicing or None, got {type(sl).__name__}")
    A, ref_cols, adc_per_array, offset = _scheme(options)
    sl.check(spec, options)
    C = sl.cycles(spec.dac.bits)
    dac_bits = spec.dac.bits if C == 1 else sl.input_bits_per_cycle  # bits of one conversion
    M, Nc = spec.rows, spec.cols
    S = A * sl.weight_slices  # arrays per tile position: the pair (or one array), per weight slice
    sub = S if adc_per_array else sl.weight_slices  # digital partial sums per tile row block
    g_mean = 0.5 * (spec.device.g_min + spec.device.g_max)
    e_cell = spec.dac.v_read**2 * g_mean * p.t_read_s * p.activity
    c_gate = gate_c_f_per_cell(spec, p)
    e_gate = c_gate * spec.device.access.v_gate_v**2 if c_gate else 0.0  # per cell and array read
    rows = []
    for rec in _layer_records(model, spec, x):  # the whole batch: its signed inputs, counted per image
        V, P = rec["vectors"], rec["phases"]
        e = dict.fromkeys(CATEGORIES + (GATE,), 0.0)
        tiles = 0
        for K, N in rec["shapes"]:
            tk, tn = -(-K // M), -(-N // Nc)
            t = S * tk * tn
            tiles += t
            mv = V * P * C  # array reads per inference: vectors x phases x input cycles
            e["dac"] += mv * t * M * dac_bits * p.dac_j_per_bit
            e["adc"] += mv * (t if adc_per_array else t // A) * Nc * p.adc_j(spec.adc.bits)
            e["crossbar"] += mv * t * M * (Nc + ref_cols) * e_cell
            e[GATE] += mv * t * M * (Nc + ref_cols) * e_gate
            e["buffer_read"] += V * K * spec.dac.bits * p.sram_read_j_per_bit
            e["buffer_write"] += V * N * p.out_bits * p.sram_write_j_per_bit
            adds = N * max(P * C * sub * tk - 1, 0) + (N + P * C * (K - 1) if offset else 0)
            e["digital_add"] += V * adds * p.add_j
        rows.append({"layer": rec["layer"], "tiles": tiles, **e})
    return rows


def energy_per_inference(model, spec, x, params=None, slicing=None, options=None) -> dict:
    """Totals per category (and ``gate_line``) and ``total`` (J per inference); arguments of ``energy_table``."""
    rows = energy_table(model, spec, x, params, slicing, options)
    tot = {c: float(sum(r[c] for r in rows)) for c in CATEGORIES + (GATE,)}
    tot["total"] = float(sum(tot.values()))
    tot["tiles"] = int(sum(r["tiles"] for r in rows))
    return tot
