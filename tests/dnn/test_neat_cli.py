"""``xbarlab dnn-eval --cell {1r,1t1r} --vg V``: the spec the flags make, the JSON fields, one-line errors.
No network is evaluated here (the end-to-end run takes ~20 s: ``xbarlab dnn-eval lenet --cell 1t1r --vg 0.9 --json``)."""

from __future__ import annotations

import argparse

import pytest

from dnn_eval import cli
from xbarlab.cli import main


def args_of(*argv):
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p.parse_args(["lenet", *argv])


def test_cell_flags_make_the_1t1r_spec():
    spec, _ = cli.hardware(args_of("--cell", "1t1r", "--vg", "0.9"))
    assert spec.device.access is not None and spec.device.access.v_gate_v == 0.9
    spec1, _ = cli.hardware(args_of("--cell", "1t1r"))
    assert spec1.device.access.v_gate_v == 1.0  # the documented default
    plain, _ = cli.hardware(args_of())
    assert plain.device.access is None
    assert spec.replace(device=plain.device) == plain  # only the cell differs


def test_config_states_cell_and_gate_voltage():
    class LM:
        kind, arch = "bundled", "lenet"

    a = args_of("--cell", "1t1r", "--vg", "0.8")
    spec, _ = cli.hardware(a)
    c = cli.config_of(a, LM, spec, {})
    assert c["cell"] == "1t1r" and c["v_gate_v"] == 0.8 and c["spec"]["device"]["access"]["v_gate_v"] == 0.8
    a = args_of()
    c = cli.config_of(a, LM, cli.hardware(a)[0], {})
    assert c["cell"] == "1r" and c["v_gate_v"] is None


@pytest.mark.parametrize("argv,msg", [(["--vg", "0.9"], "--vg needs --cell 1t1r"),
                                      (["--cell", "1t1r", "--vg", "7"], "V_G must be in"),
                                      (["--cell", "2t2r"], "invalid choice")])
def test_bad_cell_flags_are_one_line_errors(capsys, argv, msg):
    try:
        rc = main(["dnn-eval", "lenet", "--limit", "1", *argv])
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    err = capsys.readouterr().err
    assert rc != 0 and msg in err and "Traceback" not in err
