"""Bad inputs give clear errors that name the field and value."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest

import xbarlab as xb
from xbarlab.engines.ngspice import NgspiceSettings, run_deck

G = np.full((3, 2), 1e-5)
C = xb.CircuitParams(1.0, 1.0, 10.0, 10.0)


@pytest.mark.parametrize("field", ["r_row", "r_col", "r_sense", "r_driver"])
@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, 10**400])  # 10**400: float() raised OverflowError
def test_bad_resistance_names_field_and_value(field, bad):
    with pytest.raises(ValueError, match=field) as err:
        xb.CircuitParams(**{field: bad})
    assert repr(bad) in str(err.value)


def test_bad_per_row_driver():
    with pytest.raises(ValueError, match=r"r_driver\[1\]"):
        xb.CircuitParams(r_driver=[1.0, -2.0])
    with pytest.raises(ValueError, match="3 rows"):
        xb.simulate(G, np.ones(3), xb.CircuitParams(r_driver=[1.0, 2.0]))
    for nested, got in (([[1.0, 2.0], [3.0]], "a ragged nested sequence"), ([[1.0, 2.0], [3.0, 4.0]], r"shape \(2, 2\)")):
        with pytest.raises(ValueError, match=rf"r_driver must be a number or a flat sequence.*got {got}"):
            xb.CircuitParams(r_driver=nested)


def test_int_beyond_double_precision_is_a_value_error_naming_the_field():
    # check_number let float()'s OverflowError through (DACParams, AccessTransistor, NgspiceSettings)
    with pytest.raises(ValueError, match="v_read"):
        xb.DACParams(v_read=10**400)
    with pytest.raises(ValueError, match="timeout_s"):
        NgspiceSettings(timeout_s=10**400)


def test_spec_size_takes_numpy_integers_and_stores_ints():
    # np.int64 sizes (np.arange) were refused: "rows must be an integer >= 1, got np.int64(8)"
    spec = xb.load_preset("reram", rows=np.int64(8), cols=np.int32(4))
    assert (spec.rows, spec.cols) == (8, 4) and type(spec.rows) is int and type(spec.cols) is int
    assert json.loads(spec.with_size(np.int64(16)).to_json())["rows"] == 16
    for bad in (True, np.bool_(True), 0, np.int64(0), 2.0, "8"):
        with pytest.raises(ValueError, match="rows"):
            spec.with_size(bad)


@pytest.mark.parametrize("cls, field", [(xb.DeviceParams, "g_max"), (xb.DeviceParams, "variation"),
                                        (xb.ADCParams, "full_scale_a")])
@pytest.mark.parametrize("bad", [True, np.bool_(True), "1e-4", 10**400])
def test_spec_numbers_refuse_booleans_strings_and_huge_ints(cls, field, bad):
    # float() took True as 1 (g_max = 1 S) and "1e-4" as a number; 10**400 raised OverflowError
    with pytest.raises(ValueError, match=field):
        cls(**{field: bad})


def test_adc_inl_refuses_booleans():
    with pytest.raises(ValueError, match="inl_lsb"):
        xb.ADCParams(inl_lsb=[True, False])


@pytest.mark.parametrize("text", ['[1, 2]', '[["rows", 4]]', '{"device": null}', '{"circuit": [1]}',
                                  '{"dac": 3}', '{"adc": "x"}'])
def test_spec_json_that_is_not_objects_is_a_value_error(text):
    # set(None) / dict([1, 2]) raised TypeError; a list of pairs became a spec
    with pytest.raises(ValueError, match="dict|unknown field"):
        xb.CrossbarSpec.from_json(text)


def test_g_not_2d():
    with pytest.raises(ValueError, match="2-D"):
        xb.simulate(np.ones(3) * 1e-5, np.ones(3), C)
    with pytest.raises(ValueError, match="2-D"):
        xb.g_nonideal(np.ones((2, 2, 2)), C)


def test_mismatched_shapes():
    with pytest.raises(ValueError, match="3 rows"):
        xb.simulate(G, np.ones(4), C)
    with pytest.raises(ValueError, match="1-D"):
        xb.simulate(G, np.ones((2, 2, 3)), C)


def test_negative_and_nonfinite_g():
    bad = G.copy()
    bad[1, 1] = -1e-6
    with pytest.raises(ValueError, match=r">= 0 S.*-1e-06 at index \(1, 1\)"):
        xb.simulate(bad, np.ones(3), C)
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        xb.g_nonideal(bad, C)


def test_nonfinite_v_and_bad_engine():
    with pytest.raises(ValueError, match="V must be finite"):
        xb.simulate(G, [0.1, np.inf, 0.2], C)
    with pytest.raises(ValueError, match="engine"):
        xb.simulate(G, np.ones(3), C, engine="hspice")
    with pytest.raises(ValueError, match="CircuitParams"):
        xb.simulate(G, np.ones(3), {"r_row": 1})


def test_ngspice_missing_gives_install_hint(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("XBARLAB_NGSPICE", raising=False)
    with pytest.raises(xb.NgspiceNotFoundError, match="apt-get install ngspice"):
        xb.simulate(G, np.ones(3), C, engine="ngspice")


def test_rejected_deck_carries_ngspice_message(ngspice):
    deck = "* broken\nv1 in 0 dc 1e0\nr1 in 0 1e3\nr1 in 0 2e3\n.op\n.end\n"  # only cards run_deck accepts
    with pytest.raises(xb.SpiceError) as err:
        run_deck(deck)
    text = str(err.value)
    assert "ngspice" in text and "--- ngspice output" in text
    assert "device already exists" in text  # ngspice's own words, not a paraphrase
    assert err.value.log  # ngspice's own output is kept


def _fake_ngspice(tmp_path, body: str) -> str:
    """An executable standing in for ngspice (``exec`` so a kill reaches the process itself)."""
    exe = tmp_path / "ngspice"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(0o755)
    return str(exe)


def test_subprocess_timeout_kills_a_hung_ngspice(tmp_path):
    exe = _fake_ngspice(tmp_path, "echo starting; exec sleep 60")
    t0 = time.monotonic()
    with pytest.raises(xb.SpiceError, match=r"timed out after 0\.5 s"):
        run_deck("* deck\n.op\n.end\n", NgspiceSettings(executable=exe, timeout_s=0.5))
    assert time.monotonic() - t0 < 10


def test_ngspice_failure_status_and_missing_results(tmp_path):
    exe = _fake_ngspice(tmp_path, "echo 'fatal: fake simulator gave up' >&2; exit 3")
    with pytest.raises(xb.SpiceError, match="exited with status 3|fatal") as err:
        run_deck("* deck\n.op\n.end\n", NgspiceSettings(executable=exe))
    assert "fake simulator gave up" in str(err.value)
    exe = _fake_ngspice(tmp_path, "exit 0")
    with pytest.raises(xb.SpiceError, match="no results"):
        run_deck("* deck\n.op\n.end\n", NgspiceSettings(executable=exe))


def test_named_executable_missing(tmp_path):
    with pytest.raises(xb.NgspiceNotFoundError, match="apt-get install ngspice"):
        run_deck("* deck\n.op\n.end\n", NgspiceSettings(executable=str(tmp_path / "no-such-ngspice")))


def test_settings_validated():
    with pytest.raises(ValueError, match="timeout_s"):
        NgspiceSettings(timeout_s=0)
    with pytest.raises(ValueError, match="backend"):
        NgspiceSettings(backend="hspice")


@pytest.mark.parametrize("bad", [True, "5", None, float("nan"), float("inf"), -1.0, 1e9, 1e308])
def test_settings_timeout_refused_unless_a_number_a_run_can_wait(bad):
    # 1e9 and 1e308 s passed the check, then every run raised OverflowError (subprocess and shared alike)
    with pytest.raises(ValueError, match="timeout_s"):
        NgspiceSettings(timeout_s=bad)


def test_settings_timeout_at_its_cap_runs_and_executable_must_be_a_path(tmp_path):
    exe = _fake_ngspice(tmp_path, "exit 0")
    s = NgspiceSettings(executable=exe, timeout_s=1e6)
    assert s.timeout_s == 1e6
    with pytest.raises(xb.SpiceError, match="no results"):  # it ran: the wait took the timeout
        run_deck("* deck\n.op\n.end\n", s)
    with pytest.raises(ValueError, match="executable"):
        NgspiceSettings(executable=5)


def test_cli_error_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "xbarlab.cli", "validate", "--out", str(blocker / "sub")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("xbarlab: error")


@pytest.mark.parametrize("argv", [["validate", "--seed", "not-a-number"], ["no-such-command"], []])
def test_cli_bad_argument_is_one_line(argv):
    proc = subprocess.run([sys.executable, "-m", "xbarlab.cli", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "error" in proc.stderr


@pytest.mark.parametrize("field", ["r_row", "r_col", "r_sense", "r_driver"])
def test_resistance_whose_conductance_overflows_names_field_and_value(field):
    # 1/r is inf for 0 < r < 5.6e-309: it used to reach the spread check as an inf conductance
    # (with numpy's overflow RuntimeWarning) instead of a ValueError naming the field.
    with pytest.raises(ValueError, match=field) as err:
        xb.CircuitParams(**{field: 1e-320})
    assert "1e-320" in str(err.value)
    assert xb.CircuitParams(**{field: 5.6e-309})  # 1/r finite: accepted


@pytest.mark.parametrize("circuit", [xb.CircuitParams(), xb.CircuitParams(r_row=1e308)])
def test_subnormal_largest_conductance_solved_not_overflowing(circuit):
    # pow2_scale of a subnormal largest conductance asked for 2**1029: OverflowError (math range error).
    g = np.full((3, 2), 1e-310)
    v = np.array([1e10, 2e10, -1e10])
    i = xb.simulate(g, v, circuit)
    ref = xb.solve(g * 2.0 ** 600, v, xb.CircuitParams(r_row=circuit.r_row / 2.0 ** 600)).i_out / 2.0 ** 600
    np.testing.assert_allclose(i, ref, rtol=1e-12)
    np.testing.assert_allclose(xb.solve(g, v, circuit).i_out, ref, rtol=1e-12)
    with pytest.raises(ValueError, match="normal range"):  # outputs subnormal themselves: refused
        xb.simulate(g, np.ones(3), circuit)


@pytest.mark.parametrize("cells", [None, "sinh"])
def test_empty_batch_solves_to_empty_results(cells):
    # solve() with V of shape (0, M) raised numpy's "zero-size array to reduction operation" (linear)
    # or "need at least one array to stack" (non-linear); simulate() already returned (0, N).
    from xbarlab.engines.nonlinear import SinhCells

    c = SinhCells(1.0) if cells else None
    r = xb.solve(G, np.zeros((0, 3)), C, cells=c)
    assert r.i_out.shape == (0, 2) and r.v_row.shape == (0, 3, 2)
    assert xb.simulate(G, np.zeros((0, 3)), C, cells=c).shape == (0, 2)


@pytest.mark.parametrize("chunk", [1.5, True, "2"])
def test_bad_chunk_is_value_error(chunk):
    with pytest.raises(ValueError, match="chunk") as err:
        xb.g_nonideal_stack(np.stack([G, G]), C, chunk=chunk)
    assert repr(chunk) in str(err.value)


def _choices():
    import xbarlab.device  # noqa: F401 - every Choice of the core, so that __subclasses__ sees them
    import xbarlab.fcm.mapping  # noqa: F401
    import xbarlab.fcm.options  # noqa: F401
    import xbarlab.transistor  # noqa: F401
    import xbarlab.update_params  # noqa: F401
    from xbarlab.choices import Choice

    return Choice.__subclasses__()


@pytest.mark.parametrize("cls", _choices(), ids=lambda c: c.__name__)
def test_a_choice_error_lists_the_spellings_users_write(cls):
    """The message listed the upper-case names (``dac_load must be one of ['ROWSUM', 'EXACT', 'NONE']``),
    while the CLI, the presets and the docs spell them in lower case."""
    with pytest.raises(ValueError, match=r"must be one of \[") as err:
        cls.parse("no-such-choice")
    listed = json.loads(str(err.value).split(" must be one of ", 1)[1].split("]", 1)[0].replace("'", '"') + "]")
    assert listed == [k.value for k in cls] and all(s == s.lower() for s in listed)
    assert [cls.parse(s) for s in listed] == list(cls)


def test_fcm_options_choice_error_in_lower_case():
    with pytest.raises(ValueError, match=r"^dac_load must be one of \['rowsum', 'exact', 'none'\], got 'foo'$"):
        xb.FCMOptions(dac_load="foo")
