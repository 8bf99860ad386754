"""The 1T-1R cell's access transistor: an NMOS in series with the resistive device (SI units).

Physical assumptions (see ``netlists/README.md``, "1T-1R cells"):

* Each cell (i, j) is the device conductance G[i, j] in series with one NMOS
  between the row node a(i, j) and the column node b(i, j), joined at an
  internal node x(i, j).
* ``side = SENSE`` (default): the transistor sits at the ground/sense side,
  drain x(i, j), source b(i, j); the device is between a(i, j) and x(i, j).
  ``side = ROW``: drain a(i, j), source x(i, j); the device between x(i, j)
  and b(i, j). (NEAT's trial: with the transistor at the sense side G_eff
  changes under 1 % over 0.05-0.5 V; the other way it falls much more.)
* Gates are driven by ideal gate lines at ``v_gate_v``: one per row
  (``gate_line = ROW``, source ``vgr{i}``) or one per column
  (``COL``, ``vgc{j}``). The bulk is tied to ground.
* The model is an ngspice BSIM4 (``level=54``) NMOS card: the shipped
  FreePDK45 NMOS_VTG (``xbarlab/cards``) or the user's card file, validated
  before it reaches a deck (``xbarlab.cards.check_card``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .choices import Choice
from .fields import check_known_fields
from .params import check_number


class GateLine(Choice):
    """Which lines carry the access transistors' gates."""

    ROW = "row"
    COL = "col"


class TransistorSide(Choice):
    """Where the access transistor sits in the cell, relative to the device."""

    SENSE = "sense"  # transistor between the device and the column (ground/sense side)
    ROW = "row"  # transistor between the row and the device


def _positive(name: str, value, unit: str, hi: float) -> float:
    v = check_number(name, value, unit)
    if not (math.isfinite(v) and 0 < v <= hi):
        raise ValueError(f"{name} must be finite, > 0 and <= {hi:g} {unit}, got {value!r}")
    return v


@dataclass(frozen=True)
class AccessTransistor:
    """The NMOS access transistor of a 1T-1R cell.

    Attributes:
        w_m: channel width, meter, in (0, 1e-3].
        l_m: channel length, meter, in (0, 1e-3].
        v_gate_v: gate line voltage V_G, volt, in [0, 5].
        gate_line: ``GateLine.ROW`` (default, one gate line per row) or ``COL``.
        side: ``TransistorSide.SENSE`` (default: at the ground/sense side) or ``ROW``.
        card: path of a BSIM4 model card file; "" is the shipped FreePDK45 NMOS_VTG card.
        model: the model's name in that card (lower case).
    """

    w_m: float = 1e-7
    l_m: float = 5e-8
    v_gate_v: float = 1.0
    gate_line: GateLine = field(default=GateLine.ROW)
    side: TransistorSide = field(default=TransistorSide.SENSE)
    card: str = ""
    model: str = "nmos_vtg"

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "w_m", _positive("w_m", self.w_m, "m", 1e-3))
        s(self, "l_m", _positive("l_m", self.l_m, "m", 1e-3))
        vg = check_number("v_gate_v", self.v_gate_v, "volt")
        if not (math.isfinite(vg) and 0 <= vg <= 5):
            raise ValueError(f"v_gate_v must be finite and in [0, 5] volt, got {self.v_gate_v!r}")
        s(self, "v_gate_v", vg)
        s(self, "gate_line", GateLine.parse(self.gate_line))
        s(self, "side", TransistorSide.parse(self.side, "side"))
        if not isinstance(self.card, str):
            raise ValueError(f"card must be a file path string ('' for the shipped card), got {self.card!r}")
        if not isinstance(self.model, str):
            raise ValueError(f"model must be a string, got {self.model!r}")
        s(self, "model", self.model.lower())
        self.model_card()  # ValueError naming the card line if the card is unsafe or lacks the model

    def model_card(self):
        """The validated ``xbarlab.cards.ModelCard`` (read from ``card`` now)."""
        from .cards import load_card

        return load_card(self.card or None, self.model)

    def to_dict(self) -> dict:
        return {"w_m": self.w_m, "l_m": self.l_m, "v_gate_v": self.v_gate_v, "gate_line": self.gate_line.name,
                "side": self.side.name, "card": self.card, "model": self.model}

    @classmethod
    def from_dict(cls, d: dict) -> "AccessTransistor":
        check_known_fields(cls, d)
        return cls(**d)
