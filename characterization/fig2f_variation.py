"""Fig. 2(f): Monte Carlo over 10,000 hardware instances with sigma/mu = 10 % device variation, 64x64."""

from __future__ import annotations

from .common import RunConfig
from .montecarlo import run_mc

NAME = "fig2f_variation"
COUNTS = {"quick": (20, 1), "report": (10000, 5), "full": (10000, 40)}
SIZE = {"quick": 16, "report": 64, "full": 64}


def run(cfg: RunConfig) -> dict:
    dev = cfg.spec.device
    return run_mc(cfg, NAME, "variation", COUNTS, SIZE, chunk_size=500,
                  what=f"A fixed nominal state and input; each instance is one hardware instance of the preset's device "
                       f"(sigma/mu = {100 * dev.variation:g} %, {dev.variation_kind.value}: DeviceParams.sample). The error is taken "
                       "against the ideal output of the nominal state, so it holds variation and parasitics together "
                       "(columns varonly_*: variation alone). Lines: MAX, MIN, AVG over instances per column.",
                  plot_title=f"Fig. 2(f): process variation (sigma/mu = {100 * dev.variation:g} %)")
