"""TxSim-style training on crossbars: non-idealities in the forward pass, the backward pass and the update.

``train_on_crossbar(model, spec, train, test, settings)`` trains every
``nn.Linear`` and ``nn.Conv2d`` (groups = 1) of ``model`` on crossbars of
``spec`` (issue 14; TxSim, Roy et al., in ``shared/reference/related-abstracts.md``):

1. **Forward**: y = FCM.matmul(x) (forward read: DAC on the rows, G_non-ideal, ADC on the columns);
   convolutions through im2col (``F.unfold``).
2. **Backward**: the error is propagated as dx = BackwardFCM.matmul(dy) (``xbarlab.fcm.backward``: the
   transposed read of the same tiles, DAC on the columns, ADC on the rows, at ``backward_dac_bits`` /
   ``backward_adc_bits`` or the spec's). Everything between crossbar layers (ReLU, pooling, loss) is
   digital and differentiated by autograd.
3. **Update**: the weight gradient is a sum of outer products x_r d_r^T over the batch's vectors
   (and a convolution's patches), applied to the cells
   through ``xbarlab.update``:

   * ``"insitu"``: row and column pulse streams per vector (stochastic pulse
     coincidence, ``xbarlab.update.outer_product_pulses``' encoding, batched
     in ``xbarlab.update.batched_pulses``); the signed counts of one batch are summed per cell and applied
     once (``apply_pulses``: TxSim's ν and γ, bounds); G+ gets n pulses and
     G- gets -n (the pair's columns are pulsed with opposite signs);
   * ``"verify"``: the digital ΔW = -lr sum_r x_r d_r^T, split as +ΔG/2 on G+
     and -ΔG/2 on G- (what a bound refuses on one cell goes to the other,
     ``split_update``), written by program-and-verify;
   * ``"ideal"``: the same ΔG added exactly (clipped to [g_min, g_max]): an
     ideal device.

   Biases stay digital (float, plain SGD at the same rate). A layer called more than once in a forward
   pass (shared weights) sums the vectors of every call; a layer not called is not updated.

The crossbar state is the truth: the conductances G+ and G- of every cell are the layer's only weight
state; W = w_max (G+ - G-) / (g_max - g_min) is read back from them. ``w_max`` is fixed when the network is first programmed
(``w_max_scale`` times its largest initial |W|), so weights saturate at
+-w_max as cells reach their bounds.

**FCM rebuilds** (TxSim's interpolated FCM): the forward and backward FCMs
are rebuilt from the conductances every ``rebuild_every`` steps and before
every evaluation; in between, each tile's G_non-ideal is estimated as the
last exact one plus the change of the programmed conductances
(Gn ~ Gn_last + G - G_last, clipped at 0), which keeps the update's effect
and holds the parasitic correction. The time of the rebuilds is reported
apart from the step time.

Seeded: ``seed`` sets the batch order, the device sampling at programming
(variation, clipped to the device's bounds) and every pulse and write-noise
draw; the model's initial weights are the caller's (seed torch before
building it).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xbarlab.blas import one_blas_thread
from xbarlab.fcm import FCM, FCMOptions, Mapping
from xbarlab.fcm.backward import BackwardFCM, backward_spec, turned_tiles
from xbarlab.fcm.mapping import check_weights, conductances, tile, tile_counts
from xbarlab.params import check_positive
from xbarlab.spec import CrossbarSpec
from xbarlab.update import InSituSettings, UpdateParams, VerifySettings, apply_pulses_unchecked, batched_pulses
from xbarlab.update_verify import program_and_verify, split_update

from .batching import minibatches

STYLES = ("insitu", "verify", "ideal")


@dataclass(frozen=True)
class TxSimSettings:
    """Training schedule and update model.

    Attributes:
        steps: SGD steps, >= 0.
        batch: mini-batch size, >= 1 (``dnn_eval.batching``: shuffled passes, the remainder dropped).
        lr: SGD learning rate (weight units per unit of gradient), > 0.
        style: ``"insitu"``, ``"verify"`` or ``"ideal"`` (module docstring).
        update: the device's pulse response (ν, γ, pulses).
        in_situ: pulse encoding of ``"insitu"``.
        verify: settings of ``"verify"``.
        rebuild_every: steps between exact FCM rebuilds, >= 1 (1: every step).
        eval_every: steps between test evaluations, >= 1.
        w_max_scale: w_max = w_max_scale * max|W| of the initial weights, > 0.
        backward_dac_bits, backward_adc_bits: bits of the backward read's DAC and ADC
            (None: the spec's DAC and ADC).
        seed: the run's seed.
    """

    steps: int = 300
    batch: int = 32
    lr: float = 0.05
    style: str = "insitu"
    update: UpdateParams = field(default_factory=lambda: UpdateParams(pulses=1000))
    in_situ: InSituSettings = field(default_factory=InSituSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)
    rebuild_every: int = 1
    eval_every: int = 50
    w_max_scale: float = 2.0
    backward_dac_bits: int | None = None
    backward_adc_bits: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for k, lo in (("steps", 0), ("batch", 1), ("rebuild_every", 1), ("eval_every", 1), ("seed", 0)):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo or (k == "seed" and v >= 2**63):
                raise ValueError(f"{k} must be an integer >= {lo}{' and < 2**63' * (k == 'seed')}, got {v!r}")
        for k in ("lr", "w_max_scale"):
            check_positive(k, getattr(self, k))
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {self.style!r}")
        for k, cls in (("update", UpdateParams), ("in_situ", InSituSettings), ("verify", VerifySettings)):
            if not isinstance(getattr(self, k), cls):
                raise ValueError(f"{k} must be an xbarlab.update.{cls.__name__}, got {type(getattr(self, k)).__name__}")
        for k in ("backward_dac_bits", "backward_adc_bits"):
            v = getattr(self, k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 32):
                raise ValueError(f"{k} must be an integer in 1..32 or None, got {v!r}")


class CrossbarState:
    """One layer's cells (G+, G- over the padded weight matrix, siemens) and its two FCMs. ``G`` is
    replaced by each update, never written in place: an FCM's ``G`` is the state it was made of."""

    def __init__(self, W: np.ndarray, spec: CrossbarSpec, options: FCMOptions, s: TxSimSettings,
                 rng: np.random.Generator) -> None:
        W = check_weights(W)
        if options.mapping is not Mapping.DIFFERENTIAL:
            raise ValueError(f"training needs the differential mapping, got mapping={options.mapping.value!r}")
        self.spec, self.options, self.shape = spec, options, W.shape
        dev = spec.device
        self.w_max = s.w_max_scale * float(np.abs(W).max() or 1.0)
        tk, tn = tile_counts(*W.shape, spec.rows, spec.cols)
        self.blocks = (tk, spec.rows, tn, spec.cols)
        Gt = conductances(tile(W, spec.rows, spec.cols), dev, self.w_max)  # (2, Tk, Tn, M, Nc)
        if dev.variation > 0 or dev.stuck_on_rate > 0 or dev.stuck_off_rate > 0:
            Gt = np.clip(dev.sample(Gt, rng), dev.g_min, dev.g_max)
        self.G = Gt
        dac = None if s.backward_dac_bits is None else dataclasses.replace(spec.dac, bits=s.backward_dac_bits)
        adc = None if s.backward_adc_bits is None else dataclasses.replace(spec.adc, bits=s.backward_adc_bits)
        self.bspec = backward_spec(spec, dac, adc)
        self._bwd = None
        self.rebuild()

    # -------------------------------------------------------------- weights <-> cells
    def _full(self, T: np.ndarray) -> np.ndarray:
        """Tiles (..., Tk, Tn, M, Nc) -> the padded matrix (..., Tk M, Tn Nc)."""
        tk, m, tn, nc = self.blocks
        return T.swapaxes(-3, -2).reshape(T.shape[:-4] + (tk * m, tn * nc))

    def _tiles(self, A: np.ndarray) -> np.ndarray:
        tk, m, tn, nc = self.blocks
        return A.reshape(A.shape[:-2] + (tk, m, tn, nc)).swapaxes(-3, -2)

    def weights(self) -> np.ndarray:
        """W (K, N) read back from the cells."""
        dev = self.spec.device
        d = self._full(self.G[0] - self.G[1])
        return self.w_max * d[: self.shape[0], : self.shape[1]] / (dev.g_max - dev.g_min)

    # -------------------------------------------------------------- FCMs
    @property
    def bwd(self) -> BackwardFCM:
        """The backward FCM, built on first use: the network's first layer never reads its error back
        (its input needs no gradient), so it never pays for one."""
        if self._bwd is None:
            self._bwd = self._exact_backward()
        return self._bwd

    def _exact_backward(self) -> BackwardFCM:
        turned_shape = (self.blocks[2] * self.blocks[3], self.blocks[0] * self.blocks[1])
        return BackwardFCM(FCM.from_tiles(turned_tiles(self.G), self.bspec, self.options, turned_shape, self.w_max),
                           self.shape, self.blocks)

    def rebuild(self) -> None:
        """Exact forward and (once used) backward FCMs of the present cells (G_non-ideal stacks)."""
        self.fwd = FCM.from_tiles(self.G, self.spec, self.options, self.shape, self.w_max)
        self._bwd = None if self._bwd is None else self._exact_backward()

    def compile(self, ns) -> None:
        """Compile the evaluation plans of the present FCMs for namespace ``ns`` now (the backward's once
        built), rather than in the next forward and backward (``FCM.compile``: a benchmark times it apart)."""
        self.fwd.compile(ns)
        if self._bwd is not None:
            self._bwd.turned.compile(ns)

    def estimate(self) -> None:
        """Interpolated FCMs: the last exact G_non-ideal plus the change of the cells (no circuit solve).
        The change is against each FCM's own cells (``fcm.G``: the state when it was made, since ``G`` is
        replaced by an update, never written in place); turned tiles are a permutation of the cells, so
        turning the difference or differencing the turned cells gives the same numbers."""
        f = self.fwd
        self.fwd = FCM(self.spec, self.options, self.shape, self.w_max, self.G,
                       np.maximum(f.Gn + (self.G - f.G), 0.0), f.Y)
        if self._bwd is not None:
            t = self._bwd.turned
            tG = turned_tiles(self.G)
            self._bwd = self._bwd.with_turned(FCM(t.spec, t.options, t.shape, self.w_max, tG,
                                                  np.maximum(t.Gn + (tG - t.G), 0.0), t.Y))

    # -------------------------------------------------------------- update
    def apply_update(self, X: np.ndarray, D: np.ndarray, s: TxSimSettings, rng: np.random.Generator) -> None:
        """ΔW = -lr sum_r X[r] D[r]^T applied to the cells in ``s.style``; X (R, K), D (R, N)."""
        dev = self.spec.device
        K, N = self.shape
        dg = dev.g_max - dev.g_min
        half = -s.lr * dg / (2.0 * self.w_max)  # siemens of G+ per unit of x d (G- gets the opposite)
        Kp, Np = self.blocks[0] * self.blocks[1], self.blocks[2] * self.blocks[3]
        if s.style == "insitu":
            n = np.zeros((Kp, Np), dtype=np.int64)
            n[:K, :N] = batched_pulses(X, D, half, s.update.step(dev), s.in_situ, rng)
            nt = self._tiles(n)  # G+ gets n pulses, G- gets -n (noise drawn for G+ first, then G-)
            self.G = apply_pulses_unchecked(self.G, np.stack([nt, -nt]), dev, s.update, rng)
            return
        dG = np.zeros((Kp, Np))
        with one_blas_thread():
            dG[:K, :N] = half * (X.T @ D)
        dGt = self._tiles(dG)
        targets = split_update(self.G[0], self.G[1], dGt, dev.g_min, dev.g_max)
        if s.style == "ideal":
            self.G = np.clip(np.stack(targets), dev.g_min, dev.g_max)
        else:
            self.G = np.stack([program_and_verify(g, t, dev, s.update, s.verify, rng).g
                               for g, t in zip(self.G, targets)])


class _CrossbarMatmul(torch.autograd.Function):
    """y = fwd.matmul(X); the backward reads dX = bwd.matmul(dY) and keeps (X, dY) for the update."""

    @staticmethod
    def forward(ctx, X, anchor, state, record):
        ctx.state, ctx.record = state, record
        ctx.save_for_backward(X)
        return state.fwd.matmul(X.detach(), check_finite=False)

    @staticmethod
    def backward(ctx, dY):
        # ``anchor`` (an empty tensor that requires grad) makes autograd call this for the first layer
        # too, whose input needs no gradient: its backward read is then skipped, as hardware would
        (X,) = ctx.saved_tensors
        ctx.record.append((X.detach().double().numpy(), dY.detach().double().numpy()))
        dX = ctx.state.bwd.matmul(dY.contiguous(), check_finite=False, signed=True) if ctx.needs_input_grad[0] else None
        return dX, None, None, None


class TxLayer(nn.Module):
    """A Linear or Conv2d whose weights live in a ``CrossbarState`` (digital bias)."""

    def __init__(self, module: nn.Module, state: CrossbarState) -> None:
        super().__init__()
        self.state, self.records = state, []
        self.anchor = torch.zeros(0, requires_grad=True)
        self.conv, self.pad_mode = isinstance(module, nn.Conv2d), None
        if self.conv:
            if module.groups != 1 or not isinstance(module.padding, tuple):
                raise ValueError(f"Conv2d needs groups=1 and numeric padding, got groups={module.groups}, "
                                 f"padding={module.padding!r}")
            pad = module.padding
            if module.padding_mode != "zeros":  # reflect, replicate, circular: F.pad first, as nn.Conv2d does
                (ph, pw), pad = pad, (0, 0)
                self.pad_mode = (module.padding_mode, [pw, pw, ph, ph])
            self.geom = dict(kernel_size=module.kernel_size, dilation=module.dilation, padding=pad,
                             stride=module.stride)
        self.bias = None if module.bias is None else nn.Parameter(module.bias.detach().clone())

    def forward(self, x):
        if not self.conv:
            y = _CrossbarMatmul.apply(x, self.anchor, self.state, self.records)
            return y if self.bias is None else y + self.bias
        if self.pad_mode is not None:
            x = F.pad(x, self.pad_mode[1], mode=self.pad_mode[0])
        B, _, H, W = x.shape
        cols = F.unfold(x, **self.geom)  # (B, K, L)
        L = cols.shape[-1]
        y = _CrossbarMatmul.apply(cols.transpose(1, 2).reshape(B * L, -1).contiguous(), self.anchor, self.state,
                                   self.records)
        kh, kw = self.geom["kernel_size"]
        (ph, pw), (sh, sw), (dh, dw) = self.geom["padding"], self.geom["stride"], self.geom["dilation"]
        ho, wo = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        y = y.reshape(B, L, -1).transpose(1, 2).reshape(B, -1, ho, wo)
        return y if self.bias is None else y + self.bias[None, :, None, None]


def weight_matrix(m: nn.Module) -> np.ndarray:
    """W (K, N) of y = x @ W for a Linear (weight.T) or a Conv2d (im2col order (C, kh, kw))."""
    w = m.weight.detach().double().numpy()
    return w.reshape(w.shape[0], -1).T


def to_txsim(model: nn.Module, spec: CrossbarSpec, options: FCMOptions, s: TxSimSettings,
             rng: np.random.Generator) -> tuple[nn.Module, list[TxLayer]]:
    """A copy of ``model`` with each Linear / Conv2d replaced by a ``TxLayer`` programmed from its weights
    (``model`` is left as it is: a second run from it starts from its weights again)."""
    model, layers = copy.deepcopy(model), []
    for _, parent in list(model.named_modules()):
        for cname, child in list(parent.named_children()):
            if isinstance(child, (nn.Linear, nn.Conv2d)):
                layer = TxLayer(child, CrossbarState(weight_matrix(child), spec, options, s, rng))
                setattr(parent, cname, layer)
                layers.append(layer)
    if not layers:
        raise ValueError("the model has no Linear or Conv2d layer to train on crossbars")
    return model, layers


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model.eval()(torch.as_tensor(x)).argmax(1).numpy() == y).mean())  # (BatchNorm: running stats)


def train_step(model: nn.Module, layers: list[TxLayer], opt, x: torch.Tensor, y: torch.Tensor,
               s: TxSimSettings, rng: np.random.Generator) -> float:
    """One step on crossbars: forward (forward FCMs), backward (backward FCMs), update of every cell
    (``s.style``) and of the digital biases. The FCMs are not refreshed (``refresh``). Returns the loss."""
    for layer in layers:
        layer.records.clear()
    if opt is not None:
        opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    if not torch.isfinite(loss):  # (before any update: a NaN gradient would make NaN cells)
        raise ValueError(f"training loss is {float(loss.detach())}: non-finite (lr too large?); no update applied")
    loss.backward()
    if opt is not None:
        opt.step()
    for layer in layers:  # every call of a layer in this step (shared weights) adds its vectors; none: no update
        if layer.records:
            X, D = (np.concatenate([r[k] for r in layer.records]) for k in (0, 1))
            layer.state.apply_update(X, D, s, rng)
        layer.records.clear()
    return float(loss.detach())


def refresh(layers: list[TxLayer], exact: bool) -> None:
    """After an update: exact FCM rebuilds (``exact``) or the interpolated FCMs."""
    for layer in layers:
        if exact:
            layer.state.rebuild()
        else:
            layer.state.estimate()


def bias_optimizer(model: nn.Module, lr: float):
    """Plain SGD on the digital parameters (the biases), or None when there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=lr) if params else None


def train_on_crossbar(model: nn.Module, spec: CrossbarSpec, train, test, settings: TxSimSettings | None = None,
                      options: FCMOptions | None = None) -> tuple[nn.Module, list[dict], dict]:
    """Train ``model`` (float32, CPU) in all three phases on crossbars of ``spec``.

    Returns (the crossbar model, history, timing). ``history`` has a row per
    evaluation: ``step``, ``accuracy`` (test, crossbar forward after an exact
    rebuild), ``loss`` (mean training loss since the last row). ``timing``:
    ``train_s`` (forward, backward and update, rebuilds excluded),
    ``rebuild_s`` (exact FCM rebuilds), ``estimate_s`` (interpolated FCMs),
    ``eval_s``, ``steps``, ``rebuilds``.
    """
    s = settings or TxSimSettings()
    if not isinstance(s, TxSimSettings):
        raise ValueError(f"settings must be a TxSimSettings, got {type(s).__name__}")
    options = options or FCMOptions()
    train, test = train.check("train"), test.check("test")
    rng = np.random.default_rng(s.seed)
    model, layers = to_txsim(model, spec, options, s, rng)
    opt = bias_optimizer(model, s.lr)
    g = torch.Generator().manual_seed(s.seed)
    xt, yt = torch.as_tensor(train.x), torch.as_tensor(train.y)
    timing = dict(train_s=0.0, rebuild_s=0.0, estimate_s=0.0, eval_s=0.0, steps=0, rebuilds=0)
    t0 = time.perf_counter()
    hist = [{"step": 0, "accuracy": _accuracy(model, test.x, test.y), "loss": float("nan")}]
    timing["eval_s"] += time.perf_counter() - t0
    losses, order = [], minibatches(len(yt), s.batch, g)
    for step in range(1, s.steps + 1):
        t0 = time.perf_counter()
        idx = next(order)
        losses.append(train_step(model.train(), layers, opt, xt[idx], yt[idx], s, rng))
        t1 = time.perf_counter()
        timing["train_s"] += t1 - t0
        evaluate = step % s.eval_every == 0 or step == s.steps
        exact = step % s.rebuild_every == 0 or evaluate
        refresh(layers, exact)
        t2 = time.perf_counter()
        timing["rebuild_s" if exact else "estimate_s"] += t2 - t1
        timing["rebuilds"] += exact
        timing["steps"] += 1
        if evaluate:
            hist.append({"step": step, "accuracy": _accuracy(model, test.x, test.y), "loss": float(np.mean(losses))})
            losses = []
            timing["eval_s"] += time.perf_counter() - t2
    return model, hist, timing
