"""The converters' own arithmetic in one crossbar inference: two floors below the kernels' time.

``bench_dnn.tile_product_floor`` leaves the DAC, the DAC load and the ADC out
altogether, as if they were free. They are not: the FCM's fused kernels do
one IEEE division per DAC code (the input over its full scale) and per row
voltage (ROWSUM: c / (alpha - c)), and one rounding and clip per ADC sample,
then the weighted sum over the tiles.

``converter_floor`` (the kernels, warm) records every call of these kernels
in one inference and runs each call again, right after the real one, on
private copies of its arguments, twice: the second run, whose arrays the
first has just brought into the caches (as far as they fit), is the time
taken. Layout changes and Python are left out. The warm runs still carry
memory traffic of their own: arrays beyond the L2 cache stream from the
outer caches, and the DAC codes are written out as a matrix that an
implementation fused with the products need not write. It is the floor of
an implementation with these kernels' data movement.

``bare_floor`` (the bare operations) takes that away: it counts the elements
each converter call works on (``OPS``: one operation per DAC input, ROWSUM
row voltage and ADC sample) and charges each at the cost per element of
that operation alone, in a loop over data that stays in the L1 cache
(``op_costs``, the fastest of several runs, in the arrays' dtype, numba with
the kernels' settings). The channel-max pass of the per-vector DAC scale
and the accumulation's extra reads are not charged. It is the floor of any
implementation that keeps these IEEE operations, fused with the products or
not, to the extent that a plain compiled loop reaches the CPU's vector
throughput (on the AVX-512 development host the loops ran at the same speed
with 512-bit as with 256-bit vectors; the division at the divider's rate).

Issue 12's goal, crossbar <= 1.3 x floor, leaves 0.3 x floor for everything
beyond the products. Where the warm kernels alone take more, the goal needs
other data movement (the converters fused with the products); where the
bare operations alone take more, it needs cheaper converter arithmetic. The
kernels are bitwise the array code's (``xbarlab.fcm.cpu_kernels``); a
cheaper form would change the DAC voltages and ADC codes in the last bit.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import time

import numba
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


#: the operation of each converter kernel, the number of elements a call applies it to and their array,
#: from the call's arguments by name (``channel_max``, a pass of the per-vector scale, is not charged)
OPS = {"dac_codes": lambda a: ("code signed" if a["signed"] else "code", a["XT"].size, a["XT"]),
       "dac_codes_conv": lambda a: ("code signed" if a["signed"] else "code",
                                    a["codes"].shape[0] * a["scale"].shape[0], a["codes"]),
       "dac_rowsum": lambda a: ("rowsum", a["V"].size, a["V"]),
       "adc_accumulate": lambda a: ("adc", a["I"].size, a["I"]),
       "diff_accumulate": lambda a: ("diff" if a["quantize"] else "diff sum", a["I"].size // a["I"].shape[1], a["I"])}

_jit = numba.njit(nogil=True, boundscheck=False, error_model="numpy")  # the kernels' settings (no fastmath)


@_jit
def _code(x, s, full, out, neg, signed, reps):
    zero = full - full
    for _ in range(reps):
        if signed:
            for i in range(x.shape[0]):
                xf = x[i] / s[i]
                out[i] = min(max(np.rint(xf * full), zero), full)
                neg[i] = min(max(np.rint(-xf * full), zero), full)
        else:
            for i in range(x.shape[0]):
                out[i] = min(max(np.rint(x[i] / s[i] * full), zero), full)


@_jit
def _rowsum(a, c, out, reps):
    for _ in range(reps):
        for i in range(c.shape[0]):
            out[i] = c[i] / (a - c[i])


@_jit
def _adc(x, y, w, full, out, mode, reps):
    """mode 0: ADC (round, clip to [0, full], weighted sum); 1: ADC of x - y; 2: x - y weighted, no ADC."""
    zero = full - full
    for _ in range(reps):
        if mode == 0:
            for i in range(x.shape[0]):
                out[i] += w * min(max(np.rint(x[i]), zero), full)
        elif mode == 1:
            for i in range(x.shape[0]):
                out[i] += w * min(max(np.rint(x[i] - y[i]), -full), full)
        else:
            for i in range(x.shape[0]):
                out[i] += w * (x[i] - y[i])


#: elements per array of ``op_costs``' loops (up to four arrays of float64: 32 KiB, within an L1 data cache of 32-48 KiB)
L1_ELEMENTS = 1024


@functools.cache
def op_costs(dtype_name: str, reps: int = 400, runs: int = 7) -> dict:
    """Seconds per element of each operation of ``OPS`` alone, on L1-resident arrays of ``dtype_name``:
    the fastest of ``runs`` runs of ``reps`` passes (compiled first)."""
    dt = np.dtype(dtype_name)
    rng = np.random.default_rng(0)
    n = L1_ELEMENTS
    x, y = (rng.random(n) * 60).astype(dt), (rng.random(n) * 60).astype(dt)
    s, out, neg = (rng.random(n) + 1).astype(dt), np.zeros(n, dt), np.zeros(n, dt)
    full, w, a = dt.type(63), dt.type(0.5), dt.type(70)
    calls = {"code": lambda r: _code(x, s, full, out, neg, False, r),
             "code signed": lambda r: _code(x, s, full, out, neg, True, r),
             "rowsum": lambda r: _rowsum(a, x, out, r),
             "adc": lambda r: _adc(x, y, w, full, out, 0, r),
             "diff": lambda r: _adc(x, y, w, full, out, 1, r),
             "diff sum": lambda r: _adc(x, y, w, full, out, 2, r)}
    costs = {}
    for op, f in calls.items():
        f(1)
        best = min(_timed(f, reps) for _ in range(runs))
        costs[op] = best / (reps * n)
    return costs


def _timed(f, reps: int) -> float:
    t = time.perf_counter()
    f(reps)
    return time.perf_counter() - t


def bare_floor(xm, x) -> dict | None:
    """Seconds of one inference xm(x) in each converter phase (``CONVERTERS``) charged at the bare
    operations' cost (``OPS`` counts x ``op_costs``), plus "total". None unless the fused CPU kernels
    run (CPU, numba)."""
    if x.device.type != "cpu" or not cpu_kernels.enabled():
        return None
    kern = cpu_kernels.kernels()
    charged = {name: 0.0 for name in OPS}

    def make(name, f):
        sig = inspect.signature(f.py_func)

        def g(*args, **kwargs):
            a = sig.bind(*args, **kwargs).arguments
            op, n, arr = OPS[name](a)
            charged[name] += n * op_costs(arr.dtype.name)[op]
            return f(*args, **kwargs)
        return g

    with wrapped([(kern, n) for n in charged], make), torch.no_grad():
        xm(x)
    out = {phase: sum(charged.get(n, 0.0) for n in names) for phase, names in CONVERTERS.items()}
    out["total"] = sum(out.values())
    return out
