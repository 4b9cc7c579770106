"""Per-instance WASI state, built once per component instance from a WasiConfig.

``WasiState.of(context, config)`` returns the instance's state, making it on
first use (it lives in the instance's :class:`HostContext`), so every WASI
interface of one instance shares it: the environment and arguments, the
stdio endpoints (one :class:`PumpedSource` for stdin however many streams the
guest opens over it, one writer per output), the preopens and network policy
(for wasi:filesystem and wasi:sockets), the random sources, a count of
waiting clock sleeps, and the exit status once the guest called
``wasi:cli/exit``.

Resource discipline: WASI resources are Python objects owned through the
guest's handle table; the runtime calls ``close()``/``aclose()`` when the
guest drops the last handle, and releases whatever is left when the instance
closes. A child (a stream of a file, a socket's streams) keeps a reference to
what it needs from its parent, so a parent dropped first never leaves a child
dangling. Per-instance objects that are not resources (listeners, pumps)
belong here and end with the instance's nursery.
"""

from __future__ import annotations

import errno
import functools
import os
import random as _random
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from ._config import INHERIT, WasiConfig
from ._io import PumpedOutputStream, PumpedSource, SyncOutputStream

if TYPE_CHECKING:
    from .._hostdefs import HostContext
    from ._io import OutputStream

__all__ = ["OutputSink", "WasiExit", "WasiState"]


class WasiExit(Exception):
    """The guest called ``wasi:cli/exit``; ``code`` is the process exit status."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the component exited with status {code}")
        self.code = code


class OutputSink:
    """Where one of stdout/stderr goes: a plain writer, or an async sender on trio."""

    def __init__(
        self,
        write: Callable[[bytes], Any] | None = None,
        send: Callable[[bytes], Awaitable[Any]] | None = None,
        is_terminal: bool = False,
    ) -> None:
        assert (write is None) != (send is None)
        self.write = write
        self.send = send
        self.is_terminal = is_terminal

    async def send_all(self, data: bytes) -> None:
        """Deliver ``data`` (on trio)."""
        if self.write is not None:
            self.write(data)
        else:
            assert self.send is not None
            await self.send(data)

    def stream(self, context: HostContext) -> OutputStream:
        """A new 0.2 output stream over this sink."""
        if self.write is not None:
            return SyncOutputStream(self.write)
        assert self.send is not None
        return PumpedOutputStream(context, self.send)


def _inherited_writer(fd: int, file: Any) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        # Python's own buffered writes to the same stream go first.
        try:
            file.flush()
        except (OSError, ValueError):
            pass
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    return write


def _closed_at_start(fd: int) -> bool:
    """Whether the process began without standard descriptor ``fd`` (as ``>&-`` starts it).

    Python then sets the matching ``sys.__stdin__``, ``__stdout__`` or
    ``__stderr__`` to None. The number may since have gone to any file the
    process opened (a compile-cache file, a socket), which must never take
    the guest's output or be read as its input.
    """
    return (sys.__stdin__, sys.__stdout__, sys.__stderr__)[fd] is None


def _closed_writer(data: bytes) -> None:
    # What writing to a closed descriptor gives: the guest sees an I/O error.
    raise OSError(errno.EBADF, "the process has no such output (it was started closed)")


def _sink(spec: Any, fd: int, file: Any) -> OutputSink:
    if spec is None:
        return OutputSink(write=lambda data: None)
    if spec == INHERIT and _closed_at_start(fd):
        return OutputSink(write=_closed_writer)
    if spec == INHERIT:
        try:
            tty = os.isatty(fd)
        except OSError:
            tty = False
        return OutputSink(write=_inherited_writer(fd, file), is_terminal=tty)
    if isinstance(spec, bytearray):
        lock = threading.Lock()

        def append(data: bytes) -> None:
            with lock:
                spec.extend(data)

        return OutputSink(write=append)
    if isinstance(spec, trio.abc.SendStream):
        return OutputSink(send=spec.send_all)
    if isinstance(spec, trio.abc.SendChannel):
        return OutputSink(send=spec.send)
    raise TypeError(f"unsupported stdout/stderr setting: {spec!r}")


def _stdin_reader(spec: Any) -> tuple[Callable[[int], Awaitable[bytes]], bool]:
    if spec is None or (spec == INHERIT and _closed_at_start(0)):
        # No stdin at all (a process started with it closed reads as empty).
        spec = b""
    if isinstance(spec, bytes | bytearray | memoryview):
        data = bytes(spec)
        pos = 0

        async def from_bytes(n: int) -> bytes:
            nonlocal pos
            await trio.lowlevel.checkpoint()
            chunk = data[pos : pos + n]
            pos += len(chunk)
            return chunk

        return from_bytes, False
    if spec == INHERIT:
        fd = 0  # the process's stdin, whatever sys.stdin is now

        async def from_fd(n: int) -> bytes:
            return await trio.to_thread.run_sync(os.read, fd, n, abandon_on_cancel=True)

        try:
            tty = os.isatty(fd)
        except OSError:
            tty = False
        return from_fd, tty
    if isinstance(spec, trio.abc.ReceiveStream):
        stream = spec

        async def from_stream(n: int) -> bytes:
            return bytes(await stream.receive_some(n))

        return from_stream, False
    if isinstance(spec, trio.abc.ReceiveChannel):

        async def from_channel(n: int) -> bytes:
            try:
                return bytes(await spec.receive())
            except trio.EndOfChannel:
                return b""

        return from_channel, False
    raise TypeError(f"unsupported stdin setting: {spec!r}")


class WasiState:
    """One component instance's WASI state (see the module docstring)."""

    KEY = "trio_wasi.wasi:state"

    def __init__(self, config: WasiConfig, context: HostContext) -> None:
        self.config = config
        self.context = context
        self.args = list(config.args)
        self.env = config.environment()
        reader, self.stdin_is_terminal = _stdin_reader(config.stdin)
        self.stdin = PumpedSource(context, reader)
        self.stdout = _sink(config.stdout, 1, sys.stdout)
        self.stderr = _sink(config.stderr, 2, sys.stderr)
        self.random_source: Callable[[int], bytes] = config.random_source or os.urandom
        self.insecure = _random.Random()
        self.insecure_seed = config.insecure_seed or (
            int.from_bytes(os.urandom(8), "little"),
            int.from_bytes(os.urandom(8), "little"),
        )
        self.exit_code: int | None = None
        # Clock sleeps waiting right now, and the most at once (wasi:clocks).
        self._lock = threading.Lock()
        self.clock_waiters = 0
        self.max_clock_waiters = 0

    @classmethod
    def of(cls, context: HostContext, config: WasiConfig) -> WasiState:
        """The state of ``context``'s instance, made from ``config`` on first use."""
        state: WasiState = context._object(cls.KEY, functools.partial(cls, config))
        return state

    def note_clock_wait(self, delta: int) -> None:
        with self._lock:
            self.clock_waiters += delta
            self.max_clock_waiters = max(self.max_clock_waiters, self.clock_waiters)
