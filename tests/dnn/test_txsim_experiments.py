"""The TxSim experiment scripts: tiny runs write their files; the verdicts follow their stated criteria."""

from __future__ import annotations

import pandas as pd
import pytest

from dnn_eval.experiments import txsim_diagnose, txsim_sensitivity, txsim_train


def _frame(nu, gamma, ratio, wires_sp, wires_re):
    rows = []
    for curve, vals, preset in (("nu", nu, "rxnn-spintronic"), ("gamma", gamma, "rxnn-spintronic"),
                                ("ratio", ratio, "rxnn-spintronic"), ("wires", wires_sp, "rxnn-spintronic"),
                                ("wires", wires_re, "reram"), ("adc", {4: 0.5, 6: 0.8, 8: 0.9}, "rxnn-spintronic")):
        rows += [{"curve": curve, "preset": preset, "value": float(v), "accuracy": a, "seed": 0}
                 for v, a in vals.items()]
    return pd.DataFrame(rows)


def test_verdicts_follow_the_stated_criteria():
    yes = _frame({0: 0.9, 0.1: 0.85, 0.5: 0.6, 1: 0.3}, {0: 0.9, 1: 0.9, 5: 0.85, 10: 0.8},
                 {2: 0.7, 5: 0.9, 8: 0.85, 10: 0.8}, {0: 0.9, 1: 0.8}, {0: 0.9, 1: 0.89})
    assert [line.endswith("**reproduced**") for line in txsim_sensitivity.verdicts(yes)[:4]] == [True] * 4
    no = _frame({0: 0.9, 0.1: 0.5, 0.5: 0.6, 1: 0.9}, {0: 0.9, 1: 0.9, 5: 0.9, 10: 0.9},
                {2: 0.95, 5: 0.9, 8: 0.85, 10: 0.8}, {0: 0.9, 1: 0.9}, {0: 0.9, 1: 0.8})
    assert [line.endswith("**not reproduced**") for line in txsim_sensitivity.verdicts(no)[:4]] == [True] * 4
    assert txsim_sensitivity.verdicts(no)[-1].endswith("none")
    collapsed = _frame({0: 0.9, 0.1: 0.1, 0.5: 0.6, 1: 0.3}, {0: 0.9, 1: 0.9, 5: 0.85, 10: 0.8},
                       {2: 0.7, 5: 0.9, 8: 0.85, 10: 0.8}, {0: 0.9, 1: 0.8}, {0: 0.9, 1: 0.89})
    assert "nu = 0.1 (rxnn-spintronic, seed 0) 0.100" in txsim_sensitivity.verdicts(collapsed)[-1]


def test_txsim_train_tiny_run_writes_its_page(tmp_path):
    assert txsim_train.main(["--out", str(tmp_path), "--steps", "2", "--networks", "mlp", "--datasets", "digits",
                             "--seeds", "2"]) == 0
    df = pd.read_csv(tmp_path / "txsim_train.csv")
    assert list(df.setting) == [s for s in txsim_train.SMALL["digits"] for _ in range(2)]
    assert list(df.seed) == [0, 1] * len(txsim_train.SMALL["digits"])
    assert df.accuracy.between(0, 1).all()
    page = (tmp_path / "txsim_train.md").read_text()
    assert "xbar-insitu" in page and "| mlp | float | 2 | 2 |" in page


def test_txsim_train_resumes_from_its_store_and_retries_failed_runs(tmp_path, monkeypatch, capsys):
    args = ["--out", str(tmp_path), "--steps", "2", "--networks", "mlp", "--datasets", "digits", "--seeds", "2"]
    real = txsim_train.run_setting
    calls = []

    def flaky(net, setting, *a, seed=0, **k):  # the interrupted run: every xbar-verify run raises
        calls.append((setting, seed))
        if setting == "xbar-verify":
            raise RuntimeError("power cut")
        return real(net, setting, *a, seed=seed, **k)

    monkeypatch.setattr(txsim_train, "run_setting", flaky)
    assert txsim_train.main(args) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("txsim_train:")]  # (not the bar)
    assert len(err) == 1 and err[0].startswith("txsim_train: 2 of 12 runs failed") and "power cut" in err[0]
    page = (tmp_path / "txsim_train.md").read_text()
    assert "**2 runs failed**" in page and "mlp xbar-verify seed 1: RuntimeError: power cut" in page
    first = pd.read_csv(tmp_path / "txsim_train.csv")
    assert "xbar-verify" not in set(first.setting) and len(first) == 2 * (len(txsim_train.SMALL["digits"]) - 1)
    calls.clear()
    monkeypatch.setattr(txsim_train, "run_setting", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    assert txsim_train.main(args) == 0
    assert calls == ["xbar-verify", "xbar-verify"]  # only the failed runs are computed again
    again = pd.read_csv(tmp_path / "txsim_train.csv")
    assert list(again.setting) == [s for s in txsim_train.SMALL["digits"] for _ in range(2)]
    kept = again[again.setting != "xbar-verify"].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, first)  # the cached runs, as they were (wall times included)


def test_txsim_train_where_every_run_fails_writes_an_empty_table_and_lists_them(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("power cut")

    monkeypatch.setattr(txsim_train, "run_setting", boom)
    args = ["--out", str(tmp_path), "--steps", "2", "--networks", "mlp", "--datasets", "digits", "--seeds", "1"]
    assert txsim_train.main(args) == 1
    assert pd.read_csv(tmp_path / "txsim_train.csv").empty
    n = len(txsim_train.SMALL["digits"])
    assert f"**{n} runs failed**" in (tmp_path / "txsim_train.md").read_text()


def test_txsim_train_summary_gives_mean_range_and_collapsed_runs(tmp_path):
    rows = [{"dataset": "mnist5k", "network": "lenet", "setting": st, "seed": i, "steps": 100, "accuracy": a,
             "wall_s": 1.0, "rebuild_s": float("nan")}
            for st, accs in (("float", (0.1, 0.7, 0.4)), ("xbar-ideal-update", (0.3, 0.2, 0.25)))
            for i, a in enumerate(accs)]
    pd.DataFrame(rows).to_csv(tmp_path / "txsim_train.csv", index=False)
    s = txsim_train.summary(pd.DataFrame(rows)).set_index("setting")
    assert s.loc["float", "mean"] == pytest.approx(0.4) and s.loc["float", "collapsed"] == 1
    assert (s.loc["float", "min"], s.loc["float", "max"], s.loc["float", "seeds"]) == (0.1, 0.7, 3)
    assert s.loc["xbar-ideal-update", "collapsed"] == 0  # 0.2 is not below COLLAPSED
    full = [{"dataset": "digits", "network": "lenet", "setting": st, "seed": i, "steps": 1000, "accuracy": a}
            for st, accs in (("straight-through", (0.2, 0.4)), ("straight-through-L1", (0.8, 0.9)))
            for i, a in enumerate(accs)]
    pd.DataFrame(full).to_csv(tmp_path / "txsim_train_full.csv", index=False)
    assert "mean of 2 seeds, 1000 steps): 0.300 with the crossbars reprogrammed every 10 steps, 0.850 every step" in \
        txsim_sensitivity.training_lines(tmp_path)[-1]
    line = txsim_sensitivity.training_lines(tmp_path)[0]
    assert "mean of 3 seeds" in line and "float 0.400 (0.100-0.700; 1 collapsed)" in line
    assert "xbar-ideal-update 0.250 (0.200-0.300)" in line


def test_txsim_train_plans_small_and_full_runs():
    small = txsim_train.plan(False, txsim_train.DATASETS, ["mlp", "lenet"])
    assert ("mnist5k", "lenet", "xbar-insitu") in small and ("digits", "lenet", "xbar-insitu-L1") not in small
    full = txsim_train.plan(True, txsim_train.DATASETS, ["mlp", "lenet"])
    assert len(full) == 2 * 2 * len(txsim_train.SETTINGS) and set(small) < set(full)


def test_txsim_diagnose_tiny_run_measures_the_updates(tmp_path):
    assert txsim_diagnose.main(["--out", str(tmp_path), "--steps", "3", "--networks", "mlp",
                                "--bit-lengths", "10"]) == 0
    df = pd.read_csv(tmp_path / "txsim_insitu_diagnosis.csv")
    assert len(df) == 2 * txsim_diagnose.WINDOWS  # two layers
    assert df.capped.between(0, 1).all() and df.cells_changed.between(0, 1).all() and (df.gain > 0).all()


def test_index_lines_come_from_the_training_and_diagnosis_csvs(tmp_path):
    assert txsim_sensitivity.training_lines(tmp_path) == []
    pd.DataFrame([{"dataset": "digits", "network": "mlp", "setting": "float", "steps": 3, "accuracy": 0.5}]).to_csv(
        tmp_path / "txsim_train.csv", index=False)
    rows = [{"network": "lenet", "bit_length": bl, "layer": "3 fc 32x10", "steps": w, "capped": c, "gain": 0.5,
             "desired_pulses": 0.25, "final_accuracy": acc}
            for bl, c, acc in ((10, 0.7, 0.1), (100, 0.0, 0.4)) for w in ("1-2", "3-4")]
    pd.DataFrame(rows).to_csv(tmp_path / "txsim_insitu_diagnosis.csv", index=False)
    pd.DataFrame([{"dataset": "digits", "network": "lenet", "setting": st, "steps": 3, "accuracy": a}
                  for st, a in (("straight-through", 0.25), ("straight-through-L1", 0.75))]).to_csv(
        tmp_path / "txsim_train_full.csv", index=False)
    lines = txsim_sensitivity.training_lines(tmp_path)
    assert lines[0].endswith("float 0.500")
    assert "0.250 with the crossbars reprogrammed every 10 steps, 0.750 every step" in lines[1]
    assert "capped for 70 % of the vectors in steps 1-2" in lines[2] and "reaches 0.400" in lines[2]
