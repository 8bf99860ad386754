"""The private folders that child processes (ngspice runs, libngspice helpers) work in.

Each ngspice run (``engines.ngspice``) and libngspice helper
(``engines.ngspice_shared``) works in a private temporary folder named
after the process that made it (``run_folder_prefix``), so that whoever
kills that process (a sweep stopping its workers) removes its folders too
(``remove_run_folders``), even where the ngspice it started is gone already.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

#: the private temporary folders of ngspice runs and of libngspice helpers
RUN_FOLDERS = ("xbarlab-ngspice-", "xbarlab-libngspice-")


def run_folder_prefix(kind: str) -> str:
    """The ``tempfile`` prefix of a private folder of this process: ``kind`` (one of ``RUN_FOLDERS``), the pid."""
    if kind not in RUN_FOLDERS:
        raise ValueError(f"kind must be one of {RUN_FOLDERS}, got {kind!r}")
    return f"{kind}{os.getpid()}-"


def remove_run_folders(pids) -> None:
    """Remove the private run folders that the (killed) processes ``pids`` made in the temporary folder."""
    tmp = Path(tempfile.gettempdir())
    for pid in pids:
        for kind in RUN_FOLDERS:
            for d in tmp.glob(f"{kind}{int(pid)}-*"):
                shutil.rmtree(d, ignore_errors=True)
