"""The backward (transposed) read of an FCM's crossbars: ``dx ~ dy @ W^T`` (issue 14, TxSim).

During backpropagation the crossbars that hold W (K, N) are read transposed:
each column j is driven at its bottom end by a DAC (through ``r_driver``) with
the error dy_j, and each row i is sensed at its left end through ``r_sense``
by an ADC (``netlists/README.md``, ``xbarlab.g_nonideal(..., read="backward")``).
Its parasitics are not those of the forward read, so this model has its own
G_non-ideal per tile.

It is built by composition over the forward FCM's public API. By reciprocity
the backward read of a tile G (M, N) is the forward read of the turned tile
G'[r, c] = G[M-1-c, N-1-r] (``xbarlab.api.turn``) on the circuit
``topology.backward_as_forward(circuit)`` (r_row and r_col exchanged). So a
``BackwardFCM`` is a forward ``FCM`` of:

* the turned tiles, with the tile grid transposed: (S, Tn, Tk, N_t, M_t) for
  the forward model's (S, Tk, Tn, M_t, N_t);
* the turned spec: rows = the forward spec's cols, cols = its rows, the turned
  circuit, a DAC on the (former) columns and an ADC on the (former) rows, each
  at its own bits (by default the forward spec's DAC and ADC);
* the same weight scale ``w_max`` and model options (mapping, DAC load;
  note that a ``load_factor`` fitted for the forward read is reused as is);

with the index flips: inside each tile block the inputs enter in reverse
column order and the outputs leave in reverse row order. The model works on
the zero-padded sizes (Tn N_t inputs, Tk M_t outputs), since after the flip
the padding of a partial last block lies at the start of the block; a padded
input is 0 (DAC code 0, exactly no current) and padded outputs are dropped.

The ADC full scale is calibrated per backward tile on the backward
G_non-ideal (or is the spec's fixed ``full_scale_a``).
"""

from __future__ import annotations

import copy

import numpy as np

from ..api import turn
from ..backend import is_torch_tensor
from ..peripherals.adc import ADCParams
from ..peripherals.dac import DACParams
from ..topology import backward_as_forward
from .model import FCM
from .options import FCMOptions


def backward_spec(spec, dac: DACParams | None = None, adc: ADCParams | None = None):
    """The forward-read spec whose forward read is ``spec``'s backward read on the turned tiles."""
    return spec.replace(rows=spec.cols, cols=spec.rows, circuit=backward_as_forward(spec.circuit),
                        dac=spec.dac if dac is None else dac, adc=spec.adc if adc is None else adc)


def turned_tiles(G: np.ndarray) -> np.ndarray:
    """Tiles (S, Tk, Tn, M, N) -> (S, Tn, Tk, N, M): each tile turned (``api.turn``), the grid transposed."""
    return np.ascontiguousarray(turn(np.asarray(G)).transpose(0, 2, 1, 3, 4))


def _flip_index(blocks: int, size: int) -> np.ndarray:
    """The order that reverses each block of ``size`` entries of a padded layout (an involution)."""
    return np.arange(blocks * size).reshape(blocks, size)[:, ::-1].ravel()


def _check_layout(turned: FCM, forward_shape, blocks) -> tuple[int, ...]:
    """(K, N, Tk, M, Tn, Nc) when ``blocks`` = (Tk, M, Tn, Nc) is the tile grid of a (K, N) weight matrix on
    M x Nc tiles and ``turned`` reads those tiles turned, or ValueError (a mismatch gave outputs of the
    wrong length or from the wrong cells, silently)."""
    vals = tuple(forward_shape) + tuple(blocks)
    if len(vals) != 6 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in vals):
        raise ValueError(f"forward_shape (K, N) and blocks (Tk, M, Tn, Nc) must be integers >= 1, "
                         f"got {forward_shape!r} and {blocks!r}")
    K, N, tk, m, tn, nc = (int(v) for v in vals)
    if not ((tk - 1) * m < K <= tk * m and (tn - 1) * nc < N <= tn * nc):
        raise ValueError(f"blocks (Tk, M, Tn, Nc) = {blocks!r} are not the tile grid of forward_shape {forward_shape!r}")
    if turned.shape != (tn * nc, tk * m) or (turned.spec.rows, turned.spec.cols) != (nc, m):
        raise ValueError(f"turned must read {m} x {nc} tiles turned ({nc} x {m}), padded shape {(tn * nc, tk * m)}, "
                         f"got {turned.spec.rows} x {turned.spec.cols} tiles, shape {turned.shape}")
    return K, N, tk, m, tn, nc


class BackwardFCM:
    """The transposed read of a forward ``FCM``'s crossbars: ``fcm_b.matmul(d) ~ d @ W.T``.

    Build with ``BackwardFCM.from_fcm(fcm)``. Attributes (read-only by convention):

        forward_shape: (K, N) of W; inputs d are (B, N), outputs (B, K).
        turned: the forward ``FCM`` of the turned tiles that computes the read.
        spec: the turned spec (``backward_spec``).
    """

    def __init__(self, turned: FCM, forward_shape: tuple[int, int], blocks: tuple[int, int, int, int]) -> None:
        if not isinstance(turned, FCM):
            raise ValueError(f"turned must be an FCM, got {type(turned).__name__}")
        K, N, tk, m, tn, nc = _check_layout(turned, forward_shape, blocks)
        self.turned = turned
        self.spec = turned.spec
        self.forward_shape = (K, N)
        self._blocks = (tk, m, tn, nc)
        # padded input position r (turned row) <- original column in_idx[r]; output k <- turned column out_idx[k]
        self._in_idx = _flip_index(tn, nc)
        self._out_idx = _flip_index(tk, m)[: self.forward_shape[0]]
        self._idx: dict = {}  # device -> the two index arrays as tensors (``_index_tensors``)

    @classmethod
    def from_fcm(cls, fcm: FCM, *, dac: DACParams | None = None, adc: ADCParams | None = None,
                 options: FCMOptions | None = None) -> "BackwardFCM":
        """The backward read of ``fcm``'s programmed conductances (no re-sampling: the same hardware).

        ``dac`` drives the columns, ``adc`` digitizes the rows (default: the
        forward spec's, at their bits); ``options`` default to ``fcm.options`` and
        must keep its mapping (the tiles' layout: G+ and G- or one offset cell).
        """
        if not isinstance(fcm, FCM):
            raise ValueError(f"fcm must be an xbarlab.FCM, got {type(fcm).__name__}")
        if options is not None and not isinstance(options, FCMOptions):
            raise ValueError(f"options must be an xbarlab.fcm.FCMOptions or None, got {type(options).__name__}")
        spec_t = backward_spec(fcm.spec, dac, adc)
        opts = fcm.options if options is None else options
        if opts.mapping is not fcm.options.mapping:  # (read as the other layout, the tiles gave d @ W.T wrong by 2x)
            raise ValueError(f"options.mapping must be the forward FCM's mapping {fcm.options.mapping.value!r} "
                             f"(its tiles are programmed in that layout), got {opts.mapping.value!r}")
        if fcm.options.sensing.value == "reference" or opts.sensing.value == "reference":
            raise ValueError("sensing='reference' has no backward read: its reference column would be a row "
                             "of the transposed read (use sensing 'separate' or 'differential')")
        K, N = fcm.shape
        M, Nc = fcm.spec.rows, fcm.spec.cols
        tk, tn = -(-K // M), -(-N // Nc)
        if fcm.G is None:  # all-zero W
            turned = FCM(spec_t, opts, (tn * Nc, tk * M), 0.0, None, None)
        else:
            turned = FCM.from_tiles(turned_tiles(fcm.G), spec_t, opts, (tn * Nc, tk * M), fcm.w_max)
        return cls(turned, (K, N), (tk, M, tn, Nc))

    def with_turned(self, turned: FCM) -> "BackwardFCM":
        """The same read of other conductances: ``turned`` a forward FCM of the same turned layout (an
        estimate, a rebuild); the index arrays (and their tensors) are shared."""
        if not isinstance(turned, FCM) or turned.shape != self.turned.shape:
            raise ValueError(f"turned must be an FCM of shape {self.turned.shape}, got {turned!r}")
        new = copy.copy(self)
        new.turned, new.spec = turned, turned.spec
        return new

    @property
    def Gn(self) -> np.ndarray | None:
        """The backward G_non-ideal of each turned tile, S, (S, Tn, Tk, N_t, M_t) (turned indices)."""
        return self.turned.Gn

    def __repr__(self) -> str:
        return f"BackwardFCM(shape={self.forward_shape}, turned={self.turned!r})"

    def matmul(self, d, *, check_finite: bool = True, signed: bool | None = None):
        """dx ~ d @ W^T for d (B, N) or (N,): the error driven on the columns, read on the rows.

        numpy in, numpy (float64) out; a torch tensor in, a tensor of its dtype and device out.
        ``signed`` as in ``FCM.matmul`` (errors are usually signed: two DAC phases).
        """
        K, N = self.forward_shape
        torch_in = is_torch_tensor(d)
        if torch_in:
            import torch

            da = d
        else:
            da = np.asarray(d, dtype=float)
        if da.ndim not in (1, 2) or da.shape[-1] != N:
            raise ValueError(f"d must be (N,) or (B, N) with N={N}, got shape {tuple(da.shape)}")
        single = da.ndim == 1
        D = da[None] if single else da
        tn, nc = self._blocks[2], self._blocks[3]
        P = tn * nc
        # the turned read's inputs in its own layout, X^T (P, B): padded input r is column in_idx[r] of d, so
        # (in_idx an involution) column c of d is row in_idx[c]; the padding's rows stay 0
        if torch_in:
            into, out_idx = self._index_tensors(D.device)
            Xt = torch.zeros((P, D.shape[0]), dtype=D.dtype, device=D.device)
            Xt.index_copy_(0, into, D.t())
        else:
            into, out_idx = self._in_idx[:N], self._out_idx
            Xt = np.zeros((P, D.shape[0]))
            Xt[into] = D.T
        Yt = self.turned.matmul_t(Xt, check_finite=check_finite, signed=signed)  # (turned N, B)
        y = Yt[out_idx].T  # (B, K): the same values as the row layout (FCM.matmul_t); a tensor stays a view
        y = y if torch_in else np.ascontiguousarray(y)
        return y[0] if single else y

    def _index_tensors(self, device):
        """(in_idx[:N], out_idx) as int64 tensors on ``device``, made once per device."""
        key = str(device)
        if key not in self._idx:
            import torch

            self._idx[key] = (torch.as_tensor(self._in_idx[: self.forward_shape[1]], device=device),
                              torch.as_tensor(self._out_idx, device=device))
        return self._idx[key]

    __call__ = matmul
