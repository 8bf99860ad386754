"""Print the end-to-end FCM tests' example counts and largest deviations in pytest's summary."""

from __future__ import annotations

import sys


def pytest_terminal_summary(terminalreporter):
    mod = sys.modules.get("test_fcm_matmul_spice") or sys.modules.get("tests.fcm.test_fcm_matmul_spice")
    stats = getattr(mod, "STATS", None)
    if not stats:
        return
    terminalreporter.write_sep("-", "FCM.matmul vs ngspice: examples and largest deviation per bound")
    for line in mod.stats_lines():
        terminalreporter.write_line(line)
