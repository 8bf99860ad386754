"""Command line: ``xbarlab SUBCOMMAND ...``.

Errors print one line to stderr and exit non-zero, never a traceback
(set ``XBARLAB_DEBUG=1`` to see it). SIGTERM (``kill PID``, a batch
scheduler's time limit) stops a subcommand as Ctrl-C does: it raises
``Terminated``, a ``KeyboardInterrupt``, so a sweep kills its workers and
their ngspice runs and writes what finished; the exit status is 143 (Ctrl-C:
130). A closed stdout (``xbarlab ... | head -1``) ends it quietly, status 141.

The core names no app: every subcommand, ``validate`` included, is a
module that its package registers in the entry-point group
``xbarlab.subcommands`` (``pyproject.toml``:
``[project.entry-points."xbarlab.subcommands"]``, ``name = "package.module"``).
Such a module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; it is imported to build the parser, so it imports
nothing heavy before ``run`` and ``xbarlab --help`` stays fast.

Where xbarlab runs from a source checkout (an editable install, or the
folder on ``PYTHONPATH``), that checkout's own ``pyproject.toml`` lists its
subcommands, so an install whose metadata predates a change still finds
them; subcommands of other installed packages are added from their entry
points.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import select
import signal
import sys
import threading
from pathlib import Path

GROUP = "xbarlab.subcommands"
STDOUT_CLOSED = 141  # the exit status when stdout's reader went away (128 + SIGPIPE)
#: the distribution whose subcommands a source checkout's pyproject.toml lists
DIST = "xbarlab"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line usage error (``xbarlab: error: ...``) on stderr, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _checkout_subcommands(root: Path) -> dict[str, str] | None:
    """name -> module from the ``pyproject.toml`` of the source checkout at ``root``; None when there is
    none (an installed wheel), it is another project's, or this Python cannot read TOML."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            return None
    with path.open("rb") as fh:
        project = tomllib.load(fh).get("project", {})
    if project.get("name") != DIST:
        return None
    return dict(project.get("entry-points", {}).get(GROUP, {}))


def discover(root: Path | None = None) -> dict[str, str]:
    """name -> entry-point value (``module`` or ``module:object``) of every registered subcommand, by name.

    ``root`` is the folder above the imported ``xbarlab`` package (a source checkout's root)."""
    root = Path(__file__).resolve().parents[1] if root is None else root
    checkout = _checkout_subcommands(root)
    found: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        if checkout is not None and dist is not None and dist.name == DIST:
            continue  # the checkout's pyproject.toml speaks for the code that runs
        found.setdefault(ep.name, ep.value)
    found.update(checkout or {})
    return dict(sorted(found.items()))


class _Unavailable:
    """Stands in for a subcommand whose module does not import: listed in --help, its error when chosen."""

    def __init__(self, name: str, value: str, exc: Exception) -> None:
        self.HELP = f"(unavailable: {type(exc).__name__} importing {value})"
        self.error = ImportError(f"subcommand {name!r} ({value}) does not import: {type(exc).__name__}: {exc}")

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        pass

    def run(self, args) -> int:
        raise self.error


def _load(name: str, value: str):
    try:
        return importlib.metadata.EntryPoint(name, value, GROUP).load()
    except Exception as exc:  # noqa: BLE001 - one broken plugin must not take the others down
        if os.environ.get("XBARLAB_DEBUG"):
            raise
        return _Unavailable(name, value, exc)


def build_parser(subcommands: dict[str, str] | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand in ``subcommands`` (default: ``discover()``)."""
    subcommands = discover() if subcommands is None else subcommands
    if not subcommands:
        raise RuntimeError(f"no xbarlab subcommands are registered (entry points {GROUP!r}); "
                           "reinstall xbarlab: pip install -e .")
    parser = _Parser(prog="xbarlab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    parser.unavailable = {}  # name -> _Unavailable: chosen, it fails before its arguments are parsed
    for name, value in subcommands.items():
        command = _load(name, value)
        if isinstance(command, _Unavailable):
            parser.unavailable[name] = command
        doc = (getattr(command, "__doc__", None) or "").strip()
        p = sub.add_parser(name, help=getattr(command, "HELP", None) or (doc.splitlines()[0] if doc else None))
        p.set_defaults(_run=command.run)
        command.add_arguments(p)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so that every ``except KeyboardInterrupt`` that
    saves what finished (and kills the sweep's workers) handles it too."""


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM, during the cleanup, ends the process at once
    raise Terminated("SIGTERM")


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises ``Terminated`` in the main thread while the subcommand runs; the handler before is put
    back after (``main`` may be called from a program, or from a thread, where nothing is installed). A
    SIGTERM ignored by whoever started the process stays ignored."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        yield
        return
    before = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"xbarlab: error: {type(exc).__name__}: {msg}"


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
    except Exception as exc:  # noqa: BLE001 - the CLI's contract is one line, no traceback
        if os.environ.get("XBARLAB_DEBUG"):
            raise
        print(_one_line(exc), file=sys.stderr)
        return 1
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if argv and argv[0] in parser.unavailable:
            parser.unavailable[argv[0]].run(None)
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error (or the help)
        return _flushed(int(exc.code or 0))
    except ImportError as exc:
        print(_one_line(exc), file=sys.stderr)
        return 1
    return _run(args)


def _run(args) -> int:
    """Run the chosen subcommand: its exit status, or one line on stderr and a non-zero status."""
    try:
        with _sigterm_as_interrupt():
            return _flushed(int(args._run(args) or 0))
    except BrokenPipeError as exc:
        if _reader_gone():
            return _drop_stdout()
        return _error(exc)
    except Terminated:
        print("xbarlab: terminated by SIGTERM (finished results are saved)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("xbarlab: interrupted (finished results are saved)", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's contract is one line, no traceback
        return _error(exc)


def _error(exc: Exception) -> int:
    if os.environ.get("XBARLAB_DEBUG"):
        raise exc
    print(_one_line(exc), file=sys.stderr)
    return 1


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end is closed (``xbarlab ... | head -1``), not some other pipe
    of the subcommand's that broke."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), no file descriptor: stdout it is
        return True


def _drop_stdout() -> int:
    """A closed stdout ends the command quietly, as Unix tools do (the Python docs' recipe): what is still
    buffered goes to devnull, not to a traceback at exit; status 141 (128 + SIGPIPE), as a shell reports them."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # (a stand-in stdout without a file descriptor)
        pass
    os.close(devnull)
    return STDOUT_CLOSED


def _flushed(code: int) -> int:
    """``code`` once stdout is flushed (a closed stdout fails here, not at exit), or ``_drop_stdout``'s."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return _drop_stdout()
    return code


if __name__ == "__main__":
    sys.exit(main())
