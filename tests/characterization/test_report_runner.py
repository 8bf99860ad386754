"""The main job's runner (`characterization.report`): its steps, its errors and its run record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from characterization import report

ROOT = Path(__file__).resolve().parents[2]
#: modules with a main() that write no report page: the runner itself, the kappa fit tool (its files are
#: written by fcm_accuracy), the ROWSUM bound's constant measurement (quoted in its docstring), and the
#: in-situ training diagnosis (run by hand, ~1.5 min; its page states its command)
NOT_REPORT_STEPS = {"report", "fitting", "rowsum_bound", "txsim_diagnose"}


def test_every_experiment_and_study_with_a_main_is_a_step():
    targets = {s.target for s in report.STEPS}
    mains = [p for p in [*ROOT.glob("dnn_eval/experiments/*.py"), *ROOT.glob("characterization/*.py"),
                                  *ROOT.glob("xbarlab/verify/*.py")]
             if "def main(" in p.read_text() and p.stem not in NOT_REPORT_STEPS]
    missing = [str(p.relative_to(ROOT)) for p in mains
               if ".".join(p.relative_to(ROOT).with_suffix("").parts) not in targets]
    assert not missing, f"not run by make report: {missing}"
    assert all((ROOT / s.target).exists() for s in report.STEPS if s.target.endswith(".py"))
    assert len({s.name for s in report.STEPS}) == len(report.STEPS)


def test_makefile_report_runs_the_runner():
    make = (ROOT / "Makefile").read_text()
    body = make.split("\nreport:", 1)[1].split("\ntest:", 1)[0]
    assert "-m characterization.report --out reports" in body


def test_unknown_step_and_bad_budget_are_one_line_errors(capsys):
    assert report.main(["--only", "nope"]) == 2
    assert report.main(["--from", "nope"]) == 2
    assert report.main(["--budget-min", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "'nope'" in err[0] and "budget-min" in err[2]


def test_a_failed_step_stops_with_its_name(tmp_path, monkeypatch, capsys):
    bad = report.Step("boom", "json.tool", ("--no-such-option",), "fails")
    monkeypatch.setattr(report, "STEPS", (bad, *report.STEPS))
    assert report.main(["--only", "boom", "--out", str(tmp_path)]) == 1
    assert "step 'boom' failed" in capsys.readouterr().err


def test_a_complete_run_writes_its_record(tmp_path, monkeypatch):
    ok = report.Step("noop", "json.tool", ("--help",), "does nothing")
    monkeypatch.setattr(report, "STEPS", (ok,))
    assert report.main(["--out", str(tmp_path), "--budget-min", "1"]) == 0
    rec = json.loads((tmp_path / "report_run.json").read_text())
    assert [r["step"] for r in rec["steps"]] == ["noop"] and rec["budget_s"] == 60.0
    assert "within the budget" in (tmp_path / "report_run.md").read_text()


# --- the schedule, on fake cheap steps (a script that logs its start and end and sleeps) -------------------

FAKE = """import sys, time
log, name, sleep, rc = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
with open(log, "a") as f:
    f.write(f"start {name} {time.time()}\\n")
if sleep < 0:  # burn CPU instead of sleeping
    t = time.process_time()
    while time.process_time() - t < -sleep:
        pass
else:
    time.sleep(sleep)
print(f"{name} says hello")
with open(log, "a") as f:
    f.write(f"end {name} {time.time()}\\n")
sys.exit(rc)
"""


def _fake(tmp_path, name, sleep=0.3, rc=0, **kw):
    script = tmp_path / "fake_step.py"
    script.write_text(FAKE)
    return report.Step(name, str(script), (str(tmp_path / "log"), name, str(sleep), str(rc)), f"fake {name}", **kw)


def _spans(tmp_path) -> dict[str, tuple[float, float]]:
    t: dict[str, dict[str, float]] = {}
    for line in (tmp_path / "log").read_text().splitlines():
        what, name, at = line.split()
        t.setdefault(name, {})[what] = float(at)
    return {n: (d["start"], d.get("end", float("inf"))) for n, d in t.items()}


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_dependencies_wait_and_independent_steps_run_side_by_side(tmp_path, monkeypatch, capsys):
    steps = (_fake(tmp_path, "a"), _fake(tmp_path, "c", 0.6), _fake(tmp_path, "b", after=("a",)))
    monkeypatch.setattr(report, "STEPS", steps)
    assert report.main(["--out", str(tmp_path / "r"), "--jobs", "2"]) == 0
    s = _spans(tmp_path)
    assert s["b"][0] >= s["a"][1] and _overlap(s["a"], s["c"])
    out = capsys.readouterr().out
    assert "a | a says hello" in out and "[1/3] a: started" in out
    rec = json.loads((tmp_path / "r" / "report_run.json").read_text())
    assert rec["jobs"] == 2 and rec["wall_s_total"] < rec["wall_s_steps_sum"]
    assert {r["step"] for r in rec["steps"]} == {"a", "b", "c"}
    assert all(r["end_s"] >= r["start_s"] for r in rec["steps"])
    md = (tmp_path / "r" / "report_run.md").read_text()
    assert "| start (s) | end (s) |" in md and "2 step(s) at a time" in md


def test_an_exclusive_step_runs_alone(tmp_path, monkeypatch):
    steps = (_fake(tmp_path, "a"), _fake(tmp_path, "x", 0.2, exclusive=True), _fake(tmp_path, "b"),
             _fake(tmp_path, "c"))
    monkeypatch.setattr(report, "STEPS", steps)
    assert report.main(["--out", str(tmp_path / "r"), "--jobs", "2"]) == 0
    s = _spans(tmp_path)
    assert not any(_overlap(s["x"], s[n]) for n in "abc")
    assert "x (alone)" in (tmp_path / "r" / "report_run.md").read_text()


def test_a_failure_stops_new_steps_and_lets_the_running_one_finish(tmp_path, monkeypatch, capsys):
    steps = (_fake(tmp_path, "long", 1.0), _fake(tmp_path, "boom", 0.1, rc=3), _fake(tmp_path, "later"))
    monkeypatch.setattr(report, "STEPS", steps)
    assert report.main(["--out", str(tmp_path / "r"), "--jobs", "2"]) == 1
    s = _spans(tmp_path)
    assert "later" not in s and s["long"][1] < float("inf")  # nothing new started; the running step finished
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "step 'boom' failed with exit status 3" in err[0]
    assert "--only boom,later" in err[0]
    assert not (tmp_path / "r" / "report_run.json").exists()


def test_each_step_gets_its_own_cpu_time(tmp_path, monkeypatch):
    steps = (_fake(tmp_path, "burn", -0.4), _fake(tmp_path, "idle", 0.4))
    rows, failed = report.report_schedule.run(steps, str(tmp_path), tmp_path, jobs=2, cpus=2)
    cpu = {r["step"]: r["cpu_s"] for r in rows}
    assert failed is None and cpu["burn"] >= 0.35 and cpu["idle"] < 0.3


def test_workers_and_threads_follow_the_jobs(tmp_path):
    s = report.Step("w", "x.mod", ("--out", "{out}"), workers="--workers")
    assert s.argv("o", 1)[-4:] == ["--out", "o", "--workers", "1"]
    assert report.Step("n", "x.mod").argv("o", 2)[-2:] == ["--out", "o"]


def test_projected_schedule_respects_dependencies_and_exclusive_steps():
    S = report.Step
    steps = [S("a", "m"), S("b", "m"), S("c", "m", after=("a",)), S("x", "m", exclusive=True), S("z", "m", after=("c",))]
    rows = {r["step"]: r for r in report.report_schedule.project(steps, {"a": 10, "b": 4, "c": 3, "x": 5, "z": 1}, 2)}
    assert rows["c"]["start_s"] == 10 and rows["x"]["start_s"] == 13 and rows["z"]["start_s"] == 18
    assert rows["b"]["start_s"] == 0 and rows["z"]["end_s"] == 19


def test_bad_step_lists_and_jobs_are_refused(capsys):
    S = report.Step
    with pytest.raises(ValueError, match="comes later"):
        report.report_schedule.check_steps([S("b", "m", after=("a",)), S("a", "m")])
    with pytest.raises(ValueError, match="unknown step 'q'"):
        report.report_schedule.check_steps([S("b", "m", after=("q",))])
    report.report_schedule.check_steps(report.STEPS)
    assert report.main(["--jobs", "0"]) == 2 and "jobs" in capsys.readouterr().err


def test_plan_projects_the_real_steps_from_a_run_record(tmp_path, capsys):
    rec = {"steps": [{"step": s.name, "wall_s": 10.0, "cpu_s": 10.0} for s in report.STEPS]}
    (tmp_path / "run.json").write_text(json.dumps(rec))
    assert report.main(["--plan", str(tmp_path / "run.json"), "--jobs", "2"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("projected wall:")
    assert report.main(["--plan", str(tmp_path / "nope.json")]) == 2


def test_plan_on_a_record_of_the_wrong_shape_is_a_one_line_error(tmp_path, capsys):
    bad = {"list": [], "ints": {"steps": [1, 2]}, "no-steps": {}, "text-time": {"steps": [{"step": "overview",
           "wall_s": "x", "cpu_s": "x"}]}, "null-time": {"steps": [{"step": "overview", "wall_s": None, "cpu_s": None}]},
           "nan-time": {"steps": [{"step": "overview", "wall_s": float("nan"), "cpu_s": float("nan")}]}}
    for name, rec in bad.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(rec))
        assert report.main(["--plan", str(tmp_path / f"{name}.json"), "--only", "overview"]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("report: plan:"), (name, err)


def test_an_only_list_that_names_no_step_is_a_one_line_error(tmp_path, capsys):
    for only in (",", "", " , "):
        assert report.main(["--only", only, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "only: no step named" in err[0]


def test_only_and_from_together_are_refused_in_one_line(tmp_path, capsys):
    # --only silently won over --from: the steps --from asked for did not run, and nothing said so
    assert report.main(["--only", "overview", "--from", "overview", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--only" in err[0] and "--from" in err[0], err


def _splice_many(page: str, k: int) -> None:
    from characterization.index import splice

    for i in range(30):
        splice(Path(page), f"<!-- s{k}:begin -->", f"<!-- s{k}:end -->", f"<!-- s{k}:begin -->\n{k} {i}\n<!-- s{k}:end -->\n")


def test_steps_side_by_side_never_lose_each_others_index_sections(tmp_path):
    import multiprocessing as mp

    page = tmp_path / "index.md"
    procs = [mp.get_context("spawn").Process(target=_splice_many, args=(str(page), k)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    text = page.read_text()
    assert all(f"{k} 29" in text and text.count(f"<!-- s{k}:begin -->") == 1 for k in range(3))


def test_fcm_speed_report_count_leaves_out_large_ngspice_points_and_says_so(tmp_path):
    from characterization import fcm_speed

    assert fcm_speed.main(["--quick", "--sizes", "16", "--ngspice-max", "8", "--out", str(tmp_path)]) == 0
    import pandas as pd

    df = pd.read_csv(tmp_path / "fcm_speed.csv").set_index("method")
    assert df.loc["ngspice", "status"] == fcm_speed.NOT_TIMED and df.loc["ngspice", "n_timed"] == 0
    page = (tmp_path / "fcm_speed.md").read_text()
    assert "--ngspice-max 8" in page and fcm_speed.FULL_COMMAND in page
    step = next(s for s in report.STEPS if s.name == "fcm-speed")
    assert "--ngspice-max" in step.args


def test_fig14_takes_its_seed0_results_from_fig12a_and_evaluates_only_the_rest(tmp_path, monkeypatch):
    from dnn_eval.experiments import fig14_sensitivity as f14
    from dnn_eval.experiments.settings import SETTINGS

    ranges = {"dac_range": "d", "adc_range": "a", "calibration": "c"}
    row = {"dataset": "digits", "network": "mlp", "xbar": 64, "preset": "p", "seed": 0, "n_samples": 7,
           "accuracy_fp32": 0.9, **ranges,
           **{"accuracy_" + ("nonideal" if s == "everything" else s.replace("+", "_")): i / 10
              for i, s in enumerate(SETTINGS)}}
    import pandas as pd

    pd.DataFrame([row, {**row, "xbar": 32}]).to_csv(tmp_path / "a.csv", index=False)
    known = f14.seed0_results(tmp_path / "a.csv", "p")
    assert list(known) == [("digits", "mlp")] and known[("digits", "mlp")]["everything"] == (len(SETTINGS) - 1) / 10
    calls = []

    def fake(lm, test, size, preset, seed, settings, calibration=None):
        calls.append((seed, settings))
        return {settings[0]: 0.5, "fp32": 0.9, "n_samples": 7, "ranges": ranges}

    monkeypatch.setattr(f14, "evaluate_settings", fake)
    monkeypatch.setattr(f14, "load_bundled_split", lambda d: (None, type("T", (), {"input_shape": (1, 8, 8)})))
    monkeypatch.setattr(f14, "load_model", lambda net, shape: net)
    monkeypatch.setattr(f14, "calibration_images", lambda train: None)
    df = f14.run("p", seeds=2, datasets=("digits",), networks=("mlp",), known=known)
    assert sorted(calls) == sorted((1, (s,)) for s in f14.SEEDED)  # seed 0 came from the CSV
    got = df[df.seed == 0].set_index("implementation").accuracy
    assert got["FP32"] == 0.9 and [got[s] for s in SETTINGS] == [i / 10 for i in range(len(SETTINGS))]
    step = next(s for s in report.STEPS if s.name == "dnn-fig14")
    assert "dnn-fig12a" in step.after and "--seed0-from" in step.args


def test_fcm_accuracy_report_counts_are_flags_the_page_states(tmp_path, capsys):
    """--pairs-64 is validated; make report runs the same 20 pairs at every size for both DAC loads."""
    from characterization import fcm_accuracy

    with pytest.raises(SystemExit):
        fcm_accuracy.main(["--pairs-64", "0", "--out", str(tmp_path)])
    assert "--pairs-64 must be >= 1" in capsys.readouterr().err
    for name in ("fcm-accuracy", "fcm-accuracy-rpd200"):
        args = next(s for s in report.STEPS if s.name == name).args
        assert "--pairs-64" not in args and args[args.index("--pairs") + 1] == "20"


def test_an_interrupted_run_names_the_only_list_that_completes_it(tmp_path, monkeypatch, capsys):
    # Ctrl-C said "rerun the rest with --only" without the list: the finished steps were lost with run()'s frame
    import queue as _queue

    class CtrlCAfterOne(_queue.Queue):
        calls = 0

        def get(self, *a, **k):
            CtrlCAfterOne.calls += 1
            if CtrlCAfterOne.calls > 1:
                raise KeyboardInterrupt
            return super().get(*a, **k)

    S = report.Step
    quiet = "characterization/__init__.py"  # a step that prints nothing (b still runs when the test has ended)
    steps = tuple(S(n, quiet, (), "ok") for n in "abc")
    monkeypatch.setattr(report, "STEPS", steps)
    monkeypatch.setattr(report.report_schedule, "queue", type("Q", (), {"Queue": CtrlCAfterOne}))
    assert report.main(["--out", str(tmp_path), "--jobs", "1"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("rerun the rest with --only b,c"), err
