"""A crossbar specification: size, circuit, device and peripherals, with JSON presets.

``CrossbarSpec`` groups everything the fast crossbar model needs to know about
the hardware. Presets live in ``xbarlab/presets/<name>.json``; each holds the
spec and a ``sources`` object that cites where every value comes from, and
may name ``variants`` (changed values, each with its own source, e.g. the
``strong-dac`` load of ``rxnn-spintronic``).

The non-ideality groups of the RxNN paper's Fig. 2(b)/(c) are a function of
a spec: ``groups(spec)`` keeps, per group, only that group's non-idealities.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .device import DeviceParams
from .fields import check_known_fields
from .params import CircuitParams
from .peripherals.adc import ADCParams
from .peripherals.dac import DACParams

PRESET_DIR = Path(__file__).resolve().parent / "presets"


def _dim(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
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
        object.__setattr__(self, "rows", _dim("rows", self.rows))  # a numpy integer is stored as int (JSON)
        object.__setattr__(self, "cols", _dim("cols", self.cols))
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
        if not isinstance(d, dict):  # dict() takes a list of pairs, and raised TypeError on other JSON
            raise ValueError(f"CrossbarSpec: fields must be a dict (a JSON object), got {type(d).__name__}")
        d = dict(d)
        d.pop("sources", None)
        d.pop("description", None)
        d.pop("variants", None)
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


def preset_variants(name: str) -> list[str]:
    """Names of the variants a preset defines (``load_preset(name, variant=...)``)."""
    return sorted(json.loads(_preset_path(name).read_text()).get("variants", {}))


def _preset_path(name: str) -> Path:
    names = preset_names()
    if name not in names:
        raise ValueError(f"preset must be one of {names}, got {name!r}")
    return PRESET_DIR / f"{name}.json"


def _merge(base: dict, changes: dict) -> dict:
    out = dict(base)
    for k, v in changes.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def load_preset(name: str, rows: int | None = None, cols: int | None = None,
                variant: str | None = None) -> CrossbarSpec:
    """The named preset (``"rxnn-spintronic"``, ``"spintronic"``, ``"reram"``), optionally resized.

    ``variant`` applies one of the preset's ``variants`` (its changed values
    carry their own sources); the spec is then named ``"<name>+<variant>"``.
    ``rows`` and ``cols`` (each an integer >= 1; ``cols`` defaults to ``rows``
    when only ``rows`` is given) replace the preset's size; ValueError
    naming the field otherwise, 0 included.
    """
    d = json.loads(_preset_path(name).read_text())
    if variant is not None:
        variants = d.get("variants", {})
        if variant not in variants:
            raise ValueError(f"variant must be one of {sorted(variants)} for preset {name!r}, got {variant!r}")
        d = _merge(d, variants[variant])
        d["name"] = f"{d.get('name', name)}+{variant}"
    spec = CrossbarSpec.from_dict(d)
    if rows is not None or cols is not None:
        new_rows = spec.rows if rows is None else _dim("rows", rows)
        new_cols = _dim("cols", cols) if cols is not None else (new_rows if rows is not None else spec.cols)
        spec = spec.with_size(new_rows, new_cols)
    return spec


def strong_dac(spec: CrossbarSpec, r_pd_ohm: float) -> CrossbarSpec:
    """``spec`` with the divider DAC's pull-down R_PD set to ``r_pd_ohm`` (ohm), named ``"<name>+r_pd=<value>"``.

    For a preset's own strong load use ``load_preset(name, variant="strong-dac")``,
    which takes the value and its source from the preset file.
    """
    dac = dataclasses.replace(spec.dac, r_pd=r_pd_ohm)  # DACParams validates r_pd_ohm
    return spec.replace(dac=dac, name=f"{spec.name}+r_pd={dac.r_pd:g}")


GROUPS = ("WIRE", "SENSE", "DAC+DRIVER", "WIRE+SENSE", "ALL")
_GROUP_PARTS = {  # which non-idealities each group keeps: wires (r_row, r_col), sense, DAC (R_PD) with the driver
    "WIRE": ("wire",), "SENSE": ("sense",), "DAC+DRIVER": ("dac",),
    "WIRE+SENSE": ("wire", "sense"), "ALL": ("wire", "sense", "dac"),
}


def group(spec: CrossbarSpec, name: str) -> CrossbarSpec:
    """``spec`` with only the non-idealities of group ``name`` (one of ``GROUPS``); every other one ideal.

    WIRE keeps r_row and r_col; SENSE keeps r_sense; DAC+DRIVER keeps the
    divider DAC's R_PD and r_driver; WIRE+SENSE both of the first; ALL every
    circuit non-ideality. The others are set to zero ohm (an ideal DAC has
    R_PD = 0). Device variation and stuck cells are not part of any group:
    every group's device has variation 0 and no faults. Sizes, levels, the
    DAC's bits and v_read and the ADC are kept. The group spec is named
    ``"<name>[<GROUP>]"``.
    """
    if name not in _GROUP_PARTS:
        raise ValueError(f"group must be one of {GROUPS}, got {name!r}")
    parts = _GROUP_PARTS[name]
    c = spec.circuit
    circuit = CircuitParams(r_row=c.r_row if "wire" in parts else 0.0, r_col=c.r_col if "wire" in parts else 0.0,
                            r_sense=c.r_sense if "sense" in parts else 0.0,
                            r_driver=c.r_driver if "dac" in parts else 0.0)
    dac = spec.dac if "dac" in parts else dataclasses.replace(spec.dac, r_pd=0.0)
    device = dataclasses.replace(spec.device, variation=0.0, stuck_on_rate=0.0, stuck_off_rate=0.0)
    return spec.replace(circuit=circuit, dac=dac, device=device, name=f"{spec.name}[{name}]")


def groups(spec: CrossbarSpec) -> dict[str, CrossbarSpec]:
    """Group name -> ``group(spec, name)`` for every name in ``GROUPS`` (in that order)."""
    return {name: group(spec, name) for name in GROUPS}
