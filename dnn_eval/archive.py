"""Strict reader for the zip archives torch writes (``torch.export.save`` .pt2, ``torch.save`` .pt).

torch reads these archives with its own C++ reader (``PyTorchStreamReader``
on miniz), not with Python's ``zipfile``, and the two disagree on hostile
files: for a duplicated name zipfile sees the last copy and miniz, through
a case-blind binary search of the sorted central directory, may pick
another; miniz also matches names that differ only in case, ignores the
name in the local header, and allocates an entry's declared size before
inflating it. So an archive is checked here by parsing its bytes the way
miniz does, and refused unless every reader must see the same thing:

* the end record ends the file (no comment, no data after it), the central
  directory sits right before it (or before its zip64 record), with no
  prefixed data that would shift offsets for one reader only, and holds
  exactly the entries the end record counts (miniz reads that many headers,
  Python's zipfile, which ``torch.export.load`` falls back to when its own
  reader fails, every header in the directory's size);
* names are unique even ignoring ASCII case (as miniz compares them), are
  UTF-8, use only ``A-Z a-z 0-9 _ . -`` and ``/`` between non-empty
  components below the top folder (which torch names after the saved
  file's stem, so any printable characters there), and have no ``.`` or
  ``..`` component, absolute path, backslash, control character or NUL;
  the local header repeats the central name;
* every entry is stored uncompressed, as torch writes them: its size is
  then bytes that are really in the file, no declared size can be a lie
  and nothing is ever inflated (no decompression bomb);
* entries lie inside the file, before the central directory, and do not
  overlap (overlapping entries would multiply the bytes read);
* each entry's CRC-32 matches (read in bounded chunks).

Reading an entry (``read_member``) takes an explicit byte cap.

``scan_pickle`` checks a pickle's opcodes without running it: every global
it names must be in an allowlist, so even a full unpickler could only call
those. ``check_torch_pickle`` applies it, with a size cap, to the pickle
``torch.load`` will read, before torch unpickles it: ``weights_only`` alone
still lets a few bytes build a ``bytearray`` of any size, and unpickling
takes up to about 80 times a pickle's size in memory.
"""

from __future__ import annotations

import pickletools
import re
import struct
import zlib
from dataclasses import dataclass, field

_EOCD = struct.Struct("<IHHHHIIH")  # end of central directory, 22 bytes
_LOC64 = struct.Struct("<IIQI")  # zip64 end-of-central-directory locator, 20 bytes
_EOCD64 = struct.Struct("<IQHHIIQQQQ")  # zip64 end of central directory, 56 bytes
_CEN = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory header, 46 bytes
_LOC = struct.Struct("<IHHHHHIIIHH")  # local file header, 30 bytes
_NAME = re.compile(rb"[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*")
_FLAGS_OK = 0x0002 | 0x0004 | 0x0008 | 0x0800  # deflate options, data descriptor, UTF-8 names
MAX_ENTRIES = 100_000
MAX_NAME = 1024
MAX_PICKLE_BYTES = 4 << 20  # a torch.save pickle takes about 100 bytes a tensor (ResNet-50's state_dict: 30 KB)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZipEntry:
    """One stored entry: its name, where its bytes start in the file, their number and CRC-32."""

    name: str
    data_offset: int
    size: int
    crc: int


@dataclass(frozen=True)
class Archive:
    """The checked entries of an archive, in central-directory order."""

    label: str
    entries: tuple[ZipEntry, ...]
    by_key: dict = field(default_factory=dict, repr=False, compare=False)  # ASCII-lowercased name -> entry

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def get(self, name: str) -> ZipEntry | None:
        """The entry torch's reader finds for ``name`` (miniz matches ASCII case-blind)."""
        return self.by_key.get(name.encode("utf-8").lower())


def _refuse(label, what: str):
    raise ValueError(f"{label}: {what}; refused")


def _size(f) -> int:
    f.seek(0, 2)
    return f.tell()


def _read_at(f, offset: int, n: int, label="archive") -> bytes:
    f.seek(offset)
    data = f.read(n)
    if len(data) != n:
        _refuse(label, f"truncated or corrupt archive ({n} bytes at offset {offset} are not in the file)")
    return data


def _end_records(f, size: int, label) -> tuple[int, int, int]:
    """(number of entries, central directory offset, its end) from the end records."""
    if size < _EOCD.size:
        _refuse(label, "truncated or corrupt archive (no end record)")
    sig, disk, cd_disk, n_here, n, cd_size, cd_off, comment = _EOCD.unpack(_read_at(f, size - _EOCD.size, _EOCD.size, label))
    if sig != 0x06054B50:
        _refuse(label, "truncated or corrupt archive (the end record must end the file: no comment or trailing data)")
    if disk or cd_disk or n_here != n:
        _refuse(label, "multi-disk archive")
    cd_end = size - _EOCD.size
    loc_at = cd_end - _LOC64.size
    if loc_at >= _EOCD64.size:
        lsig, ldisk, eocd64_off, ndisks = _LOC64.unpack(_read_at(f, loc_at, _LOC64.size, label))
        if lsig == 0x07064B50:
            # Python's zipfile reads the zip64 record right before the locator, miniz where the locator
            # points: require both to be the same place
            if ldisk != 0 or ndisks != 1 or eocd64_off != loc_at - _EOCD64.size:
                _refuse(label, "inconsistent zip64 end records")
            (sig64, rec_size, _v1, _v2, disk, cd_disk, n_here, n, cd_size, cd_off) = _EOCD64.unpack(
                _read_at(f, eocd64_off, _EOCD64.size, label))
            if sig64 != 0x06064B50 or rec_size != _EOCD64.size - 12 or disk or cd_disk or n_here != n:
                _refuse(label, "inconsistent zip64 end records")
            cd_end = eocd64_off
    if cd_off + cd_size != cd_end:
        _refuse(label, "truncated or corrupt archive (central directory is not where the end record says, "
                       "or data is prefixed to the archive)")
    if n > MAX_ENTRIES or n * _CEN.size > cd_size:
        _refuse(label, f"truncated or corrupt archive ({n} entries in a {cd_size}-byte central directory)")
    return n, cd_off, cd_end


def _zip64_extra(extra: bytes, usize: int, csize: int, off: int) -> tuple[int, int, int]:
    """The zip64 extended information (id 0x0001) replaces the 32-bit fields that are 0xFFFFFFFF."""
    i = 0
    while i + 4 <= len(extra):
        hid, hlen = struct.unpack_from("<HH", extra, i)
        body = extra[i + 4:i + 4 + hlen]
        if hid == 0x0001:
            vals, k = [], 0
            for v in (usize, csize, off):
                if v == 0xFFFFFFFF:
                    if k + 8 > len(body):
                        raise struct.error("short zip64 extra field")
                    v = struct.unpack_from("<Q", body, k)[0]
                    k += 8
                vals.append(v)
            return tuple(vals)
        i += 4 + hlen
    return usize, csize, off


def _check_name(raw: bytes, label) -> str:
    """The entry's name, refused unless it is a plain relative path.

    The top folder is torch's archive name, the stem of the file it was
    saved to (any printable UTF-8); below it only ``A-Z a-z 0-9 _ . -``.
    """
    top, sep, rest = raw.partition(b"/")
    bad = (not raw or len(raw) > MAX_NAME or not top or any(c < 0x20 or c in (0x5C, 0x7F) for c in raw)
           or (sep and not _NAME.fullmatch(rest)))
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        bad = True
    if bad:
        _refuse(label, f"entry name {raw[:80]!r} is not a plain relative path (allowed below the top folder: "
                       "A-Z a-z 0-9 _ . - and /; no absolute path, backslash, control character, NUL or empty part)")
    if any(part in (".", "..") for part in name.split("/")):
        _refuse(label, f"entry name {name!r} contains a '.' or '..' component")
    return name


def read_archive(f, label, verify_crc: bool = True) -> Archive:
    """Check an open binary file (or BytesIO) as described in the module docstring."""
    try:
        return _read_archive(f, label, verify_crc)
    except (struct.error, OSError, OverflowError) as exc:
        raise ValueError(f"{label}: truncated or corrupt archive ({exc or type(exc).__name__}); refused") from None


def _read_archive(f, label, verify_crc: bool) -> Archive:
    size = _size(f)
    n, cd_off, cd_end = _end_records(f, size, label)
    cd = _read_at(f, cd_off, cd_end - cd_off, label)
    pos, entries, spans, seen = 0, [], [], {}
    for _ in range(n):
        if pos + _CEN.size > len(cd):
            _refuse(label, "truncated or corrupt archive (central directory overruns)")
        (sig, _vmade, _vneed, flags, method, _t, _d, crc, csize, usize, nlen, xlen, clen, _disk, _ia, _ea,
         off) = _CEN.unpack_from(cd, pos)
        if sig != 0x02014B50:
            _refuse(label, "truncated or corrupt archive (bad central directory header)")
        raw = cd[pos + _CEN.size:pos + _CEN.size + nlen]
        extra = cd[pos + _CEN.size + nlen:pos + _CEN.size + nlen + xlen]
        pos += _CEN.size + nlen + xlen + clen
        if pos > len(cd):
            _refuse(label, "truncated or corrupt archive (central directory overruns)")
        name = _check_name(raw, label)
        key = raw.lower()  # ASCII-only folding, as miniz's MZ_TOLOWER
        if key in seen:
            twin = "appears twice" if seen[key] == name else f"differs from {seen[key]!r} only in case"
            _refuse(label, f"duplicate entry name {name!r} {twin} (names must be unique ignoring case: "
                           "torch's reader matches them case-blind and may pick either)")
        seen[key] = name
        usize, csize, off = _zip64_extra(extra, usize, csize, off)
        if flags & ~_FLAGS_OK:
            _refuse(label, f"entry {name!r} is encrypted or uses unsupported zip flags 0x{flags:04x}")
        if method != 0 or csize != usize:
            _refuse(label, f"entry {name!r} is compressed (method {method}); torch writes stored entries only, and "
                           "compressed ones could inflate without bound")
        lsig, _v, _lflags, lmethod, _lt, _ld, _lcrc, _lc, _lu, lnlen, lxlen = _LOC.unpack(_read_at(f, off, _LOC.size, label))
        if lsig != 0x04034B50:
            _refuse(label, f"truncated or corrupt archive (no local header for {name!r})")
        if lmethod != method or _read_at(f, off + _LOC.size, lnlen, label) != raw:
            _refuse(label, f"entry {name!r}: the local header names another entry or method than the central directory")
        start = off + _LOC.size + lnlen + lxlen  # where miniz starts reading the data
        if start + usize > cd_off:
            _refuse(label, f"entry {name!r} runs past the data area ({usize} bytes at offset {start})")
        spans.append((off, start + usize, name))
        entries.append(ZipEntry(name, start, usize, crc))
    if pos != len(cd):
        # Python's zipfile reads headers until the directory's size is used up, miniz only the counted ones
        # (torch.export.load falls back to zipfile after a failure): every header must be counted
        _refuse(label, f"truncated or corrupt archive (the central directory holds {len(cd) - pos} bytes "
                       f"after the {n} entries the end record counts)")
    spans.sort()
    for (_a, end, first), (b, _e, second) in zip(spans, spans[1:]):
        if b < end:
            _refuse(label, f"entries {first!r} and {second!r} overlap")
    if verify_crc:
        for e in entries:
            if _crc(f, e) != e.crc:
                _refuse(label, f"corrupt archive member {e.name!r} (CRC-32 mismatch)")
    return Archive(str(label), tuple(entries), {e.name.encode("utf-8").lower(): e for e in entries})


def _crc(f, e: ZipEntry) -> int:
    f.seek(e.data_offset)
    crc, left = 0, e.size
    while left:
        chunk = f.read(min(left, _CHUNK))
        if not chunk:
            raise OSError("short read")
        crc = zlib.crc32(chunk, crc)
        left -= len(chunk)
    return crc


def read_member(f, archive: Archive, name: str, max_bytes: int) -> bytes:
    """The bytes of entry ``name`` (as torch would find it), refused when missing or over ``max_bytes``."""
    e = archive.get(name)
    if e is None:
        _refuse(archive.label, f"missing entry {name!r}")
    if e.size > max_bytes:
        _refuse(archive.label, f"entry {e.name!r} is {e.size} bytes, over the {max_bytes}-byte limit for this part")
    return _read_at(f, e.data_offset, e.size, archive.label)


def check_torch_pickle(f, archive: Archive, label=None) -> None:
    """Refuse the pickle ``torch.load`` reads from ``archive`` (``data.pkl`` in the first entry's folder, found
    case-blind) when it is over ``MAX_PICKLE_BYTES`` or names a global outside ``SAFE_GLOBALS``."""
    label = archive.label if label is None else label
    top = archive.names()[0].split("/")[0] if archive.entries else ""
    e = archive.get(f"{top}/data.pkl")
    if e is None:
        _refuse(label, "no data.pkl where torch.load reads it")
    if e.size > MAX_PICKLE_BYTES:
        _refuse(label, f"entry {e.name!r} is {e.size} bytes, over the {MAX_PICKLE_BYTES}-byte limit for a pickle")
    scan_pickle(read_member(f, archive, e.name, MAX_PICKLE_BYTES), label)


# globals a torch.save of tensors and plain containers needs; nothing that can run code given any argument
SAFE_GLOBALS = frozenset(
    {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
     ("torch", "device"), ("torch", "Size")}
    | {("torch", f"{t}Storage") for t in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char",
                                          "Byte", "Bool", "ComplexFloat", "ComplexDouble")})
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}


def scan_pickle(data: bytes, label, allowed=SAFE_GLOBALS) -> None:
    """Refuse a pickle that names any global outside ``allowed``, without executing it."""
    strings: list = []
    ops = pickletools.genops(data)
    while True:
        try:
            op, arg, _pos = next(ops)
        except StopIteration:
            return
        except ValueError as exc:
            _refuse(label, f"unreadable pickle ({exc})")
        name = op.name
        if name in ("GLOBAL", "INST"):
            mod, _, attr = str(arg).partition(" ")
            if (mod, attr) not in allowed:
                _refuse(label, f"pickle names the global {mod}.{attr}")
        elif name == "STACK_GLOBAL":
            # only the plain pattern pickle itself writes: two strings pushed right before
            if len(strings) < 2 or (strings[-2], strings[-1]) not in allowed:
                _refuse(label, "pickle builds a global from the stack that is not a known safe one")
        elif name in ("EXT1", "EXT2", "EXT4", "OBJ"):
            _refuse(label, f"pickle uses the {name} opcode")
        if name in _STRING_OPS:
            strings = (strings + [arg])[-2:]
        elif name not in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
            strings = []
