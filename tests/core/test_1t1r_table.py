"""The transistor table (``engines.cell_table.TransistorTable``): its range check and its Newton partials.

One small ngspice sweep (W = 100 nm, V_G 1.0 V, V_s in [0, 0.05] V, |V_ds| <= 0.05 V, 5 mV) serves all.

* ``check_range`` refuses NaN and Inf terminal voltages (a NaN's min and max compare False: they used to
  pass as inside the table);
* a table built directly refuses ranges beyond its grid (``check_range`` trusts them: a wider
  ``vs_hi`` or ``vds_max`` let extrapolated currents through as tabulated);
* a table refuses an ``access`` of another W, L, V_G or card than it was swept for;
* the partials ``currents`` returns for the Newton solver are the derivatives of the surface it evaluates:
  against central differences of the table itself (h = 1e-7 V) at random points and on the grid's edges,
  and on the V_ds = 0 line (h = 1e-9 V: the surface is only C1 across it, so there a central difference
  is off by O(h), 1e-7 at h = 1e-7 V). Measured: 1.6e-10 of the largest partial off the line, 1.5e-9 on it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xbarlab.engines.cell_table import TransistorTable
from xbarlab.transistor import AccessTransistor


@pytest.fixture(scope="module")
def small(ngspice):
    return TransistorTable.from_ngspice(AccessTransistor(), vs_lo=0.0, vs_hi=0.05, vds_max=0.05, step=5e-3)


@pytest.mark.parametrize("vd,vs", [([0.01, np.nan], [0.0, 0.0]), ([0.01, 0.02], [np.nan, 0.0]),
                                   ([np.inf], [0.0]), ([0.01], [-np.inf]), (np.nan, 0.0)])
def test_check_range_refuses_non_finite_voltages(small, vd, vs):
    with pytest.raises(ValueError, match="non-finite"):
        small.check_range(np.asarray(vd), np.asarray(vs))
    small.check_range(np.asarray([0.01, 0.02]), np.asarray([0.0, 0.01]))  # inside: no error


@pytest.mark.parametrize("field,value,needle", [("vs_hi", 0.08, "vs_hi"), ("vs_lo", -0.03, "vs_lo"),
                                                ("vds_max", 0.1, "vds_max"), ("vds_max", 0.0, "vds_max"),
                                                ("vs_lo", 0.06, "vs_lo"), ("vs_hi", np.nan, "vs_hi"),
                                                ("vds_max", True, "vds_max"), ("access", "nmos", "access")])
def test_table_ranges_must_lie_in_its_grid(small, field, value, needle):
    with pytest.raises(ValueError, match=needle):
        dataclasses.replace(small, **{field: value})


def test_table_ranges_beyond_the_grid_cannot_pass_check_range(small):
    with pytest.raises(ValueError, match="vs_hi"):
        wide = dataclasses.replace(small, vs_hi=0.2)
        wide.check_range(np.asarray([0.15]), np.asarray([0.15]))  # would extrapolate 0.1 V past the grid
    with pytest.raises(ValueError, match="source"):
        dataclasses.replace(small, source=dataclasses.replace(small.source, y=small.source.y + 1e-3))


def test_partials_are_the_derivatives_of_the_surface(small):
    rng = np.random.default_rng(7)
    lo, hi = small.vs_lo, small.vs_hi
    vs = np.concatenate([rng.uniform(lo, hi, 400), rng.uniform(lo, hi, 50), np.full(25, lo + 1e-6),
                         np.full(25, hi - 1e-6), rng.uniform(lo, hi, 25)])
    vd = np.concatenate([rng.uniform(lo, hi, 400), vs[400:450], rng.uniform(lo, hi, 50),
                         np.full(25, lo + 1e-6)])  # vs[400:450]: on V_ds = 0
    on = np.zeros(vs.shape, bool)
    on[400:450] = True
    worst = {True: 0.0, False: 0.0}
    for k in (0, 1):  # drain, source
        f, f_d, f_s = small.currents(vd, vs)[k]
        scale = max(np.abs(f_d).max(), np.abs(f_s).max())
        # across V_ds = 0 the surface is only C1: a central difference is off by O(h) there, so a smaller h
        for line, h in ((False, 1e-7), (True, 1e-9)):
            m = on == line
            fd_d = (small.currents(vd[m] + h, vs[m])[k][0] - small.currents(vd[m] - h, vs[m])[k][0]) / (2 * h)
            fd_s = (small.currents(vd[m], vs[m] + h)[k][0] - small.currents(vd[m], vs[m] - h)[k][0]) / (2 * h)
            worst[line] = max(worst[line], np.abs(f_d[m] - fd_d).max() / scale, np.abs(f_s[m] - fd_s).max() / scale)
        assert np.all(f_d > 0) and np.all(f_s < 0)  # the drain current rises with V_d and falls with V_s
    print(f"table partials against central differences: {worst[False]:.3g} of the largest partial off the "
          f"V_ds = 0 line, {worst[True]:.3g} on it")
    assert worst[False] <= 1e-8 and worst[True] <= 1e-8


@pytest.mark.parametrize("change", [{"v_gate_v": 1.2}, {"w_m": 2e-7}, {"l_m": 1e-7}])
def test_a_table_refuses_another_transistor(small, change):
    """The table answers for the W, L, V_G and card it was swept at: replacing its ``access`` by another
    transistor raises (it used to be taken silently, the currents those of the swept one)."""
    with pytest.raises(ValueError, match="swept for"):
        dataclasses.replace(small, access=dataclasses.replace(small.access, **change))
    for same in ({"side": "row"}, {"gate_line": "col"}):  # the sweep of one transistor does not see these
        assert dataclasses.replace(small, access=dataclasses.replace(small.access, **same)).swept == small.swept


def test_a_table_refuses_another_card(small, tmp_path):
    from xbarlab.cards import DEFAULT_CARD

    text = DEFAULT_CARD.read_text()
    assert "vth0 = 0.4106" in text
    card = tmp_path / "other.inc"
    card.write_text(text.replace("vth0 = 0.4106", "vth0 = 0.45"))
    with pytest.raises(ValueError, match="another card"):
        dataclasses.replace(small, access=dataclasses.replace(small.access, card=str(card)))
    card.write_text(text)  # the same parameters from another file: the same sweep
    dataclasses.replace(small, access=dataclasses.replace(small.access, card=str(card)))
