"""``xbarlab validate``: the exact solver and G_non-ideal against ngspice.

Writes ``validation.csv`` (one row per case) and ``validation.md`` into the
output folder. Every case is random but seeded, and is re-run by the command.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from .api import g_nonideal, solve
from .params import CircuitParams

CASES = [
    # (rows, cols, r_row, r_col, r_sense, r_driver) in ohm
    (3, 2, 1.0, 1.0, 10.0, 10.0),
    (8, 8, 2.5, 2.5, 100.0, 50.0),
    (16, 16, 0.0, 5.0, 0.0, 100.0),
    (16, 16, 1.0, 1e4, 0.0, 1e4),  # wires up to 1e7 x the smallest cell: ngspice's limit (conditioning)
    (32, 32, 2.5, 2.5, 100.0, 50.0),
    (64, 64, 2.5, 2.5, 100.0, 50.0),
]


HELP = "compare the exact solver with ngspice and write a report"  # xbarlab --help
MAX_VECTORS = 10_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .cli_args import int_in, seed

    p.add_argument("--out", default="reports", help="output folder (default: reports); checked writable first")
    p.add_argument("--seed", type=seed, default=0, help="seed of the random crossbars, 0..2**63-1 (default 0)")
    p.add_argument("--vectors", type=int_in(1, MAX_VECTORS, "a count of input vectors"), default=3,
                   help=f"input vectors per case, 1..{MAX_VECTORS} (default 3)")


def run_cases(seed: int = 0, vectors: int = 3):
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for m, n, r_row, r_col, r_sense, r_driver in CASES:
        c = CircuitParams(r_row=r_row, r_col=r_col, r_sense=r_sense, r_driver=r_driver)
        G = 10 ** rng.uniform(-7, -3, size=(m, n))
        V = rng.uniform(0.0, 0.5, size=(vectors, m))
        t0 = time.perf_counter()
        ex = solve(G, V, c, engine="exact")
        t1 = time.perf_counter()
        sp = solve(G, V, c, engine="ngspice")
        t2 = time.perf_counter()
        gn = V @ g_nonideal(G, c)
        scale = np.abs(sp.i_out).max()
        rows.append(dict(
            rows=m, cols=n, r_row_ohm=r_row, r_col_ohm=r_col, r_sense_ohm=r_sense, r_driver_ohm=r_driver,
            vectors=vectors,
            exact_vs_ngspice_rel=float(np.abs(ex.i_out - sp.i_out).max() / scale),
            gnonideal_vs_exact_rel=float(np.abs(gn - ex.i_out).max() / np.abs(ex.i_out).max()),
            cell_current_vs_ngspice_rel=float(np.abs(ex.i_cell - sp.i_cell).max() / np.abs(sp.i_cell).max()),
            exact_s_per_vector=(t1 - t0) / vectors,
            ngspice_s_per_vector=(t2 - t1) / vectors,
        ))
    return pd.DataFrame(rows)


def run(args) -> int:
    from .cli_args import check_out_dir

    out = check_out_dir(args.out)
    df = run_cases(args.seed, args.vectors)
    df.to_csv(out / "validation.csv", index=False)
    worst = df["exact_vs_ngspice_rel"].max(skipna=False)  # a NaN case is NOT met (pandas' max skips NaN)
    lines = [
        "# Exact solver and G_non-ideal against ngspice",
        "",
        f"Random crossbars (seed {args.seed}), G log-uniform in [1e-7, 1e-3] S, inputs uniform in [0, 0.5] V.",
        "Errors are max |difference| / max |ngspice output| over all columns and vectors.",
        "",
        markdown_table(df),
        "",
        f"Largest exact-vs-ngspice difference: {worst:.3g} (target <= 1e-9): "
        + ("met" if worst <= 1e-9 else "NOT met"),
        "",
        "Regenerate: `xbarlab validate --out reports`.",
    ]
    (out / "validation.md").write_text("\n".join(lines) + "\n")
    print(df.to_string(index=False))
    return 0 if worst <= 1e-9 else 1


def markdown_table(df) -> str:
    """A GitHub markdown table of ``df`` (floats to 3 significant digits), without tabulate."""
    def cell(x) -> str:
        return f"{x:.3g}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)
