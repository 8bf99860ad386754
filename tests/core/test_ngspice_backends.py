"""The ngspice adapter's two back ends agree, fail loudly, and read results by name."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import xbarlab as xb
from xbarlab.engines.ngspice import NgspiceSettings, run_deck
from xbarlab.engines.rawfile import read_raw

SHARED = NgspiceSettings(backend="shared", timeout_s=30.0)
# Only cards xbarlab writes (run_deck refuses others); ngspice rejects the second r1.
BROKEN_DECK = "* broken\nv1 in 0 dc 1e0\nr1 in 0 1e3\nr1 in 0 2e3\n.op\n.end\n"
TINY_DECK = "* tiny\nv1 in 0 dc 1e0\nr1 in 0 1e3\n.op\n.end\n"


def slow_deck() -> str:
    """A 128x128 crossbar: its .op takes about a minute here, far beyond the tests' timeouts."""
    rng = np.random.default_rng(128)
    return xb.netlist(10 ** rng.uniform(-6, -4, (128, 128)), rng.uniform(0, 0.25, 128),
                      xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0))


@pytest.fixture(scope="session")
def libngspice(ngspice):
    """libngspice through PySpice (in its helper process); fails in CI where it is missing, like ``ngspice``."""
    try:
        return run_deck(TINY_DECK, SHARED)
    except xb.NgspiceNotFoundError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("libngspice is required in CI but could not be loaded")
        pytest.skip("libngspice not installed (this would fail in CI)")


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


CASES = {
    "3x2": (np.full((3, 2), 1.0 / 20e3), np.array([0.2, 0.01, 0.2]),
            xb.CircuitParams(r_row=5.0, r_col=5.0, r_sense=1e3, r_driver=100.0)),
    "5x4 per-row driver, ideal rows": (
        10 ** np.random.default_rng(5).uniform(-7, -3, (5, 4)),
        np.random.default_rng(6).uniform(-0.5, 0.5, (2, 5)),
        xb.CircuitParams(r_row=0.0, r_col=1.0, r_sense=1e4, r_driver=[0.0, 1.0, 1e2, 1e4, 2.0])),  # spread 6.6e6, inside ngspice's 1e7
    "16x16": (10 ** np.random.default_rng(16).uniform(-6, -4, (16, 16)),
              np.random.default_rng(17).uniform(0, 0.25, 16),
              xb.CircuitParams(r_row=2.5, r_col=2.5, r_sense=100.0, r_driver=50.0)),
}


@pytest.mark.ngspice
@pytest.mark.parametrize("name", sorted(CASES))
def test_shared_matches_subprocess(libngspice, name):
    G, V, c = CASES[name]
    sub = xb.solve(G, V, c, engine="ngspice")
    shr = xb.solve(G, V, c, engine="ngspice", ngspice=SHARED)
    assert shr.engine == "ngspice"
    # The same simulator on the same deck: equal up to the last digits.
    assert rel(shr.i_out, sub.i_out) <= 1e-12
    assert np.abs(shr.v_row - sub.v_row).max() <= 1e-13
    assert np.abs(shr.v_col - sub.v_col).max() <= 1e-13
    assert rel(shr.i_out, xb.simulate(G, V, c)) <= 1e-9


@pytest.mark.ngspice
def test_shared_rejected_deck_carries_ngspice_message(libngspice):
    with pytest.raises(xb.SpiceError, match="Error on line 4") as err:
        run_deck(BROKEN_DECK, SHARED)
    assert "device already exists" in err.value.log
    # The library is left clean: the next run works.
    G, V, c = CASES["3x2"]
    assert rel(xb.simulate(G, V, c, engine="ngspice", ngspice=SHARED), xb.simulate(G, V, c)) <= 1e-9


@pytest.mark.ngspice
def test_shared_timeout_stops_the_run(libngspice):
    deck = slow_deck()
    run_deck(TINY_DECK, SHARED)  # a helper is warm: the limit is the run's own
    t0 = time.monotonic()
    with pytest.raises(xb.SpiceError, match=r"timed out after 0\.5 s"):
        run_deck(deck, NgspiceSettings(backend="shared", timeout_s=0.5))
    # the deck runs about a minute: 10 s tells a stopped run from a finished one on slow or busy CPUs too
    assert time.monotonic() - t0 < 10
    G, V, c = CASES["3x2"]
    assert rel(xb.simulate(G, V, c, engine="ngspice", ngspice=SHARED), xb.simulate(G, V, c)) <= 1e-9


@pytest.mark.ngspice
def test_subprocess_timeout_on_real_ngspice(ngspice):
    deck = slow_deck()
    t0 = time.monotonic()
    with pytest.raises(xb.SpiceError, match=r"timed out after 0\.5 s"):
        run_deck(deck, NgspiceSettings(timeout_s=0.5))
    assert time.monotonic() - t0 < 15


@pytest.mark.ngspice
def test_results_are_read_by_name_not_position(ngspice):
    G, V, c = CASES["3x2"]
    vec = run_deck(xb.netlist(G, V, c))
    assert {"i(vsense0)", "i(vsense1)", "v(a1_1)", "v(b2_0)"} <= set(vec)
    assert vec["v(src1)"][0] == pytest.approx(0.01, abs=1e-15)


def _rawfile(names, values):
    header = ["Title: test", "Plotname: Operating Point", "Flags: real",
              f"No. Variables: {len(names)}", "No. Points: 1", "Variables:"]
    header += [f"\t{k}\t{n}\tvoltage" for k, n in enumerate(names)]
    return ("\n".join(header) + "\nBinary:\n").encode() + np.asarray(values, dtype="<f8").tobytes()


def test_rawfile_reader_uses_names():
    a = read_raw(_rawfile(["v(x)", "I(VSENSE0)", "v(y)"], [1.0, 2.0, 3.0]))
    b = read_raw(_rawfile(["v(y)", "v(x)", "i(vsense0)"], [3.0, 1.0, 2.0]))
    assert a.keys() == b.keys() and all(a[k][0] == b[k][0] for k in a)
    assert a["i(vsense0)"][0] == 2.0


def test_rawfile_reader_rejects_bad_files():
    with pytest.raises(xb.SpiceError, match="no binary section"):
        read_raw(b"Title: x\nNo. Variables: 1\n")
    with pytest.raises(xb.SpiceError, match="truncated"):
        read_raw(_rawfile(["v(x)", "v(y)"], [1.0]))
    with pytest.raises(xb.SpiceError, match="malformed"):
        read_raw(_rawfile(["v(x)"], [1.0]).replace(b"No. Variables: 1", b"No. Variables: 2"))


@pytest.mark.parametrize("points", [b"-1", b"0", b"x", b"1e0"])
def test_rawfile_reader_refuses_counts_that_are_not_positive_integers(points):
    # "-1" read the first n_points * n_vars = -2 values from the end: two points of a one-point file
    data = _rawfile(["v(x)", "v(y)"], [1.0, 2.0, 3.0, 4.0]).replace(b"No. Points: 1", b"No. Points: " + points)
    with pytest.raises(xb.SpiceError, match="count"):
        read_raw(data)


def test_rawfile_reader_refuses_a_name_given_twice():
    with pytest.raises(xb.SpiceError, match="malformed"):  # was the second value under the one name
        read_raw(_rawfile(["v(x)", "V(X)"], [1.0, 2.0]))


@pytest.mark.ngspice
def test_a_relative_executable_path_is_found_from_the_callers_folder(ngspice, tmp_path, monkeypatch):
    # ngspice runs with its temporary folder as working folder: the relative path found by shutil.which
    # was looked up there, and the run failed with "ngspice was not found"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ngspice").symlink_to(ngspice)
    monkeypatch.chdir(tmp_path)
    vec = run_deck("* x\nv1 a 0 dc 1e0\nr1 a 0 1e3\n.op\n.end\n", NgspiceSettings(executable="bin/ngspice"))
    assert vec["i(v1)"][0] == pytest.approx(-1e-3, rel=1e-12)


@pytest.mark.parametrize("settings", ["shared", {"backend": "shared"}, 120.0])
def test_settings_that_are_not_ngspice_settings_raise_value_error(settings):
    # was AttributeError: 'str' object has no attribute 'backend'
    with pytest.raises(ValueError, match="NgspiceSettings"):
        xb.simulate(np.full((2, 2), 1e-5), np.ones(2), xb.CircuitParams(r_row=1.0, r_col=1.0), engine="ngspice",
                    ngspice=settings)
