"""The program of a .pt2 (``models/<m>.json``) can hold code torch would run: refused (``dnn_eval.pt2_graph``).

Each hostile program is a real export with one part of its JSON rewritten, carrying a harmless
marker command (``touch MARKER``); loading must raise ValueError naming what was refused and
leave no marker. Plain exports of every network the package builds, with a fixed and with a
dynamic batch, must still load.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

import hostile_files as hf  # noqa: E402

from dnn_eval.loading import WEIGHTS_DIR, load_model  # noqa: E402
from dnn_eval.models import SHAPES, TRAINED, build_model  # noqa: E402
from dnn_eval.pt2_graph import check_program, expr_ok  # noqa: E402

SRC = WEIGHTS_DIR / "convnet.pt2"


def _rewrite(dst, edit):
    """SRC with its models/model.json replaced by ``edit(program)``'s result."""
    ents = hf.pt2_entries(SRC)
    i = hf._find(ents, "models/model.json")
    prog = json.loads(ents[i].raw)
    edit(prog)
    ents[i] = hf.Entry.stored(ents[i].name, json.dumps(prog).encode())
    return hf.write_zip(dst, ents)


def _nodes(prog):
    return prog["graph_module"]["graph"]["nodes"]


def _touch(marker) -> str:
    return f"__import__('os').system('touch {marker}')"


def _first_node_target(target):
    def edit(prog):
        _nodes(prog)[0]["target"] = target
    return edit


HOSTILE = {
    "guards_code exec": (lambda m: lambda p: p.update(guards_code=[f"{_touch(m)} == 0"]), "guards_code"),
    "import through custom_ops": (
        lambda m: _first_node_target("torch.export.custom_ops._call_custom_autograd_function_in_pre_dispatch"),
        "not an ATen operator"),
    "os.system as target": (lambda m: _first_node_target("torch.os.system"), "not an ATen operator"),
    "aten.from_file": (lambda m: _first_node_target("torch.ops.aten.from_file.default"), "'from_file'"),
    "unknown aten op": (lambda m: _first_node_target("torch.ops.aten.no_such_op.default"), "of this torch"),
    "attribute of the aten namespace": (lambda m: _first_node_target("torch.ops.aten.name.default"), "of this torch"),
    "method of the aten namespace": (lambda m: _first_node_target("torch.ops.aten.__init__.default"), "of this torch"),
    "sympify eval": (lambda m: lambda p: next(iter(p["graph_module"]["graph"]["tensor_values"].values()))["sizes"]
                     [0].update(as_expr={"expr_str": _touch(m), "hint": {"as_int": 2}}), "size expression"),
    "code in a node name": (lambda m: lambda p: _nodes(p)[0].update(name=f"x = {_touch(m)}"), "not an identifier"),
    "carriage return in a stack trace": (
        lambda m: lambda p: _nodes(p)[0]["metadata"].update(stack_trace=f'File "a.py", line 1, in f\n  x\r{_touch(m)}'),
        "carriage return"),
    "operator-valued argument": (lambda m: lambda p: _nodes(p)[0]["inputs"][0].update(
        arg={"as_operator": "torch.os.system"}), "operator-valued"),
    "subgraph": (lambda m: lambda p: _nodes(p)[0]["inputs"][0].update(arg={"as_graph": {}}), "subgraph"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_program_refused_and_nothing_runs(tmp_path, case):
    make, msg = HOSTILE[case]
    marker = tmp_path / "MARKER"
    path = _rewrite(tmp_path / "m.pt2", make(marker))
    with pytest.raises(ValueError, match=msg):
        load_model(str(path))
    assert not marker.exists()


def test_control_rewrite_still_loads(tmp_path):
    lm = load_model(str(_rewrite(tmp_path / "m.pt2", lambda p: None)))
    assert lm.module(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def _program(net, x, dynamic: bool):
    import io
    import zipfile

    ds = ({0: torch.export.Dim("batch")},) if dynamic else None
    buf = io.BytesIO()
    torch.export.save(torch.export.export(net.eval(), (x,), dynamic_shapes=ds), buf)
    with zipfile.ZipFile(buf) as z:
        return json.loads(z.read(next(n for n in z.namelist() if "/models/" in n)))


@pytest.mark.parametrize("dynamic", [False, True])
def test_plain_exports_of_every_network_pass(dynamic):
    def refuse(why):
        raise AssertionError(why)

    shapes = {"resnet18": (3, 32, 32)}
    for name in dict.fromkeys(TRAINED + SHAPES):
        shape = shapes.get(name, (1, 28, 28) if name.startswith("vgg") else (1, 8, 8))
        net = build_model(name, shape, 10)
        check_program(_program(net, torch.rand((2,) + shape), dynamic), refuse)

    class SymSize(torch.nn.Module):  # x.view(x.size(0), -1) and arithmetic on the batch size
        def forward(self, x):
            return x.reshape(x.size(0) * x.size(1), -1).view(x.size(0), -1)
    prog = _program(SymSize(), torch.rand(4, 3, 2), dynamic)
    assert ("_operator.mul" in {n["target"] for n in _nodes(prog)}) is dynamic
    check_program(prog, refuse)


@pytest.mark.parametrize("text", ["Symbol('s77', positive=True, integer=True)", "s77", "Float('1.5', precision=53)",
                                  "Mul(Integer(3), Symbol('s77', positive=True, integer=True))", "2*s0 + 1", "Max(1, s0)",
                                  "FloorDiv(s0, 2) - Mod(s1, 3)", "Eq(s0, 4)", "-s0 <= 3", "oo", "s0**2"])
def test_size_expressions_torch_writes_pass(text):
    assert expr_ok(text)


@pytest.mark.parametrize("text", ["__import__('os')", "s0.__class__", "Symbol('__import__')", "eval('1')",
                                  "[s0]", "lambda: 1", "Symbol('s0', evaluate=print)", "f(s0)", "'s0'",
                                  "Max(s0)(1)", "s0 if s0 else 1", "x" * 5000, "s0 +",
                                  "Float('1e5', precision=print)", "Float('__import__')", "Symbol('s0', precision=3)"])
def test_other_size_expressions_refused(text):
    assert not expr_ok(text)


def test_torch_load_failure_is_one_line_with_its_cause(tmp_path, capfd):
    """A weight record shorter than its tensor: torch.export.load logs the failure with a traceback and
    raises "check the warnings above"; the CLI prints one line that carries torch's own cause."""
    from xbarlab.cli import main

    ents = hf.pt2_entries(SRC)
    i = next(k for k, e in enumerate(ents) if e.name.endswith(b"data/weights/weight_0"))
    ents[i] = hf.Entry.stored(ents[i].name, b"\0" * 100)
    path = hf.write_zip(tmp_path / "short.pt2", ents)
    assert main(["dnn-eval", str(path), "--limit", "5"]) != 0
    err = capfd.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "torch.export.load failed" in lines[0] and "out of bounds for storage of size 100" in lines[0]
