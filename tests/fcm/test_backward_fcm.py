"""The backward FCM (``xbarlab.fcm.backward``): dx ~ d @ W^T through the transposed read of W's crossbars.

The reference is built tile by tile from the public circuit API, not from the FCM: the backward
G_non-ideal ``xb.g_nonideal(G, c, read="backward")``, and for the EXACT DAC load the column-port
admittance from ``xb.solve(..., read="backward")`` (one unit source per column), V = solve(I +
diag(R_th) Y, V_th). Inputs lie exactly on DAC codes and the ADC is ideal, so there is no
quantization to hide a wrong index or a wrong circuit: the bound is 1e-9 relative. The ngspice test
runs the backward decks (``xb.netlist(..., read="backward")`` through the project's adapter).
"""

from __future__ import annotations

import numpy as np
import pytest

import xbarlab as xb
from xbarlab.fcm.backward import BackwardFCM, backward_spec, turned_tiles
from xbarlab.fcm.mapping import tile

BACKWARD = dict(read="backward")


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def _spec(rows, cols, r_pd=0.0, adc_bits=None, dac_bits=6, circuit=None):
    c = circuit or xb.CircuitParams(r_row=2.5, r_col=1.5, r_sense=100.0, r_driver=50.0)
    dev = xb.DeviceParams(g_min=1e-6, g_max=1e-4, bits=None)  # analog: no level rounding
    return xb.CrossbarSpec(rows=rows, cols=cols, circuit=c, device=dev,
                           dac=xb.DACParams(bits=dac_bits, v_read=0.25, r_pd=r_pd), adc=xb.ADCParams(bits=adc_bits))


def _on_codes(rng, B, N, full):
    """Signed inputs exactly on DAC codes: every row's largest magnitude is 1 (code full)."""
    d = rng.integers(-full, full + 1, size=(B, N)) / full
    d[:, 0] = 1.0
    return d


def _column_port_admittance(G, c):
    """Y (N, N): current into each column's source for a unit source on column k (backward read)."""
    res = xb.solve(G, np.eye(G.shape[1]), c, **BACKWARD)
    return -res.i_cell.sum(axis=1)  # i_cell runs from a(i, j) to b(i, j): into the column is b -> a


def _reference(fcm, d, spec, load: str, engine: str = "exact"):
    """d @ W^T of the backward read, tile by tile from the public circuit API (ideal ADC)."""
    K, N = fcm.shape
    M, Nc = spec.rows, spec.cols
    G = fcm.G  # (S, Tk, Tn, M, Nc)
    S, Tk, Tn = G.shape[:3]
    dac = spec.dac
    full = dac.full_code
    sign = [1.0, -1.0] if S == 2 else [1.0]
    gain = fcm.w_max / (dac.v_read * (spec.device.g_max - spec.device.g_min))
    dpad = np.zeros((d.shape[0], Tn * Nc))
    dpad[:, :N] = d
    y = np.zeros((d.shape[0], Tk * M))
    for phase, part in ((1.0, np.maximum(dpad, 0)), (-1.0, np.maximum(-dpad, 0))):
        codes = np.rint(part * full)
        for s in range(S):
            for a in range(Tk):
                for b in range(Tn):
                    g = G[s, a, b]
                    cb = codes[:, b * Nc:(b + 1) * Nc]
                    v_th, r_th = dac.thevenin(cb)
                    if load == "exact" and dac.r_pd > 0:
                        Y = _column_port_admittance(g, spec.circuit)
                        V = np.stack([np.linalg.solve(np.eye(Nc) + r_th[i][:, None] * Y, v_th[i])
                                      for i in range(len(v_th))])
                    else:
                        V = v_th
                    if engine == "exact":
                        I = V @ xb.g_nonideal(g, spec.circuit, **BACKWARD)
                    else:
                        I = xb.simulate(g, V, spec.circuit, engine="ngspice", **BACKWARD)
                    y[:, a * M:(a + 1) * M] += phase * sign[s] * gain * I
    return y[:, :K]


CASES = [
    # (K, N, rows, cols, r_pd, load): square and non-square tiles, partial last blocks on both axes
    (7, 5, 4, 3, 0.0, "none"),
    (7, 5, 4, 3, 30.0, "exact"),
    (6, 9, 3, 4, 200.0, "exact"),
    (4, 3, 4, 3, 20.0, "exact"),
]


@pytest.mark.parametrize("K,N,rows,cols,r_pd,load", CASES)
@pytest.mark.parametrize("mapping", ["differential", "offset"])
def test_backward_fcm_equals_the_backward_read_without_quantization(K, N, rows, cols, r_pd, load, mapping):
    rng = np.random.default_rng(K * 100 + N)
    spec = _spec(rows, cols, r_pd=r_pd, dac_bits=8)
    W = rng.standard_normal((K, N))
    fcm = xb.FCM.from_weights(W, spec, None, xb.FCMOptions(dac_load=load, mapping=mapping))
    fb = BackwardFCM.from_fcm(fcm)
    d = _on_codes(rng, 5, N, spec.dac.full_code)
    got = fb.matmul(d)
    assert got.shape == (5, K)
    if mapping == "differential":
        ref = _reference(fcm, d, spec, load)
        assert rel(got, ref) <= 1e-9
    # both mappings: the parasitic-free backward read is d @ W^T up to the device mapping (analog device)
    plain = spec.replace(circuit=xb.CircuitParams(0.0, 0.0, 0.0, 0.0), dac=xb.DACParams(bits=8, v_read=0.25))
    ideal = BackwardFCM.from_fcm(xb.FCM.from_weights(W, plain, None, xb.FCMOptions(mapping=mapping)))
    assert rel(ideal.matmul(d), d @ W.T) <= 1e-9


def test_backward_is_not_the_forward_fcm_of_the_transpose():
    """The backward read of W's tiles differs from a forward FCM of W^T (different parasitics and tiles)."""
    rng = np.random.default_rng(5)
    spec = xb.load_preset("rxnn-spintronic", rows=16, cols=16)
    W = rng.standard_normal((16, 16))
    fcm = xb.FCM.from_weights(W, spec, rng)
    fb = BackwardFCM.from_fcm(fcm)
    d = rng.standard_normal((8, 16))
    naive = xb.FCM.from_tiles(fcm.G.swapaxes(-1, -2), spec, fcm.options, (16, 16), fcm.w_max).matmul(d)
    diff = rel(fb.matmul(d), naive)
    print(f"\nbackward FCM vs a forward FCM of the transposed tiles (16x16 rxnn-spintronic): {diff:.3e}")
    assert diff > 1e-4


def test_turned_tiles_and_spec():
    G = np.arange(2 * 2 * 3 * 4 * 5, dtype=float).reshape(2, 2, 3, 4, 5)
    T = turned_tiles(G)
    assert T.shape == (2, 3, 2, 5, 4)
    assert T[1, 2, 0, 1, 3] == G[1, 0, 2, 4 - 1 - 3, 5 - 1 - 1]
    spec = _spec(4, 5, dac_bits=5, adc_bits=7)
    bs = backward_spec(spec, adc=xb.ADCParams(bits=9))
    assert (bs.rows, bs.cols, bs.circuit.r_row, bs.circuit.r_col) == (5, 4, 1.5, 2.5)
    assert bs.adc.bits == 9 and bs.dac.bits == 5


def test_bad_input_names_the_shape():
    spec = _spec(4, 3)
    fb = BackwardFCM.from_fcm(xb.FCM.from_weights(np.ones((5, 4)), spec, None))
    with pytest.raises(ValueError, match="N=4"):
        fb.matmul(np.ones((2, 5)))
    with pytest.raises(ValueError, match="fcm must be"):
        BackwardFCM.from_fcm("W")


def test_options_must_keep_the_forward_mapping():
    """The tiles are programmed in the forward FCM's mapping (G+ and G-, or one offset cell): read under
    the other, the backward read was off by 2x (relative error 2.3 measured), with no error raised."""
    spec = _spec(4, 3)
    W = np.random.default_rng(3).standard_normal((5, 4))
    for mine, other in (("differential", "offset"), ("offset", "differential")):
        fcm = xb.FCM.from_weights(W, spec, None, xb.FCMOptions(mapping=mine))
        with pytest.raises(ValueError, match=f"options.mapping must be the forward FCM's mapping '{mine}'.*"
                                             f"got '{other}'"):
            BackwardFCM.from_fcm(fcm, options=xb.FCMOptions(mapping=other))
        fb = BackwardFCM.from_fcm(fcm, options=xb.FCMOptions(mapping=mine, load_factor=0.5))
        assert fb.turned.options.load_factor == 0.5
    with pytest.raises(ValueError, match="options must be an xbarlab.fcm.FCMOptions"):
        BackwardFCM.from_fcm(fcm, options={"mapping": "offset"})


def test_constructor_checks_the_tile_layout():
    """``BackwardFCM(turned, forward_shape, blocks)`` took any shape and grid: K beyond the grid gave
    (B, Tk M) outputs, a wrong grid read the wrong cells (max error 9.0 against 0.75 measured)."""
    spec = _spec(4, 3)
    fb = BackwardFCM.from_fcm(xb.FCM.from_weights(np.ones((7, 5)), spec, None))  # 2 x 2 tiles of 4 x 3
    assert fb._blocks == (2, 4, 2, 3) and fb.turned.shape == (6, 8)
    for shape, blocks, match in (((9, 5), (2, 4, 2, 3), "not the tile grid"), ((7, 5), (1, 8, 2, 3), "must read"),
                                 ((7, 5), (2, 4, 3, 2), "must read"), ((7, 0), (2, 4, 2, 3), "integers >= 1"),
                                 ((7, True), (2, 4, 2, 3), "integers >= 1"), ((7, 5), (2, 4, 2), "integers >= 1")):
        with pytest.raises(ValueError, match=match):
            BackwardFCM(fb.turned, shape, blocks)
    assert BackwardFCM(fb.turned, (np.int64(5), 4), (2, 4, 2, 3)).forward_shape == (5, 4)


def test_torch_inputs_give_the_numpy_result():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    spec = _spec(4, 3, r_pd=20.0, adc_bits=8)
    fb = BackwardFCM.from_fcm(xb.FCM.from_weights(rng.standard_normal((7, 5)), spec, None))
    d = rng.standard_normal((6, 5))
    out = fb.matmul(torch.as_tensor(d))
    assert isinstance(out, torch.Tensor) and out.shape == (6, 7)
    np.testing.assert_allclose(out.numpy(), fb.matmul(d), rtol=1e-12, atol=1e-12)


def test_zero_weights():
    fb = BackwardFCM.from_fcm(xb.FCM.from_weights(np.zeros((5, 4)), _spec(4, 3), None))
    assert np.all(fb.matmul(np.ones((2, 4))) == 0)


@pytest.mark.ngspice
def test_backward_fcm_against_ngspice_backward_decks(ngspice):
    """7 x 5 weights on 4 x 3 tiles (2 x 2 tiles, a differential pair, two phases: 16 backward decks of
    3 input vectors), ideal DAC and ADC: the backward FCM equals ngspice to 1e-9."""
    rng = np.random.default_rng(14)
    spec = _spec(4, 3, r_pd=0.0, dac_bits=8)
    W = rng.standard_normal((7, 5))
    fcm = xb.FCM.from_weights(W, spec, None)
    d = _on_codes(rng, 3, 5, spec.dac.full_code)
    sp = _reference(fcm, d, spec, "none", engine="ngspice")
    err = rel(BackwardFCM.from_fcm(fcm).matmul(d), sp)
    print(f"\nbackward FCM vs ngspice backward decks: {err:.2e}")
    assert err <= 1e-9
