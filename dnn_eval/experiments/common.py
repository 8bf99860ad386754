"""Shared command line and output helpers of the experiment scripts."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import DEFAULT_PRESET

NETWORKS = ("mlp", "lenet", "convnet")
SIZES = (16, 32, 64)


def parse(doc: str, argv=None, **extra) -> argparse.Namespace:
    from xbarlab.cli_args import check_out_dir, threads
    from xbarlab.spec import preset_names

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("reports"))
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=preset_names())
    p.add_argument("--threads", type=threads, default=1, help="torch CPU threads, 1..this machine's CPU count")
    for name, (typ, default) in extra.items():
        if typ is bool:  # a flag, off unless given
            p.add_argument(f"--{name.replace('_', '-')}", action="store_true")
        else:
            p.add_argument(f"--{name.replace('_', '-')}", type=typ, default=default)
    args = p.parse_args(argv)
    try:
        check_out_dir(args.out)
    except ValueError as exc:
        p.error(str(exc))
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def save(df, fig_or_ax, out: Path, stem: str) -> None:
    df.to_csv(out / f"{stem}.csv", index=False)
    fig = getattr(fig_or_ax, "figure", fig_or_ax)
    fig.tight_layout()
    fig.savefig(out / f"{stem}.png", dpi=120)
    print(f"wrote {out / stem}.csv and .png")
