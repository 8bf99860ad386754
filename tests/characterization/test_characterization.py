"""Characterization figures: quick mode writes the expected files and columns; the sneak path against ngspice;
one hardware model (the preset) and groups that are a function of it."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import xbarlab as xb
from characterization import cli, fig3b_sneak, index
from characterization.common import RunConfig
from characterization.fig3a_dac import dac_point
from characterization.technology import GROUPS, PRESET, default_spec, group_circuit
from xbarlab.spec import group, groups, load_preset, preset_sources, preset_variants, strong_dac

CHAR_DIR = Path(__file__).resolve().parents[2] / "characterization"
SPEC = default_spec()

MC_COLUMNS = {"N", "group", "kind", "column", "error_max", "error_min", "error_avg", "error_std", "n_instances",
              "error_sample", "engine", "error_definition"}
EXPECTED = {
    "fig2bc_size": {"N", "g_state", "group", "dac", "r_pd_ohm", "engine", "code", "v_in_V", "error_last_col",
                    "error_last_col_exact", "abs_diff_error_engine_vs_exact", "error_definition"},
    "fig2d_state": MC_COLUMNS,
    "fig2e_inputs": MC_COLUMNS,
    "fig2f_variation": MC_COLUMNS | {"varonly_error_max", "varonly_error_min", "varonly_error_avg"},
    "fig3a_dac": {"r_load_ohm", "code", "v_ideal_V", "v_out_model_V", "v_out_ngspice_V", "dac_error", "error_definition"},
    "fig3b_sneak": {"engine", "r_sense_ohm", "row", "col", "v_in_V", "i_cell_A", "reversed", "preset", "error_definition"},
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
    G = fig3b_sneak.cells(SPEC)
    assert np.all(G == SPEC.device.g_max) and np.isclose(1 / G[0, 0], 20e3)  # the paper's 20 kOhm is the preset's
    V = np.array(fig3b_sneak.V_IN)
    thr = fig3b_sneak.reversal_threshold(SPEC)
    # at the preset's own sense resistance it does not reverse: the page says so
    c0 = fig3b_sneak.circuit(SPEC.circuit.r_sense, SPEC)
    assert c0 == SPEC.circuit and xb.solve(G, V, c0, engine="ngspice").i_cell[1, 1] > 0
    assert SPEC.circuit.r_sense < thr
    # above the threshold (all else the preset's) it reverses, in ngspice as in the exact solver
    c = fig3b_sneak.circuit(2 * thr, SPEC)
    sp = xb.solve(G, V, c, engine="ngspice")
    ex = xb.solve(G, V, c)
    assert sp.i_cell[1, 1] < 0  # middle row, second column: flows from b back toward Vin2
    assert (sp.i_cell[[0, 2]] > 0).all()
    assert np.abs(sp.i_cell - ex.i_cell).max() <= 1e-9 * np.abs(sp.i_cell).max()
    assert fig3b_sneak.threshold_phrase(SPEC, thr) == f"for R_sense above {thr:.4g} ohm"


def test_sneak_threshold_phrase_tells_never_from_always():
    """NaN meant both "never reverses up to 1e5 ohm" and "reverses already at 1 ohm": the pages printed
    "reverses for R_sense above nan ohm" either way."""
    assert fig3b_sneak.threshold_phrase(SPEC, float("nan"), hi=1e5) == "at no R_sense up to 100000 ohm"
    assert np.isnan(fig3b_sneak.reversal_threshold(SPEC, lo=1e4))  # (the preset reverses above about 525 ohm)
    assert fig3b_sneak.threshold_phrase(SPEC, float("nan"), lo=1e4) == "already at R_sense = 10000 ohm"


def test_dac_divider_deck_matches_thevenin_model(ngspice):
    for spec in (SPEC, load_preset(PRESET, variant="strong-dac")):
        for code in (0, 1, 32, 63):
            r = dac_point({"code": code, "r_load": 3.2e3, "spec": spec.to_json()}, 0)
            assert abs(r["v_out_model_V"] - r["v_out_ngspice_V"]) <= 1e-12


def test_groups_set_the_rest_ideal():
    codes = np.full(4, 32.0)
    spec = SPEC.with_size(4)
    for g in GROUPS:
        V, c = group_circuit(spec, g, codes)
        assert np.allclose(V, spec.dac.v_ideal(codes))
        assert (c.r_row > 0) == ("WIRE" in g or g == "ALL")
        assert (c.r_sense > 0) == ("SENSE" in g or g == "ALL")
        assert (np.asarray(c.r_driver_rows(4)) > 0).all() == (g in ("DAC+DRIVER", "ALL"))
    _, c = group_circuit(spec, "DAC+DRIVER", codes)
    assert np.allclose(c.r_driver_rows(4), spec.circuit.r_driver + spec.dac.r_pd * (1 - 32 / 63))
    with pytest.raises(ValueError, match="group"):
        group_circuit(spec, "NOPE", codes)


@pytest.mark.parametrize("name", ["rxnn-spintronic", "spintronic", "reram"])
def test_groups_are_a_function_of_the_spec(name):
    spec = load_preset(name)
    gs = groups(spec)
    assert tuple(gs) == GROUPS and gs["ALL"].circuit == spec.circuit and gs["ALL"].dac == spec.dac
    for g, s in gs.items():
        assert s == group(spec, g) and s.rows == spec.rows and s.adc == spec.adc
        assert s.device.variation == 0 and s.device.stuck_on_rate == s.device.stuck_off_rate == 0
        assert s.device.g_min == spec.device.g_min and s.device.levels == spec.device.levels
        keeps_wire, keeps_sense, keeps_dac = "WIRE" in g or g == "ALL", "SENSE" in g or g == "ALL", "DAC" in g or g == "ALL"
        assert (s.circuit.r_row, s.circuit.r_col) == ((spec.circuit.r_row, spec.circuit.r_col) if keeps_wire else (0, 0))
        assert s.circuit.r_sense == (spec.circuit.r_sense if keeps_sense else 0)
        assert s.circuit.r_driver == (spec.circuit.r_driver if keeps_dac else 0)
        assert s.dac.r_pd == (spec.dac.r_pd if keeps_dac else 0) and s.dac.bits == spec.dac.bits
    with pytest.raises(ValueError, match="group"):
        group(spec, "DAC")


def test_thevenin_rows_and_levels_come_from_the_library():
    codes = np.array([0.0, 1.0, 32.0, 63.0])
    spec = SPEC.with_size(4)
    v, c = spec.dac.thevenin_rows(spec.circuit, codes)
    assert np.array_equal(v, spec.dac.v_ideal(codes))
    assert np.allclose(c.r_driver_rows(4), spec.circuit.r_driver + spec.dac.r_pd * (1 - codes / 63), rtol=1e-15)
    assert (c.r_row, c.r_col, c.r_sense) == (spec.circuit.r_row, spec.circuit.r_col, spec.circuit.r_sense)
    ideal = spec.replace(dac=spec.dac.__class__(bits=6, v_read=0.2, r_pd=0.0))
    assert ideal.dac.thevenin_rows(spec.circuit, codes)[1] is spec.circuit
    with pytest.raises(ValueError, match="codes"):
        spec.dac.thevenin_rows(spec.circuit, [64])
    lv = spec.device.level_conductances()
    assert lv.size == 64 and np.allclose(lv, np.linspace(spec.device.g_min, spec.device.g_max, 64), rtol=1e-14)
    G = spec.device.random_state(np.random.default_rng(0), (3, 5))
    assert G.shape == (3, 5) and np.isin(G, lv).all()


def _leaves(d: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        out += _leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return out


def test_rxnn_preset_every_value_has_a_source():
    raw = json.loads((Path(xb.__file__).parent / "presets" / f"{PRESET}.json").read_text())
    sources = preset_sources(PRESET)
    values = [k for k in _leaves({k: v for k, v in raw.items() if k not in ("sources", "description", "name")})]
    missing = [k for k in values if k not in sources]
    assert not missing, missing
    for k, text in sources.items():
        assert len(text) > 20, k
    # R_PD is not in the paper's text: it must say ASSUMED and why
    assert "ASSUMED" in sources["dac.r_pd"] and "ASSUMED" in sources["circuit.r_sense"]
    assert xb.CrossbarSpec.from_json(SPEC.to_json()) == SPEC and SPEC.rows == SPEC.cols == 64
    assert preset_variants(PRESET) == ["strong-dac"]
    strong = load_preset(PRESET, variant="strong-dac")
    assert xb.CrossbarSpec.from_json(strong.to_json()) == strong
    assert strong.dac.r_pd == 200.0 and strong.name == f"{PRESET}+strong-dac"
    assert strong.replace(dac=SPEC.dac, name=SPEC.name) == SPEC  # the variant changes R_PD only
    assert strong_dac(SPEC, 200.0).dac == strong.dac and strong_dac(SPEC, 200.0).circuit == SPEC.circuit
    with pytest.raises(ValueError, match="r_pd"):
        strong_dac(SPEC, -1.0)
    with pytest.raises(ValueError, match="variant"):
        load_preset(PRESET, variant="weak")


HARDWARE_NAME = re.compile(r"(?i)^(r|g)_|_ohm$|^v_read$|bits$|^variation$|^sinh_b$|^levels$|^(full_scale|i_fs)")
EXPERIMENT_SETTINGS = {  # numeric settings of an experiment, not hardware; each with the paper's source
    "R_LOADS": "Fig. 3(a): the two loads of the paper's DAC plot",
}


def _numeric(node) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if isinstance(node, (ast.Tuple, ast.List)):
        return bool(node.elts) and all(_numeric(e) for e in node.elts)
    if isinstance(node, ast.BinOp):
        return _numeric(node.left) and _numeric(node.right)
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


def test_characterization_defines_no_hardware_values():
    """No module of characterization/ binds a hardware-like name (r_*, g_*, *_ohm, v_read, bits, ...) to a number."""
    found = []
    for path in sorted(CHAR_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            pairs = []
            if isinstance(node, ast.Assign):
                pairs = [(t.id, node.value) for t in node.targets if isinstance(t, ast.Name)]
                pairs += [(t.attr, node.value) for t in node.targets if isinstance(t, ast.Attribute)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                pairs = [(node.target.id, node.value)]
            elif isinstance(node, ast.Call):
                pairs = [(k.arg, k.value) for k in node.keywords if k.arg]
            elif isinstance(node, ast.Dict):
                pairs = [(k.value, v) for k, v in zip(node.keys, node.values)
                         if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
                a = node.args
                pos = a.posonlyargs + a.args
                pairs = [(x.arg, d) for x, d in zip(pos[len(pos) - len(a.defaults):], a.defaults)]
                pairs += [(x.arg, d) for x, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            for name, value in pairs:
                if HARDWARE_NAME.search(name) and _numeric(value) and name not in EXPERIMENT_SETTINGS:
                    found.append(f"{path.name}:{node.lineno}: {name} = {ast.unparse(value)}")
    assert not found, "hardware values belong in xbarlab/presets/*.json:\n" + "\n".join(found)
    text = (CHAR_DIR / "technology.py").read_text()
    code = [ln for ln in text.split('"""')[2].splitlines() if not ln.lstrip().startswith("#")]  # after the docstring
    assert not re.search(r"\d+\.\d|\de[-+]?\d", "\n".join(code)), "technology.py must hold no hardware numbers"


def test_every_page_states_the_preset_and_its_dac(quick_run):
    for name in cli.FIGURES:
        md = (quick_run / f"{name}.md").read_text()
        assert f"preset `{PRESET}`" in md and f"R_PD = {SPEC.dac.r_pd:g} ohm" in md, name
        assert json.loads((quick_run / f"{name}.json").read_text())["hardware"] == SPEC.to_dict(), name
    page = (quick_run / "index.md").read_text()
    assert f"one preset `{PRESET}`" in page and f"R_PD = {SPEC.dac.r_pd:g} ohm" in page
    size = pd.read_csv(quick_run / "fig2bc_size.csv")
    assert set(size["dac"]) == {"preset", "strong-dac"}
    assert set(size.loc[size["dac"] == "preset", "r_pd_ohm"]) == {SPEC.dac.r_pd}
    assert set(size.loc[size["dac"] == "strong-dac", "r_pd_ohm"]) == {load_preset(PRESET, variant="strong-dac").dac.r_pd}
    assert "also shows DAC+DRIVER on the preset's strong-dac variant" in page


def test_fig2bc_on_a_preset_without_the_strong_dac_variant(tmp_path, ngspice):
    """`characterize --preset reram` failed at Fig. 2(b)/(c) ("variant must be one of [] for preset 'reram'"):
    a preset without the strong-dac variant runs the DAC+DRIVER group on its own DAC only, and says so."""
    assert preset_variants("reram") == []
    args = SimpleNamespace(figure="fig2bc_size", quick=True, full=False, out=str(tmp_path), scheduler=None,
                           workers=1, no_progress=True, preset="reram")
    assert cli.run(args) == 0
    size = pd.read_csv(tmp_path / "fig2bc_size.csv")
    assert set(size["dac"]) == {"preset"} and set(size["group"]) == set(GROUPS)
    assert "defines no `strong-dac` variant" in (tmp_path / "fig2bc_size.md").read_text()
    assert json.loads((tmp_path / "fig2bc_size.json").read_text())["strong_dac"] is None
    line = index.hardware_line(tmp_path)
    assert "one preset `reram`" in line and "strong-dac" not in line


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
    mid = df[(df.row == 1) & (df.col == 1)]
    assert mid[mid.preset]["i_cell_A"].gt(0).all()  # not reversed at the preset's R_sense
    assert mid[mid.r_sense_ohm == mid.r_sense_ohm.max()]["i_cell_A"].lt(0).all()  # reversed at the top of the sweep


def test_overview_names_the_preset_of_fig10_and_flags_another(tmp_path):
    from characterization import overview

    (tmp_path / "fig2bc_size.json").write_text(json.dumps({"hardware": SPEC.to_dict()}))
    pd.DataFrame([{"size": 64, "model": "fcm_rowsum", "max_rel_pct": 0.9, "mean_rel_pct": 0.2,
                   "max_deviation_pct_fs": 0.3, "target_rel_pct": 0.28, "meets_target": False}]
                 ).to_csv(tmp_path / "fcm_accuracy_summary.csv", index=False)
    for preset, flagged in ((PRESET, False), ("spintronic", True)):
        (tmp_path / "fcm_accuracy_meta.json").write_text(json.dumps({"preset": preset, "r_pd": 200.0}))
        text = "\n".join(overview.fcm_lines(tmp_path))
        assert f"preset `{preset}`" in text and ("DIFFERENT preset" in text) == flagged
        assert "R_PD = 200 ohm" in text and "max per-column relative error vs ngspice 0.9 %" in text
        assert "**NOT met**" in text


def test_index_says_which_figures_are_on_the_preset(tmp_path):
    (tmp_path / "fig2bc_size.json").write_text(json.dumps({"hardware": SPEC.to_dict()}))
    (tmp_path / "fig3a_dac.json").write_text(json.dumps({"points": 1}))  # a summary written before the presets
    line = index.hardware_line(tmp_path)
    assert f"fig2bc_size ran on the one preset `{PRESET}`" in line and "not on the one preset**: fig3a_dac" in line
    (tmp_path / "fig3a_dac.json").write_text(json.dumps({"hardware": strong_dac(SPEC, 200.0).to_dict()}))
    assert "DIFFERENT specs" in index.hardware_line(tmp_path)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"runs": 3}'])
def test_an_unreadable_run_log_is_left_as_it_is_and_the_run_goes_on(tmp_path, monkeypatch, capsys, text):
    # json.loads raised at the end of 'characterize all', after every figure: exit 1, no index page, and the
    # same on every rerun
    monkeypatch.setattr(cli, "FIGURES", ())  # no figure computed: only the end of the run
    log = tmp_path / "characterization_run.json"
    log.write_text(text)
    args = SimpleNamespace(figure="all", quick=True, full=False, out=str(tmp_path), scheduler=None, workers=1,
                           no_progress=True)
    assert cli.run(args) == 0
    assert log.read_text() == text and (tmp_path / "index.md").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "left as it is" in err
    log.unlink()
    assert cli.run(args) == 0 and len(json.loads(log.read_text())["runs"]) == 1


def test_a_failed_size_point_leaves_errors_grow_with_n_not_reproduced():
    # a failed point is left out of fig2bc_size.csv; the trend was judged on the points left (dropna), so a
    # series with a hole still read "reproduced"
    rows = [{"N": n, "g_state": g, "group": grp, "dac": "preset", "r_pd_ohm": 20.0, "error_last_col": 0.01 * k * (j + 1)}
            for k, n in enumerate((8, 16, 32), 1) for g in ("G_MIN", "G_MAX") for j, grp in enumerate(GROUPS)]
    df = pd.DataFrame(rows)
    assert "**reproduced**" in index.size_trends(df)[0]
    holed = df[~((df.N == 16) & (df.group == "WIRE") & (df.g_state == "G_MIN"))]
    line = index.size_trends(holed)[0]
    assert "**NOT reproduced**" in line and "WIRE/G_MIN (no point at N=16)" in line


def test_a_monte_carlo_figure_whose_every_chunk_failed_leaves_the_index_written(tmp_path):
    # run_mc saves None for the numbers of a figure with no instance; write_index raised a TypeError on them
    # (after every figure of 'characterize all'), so no page said what failed
    for name in ("fig2d_state", "fig2e_inputs", "fig2f_variation"):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "mode": "quick", "N": 8, "instances": 0, "ngspice_instances": 0, "exact_wall_s": 0.1, "ngspice_wall_s": 0.1,
            "exact_task_s": 0.0, "ngspice_task_s": 0.0, "max_abs_diff_error_ngspice_vs_exact": float("nan"),
            "max_rel_diff_current_ngspice_vs_exact": float("nan"), "avg_error_min_col": None, "avg_error_max_col": None,
            "spread_per_col_min": None, "spread_per_col_max": None, "spread_per_col_mean": None,
            "argmax_avg_col": None, "sample_argmax_col": None, "failed": ["1 x boom"], "hardware": SPEC.to_dict()}))
    text = index.write_index(tmp_path).read_text()
    rows = [ln for ln in text.splitlines() if "Fig. 2(d)" in ln or "Fig. 2(e)" in ln or "Fig. 2(f)" in ln]
    assert len(rows) == 6 and all("**NOT reproduced**" in ln for ln in rows)
    assert "sweep points FAILED in fig2d_state, fig2e_inputs, fig2f_variation" in text


def test_a_group_or_g_state_whose_every_size_point_failed_reads_not_reproduced_not_a_keyerror():
    rows = [{"N": n, "g_state": g, "group": grp, "dac": "preset", "r_pd_ohm": 20.0, "error_last_col": 0.01 * k * (j + 1)}
            for k, n in enumerate((8, 16), 1) for g in ("G_MIN", "G_MAX") for j, grp in enumerate(GROUPS)]
    df = pd.DataFrame(rows)
    for gone in (df.group == "DAC+DRIVER", df.g_state == "G_MAX", df.group == "ALL"):
        lines = index.size_trends(df[~gone])
        assert "**NOT reproduced**" in lines[0] and "(no point at N=8, 16)" in lines[0]
    dd = index.size_trends(df[df.group != "DAC+DRIVER"])
    assert all("**NOT reproduced**" in ln for ln in dd[1:])


def test_variation_trend_names_the_presets_own_sigma():
    """The index's Fig. 2(f) row said "sigma/mu = 10 %" whatever the run's preset held (reram and spintronic: 0)."""
    sf = {"instances": 20, "spread_per_col_min": 0.0, "spread_per_col_max": 0.0, "spread_per_col_mean": 0.0,
          "avg_error_min_col": 0.01, "avg_error_max_col": 0.02, "hardware": load_preset("reram").to_dict()}
    row = index.mc_trends(None, None, sf)[0]
    assert "sigma/mu = 0 %: the preset has none" in row and "10 %" not in row
    sf["hardware"] = SPEC.to_dict()
    assert "Variation (sigma/mu = 10 %) spreads" in index.mc_trends(None, None, sf)[0]
