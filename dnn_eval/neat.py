"""NEAT: non-linearity-aware training for 1T-1R crossbars (after the NEAT paper, ../shared/reference).

The access transistor in series with each device lowers the cell's effective
conductance G_eff = 1 / (R_device + R_transistor(V, V_G)) (``xbarlab.fcm.cells``),
the more the larger G and the lower the gate voltage V_G. NEAT keeps every cell
in the transistor's linear region:

1. ``cutoff``: the cut-off conductance G_cut(V_G), the largest G whose G_eff stays
   within a tolerance (2.5 %) of G over the cell voltages (0.05 V to v_read);
   the weight cut-off W_cut = w_max (G_cut - g_min) / (g_max - g_min) of a layer
   whose largest |W| maps to g_max;
2. ``neat_layer_spec``: that layer's hardware, the access NMOS at V_G and the device
   programmed over [g_min, min(g_max, G_cut)] (so a weight W_cut maps to G_cut, the
   weight-to-conductance scale unchanged), with its weights clipped to +-W_cut;
3. ``neat_train``: re-training with the crossbar forward pass (straight-through,
   as ``dnn_eval.retrain``), the weights clipped to +-W_cut after every step;
4. ``choose_vg``: V_G per layer, the lowest candidate that keeps the clipped
   network within a loss budget of the highest V_G's accuracy.

Without NEAT a 1T-1R layer is programmed over the full [g_min, g_max] with the
access NMOS at V_G (``dnn_eval.cli.with_cell``).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xbarlab.fcm import cells
from xbarlab.spec import CrossbarSpec
from xbarlab.transistor import AccessTransistor

from .convert import crossbar_layers, program_all, set_straight_through, to_crossbar
from .evaluate import accuracy, default_options
from .retrain import RetrainSettings

TOLERANCE = 0.025  # NEAT's tolerance on G_eff
V_CELL_LO = 0.05  # volt: the smallest cell voltage the tolerance covers (NEAT's trial range starts there)


@dataclass(frozen=True)
class Cutoff:
    """NEAT's cut-off at one gate voltage: ``g_cut`` (S) and ``fraction`` = (min(G_cut, g_max) - g_min) /
    (g_max - g_min), the share of a layer's largest |W| that its weights are clipped to (1: no clip)."""

    v_gate_v: float
    g_cut: float
    fraction: float


def with_access(spec: CrossbarSpec, v_gate_v: float) -> CrossbarSpec:
    """``spec`` with the default access NMOS (``AccessTransistor``) at gate voltage ``v_gate_v`` (V)."""
    acc = spec.device.access or AccessTransistor()
    return spec.replace(device=dataclasses.replace(spec.device, access=dataclasses.replace(acc, v_gate_v=v_gate_v)))


def cutoff(spec: CrossbarSpec, v_gate_v: float, tol: float = TOLERANCE) -> Cutoff:
    """The cut-off of ``spec``'s device at V_G (the transistor table from ngspice, ``xbarlab.fcm.cells``)."""
    s = with_access(spec, v_gate_v)
    acc = s.device.access
    g = _cutoff_g(acc, acc.model_card().params, float(tol), float(s.dac.v_read))
    d = s.device
    frac = 1.0 if g >= d.g_max else max(0.0, (g - d.g_min) / (d.g_max - d.g_min))
    return Cutoff(float(v_gate_v), float(g), float(frac))


@functools.lru_cache(maxsize=64)
def _cutoff_g(access: AccessTransistor, card_params: tuple, tol: float, v_read: float) -> float:
    """G_cut (S): a pure function of the transistor, its card's contents, the tolerance and v_read, kept in a
    small cache (``apply`` asks for it once per layer and ``choose_vg`` once per trial)."""
    table = cells.transistor_table(access)
    return cells.cutoff_conductance(table, tol, np.linspace(V_CELL_LO, v_read, 5))


def neat_layer_spec(spec: CrossbarSpec, cut: Cutoff) -> CrossbarSpec:
    """The 1T-1R hardware of a NEAT layer: access at ``cut.v_gate_v``, devices over [g_min, min(g_max, G_cut)]."""
    s = with_access(spec, cut.v_gate_v)
    if cut.fraction >= 1.0:
        return s
    if cut.g_cut <= s.device.g_min:
        raise ValueError(f"G_cut {cut.g_cut:.3g} S at V_G {cut.v_gate_v:g} V is not above g_min {s.device.g_min:.3g} S: "
                         "no linear-region range is left")
    return s.replace(device=dataclasses.replace(s.device, g_max=cut.g_cut))


def clip_weights(model: nn.Module, fractions: dict) -> dict:
    """Clip each crossbar layer's weights to +-W_cut = fraction * its largest |W| now; returns {name: W_cut}."""
    wcut = {}
    with torch.no_grad():
        for layer in crossbar_layers(model):
            f = fractions[layer.name]
            w = float(layer.weight.detach().abs().max()) * f
            if f < 1.0:
                layer.weight.clamp_(-w, w)
            wcut[layer.name] = w
    return wcut


def apply(model: nn.Module, base: CrossbarSpec, vg: dict, neat: bool, rng_seed: int = 0) -> tuple[nn.Module, dict]:
    """A crossbar copy of ``model`` on 1T-1R cells with V_G per layer (``vg``: {layer name: volt}, or one
    float for all). ``neat``: clip to W_cut and program over [g_min, G_cut] (else the full range).
    Returns (crossbar model, {layer name: Cutoff})."""
    one = not isinstance(vg, bool) and isinstance(vg, (int, float, np.integer, np.floating))
    if not one and not isinstance(vg, dict):
        raise ValueError(f"vg must be a gate voltage in volt or a dict {{layer name: volt}}, got {vg!r}")
    xm = to_crossbar(model, base, None if base.device.variation == 0 else np.random.default_rng(rng_seed),
                     default_options(base))
    cuts = {}
    for layer in crossbar_layers(xm):
        if not one and layer.name not in vg:
            raise ValueError(f"vg names no gate voltage for crossbar layer {layer.name!r} (it names {sorted(vg)})")
        v = float(vg) if one else vg[layer.name]
        cuts[layer.name] = cut = cutoff(base, v)
        layer.spec = neat_layer_spec(base, cut) if neat else with_access(base, v)
    if neat:
        clip_weights(xm, {k: c.fraction for k, c in cuts.items()})
    program_all(xm, np.random.default_rng(rng_seed))
    return xm, cuts


def neat_train(xm: nn.Module, train, test, steps: int = 30, batch: int = 64, lr: float = 3e-4,
               regen_every: int = 10, seed: int = 0, rng_seed: int = 0) -> list[dict]:
    """Re-train ``xm`` (from ``apply(..., neat=True)``) in place with the crossbar forward pass, the weights
    clipped to their W_cut after every step (each layer's largest |weight| at the start: ``apply`` clipped them
    to it, so no cut-off is passed in); FCMs rebuilt every ``regen_every`` steps.
    ``seed`` draws the mini-batches (``batch`` samples with replacement per step); ``rng_seed`` is the chip
    instance, the one ``apply`` programmed (pass the same value): every rebuild reprograms that instance.
    Returns the history [{step, accuracy_crossbar, loss}] (test accuracy at the start and the end)."""
    RetrainSettings(steps=steps, batch=batch, lr=lr, regen_every=regen_every, eval_every=regen_every, seed=seed)
    if isinstance(rng_seed, bool) or not isinstance(rng_seed, int) or not 0 <= rng_seed < 2**63:
        raise ValueError(f"rng_seed must be an integer >= 0 and < 2**63, got {rng_seed!r}")
    train, test = train.check("train"), test.check("test")
    wcut = {layer.name: float(layer.weight.detach().abs().max()) for layer in crossbar_layers(xm)}
    set_straight_through(xm, True)
    opt = torch.optim.Adam([p for p in xm.parameters() if p.requires_grad], lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    xt, yt = torch.as_tensor(train.x), torch.as_tensor(train.y)
    hist = [{"step": 0, "accuracy_crossbar": accuracy(xm, test.x, test.y), "loss": float("nan")}]
    losses = []
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(yt), (batch,), generator=g)
        xm.train()
        opt.zero_grad()
        loss = loss_fn(xm(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
        with torch.no_grad():
            for layer in crossbar_layers(xm):
                layer.weight.clamp_(-wcut[layer.name], wcut[layer.name])
        losses.append(float(loss.detach()))
        if step % regen_every == 0 or step == steps:
            program_all(xm, np.random.default_rng(rng_seed))
    set_straight_through(xm, False)
    xm.eval()
    hist.append({"step": steps, "accuracy_crossbar": accuracy(xm, test.x, test.y),
                 "loss": float(np.mean(losses)) if losses else float("nan")})
    return hist


def choose_vg(model: nn.Module, base: CrossbarSpec, data, candidates, budget: float = 0.01) -> dict:
    """V_G per layer: all layers start at the highest candidate; layer by layer, the lowest candidate whose
    NEAT-clipped network (no re-training) stays within ``budget`` of that start's accuracy on ``data`` is kept.
    ``data``: the images the choice is made on, training images (``selection_split``), never the test split
    whose accuracy is reported: a V_G chosen there would bias that accuracy upwards."""
    cand = sorted(float(v) for v in candidates)
    if not cand:
        raise ValueError("candidates must name at least one gate voltage, got none")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 <= budget <= 1:
        raise ValueError(f"budget must be an accuracy loss in [0, 1], got {budget!r}")
    data = data.check("data")
    xm, _ = apply(model, base, cand[-1], True)
    ref = accuracy(xm, data.x, data.y)
    vg = {layer.name: cand[-1] for layer in crossbar_layers(xm)}
    for name in list(vg):
        for v in cand[:-1]:
            trial = {**vg, name: v}
            xm, _ = apply(model, base, trial, True)
            if accuracy(xm, data.x, data.y) >= ref - budget:
                vg = trial
                break
    return vg


def selection_split(train, n: int):
    """At most n images of the training split, evenly spaced over it (as the calibration batch,
    ``fcm.calibration._evenly``): what ``choose_vg`` chooses on."""
    from xbarlab.fcm.calibration import _evenly

    idx = _evenly(np.arange(len(train.y)), int(n))
    return type(train)(train.x[idx], train.y[idx])
