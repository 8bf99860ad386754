"""xbarlab's CLI finds its subcommands through the ``xbarlab.subcommands`` entry points; the core names no app."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from xbarlab import cli

ROOT = Path(__file__).resolve().parents[2]
APPS = {"validate": "xbarlab.validation_report", "dnn-eval": "dnn_eval.cli", "characterize": "characterization.cli"}

PLUGIN = '''
"""A stand-in app for the CLI tests."""
HELP = "say hello"


def add_arguments(p):
    p.add_argument("--who", default="world")


def run(args):
    print(f"hello {args.who}")
    return 3
'''


def _ep(name, value, dist="other-app"):
    return SimpleNamespace(name=name, value=value, dist=SimpleNamespace(name=dist))


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A module ``xbl_hello_plugin`` on sys.path, and a folder with no pyproject.toml (an installed wheel)."""
    (tmp_path / "xbl_hello_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    wheel = tmp_path / "site"
    wheel.mkdir()
    yield wheel
    sys.modules.pop("xbl_hello_plugin", None)


def test_pyproject_registers_every_subcommand_and_each_module_has_the_interface():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][cli.GROUP] == APPS
    for module in APPS.values():
        m = importlib.import_module(module)
        assert isinstance(m.HELP, str) and "\n" not in m.HELP
        assert callable(m.add_arguments) and callable(m.run)
    assert cli.discover() == dict(sorted(APPS.items()))


def test_the_core_cli_names_no_app():
    src = (ROOT / "xbarlab" / "cli.py").read_text()
    assert not re.search(r"dnn_eval|characteriz|validation_report|dnn-eval", src)


def test_entry_points_of_installed_packages_are_discovered(plugin, monkeypatch, capsys):
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [_ep("hello", "xbl_hello_plugin")] if group == cli.GROUP else [])
    monkeypatch.setattr(cli, "discover", lambda root=None, real=cli.discover: real(plugin))
    assert cli.discover() == {"hello": "xbl_hello_plugin"}
    assert cli.main(["hello", "--who", "crossbar"]) == 3
    assert capsys.readouterr().out == "hello crossbar\n"
    assert cli.main(["--help"]) == 0
    assert "say hello" in capsys.readouterr().out


def test_a_source_checkout_speaks_for_its_own_subcommands(plugin, monkeypatch):
    """Stale installed metadata of xbarlab itself is ignored where the checkout's pyproject.toml is read;
    other packages' subcommands are kept."""
    eps = [_ep("old-name", "xbarlab.gone", dist="xbarlab"), _ep("hello", "xbl_hello_plugin")]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: eps if group == cli.GROUP else [])
    assert cli.discover(ROOT) == dict(sorted({**APPS, "hello": "xbl_hello_plugin"}.items()))
    assert cli.discover(plugin) == {"old-name": "xbarlab.gone", "hello": "xbl_hello_plugin"}
    other = plugin / "other"
    other.mkdir()
    (other / "pyproject.toml").write_text('[project]\nname = "not-xbarlab"\n')
    assert cli.discover(other) == {"old-name": "xbarlab.gone", "hello": "xbl_hello_plugin"}


def test_a_broken_subcommand_fails_in_one_line_and_leaves_the_others(plugin, monkeypatch, capsys):
    parser = cli.build_parser({"broken": "xbl_no_such_module", "hello": "xbl_hello_plugin"})
    assert "unavailable" in parser.format_help() and "say hello" in parser.format_help()
    monkeypatch.setattr(cli, "discover", lambda: {"broken": "xbl_no_such_module", "hello": "xbl_hello_plugin"})
    assert cli.main(["hello"]) == 3
    capsys.readouterr()
    assert cli.main(["broken", "--anything"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "xbl_no_such_module" in err[0] and "ModuleNotFoundError" in err[0]


def test_no_registered_subcommand_is_one_line_with_the_fix(monkeypatch, capsys):
    monkeypatch.setattr(cli, "discover", lambda: {})
    assert cli.main(["validate"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install -e ." in err[0]


def test_help_from_outside_the_checkout_lists_every_app(tmp_path):
    out = subprocess.run([sys.executable, "-m", "xbarlab.cli", "--help"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    for name in APPS:
        assert name in out.stdout


PRINTER = '''
import sys, types
from xbarlab import cli

app = types.ModuleType("xbl_printer")
app.HELP = "print lines, or break a pipe of its own"
app.add_arguments = lambda p: p.add_argument("--own-pipe", action="store_true")


def run(args):
    if args.own_pipe:  # a pipe of the subcommand's, not stdout
        raise BrokenPipeError(32, "Broken pipe (to a helper)")
    for k in range(20000):
        print(f"line {k}")
    return 0


app.run = run
sys.modules[app.__name__] = app
cli.discover = lambda root=None: {"print": app.__name__}
sys.exit(cli.main(sys.argv[1:]))
'''


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _closed_stdout(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``argv`` with its stdout a pipe closed at once (``| head -0``): (status, stderr)."""
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    p.stdout.close()
    err = p.stderr.read()
    return p.wait(timeout=120), err


@pytest.mark.parametrize("argv", [["-c", PRINTER, "print"], ["-m", "xbarlab.cli", "characterize", "index"]],
                         ids=["20000-lines", "characterize"])
def test_a_closed_stdout_ends_the_command_quietly(argv, tmp_path):
    """``xbarlab ... | head -1`` printed "xbarlab: error: BrokenPipeError" (or Python's "Exception ignored"
    at exit) and exited 1: a closed stdout now ends it quietly, status 141, as Unix tools do."""
    out = ["--out", str(tmp_path / "out")] if "characterize" in argv else []
    rc, err = _closed_stdout([sys.executable, *argv, *out], tmp_path)
    assert (rc, err) == (141, "")


def test_a_broken_pipe_that_is_not_stdout_is_still_an_error(tmp_path):
    r = subprocess.run([sys.executable, "-c", PRINTER, "print", "--own-pipe"], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path, env=_env())
    assert r.returncode == 1 and r.stderr.strip().splitlines() == [
        "xbarlab: error: BrokenPipeError: [Errno 32] Broken pipe (to a helper)"]
