"""The converters' and the device's parameters: validation, ADC quantization and INL, the DAC deck (no ngspice)."""

from __future__ import annotations

import numpy as np
import pytest

import xbarlab as xb


@pytest.mark.parametrize("kw, field", [
    ({"g_min": 1e-5, "g_max": 1e-5}, "g_min"),
    ({"g_min": 2e-5, "g_max": 1e-5}, "g_min"),
    ({"g_min": -1e-6}, "g_min"),
    ({"g_max": float("nan")}, "g_max"),
    ({"bits": 0}, "bits"),
    ({"bits": 2.5}, "bits"),
    ({"bits": None, "levels": 1}, "levels"),
    ({"bits": 3, "levels": 16}, "levels"),
    ({"variation": -0.1}, "variation"),
    ({"variation_kind": "gamma"}, "variation_kind"),
    ({"stuck_on_rate": 1.5}, "stuck_on_rate"),
    ({"stuck_on_rate": 0.6, "stuck_off_rate": 0.6}, "stuck_on_rate"),
    ({"sinh_b": -1.0}, "sinh_b"),
])
def test_device_params_reject_bad_values(kw, field):
    with pytest.raises(ValueError, match=field):
        xb.DeviceParams(**kw)


def test_device_levels_and_kind_by_name():
    d = xb.DeviceParams(bits=2, variation_kind="lognormal")
    assert d.levels == 4 and d.variation_kind is xb.VariationKind.LOGNORMAL
    q = d.quantize([0.0, 0.3, 0.5, 1.0])
    assert np.allclose((q - d.g_min) / (d.g_max - d.g_min) * 3, [0, 1, 2, 3])
    assert xb.DeviceParams(bits=None, levels=10).levels == 10


@pytest.mark.parametrize("kw, field", [({"bits": 0}, "bits"), ({"full_scale_a": 0.0}, "full_scale_a"),
                                       ({"full_scale_a": -1e-3}, "full_scale_a"), ({"inl_lsb": [0.5]}, "inl_lsb"),
                                       # (a 2-D table was flattened into 4 points over [0, 1]; a scalar into 1)
                                       ({"inl_lsb": [[0.0, 0.5], [0.5, 0.0]]}, "inl_lsb must be a 1-D"),
                                       ({"inl_lsb": 0.5}, "inl_lsb")])
def test_adc_params_reject_bad_values(kw, field):
    with pytest.raises(ValueError, match=field):
        xb.ADCParams(**kw)


@pytest.mark.parametrize("kw, msg", [
    ({"full_scale_a": 1e-5}, r"full_scale_a=1e-05 given with bits=None"),
    ({"inl_lsb": (0.0, 0.5)}, r"inl_lsb=\(0.0, 0.5\) given with bits=None"),
    ({"full_scale_a": 1e-5, "inl_lsb": (0.0, 0.5)}, r"full_scale_a=1e-05 and inl_lsb=\(0.0, 0.5\) given"),
])
def test_ideal_adc_refuses_a_full_scale_and_an_inl_curve(kw, msg):
    """bits=None neither clips nor quantizes: a fixed full scale or an INL curve with it was silently ignored
    (y bitwise the plain ideal ADC's, INL 5 LSB or a full scale 1e-9 A far below the currents)."""
    with pytest.raises(ValueError, match=msg):
        xb.ADCParams(bits=None, **kw)
    with pytest.raises(ValueError, match="given with bits=None"):
        xb.ADCParams.from_dict({"bits": None, "full_scale_a": None, "inl_lsb": [], **kw})
    assert xb.ADCParams(bits=6, **kw).bits == 6  # a real ADC takes them
    assert xb.ADCParams(bits=None) == xb.ADCParams.from_dict({"bits": None, "full_scale_a": None, "inl_lsb": []})


def test_ideal_adc_refuses_a_fixed_range_in_the_fcm():
    """FCMOptions(adc_range=FixedRange) with an ideal ADC gave y unchanged (the FCM scales by the full scale and
    back): refused, as is the same change through with_options; WorstCase and CalibratedRange stay accepted."""
    from xbarlab.fcm.calibration import calibrate_adc
    from xbarlab.fcm.model import FCM
    from xbarlab.fcm.options import FCMOptions
    from xbarlab.fcm.ranges import CalibratedRange, FixedRange

    spec = xb.load_preset("rxnn-spintronic", 8, 8).replace(adc=xb.ADCParams(bits=None))
    W = np.random.default_rng(0).normal(size=(10, 6))
    with pytest.raises(ValueError, match=r"adc_range FixedRange\(full_scale_a=1e-09\) given with an ideal ADC"):
        FCM.from_weights(W, spec, np.random.default_rng(1), FCMOptions(adc_range=FixedRange(1e-9)))
    f = FCM.from_weights(W, spec, np.random.default_rng(1))
    with pytest.raises(ValueError, match="given with an ideal ADC"):
        f.with_options(adc_range=FixedRange(1e-5))
    with pytest.raises(ValueError, match="given with an ideal ADC"):  # (an all-zero W too)
        FCM.from_weights(np.zeros((3, 2)), spec, np.random.default_rng(1), FCMOptions(adc_range=FixedRange(1e-5)))
    x = np.random.default_rng(2).random((4, 10))
    c = calibrate_adc(f, x, CalibratedRange(90.0))
    np.testing.assert_allclose(c.matmul(x), f.matmul(x), rtol=1e-12, atol=1e-12 * np.abs(f.matmul(x)).max())
    real = spec.replace(adc=xb.ADCParams(bits=6))
    assert FCM.from_weights(W, real, np.random.default_rng(1), FCMOptions(adc_range=FixedRange(1e-5))).matmul(x).shape == (4, 6)


def test_ideal_spec_drops_the_presets_full_scale_and_inl(monkeypatch):
    """``dnn_eval.evaluate.ideal_spec`` and ``verify.fcm_1t1r.spec_1t1r`` build the ideal ADC anew: a preset whose
    ADC has a fixed full scale and an INL curve still gives them (bits=None alone)."""
    pytest.importorskip("torch")
    import dnn_eval.evaluate as E
    import xbarlab.verify.fcm_1t1r as V

    def preset(name, rows=None, cols=None):
        s = xb.load_preset(name) if rows is None else xb.load_preset(name, rows, cols)
        return s.replace(adc=xb.ADCParams(bits=6, full_scale_a=2e-5, inl_lsb=(0.0, 0.3, 0.0)))
    monkeypatch.setattr(E, "load_preset", preset)
    monkeypatch.setattr(V, "load_preset", preset)
    assert E.ideal_spec(8).adc == xb.ADCParams(bits=None)
    assert V.spec_1t1r(4, 1.0, 1e4, 1e6).adc == xb.ADCParams(bits=None)
    assert E.precision_spec(8).adc == xb.ADCParams(bits=6, full_scale_a=2e-5, inl_lsb=(0.0, 0.3, 0.0))


def test_adc_clips_quantizes_and_applies_inl():
    adc = xb.ADCParams(bits=3)
    out = adc.convert(np.array([-1.0, 0.0, 0.49, 0.51, 7.0, 9.0]), 7.0)
    assert np.array_equal(out, [0.0, 0.0, 0.0, 1.0, 7.0, 7.0])
    inl = xb.ADCParams(bits=3, inl_lsb=(0.0, 1.0))  # +1 LSB at full scale, linear
    assert inl.convert(np.array([7.0]), 7.0)[0] == 7.0
    assert inl.convert(np.array([3.0]), 7.0)[0] == 3.0  # 3 + 3/7 LSB rounds down
    assert inl.convert(np.array([4.0]), 7.0)[0] == 5.0  # 4 + 4/7 LSB rounds up
    for fs in (0.0, -1.0, float("nan"), np.array([7.0, 0.0])):  # (0 gave NaN codes)
        with pytest.raises(ValueError, match="full_scale_a must be finite and > 0 ampere"):
            adc.convert(np.array([1.0, 2.0]), fs)


def test_dac_rejects_bits_below_one():
    with pytest.raises(ValueError, match="bits"):
        xb.DACParams(bits=0)


def test_adc_quantization_error_is_bounded_by_its_lsb():
    rng = np.random.default_rng(8)
    W = np.abs(rng.standard_normal((16, 4)))
    spec = xb.CrossbarSpec(rows=8, cols=4, circuit=xb.CircuitParams(), device=xb.DeviceParams(bits=None),
                           dac=xb.DACParams(bits=16, r_pd=0.0), adc=xb.ADCParams(bits=6))
    f = xb.FCM.from_weights(W, spec, None)
    x = rng.random((5, 16))
    y = f.matmul(x)
    dg = spec.device.g_max - spec.device.g_min
    lsb_w = f.adc_full_scale_a.max() / 63 * f.w_max / (spec.dac.v_read * dg)  # one LSB in weight units
    n_conv = f.G.shape[0] * f.G.shape[1]  # conversions summed per output: pair x row tiles
    assert np.abs(y - x @ W).max() <= 0.5 * lsb_w * n_conv * x.max(axis=1).max() + 1e-3 * np.abs(x @ W).max()


GOLDEN_DAC_DECK = (
    "* xbarlab crossbar deck\n* rows M=1 (inputs), columns N=1 (outputs); units: ohm, volt, ampere\n"
    "* r_row=0.00000000000000e+00 r_col=0.00000000000000e+00 r_sense=0.00000000000000e+00 (per segment / per column)\n"
    "* zero-ohm parasitics are ideal wires: their nodes are merged, no element is written\n.options numdgt=15\n"
    "* row DACs: divider v_read --rdac(code)-- row source node --rpd-- ground\n"
    "vdac0 dacv0 0 dc 2.00000000000000e-01\nrdac0 dacv0 src0 1.50000000000000e+01\n"
    "rpd0 src0 0 3.00000000000000e+01\n* wires (driver, row segments, column segments, sense)\n"
    "* cells: resistor of 1/G ohm between a{i}_{j} (row) and b{i}_{j} (column); G=0 is open\n"
    "rcell0_0 src0 b0_0 1.00000000000000e+04\n"
    "* sense amplifiers: 0 V ammeters to virtual ground; output I_j = i(vsense{j})\n"
    "vsense0 b0_0 0 dc 0\n.op\n.end\n"
)


def test_dac_deck_text_is_pinned():
    from xbarlab.netlist import dac_netlist

    deck = dac_netlist(np.array([[1e-4]]), [2], xb.CircuitParams(), xb.DACParams(bits=2, v_read=0.2, r_pd=30))
    assert deck == GOLDEN_DAC_DECK
    sinh = dac_netlist(np.array([[1e-4, 0.0], [2e-5, 5e-5]]), [0, 3],
                       xb.CircuitParams(r_row=1, r_col=0, r_sense=10), xb.DACParams(bits=2, v_read=0.2, r_pd=30),
                       sinh_b=2.0)
    assert "bcell0_0 a0_0 b0_0 i=5.00000000000000e-05*sinh(2.00000000000000e+00*(v(a0_0)-v(b0_0)))\n" in sinh
    assert "bcell0_1" not in sinh and "rcell" not in sinh  # G = 0 is open; no resistor cells
    with pytest.raises(ValueError, match="sinh_b"):
        dac_netlist(np.array([[1e-4]]), [2], xb.CircuitParams(), xb.DACParams(bits=2), sinh_b=float("nan"))

