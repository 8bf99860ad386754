"""Fig. 2(d): 64x64 crossbar, fixed inputs, 1000 random crossbar states: MAX/MIN/AVG error per column and one sample run."""

from __future__ import annotations

from .common import RunConfig
from .montecarlo import run_mc

NAME = "fig2d_state"
COUNTS = {"quick": (20, 1), "report": (1000, 5), "full": (1000, 40)}  # (instances, ngspice sample)
SIZE = {"quick": 16, "report": 64, "full": 64}


def run(cfg: RunConfig) -> dict:
    return run_mc(cfg, NAME, "state", COUNTS, SIZE, chunk_size=100,
                  what="Inputs fixed (one seeded random DAC code per row); each instance is a random crossbar state "
                       f"(cells on {cfg.spec.device.levels} levels in [G_MIN, G_MAX]). Lines: MAX, MIN, AVG over states per "
                       "column, and the sample run (instance 0).",
                  plot_title="Fig. 2(d): sensitivity to crossbar state")
