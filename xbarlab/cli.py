"""Command line: ``xbarlab SUBCOMMAND ...``.

Errors print one line to stderr and exit non-zero, never a traceback
(set ``XBARLAB_DEBUG=1`` to see it). Subcommands live in their own modules
and are imported only when chosen, so ``xbarlab --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module, help). Each module defines add_arguments(parser) and run(args) -> int.
SUBCOMMANDS = {
    "validate": ("xbarlab.validation_report", "compare the exact solver with ngspice and write a report"),
    "dnn-eval": ("dnn_eval.cli", "accuracy of a PyTorch network (.pt2 export or bundled) on crossbars"),
    "characterize": ("characterization.cli", "reproduce the RxNN sensitivity studies (Fig. 2, Fig. 3) into reports/"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (``xbarlab: error: ...``) on stderr, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="xbarlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except KeyboardInterrupt:
        print("xbarlab: interrupted (finished results are saved)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's contract is one line, no traceback
        if os.environ.get("XBARLAB_DEBUG"):
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"xbarlab: error: {type(exc).__name__}: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
