"""A crossbar specification: size, circuit, device and peripherals, with JSON presets.

``CrossbarSpec`` groups everything the fast crossbar model needs to know about
the hardware. Presets live in ``xbarlab/presets/<name>.json``; each holds the
spec and a ``sources`` object that cites where every value comes from.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from .device import DeviceParams
from .fields import check_known_fields
from .params import CircuitParams
from .peripherals.adc import ADCParams
from .peripherals.dac import DACParams

PRESET_DIR = Path(__file__).resolve().parent / "presets"


def _dim(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class CrossbarSpec:
    """One crossbar design.

    Attributes:
        rows: M, word lines (inputs) per crossbar, >= 1.
        cols: N, bit lines (outputs) per crossbar, >= 1.
        circuit: parasitic resistances (ohm), ``CircuitParams``.
        device: the synaptic device, ``DeviceParams``.
        dac: the row DAC (resistive divider), ``DACParams``.
        adc: the column ADC, ``ADCParams``.
        name: a label (a preset's name), never written into a netlist.
    """

    rows: int = 64
    cols: int = 64
    circuit: CircuitParams = field(default_factory=CircuitParams)
    device: DeviceParams = field(default_factory=DeviceParams)
    dac: DACParams = field(default_factory=DACParams)
    adc: ADCParams = field(default_factory=ADCParams)
    name: str = ""

    def __post_init__(self) -> None:
        _dim("rows", self.rows)
        _dim("cols", self.cols)
        for fname, cls in (("circuit", CircuitParams), ("device", DeviceParams),
                           ("dac", DACParams), ("adc", ADCParams)):
            if not isinstance(getattr(self, fname), cls):
                raise ValueError(f"{fname} must be a {cls.__name__}, got {type(getattr(self, fname)).__name__}")
        if isinstance(self.circuit.r_driver, tuple):
            self.circuit.r_driver_rows(self.rows)
        if not isinstance(self.name, str):
            raise ValueError(f"name must be a string, got {self.name!r}")

    def with_size(self, rows: int, cols: int | None = None) -> "CrossbarSpec":
        """The same design at another size (cols defaults to rows)."""
        return dataclasses.replace(self, rows=rows, cols=rows if cols is None else cols)

    def replace(self, **changes) -> "CrossbarSpec":
        return dataclasses.replace(self, **changes)

    @property
    def full_scale_current_a(self) -> float:
        """Ideal full-scale column current rows * g_max * v_read, ampere."""
        return self.rows * self.device.g_max * self.dac.v_read

    def to_dict(self) -> dict:
        return {
            "name": self.name, "rows": self.rows, "cols": self.cols,
            "circuit": self.circuit.to_dict(), "device": self.device.to_dict(),
            "dac": self.dac.to_dict(), "adc": self.adc.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CrossbarSpec":
        d = dict(d)
        d.pop("sources", None)
        d.pop("description", None)
        check_known_fields(cls, d)
        return cls(
            rows=d.get("rows", 64), cols=d.get("cols", 64), name=d.get("name", ""),
            circuit=CircuitParams.from_dict(d.get("circuit", {})),
            device=DeviceParams.from_dict(d.get("device", {})),
            dac=DACParams.from_dict(d.get("dac", {})),
            adc=ADCParams.from_dict(d.get("adc", {})),
        )

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), indent=kw.pop("indent", 2), **kw)

    @classmethod
    def from_json(cls, text: str) -> "CrossbarSpec":
        return cls.from_dict(json.loads(text))


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def preset_sources(name: str) -> dict:
    """The ``sources`` object of a preset: where each value comes from."""
    return json.loads(_preset_path(name).read_text()).get("sources", {})


def _preset_path(name: str) -> Path:
    names = preset_names()
    if name not in names:
        raise ValueError(f"preset must be one of {names}, got {name!r}")
    return PRESET_DIR / f"{name}.json"


def load_preset(name: str, rows: int | None = None, cols: int | None = None) -> CrossbarSpec:
    """The named preset (``"spintronic"``, ``"reram"``), optionally resized.

    ``rows`` and ``cols`` (each an integer >= 1; ``cols`` defaults to ``rows``
    when only ``rows`` is given) replace the preset's size; ValueError
    naming the field otherwise, 0 included.
    """
    spec = CrossbarSpec.from_json(_preset_path(name).read_text())
    if rows is not None or cols is not None:
        new_rows = spec.rows if rows is None else _dim("rows", rows)
        new_cols = _dim("cols", cols) if cols is not None else (new_rows if rows is not None else spec.cols)
        spec = spec.with_size(new_rows, new_cols)
    return spec
