"""The 1T-1R FCM measurement page (``xbarlab.verify.fcm_1t1r``): its core function on one tiny point.

One 6x6 tile at V_G 0.9 V, NEAT's 30k/300k device, transistor at the sense side (the table sweep is the one
``tests/fcm/test_1t1r_fcm.py`` uses, cached per process), 2 samples, the first also run in ngspice:

* the Newton reference agrees with ngspice to 1e-4 % FS (measured at 16x16 on the page: ~3e-6 % FS);
* the FCM stays within the CI bound of its side (0.5 % of the ADC full scale, no less than % FS) and its
  row carries the paper's per-column metric;
* the page renders the row and the bound verdict; bad CLI input exits 2 with one message.
"""

from __future__ import annotations

import numpy as np
import pytest

from xbarlab.verify import fcm_1t1r


@pytest.mark.ngspice
def test_measure_one_tiny_point_against_newton_and_ngspice(ngspice):
    spec = fcm_1t1r.spec_1t1r(6, 0.9, 30e3, 300e3)
    rows = fcm_1t1r.measure(spec, 2, spice_check=True)
    assert [r["dac_load"] for r in rows] == ["rowsum", "exact"]
    for r in rows:
        assert r["size"] == 6 and r["side"] == "sense" and r["n_col"] == 12
        assert r["ngspice_vs_newton_pct_fs"] <= 1e-4
        assert 0 < r["max_pct_fs"] <= r["max_pct_adc_fs"] <= r["ci_bound_pct_adc_fs"] == 0.5
        assert 0 <= r["mean_col_rel"] <= r["max_col_rel"] < 0.05
    text = fcm_1t1r.page(rows, "python -m xbarlab.verify.fcm_1t1r --out x")
    assert "| 6 | 0.9 | 30k/300k | sense | rowsum | 2 |" in text
    assert "rows over it: 0 of 2" in text


def test_points_cover_the_issue_grid():
    pts = list(fcm_1t1r.points([16, 32, 64], full=False, spice64=True))
    sense = {(s, vg, d) for s, vg, d, side, _ in pts if side == "sense"}
    assert len(sense) == 3 * 4 * 2 == len([p for p in pts if p[3] == "sense"])
    assert {p[0] for p in pts if p[3] == "row"} == {16}
    assert all(sp for s, _, _, _, sp in pts if s == 16)
    assert sum(sp for s, _, _, _, sp in pts if s == 64) == 1


@pytest.mark.parametrize("argv", [["--samples", "0"], ["--sizes", "1"]])
def test_cli_refuses_bad_input(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        fcm_1t1r.main(["--out", str(tmp_path)] + argv)
    assert exc.value.code == 2
    assert "must be" in capsys.readouterr().err
    assert not np.any([p.suffix == ".csv" for p in tmp_path.iterdir()])
