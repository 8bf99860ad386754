"""How much memory running a loaded ``torch.export`` program may take: bounded before anything runs.

``dnn_eval.pt2_graph`` lets only plain ATen operators through, but a plain
operator can still allocate what the file asks for: ``aten.full([1 << 40])``,
``aten.zeros`` / ``ones`` / ``empty`` / ``new_full`` of any size, an
``arange`` to a huge end, a ``repeat`` or an ``expand`` chain (materialized
by the next op) whose output is huge, a convolution with a huge padding.
``check_fits`` runs the program on a check batch right after loading, so
``check_memory`` sizes every node first, without allocating:

* the output each node *declares* (``node.meta['val']``, from the file's
  ``tensor_meta``), where its sizes are plain integers;
* the output each node *computes*: the whole graph is run under
  ``FakeTensorMode`` (tensors with shapes and dtypes but no storage) on a
  concrete input of the batch that will really run, so literal size
  arguments, symbolic sizes and a lying ``tensor_meta`` all resolve to the
  shapes the real run would produce. Fake kernels may not fall back to real
  ones; an op that cannot be sized this way (no meta kernel, or an output
  whose size depends on the data, like ``nonzero``) is refused.

A node's output may hold at most ``state + batch * MAX_ACTIVATION_BYTES_PER_SAMPLE``
bytes (``state``: the bytes of the program's weights, buffers and constants,
which an op on a weight may copy), and the outputs alive at once (each freed
after its last use, as ``GraphModule`` does) at most
``state + batch * MAX_LIVE_BYTES_PER_SAMPLE``. A program with a dynamic batch
is checked at each batch ``dnn_eval.loading`` names (``DYNAMIC_CHECK_BATCHES``): sizes that grow with the
batch peak at the largest, but a size expression that is not increasing in it (one with ``%``) is only
checked at those batches.
"""

from __future__ import annotations

import math

MiB = 1 << 20
#: bytes one sample's activation may take in one node's output. A ResNet-18 or ResNet-50 on 224x224 images peaks
#: at 64x112x112 (the stem) or 256x56x56 float32: 3.06 MiB; VGG-16's first blocks on 224x224, 64x224x224: 12.25 MiB.
MAX_ACTIVATION_BYTES_PER_SAMPLE = 16 * MiB
#: bytes of one sample's activations alive at once (ResNet-50 on 224x224: about 9.2 MiB, in a bottleneck's add)
MAX_LIVE_BYTES_PER_SAMPLE = 64 * MiB


class _Refused(Exception):
    pass


def _tensors(value):
    from torch.utils._pytree import tree_leaves

    import torch

    return [t for t in tree_leaves(value) if isinstance(t, torch.Tensor)]


def _size_text(t) -> tuple[str, int | None, int | None]:
    """(shape text, elements, bytes: those of its storage, a view's whole base); elements and bytes are None
    for a symbolic shape."""
    try:
        shape = list(t.shape)
    except Exception:  # noqa: BLE001 - a shape torch cannot even list
        return "(unreadable shape)", None, None
    text = "[" + ", ".join(str(d) for d in shape) + f"] {str(t.dtype).replace('torch.', '')}"
    if not all(type(d) is int for d in shape):
        return text, None, None
    n = math.prod(shape)
    try:  # (strides can ask for more storage than the shape: empty_strided([2], [1 << 40]))
        storage = t.untyped_storage().nbytes()
    except Exception:  # noqa: BLE001 - no storage to read: the shape's bytes
        storage = 0
    if type(storage) is not int or storage <= n * t.dtype.itemsize:
        return text, n, n * t.dtype.itemsize
    return text + f" (strides needing a storage of {storage} bytes)", n, storage


def _node_text(node) -> str:
    return f"node {node.name!r} ({node.target if node.op == 'call_function' else node.op})"


def _check_size(node, value, cap: int, what: str) -> None:
    """_Refused when one of ``value``'s tensors (a node's output) takes over ``cap`` bytes."""
    for t in _tensors(value):
        text, n, nbytes = _size_text(t)
        if nbytes is not None and nbytes > cap:  # (a declared symbolic size: the computed pass sizes it)
            raise _Refused(f"{_node_text(node)} {what} a tensor of {text}: {n} elements, {nbytes} bytes, "
                           f"over the cap of {cap} bytes")


def _storages(value) -> dict:
    """{storage key: bytes} of ``value``'s tensors: views of one tensor share its storage, counted once."""
    from torch.multiprocessing.reductions import StorageWeakRef

    out = {}
    for t in _tensors(value):
        st = t.untyped_storage()
        out[StorageWeakRef(st).cdata] = st.nbytes()
    return out


def state_bytes(ep) -> int:
    """Bytes of the program's weights, buffers and constants (already in memory once loaded)."""
    import torch

    seen = list(ep.state_dict.values()) + list(ep.constants.values())
    return sum(t.numel() * t.element_size() for t in seen if isinstance(t, torch.Tensor))


def _inputs(ep, mode, in_shape, batch: int):
    """Fake tensors for the graph's placeholders, in order: weights from the loaded ones, the input of ``batch``."""
    import torch

    args = []
    for spec in ep.graph_signature.input_specs:
        kind = spec.kind.name
        if kind == "USER_INPUT":
            with mode:
                args.append(torch.empty((batch,) + tuple(in_shape)))
            continue
        real = ep.state_dict.get(spec.target) if kind in ("PARAMETER", "BUFFER") else None
        if real is None:
            real = ep.constants.get(spec.target)
        if not isinstance(real, torch.Tensor):
            raise _Refused(f"the graph input {spec.arg.name!r} ({kind}) is not a tensor the program holds")
        args.append(mode.from_tensor(real))
    return args


def _last_uses(graph) -> dict:
    """node -> the nodes whose value is dead once it has run."""
    last: dict = {}
    for node in graph.nodes:
        for inp in node.all_input_nodes:
            last[inp] = node
    dead: dict = {}
    for inp, user in last.items():
        dead.setdefault(user, []).append(inp)
    return dead


def _run_fake(ep, in_shape, batch: int, state: int) -> None:
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode

    node_cap = state + batch * MAX_ACTIVATION_BYTES_PER_SAMPLE
    live_cap = state + batch * MAX_LIVE_BYTES_PER_SAMPLE
    mode = FakeTensorMode(allow_fallback_kernels=False, allow_non_fake_inputs=False)
    placeholders = [n for n in ep.graph.nodes if n.op == "placeholder"]
    args = _inputs(ep, mode, in_shape, batch)
    if len(args) != len(placeholders):
        raise _Refused(f"the graph has {len(placeholders)} inputs, its signature {len(args)}")
    env = dict(zip(placeholders, args))
    held = {k for a in args for k in _storages(a)}  # (weights and input: in memory already, in the cap's state)
    refs: dict = {}  # storage key -> [bytes, how many live node values use it]
    dead = _last_uses(ep.graph)
    live = 0
    for node in ep.graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            break
        if node.op != "call_function":
            raise _Refused(f"{_node_text(node)} is not an operator call")
        fargs, fkwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: env[n])
        try:
            with mode:
                out = node.target(*fargs, **fkwargs)
        except Exception as exc:  # noqa: BLE001 - an op that cannot be sized without running it for real
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            raise _Refused(f"{_node_text(node)} cannot be sized without running it "
                           f"({type(exc).__name__}: {first})") from None
        _check_size(node, out, node_cap, f"at batch {batch} would output")
        env[node] = out
        for key, nbytes in _storages(out).items():
            if key not in held:
                ref = refs.setdefault(key, [nbytes, 0])
                live += nbytes if ref[1] == 0 else 0
                ref[1] += 1
        if live > live_cap:
            raise _Refused(f"at {_node_text(node)}, at batch {batch}, the outputs alive at once would take "
                           f"{live} bytes, over the cap of {live_cap} bytes")
        for gone in dead.get(node, ()):
            for key in _storages(env.pop(gone, None)):
                if key in refs:
                    refs[key][1] -= 1
                    if refs[key][1] == 0:
                        live -= refs.pop(key)[0]


def check_memory(ep, in_shape, batches) -> None:
    """ValueError naming the node when running ``ep`` on (batch, *in_shape) inputs, for each of ``batches``,
    could allocate over the caps of the module docstring."""
    state = 0
    try:
        state = state_bytes(ep)
        declared_cap = state + max(batches) * MAX_ACTIVATION_BYTES_PER_SAMPLE
        for node in ep.graph.nodes:
            _check_size(node, node.meta.get("val"), declared_cap, "declares")
        for batch in batches:
            _run_fake(ep, in_shape, batch, state)
    except _Refused as exc:
        raise ValueError(f"{exc} (model state {state} bytes, MAX_ACTIVATION_BYTES_PER_SAMPLE "
                         f"{MAX_ACTIVATION_BYTES_PER_SAMPLE}, MAX_LIVE_BYTES_PER_SAMPLE "
                         f"{MAX_LIVE_BYTES_PER_SAMPLE}); refused") from None
