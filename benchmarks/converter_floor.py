"""The converters' own arithmetic in one crossbar inference: a floor below the kernels' time.

``bench_dnn.tile_product_floor`` leaves the DAC, the DAC load and the ADC out
altogether, as if they were free. They are not: the FCM's fused kernels do
one IEEE division per DAC code (the input over its full scale) and per row
voltage (ROWSUM: c / (alpha - c)), and one rounding and clip per ADC sample,
then the weighted sum over the tiles. ``converter_floor`` records every call
of these kernels in one inference and runs each call again, right after the
real one, on private copies of its arguments, twice: the second run, whose
arrays the first has just brought into the caches (as far as they fit), is
the time taken. It is the kernels' arithmetic with no memory traffic beyond
their own arrays: the time any implementation that does the same per-element
operations would still need, fused into the matrix products or not. Layout
changes and Python are left out (a fused implementation could avoid them).

Issue 12's goal, crossbar <= 1.3 x floor, leaves 0.3 x floor for everything
beyond the products; where this converter time alone is larger, no better
data movement can reach the goal, only cheaper converter arithmetic. The
kernels are bitwise the array code's (``xbarlab.fcm.cpu_kernels``); a
cheaper form would change the DAC voltages and ADC codes in the last bit.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from xbarlab.fcm import cpu_kernels

#: the converter kernels of each phase (``bench_dnn.PHASES``' names); layout kernels are not here
CONVERTERS = {"DAC codes": ("dac_codes", "dac_codes_conv", "channel_max"),
              "DAC load (ROWSUM voltages)": ("dac_rowsum",),
              "ADC + accumulation": ("adc_accumulate", "diff_accumulate")}


@contextlib.contextmanager
def wrapped(targets, make):
    """Replace each attribute (owner, name) of ``targets`` by ``make(name, original)`` for the block,
    and put the originals back afterwards, also on an error."""
    saved = [(owner, name, getattr(owner, name)) for owner, name in targets]
    try:
        for owner, name, f in saved:
            setattr(owner, name, make(name, f))
        yield
    finally:
        for owner, name, f in saved:
            setattr(owner, name, f)


def _copy(a):
    return a.copy() if isinstance(a, np.ndarray) else a


def converter_floor(xm, x, reps: int = 1) -> dict | None:
    """Seconds per inference of xm(x) in each converter phase (``CONVERTERS``), every kernel call
    re-timed warm on copies of its arguments (see the module docstring), the mean over ``reps``
    inferences, plus "total". None unless the fused CPU kernels run (CPU, numba)."""
    if x.device.type != "cpu" or not cpu_kernels.enabled():
        return None
    kern = cpu_kernels.kernels()
    spent = {name: 0.0 for names in CONVERTERS.values() for name in names}

    def make(name, f):
        def g(*args, **kwargs):
            out = f(*args, **kwargs)  # the real call, on the inference's own arrays
            own, own_kw = [_copy(a) for a in args], {k: _copy(v) for k, v in kwargs.items()}
            f(*own, **own_kw)  # brings the copies into the caches
            t = time.perf_counter()
            f(*own, **own_kw)
            spent[name] += time.perf_counter() - t
            return out
        return g

    with wrapped([(kern, n) for n in spent], make), torch.no_grad():
        for _ in range(reps):
            xm(x)
    out = {phase: sum(spent[n] for n in names) / reps for phase, names in CONVERTERS.items()}
    out["total"] = sum(out.values())
    return out
