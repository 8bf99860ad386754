"""Hostile model and data files execute nothing and stay within 1 GB (issue 10, point 2).

Every file is crafted at test time (``hostile_files``). One child process
per test module imports torch once and loads each file in a process of its
own forked from it (memory guarded, see ``child_loader.guard_memory``); it
reports, per file, what loading raised and that process's own peak RSS
(``ru_maxrss`` from ``os.wait4``: about 160 MB for a fork that refuses at
once, against about 250 MB for a fresh process that imports torch; the CLI
tests measure whole fresh processes).
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import child_loader  # noqa: E402  (tests/security is on sys.path under pytest's rootdir imports)
import hostile_files as hf  # noqa: E402
import hostile_programs as hp  # noqa: E402

from dnn_eval.loading import WEIGHTS_DIR, load_model  # noqa: E402

PEAK_LIMIT = 1_000_000_000  # bytes of peak RSS a child may reach on any hostile file
SRC = WEIGHTS_DIR / "convnet.pt2"

# name -> (builder(dir) -> (path, marker or None), kind, what the refusal must say)
CASES = {
    "duplicate_sample_inputs": (lambda d: (hf.duplicate_sample_inputs(SRC, d / "a.pt2", d / "M_a"), d / "M_a"),
                                "pt2", "duplicate entry name .* appears twice"),
    "duplicate_weights_config": (lambda d: (hf.duplicate_weights_config(SRC, d / "b.pt2", d / "M_b"), d / "M_b"),
                                 "pt2", "duplicate entry name .* appears twice"),
    "case_twin_config": (lambda d: (hf.case_twin_weights_config(SRC, d / "c.pt2", d / "M_c"), d / "M_c"),
                         "pt2", "only in case"),
    "size_bomb_3GiB": (lambda d: (hf.size_bomb(SRC, d / "d.pt2"), None), "pt2", "is compressed"),
    "padded_config_bomb_3GiB": (lambda d: (hf.padded_config_bomb(SRC, d / "e.pt2"), None), "pt2", "is compressed"),
    "state_dict_size_bomb_3GiB": (lambda d: (hf.state_dict_size_bomb(WEIGHTS_DIR / "convnet.pt", d / "convnet.pt"),
                                             None), "pt2", "is compressed"),
    "local_header_name_differs": (lambda d: (hf.local_name_mismatch(SRC, d / "f.pt2", None), None),
                                  "pt2", "local header names another entry"),
    "uncounted_legacy_entries": (lambda d: (hf.uncounted_legacy_entries(SRC, d / "u.pt2", d / "M_u"), d / "M_u"),
                                 "pt2", "after the [0-9]+ entries the end record counts"),
    "legacy_weights_pickle": (lambda d: (hf.legacy_weights_file(SRC, d / "g.pt2", d / "M_g"), d / "M_g"),
                              "pt2", "unexpected entry .*data/weights/model.pt"),
    "empty_record_8GB_tensor": (lambda d: (hf.zero_record_tensor_bomb(SRC, d / "h.pt2"), None),
                                "pt2", "empty record for a tensor of 2147483648 elements"),
    "state_dict_bytearray_8GiB": (lambda d: (hf.with_pickle(WEIGHTS_DIR / "convnet.pt", d / "ba" / "convnet.pt",
                                                            hf.bytearray_pickle(8 * hf.GiB)), None),
                                  "pt2", "names the global builtins.bytearray"),
    "sample_inputs_bytearray_8GiB": (lambda d: (hf.sample_inputs_pickle(SRC, d / "v.pt2", hf.bytearray_pickle(
        8 * hf.GiB, sample_inputs=True)), None), "pt2", "names the global builtins.bytearray"),
    "state_dict_list_bomb_32MiB": (lambda d: (hf.with_pickle(WEIGHTS_DIR / "convnet.pt", d / "lb" / "convnet.pt",
                                                             hf.list_bomb_pickle(32 * hf.MiB)), None),
                                   "pt2", "data.pkl' is .* over the .*-byte limit"),
    "config_of_empty_lists_60MiB": (lambda d: (hf.list_padded_config(SRC, d / "w.pt2", 60 * hf.MiB), None),
                                    "pt2", "over the .*-byte limit"),
    **{f"program_{op}_{'declared' if dec else 'lying'}_1T": (
        lambda d, op=op, dec=dec: (hp.huge_op(op, d / f"p_{op}_{dec}.pt2", dec), None), "pt2",
        rf"node '{op}' \(aten\.{op}\.default\) {'declares' if dec else 'at batch 2 would output'} a tensor of "
        r".*[0-9]{13,} bytes.* over the cap of 33554432 bytes") for op in hp.OPS for dec in (False, True)},
    "program_outputs_alive_240MiB": (lambda d: (hp.many_alive(d / "alive.pt2", 30 * hf.MiB, 8), None), "pt2",
                                     "at node 'new_full_4' .* outputs alive at once would take 157286400 bytes, "
                                     "over the cap of 134217728"),
    "gzip_idx_bomb_3GiB": (lambda d: (hf.gzip_idx_bomb(d / "i.gz"), None), "idx", "over the .*-byte limit"),
    "gzip_idx_lying_header_3GiB": (lambda d: (hf.gzip_idx_bomb(d / "j.gz", lie=True), None),
                                   "idx", "data after the IDX payload"),
    "gzip_idx_ratio_bomb_100MiB": (lambda d: (hf.gzip_idx_bomb(d / "k.gz", size=100 * hf.MiB), None),
                                   "idx", "decompression bomb"),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    spec, markers = [], {}
    for name, (build, kind, _match) in CASES.items():
        path, marker = build(d)
        spec.append({"name": name, "kind": kind, "path": str(path)})
        markers[name] = marker
    spec.append({"name": "control_convnet_pt2", "kind": "pt2", "path": str(SRC)})
    code = f"import sys; sys.path.insert(0, {str(Path(hf.__file__).parent)!r}); import child_loader; " \
           "child_loader.child_main(sys.argv[1])"
    rc, out, err, _peak = child_loader.run_measured([sys.executable, "-c", code, json.dumps(spec)], timeout_s=600)
    got = {r["name"]: r for r in map(json.loads, (line for line in out.splitlines() if line.startswith("{")))}
    assert "control_convnet_pt2" in got, f"the loading child died (rc {rc}): {err[-2000:]}"
    return got, markers


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_file_refused_runs_nothing_within_1GB(results, name):
    got, markers = results
    r = got[name]
    marker = markers[name]
    assert marker is None or not marker.exists(), f"{name}: the hostile file ran the marker command"
    assert r["maxrss"] <= PEAK_LIMIT, f"{name}: peak RSS {r['maxrss'] / 1e6:.0f} MB ({r['outcome']})"
    assert r["outcome"] == "ValueError", f"{name}: {r['outcome']}: {r['message'][:300]}"
    assert "\n" not in r["message"]
    assert re.search(CASES[name][2], r["message"]), r["message"]


def test_control_still_loads_in_the_child(results):
    got, _ = results
    assert got["control_convnet_pt2"]["outcome"] == "accepted", got["control_convnet_pt2"]


@pytest.mark.parametrize("raw", [b"convnet/data/weights/..", b"convnet/data/./weights/weight_0", b"/convnet/version",
                                 b"convnet\\data/x", b"convnet/data/weights/weight_0\x00evil", b"convnet//version"])
def test_unsafe_entry_names_refused(tmp_path, raw):
    ents = hf.pt2_entries(SRC) + [hf.Entry.stored(raw, b"")]
    p = hf.write_zip(tmp_path / "n.pt2", ents)
    with pytest.raises(ValueError, match=r"not a plain relative path|'\.' or '\.\.' component"):
        load_model(str(p))


def test_export_to_an_unusual_file_name_still_loads(tmp_path):
    # torch names the archive's top folder after the file's stem, spaces and accents included
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    p = tmp_path / "my net-v2 (é).pt2"
    torch.export.save(torch.export.export(net, (torch.rand(2, 1, 8, 8),)), p)
    assert load_model(str(p)).kind == "pt2"


def test_prefixed_data_and_trailing_comment_refused(tmp_path):
    from dnn_eval.archive import read_archive

    raw = SRC.read_bytes()  # zip64 end records, as torch writes them
    with pytest.raises(ValueError, match="inconsistent zip64 end records"):
        read_archive(io.BytesIO(b"junk" + raw), "x.pt2")
    plain = hf.write_zip(tmp_path / "p.pt2", hf.pt2_entries(SRC)).read_bytes()  # no zip64
    read_archive(io.BytesIO(plain), "p.pt2")
    with pytest.raises(ValueError, match="prefixed"):
        read_archive(io.BytesIO(b"junk" + plain), "p.pt2")
    with pytest.raises(ValueError, match="end record must end the file"):
        read_archive(io.BytesIO(raw + b"\x00"), "x.pt2")


def test_overlapping_entries_refused(tmp_path):
    from dnn_eval.archive import read_archive

    p = hf.overlapping_zip(tmp_path / "o.pt")
    with open(p, "rb") as f, pytest.raises(ValueError, match="overlap"):
        read_archive(f, p)


def test_stored_size_that_the_file_does_not_hold_refused(tmp_path):
    from dnn_eval.archive import read_archive

    p = hf.write_zip(tmp_path / "s.pt2", hf.pt2_entries(SRC))
    data = bytearray(p.read_bytes())
    cd = int.from_bytes(data[-6:-2], "little")  # the end record's central directory offset
    data[cd + 20:cd + 28] = (3 << 30).to_bytes(4, "little") * 2  # the first entry claims 3 GiB, stored
    with pytest.raises(ValueError, match="runs past the data area"):
        read_archive(io.BytesIO(bytes(data)), "s.pt2")


def test_pickle_scan_refuses_code_and_allows_tensors():
    from dnn_eval.archive import read_archive, read_member, scan_pickle

    import pickle

    with pytest.raises(ValueError, match="posix.system|os.system"):
        scan_pickle(hf.hostile_pickle("/nonexistent/MARKER"), "evil")
    with pytest.raises(ValueError, match="global from the stack"):  # protocol 4: STACK_GLOBAL
        scan_pickle(pickle.dumps(hf.Hostile("/nonexistent/MARKER"), protocol=4), "evil")
    buf = io.BytesIO()
    torch.save(((torch.zeros(2, 3),), {}), buf)
    arc = read_archive(io.BytesIO(buf.getvalue()), "ok.pt")
    pkl = next(n for n in arc.names() if n.endswith("data.pkl"))
    scan_pickle(read_member(io.BytesIO(buf.getvalue()), arc, pkl, 1 << 20), "ok")


def test_sample_inputs_pickle_scanned_where_torch_reads_it(tmp_path):
    # torch.load reads archive/DATA.PKL (case-blind); the scan must not look at archive/sub/data.pkl instead
    p = hf.case_twin_sample_pickle(SRC, tmp_path / "s.pt2")
    with pytest.raises(ValueError, match="_rebuild_from_type_v2"):
        load_model(str(p))


def _cli(args) -> tuple[int, str, int]:
    code = child_loader.CLI_WRAPPER.format(here=str(Path(hf.__file__).parent))
    rc, _out, err, peak = child_loader.run_measured([sys.executable, "-c", code, *args], timeout_s=300)
    return rc, err, peak


def test_cli_pt2_bomb_one_line_within_1GB(tmp_path):
    p = hf.size_bomb(SRC, tmp_path / "bomb.pt2")
    rc, err, peak = _cli(["dnn-eval", str(p)])
    assert rc != 0 and len(err.strip().splitlines()) == 1 and "is compressed" in err, err[-1500:]
    assert peak <= PEAK_LIMIT, f"peak RSS {peak / 1e6:.0f} MB"


def test_cli_gzip_idx_bomb_one_line_within_1GB(tmp_path):
    hf.gzip_idx_bomb(tmp_path / "t10k-images-idx3-ubyte.gz")
    hf.gzip_idx_bomb(tmp_path / "t10k-labels-idx1-ubyte.gz", lie=True)
    rc, err, peak = _cli(["dnn-eval", "convnet", "--dataset", "mnist", "--data-dir", str(tmp_path)])
    assert rc != 0 and len(err.strip().splitlines()) == 1 and "refused" in err, err[-1500:]
    assert peak <= PEAK_LIMIT, f"peak RSS {peak / 1e6:.0f} MB"


def test_mangled_archives_give_only_value_errors():
    # seeded byte flips and cuts anywhere in a real .pt2: the checker refuses with ValueError, nothing else
    import random

    from dnn_eval.archive import read_archive

    raw = SRC.read_bytes()
    rng = random.Random(0)
    refused = 0
    for _ in range(300):
        data = bytearray(raw)
        if rng.random() < 0.3:
            data = data[:rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 4)):
                at = rng.choice([rng.randrange(len(data)), len(data) - rng.randrange(1, 200)])
                data[at] = rng.randrange(256)
        try:
            read_archive(io.BytesIO(bytes(data)), "m.pt2")
        except ValueError:
            refused += 1
    assert refused > 250  # nearly every mutation is caught (a flip inside padding may be harmless)
