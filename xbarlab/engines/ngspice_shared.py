"""The ``shared`` back end of the ngspice adapter: libngspice through PySpice, in helper processes.

libngspice is one global instance per process, not thread-safe, and its
``.op`` cannot be halted (``bg_halt`` answers "Couldn't stop ngspice"), so
run in the caller's process it crashes under two threads and cannot honour a
timeout. Here it never runs in the caller's process: each run goes to a
helper process (``python -c`` ``_BOOT``) that holds one libngspice and
serves one deck at a time over a pipe. Helpers are kept in a process-wide
pool, so repeated runs pay ngspice's start once, and each thread that runs
at the same time gets its own helper. A timeout kills the helper at once
(the call returns within milliseconds of ``timeout_s``); a crash in
libngspice ends only the helper; either way the next run starts a fresh one.

A helper starts in a private empty directory with ``xbarlab.engines.ngspice.clean_env``,
so libngspice finds no ``.spiceinit`` in its current folder and no
``$SPICE_SCRIPTS``. libngspice 39 also reads ``.spiceinit`` from the home
folder in the password database (not ``$HOME``) and has no switch to skip
it, so a helper refuses to start while that file exists.

Results travel as JSON headers and raw float64 bytes (never pickle); each
helper exits when its parent process dies or closes the pipe, and removes
its private folder then.
"""

from __future__ import annotations

import atexit
import json
import os
import pwd
import select
import shutil
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..errors import INSTALL_HINT, NgspiceNotFoundError, SpiceError, SpiceTimeoutError
from ..lifetime import make_run_folder, release_run_folder

START_TIMEOUT_S = 120.0  # a helper's start (Python, PySpice, libngspice), not counted in timeout_s
MAX_IDLE = 8  # idle helpers kept for reuse
_HDR = struct.Struct("<Q")
# The helper imports only this module and xbarlab.errors (not xbarlab/__init__ and its
# numerical stack): a bare package module stands for xbarlab, so it starts in a fraction of a second.
_BOOT = ("import sys, types; m = types.ModuleType('xbarlab'); "
         f"m.__path__ = [{str(Path(__file__).resolve().parents[1])!r}]; sys.modules['xbarlab'] = m; "
         "from xbarlab.engines.ngspice_shared import _serve; _serve()")


def passwd_home_init() -> Path:
    """The ``.spiceinit`` libngspice reads from the user's home folder in the password database."""
    return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".spiceinit"


class _Gone(Exception):
    """The helper process ended or its pipe failed."""


class _Timeout(_Gone):
    """The helper did not answer in time."""


class _Helper:
    """One helper process with one libngspice; used by one thread at a time."""

    def __init__(self) -> None:
        init = passwd_home_init()
        if init.exists():
            raise SpiceError(
                f"refusing to start libngspice (backend='shared'): it would run the startup file {init}, "
                "whose commands can run shell commands and change every result, and libngspice cannot "
                "be told to skip it. Move that file away, or use backend='subprocess' (it ignores startup files).")
        self.last_err = ""  # the helper's stderr when it failed
        self.dir, self.owner = make_run_folder("xbarlab-libngspice-")
        env = _helper_env(self.dir)
        self.errfile = open(Path(self.dir) / "helper.err", "wb+")
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", _BOOT], cwd=self.dir, env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errfile)
        except OSError as exc:
            self.close()
            raise SpiceError(f"cannot start the libngspice helper process: {exc}") from None
        try:
            hello = json.loads(self._recv(time.monotonic() + START_TIMEOUT_S))
        except (_Gone, ValueError) as exc:
            log = self.stderr_tail()
            self.close()
            raise SpiceError(f"the libngspice helper process did not start: {exc}", log=log) from None
        if not hello.get("ok"):
            self.close()
            if hello.get("error") == "notfound":
                raise NgspiceNotFoundError(hello.get("message", INSTALL_HINT))
            raise SpiceError(f"libngspice failed to start: {hello.get('message', '')}", log=hello.get("log", ""))

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def run(self, deck: str, timeout_s: float) -> tuple[dict, bytes]:
        """Send one deck; return (header, data) or raise _Gone (the helper is then closed)."""
        deadline = time.monotonic() + timeout_s
        try:
            body = json.dumps({"deck": deck}).encode()
            self.proc.stdin.write(_HDR.pack(len(body)) + body)
            self.proc.stdin.flush()
            head = json.loads(self._recv(deadline))
            data = self._recv(deadline) if head.get("ok") else b""
        except (OSError, ValueError) as exc:  # broken pipe, garbled frame
            self.last_err = self.stderr_tail()
            self.close()
            raise _Gone(f"its pipe failed ({exc})") from None
        except BaseException:  # _Gone, or Ctrl-C mid-run: a helper neither closed nor pooled left its folder
            self.last_err = self.stderr_tail()
            self.close()
            raise
        return head, data

    def _recv(self, deadline: float) -> bytes:
        (n,) = _HDR.unpack(self._read(_HDR.size, deadline))
        return self._read(n, deadline)

    def _read(self, n: int, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Timeout("no answer in time")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, min(n - len(buf), 1 << 20))
                if not chunk:
                    rc = self.proc.wait()
                    raise _Gone(f"it exited with status {rc}" if rc >= 0 else f"it was killed by signal {-rc}")
                buf += chunk
        return bytes(buf)

    def stderr_tail(self) -> str:
        try:
            self.errfile.flush()
            self.errfile.seek(0)
            return self.errfile.read()[-4000:].decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        """Kill the helper (if running) and remove its folder."""
        proc, self.proc = getattr(self, "proc", None), None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for f in (proc.stdin, proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
        self.errfile.close()
        release_run_folder(self.dir, self.owner)


def _helper_env(home: str) -> dict[str, str]:
    from .ngspice import clean_env

    return clean_env(home)


class _Pool:
    """Idle helpers of this process; a forked child starts its own."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[_Helper] = []
        self.pid = os.getpid()

    def take(self) -> _Helper:
        with self.lock:
            if self.pid != os.getpid():  # inherited through fork: the pipes belong to the parent
                self.idle, self.pid = [], os.getpid()
            while self.idle:
                h = self.idle.pop()
                if h.alive:
                    return h
                h.close()
        return _Helper()

    def give(self, h: _Helper) -> None:
        with self.lock:
            if h.alive and self.pid == os.getpid() and len(self.idle) < MAX_IDLE:
                self.idle.append(h)
                return
        h.close()

    def close_all(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
            mine = self.pid == os.getpid()
        for h in idle if mine else ():
            h.close()


_pool = _Pool()
atexit.register(_pool.close_all)


def run(deck: str, timeout_s: float, check_log, tail) -> dict[str, np.ndarray]:
    """Run one checked ``.op`` deck in a libngspice helper; return {vector name: values}.

    ``check_log(text, rc)`` raises ``SpiceError`` on an ngspice error in the
    log, and ``tail(text)`` shortens a log; both come from the adapter so
    that both back ends judge ngspice's output the same way. Runs from
    several threads go to separate helpers; ``timeout_s`` limits the run
    itself (a helper's first start has its own limit, ``START_TIMEOUT_S``).
    """
    h = _pool.take()
    try:
        head, data = h.run(deck, timeout_s)
    except _Timeout:
        raise SpiceTimeoutError(f"ngspice (shared) timed out after {timeout_s} s",
                         log="its libngspice helper process was killed; the next run starts a fresh one") from None
    except _Gone as exc:
        raise SpiceError(f"ngspice (shared) crashed: the libngspice helper process failed, {exc}",
                         log=tail(h.last_err)) from None
    _pool.give(h)
    log = head.get("log", "")
    check_log(log, None)
    if not head.get("ok"):
        raise SpiceError(f"ngspice (shared) {head.get('message', 'failed')}", log=tail(log))
    values = np.frombuffer(data, dtype="<f8")
    out, start = {}, 0
    for name, n in zip(head["names"], head["lengths"]):
        out[name] = values[start:start + n].copy()
        start += n
    return out


# ---------------------------------------------------------------- helper side


def _serve() -> None:
    """Helper process main loop: one deck in, one result out, until stdin closes."""
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)  # stray C output must not reach the protocol pipe
    parent, folder = os.getppid(), os.getcwd()  # (the private folder its parent made for it)
    threading.Thread(target=_exit_with_parent, args=(parent, folder), daemon=True).start()

    def send(head: dict, data: bytes | None = None) -> None:
        for frame in (json.dumps(head).encode(), data):
            if frame is not None:
                proto_out.write(_HDR.pack(len(frame)) + frame)
        proto_out.flush()

    try:
        ng = _libngspice()
    except NgspiceNotFoundError as exc:
        send({"ok": False, "error": "notfound", "message": str(exc)})
        return
    except ImportError as exc:
        send({"ok": False, "error": "notfound", "message": f"{INSTALL_HINT} (PySpice import failed: {exc})"})
        return
    send({"ok": True})
    while True:
        head = _read_frame(proto_in)
        if head is None:  # its parent closed the pipe: it ended without closing the helper (no atexit in a
            _leave(folder)  # multiprocessing worker), or was killed
        deck = json.loads(head)["deck"]
        try:
            vectors, log = run_one(ng, deck)
        except SpiceError as exc:
            send({"ok": False, "message": str(exc).split("\n")[0].removeprefix("ngspice (shared) "),
                  "log": exc.log})
            continue
        except Exception as exc:  # PySpice's own errors (NameError on a return code, ...)
            send({"ok": False, "message": f"failed in PySpice: {exc!r}", "log": ""})
            continue
        names = list(vectors)
        arrays = [np.ascontiguousarray(vectors[k], dtype="<f8").ravel() for k in names]
        send({"ok": True, "log": log, "names": names, "lengths": [a.size for a in arrays]},
             b"".join(a.tobytes() for a in arrays))


def _read_frame(f) -> bytes | None:
    def exact(n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = f.read(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    hdr = exact(_HDR.size)
    return None if hdr is None else exact(_HDR.unpack(hdr)[0])


def _exit_with_parent(parent: int, folder: str) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    _leave(folder)


def _leave(folder: str) -> None:
    """End this helper, removing its private folder: a parent that died or exited without closing it
    (``_Helper.close``) left one ``xbarlab-libngspice-*`` folder behind per helper."""
    if Path(folder).name.startswith("xbarlab-libngspice-"):
        shutil.rmtree(folder, ignore_errors=True)
    os._exit(0)


def _libngspice():
    """This helper's libngspice (PySpice imported here, in the helper only)."""
    from PySpice.Spice.NgSpice.Shared import NgSpiceShared, ffi

    class _NgSpice(NgSpiceShared):
        """NgSpiceShared that only collects ngspice's output (PySpice logs stderr lines as errors)."""

        _instances: dict = {}  # separate from PySpice's own registry

        @staticmethod
        def _send_char(message_c, ngspice_id, user_data):
            self = ffi.from_handle(user_data)
            prefix, _, content = ffi.string(message_c).decode("utf-8", "replace").partition(" ")
            if prefix == "stderr":
                self._stderr.append(content)
                if not content.startswith("Warning:"):
                    self._error_in_stderr = True
            else:
                self._stdout.append(content)
                if "error" in content.lower():
                    self._error_in_stdout = True
            return 0

        @staticmethod
        def _background_thread_running(exited, ngspice_id, user_data):
            return 0  # never used (runs are in the foreground); PySpice's returns None where C wants an int

    try:
        return _NgSpice.new_instance()
    except Exception as exc:  # OSError/cffi errors when libngspice is missing
        raise NgspiceNotFoundError(f"{INSTALL_HINT} (libngspice: {exc})") from None


def run_one(ng, deck: str) -> tuple[dict[str, np.ndarray], str]:
    """Load, run and read one deck in this helper's libngspice; return (vectors, log).

    The library is left empty (no circuit, no plots) for the next deck.
    """
    from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError, NgSpiceCommandError

    log: list[str] = []

    def output() -> str:
        return "\n".join(s for s in (ng.stdout, ng.stderr) if s)

    try:
        try:
            ng.load_circuit(deck)
        except NgSpiceCircuitError:
            log.append(output())
            raise SpiceError("ngspice (shared) rejected the deck", log="\n".join(log)) from None
        log.append(output())
        try:
            ng.exec_command("run")
        except NgSpiceCommandError:
            log.append(output())
            raise SpiceError("ngspice (shared) command 'run' failed", log="\n".join(log)) from None
        log.append(output())
        name = ng.last_plot
        if not name or name == "const":
            raise SpiceError("ngspice (shared) produced no plot", log="\n".join(log))
        out = {}
        for key, vec in ng.plot(None, name).items():
            k = key.lower()
            if k.endswith("#branch"):
                k = f"i({k[:-len('#branch')]})"
            elif not k.startswith(("v(", "i(")):
                k = f"v({k})"
            out[k] = np.real(np.asarray(vec._data)).astype(float).ravel()
        return out, "\n".join(log)
    finally:
        for cmd in ("remcirc", "destroy all"):
            try:
                ng.exec_command(cmd)
            except Exception:  # nothing to remove, or PySpice's NameError on a return code
                pass
