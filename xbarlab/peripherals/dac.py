"""Resistive-divider DAC of the RxNN paper (Fig. 2(a), Fig. 3(a), Fig. 4).

Each row's DAC is a divider from the read voltage: ``v_read --R_DAC(code)--
out --R_PD-- ground``. R_DAC is chosen so that the *unloaded* output is
``v_read * code / (2**bits - 1)``:

    R_DAC(code) = R_PD * (full / code - 1)      (open for code 0)

Seen from the row, the DAC is a Thevenin source

    V_th(code) = v_read * code / full,   R_th(code) = R_DAC || R_PD = R_PD * (1 - code / full)

so code 0 gives exactly 0 V behind R_PD, and full scale gives v_read with
zero output resistance. Under a load conductance G_load the output sags to
``V_th / (1 + R_th * G_load)`` (the paper's Fig. 3(a) equation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..fields import check_known_fields
from ..params import CircuitParams, check_circuit, check_number

MAX_BITS = 32  # the same cap as the ADC's (ADCParams.bits <= 32)


@dataclass(frozen=True)
class DACParams:
    """A resistive-divider DAC.

    Attributes:
        bits: resolution, 1..32 (as the ADC's); codes run 0 .. 2**bits - 1.
        v_read: full-scale (unloaded) output voltage, volt, > 0.
        r_pd: the fixed pull-down resistance R_PD, ohm, >= 0 (0 is an ideal DAC).
    """

    bits: int = 6
    v_read: float = 0.25
    r_pd: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.bits, (int, np.integer)) or isinstance(self.bits, bool) or self.bits < 1:
            raise ValueError(f"bits must be an integer >= 1, got {self.bits!r}")
        if self.bits > MAX_BITS:
            raise ValueError(f"bits must be <= {MAX_BITS}, got {self.bits!r}")
        if not (math.isfinite(check_number("v_read", self.v_read, "volt")) and float(self.v_read) > 0):
            raise ValueError(f"v_read must be finite and > 0 volt, got {self.v_read!r}")
        if not (math.isfinite(check_number("r_pd", self.r_pd, "ohm")) and float(self.r_pd) >= 0):
            raise ValueError(f"r_pd must be finite and >= 0 ohm, got {self.r_pd!r}")
        object.__setattr__(self, "bits", int(self.bits))
        object.__setattr__(self, "v_read", float(self.v_read))
        object.__setattr__(self, "r_pd", float(self.r_pd))

    @property
    def full_code(self) -> int:
        return 2**self.bits - 1

    def check_codes(self, codes) -> np.ndarray:
        c = np.asarray(codes)
        if c.size and (not np.all(np.isfinite(c)) or np.any(c != np.round(c))
                       or c.min() < 0 or c.max() > self.full_code):
            raise ValueError(f"DAC codes must be integers in [0, {self.full_code}], got values in "
                             f"[{np.nanmin(c)!r}, {np.nanmax(c)!r}]")
        return c.astype(float)

    def quantize(self, x) -> np.ndarray:
        """Codes for inputs x in [0, 1] (fraction of full scale), rounded and clipped."""
        return np.clip(np.rint(np.asarray(x, dtype=float) * self.full_code), 0, self.full_code)

    def v_ideal(self, codes) -> np.ndarray:
        """Unloaded output, volt."""
        return self.v_read * self.check_codes(codes) / self.full_code

    def r_dac(self, codes) -> np.ndarray:
        """R_DAC(code), ohm (inf for code 0)."""
        c = self.check_codes(codes)
        with np.errstate(divide="ignore"):
            return np.where(c > 0, self.r_pd * (self.full_code / np.where(c > 0, c, 1) - 1.0), np.inf)

    def thevenin(self, codes) -> tuple[np.ndarray, np.ndarray]:
        """(V_th volt, R_th ohm) of the DAC output for each code."""
        c = self.check_codes(codes)
        return self.v_read * c / self.full_code, self.r_pd * (1.0 - c / self.full_code)

    def v_loaded(self, codes, g_load) -> np.ndarray:
        """Output voltage under a load conductance ``g_load`` (S) to ground, volt."""
        return self.v_loaded_fast(self.check_codes(codes), np.asarray(g_load, dtype=float))

    def load_terms(self, g_load):
        """(A, B) of the loaded output V = (v_read / full) c / (A - B c) at code c under ``g_load`` (S):
        A = 1 + R_PD G_load, B = R_PD G_load / full.

        The Thevenin form V_th / (1 + R_th G_load), with V_th = v_read c / full and
        R_th = R_PD (1 - c / full), multiplied out: two terms per load, none per code, so a
        caller can fold them into per-row constants (the FCM's ROWSUM plan does). Plain
        arithmetic: numpy arrays and torch tensors alike.
        """
        rg = self.r_pd * g_load
        return 1.0 + rg, rg / self.full_code

    def v_loaded_fast(self, codes, g_load):
        """``v_loaded`` for codes already known to be valid: the package's one DAC-load formula,
        V = V_th / (1 + R_th G_load) = (v_read / full) c / (A - B c) with ``load_terms``.
        Plain arithmetic: numpy arrays and torch tensors alike."""
        A, B = self.load_terms(g_load)
        return (self.v_read / self.full_code) * codes / (A - B * codes)

    def v_loaded_ports(self, codes, Y, ns):
        """Row voltages under the full linear load: V = solve(I + diag(R_th) Y, V_th), volt.

        ``codes`` (..., M) valid codes of one tile's rows, ``Y`` (..., M, M) the
        row-port admittance (S) of the crossbar seen from its row sources
        (``xbarlab.engines.ports``); broadcast against each other. ``ns`` is an array
        namespace with ``const`` and ``solve`` (``xbarlab.backend`` has numpy and torch
        ones; this module does not import them). Exact for linear cells: the DAC is a
        Thevenin source and the crossbar a linear multiport.
        """
        v_th, r_th = self.thevenin_fast(codes)
        m = Y.shape[-1]
        A = ns.const(np.eye(m)) + r_th[..., :, None] * Y
        rhs = v_th[..., :, None] + 0.0 * Y[..., :1]  # (the broadcast shape of both)
        return ns.solve(A, rhs)[..., 0]

    def thevenin_rows(self, circuit: CircuitParams, codes) -> tuple[np.ndarray, CircuitParams]:
        """The crossbar's rows driven by this DAC at ``codes`` (one per row), in Thevenin form.

        Returns (V_th volt per row, ``circuit`` with each row's driver
        resistance r_driver + R_th(code) in ohm). Solving the crossbar with
        these row sources is exact for the divider DAC (linear circuit). With
        R_PD = 0 the circuit is returned unchanged.
        """
        check_circuit(circuit)
        v_th, r_th = self.thevenin(codes)
        if v_th.ndim != 1:
            raise ValueError(f"codes must be one code per row, shape (M,), got shape {v_th.shape}")
        if self.r_pd == 0:
            return v_th, circuit
        r_drv = circuit.r_driver_rows(v_th.size) + r_th
        return v_th, CircuitParams(r_row=circuit.r_row, r_col=circuit.r_col, r_sense=circuit.r_sense,
                                   r_driver=tuple(float(x) for x in r_drv))

    def thevenin_fast(self, codes):
        """(V_th volt, R_th ohm) for codes already known to be valid integers.

        Plain arithmetic, so it works on numpy arrays and torch tensors alike;
        used by the fast crossbar model after its own quantization.
        """
        frac = codes * (1.0 / self.full_code)
        return self.v_read * frac, self.r_pd * (1.0 - frac)

    def to_dict(self) -> dict:
        return {"bits": self.bits, "v_read": self.v_read, "r_pd": self.r_pd}

    @classmethod
    def from_dict(cls, d: dict) -> "DACParams":
        check_known_fields(cls, d)
        return cls(**d)
