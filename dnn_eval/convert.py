"""Networks converted to crossbar layers: ``to_crossbar``, ``program_all``, ``set_straight_through``.

Networks come in two forms:

* an ``nn.Module`` (bundled architectures): each ``nn.Linear`` /
  ``nn.Conv2d`` submodule is replaced by a ``CrossbarLinear`` /
  ``CrossbarConv2d`` (``dnn_eval.layers``);
* a ``torch.export`` program: ``ExportedProgram.module()`` gives a
  ``GraphModule`` whose graph calls ``aten.linear`` / ``aten.conv2d`` /
  ``aten.convolution`` with the weights as ``get_attr`` nodes. Each such
  node is rewritten into a ``call_module`` of a crossbar layer (the graph
  keeps its shape guards), then the module is recompiled. Tested with
  torch 2.13 (``torch.export.export``'s default IR, not decomposed to
  ``addmm``, whose ops stay digital).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import nn

from xbarlab.fcm import FCMOptions
from xbarlab.fcm.slicing import Slicing
from xbarlab.spec import CrossbarSpec

from .layers import ConvGeometry, CrossbarConv2d, CrossbarLayer, CrossbarLinear

_LINEAR = ("aten.linear.default",)
_CONV = ("aten.conv2d.default", "aten.conv2d.padding", "aten.convolution.default")


def _aten_pair(v, default):
    """An aten int[] argument (None, an int, or a list of one or two) as a pair."""
    if v is None:
        return default
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return (int(v[0]), int(v[-1]))


def _swap_modules(model: nn.Module, spec, options, slicing=None) -> list[CrossbarLayer]:
    layers = []
    for name, m in list(model.named_modules()):
        for cname, child in list(m.named_children()):
            full = f"{name}.{cname}" if name else cname
            if isinstance(child, nn.Linear):
                layer = CrossbarLinear(child.weight, child.bias, spec, options, full, slicing)
            elif isinstance(child, nn.Conv2d):
                layer = CrossbarConv2d(child.weight, child.bias, spec, ConvGeometry.of(child), options, full, slicing)
            else:
                continue
            setattr(m, cname, layer)
            layers.append(layer)
    return layers


def _attr(gm, node):
    if node is None:
        return None
    if getattr(node, "op", None) != "get_attr":
        raise ValueError(f"crossbar mapping needs constant weights; {node} is computed in the graph")
    obj = gm
    for part in node.target.split("."):
        obj = getattr(obj, part)
    return obj


def _graph_layer(gm, node, spec, options, slicing=None) -> tuple[CrossbarLayer | None, object]:
    """The crossbar layer replacing an aten linear/conv node, and the node's input (None: stays digital)."""
    target = str(node.target)
    a = list(node.args) + [None] * 9
    x, w = a[0], _attr(gm, a[1])
    b = _attr(gm, a[2] if a[2] is not None else node.kwargs.get("bias"))
    if target in _LINEAR:
        return CrossbarLinear(w, b, spec, options, node.name, slicing), x
    if target == "aten.convolution.default":
        if a[6]:  # transposed
            return None, x
        stride, padding, dilation, groups = a[3], a[4], a[5], a[8]
    else:
        stride, padding, dilation, groups = a[3], a[4], a[5], a[6]
    if w.dim() != 4:  # not 2-D
        return None, x
    geo = ConvGeometry(tuple(w.shape[-2:]), _aten_pair(stride, (1, 1)),
                       padding if isinstance(padding, str) else _aten_pair(padding, (0, 0)),
                       _aten_pair(dilation, (1, 1)), int(groups or 1))
    return CrossbarConv2d(w, b, spec, geo, options, node.name, slicing), x


def _rewrite_graph(gm: torch.fx.GraphModule, spec, options, slicing=None) -> list[CrossbarLayer]:
    layers = []
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or str(node.target) not in _LINEAR + _CONV:
            continue
        layer, x = _graph_layer(gm, node, spec, options, slicing)
        if layer is None:
            continue
        mod_name = f"xbar_{len(layers)}_{node.name}"
        gm.add_module(mod_name, layer)
        with gm.graph.inserting_before(node):
            new = gm.graph.call_module(mod_name, (x,))
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        layers.append(layer)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return layers


def crossbar_layers(model: nn.Module) -> list[CrossbarLayer]:
    """The crossbar layers of a converted model, in registration order."""
    return [m for m in model.modules() if isinstance(m, CrossbarLayer)]


def to_crossbar(model: nn.Module, spec: CrossbarSpec, rng: np.random.Generator | None,
                options: FCMOptions | None = None, program: bool = True, slicing: Slicing | None = None) -> nn.Module:
    """A copy of ``model`` whose Linear/Conv2d layers run on crossbars of ``spec``.

    ``rng`` draws the hardware instance (variation, faults), layer by layer
    in order; it may be None for a device without variation or faults.
    ``slicing`` (``xbarlab.fcm.slicing.Slicing``): weight slices and bit-serial
    inputs; None is one device per weight and all input bits in one cycle.
    """
    if not isinstance(spec, CrossbarSpec):
        raise ValueError(f"spec must be a CrossbarSpec, got {type(spec).__name__}")
    with warnings.catch_warnings():  # torch 2.13 warns about its own pytree internals when copying a GraphModule
        warnings.simplefilter("ignore", FutureWarning)
        m = copy.deepcopy(model)
    if isinstance(m, torch.fx.GraphModule) and any(
            n.op == "call_function" and str(n.target) in _LINEAR + _CONV for n in m.graph.nodes):
        layers = _rewrite_graph(m, spec, options, slicing)
    else:
        layers = _swap_modules(m, spec, options, slicing)
    if not layers:
        raise ValueError("the model has no Linear or Conv2d layer to map onto crossbars")
    if program:
        for layer in layers:
            layer.program(rng)
    return m.eval()


def program_all(model: nn.Module, rng: np.random.Generator | None) -> None:
    """(Re)build every crossbar layer's FCMs from its current weights."""
    for layer in crossbar_layers(model):
        layer.program(rng)


def set_straight_through(model: nn.Module, on: bool = True) -> None:
    """Turn re-training's straight-through gradient on (or off) in every crossbar layer."""
    for layer in crossbar_layers(model):
        layer.straight_through = on


def count_tiles(model: nn.Module) -> int:
    return sum(layer.n_tiles for layer in crossbar_layers(model))
