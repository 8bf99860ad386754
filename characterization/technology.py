"""Default technology preset of the sensitivity studies, and the non-ideality groups.

All values are SI (siemens, ohm, volt). The RxNN paper's Fig. 9 table of
device and technology parameters is not in its text, so every value below
is taken from, or derived from, a published source named next to it; where
no published number fits, the value is marked ASSUMED and the reason given.
``SOURCES`` holds the same notes as data (the reports print them).

Device (domain-wall MTJ synapse, paper ref. [5]: Sengupta, Shim, Roy,
IEEE TBioCAS 10(6):1152, 2016):

* ``g_max`` = 1/20 kOhm = 50 uS: the paper's own cell value (Sec. IV-A,
  Fig. 3(b): "all synaptic devices programmed to 20 kOhm").
* ``g_min`` = 1/60 kOhm: an ON/OFF ratio of 3, i.e. a TMR of 200 %, well
  inside what CoFeB/MgO MTJs reach at room temperature (Ikeda et al., Appl.
  Phys. Lett. 93, 082508, 2008: up to 604 %). DERIVED (ratio chosen, not
  quoted by the paper).
* ``bits`` = 6: the paper's 6-bit designs (Sec. VIII-C, Cross6).
* ``variation`` = 0.10: sigma/mu of 10 % (Sec. IV-B, paper ref. [43]:
  Vincent et al., IEEE TBioCAS 9(2):166, 2015).

Interconnect (45 nm CMOS, paper ref. [47]: Moon et al., Intel Technology
Journal 12(2), 2008):

* ``r_wire`` = 2.5 ohm per segment (one cell pitch, rows and columns alike).
  DERIVED: r = rho L / (w t) with the 160 nm metal-1 pitch of the 45 nm
  process (Moon et al. 2008) taken as w = 80 nm (half pitch) and an ASSUMED
  aspect ratio of 1.8 (t = 144 nm), rho of about 4 uOhm cm for copper at
  that width (size effects; ITRS 2007 Interconnect chapter), and L = 0.7 um,
  an ASSUMED pitch of the 3-terminal domain-wall cell:
  4e-8 * 0.7e-6 / (80e-9 * 144e-9) = 2.43 ohm, rounded to 2.5 ohm.

Peripherals:

* ``r_sense`` = 100 ohm: input resistance of the column sense amplifier.
  ASSUMED: the paper names R_sense (Fig. 2(a), Fig. 6) but its value is in
  the missing Fig. 9 table; 100 ohm is the value of xbarlab's reference
  decks (``netlists/``).
* ``r_driver`` = 50 ohm: output resistance of the row driver. ASSUMED, as
  ``r_sense``.
* ``r_pd`` = 200 ohm: the DAC divider's pull-down R_PD (Fig. 2(a), Fig. 4;
  circuit after paper ref. [45], Zhang, Wang, Verma, VLSI 2016). ASSUMED
  value; the DAC's Thevenin resistance at mid code is then R_PD/2 = 100 ohm.
* ``v_read`` = 0.2 V: the paper's row input (Fig. 3(b): 0.2 V).

Groups (Sec. IV-B, Fig. 2(b)/(c)): each group keeps only its own
non-idealities and sets every other one to ideal (zero ohm):

* WIRE: r_row = r_col = r_wire.
* SENSE: r_sense.
* DAC+DRIVER: each row is driven by the DAC's Thevenin source, i.e. V_th(code)
  behind r_driver + R_th(code) (exact for the divider DAC; see
  ``xbarlab.peripherals.dac``).
* WIRE+SENSE and ALL (every non-ideality above).

The ideal output is ``I_ideal = V_ideal(code) @ G`` and the error of column j
is ``(I_ideal[j] - I_nonideal[j]) / I_ideal[j]`` (positive: the crossbar
delivers less current than ideal).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from xbarlab.params import CircuitParams
from xbarlab.peripherals.dac import DACParams

GROUPS = ("WIRE", "SENSE", "DAC+DRIVER", "WIRE+SENSE", "ALL")
ERROR_DEFINITION = "(I_ideal - I_nonideal) / I_ideal per column"

SOURCES = {
    "g_max": "1/20 kOhm: RxNN paper Sec. IV-A, Fig. 3(b) (cells programmed to 20 kOhm)",
    "g_min": "1/60 kOhm: DERIVED, ON/OFF 3 (TMR 200 %), within CoFeB/MgO MTJ range (Ikeda et al., APL 93, 082508, 2008)",
    "bits": "6: RxNN paper Sec. VIII-C (6-bit designs)",
    "variation": "sigma/mu 10 %: RxNN paper Sec. IV-B, ref. [43] (Vincent et al., IEEE TBioCAS 9(2), 2015)",
    "r_wire": "2.5 ohm/segment: DERIVED from Intel 45 nm M1 (Moon et al., Intel Tech. J. 12(2), 2008) with rho_Cu = 4 uOhm cm (ITRS 2007) and an ASSUMED 0.7 um cell pitch",
    "r_sense": "100 ohm: ASSUMED (paper's Fig. 9 value not in its text); value of xbarlab's reference decks",
    "r_driver": "50 ohm: ASSUMED (paper's Fig. 9 value not in its text); value of xbarlab's reference decks",
    "r_pd": "200 ohm: ASSUMED; divider DAC of the paper's Fig. 2(a)/Fig. 4 (after ref. [45], Zhang, Wang, Verma, VLSI 2016)",
    "v_read": "0.2 V: RxNN paper Fig. 3(b) inputs",
    "sizes": "N in {8,16,32,64,128}: issue 4; 64x64 is the paper's Sec. IV-B array",
}


@dataclass(frozen=True)
class Technology:
    """Device, interconnect and peripheral values of the studies (SI units).

    Attributes:
        g_min: lowest cell conductance, S.
        g_max: highest cell conductance, S.
        r_wire: wire resistance of one row or column segment, ohm.
        r_sense: sense-amplifier input resistance, ohm.
        r_driver: row-driver output resistance, ohm.
        dac: the divider DAC (bits, v_read in V, r_pd in ohm).
        bits: device precision; a random state uses 2**bits levels in [g_min, g_max].
        variation: sigma/mu of the device-variation study.
        sizes: crossbar sizes N of the size study.
        size: crossbar size of the state/input/variation studies.
    """

    g_min: float = 1.0 / 60e3
    g_max: float = 1.0 / 20e3
    r_wire: float = 2.5
    r_sense: float = 100.0
    r_driver: float = 50.0
    dac: DACParams = field(default_factory=lambda: DACParams(bits=6, v_read=0.2, r_pd=200.0))
    bits: int = 6
    variation: float = 0.10
    sizes: tuple = (8, 16, 32, 64, 128)
    size: int = 64

    def __post_init__(self) -> None:
        if not (0 < self.g_min < self.g_max):
            raise ValueError(f"need 0 < g_min < g_max siemens, got g_min={self.g_min!r}, g_max={self.g_max!r}")
        for name in ("r_wire", "r_sense", "r_driver"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be finite and >= 0 ohm, got {v!r}")
        if not (0 <= self.variation < 1):
            raise ValueError(f"variation must be in [0, 1), got {self.variation!r}")

    def to_dict(self) -> dict:
        return {"g_min": self.g_min, "g_max": self.g_max, "r_wire": self.r_wire, "r_sense": self.r_sense,
                "r_driver": self.r_driver, "dac": self.dac.to_dict(), "bits": self.bits, "variation": self.variation,
                "sizes": list(self.sizes), "size": self.size}

    @classmethod
    def from_dict(cls, d: dict) -> "Technology":
        d = dict(d)
        d["dac"] = DACParams.from_dict(d["dac"])
        d["sizes"] = tuple(d["sizes"])
        return cls(**d)

    def with_(self, **kw) -> "Technology":
        return replace(self, **kw)


DEFAULT = Technology()


def group_circuit(tech: Technology, group: str, codes) -> tuple[np.ndarray, CircuitParams]:
    """Row voltages (V) and circuit (ohm) of ``group`` for DAC input ``codes`` (one per row).

    The row sources are the DAC's unloaded outputs V_th(code) in every group
    (V_th equals the ideal input); only DAC+DRIVER and ALL put the DAC's
    Thevenin resistance and the driver in series with each row.
    """
    if group not in GROUPS:
        raise ValueError(f"group must be one of {GROUPS}, got {group!r}")
    v_th, r_th = tech.dac.thevenin(codes)
    wire = tech.r_wire if group in ("WIRE", "WIRE+SENSE", "ALL") else 0.0
    sense = tech.r_sense if group in ("SENSE", "WIRE+SENSE", "ALL") else 0.0
    if group in ("DAC+DRIVER", "ALL"):
        r_drv = tuple(float(x) for x in tech.r_driver + r_th)
    else:
        r_drv = 0.0
    return v_th, CircuitParams(r_row=wire, r_col=wire, r_sense=sense, r_driver=r_drv)


def column_error(i_ideal, i_nonideal) -> np.ndarray:
    """The studies' error: (I_ideal - I_nonideal) / I_ideal, elementwise (per column)."""
    i_ideal = np.asarray(i_ideal, dtype=float)
    return (i_ideal - np.asarray(i_nonideal, dtype=float)) / i_ideal


def random_codes(rng: np.random.Generator, m: int, tech: Technology, low: int = 1) -> np.ndarray:
    """Random DAC codes in [low, full] (code 0 would give a zero ideal input)."""
    return rng.integers(low, tech.dac.full_code + 1, size=m).astype(float)


def random_state(rng: np.random.Generator, m: int, n: int, tech: Technology) -> np.ndarray:
    """A random crossbar state: each cell on one of 2**bits levels in [g_min, g_max] (S)."""
    levels = np.linspace(tech.g_min, tech.g_max, 2 ** tech.bits)
    return levels[rng.integers(0, levels.size, size=(m, n))]
