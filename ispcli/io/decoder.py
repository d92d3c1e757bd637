"""Raw decoding in a separate process, so that LibRaw cannot take the batch down with it.

LibRaw is C code fed with untrusted files: a damaged file can crash it (segfault, abort) or
send it into a loop. Each process that develops files keeps one long-lived decoder process
and sends it paths; a crash or a decode that runs past the time limit costs that one file
("decoder crashed (signal 11)", "decode timed out after 60 s"), the decoder is replaced, and
the batch goes on. The decoder imports numpy and rawpy only (never torch) and is started with
`spawn` (LibRaw's OpenMP deadlocks in forked children).
"""

from __future__ import annotations

import collections
import mmap
import multiprocessing
import os
import signal
import time
from multiprocessing import reduction
from typing import Callable

from ispcli.io.errors import RawReadError

DEFAULT_TIMEOUT = 120.0   # seconds; the largest real raws decode in a few

# A mosaic this big travels in shared memory: pickling 48 MB through the pipe costs both
# processes ~0.1 s of copying each, for every file.
SHARE_BYTES = 1 << 20


class _Shared:
    """Stands in for an array sent beside the reply as a memory file descriptor."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), str(dtype)


def _share(value):
    """(value, fd): `value.data` moved into an anonymous memory file when that is worth it."""
    data = getattr(value, "data", None)
    if not hasattr(os, "memfd_create") or getattr(data, "nbytes", 0) < SHARE_BYTES:
        return value, None
    import numpy as np

    try:
        fd = os.memfd_create("ispcli-raw", os.MFD_CLOEXEC)
    except OSError:
        return value, None                            # the pipe still works
    try:
        os.ftruncate(fd, data.nbytes)
        with mmap.mmap(fd, data.nbytes) as buf:
            dst = np.ndarray(data.shape, data.dtype, buffer=buf)
            np.copyto(dst, data)
            del dst
    except BaseException:
        os.close(fd)
        raise
    value.data = _Shared(data.shape, data.dtype)
    return value, fd


def _unshare(value, fd: int):
    import numpy as np

    try:
        spec = value.data
        size = int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        buf = mmap.mmap(fd, size, flags=flags)
    finally:
        os.close(fd)
    value.data = np.ndarray(spec.shape, spec.dtype, buffer=buf)   # the array keeps the mapping
    return value


def _read(path: str, **kwargs):
    from ispcli.io.raw import read_raw

    return read_raw(path, **kwargs)


def _serve(conn, func: Callable) -> None:
    """The decoder process: one path in, ("ok", RawImage, shared) or ("error", exception, False)
    out; when `shared`, the mosaic follows as a file descriptor (see `_share`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the parent decides when to stop
    while True:
        try:
            path, kwargs = conn.recv()
        except (EOFError, OSError):                   # the parent is gone
            return
        fd = None
        try:
            value, fd = _share(func(path, **kwargs))
            reply = ("ok", value, fd is not None)
        except RawReadError as exc:
            reply = ("error", exc, False)
        except Exception as exc:  # noqa: BLE001 - a bug in our reader is still one file's failure
            reply = ("error", RawReadError(path, f"cannot decode ({type(exc).__name__}: {exc})"), False)
        try:
            conn.send(reply)
            if fd is not None:
                reduction.send_handle(conn, fd, os.getppid())
        except OSError:                               # the parent stopped (Ctrl-C) while we decoded
            return
        finally:
            if fd is not None:
                os.close(fd)


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "unknown"
        return f"decoder crashed (signal {-exitcode}, {name})"
    return f"decoder process died (exit status {exitcode})"


class Decoder:
    """A decoder process that is started on first use and replaced after a crash or timeout.

    It can read ahead: given the files this process will read next (`expect`), it sends the
    next request as soon as a reply arrives, so decoding file N+1 overlaps whatever the caller
    does with file N (and the first file's decoding overlaps torch's import)."""

    def __init__(self, func: Callable = _read, timeout: float = DEFAULT_TIMEOUT):
        self.func, self.timeout = func, timeout
        self._proc = None
        self._conn = None
        self._pending: tuple[str, dict, float] | None = None   # (path, kwargs, sent at)
        self._upcoming: collections.deque = collections.deque()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self.func), daemon=True, name="ispcli-decoder")
        self._proc.start()
        child.close()
        self._conn = parent

    def _stop(self, kill: bool) -> int | None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        self._pending = None
        if conn is not None:
            conn.close()
        if proc is None:
            return None
        if kill and proc.is_alive():
            proc.kill()
        proc.join(5)
        return proc.exitcode

    def _send(self, path: str, kwargs: dict) -> None:
        if self._proc is None or not self._proc.is_alive():
            self._stop(kill=True)
            self._start()
        self._pending = (path, kwargs, time.monotonic())
        try:
            self._conn.send((path, kwargs))
        except (BrokenPipeError, OSError):
            pass                                         # the reply wait below sees the death

    def _collect(self, limit: float):
        """The reply to the request in flight, at most `limit` s after it was sent."""
        path, _, sent = self._pending
        try:
            ready = self._conn.poll(max(0.0, sent + limit - time.monotonic()))  # true when it dies too
        except (BrokenPipeError, OSError):
            ready = True
        if not ready:
            self._stop(kill=True)
            raise RawReadError(path, f"decode timed out after {limit:g} s (--timeout)")
        try:
            status, value, shared = self._conn.recv()
            if shared:
                value = _unshare(value, reduction.recv_handle(self._conn))
        except (EOFError, OSError):
            raise RawReadError(path, _death(self._stop(kill=False))) from None
        except BaseException:
            # interrupted (SIGTERM, Ctrl-C) in the middle of a reply: the pipe is out of step
            self._stop(kill=True)
            raise
        self._pending = None
        return status, value

    def expect(self, requests) -> None:
        """The (path, kwargs) this process will read next, in order; the first is sent now."""
        self._upcoming = collections.deque((str(p), dict(kw)) for p, kw in requests)
        if self._pending is None and self._upcoming:
            self._send(*self._upcoming.popleft())

    def then(self, path: str, kwargs: dict) -> None:
        """After the read about to be made, decode `path` ahead (a guess: a wrong one costs
        only its decoding). Unlike `expect`, nothing is sent now."""
        self._upcoming = collections.deque([(str(path), dict(kwargs))])

    def read(self, path: str, timeout: float | None = None, **kwargs):
        """`read_raw(path, **kwargs)` in the decoder process; every failure is a `RawReadError`."""
        limit = self.timeout if timeout is None else timeout
        path = str(path)
        if self._pending is not None and self._pending[:2] != (path, kwargs):
            # read ahead for a file the caller skipped: its reply is of no use
            try:
                self._collect(limit)
            except RawReadError:
                pass
            self._upcoming = collections.deque(r for r in self._upcoming if r != (path, kwargs))
        if self._pending is None:
            self._send(path, kwargs)
        try:
            status, value = self._collect(limit)
        finally:
            if self._upcoming and self._pending is None:
                self._send(*self._upcoming.popleft())
        if status == "ok":
            return value
        raise value

    def close(self) -> None:
        self._upcoming.clear()
        self._stop(kill=True)


_decoder: Decoder | None = None


def _shared() -> Decoder:
    global _decoder
    if _decoder is None:
        _decoder = Decoder()
    return _decoder


def prestart(timeout: float | None = None, upcoming=()) -> None:
    """Start this process's decoder ahead of its first file (it starts in the background);
    with `upcoming` ((path, kwargs) in the order they will be read), it starts decoding them."""
    d = _shared()
    if timeout is not None:
        d.timeout = timeout
    if d._proc is None:
        d._start()
    if upcoming:
        d.expect(upcoming)


def read_next(path, **kwargs) -> None:
    """After the next read, this process's decoder decodes `path` ahead (`Decoder.then`)."""
    _shared().then(path, kwargs)


def read_raw_isolated(path, *, timeout: float | None = None, **kwargs):
    """Decode through this process's decoder (started on first use)."""
    return _shared().read(str(path), timeout=timeout, **kwargs)


def shutdown() -> None:
    """Stop this process's decoder, if it has one (at exit)."""
    if _decoder is not None:
        _decoder.close()
