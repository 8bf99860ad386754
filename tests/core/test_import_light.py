import subprocess
import sys


def test_import_xbarlab_is_light():
    code = ("import sys, xbarlab; "
            "print(' '.join(m for m in ('torch', 'matplotlib', 'pandas', 'PySpice', 'numba', 'xbarlab.verify') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""
