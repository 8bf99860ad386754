"""bench_revisions.py's pairing, ratios and option checks (not its numbers: speed is never a unit test)."""

from pathlib import Path

import pytest
from scripts import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_revisions")


def test_pairs_alternate_the_order(bench, monkeypatch):
    calls = []
    monkeypatch.setattr(bench, "run_child", lambda tree, code, *args: calls.append(tree) or {"t": 1.0})
    runs = bench.pairs({"baseline": "B", "new": "N"}, 3, "code")
    assert calls == ["B", "N", "N", "B", "B", "N"]
    assert all(set(r) == {"baseline", "new"} for r in runs)


def test_dnn_suite_reports_the_median_pair_ratio(bench, monkeypatch, tmp_path):
    # crossbar (baseline, new) per pair: ratios 1.04, 1.10, 1.0 -> median 1.04 (within +5 %); plain equal
    times = iter([(10.0, 10.4), (10.0, 11.0), (10.0, 10.0)])
    got = {}

    def child(tree, code, *args):
        assert code is bench.DNN_CHILD and args[:3] == (4, 3, 1) and args[3] == "convnet:differential"
        tree = str(tree)
        if tree not in got:  # one time pair per pair of children: baseline first or new first
            got.clear()
            b, n = next(times)
            got.update(B=b, N=n)
        t = got.pop(tree)
        return {"convnet:differential": {"plain": 1.0, "crossbar": t, "generate": 0.0}}

    monkeypatch.setattr(bench, "run_child", child)
    monkeypatch.setattr(bench, "export", lambda rev, dest: Path("B"))
    monkeypatch.setattr(bench, "ROOT", Path("N"))
    monkeypatch.setattr(bench, "resolve", lambda rev: "0" * 40)
    assert bench.main(["--suite", "dnn", "--baseline", "abc", "--pairs", "3", "--reps", "3", "--batch", "4",
                       "--models", "convnet", "--no-offset", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "bench_revisions_dnn.md").read_text()
    row = [ln for ln in text.splitlines() if ln.startswith("| convnet")][0].split("|")
    assert float(row[5]) == pytest.approx(1.04) and row[6].strip() == "1.000" and row[7].strip() == "yes"


@pytest.mark.parametrize("argv, message", [
    (["--suite", "dnn"], "needs --baseline"),
    (["--suite", "dnn", "--baseline", "no-such-revision-xyz"], "not a commit"),
    (["--suite", "dnn", "--baseline=--upload-pack=x"], "not a commit"),  # never read as a git option
    (["--suite", "dnn", "--baseline", "HEAD", "--models", "vgg"], "--models"),
    (["--suite", "dnn", "--baseline", "HEAD", "--batch", "0"], "--batch"),
    (["--pairs", "0"], "--pairs"),
])
def test_bad_options_give_one_line(bench, capsys, argv, message):
    with pytest.raises(SystemExit) as e:
        bench.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_interleave_alternates_single_inferences_between_two_servers(bench, monkeypatch, tmp_path):
    """--interleave: one server per tree; each round times plain then crossbar in both trees, the order
    flipping every round; the ratio is the median over rounds (here 1.1, 0.9, 1.0 -> 1.0)."""
    log = []
    crossbar = {("B", 0): 10.0, ("N", 0): 11.0, ("B", 1): 10.0, ("N", 1): 9.0, ("B", 2): 10.0, ("N", 2): 10.0}

    class Server:
        def __init__(self, argv, cwd, **kw):
            assert argv[2] is bench.DNN_SERVER and argv[-1] == "convnet:differential"
            self.tree, self.lines, self.round = str(cwd), ["ready\n"], {}
            self.stdin, self.stdout = self, self

        def write(self, line):
            case, which = line.split()
            n = sum(1 for t, c, w in log if t == self.tree and w == which)
            log.append((self.tree, case, which))
            self.lines.append(f"{crossbar[(self.tree, n)] if which == 'crossbar' else 1.0}\n")

        def readline(self):
            return self.lines.pop(0)

        def flush(self):
            pass

        def close(self):
            pass

        def wait(self):
            return 0

    monkeypatch.setattr(bench.subprocess, "Popen", Server)
    monkeypatch.setattr(bench, "export", lambda rev, dest: Path("B"))
    monkeypatch.setattr(bench, "ROOT", Path("N"))
    monkeypatch.setattr(bench, "resolve", lambda rev: "0" * 40)
    assert bench.main(["--suite", "dnn", "--baseline", "abc", "--interleave", "--reps", "3", "--batch", "4",
                       "--models", "convnet", "--no-offset", "--out", str(tmp_path)]) == 0
    assert [t for t, _, w in log if w == "crossbar"] == ["B", "N", "N", "B", "B", "N"]
    text = (tmp_path / "bench_revisions_dnn.md").read_text()
    row = [ln for ln in text.splitlines() if ln.startswith("| convnet")][0].split("|")
    assert float(row[5]) == pytest.approx(1.0) and row[6].strip() == "1.000" and row[7].strip() == "yes"
    assert "--interleave" in text and "fastest inference" in text
