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
