"""The parameters of a weight update, frozen and validated: the device's response to pulses
(``UpdateParams``, TxSim's ν and γ), the in-situ pulse encoding (``InSituSettings``) and
program-and-verify's numerical settings (``VerifySettings``), and its result (``VerifyResult``).
The update itself is ``xbarlab.update``, which re-exports these names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .choices import Choice
from .device import DeviceParams, _finite, _int_or_none
from .fields import check_known_fields


class PulseScheme(Choice):
    """How an in-situ outer-product update turns x and d into pulse counts."""

    STOCHASTIC = "stochastic"
    EXPECTED = "expected"


MAX_PULSES = 2**53  # the most pulses from g_min to g_max: every count up to it is exact in float64
MIN_STEP_RELATIVE = 2.0**-40  # the least ΔG_step / g_max: a step at g_max keeps 12 bits of double precision


@dataclass(frozen=True)
class UpdateParams:
    """The response of a cell to programming pulses (all dimensionless).

    Attributes:
        nu_set: TxSim's non-linearity factor ν of potentiation (SET), >= 0; 0 is linear.
        nu_reset: ν of depression (RESET), >= 0; 0 is linear.
        gamma: TxSim's write-noise factor γ, >= 0: standard deviation of one pulse's
            conductance change in units of the nominal step ΔG_step; 0 is noiseless.
        pulses: pulses from g_min to g_max (and back), 1 .. 2**53 (beyond, a count of
            pulses is not exact in double precision); None means the device's ``levels - 1``.
    """

    nu_set: float = 0.0
    nu_reset: float = 0.0
    gamma: float = 0.0
    pulses: int | None = None

    def __post_init__(self) -> None:
        s = object.__setattr__
        for name in ("nu_set", "nu_reset", "gamma"):
            s(self, name, _finite(name, getattr(self, name), lo=0.0))
        s(self, "pulses", _int_or_none("pulses", self.pulses, 1))
        if self.pulses is not None and self.pulses > MAX_PULSES:  # (10**400 gave an OverflowError in step)
            raise ValueError(f"pulses must be <= 2**53 (exact in double precision), got {self.pulses!r}")

    def pulse_count(self, device: DeviceParams) -> int:
        """P, the pulses from g_min to g_max on ``device``; ValueError if neither sets it."""
        if self.pulses is not None:
            return self.pulses
        if device.levels is None:
            raise ValueError("pulses must be set for an analog device (levels=None), got pulses=None")
        return device.levels - 1

    def step(self, device: DeviceParams) -> float:
        """ΔG_step = (g_max - g_min) / P, siemens; ValueError when one step at g_max keeps fewer than 12 bits
        in double precision (ΔG_step < 2**-40 g_max): a pulse would then change G by a rounded amount, or
        not at all, silently."""
        P = self.pulse_count(device)
        s = (device.g_max - device.g_min) / P
        if s < MIN_STEP_RELATIVE * device.g_max:
            raise ValueError(f"pulses={P!r} makes the step (g_max - g_min) / pulses = {s:.3g} S, below 2**-40 of "
                             f"g_max = {device.g_max!r} S: double precision cannot resolve one pulse's change there")
        return s

    def to_dict(self) -> dict:
        return {"nu_set": self.nu_set, "nu_reset": self.nu_reset, "gamma": self.gamma, "pulses": self.pulses}

    @classmethod
    def from_dict(cls, d: dict) -> "UpdateParams":
        check_known_fields(cls, d)
        return cls(**d)


#: the most time slots one update may have: 100 times Gokmen and Vlasov's BL = 10. The array path's pulse
#: streams hold (vectors x BL) x (rows + columns) numbers: 1024 slots of a 32-vector batch on a 784 x 10
#: layer are about 100 MiB already.
MAX_BIT_LENGTH = 1024


@dataclass(frozen=True)
class InSituSettings:
    """The pulse encoding of an in-situ outer-product update.

    Attributes:
        bit_length: time slots per update (BL), 1 .. ``MAX_BIT_LENGTH``: the most pulses one
            update gives a cell (Gokmen and Vlasov 2016 use BL = 10).
        scheme: ``PulseScheme.STOCHASTIC`` (row and column pulse streams,
            default) or ``EXPECTED`` (each cell its rounded expected count).
    """

    bit_length: int = 10
    scheme: PulseScheme = PulseScheme.STOCHASTIC

    def __post_init__(self) -> None:
        object.__setattr__(self, "bit_length", _int_or_none("bit_length", self.bit_length, 1))
        if self.bit_length is None:
            raise ValueError("bit_length must be an integer >= 1, got None")
        if self.bit_length > MAX_BIT_LENGTH:  # (a huge BL took the machine's memory in the pulse streams)
            raise ValueError(f"bit_length must be <= MAX_BIT_LENGTH ({MAX_BIT_LENGTH}), got {self.bit_length!r}")
        object.__setattr__(self, "scheme", PulseScheme.parse(self.scheme, "scheme"))


@dataclass(frozen=True)
class VerifySettings:
    """Numerical settings of program-and-verify (not physics).

    Attributes:
        tolerance: accepted |G - target| in units of ΔG_step, > 0 (0.5: within half a step).
        max_rounds: program-then-verify rounds at most, >= 1.
    """

    tolerance: float = 0.5
    max_rounds: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "tolerance", _finite("tolerance", self.tolerance, lo=0.0, lo_open=True))
        object.__setattr__(self, "max_rounds", _int_or_none("max_rounds", self.max_rounds, 1))
        if self.max_rounds is None:
            raise ValueError("max_rounds must be an integer >= 1, got None")


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of ``program_and_verify``.

    Attributes:
        g: written conductances, siemens.
        pulses: pulses applied to each cell over all rounds (count, >= 0).
        rounds: program-then-verify rounds run.
        unconverged: cells still beyond the tolerance after the last round.
    """

    g: np.ndarray
    pulses: np.ndarray
    rounds: int
    unconverged: int
