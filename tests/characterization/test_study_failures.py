"""Figures and verdicts of the studies when some of their points failed or are missing (no ngspice needed)."""

import pandas as pd

from characterization import montecarlo
from characterization.common import RunConfig

_chunk_task = montecarlo.chunk_task


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
    assert "**FAILED: 1 of 3 exact fast-path chunks**" in (tmp_path / "figx.md").read_text()
