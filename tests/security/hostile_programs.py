"""Crafted .pt2 programs of plain ATen ops that ask for huge memory when run (``dnn_eval.pt2_memory``).

Each is a real ``torch.export`` of a tiny network on (2, 1, 8, 8) images (fixed batch 2, 10 classes;
exporting traces with fake tensors, so building one allocates nothing big), with one node's literal size
argument rewritten in ``models/model.json``, and, with ``declare``, its ``tensor_meta`` too (an honest
declaration); without, the metadata still says the small size (a lie only running the op would expose).
The sizes chosen are far beyond what a machine can allocate, so even an unchecked load fails fast
(torch refuses the allocation) rather than taking the machine; the caller runs it under
``child_loader.guard_memory`` anyway.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import torch

import hostile_files as hf

HUGE = 1 << 40  # elements: 4 TiB of float32, 8 TiB of int64


class _Full(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10] + torch.full([10], 1.0)


class _Arange(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10] + torch.arange(10)


class _Expand(torch.nn.Module):  # a view, then materialized by the mul
    def forward(self, x):
        return (x.flatten(1)[:, :10].unsqueeze(-1).expand(2, 10, 3) * 2).sum(-1)


class _Repeat(torch.nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10].repeat(1, 2)[:, :10]


class _EmptyStrided(torch.nn.Module):  # small sizes, strides that need a huge storage
    def forward(self, x):
        return x.flatten(1)[:, :10] + torch.empty_strided((2, 10), (10, 1)).zero_()


class _ManyAlive(torch.nn.Module):
    """``count`` outputs of ``per_node`` bytes each, all alive until the end (each under the node cap)."""

    def __init__(self, per_node: int, count: int) -> None:
        super().__init__()
        self.n, self.count = per_node // 8, count

    def forward(self, x):
        ts = [x.new_full((2, self.n), float(i)) for i in range(self.count)]
        return x.flatten(1)[:, :10] + sum(t[:, :10] for t in ts)


# op -> (network, the node's name, its size argument, the huge value of that argument)
OPS = {
    "full": (_Full, "full", "size", [HUGE]),
    "arange": (_Arange, "arange", "end", HUGE),
    "expand": (_Expand, "expand", "size", [2, 10, HUGE]),
    "repeat": (_Repeat, "repeat", "repeats", [1, HUGE]),
    "empty_strided": (_EmptyStrided, "empty_strided", "stride", [HUGE, 1]),
}


def export_buffer(net, batch: int = 2) -> io.BytesIO:
    """``net`` exported on (batch, 1, 8, 8) images, as the bytes of a .pt2 (at position 0)."""
    buf = io.BytesIO()
    torch.export.save(torch.export.export(net.eval(), (torch.rand(batch, 1, 8, 8),)), buf)
    buf.seek(0)
    return buf


def export_bytes(net, batch: int = 2) -> bytes:
    return export_buffer(net, batch).getvalue()


def _write(data: bytes, dst, edit=None) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        ents = [hf.Entry.stored(n, zf.read(n)) for n in zf.namelist()]
    if edit is not None:
        i = hf._find(ents, "models/model.json")
        prog = json.loads(ents[i].raw)
        edit(prog)
        ents[i] = hf.Entry.stored(ents[i].name, json.dumps(prog).encode())
    return hf.write_zip(dst, ents)


def huge_op(op: str, dst, declare: bool = False) -> Path:
    """A program whose node ``op`` is given the size argument ``OPS[op][3]`` (see the module)."""
    net, node_name, arg_name, value = OPS[op]

    def edit(prog):
        graph = prog["graph_module"]["graph"]
        node = next(n for n in graph["nodes"] if n["outputs"][0].get("as_tensor", {}).get("name") == node_name)
        arg = next(a for a in node["inputs"] if a["name"] == arg_name)
        arg["arg"] = {"as_ints": value} if isinstance(value, list) else {"as_int": value}
        meta = graph["tensor_values"][node_name]
        if declare and arg_name == "stride":
            meta["strides"] = [{"as_int": s} for s in value]
        elif declare:
            sizes = value if isinstance(value, list) else [value]
            meta["sizes"] = [{"as_int": s} for s in sizes]
            strides = [1] * len(sizes)
            for k in range(len(sizes) - 2, -1, -1):
                strides[k] = strides[k + 1] * sizes[k + 1]
            meta["strides"] = [{"as_int": s} for s in strides]

    return _write(export_bytes(net()), dst, edit)


def many_alive(dst, per_node: int, count: int) -> Path:
    """A program of ``count`` float32 outputs of ``per_node`` bytes alive at once (no rewriting needed)."""
    return _write(export_bytes(_ManyAlive(per_node, count)), dst)
