"""Load a user's network without ever unpickling arbitrary objects.

Two formats are accepted, told apart by their content, not their name:

* a ``torch.export`` archive (``.pt2``, written by ``torch.export.save``).
  Before ``torch.export.load`` sees the file, its zip structure is checked
  the way torch's own reader parses it (``dnn_eval.archive``: unique names
  even ignoring case, stored entries only, no header tricks, so there is
  nothing to inflate and every check reads the bytes torch will read), and
  it is checked entry by entry (``dnn_eval.pt2_check``): only the files of the plain export format are allowed (no
  compiled AOTInductor libraries, no extra files, no legacy layout), every
  weight and constant must be stored as raw tensor bytes
  (``use_pickle: false``; no custom or opaque objects), and the sample
  inputs must load with ``torch.load(weights_only=True)``. This matters
  because torch's loader itself falls back to ``weights_only=False`` (full
  unpickling) for those parts.
* a ``state_dict`` saved with ``torch.save`` (zip format) for one of the
  bundled architectures (``dnn_eval.models``), whose pickle is first
  checked (``archive.check_torch_pickle``: small, and naming only the
  globals a tensor needs; ``weights_only`` alone would still build a
  ``bytearray`` of any size), then read with
  ``torch.load(weights_only=True)``.

Anything else (a raw pickle, a truncated or corrupt file, a text file, a
zip that torch's reader and Python's could read differently) is refused
with ``ValueError`` before any unpickling starts. The file is opened once,
checked, and that open file is what torch reads.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .archive import check_torch_pickle, read_archive
from .models import MODELS, build_model, weights_file
from .pt2_check import check_pt2, is_pt2
from .pt2_memory import check_memory

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MAX_FIXED_BATCH = 1024  # a fixed-batch export runs on batches of exactly that many images (check_fits allocates one)
#: the batches a dynamic-batch export is sized at before it runs (pt2_memory): check_fits runs 2 images,
#: evaluate.predict 512 and calibration 256 per chunk, and no program runs on more than MAX_FIXED_BATCH
DYNAMIC_CHECK_BATCHES = (2, MAX_FIXED_BATCH)


@dataclass
class LoadedModel:
    """A network ready to run: ``module(x)`` maps (B, C, H, W) float32 to (B, classes).

    Attributes:
        module: the network (an ``nn.Module``; a ``GraphModule`` for .pt2).
        kind: ``"pt2"`` or ``"state_dict"``.
        arch: the bundled architecture's name, or None for .pt2.
        input_shape: (C, H, W) the model takes, or None when not known.
        fixed_batch: the batch size a fixed-batch export needs, else None.
        path: where it came from.
    """

    module: nn.Module
    kind: str
    arch: str | None
    input_shape: tuple | None
    fixed_batch: int | None
    path: str


def _open_checked(path: Path):
    """(open binary file, checked Archive); the same open file is then handed to torch."""
    if not path.is_file():
        raise ValueError(f"{path}: {'not a regular file' if path.exists() else 'no such file'}")
    f = open(path, "rb")
    try:
        head = f.read(4)
        if head[:2] == b"\x80\x02" or head[:1] == b"\x80":
            raise ValueError(f"{path}: a raw pickle is refused (only torch.export .pt2 or zip-format state_dict .pt)")
        if head != b"PK\x03\x04":
            raise ValueError(f"{path}: not a PyTorch archive (expected a torch.export .pt2 or a torch.save .pt zip)")
        return f, read_archive(f, path)
    except BaseException:
        f.close()
        raise


def check_pt2_archive(path) -> None:
    """Refuse a .pt2 whose loading could unpickle anything (see module docstring)."""
    f, archive = _open_checked(Path(path))
    with f:
        check_pt2(f, archive)


def _pt2_signature(ep) -> tuple[tuple | None, int | None]:
    """(input (C, H, W), fixed batch or None) from the program's single user input."""
    user = [s for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    if len(user) != 1:
        raise ValueError(f"the exported model must take exactly one input tensor, it takes {len(user)}")
    name = user[0].arg.name
    node = next((n for n in ep.graph.nodes if n.op == "placeholder" and n.name == name), None)
    if node is None:  # (a constant user input: an int or None in the signature)
        raise ValueError("the exported model's user input is not an input tensor of its graph (a constant)")
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor):  # (its size decides what every node allocates: pt2_memory)
        raise ValueError(f"the exported model's input {name!r} has no tensor metadata (shape and dtype)")
    shape = list(val.shape)
    if len(shape) != 4:
        raise ValueError(f"the exported model takes a tensor of rank {len(shape)}; images need (B, C, H, W)")
    dims = []
    for d in shape[1:]:
        if not isinstance(d, int):
            raise ValueError("the exported model has a dynamic channel or image dimension; export with a fixed image size")
        dims.append(int(d))
    batch = shape[0] if isinstance(shape[0], int) else None
    if batch is not None and not 1 <= batch <= MAX_FIXED_BATCH:
        raise ValueError(f"the exported model's fixed batch size {batch} is outside 1..{MAX_FIXED_BATCH}; "
                         "export with a smaller or a dynamic batch")
    return tuple(dims), batch


def load_pt2(path) -> LoadedModel:
    path = Path(path)
    f, archive = _open_checked(path)
    with f:
        return _load_pt2(f, archive, path)


def _load_pt2(f, archive, path: Path) -> LoadedModel:
    if not is_pt2(archive):
        raise ValueError(f"{path}: not a torch.export archive")
    check_pt2(f, archive)
    f.seek(0)
    try:
        with _quiet_torch_export() as caught:
            ep = torch.export.load(f)  # the very bytes just checked, from the same open file
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path}: torch.export.load failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    for w in caught:  # a file that loads keeps its warnings
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    in_shape, batch = _pt2_signature(ep)
    try:
        check_memory(ep, in_shape, (batch,) if batch else DYNAMIC_CHECK_BATCHES)  # before anything runs
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return LoadedModel(ep.module(), "pt2", None, in_shape, batch, str(path))


@contextlib.contextmanager
def _quiet_torch_export():
    """torch.export.load logs a failure with its whole traceback before raising it: while it runs, its
    loggers are held back and its warnings recorded (the caller turns a failure into one line)."""
    loggers = [logging.getLogger(n) for n in ("torch.export", "torch._export")]
    held = _Held()
    saved = [(lg.handlers, lg.propagate) for lg in loggers]
    try:
        for lg in loggers:  # (torch's logging setup gives these loggers handlers of their own)
            lg.handlers = [held]
            lg.propagate = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield caught
            except Exception as exc:  # noqa: BLE001 - torch's own cause, which it logged, joins the message
                cause = held.cause()
                raise RuntimeError(cause or f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    finally:
        for lg, (handlers, p) in zip(loggers, saved):
            lg.handlers, lg.propagate = handlers, p


class _Held(logging.Handler):
    """Log records held back; ``cause`` is the last line of the last one (its exception's message)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def cause(self) -> str:
        for r in reversed(self.records):
            if r.exc_info and r.exc_info[1] is not None:
                return f"{type(r.exc_info[1]).__name__}: {str(r.exc_info[1]).strip().splitlines()[-1][:300]}"
            text = r.getMessage().strip()
            if text:
                return text.splitlines()[-1][:300]
        return ""


def load_state_dict(path, arch: str, in_shape=(1, 8, 8), num_classes: int = 10) -> LoadedModel:
    path = Path(path)
    if arch not in MODELS:
        raise ValueError(f"arch must be one of {list(MODELS)} for a state_dict, got {arch!r}")
    f, archive = _open_checked(path)
    with f:
        return _load_state_dict(f, archive, path, arch, in_shape, num_classes)


def _load_state_dict(f, archive, path: Path, arch: str, in_shape, num_classes: int) -> LoadedModel:
    if is_pt2(archive):
        raise ValueError(f"{path}: is a torch.export archive, not a state_dict")
    check_torch_pickle(f, archive, f"{path}: not a plain state_dict")  # before weights_only unpickles it
    f.seek(0)
    try:
        with warnings.catch_warnings(record=True) as caught:  # (a TorchScript archive warns, then fails)
            warnings.simplefilter("always")
            sd = torch.load(f, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - weights_only refuses hostile globals with UnpicklingError
        raise ValueError(f"{path}: not a plain state_dict ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    for w in caught:  # a file that loads keeps its warnings
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not isinstance(sd, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in sd.items()):
        raise ValueError(f"{path}: expected a state_dict (a dict of name -> tensor)")
    model = build_model(arch, in_shape, num_classes)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: does not fit architecture {arch!r} for input shape {tuple(in_shape)}: "
                         f"{str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else exc}") from None
    return LoadedModel(model.eval(), "state_dict", arch, tuple(in_shape), None, str(path))


def load_model(model: str, in_shape=(1, 8, 8), arch: str | None = None, num_classes: int = 10) -> LoadedModel:
    """A model by bundled name (``convnet``), or a .pt2 / state_dict .pt path.

    For a state_dict, ``arch`` names the architecture; it defaults to the
    file's stem when that is a bundled name. An ``arch`` given with a .pt2 (which holds its own
    program) or with another bundled name is refused, not ignored.
    """
    p = Path(model)
    if not p.exists() and model in MODELS:
        if arch is not None and arch != model:
            raise ValueError(f"arch {arch!r} does not apply to the bundled model {model!r} (arch names the "
                             "architecture of a state_dict file)")
        if model in ("resnet18", "resnet50"):
            return LoadedModel(build_model(model, in_shape, num_classes), "random", model, tuple(in_shape), None, model)
        p = WEIGHTS_DIR / weights_file(model, in_shape)
        arch = model
    elif not p.exists():
        raise ValueError(f"{p}: no such file, and not a bundled model (one of {list(MODELS)})")
    f, archive = _open_checked(p)
    with f:
        if is_pt2(archive):
            if arch is not None:
                raise ValueError(f"{p}: is a torch.export archive (its own program); arch {arch!r} applies only "
                                 "to a state_dict")
            lm = _load_pt2(f, archive, p)
        else:
            arch = arch or (p.stem if p.stem in MODELS else None)
            if arch is None:
                raise ValueError(f"{p}: a state_dict needs --arch (one of {list(MODELS)})")
            if arch not in MODELS:
                raise ValueError(f"arch must be one of {list(MODELS)} for a state_dict, got {arch!r}")
            lm = _load_state_dict(f, archive, p, arch, in_shape, num_classes)
    check_fits(lm, in_shape, num_classes)
    return lm


def check_fits(lm: LoadedModel, in_shape, num_classes: int = 10) -> None:
    """ValueError unless the model takes (B, *in_shape) and returns (B, num_classes)."""
    if lm.input_shape is not None and tuple(lm.input_shape) != tuple(in_shape):
        raise ValueError(f"model input shape {tuple(lm.input_shape)} does not fit the data set's {tuple(in_shape)}")
    b = lm.fixed_batch or 2
    try:
        with torch.no_grad():
            out = lm.module(torch.zeros((b,) + tuple(in_shape)))
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"model does not run on inputs of shape {(b,) + tuple(in_shape)}: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}") from None
    if not torch.is_tensor(out) and isinstance(out, (tuple, list)) and len(out) == 1:
        out = out[0]
    if not torch.is_tensor(out) or tuple(out.shape) != (b, num_classes):
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise ValueError(f"model output {shape} does not fit {num_classes} classes (expected {(b, num_classes)})")
