"""``xbarlab dnn-eval --sensing``: the scheme reaches the FCM options and the JSON; a wrong pairing is one line."""

from __future__ import annotations

import json
import pytest

pytest.importorskip("torch")

from xbarlab.cli import main  # noqa: E402


@pytest.mark.parametrize("argv, scheme", [([], "separate"), (["--sensing", "differential"], "differential"),
                                          (["--sensing", "reference", "--mapping", "offset"], "reference")])
def test_dnn_eval_sensing_in_json(capsys, argv, scheme):
    assert main(["dnn-eval", "mlp", "--xbar", "32", "--limit", "20", *argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["sensing"] == scheme
    assert out["config"]["fcm_options"]["sensing"] == scheme.upper()


def test_dnn_eval_sensing_needs_its_mapping_one_line(capsys):
    assert main(["dnn-eval", "mlp", "--sensing", "reference"]) != 0
    err = capsys.readouterr().err
    assert "needs mapping='offset'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
