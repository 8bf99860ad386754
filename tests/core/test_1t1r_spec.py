"""The 1T-1R cell option in the spec: AccessTransistor is frozen, validated (ValueError naming the field), SI, JSON."""

from __future__ import annotations

import dataclasses

import pytest

import xbarlab as xb
from xbarlab.transistor import AccessTransistor, GateLine, TransistorSide


def test_defaults_are_stated():
    a = AccessTransistor()
    assert (a.w_m, a.l_m, a.v_gate_v) == (1e-7, 5e-8, 1.0)
    assert a.gate_line is GateLine.ROW and a.side is TransistorSide.SENSE  # transistor at the ground/sense side
    assert a.card == "" and a.model == "nmos_vtg"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.w_m = 2e-7


@pytest.mark.parametrize("field, value", [
    ("w_m", 0.0), ("w_m", -1e-7), ("w_m", float("nan")), ("w_m", 1.0), ("w_m", True), ("w_m", "1e-7"),
    ("l_m", 0.0), ("l_m", complex(1e-7, 0)), ("v_gate_v", -0.1), ("v_gate_v", 6.0), ("v_gate_v", float("inf")),
    ("gate_line", "diagonal"), ("side", "middle"), ("card", 3), ("model", None),
])
def test_bad_fields_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        AccessTransistor(**{field: value})


def test_options_by_name_and_round_trip():
    a = AccessTransistor(w_m=2e-7, v_gate_v=0.75, gate_line="col", side="ROW")
    assert a.gate_line is GateLine.COL and a.side is TransistorSide.ROW
    assert AccessTransistor.from_dict(a.to_dict()) == a
    with pytest.raises(ValueError, match="unknown field"):
        AccessTransistor.from_dict({"w": 1e-7})


def test_device_and_spec_carry_the_cell_option():
    dev = xb.DeviceParams(g_min=1 / 300e3, g_max=1 / 30e3, access=AccessTransistor(v_gate_v=0.9))
    assert not dev.is_linear
    spec = xb.CrossbarSpec(rows=8, cols=8, device=dev)
    back = xb.CrossbarSpec.from_json(spec.to_json())
    assert back == spec and back.device.access.v_gate_v == 0.9
    plain = xb.DeviceParams()
    assert "access" not in plain.to_dict() and plain.access is None  # 1R specs and their JSON are unchanged
    with pytest.raises(ValueError, match="sinh_b"):
        xb.DeviceParams(sinh_b=3.0, access=AccessTransistor())
    with pytest.raises(ValueError, match="access"):
        xb.DeviceParams(access="1t1r")


@pytest.mark.ngspice
def test_fcm_models_1t1r_specs_not_as_1r(ngspice):
    """The FCM builds a 1T-1R spec on its cells' G_eff (xbarlab.fcm.cells), never silently as a 1R crossbar."""
    import numpy as np

    spec = xb.CrossbarSpec(rows=4, cols=4, device=xb.DeviceParams(access=AccessTransistor()))
    plain = xb.CrossbarSpec(rows=4, cols=4)
    f, f1 = xb.FCM.from_weights(np.ones((4, 4)), spec, None), xb.FCM.from_weights(np.ones((4, 4)), plain, None)
    np.testing.assert_array_equal(f.G, f1.G)
    assert np.all(f.Gn < f1.Gn)
