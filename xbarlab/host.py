"""Which machine a measurement ran on: the CPU's model name, for the headers of speed reports.

Speed ratios in this project depend on the CPU, not only on the code: the same
commit's crossbar / floor ratio differs between an AMD EPYC (Zen 4) and an Intel
Xeon host by far more than the noise of either (``reports/bench_dnn.md``, its
table of runs). ``platform.processor()`` is empty on most Linux systems, so the
name is read from ``/proc/cpuinfo`` where there is one.
"""

from __future__ import annotations

import platform
from pathlib import Path

#: where Linux lists its CPUs
CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The CPU's model name ("AMD EPYC 9R14 96-Core Processor"): the first ``model name`` line of
    ``cpuinfo`` (Linux), else ``platform.processor()``, else the architecture (``platform.machine()``),
    else "unknown". Never raises."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name" and value.strip():
                return " ".join(value.split())[:200]
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
