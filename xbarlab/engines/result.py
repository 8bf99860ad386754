"""The result of solving a crossbar for one or more input vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SolveResult:
    """Node voltages (V) and currents (A) of a solved crossbar.

    Arrays carry a leading batch axis B when the input was a batch (B, M), and
    none for a single vector (M,).

    Attributes:
        v_row: voltage of row node a(i, j) at cell (i, j), shape ([B,] M, N).
        v_col: voltage of column node b(i, j) at cell (i, j), shape ([B,] M, N).
        i_cell: current through cell (i, j) from a(i, j) to b(i, j), ampere;
            negative where a sneak path reverses it. It is G (v_row - v_col) of voltages each held
            to double precision, so it keeps fewer digits than ``i_out``: measured up to about
            3e-16 times the circuit's conductance spread (cells and wires) relative to the largest
            cell current (``tests/core/test_nonlinear_accuracy.py``; 2.5e-9 at a spread of 9e6),
            where the engines' stated 1e-9 bounds are on ``i_out``.
        i_out: output current of each column through its sense resistor,
            ampere, shape ([B,] N).
        engine: name of the engine that produced it.
    """

    v_row: np.ndarray
    v_col: np.ndarray
    i_cell: np.ndarray
    i_out: np.ndarray
    engine: str
