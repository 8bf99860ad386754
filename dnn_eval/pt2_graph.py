"""What the program of a ``torch.export`` archive (``models/<m>.json``) may ask of the machine loading it.

``dnn_eval.pt2_check`` makes sure nothing is unpickled; this module checks the
program itself, because ``torch.export.load`` and ``ExportedProgram.module()``
turn parts of it into live Python:

* every node's ``target`` is resolved by attribute lookup from ``torch``,
  ``operator`` or ``math`` (``torch.export.custom_ops...`` imports a module the
  file names and calls it), and the graph is then run;
* ``guards_code`` strings are pasted into a function that is ``exec``-ed;
* every ``expr_str`` (symbolic sizes) goes through ``sympy.sympify``, which
  ``eval``-s its string;
* node and argument names and stack traces become generated FX code.

So a program passes only when it is a plain graph of ATen operators:

* each node's target is ``torch.ops.aten.<op>.<overload>`` (an op that exists),
  ``_operator.getitem`` or one of the symbolic-size helpers (``_operator.mul``,
  ``torch.sym_max``, ``math.ceil`` ...); ATen ops that read or write files,
  reach raw storage or skip bounds checks (``DENIED_OPS``) are refused;
* no ``guards_code``, no custom objects, no subgraphs, no operator-valued
  arguments;
* every ``expr_str`` parses (Python's ``ast``) into integers, size symbols
  (``s77``, ``Symbol('s77', positive=True, integer=True)``), arithmetic,
  comparisons and the sympy functions torch writes (``SYMPY_FUNCTIONS``);
* names are identifiers (dotted for parameter and module paths) and stack
  traces have no carriage return.

``torch.export.save`` of a network of Linear/Conv2d/pooling/activation layers,
with or without a dynamic batch dimension, writes only what passes.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DOTTED = re.compile(r"(?:[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)?")
SYMBOL = re.compile(r"[a-z]{1,4}[0-9]+")
ATEN = re.compile(r"torch\.ops\.aten\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)")
#: the non-ATen targets torch.export writes for symbolic sizes and tuple outputs
OTHER_TARGETS = frozenset(
    [f"_operator.{n}" for n in ("getitem", "add", "sub", "mul", "floordiv", "truediv", "mod", "pow", "neg", "pos",
                                "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_", "abs")]
    + [f"torch.sym_{n}" for n in ("int", "float", "max", "min", "not", "ite", "sqrt", "sum")]
    + [f"math.{n}" for n in ("ceil", "floor", "trunc")])
#: ATen ops refused by name: files, raw storage, global state, unchecked indexing, printing
DENIED_OPS = frozenset({"from_file", "save", "load", "_print", "set", "set_", "set_data", "manual_seed", "seed",
                        "set_grad_enabled", "_cufft_set_plan_cache_max_size", "_set_item", "_unsafe_view",
                        "_unsafe_index", "_unsafe_index_put", "_unsafe_masked_index",
                        "_unsafe_masked_index_put_accumulate", "_sparse_coo_tensor_unsafe",
                        "_sparse_csr_tensor_unsafe", "_sparse_csc_tensor_unsafe", "_sparse_bsr_tensor_unsafe",
                        "_sparse_bsc_tensor_unsafe", "_sparse_compressed_tensor_unsafe"})
#: the sympy names a size expression may call or name
SYMPY_FUNCTIONS = frozenset({
    "Symbol", "Integer", "Rational", "Max", "Min", "FloorDiv", "Mod", "PythonMod", "ModularIndexing", "CleanDiv",
    "CeilDiv", "CeilToInt", "FloorToInt", "TruncToInt", "RoundToInt", "IntTrueDiv", "FloatTrueDiv", "ToFloat",
    "PowByNatural", "FloatPow", "Abs", "Eq", "Ne", "Ge", "Gt", "Le", "Lt", "And", "Or", "Not", "Identity",
    "Add", "Mul", "Pow", "Float", "Equality", "Unequality", "LessThan", "StrictLessThan", "GreaterThan",
    "StrictGreaterThan", "BooleanTrue", "BooleanFalse", "true", "false", "oo", "zoo", "nan", "True", "False"})
#: keyword arguments of Symbol(...) (assumptions, booleans) and Float(...) (precision, an integer)
SYMBOL_KEYWORDS = frozenset({"positive", "integer", "real", "nonnegative", "finite", "extended_real"})
NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]*)?(?:e[-+]?[0-9]+)?")
_AST_OK = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Call, ast.Name, ast.Constant,
           ast.Load, ast.keyword, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.USub,
           ast.UAdd, ast.Not, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.And, ast.Or)
#: argument kinds that carry code or objects rather than data
_REFUSED_KEYS = {"as_graph": "a subgraph (higher-order op)", "as_custom_obj": "a custom object",
                 "as_operator": "an operator-valued argument"}
_NAME_KEYS = {"name", "as_name"}
_DOTTED_KEYS = {"parameter_name", "buffer_name", "tensor_constant_name", "custom_obj_name", "fqn"}
MAX_EXPR_CHARS = 4096


def expr_ok(text: str) -> bool:
    """Whether a symbolic-size string is arithmetic over integers and size symbols only (see the module)."""
    if not isinstance(text, str) or len(text) > MAX_EXPR_CHARS:
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, _AST_OK):
            return False
        if isinstance(node, ast.Name) and node.id not in SYMPY_FUNCTIONS and not SYMBOL.fullmatch(node.id):
            return False
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str)):
            return False
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in SYMPY_FUNCTIONS:
                return False
            for k in node.keywords:
                v = k.value.value if isinstance(k.value, ast.Constant) else None
                if not ((k.arg in SYMBOL_KEYWORDS and isinstance(v, bool))
                        or (k.arg == "precision" and type(v) is int and node.func.id == "Float")):
                    return False
    # strings: only a Symbol's name (a size symbol) or a Float's digits
    allowed = {}
    for c in ast.walk(tree):
        if isinstance(c, ast.Call) and c.func.id in ("Symbol", "Float") and len(c.args) == 1:
            allowed[id(c.args[0])] = SYMBOL if c.func.id == "Symbol" else NUMBER
    return all(id(n) in allowed and allowed[id(n)].fullmatch(n.value) for n in ast.walk(tree)
               if isinstance(n, ast.Constant) and isinstance(n.value, str))


def target_ok(target) -> str | None:
    """None when a node target may run, else why not."""
    if not isinstance(target, str):
        return f"a node target that is not a name ({type(target).__name__})"
    if target in OTHER_TARGETS:
        return None
    m = ATEN.fullmatch(target)
    if m is None:
        return f"the node target {target[:120]!r} is not an ATen operator"
    if m.group(1) in DENIED_OPS:
        return f"the ATen operator {m.group(1)!r} (files, raw storage or unchecked indexing) is not allowed"
    import torch

    packet = getattr(torch.ops.aten, m.group(1), None)  # (also attributes of the namespace: name, __dict__ ...)
    if not isinstance(packet, torch._ops.OpOverloadPacket) or m.group(2) not in packet.overloads():
        return f"the node target {target[:120]!r} is not an ATen operator of this torch"
    return None


def check_program(program, refuse: Callable[[str], None]) -> None:
    """Call ``refuse(why)`` (which raises) for the first thing in a parsed ``models/<m>.json`` that this
    module does not allow; return quietly for a plain ATen program."""
    if not isinstance(program, dict):
        refuse("the program is not a JSON object")
    if program.get("guards_code"):
        refuse("the program carries guards_code (Python that torch would exec)")
    stack = [program]
    while stack:
        o = stack.pop()
        if isinstance(o, list):
            stack.extend(o)
            continue
        if not isinstance(o, dict):
            continue
        if "target" in o and "inputs" in o:
            why = target_ok(o["target"])
            if why:
                refuse(why)
        for k, v in o.items():
            if k in _REFUSED_KEYS:
                refuse(f"the program holds {_REFUSED_KEYS[k]}")
            if k == "custom_obj_values" and v:
                refuse("the program holds custom objects")
            if k == "expr_str" and not expr_ok(v):
                refuse(f"the size expression {str(v)[:120]!r} is not plain arithmetic over size symbols")
            if k in _NAME_KEYS and not (isinstance(v, str) and IDENT.fullmatch(v)):
                refuse(f"the name {str(v)[:120]!r} is not an identifier")
            if k in _DOTTED_KEYS and not (isinstance(v, str) and DOTTED.fullmatch(v)):
                refuse(f"the module path {str(v)[:120]!r} is not a dotted name")
            if k == "forward_arg_names" and not (isinstance(v, list) and
                                                 all(isinstance(a, str) and IDENT.fullmatch(a) for a in v)):
                refuse("forward_arg_names are not identifiers")
            if k == "stack_trace" and isinstance(v, str) and "\r" in v:
                refuse("a stack trace holds a carriage return (it would end a line of generated code)")
            if isinstance(v, (dict, list)):
                stack.append(v)
