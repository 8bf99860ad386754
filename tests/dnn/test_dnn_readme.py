"""The README's DNN worked example runs as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def test_readme_dnn_example_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    section = text.split("## DNN evaluation", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    r = subprocess.run([sys.executable, "-c", "import torch; torch.set_num_threads(1)\n" + code], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    m = re.search(r"FP32 ([0-9.]+)  crossbar ([0-9.]+)", r.stdout)
    assert m and float(m.group(1)) > 0.85 and 0 <= float(m.group(2)) <= 1
    assert (tmp_path / "my_net.pt2").exists()
    cli = subprocess.run([sys.executable, "-m", "xbarlab.cli", "dnn-eval", "my_net.pt2", "--xbar", "64",
                          "--variation", "0.1", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr
    assert '"accuracy_crossbar"' in cli.stdout
