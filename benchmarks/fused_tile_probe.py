"""A probe of issue 12's fused design: DAC load, tile product and ADC in one compiled loop, against the passes.

    python benchmarks/fused_tile_probe.py [--reps 7] [--vectors 8192]

One layer of the ResNet-18 shape's first stage (K = 576 rows in 9 row tiles, 64 columns, the
differential pair: 18 tiles of 64 x 64, float32, 6-bit codes), on random data, two ways:

* ``passes``: what ``RowsumPlan.evaluate`` does on CPU, per chunk of 682 input vectors (what
  ``CrossbarLayer.chunk_rows`` gives this layer): ``cpu_kernels.dac_rowsum`` writes the row
  voltages of all 18 tiles, one batched ``torch.matmul`` the column currents, and
  ``cpu_kernels.adc_accumulate`` the ADC and the weighted sum over the tiles;
* ``fused``: per chunk of 682 vectors as well (``fused_chunks``), one numba loop per block of
  ``RB`` input vectors and tile: the row voltages into a 64 x RB buffer, ``sgemm`` on it (called
  from the loop through its address: scipy's OpenBLAS, and torch's MKL where libtorch_cpu
  exports ``sgemm_``), then the ADC of the 64 x RB currents straight into y. Every array the
  loop touches stays in L1/L2. The ``unchunked`` row runs the loop on the whole code array at
  once, whose rows then lie 4 R bytes apart (32 KiB for R = 8192: every row maps to the same
  cache sets).

Both give the same y (checked; on the host it was written on, bitwise: the count of outputs that
differ is printed, and a difference beyond one ADC code step raises). Times are the median of
``--reps`` interleaved runs, with one BLAS thread; ``passes / this`` > 1 means fusing pays.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import time

import numpy as np
import torch
from numba import njit
from numba.extending import get_cython_function_address
from threadpoolctl import threadpool_limits

from dnn_eval.layers import CHUNK_BYTES, MIN_CHUNK_ROWS
from xbarlab.cli_args import int_in
from xbarlab.engines.gth_blas import _call, _ptr
from xbarlab.fcm import cpu_kernels

S, T, M, NC = 2, 9, 64, 64  # arrays of the pair, row tiles, tile rows, tile columns
#: input vectors per chunk in the layer, as ``CrossbarLayer.chunk_rows`` takes them (682)
CHUNK = max(MIN_CHUNK_ROWS, CHUNK_BYTES // (S * T * max(M, NC) * np.dtype(np.float32).itemsize))


@njit(nogil=True)
def fused(fn, alpha, ct, G, w, full, y, RB, c, n, x):
    """y (NC, R) = sum_k w[k] clip(rint(G[k] @ V_k)), V_k = c / (alpha[k] - c), c the codes of tile k's
    rows; alpha (S*T, M), ct (T, M, R), G (S*T, NC, M); RB input vectors at a time. c, n, x: sgemm's
    by-reference arguments ('N', 'N'; M, N, K, lda, ldb, ldc as int32; alpha, beta as float32), held
    by the caller past the calls; n[0] is rewritten per block."""
    ST, nc, m = G.shape
    R = ct.shape[2]
    V = np.empty((m, RB), dtype=np.float32)
    cur = np.empty((nc, RB), dtype=np.float32)
    C, N, X = _ptr(c), _ptr(n), _ptr(x)
    zero = full - full
    for r0 in range(0, R, RB):
        rb = min(RB, R - r0)
        n[0] = rb  # C^T (rb x nc) = V^T (rb x m) G^T (m x nc) in Fortran order
        for k in range(ST):
            t = k % (ct.shape[0])
            a = alpha[k]
            for i in range(m):
                ai, src, dst = a[i], ct[t, i], V[i]
                for r in range(rb):
                    v = src[r0 + r]
                    dst[r] = v / (ai - v)
            _call(fn, (C, C + 1, N, N + 4, N + 8, X, _ptr(V), N + 12, _ptr(G[k]), N + 16, X + 4, _ptr(cur), N + 20))
            wk = w[k]
            for j in range(nc):
                out, s = y[j], cur[j]
                if k == 0:
                    for r in range(rb):
                        out[r0 + r] = wk * min(max(np.rint(s[r]), zero), full)
                else:
                    for r in range(rb):
                        out[r0 + r] += wk * min(max(np.rint(s[r]), zero), full)


def fused_chunks(fn, alpha, ct, G, w, full, y, RB, chunk=CHUNK):
    """``fused`` per chunk of ``chunk`` input vectors, each chunk's codes copied contiguous as the passes
    do (``chunk`` = R: the whole (T, M, R) code array in one call, whose rows then lie R floats apart)."""
    R, (_, nc, m) = ct.shape[2], G.shape
    c = np.full(2, ord("N"), dtype=np.uint8)
    n = np.array([RB, nc, m, RB, m, RB], dtype=np.int32)
    x = np.array([1.0, 0.0], dtype=np.float32)
    for p0 in range(0, R, chunk):
        p1 = min(R, p0 + chunk)
        fused(fn, alpha, np.ascontiguousarray(ct[:, :, p0:p1]), G, w, full, y[:, p0:p1], RB, c, n, x)


def passes(alpha, ct, G, w, full):
    """The three passes of ``RowsumPlan.evaluate`` per chunk of CHUNK vectors."""
    kern, R = cpu_kernels.kernels(), ct.shape[2]
    y = np.empty((NC, R), np.float32)
    Gt = torch.from_numpy(G.reshape(1, S, T, NC, M))
    for p0 in range(0, R, CHUNK):
        p1 = min(R, p0 + CHUNK)
        V = torch.empty((1, S, T, M, p1 - p0))
        kern.dac_rowsum(alpha.reshape(S, T, M), np.ascontiguousarray(ct[:, :, p0:p1]),
                        V.numpy().reshape(S, T, M, p1 - p0))
        cur = torch.matmul(Gt, V)
        kern.adc_accumulate(cur.numpy().reshape(1, S * T, NC, p1 - p0), w.reshape(1, S * T), full, True,
                            y[None, :, p0:p1], True)
    return y


def agreement(y, ref, w) -> int:
    """How many outputs differ from the passes'. The passes' products run in torch's BLAS and the fused
    ones in the sgemm called, which may sum in another order: a current at an ADC rounding tie then
    gets the neighbouring code, one code step (at most max(w)) in its output. Larger differences raise."""
    d = np.abs(y.astype(np.float64) - ref)
    if not np.all(d <= 1.001 * float(w.max()) + 1e-6 * np.abs(ref)):
        raise AssertionError(f"the fused loop differs from the passes by {d.max()}: more than one ADC code step")
    return int(np.count_nonzero(d))


def sgemm_addresses() -> dict:
    out = {"openblas": get_cython_function_address("scipy.linalg.cython_blas", "sgemm")}
    try:  # torch's own BLAS, where its library exports the Fortran symbol
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        out["mkl"] = ctypes.cast(lib.sgemm_, ctypes.c_void_p).value
    except (OSError, AttributeError):
        pass
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int_in(1, 1000, "a repeat count"), default=7)
    p.add_argument("--vectors", type=int_in(1, 2**20, "a number of input vectors"), default=8192)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    R = args.vectors
    ct = rng.integers(0, 64, (T, M, R)).astype(np.float32)
    alpha = (69 + 50 * rng.random((S * T, M))).astype(np.float32)
    G = (0.02 * rng.random((S * T, NC, M))).astype(np.float32)
    w, full = rng.random(S * T).astype(np.float32), np.float32(63)
    ref = passes(alpha, ct, G, w, full)
    runs = {"passes": lambda: passes(alpha, ct, G, w, full)}
    differ = {"passes": 0}
    for name, fn in sgemm_addresses().items():
        for rb, chunk in ((64, CHUNK), (128, CHUNK), (256, CHUNK), (512, CHUNK), (256, R)):
            y, key = np.empty_like(ref), f"fused {name} RB={rb}" + (" unchunked" if chunk == R else "")
            runs[key] = lambda fn=fn, rb=rb, y=y, chunk=chunk: fused_chunks(fn, alpha, ct, G, w, full, y, rb, chunk)
            runs[key]()
            differ[key] = agreement(y, ref, w)
    times = {k: [] for k in runs}
    with threadpool_limits(1):
        for _ in range(args.reps):
            for k, f in runs.items():
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
    base = times["passes"]
    print(f"{R} input vectors, 18 tiles of 64 x 64, float32; median of {args.reps}; "
          f"'differ': outputs not bitwise equal to the passes' (of {ref.size})")
    for k, ts in times.items():
        ratio = statistics.median(b / t for b, t in zip(base, ts))
        print(f"{k:24s} {1e3 * statistics.median(ts):7.2f} ms   passes / this {ratio:5.2f}   differ {differ[k]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
