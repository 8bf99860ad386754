"""What a ``torch.export`` archive may hold before ``torch.export.load`` sees it.

``torch.export.load`` unpickles with ``weights_only=False`` in three places:
a weight or constant marked ``use_pickle``, a legacy ``data/weights/<m>.pt``
or ``data/constants/<m>.pt`` file, and the sample inputs when they do not
load with ``weights_only=True`` (it retries them unsafely). Custom and opaque
constants are unpickled as well. ``check_pt2`` refuses every one of those by
construction, on the entries torch's reader will find (``dnn_eval.archive``
has already refused duplicate and case-twin names, compressed entries and
header tricks):

* only the files ``torch.export.save`` writes for a plain program, all under
  the top folder of the first entry (the one torch reads from);
* every weight and constant config entry is raw tensor bytes
  (``use_pickle`` false, ``weight_N`` / ``tensor_N`` files that exist), no
  legacy, custom or opaque object files, no file the configs do not name;
  an empty record (which torch fills with zeros of the declared shape) must
  declare zero elements;
* the sample inputs' pickle is small and names only the globals a tensor
  needs (``archive.check_torch_pickle``, before anything unpickles it), and
  they load with ``weights_only=True`` (so torch's first try succeeds and it
  never retries);
* every JSON part is at most ``MAX_JSON_BYTES`` and the sample inputs at most
  ``MAX_SAMPLE_INPUT_BYTES``;
* the program itself is a plain graph of ATen operators, with no Python for
  torch to exec or eval (``dnn_eval.pt2_graph``).
"""

from __future__ import annotations

import io
import json
import math
import re
import warnings

from .archive import Archive, check_torch_pickle, read_archive, read_member
from .pt2_graph import check_program

MAX_JSON_BYTES = 16 << 20  # parsed, JSON takes up to about 30 times its size (ResNet-50's program: 0.45 MB)
MAX_SAMPLE_INPUT_BYTES = 64 << 20

_FIXED = {"archive_format", "archive_version", "byteorder", "version", ".data/version", ".data/serialization_id"}
_M = r"[A-Za-z0-9_]+"
_ALLOWED = re.compile(
    rf"models/{_M}\.json|data/sample_inputs/{_M}\.pt"
    rf"|data/weights/(?:{_M}_weights_config\.json|weight_[0-9]+)"
    rf"|data/constants/(?:{_M}_constants_config\.json|tensor_[0-9]+)")
_PAYLOAD = re.compile(r"(?:weight|tensor)_[0-9]+")
_PARTS = (("weights", "data/weights", "weight_"), ("constants", "data/constants", "tensor_"))


def is_pt2(archive: Archive) -> bool:
    return any(re.search(r"(^|/)models/[^/]+\.json$", n) for n in archive.names())


def _refuse(archive: Archive, what: str):
    raise ValueError(f"{archive.label}: {what}; refused")


def _top_folder(archive: Archive) -> str:
    names = archive.names()
    top = names[0].split("/")[0] if names and "/" in names[0] else None
    if top is None:
        _refuse(archive, "the first entry of a .pt2 must be inside the archive's top folder")
    for n in names:
        if not n.startswith(top + "/"):
            _refuse(archive, f"entry {n!r} is outside the top folder {top!r}/ that torch reads")
        rel = n[len(top) + 1:]
        if rel not in _FIXED and not _ALLOWED.fullmatch(rel):
            _refuse(archive, f"unexpected entry {n!r} in the .pt2 archive (only plain torch.export files are accepted)")
    return top


def _json(f, archive: Archive, name: str):
    data = read_member(f, archive, name, MAX_JSON_BYTES)
    try:
        return json.loads(data.decode("utf-8"))  # torch decodes as UTF-8, then json.loads
    except (UnicodeDecodeError, ValueError, RecursionError):
        _refuse(archive, f"unreadable {name}")


def _numel(meta: dict) -> int | None:
    sizes = meta.get("sizes") if isinstance(meta, dict) else None
    if not isinstance(sizes, list) or not all(isinstance(s, dict) and type(s.get("as_int")) is int for s in sizes):
        return None
    return math.prod(s["as_int"] for s in sizes)


def _check_config(f, archive: Archive, top: str, model: str, kind: str, folder: str, prefix: str) -> set[str]:
    cfg = _json(f, archive, f"{top}/{folder}/{model}_{kind}_config.json")
    if not isinstance(cfg, dict) or not isinstance(cfg.get("config"), dict):
        _refuse(archive, f"{folder}/{model}_{kind}_config.json is not a payload config")
    named = set()
    for fqn, meta in cfg["config"].items():
        if not isinstance(meta, dict) or meta.get("use_pickle", True) is not False:
            _refuse(archive, f"{fqn!r} is stored as a pickle")
        path_name = meta.get("path_name")
        if not isinstance(path_name, str) or not path_name.startswith(prefix) or not _PAYLOAD.fullmatch(path_name):
            what = "constant" if kind == "constants" else "weight"
            _refuse(archive, f"{what} {fqn!r} is not a tensor ({path_name!r})")
        entry = archive.get(f"{top}/{folder}/{path_name}")
        if entry is None:
            _refuse(archive, f"{fqn!r} names the missing entry {folder}/{path_name}")
        if entry.size == 0 and _numel(meta.get("tensor_meta")) != 0:
            _refuse(archive, f"{fqn!r}: an empty record for a tensor of {_numel(meta.get('tensor_meta'))} elements")
        named.add(entry.name)
    return named


def _check_sample_inputs(f, archive: Archive, name: str) -> None:
    import torch

    data = read_member(f, archive, name, MAX_SAMPLE_INPUT_BYTES)
    if data[:4] != b"PK\x03\x04":
        _refuse(archive, f"{name} is not a zip-format torch.save file")
    inner_label = f"{archive.label}: {name}"
    inner = read_archive(io.BytesIO(data), inner_label)
    check_torch_pickle(io.BytesIO(data), inner)  # before any unpickling, even weights_only's
    try:
        with warnings.catch_warnings():  # (torch warns before refusing some; its own load later keeps its warnings)
            warnings.simplefilter("ignore")
            obj = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means: do not let torch retry unsafely
        _refuse(archive, f"{name} does not load with weights_only=True ({type(exc).__name__})")
    if not isinstance(obj, (tuple, dict)):
        _refuse(archive, f"{name} holds a {type(obj).__name__}, not the (args, kwargs) of sample inputs")


def check_pt2(f, archive: Archive) -> None:
    """Refuse a .pt2 whose loading could unpickle anything or allocate what the file does not hold."""
    top = _top_folder(archive)
    if read_member(f, archive, f"{top}/archive_format", 16) != b"pt2":
        _refuse(archive, "archive_format is not 'pt2'")
    models = [n[len(top) + 8:-5] for n in archive.names() if n.startswith(f"{top}/models/")]
    named: set[str] = set()
    for m in models:
        if archive.get(f"{top}/models/{m}.json").size > MAX_JSON_BYTES:
            _refuse(archive, f"models/{m}.json is over {MAX_JSON_BYTES} bytes")
        check_program(_json(f, archive, f"{top}/models/{m}.json"),
                      lambda why, m=m: _refuse(archive, f"models/{m}.json: {why}"))
        for kind, folder, prefix in _PARTS:
            named |= _check_config(f, archive, top, m, kind, folder, prefix)
        _check_sample_inputs(f, archive, f"{top}/data/sample_inputs/{m}.pt")
    for n in archive.names():
        if _PAYLOAD.fullmatch(n.rsplit("/", 1)[-1]) and n not in named:
            _refuse(archive, f"entry {n!r} is not named by any config")
