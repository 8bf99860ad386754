from pathlib import Path

from characterization.overview import BEGIN, END, write_overview


def test_overview_reports_missing_inputs_and_keeps_other_sections(tmp_path: Path):
    (tmp_path / "index.md").write_text("<!-- characterization:begin -->\nkept\n<!-- characterization:end -->\n")
    (tmp_path / "validation.csv").write_text(
        "exact_vs_ngspice_rel,gnonideal_vs_exact_rel\n2e-9,1e-15\n")
    page = write_overview(tmp_path).read_text()
    assert page.index(BEGIN) < page.index(END) < page.index("kept")
    assert "**NOT met**" in page  # 2e-9 > 1e-9
    assert "bench_dnn.csv missing" in page and "fcm_speed.csv missing" in page
    write_overview(tmp_path)
    assert (tmp_path / "index.md").read_text().count(BEGIN) == 1


def test_overview_circuit_line_counts_a_nan_case_as_not_met(tmp_path: Path):
    """pandas' max skipped a NaN case: 2 crossbars, one unmeasured, read "met" (validation.md says NOT met)."""
    (tmp_path / "validation.csv").write_text("exact_vs_ngspice_rel,gnonideal_vs_exact_rel\n1e-12,1e-15\nnan,nan\n")
    line = next(ln for ln in write_overview(tmp_path).read_text().splitlines() if ln.startswith("- Exact solver"))
    assert "largest relative difference nan (target <= 1e-9: **NOT met**)" in line


def test_overview_gives_each_energy_scheme_range_from_the_csv(tmp_path: Path):
    (tmp_path / "dnn_energy_sensing.csv").write_text(
        "network,mapping,sensing,energy_vs_default\n"
        "a,differential,separate,1.0\na,differential,differential,0.95\na,offset,separate,0.6\n"
        "b,differential,separate,1.0\nb,differential,differential,0.9\nb,offset,separate,0.7\n")
    page = write_overview(tmp_path).read_text()
    assert ("over the 2 networks: differential mapping, differential sensing 0.900-0.950x; "
            "offset mapping, separate sensing 0.600-0.700x") in page


def _line(page: str, start: str) -> str:
    """The one overview line that starts with ``start``."""
    found = [ln for ln in page.splitlines() if ln.startswith(start)]
    assert len(found) == 1, (start, found)
    return found[0]


def test_overview_verdicts_follow_each_target_on_both_sides(tmp_path: Path):
    """Every 'met' / '**NOT met**' of the overview is its number against its target: each one is given a
    value on either side of its target (a verdict that ignored the number, compared the other way or took
    another column would flip one of them)."""
    import pandas as pd

    pd.DataFrame({"exact_vs_ngspice_rel": [5e-10], "gnonideal_vs_exact_rel": [1e-15]}).to_csv(
        tmp_path / "validation.csv", index=False)
    pd.DataFrame({"size": ["64x64", "128x128"], "n": [64, 128], "g_nonideal_median_s": [0.009, 0.030],
                  "target_s": [0.010, 0.025]}).to_csv(tmp_path / "bench_g_nonideal.csv", index=False)
    pd.DataFrame({"tiles": [64], "tile_size": ["64x64"], "tiles_per_s": [600.0], "row_sweep_tiles_per_s": [150.0],
                  "goal_tiles_per_s": [500.0], "goal_ratio_to_row_sweep": [5.5]}).to_csv(
        tmp_path / "bench_g_nonideal_stack.csv", index=False)
    pd.DataFrame({"benchmark": ["fast one", "slow one"], "batch": [128, 128], "ratio": [1.4, 1.6],
                  "target": [1.5, 1.5], "floor_goal_ratio": [1.35, 1.2], "floor_target": [1.3, 1.3]}).to_csv(
        tmp_path / "bench_dnn.csv", index=False)
    for batched, met in ((1e-5, "met"), (1e-4, "**NOT met**")):  # ngspice / FCM batched: 2e5x, then 2e4x
        pd.DataFrame({"size": [64] * 3, "method": ["ngspice", "fcm_batched", "fcm_single"],
                      "seconds_per_vmm": [2.0, batched, 2e-6], "status": ["ok"] * 3}).to_csv(
            tmp_path / "fcm_speed.csv", index=False)  # one vector at a time: 1e6x, above the target both times
        page = write_overview(tmp_path).read_text()
        assert f"(target >= 1e5x: {met} batched)" in _line(page, "- 64x64 speed-up over ngspice per VMM")
    assert "(target <= 1e-9: met)" in _line(page, "- Exact solver vs ngspice")
    assert _line(page, "- G_non-ideal 64x64:").endswith("(target <= 10 ms: met)")
    assert _line(page, "- G_non-ideal 128x128:").endswith("(target <= 25 ms: **NOT met**)")
    stack = _line(page, "- g_nonideal_stack 64x64:")
    assert "600 tiles/s (target >= 500: met)" in stack and "4.0x the row sweep" in stack
    assert "(the goal as a ratio, >= 5.5x: **NOT met**;" in stack
    # bench_g_nonideal's own ratio (the median of alternating pairs) where its CSV has one
    pd.DataFrame({"tiles": [64], "tile_size": ["64x64"], "tiles_per_s": [600.0], "row_sweep_tiles_per_s": [150.0],
                  "row_sweep_ratio": [6.0], "goal_tiles_per_s": [500.0], "goal_ratio_to_row_sweep": [5.5]}).to_csv(
        tmp_path / "bench_g_nonideal_stack.csv", index=False)
    stack = _line(write_overview(tmp_path).read_text(), "- g_nonideal_stack 64x64:")
    assert "6.0x the row sweep" in stack and "(the goal as a ratio, >= 5.5x: met;" in stack
    fast, slow = _line(page, "- fast one, batch 128:"), _line(page, "- slow one, batch 128:")
    assert "= 1.4x (target <= 1.5x: met)" in fast and "floor = 1.35x (issue 12: <= 1.3x: **NOT met**" in fast
    assert "= 1.6x (target <= 1.5x: **NOT met**)" in slow and "floor = 1.2x (issue 12: <= 1.3x: met" in slow


def test_committed_index_sections_are_what_their_generators_make_of_the_committed_csvs(tmp_path: Path):
    """``reports/index.md``'s overview, characterization, DNN-verdict and NEAT sections are generated from
    ``reports/`` (CSV, JSON): the committed page must be what the generators write from the committed files
    (a stale page, a CSV changed without its page, or a generator changed without regenerating the page all
    fail here). Only reads files; the TxSim section takes its run's arguments and is left out."""
    import shutil

    import pandas as pd

    from characterization import index
    from dnn_eval.experiments import neat_accuracy, verdicts

    reports = Path(__file__).resolve().parents[2] / "reports"
    out = tmp_path / "reports"
    shutil.copytree(reports, out, ignore=shutil.ignore_patterns(".cache"))  # the figures too: the index links those that exist
    committed = (reports / "index.md").read_text()
    write_overview(out)
    index.write_index(out)
    verdicts.write(out)
    neat_accuracy.write_pages(pd.read_csv(out / "neat_accuracy.csv"), out)
    regenerated = (out / "index.md").read_text()
    assert (out / "neat_verdict.md").read_text() == (reports / "neat_verdict.md").read_text()
    for begin, end in ((BEGIN, END), (index.BEGIN, index.END), (verdicts.BEGIN, verdicts.END),
                       ("<!-- neat:begin -->", "<!-- neat:end -->")):
        section = [t[t.index(begin):t.index(end)] for t in (committed, regenerated)]
        assert section[0] == section[1], f"reports/index.md {begin} section differs from its generator's output"


def _size_df(dd_large: float, ws_large: float, monotonic: bool = True):
    import pandas as pd

    rows = []
    for g in ("G_MIN", "G_MAX"):
        for group, small in (("DAC+DRIVER", 0.05), ("WIRE", 0.01), ("SENSE", 0.01), ("WIRE+SENSE", 0.02), ("ALL", 0.06)):
            large = {"DAC+DRIVER": dd_large, "WIRE+SENSE": ws_large}.get(group, 0.5 * ws_large if group != "ALL"
                                                                             else dd_large + ws_large)
            mid = (small + large) / 2 if monotonic or group != "SENSE" else small / 2
            for n, v in ((16, small), (32, mid), (64, large)):
                rows.append({"dac": "preset", "r_pd_ohm": 20.0, "N": n, "g_state": g, "group": group,
                             "error_last_col": v})
    return pd.DataFrame(rows)


def test_characterization_trends_follow_their_criteria_on_both_sides():
    """Fig. 2(b)/(c) and 2(d)/(e) verdicts of ``characterization.index`` against numbers on either side of
    each stated criterion."""
    from characterization import index

    def verdict(lines, start):
        found = [ln for ln in lines if ln.startswith(start)]
        assert len(found) == 1, (start, found)
        return found

    ok = index.size_trends(_size_df(dd_large=0.10, ws_large=0.11))  # WIRE+SENSE 0.11 >= DAC+DRIVER 0.10
    no = index.size_trends(_size_df(dd_large=0.10, ws_large=0.09, monotonic=False))
    for lines, want in ((ok, "**reproduced**"), (no, "**NOT reproduced**")):
        for g in ("G_MIN", "G_MAX"):
            assert f"| {want}" in verdict(lines, f"| WIRE and SENSE as significant as DAC+DRIVER at large N ({g}")[0]
            assert "| **reproduced**" in verdict(lines, f"| DAC+DRIVER dominates at small N ({g}")[0]  # 0.05 > 0.02
    assert "| **reproduced**" in ok[0] and "| **NOT reproduced**" in no[0] and "SENSE/G_MIN" in no[0]
    sd = {"avg_error_min_col": 0.01, "avg_error_max_col": 0.03, "spread_per_col_min": 0.001, "spread_per_col_max": 0.004,
          "instances": 20, "argmax_col_distinct": 3, "argmax_col_last_fraction": 0.5, "avg_error_first_half": 0.01,
          "avg_error_second_half": 0.02}
    se = {"spread_per_col_min": 0.0, "spread_per_col_max": 0.001, "instances": 20, "avg_error_min_col": 0.01,
          "avg_error_max_col": 0.03}
    for spread_d, spread_e, want in ((0.0021, 0.001, "**reproduced**"), (0.0019, 0.0011, "**NOT reproduced**")):
        # spread / AVG: 0.0021 / 0.02 >= 0.1 (and 0.0019 < 0.1); inputs / states: 0.48 <= 0.5 (and 0.58 > 0.5)
        lines = index.mc_trends({**sd, "spread_per_col_mean": spread_d}, {**se, "spread_per_col_mean": spread_e}, None)
        dyn = [ln for ln in lines if ln.startswith("| Errors show significant dynamism")]
        small = [ln for ln in lines if ln.startswith("| Spread across inputs is noticeable but small")]
        assert len(dyn) == len(small) == 1 and f"| {want}" in dyn[0] and f"| {want}" in small[0]


def test_overview_judges_each_speed_goal_where_it_applies(tmp_path: Path):
    """The floor goal is the separate scheme's on the differential pair, not the differential scheme's or the
    offset mapping's (bench_dnn.md's `goal`); G_non-ideal's goals are judged on one BLAS thread."""
    import pandas as pd

    pd.DataFrame({"benchmark": ["sep", "diff", "off"], "mapping": ["differential", "differential", "offset"],
                  "sensing": ["separate", "differential", "separate"], "batch": [128] * 3, "ratio": [3.0] * 3,
                  "target": [1.5] * 3, "floor_goal_ratio": [1.2] * 3, "floor_target": [1.3] * 3}).to_csv(
        tmp_path / "bench_dnn.csv", index=False)
    pd.DataFrame({"size": ["64x64"], "n": [64], "g_nonideal_median_s": [0.009], "g_nonideal_one_blas_thread_s": [0.011],
                  "target_s": [0.010]}).to_csv(tmp_path / "bench_g_nonideal.csv", index=False)
    page = write_overview(tmp_path).read_text()
    assert "floor = 1.2x (issue 12: <= 1.3x: met" in _line(page, "- sep, batch 128:")
    for name in ("diff", "off"):
        assert "floor = 1.2x (no floor goal for this row" in _line(page, f"- {name}, batch 128:")
    assert _line(page, "- G_non-ideal 64x64:").endswith("11 ms on one BLAS thread (target <= 10 ms: **NOT met**)")
