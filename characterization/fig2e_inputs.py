"""Fig. 2(e): 64x64 crossbar, fixed conductances, 1000 random input vectors: spread of the error per column."""

from __future__ import annotations

from .common import RunConfig
from .montecarlo import run_mc

NAME = "fig2e_inputs"
COUNTS = {"quick": (20, 1), "report": (1000, 5), "full": (1000, 40)}
SIZE = {"quick": 16, "report": 64, "full": 64}


def run(cfg: RunConfig) -> dict:
    return run_mc(cfg, NAME, "inputs", COUNTS, SIZE, chunk_size=100,
                  what="Conductances fixed (one seeded random state); each instance is a random input vector "
                       "(one DAC code per row, uniform in 1..full scale). Lines: MAX, MIN, AVG over inputs per column, "
                       "and the sample run (instance 0).",
                  plot_title="Fig. 2(e): sensitivity to inputs")
