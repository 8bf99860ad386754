"""Results beyond double precision's range are refused, not returned as inf (the exact engine)."""

import numpy as np
import pytest

import xbarlab as xb


@pytest.mark.parametrize("read", ["forward", "backward"])
def test_cell_currents_that_overflow_raise(read):
    """1e200 S cells at +-1e109 V: each cell carries 1e309 A (beyond 1.8e308) while the columns'
    sums cancel to 0 A, so the output currents alone do not show it; i_cell was +-inf."""
    G = np.full((2, 2), 1e200)
    with pytest.raises(ValueError, match="cell currents overflow"):
        xb.solve(G, np.array([1e109, -1e109]), xb.CircuitParams(), read=read)


@pytest.mark.parametrize("read", ["forward", "backward"])
def test_cell_currents_near_the_top_of_the_range_are_kept(read):
    """1e200 S cells at +-1e107 V: 1e307 A per cell, within range, exactly G (v_row - v_col)."""
    G = np.full((2, 2), 1e200)
    r = xb.solve(G, np.array([1e107, -1e107]), xb.CircuitParams(), read=read)
    assert np.all(np.isfinite(r.i_cell)) and np.abs(r.i_cell).max() == pytest.approx(1e307, rel=1e-15)
    assert np.array_equal(r.i_cell, G * (r.v_row - r.v_col))


@pytest.mark.parametrize("field", ["G", "V"])
def test_integers_beyond_double_precision_raise_value_error(field):
    """A Python int of 1e400 raised OverflowError from numpy, not ValueError naming the field."""
    G, V = [[1.0]], [1.0]
    if field == "G":
        G = [[10 ** 400]]
    else:
        V = [10 ** 400]
    with pytest.raises(ValueError, match=f"^{field} must be finite"):
        xb.simulate(G, V, xb.CircuitParams(r_row=1.0))
