"""Convert badcrossbar's QUCS-simulated test circuits into one .npz (run once, by hand).

    python netlists/badcrossbar/convert.py /path/to/badcrossbar/git-dir [COMMIT]

Reads ``tests/qucs/*.pickle`` at COMMIT (default HEAD) with ``git show`` and
writes ``netlists/badcrossbar/qucs.npz``. Each pickle is a tuple of numpy
arrays and numbers; it is read with a restricted unpickler that resolves only
the numpy names an ndarray or a numpy scalar needs and refuses every other
global, so a hostile pickle cannot run code. Tests read the .npz with
``allow_pickle=False``; nothing is unpickled at test time.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np

FIELDS = ("resistances", "applied_voltages", "r_i_word_line", "r_i_bit_line",
          "i_output", "i_device", "i_word_line", "i_bit_line", "v_word_line", "v_bit_line")
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, numpy scalars and plain Python values; any other global raises."""

    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def load(data: bytes) -> tuple:
    obj = NumpyOnlyUnpickler(io.BytesIO(data)).load()
    if not isinstance(obj, tuple) or len(obj) != len(FIELDS):
        raise ValueError(f"expected a tuple of {len(FIELDS)} values, got {type(obj).__name__}")
    return obj


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    git_dir, commit = argv[0], (argv[1] if len(argv) > 1 else "HEAD")
    sha = subprocess.run(["git", "--git-dir", git_dir, "rev-parse", commit], check=True,
                         capture_output=True, text=True).stdout.strip()
    names = subprocess.run(["git", "--git-dir", git_dir, "ls-tree", "--name-only", sha, "tests/qucs/"],
                           check=True, capture_output=True, text=True).stdout.split()
    arrays = {"source_commit": np.array(sha)}
    cases = []
    for path in sorted(p for p in names if p.endswith(".pickle")):
        case = Path(path).stem
        data = subprocess.run(["git", "--git-dir", git_dir, "show", f"{sha}:{path}"], check=True,
                              capture_output=True).stdout
        for field, value in zip(FIELDS, load(data)):
            arrays[f"{case}__{field}"] = np.asarray(value, dtype=float)
        cases.append(case)
    arrays["cases"] = np.array(cases)
    out = Path(__file__).with_name("qucs.npz")
    np.savez_compressed(out, **arrays)
    print(f"{len(cases)} circuits from {sha} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
