"""Child processes that die with their parent (even by ``kill -9``), and the folders they run in.

Linux's ``prctl(PR_SET_PDEATHSIG, sig)`` makes the kernel send ``sig`` to a
process when the thread that started it ends; elsewhere (or without
``ctypes``) nothing is set and the callers' own watchers (a thread polling
the parent's pid) are all there is. Sweep workers set it for themselves
(``xbarlab.sweep.executors.die_with_parent``); an ngspice run gets it in the
child before ``exec`` (``dies_with_parent``), since a worker killed with
SIGKILL cannot kill the ngspice it started, which ran on to the end of its
deck with no timeout.

Each ngspice run (``engines.ngspice``) and libngspice helper
(``engines.ngspice_shared``) works in a private temporary folder named
after the process that made it (``run_folder_prefix``), so that whoever
kills that process (a sweep stopping its workers) removes its folders too
(``remove_run_folders``), even where the ngspice it started is gone already.
Its maker holds an exclusive ``flock`` on the folder's ``.owner`` file while
it uses it, so that the folders of a process killed with nobody left to
clean up (``kill -9`` of a sweep: one per busy worker) are found by that
free lock and removed by the next process that makes one
(``remove_stale_run_folders``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

#: the private temporary folders of ngspice runs and of libngspice helpers
RUN_FOLDERS = ("xbarlab-ngspice-", "xbarlab-libngspice-")
OWNER = ".owner"  # in a run folder: its maker holds an exclusive flock on it while it uses the folder
PR_SET_PDEATHSIG = 1
_prctl = None  # libc's prctl, looked up once in the parent (not in a forked child)


def _libc_prctl():
    global _prctl
    if _prctl is None and sys.platform.startswith("linux"):
        try:
            import ctypes

            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            _prctl = False
    return _prctl or None


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``sig`` to this process when its parent (thread) ends; False where it cannot."""
    prctl = _libc_prctl()
    return prctl is not None and prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def dies_with_parent():
    """A ``preexec_fn`` for ``subprocess``: the child gets SIGKILL when the thread that started it ends, or
    exits at once if the starting process already died; None where that cannot be set (not Linux). The
    thread waits for the child (``subprocess.run``), so only its process's death ends it early."""
    prctl = _libc_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # it died between the fork and the line above
            os._exit(1)

    return preexec


def run_folder_prefix(kind: str) -> str:
    """The ``tempfile`` prefix of a private folder of this process: ``kind`` (one of ``RUN_FOLDERS``), the pid."""
    if kind not in RUN_FOLDERS:
        raise ValueError(f"kind must be one of {RUN_FOLDERS}, got {kind!r}")
    return f"{kind}{os.getpid()}-"


def remove_run_folders(pids) -> None:
    """Remove the private run folders that the (killed) processes ``pids`` made in the temporary folder."""
    tmp = Path(tempfile.gettempdir())
    for pid in pids:
        for kind in RUN_FOLDERS:
            for d in tmp.glob(f"{kind}{int(pid)}-*"):
                shutil.rmtree(d, ignore_errors=True)


_swept = False  # (this process removed the stale run folders already)


def make_run_folder(kind: str) -> tuple[str, int | None]:
    """A new private run folder of this process (``kind``: one of ``RUN_FOLDERS``) and the descriptor that
    holds its ``OWNER`` lock (None without ``fcntl``); the first one of a process also removes the stale
    ones. ``release_run_folder`` ends it."""
    global _swept
    if not _swept:
        _swept = True
        remove_stale_run_folders()
    folder = tempfile.mkdtemp(prefix=run_folder_prefix(kind))
    return folder, _hold(folder)


def _hold(folder: str) -> int | None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return None
    new = os.path.join(folder, OWNER + ".new")
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(new, os.path.join(folder, OWNER))  # others see it only once it is locked
    return fd


def release_run_folder(folder: str, fd: int | None) -> None:
    """Remove a folder of ``make_run_folder`` and let go of its lock."""
    shutil.rmtree(folder, ignore_errors=True)
    if fd is not None:
        os.close(fd)


@contextlib.contextmanager
def run_folder(kind: str):
    """``make_run_folder`` as a context: the folder's path, removed at the end."""
    folder, fd = make_run_folder(kind)
    try:
        yield folder
    finally:
        release_run_folder(folder, fd)


def remove_stale_run_folders() -> list[str]:
    """Remove this user's run folders in the temporary folder whose makers died without removing them (their
    ``OWNER`` lock is free); folders in use, of other users, or with no owner file (an older xbarlab's) are
    left. Returns the names removed."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return []
    removed = []
    for kind in RUN_FOLDERS:
        for d in Path(tempfile.gettempdir()).glob(kind + "*"):
            try:
                if d.is_symlink() or d.lstat().st_uid != os.getuid():
                    continue
                fd = os.open(d / OWNER, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # in use
                os.close(fd)
                continue
            shutil.rmtree(d, ignore_errors=True)
            os.close(fd)
            removed.append(d.name)
    return removed
