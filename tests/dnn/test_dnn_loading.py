"""Bad model files fail with a clear ValueError and execute nothing."""

import io
import json
import os
import pickle
import subprocess
import sys
import warnings
import zipfile

import pytest

torch = pytest.importorskip("torch")

from dnn_eval.loading import WEIGHTS_DIR, load_model, load_pt2  # noqa: E402


class Hostile:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _check_refused(path, marker, match=None, **kw):
    with pytest.raises(ValueError, match=match):
        load_model(str(path), **kw)
    assert not os.path.exists(marker), "the hostile file executed code"


def test_truncated_file(tmp_path):
    raw = (WEIGHTS_DIR / "convnet.pt2").read_bytes()
    p = tmp_path / "cut.pt2"
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_model(str(p))
    p2 = tmp_path / "cut.pt"
    p2.write_bytes((WEIGHTS_DIR / "convnet.pt").read_bytes()[:3000])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_model(str(p2), arch="convnet")


def test_wrong_format(tmp_path):
    p = tmp_path / "model.pt2"
    p.write_text("this is not a network\n")
    with pytest.raises(ValueError, match="not a PyTorch archive"):
        load_model(str(p))
    z = tmp_path / "other.pt"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("hello.txt", "zip, but not torch")
    with pytest.raises(ValueError, match="not a plain state_dict"):
        load_model(str(z), arch="convnet")


def test_directory_is_not_a_regular_file(tmp_path):
    (tmp_path / "model.pt2").mkdir()
    with pytest.raises(ValueError, match="model.pt2: not a regular file"):
        load_model(str(tmp_path / "model.pt2"))
    with pytest.raises(ValueError, match="no such file"):
        load_model(str(tmp_path / "missing.pt2"))


def test_arch_is_refused_where_it_does_not_apply():
    """arch names a state_dict's architecture: with a .pt2 (its own program) or another bundled name it was
    silently ignored; a typo of a bundled name says that it is none."""
    with pytest.raises(ValueError, match="convnet.pt2: is a torch.export archive .*arch 'lenet' applies only"):
        load_model(str(WEIGHTS_DIR / "convnet.pt2"), arch="lenet")
    with pytest.raises(ValueError, match="arch 'vgg' does not apply to the bundled model 'resnet18'"):
        load_model("resnet18", arch="vgg")
    with pytest.raises(ValueError, match=r"lenett: no such file, and not a bundled model \(one of \['mlp', 'lenet'"):
        load_model("lenett")
    assert load_model("mlp", arch="mlp").arch == "mlp"  # (the same name is no contradiction)


def test_hostile_raw_pickle(tmp_path):
    marker = tmp_path / "PWNED"
    p = tmp_path / "evil.pt"
    p.write_bytes(pickle.dumps(Hostile(marker)))
    _check_refused(p, marker, match="raw pickle", arch="convnet")


def test_hostile_pickle_in_torch_zip(tmp_path):
    marker = tmp_path / "PWNED"
    p = tmp_path / "evil.pt"
    torch.save({"w": Hostile(marker)}, p)
    assert not marker.exists()
    _check_refused(p, marker, match="not a plain state_dict", arch="convnet")


def _rewrite_pt2(src, dst, replace):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for n in zin.namelist():
            data = zin.read(n)
            for key, fn in replace.items():
                if n.endswith(key):
                    data = fn(data)
            zout.writestr(n, data)


def test_hostile_pickle_in_pt2_sample_inputs(tmp_path):
    # torch's own loader retries these bytes with weights_only=False: it must never see them
    marker = tmp_path / "PWNED"
    buf = io.BytesIO()
    torch.save(Hostile(marker), buf)
    p = tmp_path / "evil.pt2"
    _rewrite_pt2(WEIGHTS_DIR / "convnet.pt2", p, {"sample_inputs/model.pt": lambda d: buf.getvalue()})
    _check_refused(p, marker, match="weights_only|pickle names the global")


def test_pickled_weight_in_pt2_refused(tmp_path):
    p = tmp_path / "evil.pt2"
    _rewrite_pt2(WEIGHTS_DIR / "convnet.pt2", p, {
        "model_weights_config.json": lambda d: d.replace(b'"use_pickle": false', b'"use_pickle": true', 1)})
    with pytest.raises(ValueError, match="stored as a pickle"):
        load_pt2(p)


def test_unexpected_member_in_pt2_refused(tmp_path):
    p = tmp_path / "evil.pt2"
    _rewrite_pt2(WEIGHTS_DIR / "convnet.pt2", p, {})
    with zipfile.ZipFile(p, "a") as zf:
        zf.writestr("convnet/data/aotinductor/model.so", b"\x7fELF")
    with pytest.raises(ValueError, match="unexpected entry"):
        load_pt2(p)


def test_torchscript_sample_inputs_refused_without_a_warning(tmp_path):
    # torch.load warns about a TorchScript archive (a constants.pkl) before refusing it: only the ValueError
    def with_constants(data):
        with zipfile.ZipFile(io.BytesIO(data)) as zin:
            entries = [(n, zin.read(n)) for n in zin.namelist()]
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zout:
            for n, d in entries + [(entries[0][0].split("/")[0] + "/constants.pkl", pickle.dumps({}, protocol=2))]:
                zout.writestr(n, d)
        return buf.getvalue()

    p = tmp_path / "ts.pt2"
    _rewrite_pt2(WEIGHTS_DIR / "convnet.pt2", p, {"sample_inputs/model.pt": with_constants})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="does not load with weights_only=True"):
            load_model(str(p))
    assert not caught, [str(w.message) for w in caught]


def test_constant_user_input_refused(tmp_path):
    # a signature whose one user input is a constant (None) names no graph placeholder
    def none_input(data):
        prog = json.loads(data)
        prog["graph_module"]["signature"]["input_specs"][-1] = {"user_input": {"arg": {"as_none": True}}}
        return json.dumps(prog).encode()

    p = tmp_path / "c.pt2"
    _rewrite_pt2(WEIGHTS_DIR / "convnet.pt2", p, {"models/model.json": none_input})
    with pytest.raises(ValueError, match="is not an input tensor of its graph"):
        load_model(str(p))


def test_input_shape_does_not_fit(tmp_path):
    with pytest.raises(ValueError, match=r"input shape \(1, 8, 8\) does not fit .*\(3, 32, 32\)"):
        load_model(str(WEIGHTS_DIR / "convnet.pt2"), in_shape=(3, 32, 32))
    with pytest.raises(ValueError, match="does not fit architecture 'convnet'"):
        load_model("convnet", in_shape=(1, 28, 28))


def test_fixed_batch_export_is_padded(tmp_path):
    from dnn_eval.data import load_digits_split
    from dnn_eval.evaluate import predict
    from dnn_eval.train import export_program

    lm = load_model("lenet")
    p = tmp_path / "fixed.pt2"
    export_program(lm.module, (1, 8, 8), p, dynamic_batch=False, batch=7)
    fixed = load_model(str(p))
    assert fixed.fixed_batch == 7 and fixed.input_shape == (1, 8, 8)
    x = load_digits_split()[1].x[:20]
    assert (predict(fixed.module, x, fixed_batch=7) == predict(lm.module, x)).all()


def test_huge_fixed_batch_refused_before_it_runs(tmp_path):
    # a tiny .pt2 declaring a fixed batch of 10 million: check_fits would allocate that batch and run it
    from dnn_eval.train import export_program

    src = tmp_path / "fixed.pt2"
    export_program(load_model("convnet").module, (1, 8, 8), src, dynamic_batch=False, batch=7)

    def huge_batch(data):
        prog = json.loads(data)
        for v in prog["graph_module"]["graph"]["tensor_values"].values():
            if v["sizes"] and v["sizes"][0] == {"as_int": 7}:
                v["sizes"][0] = {"as_int": 10_000_000}
        return json.dumps(prog).encode()

    p = tmp_path / "huge.pt2"
    _rewrite_pt2(src, p, {"models/model.json": huge_batch})
    with pytest.raises(ValueError, match="fixed batch size 10000000 is outside"):
        load_model(str(p))


def test_cli_bad_file_one_line(tmp_path):
    marker = tmp_path / "PWNED"
    p = tmp_path / "evil.pt2"
    p.write_bytes(pickle.dumps(Hostile(marker)))
    r = subprocess.run([sys.executable, "-m", "xbarlab.cli", "dnn-eval", str(p)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and "raw pickle" in r.stderr
    assert not marker.exists()


def test_cli_torchscript_archive_one_line(tmp_path):
    # torch.load warns that it would dispatch a TorchScript archive (a constants.pkl) to torch.jit.load, then
    # refuses it under weights_only: the warning must not join the one-line error
    p = tmp_path / "convnet.pt"
    with zipfile.ZipFile(WEIGHTS_DIR / "convnet.pt") as zin:
        names = zin.namelist()
        entries = [(n, zin.read(n)) for n in names]
    with zipfile.ZipFile(p, "w") as zout:
        for n, data in entries + [(names[0].split("/")[0] + "/constants.pkl", pickle.dumps({}, protocol=2))]:
            zout.writestr(n, data)
    r = subprocess.run([sys.executable, "-m", "xbarlab.cli", "dnn-eval", str(p)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and "TorchScript" in r.stderr, r.stderr
