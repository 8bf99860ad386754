"""Print the FCM tests' example counts, largest deviations and code-boundary cases in pytest's summary."""

from __future__ import annotations

import sys

#: the modules whose STATS are printed, with the heading of each
_MODULES = (("test_fcm_matmul_spice", "FCM.matmul vs ngspice: examples and largest deviation per bound"),
            ("test_fcm_plans", "FCM plans vs the reference: codes that differ, and rounding-boundary cases"),
            ("test_sensing", "sensing schemes: examples, and ADC codes near a rounding boundary (counted)"))


def pytest_terminal_summary(terminalreporter):
    for name, heading in _MODULES:
        mod = sys.modules.get(name) or sys.modules.get(f"tests.fcm.{name}")
        stats = getattr(mod, "STATS", None)
        if not stats:
            continue
        terminalreporter.write_sep("-", heading)
        for line in mod.stats_lines():
            terminalreporter.write_line(line)
