"""The row sweep of ``engines.structured`` in torch, for a stack of tiles on any torch device.

``g_nonideal_stack(G, circuit, device="cuda")`` runs here: the same block
elimination as ``structured._sweep`` (Thomas pivots in excess form, the
column Schur complements kept as g_col I + F, Cholesky solves of symmetric
positive definite matrices), written operation for operation in torch
float64, so that every tile of the stack is one batch of each step: the row pivots and the
Schur complements are ``structured``'s own functions (written for numpy and torch alike), the row
inverses and the solves are torch's here (one row at a time, batched Cholesky). On a GPU
the M steps of the sweep are M batched Cholesky factorizations of (T, N, N)
and their solves. It is the sweep, not the nested dissection: O(max(M, N)
min(M, N)^3) per tile, which a GPU's batched dense algebra runs well, and
every wire stays outside the dense matrices, which is what keeps it within
1e-12 of the high-precision reference (the tests hold it to the numpy
engines on torch's CPU device; no GPU was available to this project's
checks, see the README).

torch is imported only when a device is asked for (``import xbarlab`` stays
light).
"""

from __future__ import annotations

import numpy as np

from .structured import _row_pivots, _schur


def device_for(device):
    """A ``torch.device`` from ``device`` (a torch.device or a name such as "cpu", "cuda",
    "cuda:1"); ValueError naming it when torch cannot use it."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of the package
        raise ValueError(f"device={device!r} needs torch (pip install torch)") from None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be a torch device or its name, got {device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: CUDA is not available here (torch.cuda.is_available() is False); "
                         "use device=None (the CPU engines) or 'cpu'")
    return dev


def sweep_on(dev):
    """A ``structured._sweep`` stand-in (numpy in, numpy out) that runs on torch device ``dev``."""

    def sweep(G, g_row, g_col, g_src, g_end):
        import torch

        def t(a):
            return torch.as_tensor(np.array(a, dtype=np.float64), device=dev)  # a copy: positive strides

        out = _sweep(torch, t(G), float(g_row), float(g_col), t(g_src), t(g_end))
        return out.cpu().numpy()

    return sweep


def _row_inverse(torch, c_i, diag_i):
    """The upper triangle of K^-1 of row i of every tile, (T, N, N) (``structured._row_inverse``)."""
    T, N = diag_i.shape
    U = torch.zeros((T, N, N), dtype=diag_i.dtype, device=diag_i.device)
    jj = torch.arange(N, device=diag_i.device)
    U[:, jj, jj] = diag_i
    for j in range(N - 2, -1, -1):
        U[:, j, j + 1:] = c_i[:, j, None] * U[:, j + 1, j + 1:]
    return U


def _spd_solve(torch, A, B):
    """A^-1 B for a stack of symmetric positive definite A (upper triangle read), Cholesky; the
    matrices whose factorization fails fall back to LU (``structured._spd_solve``)."""
    L, info = torch.linalg.cholesky_ex(A, upper=True)
    X = torch.cholesky_solve(B, L, upper=True)
    bad = info != 0
    if bool(bad.any()):
        X[bad] = torch.linalg.solve(A[bad], B[bad])
    return X


def _sweep(torch, G, g_row, g_col, g_src, g_end):
    """``structured._sweep`` for torch tensors G (T, M, N), g_src (M,), g_end (N,): (T, M, N)."""
    T, M, N = G.shape
    c, diag = _row_pivots(G, g_row, g_src, xp=torch)
    eye = torch.eye(N, dtype=G.dtype, device=G.device)
    Y = torch.zeros((T, N, M), dtype=G.dtype, device=G.device)
    F = None
    for i in range(M):
        U = _row_inverse(torch, c[:, i], diag[:, i])
        w = g_src[i] * G[:, i] * U[:, 0, :]
        S = _schur(U, diag[:, i], G[:, i])
        if F is not None:
            sol = _spd_solve(torch, F + g_col * eye, torch.cat([F, Y[:, :, :i]], dim=2))
            S += g_col * sol[:, :, :N]
            Y[:, :, :i] = g_col * sol[:, :, N:]
        F = S
        Y[:, :, i] = w
    b_last = _spd_solve(torch, F + torch.diag(g_end), Y)
    return (g_end[None, :, None] * b_last).transpose(1, 2)
