"""Figures and verdicts of the studies when some of their points failed or are missing (no ngspice needed)."""

import numpy as np
import pandas as pd

from characterization import fig3b_sneak, index, montecarlo
from characterization.common import RunConfig
from characterization.technology import GROUPS

_chunk_task = montecarlo.chunk_task
_sneak_point = fig3b_sneak.sneak_point


def chunk0_fails(p, seed):
    """montecarlo.chunk_task, except that its first chunk raises (a failed sweep point)."""
    if int(p["chunk"]) == 0:
        raise RuntimeError("chunk 0 broke")
    return _chunk_task(p, seed)


def test_a_failed_monte_carlo_chunk_leaves_the_others_on_the_page(tmp_path, monkeypatch):
    # a chunk's per-column "error" shares its column with the sweep's failure message: one failed chunk left
    # the ok rows' errors as strings, and the figure raised a TypeError instead of writing the page
    monkeypatch.setattr(montecarlo, "chunk_task", chunk0_fails)
    cfg = RunConfig(out=tmp_path, mode="quick", progress=False, scheduler="inline")
    s = montecarlo.run_mc(cfg, "figx", "state", {"quick": (30, 0)}, {"quick": 8}, chunk_size=10)
    assert s["instances"] == 20 and s["failed"] == ["1 x RuntimeError: chunk 0 broke"]
    df = pd.read_csv(tmp_path / "figx.csv")
    assert len(df) == 8 and (df["n_instances"] == 20).all() and df["error_avg"].notna().all()
    page = (tmp_path / "figx.md").read_text()
    assert "**FAILED: 1 of 3 exact fast-path chunks**" in page
    # the pages call the sample run instance 0; with chunk 0 failed it is instance 10, and the page says so
    assert "The sample run is instance 10: instances 0..9 are in failed chunks." in page
    assert "(0-based, as in the CSV; the figure numbers columns from 1)" in page


def _size_rows(sizes):
    return pd.DataFrame([{"N": n, "g_state": g, "group": grp, "dac": "preset", "r_pd_ohm": 20.0,
                          "error_last_col": 0.01 * k * (j + 1)}
                         for k, n in enumerate(sizes, 1) for g in ("G_MIN", "G_MAX") for j, grp in enumerate(GROUPS)])


def test_errors_grow_with_n_needs_two_sizes_to_compare():
    # every point of all sizes but one failed (left out of the CSV): a single size has nothing to compare,
    # and "strictly increasing" held vacuously, so the trend read reproduced
    assert "**reproduced**" in index.size_trends(_size_rows((8, 16)))[0]
    line = index.size_trends(_size_rows((8,)))[0]
    assert "**NOT reproduced**" in line and "only N=8" in line


def test_size_statements_read_not_reproduced_when_no_preset_point_finished(tmp_path):
    # only the strong-DAC rows left: size_trends raised an IndexError (no index page); no row at all (a CSV of
    # headers only): the Fig. 2(b)/(c) statements vanished from the page, which says failed checks read NOT reproduced
    strong = _size_rows((8, 16)).query("group == 'DAC+DRIVER'").assign(dac="strong-dac")
    for df in (strong, strong.iloc[:0]):
        lines = index.size_trends(df)
        assert len(lines) == 3 and all("**NOT reproduced**" in ln for ln in lines)
    strong.iloc[:0].to_csv(tmp_path / "fig2bc_size.csv", index=False)
    (tmp_path / "fig2bc_size.json").write_text('{"failed": ["40 x boom"], "points": 0}')
    page = index.write_index(tmp_path).read_text()
    assert "Errors grow with N (Fig. 2(b)/(c)) | **NOT reproduced**" in page


def ngspice_sneak_fails(p, seed):
    """fig3b_sneak.sneak_point, except that its ngspice points raise (no ngspice needed)."""
    if p["engine"] == "ngspice":
        raise RuntimeError("ngspice broke")
    return _sneak_point(p, seed)


def test_a_sneak_path_whose_ngspice_point_failed_is_not_checked_not_a_no(tmp_path, monkeypatch):
    # the summary said reversed = False (i = NaN < 0 is false), and the index "reversal does NOT hold in ngspice"
    monkeypatch.setattr(fig3b_sneak, "sneak_point", ngspice_sneak_fails)
    cfg = RunConfig(out=tmp_path, mode="quick", progress=False, scheduler="inline")
    s = fig3b_sneak.run(cfg)
    assert s["reversed"] is None and s["failed"] == ["5 x RuntimeError: ngspice broke"]
    page = index.write_index(tmp_path).read_text()
    assert "reversal NOT CHECKED (its ngspice point failed) in ngspice" in page
    assert "Sneak path reverses" in page and "**NOT reproduced** at the preset" in page


def test_the_monte_carlo_csv_names_the_seed_of_its_instances(tmp_path):
    cfg = RunConfig(out=tmp_path, mode="quick", progress=False, scheduler="inline")
    runs = [montecarlo.run_mc(cfg, f"figs{seed}", "state", {"quick": (6, 0)}, {"quick": 4}, seed=seed)
            for seed in (3, 4)]
    a, b = (pd.read_csv(tmp_path / f"figs{seed}.csv") for seed in (3, 4))
    assert (a["seed"] == 3).all() and (b["seed"] == 4).all() and runs[0]["instances"] == 6
    assert not np.allclose(a["error_avg"], b["error_avg"])  # the seed is what tells the two apart
