"""Build hostile model and data files at test time (never stored in the repository).

Every builder writes into a folder the test owns (``tmp_path``). The
payloads are harmless markers: a pickle whose ``__reduce__`` runs
``touch MARKER``, so a test can tell whether loading a file executed code.

The bombs are cheap to build: deflate output after a full flush is
byte-aligned and self-contained, so one compressed 1 MiB segment is simply
repeated, and the CRC-32 of the whole is combined arithmetically
(zlib's crc32_combine), never computed over gigabytes.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

GiB = 1 << 30
MiB = 1 << 20


class Hostile:
    """Unpickling this runs ``touch MARKER`` (through os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_torch_file(marker) -> bytes:
    """A torch.save zip whose data.pkl runs the marker command when fully unpickled."""
    import torch

    buf = io.BytesIO()
    torch.save(Hostile(marker), buf)
    return buf.getvalue()


def hostile_pickle(marker) -> bytes:
    return pickle.dumps(Hostile(marker), protocol=2)


# --- CRC-32 of long repetitions without touching the bytes (zlib's crc32_combine) ---------------

def _gf2_times(mat, vec):
    s, i = 0, 0
    while vec:
        if vec & 1:
            s ^= mat[i]
        vec >>= 1
        i += 1
    return s


def _gf2_square(mat):
    return [_gf2_times(mat, mat[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A + B from crc32(A), crc32(B) and len(B)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


@dataclass(frozen=True)
class Deflated:
    """A raw deflate stream with the CRC-32 and length of what it inflates to."""

    data: bytes
    crc: int
    size: int


def deflate_bomb(prefix: bytes, fill: int, fill_bytes: int, chunk: int = MiB) -> Deflated:
    """Raw deflate of ``prefix + bytes([fill]) * fill_bytes``, built from one repeated segment."""
    if fill_bytes % chunk:
        raise ValueError(f"fill_bytes must be a multiple of {chunk}")
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = co.compress(prefix) + co.flush(zlib.Z_FULL_FLUSH) if prefix else b""
    block = bytes([fill]) * chunk
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    seg = co.compress(block) + co.flush(zlib.Z_FULL_FLUSH)
    n = fill_bytes // chunk
    tail = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)  # an empty final block
    crc_seg, crc = zlib.crc32(block), zlib.crc32(prefix)
    crc_fill, length = crc_seg, chunk  # crc of the fill, doubled up
    k = n
    while k:
        if k & 1:
            crc = crc32_combine(crc, crc_fill, length)
        k >>= 1
        if k:
            crc_fill = crc32_combine(crc_fill, crc_fill, length)
            length *= 2
    return Deflated(head + seg * n + tail, crc, len(prefix) + fill_bytes)


# --- a minimal zip writer that writes exactly what it is told --------------------------------------

@dataclass(frozen=True)
class Entry:
    """One zip entry. ``raw`` is the stored bytes (method 0) or a raw deflate stream (method 8)."""

    name: bytes
    raw: bytes
    crc: int
    size: int
    method: int = 0
    local_name: bytes | None = None  # a different name in the local header than in the central directory

    @staticmethod
    def stored(name, data: bytes) -> "Entry":
        name = name.encode() if isinstance(name, str) else name
        return Entry(name, data, zlib.crc32(data), len(data))

    @staticmethod
    def deflated(name, d: Deflated) -> "Entry":
        name = name.encode() if isinstance(name, str) else name
        return Entry(name, d.data, d.crc, d.size, method=8)


def write_zip(path, entries, counted: int | None = None) -> Path:
    """Write ``entries`` in order (duplicates and all) as a plain zip (no zip64: sizes < 4 GiB); the end
    record counts the first ``counted`` of them (default: all)."""
    path = Path(path)
    central = []
    with open(path, "wb") as f:
        for e in entries:
            off = f.tell()
            lname = e.name if e.local_name is None else e.local_name
            f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, e.method, 0, 0x21, e.crc, len(e.raw), e.size,
                                len(lname), 0) + lname)
            f.write(e.raw)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, e.method, 0, 0x21, e.crc,
                                       len(e.raw), e.size, len(e.name), 0, 0, 0, 0, 0, off) + e.name)
        cd_off = f.tell()
        cd = b"".join(central)
        f.write(cd)
        n = len(entries) if counted is None else counted
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd), cd_off, 0))
    return path


def overlapping_zip(dst) -> Path:
    """Two names, one set of bytes: entry b's local header and data lie inside entry a's data."""
    def local(name, data):
        return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, zlib.crc32(data), len(data), len(data),
                           len(name), 0) + name

    def cen(name, data, off):
        return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, zlib.crc32(data), len(data),
                           len(data), len(name), 0, 0, 0, 0, 0, off) + name

    nb, db, na = b"t/b", b"x" * 100, b"t/a"
    inner = local(nb, db) + db
    body = local(na, inner) + inner
    cd = cen(na, inner, 0) + cen(nb, db, 30 + len(na))
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, len(cd), len(body), 0)
    Path(dst).write_bytes(body + cd + eocd)
    return Path(dst)


def pt2_entries(src) -> list[Entry]:
    """The entries of a real .pt2 (stored), in their order."""
    with zipfile.ZipFile(src) as zf:
        return [Entry.stored(n, zf.read(n)) for n in zf.namelist()]


def _find(entries, suffix):
    return next(i for i, e in enumerate(entries) if e.name.endswith(suffix.encode()))


def _prefix(entries) -> str:
    return entries[0].name.decode().split("/")[0]


# --- the crafted .pt2 files ---------------------------------------------------------------------

def duplicate_sample_inputs(src, dst, marker) -> Path:
    """A hostile ``data/sample_inputs/model.pt`` first, the benign one (last) where zipfile looks."""
    ents = pt2_entries(src)
    i = _find(ents, "data/sample_inputs/model.pt")
    evil = Entry.stored(ents[i].name, hostile_torch_file(marker))
    return write_zip(dst, ents[:i] + [evil] + ents[i:])  # right before the benign copy (miniz's binary search)


def _hostile_weights_config(ents, marker):
    """(index of the real weights config, a copy of it marking one weight ``use_pickle`` and pointing it
    at a hostile pickle file, that pickle file's entry)."""
    i = _find(ents, "_weights_config.json")
    cfg = json.loads(ents[i].raw)
    fqn = next(iter(cfg["config"]))
    cfg["config"][fqn].update(path_name="weight_99", use_pickle=True)
    evil_w = Entry.stored(f"{_prefix(ents)}/data/weights/weight_99", hostile_torch_file(marker))
    return i, json.dumps(cfg).encode(), evil_w


def duplicate_weights_config(src, dst, marker) -> Path:
    """A first weights config marks a weight ``use_pickle`` and points it at a hostile pickle file."""
    ents = pt2_entries(src)
    i, cfg, evil_w = _hostile_weights_config(ents, marker)
    evil_cfg = Entry.stored(ents[i].name, cfg)
    return write_zip(dst, [evil_w] + ents[:i] + [evil_cfg] + ents[i:])


def case_twin_weights_config(src, dst, marker) -> Path:
    """``MODEL_WEIGHTS_CONFIG.JSON`` (hostile) placed before the real config; miniz matches names case-blind."""
    ents = pt2_entries(src)
    i, cfg, evil_w = _hostile_weights_config(ents, marker)
    twin = ents[i].name.rsplit(b"/", 1)
    evil_cfg = Entry.stored(twin[0] + b"/" + twin[1].upper(), cfg)
    return write_zip(dst, [evil_w] + ents[:i] + [evil_cfg] + ents[i:])


def size_bomb(src, dst, target="data/sample_inputs/model.pt", size=3 * GiB) -> Path:
    """One entry replaced by ``size`` bytes of zeros, deflated (about 3.3 MB for 3 GiB)."""
    ents = pt2_entries(src)
    i = _find(ents, target)
    ents[i] = Entry.deflated(ents[i].name, deflate_bomb(b"", 0, size))
    return write_zip(dst, ents)


def list_padded_config(src, dst, size) -> Path:
    """The real weights config with a ``pad`` of ``size`` bytes of empty lists (``[],`` each), stored."""
    ents = pt2_entries(src)
    i = _find(ents, "_weights_config.json")
    body = ents[i].raw.rstrip()[:-1] + b', "pad": [' + b"[]," * ((size - len(ents[i].raw)) // 3) + b"[]]}"
    ents[i] = Entry.stored(ents[i].name, body)
    return write_zip(dst, ents)


def padded_config_bomb(src, dst, size=3 * GiB) -> Path:
    """The real weights config followed by ``size`` bytes of spaces (still valid JSON), deflated."""
    ents = pt2_entries(src)
    i = _find(ents, "_weights_config.json")
    ents[i] = Entry.deflated(ents[i].name, deflate_bomb(ents[i].raw, ord(" "), size))
    return write_zip(dst, ents)


def state_dict_size_bomb(src, dst, size=3 * GiB) -> Path:
    """A torch.save state_dict whose first tensor record is ``size`` zero bytes, deflated."""
    with zipfile.ZipFile(src) as zf:
        ents = [Entry.stored(n, zf.read(n)) for n in zf.namelist()]
    i = next(k for k, e in enumerate(ents) if re.search(rb"/data/[0-9]+$", e.name))
    ents[i] = Entry.deflated(ents[i].name, deflate_bomb(b"", 0, size))
    return write_zip(dst, ents)


def local_name_mismatch(src, dst, marker) -> Path:
    """The central directory says ``weights_config.json``, the local header another name."""
    ents = pt2_entries(src)
    i = _find(ents, "_weights_config.json")
    ents[i] = Entry(ents[i].name, ents[i].raw, ents[i].crc, ents[i].size,
                    local_name=ents[i].name.replace(b"model_", b"other_"))
    return write_zip(dst, ents)


def renamed_entry(src, dst, suffix, new_name: bytes) -> Path:
    """One entry under another (raw) name, e.g. with ``..``, a backslash or a NUL."""
    ents = pt2_entries(src)
    i = _find(ents, suffix)
    ents[i] = Entry.stored(new_name, ents[i].raw)
    return write_zip(dst, ents)


def uncounted_legacy_entries(src, dst, marker) -> Path:
    """The real entries, counted by the end record, then uncounted central headers for a legacy (torch 2.7)
    export with a hostile ``serialized_constants.pt``: miniz reads only the counted headers, Python's zipfile
    all of them, and ``torch.export.load`` falls back to zipfile and that layout (which it unpickles with
    ``weights_only=False`` after a failed first try) when its own load raises a RuntimeError, as here, where
    the first weight's storage offset lies past its bytes."""
    from torch._export.serde.schema import SCHEMA_VERSION

    ents = pt2_entries(src)
    i = _find(ents, "_weights_config.json")
    cfg = json.loads(ents[i].raw)
    next(iter(cfg["config"].values()))["tensor_meta"]["storage_offset"] = {"as_int": 1 << 20}
    ents[i] = Entry.stored(ents[i].name, json.dumps(cfg).encode())
    legacy = [Entry.stored("version", ".".join(map(str, SCHEMA_VERSION)).encode()),
              Entry.stored("serialized_exported_program.json", ents[_find(ents, "models/model.json")].raw),
              Entry.stored("serialized_state_dict.pt", b""),
              Entry.stored("serialized_constants.pt", hostile_torch_file(marker)),
              Entry.stored("serialized_example_inputs.pt", b"")]
    return write_zip(dst, ents + legacy, counted=len(ents))


def case_twin_sample_pickle(src, dst) -> Path:
    """Sample inputs whose pickle torch reads is ``archive/DATA.PKL`` (miniz matches ``data.pkl`` case-blind),
    one that ``weights_only`` loads but that names a global outside ``archive.SAFE_GLOBALS`` (a tensor with
    attributes: ``torch._tensor._rebuild_from_type_v2``), beside the real pickle as ``archive/sub/data.pkl``."""
    import torch

    ents = pt2_entries(src)
    i = _find(ents, "data/sample_inputs/model.pt")
    x = torch.load(io.BytesIO(ents[i].raw), weights_only=True)[0][0].clone()
    x.note = 1
    buf = io.BytesIO()
    torch.save(((x,), {}), buf)
    with zipfile.ZipFile(buf) as zf:
        other = zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))
    inner = []
    with zipfile.ZipFile(io.BytesIO(ents[i].raw)) as zf:
        for n in zf.namelist():
            top, _, rest = n.partition("/")
            inner += ([Entry.stored(f"{top}/DATA.PKL", other), Entry.stored(f"{top}/sub/data.pkl", zf.read(n))]
                      if rest == "data.pkl" else [Entry.stored(n, zf.read(n))])
    ents[i] = Entry.stored(ents[i].name, write_zip(Path(dst).with_suffix(".inner"), inner).read_bytes())
    return write_zip(dst, ents)


def legacy_weights_file(src, dst, marker) -> Path:
    """A legacy ``data/weights/model.pt`` that torch reads instead of the config, then unpickles."""
    ents = pt2_entries(src)
    evil = Entry.stored(f"{_prefix(ents)}/data/weights/model.pt", hostile_torch_file(marker))
    return write_zip(dst, [evil] + ents)


def zero_record_tensor_bomb(src, dst, numel=1 << 31) -> Path:
    """A weight whose record is empty but whose sizes say ``numel`` floats: torch would allocate zeros."""
    ents = pt2_entries(src)
    i = _find(ents, "_weights_config.json")
    cfg = json.loads(ents[i].raw)
    fqn, meta = next(iter(cfg["config"].items()))
    j = _find(ents, "data/weights/" + meta["path_name"])
    meta["tensor_meta"].update(sizes=[{"as_int": numel}], strides=[{"as_int": 1}])
    ents[i] = Entry.stored(ents[i].name, json.dumps(cfg).encode())
    ents[j] = Entry.stored(ents[j].name, b"")
    return write_zip(dst, ents)


def with_pickle(src, dst, pkl: bytes) -> Path:
    """A copy of the torch.save zip ``src`` (a .pt, or a .pt2's sample inputs) whose data.pkl is ``pkl``."""
    with zipfile.ZipFile(src) as zf:
        ents = [Entry.stored(n, pkl if n.endswith("/data.pkl") else zf.read(n)) for n in zf.namelist()]
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    return write_zip(dst, ents)


def bytearray_pickle(size: int, sample_inputs=False) -> bytes:
    """A few bytes that ``weights_only`` unpickles into a ``bytearray(size)``: {'pad': ...}, or ((...,), {})."""
    make = b"cbuiltins\nbytearray\n\x8a\x08" + struct.pack("<q", size) + b"\x85R"
    return b"\x80\x02(" + make + b"\x85}t." if sample_inputs else b"\x80\x02}X\x03\x00\x00\x00pad" + make + b"s."


def list_bomb_pickle(size: int) -> bytes:
    """{'pad': [[], [], ...]}: ``size`` bytes, one empty list each, about 80 bytes each once unpickled."""
    return b"\x80\x02}X\x03\x00\x00\x00pad](" + b"]" * (size - 16) + b"es."


def sample_inputs_pickle(src, dst, pkl: bytes) -> Path:
    ents = pt2_entries(src)
    i = _find(ents, "data/sample_inputs/model.pt")
    inner = with_pickle(io.BytesIO(ents[i].raw), Path(dst).with_suffix(".inner"), pkl)
    ents[i] = Entry.stored(ents[i].name, inner.read_bytes())
    return write_zip(dst, ents)


# --- gzip IDX bombs -----------------------------------------------------------------------------

def _gzip(d: Deflated) -> bytes:
    return (b"\x1f\x8b\x08\x00" + b"\x00" * 4 + b"\x00\xff" + d.data
            + struct.pack("<II", d.crc, d.size & 0xFFFFFFFF))


def idx_header(shape, code=0x08) -> bytes:
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + b"".join(struct.pack(">I", d) for d in shape)


def gzip_idx_bomb(dst, size=3 * GiB, lie=False) -> Path:
    """A gzipped IDX image file of ``size`` zero bytes (about 3 MB on disk).

    ``lie=False``: the header declares all of it ((N, 28, 28) images);
    ``lie=True``: the header declares one image and the zeros trail behind.
    """
    n = size // (28 * 28)
    head = idx_header((1 if lie else n, 28, 28))
    Path(dst).write_bytes(_gzip(deflate_bomb(head, 0, size)))
    return Path(dst)
