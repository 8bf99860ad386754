"""One BLAS thread: the limit the structured G_non-ideal and the sweep workers use.

The solves in ``engines/structured.py`` are small (N x N); BLAS threads gain
little on them in one process, but several processes with their own
OpenBLAS pools (numpy's and scipy's each start one thread per core, and
idle threads spin) make them several times slower
(``benchmarks/bench_blas_threads.py``).
"""

from __future__ import annotations

import contextlib
import functools


@functools.cache
def _controller():
    """threadpoolctl's view of the loaded BLAS libraries, made once (a limit then costs ~10 us,
    not ~300 us), or None without threadpoolctl."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return None
    return ThreadpoolController()


def one_blas_thread():
    """Limit BLAS to one thread, process-wide: as a context manager, until its block ends; called
    on its own (a worker initializer), for the rest of the process."""
    ctl = _controller()
    return contextlib.nullcontext() if ctl is None else ctl.limit(limits=1, user_api="blas")
