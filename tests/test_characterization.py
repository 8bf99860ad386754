"""Characterization figures: quick mode writes the expected files and columns; the sneak path against ngspice."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import xbarlab as xb
from characterization import cli, fig3b_sneak, index
from characterization.common import RunConfig
from characterization.fig3a_dac import dac_point
from characterization.technology import DEFAULT, GROUPS, group_circuit

MC_COLUMNS = {"N", "group", "kind", "column", "error_max", "error_min", "error_avg", "error_std", "n_instances",
              "error_sample", "engine", "error_definition"}
EXPECTED = {
    "fig2bc_size": {"N", "g_state", "group", "engine", "code", "v_in_V", "error_last_col", "error_last_col_exact",
                    "abs_diff_error_engine_vs_exact", "error_definition"},
    "fig2d_state": MC_COLUMNS,
    "fig2e_inputs": MC_COLUMNS,
    "fig2f_variation": MC_COLUMNS | {"varonly_error_max", "varonly_error_min", "varonly_error_avg"},
    "fig3a_dac": {"r_load_ohm", "code", "v_ideal_V", "v_out_model_V", "v_out_ngspice_V", "dac_error", "error_definition"},
    "fig3b_sneak": {"engine", "r_sense_ohm", "row", "col", "v_in_V", "i_cell_A", "reversed", "chosen", "error_definition"},
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, ngspice):
    out = tmp_path_factory.mktemp("quick")
    args = SimpleNamespace(figure="all", quick=True, full=False, out=str(out), scheduler=None, workers=2,
                           no_progress=True)
    assert cli.run(args) == 0
    return out


@pytest.mark.parametrize("name", cli.FIGURES)
def test_quick_mode_writes_expected_columns(quick_run, name):
    df = pd.read_csv(quick_run / f"{name}.csv")
    assert EXPECTED[name] <= set(df.columns), EXPECTED[name] - set(df.columns)
    assert len(df) > 0 and (quick_run / f"{name}.png").stat().st_size > 0
    md = (quick_run / f"{name}.md").read_text()
    assert "FAILED" not in md
    if name != "fig3b_sneak":
        assert "I_ideal - I_nonideal) / I_ideal" in md  # the error definition in every caption


def test_quick_index_page(quick_run):
    page = (quick_run / "index.md").read_text()
    assert index.BEGIN in page and index.END in page
    assert page.count("reproduced") >= 10


def test_quick_rerun_is_cached(quick_run):
    cfg = RunConfig(out=quick_run, mode="quick", progress=False)
    from characterization import fig2d_state

    assert fig2d_state.run(cfg)["instances"] == 20
    from characterization.montecarlo import chunk_task
    df = cfg.sweep(chunk_task, [{"kind": "state", "N": 16, "group": "ALL", "chunk": 0, "chunk_size": 20, "n_total": 20}],
                   "fig2d_state")
    assert df.attrs["counts"]["skipped"] == 1


def test_sneak_path_reverses_in_ngspice(ngspice):
    G = np.full((3, 2), 1.0 / fig3b_sneak.R_CELL)
    V = np.array(fig3b_sneak.V_IN)
    c = fig3b_sneak.circuit(fig3b_sneak.R_SENSE_CHOSEN, DEFAULT)
    sp = xb.solve(G, V, c, engine="ngspice")
    ex = xb.solve(G, V, c)
    assert sp.i_cell[1, 1] < 0  # middle row, second column: flows from b back toward Vin2
    assert (sp.i_cell[[0, 2]] > 0).all()
    assert np.abs(sp.i_cell - ex.i_cell).max() <= 1e-9 * np.abs(sp.i_cell).max()
    # with the preset's own sense resistance it does not reverse: the stated threshold is real
    c0 = fig3b_sneak.circuit(DEFAULT.r_sense, DEFAULT)
    assert xb.solve(G, V, c0, engine="ngspice").i_cell[1, 1] > 0
    assert DEFAULT.r_sense < fig3b_sneak.reversal_threshold(DEFAULT) < fig3b_sneak.R_SENSE_CHOSEN


def test_dac_divider_deck_matches_thevenin_model(ngspice):
    tech = DEFAULT.to_dict()
    import json
    for code in (0, 1, 32, 63):
        r = dac_point({"code": code, "r_load": 3.2e3, "tech": json.dumps(tech)}, 0)
        assert abs(r["v_out_model_V"] - r["v_out_ngspice_V"]) <= 1e-12


def test_groups_set_the_rest_ideal():
    codes = np.full(4, 32.0)
    for g in GROUPS:
        V, c = group_circuit(DEFAULT, g, codes)
        assert np.allclose(V, DEFAULT.dac.v_ideal(codes))
        assert (c.r_row > 0) == ("WIRE" in g or g == "ALL")
        assert (c.r_sense > 0) == ("SENSE" in g or g == "ALL")
        assert (np.asarray(c.r_driver_rows(4)) > 0).all() == (g in ("DAC+DRIVER", "ALL"))
    _, c = group_circuit(DEFAULT, "DAC+DRIVER", codes)
    assert np.allclose(c.r_driver_rows(4), DEFAULT.r_driver + DEFAULT.dac.r_pd * (1 - 32 / 63))
    with pytest.raises(ValueError, match="group"):
        group_circuit(DEFAULT, "NOPE", codes)


def test_index_keeps_other_sections(tmp_path):
    (tmp_path / "index.md").write_text("# Other agent's section\n\nkeep me\n")
    index.write_index(tmp_path)
    index.write_index(tmp_path)
    text = (tmp_path / "index.md").read_text()
    assert "keep me" in text and text.count(index.BEGIN) == 1


def test_cli_bad_figure_is_one_line_error():
    out = subprocess.run([sys.executable, "-m", "xbarlab.cli", "characterize", "fig9z"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1


def test_figure_on_a_dask_cluster(tmp_path, ngspice):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster:
        args = SimpleNamespace(figure="fig3b_sneak", quick=True, full=False, out=str(tmp_path),
                               scheduler=cluster.scheduler_address, workers=2, no_progress=True)
        assert cli.run(args) == 0
    df = pd.read_csv(tmp_path / "fig3b_sneak.csv")
    assert set(df["engine"]) == {"exact", "ngspice"}
    assert df[(df.chosen) & (df.row == 1) & (df.col == 1)]["i_cell_A"].lt(0).all()
