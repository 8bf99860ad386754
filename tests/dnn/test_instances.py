"""``dnn-eval --instances N``: chip instances as a cached, resumable sweep (dnn_eval/instances.py).

Small and cheap: the bundled mlp on 30 digits test images at Cross32 (12 tiles),
sigma/mu = 10 %, a few instances, mostly in this process (``--scheduler inline``)
so that the evaluations can be counted.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")

from dnn_eval import DEFAULT_PRESET  # noqa: E402
from dnn_eval import evaluate as ev  # noqa: E402
from dnn_eval.instances import (MAX_INSTANCES, InstanceSetup, instance_seeds, instance_tasks,  # noqa: E402
                                run_instances)
from xbarlab.cli import main  # noqa: E402

LIMIT = 30
ARGV = ["dnn-eval", "mlp", "--limit", str(LIMIT), "--xbar", "32", "--variation", "0.1"]


@pytest.fixture(scope="module")
def setup():
    from dnn_eval.data import Split, load_test_split
    from dnn_eval.evaluate import default_options, make_spec
    from dnn_eval.loading import load_model

    t = load_test_split("digits")
    split = Split(t.x[:LIMIT], t.y[:LIMIT])
    lm = load_model("mlp", split.input_shape)
    spec = make_spec(DEFAULT_PRESET, 32, variation=0.1)
    from dnn_eval.calibration import CLI_DEFAULT  # the CLI's converter ranges, as ARGV runs

    return InstanceSetup.from_loaded(lm, split, "mlp", None, "digits", None, LIMIT, spec, default_options(spec), 7,
                                     ranges=CLI_DEFAULT)


class _Calls(list):
    def __init__(self):
        super().__init__()
        self.fail = {}


@pytest.fixture
def calls(monkeypatch):
    """Seeds of the evaluations really run (this process); ``calls.fail`` maps a seed or a call number to
    the exception to raise instead."""
    real = ev.evaluate
    log = _Calls()

    def counted(lm, split, spec, seed, options, **kw):
        log.append(seed)
        exc = log.fail.pop(seed, None) or log.fail.pop(len(log), None)
        if exc is not None:
            raise exc
        return real(lm, split, spec, seed, options, **kw)

    monkeypatch.setattr(ev, "evaluate", counted)
    return log


def accuracies(res):
    return [r["accuracy_crossbar"] for r in res["instances"]]


def test_seeds_derived_by_seed_sequence():
    s = instance_seeds(5, 6)
    assert s == instance_seeds(5, 6) and s[:3] == instance_seeds(5, 3)  # deterministic, prefix-stable
    assert len(set(s)) == 6 and all(0 <= v < 2**63 for v in s) and s != instance_seeds(6, 6)
    assert s[2] == int(np.random.SeedSequence(5).spawn(6)[2].generate_state(1, np.uint64)[0]) >> 1
    for bad in (0, -1, MAX_INSTANCES + 1, 2.0, True, "3"):
        with pytest.raises(ValueError, match=r"instances must be an integer in 1\.\.100000, got"):
            instance_seeds(0, bad)
    with pytest.raises(ValueError, match="seed must be an integer"):
        instance_seeds(-1, 2)


def test_same_seed_same_accuracies_and_one_instance_reproduced(setup, calls, tmp_path):
    a = run_instances(setup, 3, tmp_path / "a.sqlite", scheduler="inline")
    b = run_instances(setup, 3, tmp_path / "b.sqlite", scheduler="inline")
    assert len(calls) == 6 and a["counts"]["ok"] == 3
    assert accuracies(a) == accuracies(b) and [r["seed"] for r in a["instances"]] == instance_seeds(7, 3)
    # each instance is `dnn-eval --seed SEED` alone
    split, lm = setup.load()
    seed = a["instances"][2]["seed"]
    from dnn_eval.calibration import CLI_DEFAULT, calibration_batch
    from dnn_eval.data import load_bundled_split

    cal = calibration_batch(load_bundled_split("digits")[0].x, CLI_DEFAULT.samples)
    assert ev.evaluate(lm, split, setup.spec, seed, setup.options, ranges=CLI_DEFAULT,
                       calibration=cal)["accuracy_crossbar"] == accuracies(a)[2]
    acc = np.array(accuracies(a))
    st = a["accuracy_crossbar"]
    assert (st["mean"], st["min"], st["max"]) == (acc.mean(), acc.min(), acc.max())
    assert st["std"] == pytest.approx(acc.std(ddof=1), abs=1e-15)
    assert st["sem"] == pytest.approx(acc.std(ddof=1) / np.sqrt(3), abs=1e-15)
    assert a["accuracy_drop_mean"] == pytest.approx(a["accuracy_fp32"] - acc.mean())


def test_local_processes_and_dask_give_the_same_instances(setup, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    inline = run_instances(setup, 2, tmp_path / "i.sqlite", scheduler="inline")
    local = run_instances(setup, 2, tmp_path / "l.sqlite", workers=2)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster:
        dask = run_instances(setup, 2, tmp_path / "d.sqlite", scheduler=cluster.scheduler_address)
        # the CLI on the cluster: as many in flight as it has threads when --workers is not given
        assert main([*ARGV, "--instances", "2", "--seed", str(setup.base_seed), "--scheduler",
                     cluster.scheduler_address, "--json", "--out", str(tmp_path / "cli")]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert accuracies(inline) == accuracies(local) == accuracies(dask) == accuracies(cli)
    assert local["counts"]["ok"] == dask["counts"]["ok"] == cli["counts"]["ok"] == 2
    assert cli["config"]["workers"] == 2 and cli["config"]["scheduler"] == cluster.scheduler_address


def test_workers_with_several_torch_threads_start_from_a_fork_server():
    import multiprocessing

    from dnn_eval.instances import _fork_safe_workers

    before = multiprocessing.get_start_method()
    with _fork_safe_workers(True):
        assert multiprocessing.get_start_method() == ("forkserver" if before == "fork" else before)
    with _fork_safe_workers(False):
        assert multiprocessing.get_start_method() == before
    assert multiprocessing.get_start_method() == before


@pytest.mark.slow  # each fork-server worker imports torch afresh: about 20 s on 2 busy cores
def test_workers_with_several_torch_threads_do_not_hang(setup, tmp_path):
    import dataclasses

    import torch

    torch.set_num_threads(2)
    torch.randn(512, 512).exp().matmul(torch.randn(512, 512)).sum()  # this process now has an OpenMP pool
    torch.set_num_threads(1)
    two = dataclasses.replace(setup, threads=2)
    inline = run_instances(two, 2, tmp_path / "i.sqlite", scheduler="inline")
    local = run_instances(two, 2, tmp_path / "l.sqlite", workers=2, timeout_s=300)  # a hang fails, not blocks
    assert local["n_failed"] == 0 and accuracies(local) == accuracies(inline)
    torch.set_num_threads(1)


def test_progress_bar_only_on_a_terminal_without_json():
    from argparse import Namespace

    from dnn_eval.instances_cli import show_progress

    class Tty:
        def isatty(self):
            return True

    plain = Namespace(json=False, no_progress=False)
    assert show_progress(plain, Tty()) and not show_progress(plain, object())
    assert not show_progress(Namespace(json=True, no_progress=False), Tty())
    assert not show_progress(Namespace(json=False, no_progress=True), Tty())


def test_failed_instance_is_reported_and_retried(setup, calls, tmp_path):
    store = tmp_path / "s.sqlite"
    seeds = instance_seeds(setup.base_seed, 4)
    calls.fail[seeds[1]] = RuntimeError("simulated crash of instance 1")
    res = run_instances(setup, 4, store, scheduler="inline")
    assert res["counts"] == {"total": 4, "skipped": 0, "ok": 3, "failed": 1}
    assert res["failed"] == [{"instance": 1, "seed": seeds[1], "error": "RuntimeError: simulated crash of instance 1"}]
    assert res["n_ok"] == 3 and res["instances"][1]["accuracy_crossbar"] is None
    ok = [a for a in accuracies(res) if a is not None]
    assert res["accuracy_crossbar"]["mean"] == pytest.approx(np.mean(ok))  # over the finished ones only
    del calls[:]
    again = run_instances(setup, 4, store, scheduler="inline")
    assert calls == [seeds[1]]  # only the failed one is recomputed
    assert again["counts"] == {"total": 4, "skipped": 3, "ok": 1, "failed": 0} and again["n_failed"] == 0


def test_inputs_that_differ_from_the_fingerprints_are_refused(setup, tmp_path):
    import dataclasses

    other = dataclasses.replace(setup, data_sha256="0" * 64)
    res = run_instances(other, 1, tmp_path / "s.sqlite", scheduler="inline")
    assert res["n_failed"] == 1 and "test data" in res["failed"][0]["error"] and "sha256" in res["failed"][0]["error"]
    with pytest.raises(ValueError, match="threads must be an integer"):
        dataclasses.replace(setup, threads=0)
    with pytest.raises(ValueError, match="instances must be"):
        instance_tasks(setup, 0)


def test_cli_json_fields_and_files(tmp_path, capsys):
    assert main([*ARGV, "--instances", "3", "--seed", "7", "--scheduler", "inline", "--json", "--out",
                 str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["accuracy_crossbar"]) == {"mean", "std", "sem", "min", "max"}
    assert out["n_instances"] == 3 and out["n_ok"] == 3 and out["n_samples"] == LIMIT and out["failed"] == []
    assert [r["seed"] for r in out["instances"]] == instance_seeds(7, 3)
    assert [r["instance"] for r in out["instances"]] == [0, 1, 2]
    assert all(r["status"] == "ok" and 0 <= r["accuracy_crossbar"] <= 1 for r in out["instances"])
    c = out["config"]
    assert (c["instances"], c["base_seed"], c["variation"], c["xbar"]) == (3, 7, 0.1, 32) and "SeedSequence" in c["seed_rule"]
    assert json.loads(open(out["files"]["json"]).read())["instances"] == out["instances"]
    assert len(open(out["files"]["csv"]).read().strip().splitlines()) == 1 + 3
    assert out["files"]["csv"].endswith("-n3.csv")  # (a run of another count keeps its own files)
    # the text table: the distribution and every instance, all from the cache now
    assert main([*ARGV, "--instances", "3", "--seed", "7", "--scheduler", "inline", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "0 computed, 3 from cache" in text and "mean" in text and "std" in text
    assert all(str(r["seed"]) in text for r in out["instances"])


def test_cli_interrupted_run_keeps_what_finished_and_resumes(tmp_path, calls, capsys):
    argv = [*ARGV, "--instances", "4", "--scheduler", "inline", "--json", "--out", str(tmp_path)]
    calls.fail[3] = KeyboardInterrupt()  # Ctrl-C during the third instance
    assert main(argv) == 130
    assert "interrupted" in capsys.readouterr().err
    saved = json.loads(next(tmp_path.glob("dnn_instances-mlp-*.json")).read_text())
    assert saved["interrupted"] and [r["status"] for r in saved["instances"]] == ["ok", "ok", "not run", "not run"]
    del calls[:]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(calls) == 2 and out["counts"] == {"total": 4, "skipped": 2, "ok": 2, "failed": 0}
    assert out["instances"][:2] == saved["instances"][:2]


def _rows(text: str, names) -> dict:
    found = {}
    for line in text.splitlines():
        for name in names:
            if line.startswith(name + "  "):
                found[name] = line[len(name):].strip()
    return found


def test_cli_table_names_the_cell_sensing_and_converter_ranges(tmp_path, capsys):
    """The --instances table lacked the rows of a single run's table that say what produced the numbers."""
    names = ("cell", "sensing", "converter ranges")
    argv = [*ARGV, "--sensing", "differential", "--seed", "7"]
    assert main([*argv, "--instances", "1", "--scheduler", "inline", "--out", str(tmp_path)]) == 0
    table = _rows(capsys.readouterr().out, names)
    assert main(argv) == 0
    single = _rows(capsys.readouterr().out, names)
    assert table == single and len(table) == 3
    assert table["cell"] == "1R" and table["sensing"] == "differential" and "ADC worst-case" in table[
        "converter ranges"]


SIGTERM_SCRIPT = """
import os, signal, sys
from dnn_eval import evaluate as ev
from xbarlab.cli import main

real, calls = ev.evaluate, []


def evaluate(*args, **kwargs):  # a batch scheduler's SIGTERM during the third instance
    calls.append(1)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGTERM)
    return real(*args, **kwargs)


ev.evaluate = evaluate
sys.exit(main(sys.argv[1:]))
"""


def test_cli_sigterm_stops_as_ctrl_c_does(tmp_path):
    """SIGTERM ended the command without a word and without the files of the instances finished so far."""
    argv = [*ARGV, "--instances", "4", "--scheduler", "inline", "--json", "--out", str(tmp_path)]
    r = subprocess.run([sys.executable, "-c", SIGTERM_SCRIPT, *argv], capture_output=True, text=True, timeout=300)
    assert r.returncode == 143, r.stderr[-3000:]
    assert r.stderr.strip().splitlines() == ["xbarlab: terminated by SIGTERM (finished results are saved)"]
    saved = json.loads(next(tmp_path.glob("dnn_instances-mlp-*.json")).read_text())
    assert saved["interrupted"] and [r["status"] for r in saved["instances"]] == ["ok", "ok", "not run", "not run"]


def test_cli_failed_instance_exits_1_with_one_line(tmp_path, calls, capsys):
    calls.fail[2] = ValueError("simulated")
    assert main([*ARGV, "--instances", "2", "--scheduler", "inline", "--out", str(tmp_path)]) == 1
    cap = capsys.readouterr()
    assert "FAILED" not in cap.out and "ERROR: ValueError: simulated" in cap.out
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and "1 of 2 chip instances failed" in lines[0] and "rerun retries" in lines[0]


def test_cli_warns_when_instances_cannot_differ(tmp_path, capsys):
    assert main(["dnn-eval", "mlp", "--limit", "10", "--xbar", "32", "--variation", "0", "--instances", "2",
                 "--scheduler", "inline", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "no device variation" in err and "identical" in err


@pytest.mark.parametrize("extra, msg", [
    (["--instances", "0"], "--instances: expected a number of instances in 1..100000, got 0"),
    (["--instances", "x"], "--instances: expected a number of instances in 1..100000, got 'x'"),
    (["--instances", "100001"], "got 100001"),
    (["--instances", "2", "--workers", "0"], "--workers: expected a number of workers in 1..1024, got 0"),
    (["--instances", "2", "--timeout-s", "-1"], "timeout must be in (0, 1e6] seconds"),
    (["--instances", "2", "--scheduler", "nohost"], "--scheduler: scheduler must be a dask scheduler address"),
    (["--workers", "2"], "--workers needs --instances N"),
    (["--out", "somewhere"], "--out needs --instances N"),
])
def test_cli_bad_options_one_line(extra, msg, capsys):
    assert main([*ARGV, *extra]) != 0
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_unwritable_out_one_line_no_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = subprocess.run([sys.executable, "-m", "xbarlab.cli", *ARGV, "--instances", "2", "--out", str(blocker / "x")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "--out" in r.stderr and "not a writable folder" in r.stderr


def test_cli_unreachable_scheduler_one_line(tmp_path, capsys):
    assert main([*ARGV, "--instances", "2", "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ConnectionError: cannot reach the dask scheduler at tcp://127.0.0.1:1" in err[0]


@pytest.mark.slow  # a real kill -9 of the command, then the rerun: about 30 s
def test_cli_killed_run_resumes(tmp_path):
    import os
    import signal
    import sqlite3
    import time

    argv = [sys.executable, "-m", "xbarlab.cli", "dnn-eval", "mlp", "--limit", "200", "--xbar", "32", "--variation",
            "0.1", "--instances", "6", "--out", str(tmp_path), "--json"]
    store = tmp_path / ".cache" / "dnn_instances.sweep.sqlite"
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done, deadline = 0, time.monotonic() + 240
    while done < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if store.exists():
            with sqlite3.connect(store) as db:
                done = db.execute("select count(*) from results where status = 'ok'").fetchone()[0]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= done < 6
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["counts"]["skipped"] >= done and out["counts"]["ok"] + out["counts"]["skipped"] == 6
    assert out["n_ok"] == 6


def test_cli_empty_out_is_refused_not_replaced_by_reports(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([*ARGV, "--instances", "1", "--scheduler", "inline", "--out", ""]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out must name a folder, got ''" in err[0]
    assert not (tmp_path / "reports").exists()  # (it silently wrote the results to ./reports)
