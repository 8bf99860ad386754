"""Hypothesis strategies for random crossbars (shared by the property tests)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import xbarlab as xb

resistance = st.one_of(st.just(0.0), st.floats(1e-2, 1e4))
log_g = st.floats(-7.0, -3.0)


@st.composite
def crossbars(draw, max_rows: int = 16, max_cols: int = 16, per_row_driver: bool = True):
    """(G in S, V batch in volt, CircuitParams) with sizes 1..max and SPICE-realistic values."""
    m = draw(st.integers(1, max_rows))
    n = draw(st.integers(1, max_cols))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    G = 10.0 ** rng.uniform(-7.0, -3.0, size=(m, n))
    V = rng.uniform(-0.5, 0.5, size=(2, m))
    if per_row_driver and draw(st.booleans()):
        r_driver = tuple(draw(st.lists(resistance, min_size=m, max_size=m)))
    else:
        r_driver = draw(resistance)
    c = xb.CircuitParams(r_row=draw(resistance), r_col=draw(resistance), r_sense=draw(resistance), r_driver=r_driver)
    return G, V, c
