"""``dnn_eval`` crossbar layers end to end against ngspice: a Linear and a Conv2d layer, x -> y.

Each example builds an ``nn.Linear`` or ``nn.Conv2d`` (bias or not, several
tiles per FCM; convolutions with stride, padding, dilation and groups),
converts it with ``dnn_eval.convert.to_crossbar`` and runs it in torch
float64 and float32, with the EXACT and the ROWSUM DAC load, on signed or
non-negative inputs. The reference (``spice_layers``) is the same
computation with every tile's currents from ngspice on the full circuit
(divider DACs at the actual codes, drivers, wires, cells, sense;
``xbarlab.verify.spice_reference.spice_evaluate_layer``), the same ADC and
accumulation, the im2col patches from ``F.unfold``, then the bias. Hardware:
random circuits (2..8 x 1..6 tiles, R_PD 0..1 kOhm, per-row drivers, kappa 1
or a preset's fitted value) and the default preset of ``dnn_eval``
(``spintronic`` at 16 x 16, its fitted kappa from
``xbarlab/presets/fitted/spintronic_16x16.json``, variation 0 or 10 %), each
with both mappings. Bounds on every output:

* EXACT, float64: y equal to ngspice's y to 1e-12 of its magnitude, except
  for ADC codes whose ngspice input lies within 1e-9 (relative to the
  tile's largest input, in LSB) of a rounding boundary: each may move y by
  its LSB weight (counted);
* ROWSUM: each tile column within the stated bound of
  ``xbarlab.verify.rowsum_bound`` ((C q(sigma) + |1 - kappa|) q(rho) relative,
  then +- 1 ADC code), summed over tiles, pair and phases with their LSB weights;
* float32: compared with ngspice at the float32 DAC codes, which differ from
  float64's only within 1e-5 of a rounding boundary (counted); ADC codes may
  flip within 1e-5 of a boundary and y carries 1e-5 of its magnitude.

Fixed cases: the trained ConvNet's first convolution (64 patches) and both
Linear layers (256 -> 64: 16 x 4 tiles per array; 64 -> 10) on one test
digit, each fed the network's own activation, on that preset and fit.

CI (derandomized ``ci`` profile): 2 examples per (layer, hardware, mapping,
signed) case, 16 in all (4 cases per layer kind, a Latin square);
``pytest tests/dnn --hypothesis-profile=thorough`` runs 20 each.
The examples' counts and largest deviations are printed at the end.
One ``thorough`` run (2026-12-01, 160 examples): all within bounds; largest
EXACT float64 |y - y_ngspice| / allowed 2.8e-4 (float32 0.015); ROWSUM per-column
relative error of the tile currents 2.2 %, at most 0.79 of the stated bound;
no ngspice ADC input within 1e-9 of a rounding boundary and no float32 DAC
code flip occurred (both allowances stayed unused).
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import spice_layers as sl
import xbarlab as xb
from dnn_eval.convert import to_crossbar
from dnn_eval.evaluate import default_options, make_spec
from xbarlab.verify import reference as ref
from xbarlab.verify.metrics import column_errors
from xbarlab.verify.rowsum_bound import KAPPAS, rowsum_rel_bound

pytestmark = [pytest.mark.ngspice, pytest.mark.property]

N_EXAMPLES = max(2, settings.default.max_examples // 20)
BOUNDARY = 1e-9  # ngspice vs the float64 model: ADC input's relative distance to a rounding boundary
F32 = 1e-5  # float32: relative precision of DAC/ADC inputs and of y (the FCM's documented code-boundary flips)
F64 = 1e-12  # float64: y's rounding relative to its magnitude

STATS: dict = defaultdict(lambda: {"examples": 0, "largest": 0.0, "bound": None, "count": 0, "of": 0})
COVERAGE: Counter = Counter()


def record(name: str, value: float, bound=None, count: int = 0, of: int = 0) -> None:
    s = STATS[name]
    s["examples"] += 1
    s["largest"] = max(s["largest"], float(value))
    s["bound"] = bound
    s["count"] += int(count)
    s["of"] += int(of)


def stats_lines() -> list[str]:
    lines = []
    for name, s in sorted(STATS.items()):
        extra = f", counted {s['count']} of {s['of']}" if s["of"] else ""
        lines.append(f"{name}: {s['examples']} examples, largest {s['largest']:.3g}"
                     + ("" if s["bound"] is None else f" (bound {s['bound']:g})") + extra)
    lines += [f"covered {k}: {v} examples" for k, v in sorted(COVERAGE.items())]
    return lines


# ------------------------------------------------------------------ strategies
@st.composite
def hardware(draw, which: str):
    """(spec, ROWSUM options, hardware seed): dnn_eval's default preset with its default (fitted) options,
    or a random circuit with kappa 1 (unfitted; the simplest example) or a preset's fitted value."""
    seed = draw(st.integers(0, 2**31 - 1))
    if which == "preset":
        spec = make_spec("spintronic", size=16, variation=draw(st.sampled_from([None, 0.1])))
        opts = default_options(spec)
        assert opts.dac_load.value == "rowsum" and opts.load_factor != 1.0, "the spintronic 16x16 fit is missing"
        return spec, opts, seed
    # each first choice is the simplest example's (hypothesis starts there): a loaded DAC, a real ADC
    rows, cols = draw(st.integers(2, 8)), draw(st.integers(1, 6))
    rng = np.random.default_rng(seed)
    g_max = draw(st.sampled_from([1e-4, 1e-3, 5e-5, 1e-5]))
    per_row = draw(st.booleans())
    rd = tuple(rng.uniform(0.0, 100.0, rows).tolist()) if per_row else draw(st.sampled_from([50.0, 0.0, 100.0]))
    circuit = xb.CircuitParams(r_row=draw(st.sampled_from([2.5, 0.0, 1.0, 5.0])),
                               r_col=draw(st.sampled_from([2.5, 0.0, 5.0])),
                               r_sense=draw(st.sampled_from([100.0, 0.0, 200.0])), r_driver=rd)
    device = xb.DeviceParams(g_min=g_max / draw(st.sampled_from([3.0, 10.0])), g_max=g_max,
                             bits=draw(st.sampled_from([6, None, 2])), variation=draw(st.sampled_from([0.0, 0.1])))
    r_pd = draw(st.one_of(st.sampled_from([200.0, 20.0, 1000.0, 0.0]), st.floats(0.0, 1000.0)))
    dac = xb.DACParams(bits=draw(st.sampled_from([3, 1, 6])), v_read=0.2, r_pd=r_pd)
    adc = xb.ADCParams(bits=draw(st.sampled_from([6, None, 4, 8])))
    spec = xb.CrossbarSpec(rows=rows, cols=cols, circuit=circuit, device=device, dac=dac, adc=adc)
    return spec, xb.FCMOptions(dac_load="rowsum", load_factor=draw(st.sampled_from(KAPPAS))), seed


def _inputs(rng, shape, signed: bool) -> torch.Tensor:
    x = rng.standard_normal(shape) if signed else rng.random(shape)
    x[..., rng.random(shape[-1]) < 0.2] = 0.0  # some rows at code 0 (R_DAC open)
    if signed and not np.any(x < 0):
        x.flat[-1] = -0.5
    return torch.as_tensor(x, dtype=torch.float32)


@st.composite
def linear_layers(draw, spec, signed: bool):
    """(nn.Linear of 1..3 x 1..2 tiles per array, inputs (B, K) float32)."""
    tk, tn = draw(st.sampled_from([2, 3, 1])), draw(st.sampled_from([2, 1]))  # the simplest example: 2 x 2 tiles
    K = draw(st.integers((tk - 1) * spec.rows + 1, tk * spec.rows))
    N = draw(st.integers((tn - 1) * spec.cols + 1, tn * spec.cols))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    torch.manual_seed(int(rng.integers(2**31)))
    layer = nn.Linear(K, N, bias=draw(st.booleans()))
    return layer, _inputs(rng, (draw(st.integers(1, 3)), K), signed)


@st.composite
def conv_layers(draw, spec, signed: bool):
    """(nn.Conv2d with 1..3 row tiles per group, stride, padding, dilation, groups; images (B, C, H, W) float32)."""
    g = draw(st.sampled_from([1, 2]))
    kh = draw(st.integers(1, 3))
    kw = draw(st.integers(1, max(1, min(3, 3 * spec.rows // kh))))
    cg = draw(st.integers(1, max(1, min(3, 3 * spec.rows // (kh * kw)))))
    tn = draw(st.sampled_from([2, 1]))  # column tiles (the simplest example: 2)
    out_g = draw(st.integers((tn - 1) * spec.cols + 1, tn * spec.cols))
    (sh, sw), (dh, dw) = (draw(st.tuples(st.integers(1, 2), st.integers(1, 2))) for _ in range(2))
    dh, dw = (dh if kh > 1 else 1), (dw if kw > 1 else 1)
    ph, pw = draw(st.integers(0, 1)), draw(st.integers(0, 1))
    Ho, Wo = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H = (Ho - 1) * sh + dh * (kh - 1) + 1 - 2 * ph
    W = (Wo - 1) * sw + dw * (kw - 1) + 1 - 2 * pw
    if H < 1:
        H, ph = H + 2 * ph, 0
    if W < 1:
        W, pw = W + 2 * pw, 0
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    torch.manual_seed(int(rng.integers(2**31)))
    layer = nn.Conv2d(g * cg, g * out_g, (kh, kw), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw),
                      groups=g, bias=draw(st.booleans()))
    B = 1 if g == 2 else draw(st.integers(1, 2))
    return layer, _inputs(rng, (B, g * cg, H, W), signed)


# ------------------------------------------------------------------ bounds
def _tile_max(a: np.ndarray) -> np.ndarray:
    return np.abs(a).max(axis=-1, keepdims=True)


def exact_allowance(f, sp: dict, f32: bool) -> np.ndarray:
    """EXACT: allowed |y - y_ngspice| (R, N_g): rounding, plus one LSB weight per ADC code near a boundary."""
    tol = F32 if f32 else F64
    mag = sl.magnitude(f, sp)
    if f.spec.adc.bits is None:
        return (1e-9 + tol) * mag
    dist, a = sl.boundary_distance(f, sp["I"])
    near = dist <= BOUNDARY * _tile_max(a)
    if f32:
        near |= dist <= F32 * np.maximum(_tile_max(a), 1.0)
    return tol * mag + sl.to_y(f, near * sl.lsb_a(f), sp["scale"])


def rowsum_allowance(f, sp: dict, f32: bool) -> np.ndarray:
    """ROWSUM: the stated per-column bound b of each tile ((C q(sigma) + |1 - kappa|) q(rho), relative),
    + 1 ADC code, in y; for an ideal ADC b |I| (+ 3e-9 FS for near-zero columns)."""
    S, Tk, Tn = f.G.shape[:3]
    b = np.array([[[rowsum_rel_bound(f.spec, f.G[s, k, t], f.options.load_factor) for t in range(Tn)]
                   for k in range(Tk)] for s in range(S)])[..., None] * (1 + 1e-6)
    tol = F32 if f32 else F64
    if f.spec.adc.bits is None:
        amps = (b + 1e-9) * np.abs(sp["I"]) + 3e-9 * f.spec.full_scale_current_a
        if f32:
            amps = amps + F32 * _tile_max(sp["I"])
    else:
        a = ref.adc_input(f, sp["I"])
        lsb = b * np.abs(a) + 1.0 + 1e-9 + (F32 * np.maximum(_tile_max(a), 1.0) if f32 else 0.0)
        amps = lsb * sl.lsb_a(f)
    return tol * sl.magnitude(f, sp) + sl.to_y(f, amps, sp["scale"])


def float32_codes(module, x32, fcms, sp64) -> tuple[list, int, int]:
    """The float32 DAC codes of each FCM; they may differ from float64's only within F32 of a boundary."""
    out, flips, total = [], 0, 0
    for f, X, sp in zip(fcms, sl.input_matrices(module, x32), sp64):
        c32, s32 = sl.dac_codes(X, f.spec.dac.full_code)
        assert c32.shape == sp["codes"].shape
        np.testing.assert_array_equal(s32, sp["scale"])  # the largest float32 value, exactly
        xs = np.abs(X.to(torch.float64).numpy()) / sp["scale"][:, None] * f.spec.dac.full_code
        edge = np.abs(xs - np.floor(xs) - 0.5) <= F32 * np.maximum(xs, 1.0)
        differ = c32 != sp["codes"]
        assert np.all(~differ | edge[None])
        flips, total = flips + int(differ.sum()), total + differ.size
        out.append((c32, s32))
    return out, flips, total


# ------------------------------------------------------------------ the check
def check_layer(module, x, signed, spec, rowsum, seed, mapping, label):
    """The layer under EXACT and under ``rowsum`` options (with ``mapping``), float64 and float32, against
    ngspice on the same hardware instance (``seed``)."""
    fe = sl.layer_fcms(module, spec, seed, xb.FCMOptions(dac_load="exact", mapping=mapping))
    ro = rowsum.replace(mapping=mapping)
    fr = [f.with_options(dac_load=ro.dac_load, load_factor=ro.load_factor) for f in fe]  # the same instance
    assert fr[0].options == ro
    sp64 = sl.spice_layer(module, x.to(torch.float64), fe)
    c32, flips, total = float32_codes(module, x, fe, sp64)
    same = all(np.array_equal(c, sp["codes"]) for (c, _), sp in zip(c32, sp64))
    sp32 = sp64 if same else sl.spice_layer(module, x.to(torch.float64), fe, codes=c32)
    record(f"{label}: float32 DAC codes differing from float64's (within {F32:g} of a boundary)", flips,
           count=flips, of=total)
    COVERAGE[(label, mapping, "signed" if signed else "non-negative", f"{len(fe)} FCM(s)",
              f"{max(f.n_tiles for f in fe)} tiles", f"kappa {ro.load_factor:.3g}",
              f"ADC {spec.adc.bits or 'ideal'}", f"R_PD {spec.dac.r_pd:.3g}")] += 1
    for dtype, sp, f32 in ((torch.float64, sp64, False), (torch.float32, sp32, True)):
        tag = f"{label}, {'float32' if f32 else 'float64'}"
        ref_y = sl.to_layer(module, x, [s["y"] for s in sp])
        bias = sl.bias_of(module, ref_y.shape)
        for mode, fcms, opts in (("EXACT", fe, fe[0].options), ("ROWSUM", fr, ro)):
            net = to_crossbar(nn.Sequential(copy.deepcopy(module).to(dtype)), spec, np.random.default_rng(seed), opts)
            with torch.no_grad():
                y = net(x.to(dtype)).to(torch.float64).numpy()
            if mode == "EXACT":
                allow = sl.to_layer(module, x, [exact_allowance(f, s, f32) for f, s in zip(fcms, sp)])
            else:
                allow = sl.to_layer(module, x, [rowsum_allowance(f, s, f32) for f, s in zip(fcms, sp)])
            allow = allow + (F32 if f32 else F64) * np.abs(bias)
            dev = np.abs(y - (ref_y + bias))
            assert np.all(dev <= allow), f"{tag} {mode}: largest excess {np.max(dev - allow):.3g}"
            record(f"{tag}: {mode} |y - y_ngspice| / allowed", np.max(dev / np.maximum(allow, 1e-300)), 1.0)
        if not f32:
            rowsum_columns(module, x, fr, sp, label)
            if spec.adc.bits is not None:
                count_boundary_cases(module, x, fe, sp, label)


def rowsum_columns(module, x, fcms, sp, label):
    """The quantity the ROWSUM bound is about: per-column relative error of the tile currents of the layer's
    FCMs (stage-by-stage model, ``xbarlab.verify.reference``) against ngspice's, over the stated bound."""
    worst = largest = 0.0
    for f, s, X in zip(fcms, sp, sl.input_matrices(module, x.to(torch.float64))):
        Im = ref.evaluate(f, X.numpy())["I"]
        S, Tk, Tn = f.G.shape[:3]
        for i in np.ndindex(S, Tk, Tn):
            e = column_errors(Im[(slice(None), slice(None)) + i], s["I"][(slice(None), slice(None)) + i],
                              f.spec.full_scale_current_a)
            b = rowsum_rel_bound(f.spec, f.G[i], f.options.load_factor)
            if not e["n_rel"]:  # (a tile whose columns carry no current: no relative error, NaN)
                continue
            assert e["max_rel"] <= b * (1 + 1e-6) + 1e-9
            worst, largest = max(worst, e["max_rel"] / (b * (1 + 1e-6) + 1e-9)), max(largest, e["max_rel"])
    record(f"{label}: ROWSUM per-column relative error of the tile currents / stated bound", worst, 1.0)
    record(f"{label}: ROWSUM per-column relative error of the tile currents", largest)


def count_boundary_cases(module, x, fcms, sp, label):
    """EXACT, float64: ADC codes whose ngspice input lies within BOUNDARY of a rounding boundary, and how many
    of them the stage-by-stage model (``xbarlab.verify.reference``) rounds the other way; no other code differs."""
    near_n = differ_n = total = 0
    for f, s, X in zip(fcms, sp, sl.input_matrices(module, x.to(torch.float64))):
        dist, a = sl.boundary_distance(f, s["I"])
        near = dist <= BOUNDARY * _tile_max(a)
        D = ref.evaluate(f, X.numpy())["D"]
        assert np.all((D == s["D"]) | near)
        near_n, differ_n, total = near_n + int(near.sum()), differ_n + int((D != s["D"]).sum()), total + near.size
    record(f"{label}: EXACT ADC codes within {BOUNDARY:g} of a rounding boundary (largest per example; "
           "counted: those differing from the model's)", near_n, count=differ_n, of=total)


#: (hardware, mapping, signed inputs): a Latin square per layer kind, so that the two kinds together
#: cover each of the 8 combinations (and each kind both values of each) in a fixed number of examples
LINEAR_CASES = [("preset", "differential", True), ("preset", "offset", False),
                ("random", "differential", False), ("random", "offset", True)]
CONV_CASES = [("preset", "differential", False), ("preset", "offset", True),
              ("random", "differential", True), ("random", "offset", False)]


@pytest.mark.parametrize("which, mapping, signed", LINEAR_CASES)
@settings(max_examples=N_EXAMPLES)
@given(data=st.data())
def test_linear_layer_equals_ngspice(ngspice, which, mapping, signed, data):
    spec, rowsum, seed = data.draw(hardware(which))
    layer, x = data.draw(linear_layers(spec, signed))
    check_layer(layer, x, signed, spec, rowsum, seed, mapping, f"Linear, {which} hardware")


@pytest.mark.parametrize("which, mapping, signed", CONV_CASES)
@settings(max_examples=N_EXAMPLES)
@given(data=st.data())
def test_conv2d_layer_equals_ngspice(ngspice, which, mapping, signed, data):
    spec, rowsum, seed = data.draw(hardware(which))
    layer, x = data.draw(conv_layers(spec, signed))
    check_layer(layer, x, signed, spec, rowsum, seed, mapping, f"Conv2d, {which} hardware")


def _tiny_fcm():
    spec = make_spec("spintronic", size=2)
    return xb.FCM.from_weights(np.array([[0.5, -1.0], [1.0, 0.25], [-0.75, 0.5]]), spec, None,
                               xb.FCMOptions(dac_load="exact"))


def test_spice_evaluate_codes_equals_spice_evaluate_at_float64_codes(ngspice):
    from xbarlab.verify.spice_reference import spice_evaluate, spice_evaluate_codes

    f = _tiny_fcm()
    x = np.array([[0.2, -0.7, 1.0], [0.0, 0.3, 0.9]])
    a = spice_evaluate(f, x)
    b = spice_evaluate_codes(f, a["codes"], a["scale"])
    for k in ("codes", "scale", "I", "D", "y"):
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("codes, scale, field", [
    (np.zeros((1, 2, 2)), np.ones(2), "codes must be"),  # K = 3
    (np.zeros((3, 2, 3)), np.ones(2), "codes must be"),  # P = 3
    (np.full((1, 2, 3), 0.5), np.ones(2), "whole numbers"),
    (np.full((1, 2, 3), 64.0), np.ones(2), "whole numbers"),  # 6-bit DAC: full code 63
    (np.zeros((1, 2, 3)), np.ones(3), "scale must be"),
    (np.zeros((1, 2, 3)), np.array([1.0, 0.0]), "scale must be"),
])
def test_spice_evaluate_codes_refuses_bad_codes(codes, scale, field):
    from xbarlab.verify.spice_reference import spice_evaluate_codes

    with pytest.raises(ValueError, match=field):
        spice_evaluate_codes(_tiny_fcm(), codes, scale)


def test_spice_evaluate_layer_needs_one_input_per_fcm():
    from xbarlab.verify.spice_reference import spice_evaluate_layer

    f = _tiny_fcm()
    with pytest.raises(ValueError, match="xs must hold one input matrix per FCM"):
        spice_evaluate_layer([f, f], [np.ones((1, 3))])
    with pytest.raises(ValueError, match="codes must hold one"):
        spice_evaluate_layer([f], [np.ones((1, 3))], codes=[])


@pytest.mark.parametrize("layer", ["features.0", "classifier.1", "classifier.3"])
def test_bundled_convnet_layers_equal_ngspice(ngspice, layer):
    """The trained ConvNet's first convolution and both Linear layers on one test digit, each fed the
    activation the network gives it, on dnn_eval's default preset at 16 x 16 with its fitted options."""
    from dnn_eval.data import load_digits_split
    from dnn_eval.loading import load_model

    net = load_model("convnet").module.eval()
    module = net.get_submodule(layer)
    seen = []
    hook = module.register_forward_hook(lambda m, a, out: seen.append(a[0].detach()))
    with torch.no_grad():
        net(torch.as_tensor(load_digits_split()[1].x[:1]))
    hook.remove()
    spec = make_spec("spintronic", size=16)
    check_layer(module, seen[0].to(torch.float32), False, spec, default_options(spec), 0, "differential",
                f"bundled ConvNet {layer}")
