"""The speed benchmark's measuring helpers (not its numbers: speed is never a unit test)."""


import numpy as np
import pytest
from scripts import load_benchmark

torch = pytest.importorskip("torch")

from dnn_eval.convert import to_crossbar  # noqa: E402
from dnn_eval.evaluate import default_options, make_spec  # noqa: E402
from dnn_eval.loading import load_model  # noqa: E402
from xbarlab.fcm import cpu_kernels  # noqa: E402


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_dnn")


def test_time_pair_alternates_and_takes_the_median_pair_ratio(bench, monkeypatch):
    calls = []
    # a clock that ticks 1 per plain run and 3 per crossbar run, except one slow pair (10 and 40)
    ticks = iter([0, 1, 1, 4] + [0, 1, 1, 4, 0, 10, 10, 50, 0, 1, 1, 4])
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(ticks))
    tp, tx, ratio = bench.time_pair(lambda: calls.append("p"), lambda: calls.append("x"), torch.device("cpu"), 3)
    assert calls == ["p", "x"] * 4  # one warm-up each, then alternating pairs
    assert (tp, tx, ratio) == (1, 3, 3.0)


@pytest.mark.skipif(not cpu_kernels.enabled(), reason="phase_breakdown times the fused CPU kernels")
def test_phase_breakdown_restores_what_it_wraps(bench):
    spec = make_spec("spintronic", 64)
    xm = to_crossbar(load_model("mlp").module, spec, np.random.default_rng(0), default_options(spec))
    x = torch.rand((16, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    kern = cpu_kernels.kernels()
    before = (torch.matmul, torch.mul, {k: getattr(kern, k) for k in vars(kern)})
    out = bench.phase_breakdown(xm, x, 2)
    assert (torch.matmul, torch.mul, {k: getattr(kern, k) for k in vars(kern)}) == before
    assert set(out) == set(bench.PHASES) | {"rest (Python, allocation, other layers)", "total"}
    assert out["tile products (BLAS)"] > 0 and out["total"] >= sum(out[p] for p in bench.PHASES)


def _measured_unchanged(xm, x, measure):
    """measure()'s result, after checking that the one inference it runs gives bitwise the output of a
    plain call of xm(x) and that every fused kernel is put back."""
    kern = cpu_kernels.kernels()
    before = {k: getattr(kern, k) for k in vars(kern)}
    with torch.no_grad():
        ref = xm(x)
    outputs = []
    hook = xm.register_forward_hook(lambda m, a, y: outputs.append(y.clone()))
    try:
        out = measure()
    finally:
        hook.remove()
    assert {k: getattr(kern, k) for k in vars(kern)} == before
    assert len(outputs) == 1 and torch.equal(outputs[0], ref)
    return out


@pytest.mark.skipif(not cpu_kernels.enabled(), reason="converter_floor times the fused CPU kernels")
def test_converter_floor_leaves_the_inference_and_the_kernels_as_they_were(bench):
    """The re-timed calls run on copies: the inference under converter_floor gives bitwise the output
    of a plain call, the kernels are put back, and every converter phase is timed."""
    from converter_floor import CONVERTERS

    spec = make_spec("spintronic", 64)
    xm = to_crossbar(load_model("convnet").module, spec, np.random.default_rng(0), default_options(spec))
    x = torch.rand((16, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    out = _measured_unchanged(xm, x, lambda: bench.converter_floor(xm, x, 1))
    assert set(out) == set(CONVERTERS) | {"total"} and all(v > 0 for v in out.values())
    assert out["total"] == pytest.approx(sum(out[p] for p in CONVERTERS))


@pytest.mark.skipif(not cpu_kernels.enabled(), reason="bare_floor counts the fused CPU kernels' calls")
def test_bare_floor_charges_each_call_its_elements_and_restores_the_kernels(bench, monkeypatch):
    """Linear(100, 10) on 64 x 64 tiles, differential pair, 8 unsigned inputs: 100 x 8 DAC inputs; row
    voltages on both arrays of both row tiles (64 + 36 rows) for 8 inputs, 2 x 100 x 8; ADC samples of
    10 columns of 2 x 2 tiles, 320. With every operation at 1 s per element those are the seconds; the
    inference's output is that of a plain call, and the kernels are put back."""
    import converter_floor

    monkeypatch.setattr(converter_floor, "op_costs", lambda dtype: dict.fromkeys(
        ["code", "code signed", "rowsum", "adc", "diff", "diff sum"], 1.0))
    spec = make_spec("spintronic", 64)
    xm = to_crossbar(torch.nn.Sequential(torch.nn.Linear(100, 10)), spec, np.random.default_rng(0),
                     default_options(spec))
    x = torch.rand((8, 100), generator=torch.Generator().manual_seed(0))
    out = _measured_unchanged(xm, x, lambda: converter_floor.bare_floor(xm, x))
    assert out == {"DAC codes": 800.0, "DAC load (ROWSUM voltages)": 1600.0, "ADC + accumulation": 320.0,
                   "total": 2720.0}


@pytest.mark.skipif(not cpu_kernels.enabled(), reason="op_costs compiles numba loops")
def test_op_costs_gives_a_positive_cost_per_element_for_every_operation():
    import converter_floor

    ops = {"code", "code signed", "rowsum", "adc", "diff", "diff sum"}  # what OPS can name
    for dtype in ("float32", "float64"):
        costs = converter_floor.op_costs(dtype)  # (400 passes: a dropped repetition shows)
        # above 1 ps per element: a compiler that dropped the repeated passes would give about 1/400 of
        # the true cost (0.1-0.7 ns on the development hosts), below it
        assert set(costs) == ops and all(1e-12 < v < 1e-6 for v in costs.values())


def test_time_interleaved_runs_one_of_each_per_round(bench):
    calls = []
    fns = [lambda k=k: calls.append(k) for k in "pxlt"]
    times = bench.time_interleaved(fns, torch.device("cpu"), 3)
    assert calls == list("pxlt") * 4 and [len(t) for t in times] == [3] * 4


def test_report_gives_both_goal_ratios_for_every_inference_row(bench):
    import argparse

    import pandas as pd

    row = {"mapping": "differential", "batch": 8, "plain_s": 1.0, "crossbar_s": 1.4, "target": bench.PLAIN_GOAL,
           "generate_s": 0.1, "plain_channels_last_s": 1.0, "plain_layers_s": 0.5, "tile_products_s": 0.6,
           "floor_s": 1.1, "floor_goal_ratio": 1.4 / 1.1, "ratio": 1.4}
    rows = [{**row, "benchmark": "inference a, sensing=separate", "sensing": "separate"},
            {**row, "benchmark": "inference a, sensing=differential", "sensing": "differential", "ratio": 1.6}]
    df = pd.DataFrame(rows).assign(device="cpu", cpu="a CPU", load_start=1.0, load_end=2.0)
    lines = bench.report_lines(df, rows, argparse.Namespace(reps=3, threads=1), torch.device("cpu"))
    goal = [ln for ln in lines if ln.startswith("| inference a") and ln.count("|") == 13]
    assert goal == ["| inference a, sensing=separate | 1000.00 | 500.00 | 600.00 | n/a | 1100.00 | 1400.00 | 1.27 | "
                    "yes | 1.40 | yes | floor |",
                    "| inference a, sensing=differential | 1000.00 | 500.00 | 600.00 | n/a | 1100.00 | 1400.00 | 1.27 | "
                    "yes | 1.60 | NO | plain |"]
    # the crossbar's own products (phase_breakdown) against the floor's: flagged where the floor's took longer
    own = [{**rows[0], "phase tile products (BLAS) s": t, "phase total s": 1.4} for t in (0.6, 0.59)]
    df = pd.DataFrame(own).assign(device="cpu", cpu="a CPU", load_start=1.0, load_end=2.0)
    lines = bench.report_lines(df, own, argparse.Namespace(reps=3, threads=1), torch.device("cpu"))
    cells = [ln.split(" | ")[4] for ln in lines if ln.startswith("| inference a") and ln.count("|") == 13]
    assert cells == ["600.00", "590.00 (floor > own)"]


def test_report_gives_the_converter_bound_against_both_goals(bench):
    import argparse

    import pandas as pd

    conv = {"converters warm DAC codes s": 0.1, "converters warm DAC load (ROWSUM voltages) s": 0.2,
            "converters warm ADC + accumulation s": 0.1, "converters warm total s": 0.4,
            "converter_bound_floor_ratio": 1.4, "converter_bound_plain_ratio": 1.4}
    row = {"benchmark": "inference a, sensing=separate", "sensing": "separate", "mapping": "differential",
           "batch": 8, "plain_s": 1.0, "crossbar_s": 1.4, "target": bench.PLAIN_GOAL, "generate_s": 0.1,
           "plain_channels_last_s": 1.0, "plain_layers_s": 0.5, "tile_products_s": 0.5, "floor_s": 1.0,
           "floor_goal_ratio": 1.4, "ratio": 1.4, **conv}
    df = pd.DataFrame([row]).assign(device="cpu", cpu="a CPU", load_start=1.0, load_end=2.0)
    lines = bench.report_lines(df, [row], argparse.Namespace(reps=3, threads=1), torch.device("cpu"))
    start = lines.index("## The converters' own arithmetic against the floor goal")
    # (floor 1.0 s + converters 0.4 s): 1.4 x floor (above 1.3: NO) and 1.4 x plain (within 1.5: yes)
    assert lines[start + 6] == ("| inference a, sensing=separate | 1000.00 | 100.00 | 200.00 | 100.00 | 400.00 | "
                                "1.40 | NO | 1.40 | yes |")
    # with the bare operations too (floor 1.0 s + 0.25 s): 1.25 x floor and 1.25 x plain, both within
    bare = {"converters bare DAC codes s": 0.05, "converters bare DAC load (ROWSUM voltages) s": 0.15,
            "converters bare ADC + accumulation s": 0.05, "converters bare total s": 0.25,
            "bare_bound_floor_ratio": 1.25, "bare_bound_plain_ratio": 1.25}
    row = {**row, **bare}
    df = pd.DataFrame([row]).assign(device="cpu", cpu="a CPU", load_start=1.0, load_end=2.0)
    lines = bench.report_lines(df, [row], argparse.Namespace(reps=3, threads=1), torch.device("cpu"))
    assert lines[start + 6] == ("| inference a, sensing=separate | 1000.00 | 100.00 | 200.00 | 100.00 | 400.00 | "
                                "1.40 | NO | 1.40 | yes | 250.00 | 1.25 | yes | 1.25 | yes |")


def test_fused_tile_probe_agrees_with_the_passes_and_flags_more_than_one_code_step():
    probe = load_benchmark("fused_tile_probe")
    rng = np.random.default_rng(3)
    R = 150  # the passes in one chunk; the fused loop in chunks of 100, its blocks of 64 cut by both ends
    ct = rng.integers(0, 64, (probe.T, probe.M, R)).astype(np.float32)
    alpha = (69 + 50 * rng.random((probe.S * probe.T, probe.M))).astype(np.float32)
    G = (0.02 * rng.random((probe.S * probe.T, probe.NC, probe.M))).astype(np.float32)
    w, full = rng.random(probe.S * probe.T).astype(np.float32), np.float32(63)
    ref = probe.passes(alpha, ct, G, w, full)
    fn = probe.sgemm_addresses()["openblas"]
    y = np.full_like(ref, np.nan)  # an output left unwritten fails agreement
    probe.fused_chunks(fn, alpha, ct, G, w, full, y, 64, chunk=100)  # blocks cut by chunks and by R
    assert probe.agreement(y, ref, w) <= ref.size // 1000  # ADC ties only (bitwise on the host it was written on)
    y2 = y.copy()
    y2[3, 7] += 2.5 * w.max()  # more than one code step: the probe refuses it
    with pytest.raises(AssertionError, match="more than one ADC code step"):
        probe.agreement(y2, ref, w)


def _run_rows(cpu: str, date: str, floor_ratio: float) -> "object":
    """A run's rows as bench_dnn.main frames them: two inference rows and one re-training row (no floor)."""
    import pandas as pd

    base = dict(cpu=cpu, date=date, device="cpu", threads=1, reps=3, torch="t", load_start=0.5, load_end=0.7,
                commit="abc1234", source="this benchmark", mapping="differential", batch=128, plain_s=1.0,
                crossbar_s=2.0, floor_s=1.5, ratio=2.0, converter_bound_floor_ratio=1.2,
                bare_bound_floor_ratio=1.1, converter_bound_plain_ratio=1.9, bare_bound_plain_ratio=1.8)
    return pd.DataFrame([{**base, "benchmark": "inference convnet (digits 1x8x8), sensing=separate",
                          "sensing": "separate", "floor_goal_ratio": floor_ratio},
                         {**base, "benchmark": "inference resnet18 shape (3x32x32), sensing=differential",
                          "sensing": "differential", "floor_goal_ratio": 1.9, "ratio": 3.5},
                         {**base, "benchmark": "re-training step convnet", "floor_goal_ratio": float("nan")}])


def test_history_appends_each_run_and_reports_every_run_s_goals(tmp_path):
    """Each run adds its inference rows (the re-training row has no floor) and keeps the earlier runs;
    the report has one line per run with its CPU and each goal's ratio, n/a where a run has no such row."""
    rep = load_benchmark("bench_dnn_report")
    append_history, history_lines = rep.append_history, rep.history_lines
    path = tmp_path / "bench_dnn_history.csv"
    append_history(path, _run_rows("AMD EPYC 9R14", "2026-12-04 10:00", 1.73))
    h = append_history(path, _run_rows("Intel(R) Xeon(R) Processor", "2026-12-05 16:00", 2.59))
    assert len(h) == 4 and h["cpu"].tolist() == ["AMD EPYC 9R14"] * 2 + ["Intel(R) Xeon(R) Processor"] * 2
    lines = history_lines(h)
    runs = [line for line in lines if line.startswith("| 2026-")]
    assert len(runs) == 2
    amd = [c.strip() for c in runs[0].split("|")[1:-1]]
    assert amd[:4] == ["2026-12-04 10:00", "AMD EPYC 9R14", "0.5, 0.7", "abc1234"]
    # ConvNet / floor, ResNet / floor (no separate ResNet row), ConvNet / plain (none), ResNet / plain
    assert amd[4:8] == ["1.73", "n/a", "n/a", "3.50"] and runs[1].split("|")[5].strip() == "2.59"


def test_an_unreadable_history_is_left_as_it_is(tmp_path, capsys):
    """A history the benchmark cannot read is never overwritten: one line on stderr, and no table."""
    append_history = load_benchmark("bench_dnn_report").append_history
    path = tmp_path / "bench_dnn_history.csv"
    path.write_text("not,a,history\n1,2,3\n")
    assert append_history(path, _run_rows("cpu", "2026-12-05 16:00", 2.0)) is None
    assert path.read_text() == "not,a,history\n1,2,3\n"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "left as it is" in err and "no column" in err


def test_cpu_model_reads_the_model_name_and_falls_back(tmp_path):
    from xbarlab.host import cpu_model

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  9R14 96-Core Processor\n")
    assert cpu_model(info) == "AMD EPYC 9R14 96-Core Processor"
    assert cpu_model(tmp_path / "missing") != "" and cpu_model(tmp_path / "missing") == cpu_model(tmp_path / "x")


def test_code_commit_marks_changed_code_but_not_the_main_job_s_outputs(bench, tmp_path):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    assert bench.code_commit(tmp_path) == "not a git checkout"
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    for name in ("code.py", "reports/a.csv", "xbarlab/presets/fitted/k.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("1\n")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    (tmp_path / "reports/a.csv").write_text("2\n")
    (tmp_path / "xbarlab/presets/fitted/k.json").write_text("2\n")
    (tmp_path / "new_untracked.py").write_text("x\n")
    assert bench.code_commit(tmp_path) == head
    (tmp_path / "code.py").write_text("2\n")
    assert bench.code_commit(tmp_path) == head + "+changes"


def test_retraining_rows_take_the_median_of_the_per_pair_ratios(bench, monkeypatch):
    """Both re-training rows' ratios are medians of per-pair ratios (the report's statement), the amortized
    one with the rebuild added to each pair's crossbar step: pairs (1, 2), (1, 3), (10, 20) and a 1 s
    rebuild every 10 steps give 2.0 and 2.1 (the ratio of the medians would give 3.1)."""
    monkeypatch.setattr(bench, "time_interleaved", lambda fns, dev, reps: [[1.0, 1.0, 10.0], [2.0, 3.0, 20.0]])
    monkeypatch.setattr(bench, "timeit", lambda fn, dev, reps: 1.0)
    monkeypatch.setattr(bench, "plain_channels_last", lambda *a: 1.0)
    spec = make_spec("spintronic", 64)
    x = torch.rand((4, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    step, amortized = bench.bench_train(load_model("convnet").module, x, torch.zeros(4, dtype=torch.long), spec,
                                        torch.device("cpu"), 3, regen_every=10)
    assert (step["plain_s"], step["crossbar_s"], step["ratio"]) == (1.0, 3.0, 2.0)
    assert amortized["crossbar_s"] == pytest.approx(3.1) and amortized["ratio"] == pytest.approx(2.1)


def test_tile_product_floor_can_take_the_crossbar_s_own_product_calls(bench, monkeypatch):
    """Where the crossbar's own blocking of its products is the faster candidate (here: by a stubbed clock),
    the floor's ``tiles()`` makes exactly the torch.matmul calls of one crossbar inference (shapes and
    dtypes), on other data: the floor is then no slower than the crossbar's own products."""
    from converter_floor import wrapped

    spec = make_spec("spintronic", 64)
    xm = to_crossbar(load_model("convnet").module, spec, np.random.default_rng(0), default_options(spec))
    x = torch.rand((16, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    seen = []

    def make(name, f):
        def rec(A, B, *rest, **kw):
            seen.append((tuple(A.shape), tuple(B.shape), A.dtype))
            return f(A, B, *rest, **kw)
        return rec

    with wrapped([(torch, "matmul")], make), torch.no_grad():
        xm(x)
    own, seen[:] = list(seen), []
    monkeypatch.setattr(bench, "timeit", lambda fn, dev, reps: 0.0 if fn.__name__ == "replay" else 1.0)
    with torch.no_grad():
        layers, tiles = bench.tile_product_floor(xm, x, torch.device("cpu"), 2)
        with wrapped([(torch, "matmul")], make):
            tiles()
    assert own and seen == own
    # a replay that does less than the layer's tile products (calls its recording missed) is never taken
    def replay():
        torch.matmul(torch.ones(1, 1), torch.ones(1, 1))
    short = replay
    short.macs = 1
    monkeypatch.setattr(bench, "own_products", lambda *a: short)
    seen.clear()
    with torch.no_grad():
        _, tiles = bench.tile_product_floor(xm, x, torch.device("cpu"), 2)
        with wrapped([(torch, "matmul")], make):
            tiles()
    assert seen == []  # the batched bmm candidates


def test_inference_row_s_generation_time_leaves_out_the_one_off_first_call(bench, monkeypatch):
    """``generate_s`` times a conversion after an untimed one, so the first row does not carry the kernels'
    one-off compile or load: a clock at which the first conversion takes 10 s and every later one 1 s."""
    clock, calls = {"t": 0.0}, []

    def convert(model, spec, rng, opts):
        clock["t"] += 10.0 if not calls else 1.0
        calls.append(opts)
        return torch.nn.Linear(2, 2)

    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock["t"])
    monkeypatch.setattr(bench, "to_crossbar", convert)
    monkeypatch.setattr(bench, "tile_product_floor", lambda *a: (lambda: None, lambda: None))
    monkeypatch.setattr(bench, "time_interleaved", lambda fns, dev, reps: [[1.0], [2.0], [0.5], [0.6]])
    monkeypatch.setattr(bench, "plain_channels_last", lambda *a: 1.0)
    for name in ("phase_breakdown", "converter_floor", "bare_floor"):
        monkeypatch.setattr(bench, name, lambda *a: None)
    row = bench.bench_inference("a", torch.nn.Linear(2, 2), torch.zeros((1, 2)), make_spec("spintronic", 64),
                                torch.device("cpu"), 1)
    assert row["generate_s"] == 1.0 and len(calls) == 2 and calls[0] == calls[1]
    assert (row["ratio"], row["floor_s"], row["floor_goal_ratio"]) == (2.0, 1.1, 2.0 / 1.1)
