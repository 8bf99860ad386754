"""Print the layer-level ngspice tests' example counts and largest deviations in pytest's summary."""

from __future__ import annotations

import sys


def pytest_terminal_summary(terminalreporter):
    mod = sys.modules.get("test_layers_spice") or sys.modules.get("tests.dnn.test_layers_spice")
    if mod is None or not getattr(mod, "STATS", None):
        return
    terminalreporter.write_sep("-", "dnn_eval layers vs ngspice: examples and largest deviation per bound")
    for line in mod.stats_lines():
        terminalreporter.write_line(line)
