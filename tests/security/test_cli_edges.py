"""CLI edge cases: every bad option value fails at once with one line naming the option.

Each case runs ``python -m xbarlab.cli`` in a subprocess and asserts a
non-zero exit, exactly one line on stderr, no traceback. The ``dnn-eval``
cases run with a stand-in ``torch`` (and ``sklearn``) that raises on import,
so a check that happens only after torch or the data set loads fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import xbarlab as xb

ROOT = Path(__file__).resolve().parents[2]
HEAVY = "HEAVY_IMPORT_BEFORE_OPTION_CHECK"


@pytest.fixture(scope="module")
def no_heavy(tmp_path_factory) -> str:
    """A folder whose torch and sklearn raise on import: put first on PYTHONPATH."""
    d = tmp_path_factory.mktemp("no_heavy")
    for name in ("torch", "sklearn"):
        (d / name).mkdir()
        (d / name / "__init__.py").write_text(f"raise ImportError('{HEAVY}: {name}')\n")
    return str(d)


@pytest.fixture
def marker_ngspice(tmp_path):
    """(env, marker): an ngspice stand-in that leaves ``marker`` behind when anything runs it."""
    marker = tmp_path / "ngspice-ran"
    exe = tmp_path / "fake-ngspice"
    exe.write_text(f"#!/bin/sh\ntouch '{marker}'\necho 'Error: stand-in' >&2\nexit 1\n")
    exe.chmod(0o755)
    return {"XBARLAB_NGSPICE": str(exe)}, marker


@pytest.fixture
def readonly_dir(tmp_path):
    """An existing folder this user cannot write (chmod, or chattr +i where root ignores modes)."""
    d = tmp_path / "readonly"
    d.mkdir()
    d.chmod(0o555)
    immutable = False
    if os.access(d, os.W_OK):
        if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0:
            immutable = True
        else:
            d.chmod(0o755)
            pytest.skip("cannot make a read-only folder as this user")
    yield d
    if immutable:
        subprocess.run(["chattr", "-i", str(d)], check=True)
    d.chmod(0o755)


def cli(args, extra_path: str | None = None, env_extra=None, timeout=120):
    path = os.pathsep.join(p for p in (extra_path, str(ROOT)) if p)
    env = {**os.environ, "PYTHONPATH": path, **(env_extra or {})}
    env.pop("XBARLAB_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "xbarlab.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc, *needles):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0, proc.stdout[-500:]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and HEAVY not in proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args, option", [
    (["validate", "--vectors", "0"], "--vectors"),
    (["validate", "--vectors", "-1"], "--vectors"),
    (["validate", "--vectors", "100000000"], "--vectors"),  # would allocate 100 million input vectors
    (["validate", "--seed", "-1"], "--seed"),
    (["characterize", "fig3a_dac", "--workers", "0"], "--workers"),
])
def test_bad_count_is_one_line_naming_the_option(args, option, marker_ngspice):
    env, marker = marker_ngspice
    assert_one_line_error(cli(args, env_extra=env), option)
    assert not marker.exists()


@pytest.mark.parametrize("args, option", [
    (["--threads", "100000"], "--threads"),  # segfaulted inside torch
    (["--preset", "nosuch"], "--preset"),  # took 15 s of torch and data loading to fail
    (["--xbar", "1000000"], "--xbar"),
    (["--seed", "-1"], "--seed"),
    (["--dataset", "mnist", "--data-dir", "/nonexistent/xbarlab"], "--data-dir"),
    (["--vg", "1.0"], "--vg needs --cell 1t1r"),
])
def test_dnn_eval_options_fail_before_torch(args, option, no_heavy):
    assert_one_line_error(cli(["dnn-eval", "mlp", *args], extra_path=no_heavy), option)


def test_dnn_eval_warns_that_data_dir_is_ignored_with_digits(no_heavy, tmp_path):
    proc = cli(["dnn-eval", "mlp", "--dataset", "digits", "--data-dir", str(tmp_path)], extra_path=no_heavy)
    lines = proc.stderr.strip().splitlines()
    assert lines and "warning" in lines[0] and "--data-dir" in lines[0] and "digits" in lines[0]
    assert "Traceback" not in proc.stderr


def test_out_under_a_file_is_refused_first(tmp_path, marker_ngspice):
    env, marker = marker_ngspice
    (tmp_path / "file").write_text("x")
    line = assert_one_line_error(cli(["validate", "--out", str(tmp_path / "file" / "reports")], env_extra=env), "--out")
    assert "file" in line
    assert not marker.exists()


def test_empty_out_and_bad_preset_refused_before_any_folder_is_made(tmp_path, marker_ngspice):
    env, marker = marker_ngspice
    assert_one_line_error(cli(["validate", "--out", ""], env_extra=env), "--out must name a folder")
    out = tmp_path / "new"
    assert_one_line_error(cli(["characterize", "fig3a_dac", "--quick", "--preset", "nosuch", "--out", str(out)],
                              env_extra=env), "preset")
    assert not out.exists() and not marker.exists()


@pytest.mark.parametrize("cmd", [["validate"], ["characterize", "fig3a_dac", "--quick", "--no-progress"]])
def test_read_only_out_is_refused_before_computing(cmd, readonly_dir, marker_ngspice):
    env, marker = marker_ngspice
    assert_one_line_error(cli([*cmd, "--out", str(readonly_dir)], env_extra=env), "--out", str(readonly_dir))
    assert not marker.exists()  # validate used to solve, run ngspice, and only then fail to write


def test_load_preset_rejects_zero_sizes():
    for kw, field in (({"rows": 0}, "rows"), ({"cols": 0}, "cols"), ({"rows": 4, "cols": 0}, "cols"),
                      ({"rows": -3}, "rows"), ({"rows": 2.5}, "rows")):
        with pytest.raises(ValueError, match=field):
            xb.load_preset("spintronic", **kw)
    assert (xb.load_preset("spintronic", rows=8).cols, xb.load_preset("spintronic", cols=8).rows) == (8, 64)


def test_dac_bits_capped_like_the_adc():
    for cls in (xb.DACParams, xb.ADCParams):
        with pytest.raises(ValueError, match="bits must be <= 32"):
            cls(bits=33)
        assert cls(bits=32).bits == 32


@pytest.mark.parametrize("value", [True, "2.5", 1 + 0j])
def test_parameters_reject_non_real_numbers(value):
    with pytest.raises(ValueError, match="r_row"):
        xb.CircuitParams(r_row=value)
    with pytest.raises(ValueError, match="v_read"):
        xb.DACParams(v_read=value)


@pytest.mark.parametrize("args, option", [(["--threads", "100000"], "--threads"), (["--preset", "nosuch"], "--preset"),
                                          (["--out", "/dev/null/reports"], "--out")])
def test_experiment_scripts_bound_their_options(args, option, capsys):
    from dnn_eval.experiments.common import parse

    with pytest.raises(SystemExit) as ex:
        parse("doc", args)
    assert ex.value.code == 2 and option in capsys.readouterr().err.strip().splitlines()[-1]
