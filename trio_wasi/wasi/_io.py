"""wasi:io 0.2 (error, poll, streams): the pollable and byte-stream core.

Every 0.2 interface that hands out a pollable or a stream (stdio, clocks,
filesystem, sockets) reuses the three resource classes here, so one ``poll``
waits on all of them.

Pollables. A :class:`Pollable` wraps a :class:`Readiness`: ``ready()``, a
non-blocking check safe on any thread, and ``async wait()``, run on trio,
which returns once ``ready()`` is true. ``poll`` (``async def``) returns at
once when something is ready and otherwise races the waits of every pollable
on trio, so a guest blocked in ``poll`` parks its own store thread only.
Make a new kind of readiness by subclassing :class:`Readiness`, or with
:class:`FnReadiness` from two callables.

Streams. :class:`InputStream` and :class:`OutputStream` implement every
method of the WIT resources on top of a few primitives a subclass provides;
filesystem and socket streams subclass them:

* input: ``_read_now(n) -> bytes`` (what is available now, ``b""`` when
  nothing is; raises :class:`StreamClosed` at the end and :class:`StreamFailed`
  on an error; thread-safe and non-blocking) and ``async _wait_readable()``
  (returns once ``_read_now`` would return data or raise);
* output: ``_check_write_now() -> int`` (bytes accepted now), ``_write_now(data)``,
  ``_flush_now()`` (start flushing), ``_flushed() -> bool`` and
  ``async _wait_writable()``/``async _wait_flushed()``, with the same
  rules. ``_check_write_now`` and ``_write_now`` raise :class:`StreamClosed` or
  :class:`StreamFailed` as above.

Errors. A failed operation raises :class:`StreamFailed` carrying an
:class:`IoError` (the ``wasi:io/error.error`` resource), which becomes
``stream-error.last-operation-failed(error)``; the guest asks the package's
``*-error-code`` function (filesystem, sockets) for a code, which reads
``IoError.code``. A host exception never escapes to the guest as a trap for
an I/O failure.

Ready-made streams: :class:`BytesInputStream` (fixed bytes),
:class:`PumpedInputStream` over a shared :class:`PumpedSource` (an async
``receive_some`` read ahead on trio: stdin, sockets), :class:`SyncOutputStream`
over a plain ``write(bytes)`` callable (inherited stdout) and
:class:`PumpedOutputStream` over an async ``send(bytes)`` (trio streams).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from .._abi._values import Err, Ok, Variant

if TYPE_CHECKING:
    from .._hostdefs import HostContext

__all__ = [
    "BytesInputStream",
    "FnReadiness",
    "InputStream",
    "IoError",
    "OutputStream",
    "Pollable",
    "PumpedInputStream",
    "PumpedOutputStream",
    "PumpedSource",
    "Readiness",
    "StreamClosed",
    "StreamFailed",
    "SyncOutputStream",
    "add_to_linker",
]

# How much one read returns at most, and how much an output buffers.
MAX_READ = 1 << 20
WRITE_BUDGET = 1 << 20


class IoError:
    """``wasi:io/error.error``: what went wrong, and the package's error code for it.

    ``code`` is the error-code case name the failing package defines (for
    example ``"access"`` for wasi:filesystem); ``filesystem-error-code`` and
    friends return it.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        self.message = message
        self.code = code

    @classmethod
    def from_os_error(cls, exc: OSError, code: str | None = None) -> IoError:
        return cls(exc.strerror or str(exc), code)

    def to_debug_string(self) -> str:
        return self.message


class StreamClosed(Exception):
    """The stream ended (input) or its reader went away (output)."""


class StreamFailed(Exception):
    """The last operation failed; ``error`` is what the guest receives."""

    def __init__(self, error: IoError) -> None:
        super().__init__(error.message)
        self.error = error


def _stream_error(exc: Exception) -> Err:
    if isinstance(exc, StreamClosed):
        return Err(Variant("closed"))
    assert isinstance(exc, StreamFailed)
    return Err(Variant("last-operation-failed", exc.error))


# ---------------------------------------------------------------------------
# Pollables


class Readiness:
    """Something a pollable waits for. Subclasses override both methods."""

    def ready(self) -> bool:
        """Whether it is ready now (any thread, never blocks)."""
        raise NotImplementedError

    async def wait(self) -> None:
        """Return once :meth:`ready` is true (on trio)."""
        raise NotImplementedError


class FnReadiness(Readiness):
    """Readiness from a ``ready()`` check and an ``async wait()``."""

    def __init__(self, ready: Callable[[], bool], wait: Callable[[], Awaitable[None]]) -> None:
        self._ready = ready
        self._wait = wait

    def ready(self) -> bool:
        return self._ready()

    async def wait(self) -> None:
        await self._wait()


class AlwaysReady(Readiness):
    def ready(self) -> bool:
        return True

    async def wait(self) -> None:
        await trio.lowlevel.checkpoint()


class ClockReadiness(Readiness):
    """Ready once ``time.monotonic_ns()`` reaches ``when`` (nanoseconds)."""

    def __init__(self, when_ns: int, on_wait: Callable[[int], None] | None = None) -> None:
        self.when_ns = when_ns
        self._on_wait = on_wait

    def ready(self) -> bool:
        return time.monotonic_ns() >= self.when_ns

    async def wait(self) -> None:
        # trio's clock is not time.monotonic_ns: sleep the remaining span.
        if self._on_wait is not None:
            self._on_wait(+1)
        try:
            while (left := self.when_ns - time.monotonic_ns()) > 0:
                await trio.sleep(left / 1e9)
        finally:
            if self._on_wait is not None:
                self._on_wait(-1)


class Pollable:
    """``wasi:io/poll.pollable``."""

    def __init__(self, readiness: Readiness) -> None:
        self.readiness = readiness

    def ready(self) -> bool:
        return self.readiness.ready()

    async def block(self) -> None:
        await self.readiness.wait()


async def poll(pollables: list[Pollable]) -> list[int]:
    """``wasi:io/poll.poll``: the indices of the ready pollables, waiting for one."""
    if not pollables:
        raise ValueError("poll needs at least one pollable")
    while True:
        ready = [i for i, p in enumerate(pollables) if p.ready()]
        if ready:
            return ready
        async with trio.open_nursery() as nursery:

            async def one(p: Pollable) -> None:
                await p.block()
                nursery.cancel_scope.cancel()

            for p in pollables:
                nursery.start_soon(one, p)


# ---------------------------------------------------------------------------
# Input streams


class InputStream:
    """``wasi:io/streams.input-stream``; subclasses provide the primitives."""

    def _read_now(self, n: int) -> bytes:
        raise NotImplementedError

    def _readable_now(self) -> bool:
        raise NotImplementedError

    async def _wait_readable(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """The guest dropped the stream."""

    # -- WIT methods -------------------------------------------------------

    def read(self, length: int) -> Ok | Err:
        try:
            return Ok(self._read_now(min(length, MAX_READ)) if length else b"")
        except (StreamClosed, StreamFailed) as exc:
            return _stream_error(exc)

    async def blocking_read(self, length: int) -> Ok | Err:
        n = min(length, MAX_READ)
        try:
            while True:
                data = self._read_now(n)
                if data or not n:
                    return Ok(data)
                await self._wait_readable()
        except (StreamClosed, StreamFailed) as exc:
            return _stream_error(exc)

    def skip(self, length: int) -> Ok | Err:
        result = self.read(length)
        return Ok(len(result.value)) if isinstance(result, Ok) else result

    async def blocking_skip(self, length: int) -> Ok | Err:
        result = await self.blocking_read(length)
        return Ok(len(result.value)) if isinstance(result, Ok) else result

    def subscribe(self) -> Pollable:
        return Pollable(FnReadiness(self._readable_now, self._wait_readable))


class BytesInputStream(InputStream):
    """A stream of fixed bytes (``b""``: empty)."""

    def __init__(self, data: bytes = b"") -> None:
        self._data = memoryview(bytes(data))
        self._pos = 0
        self._lock = threading.Lock()

    def _read_now(self, n: int) -> bytes:
        with self._lock:
            if self._pos >= len(self._data):
                raise StreamClosed
            chunk = bytes(self._data[self._pos : self._pos + n])
            self._pos += len(chunk)
            return chunk

    def _readable_now(self) -> bool:
        return True

    async def _wait_readable(self) -> None:
        await trio.lowlevel.checkpoint()


class PumpedSource:
    """Bytes read ahead on trio from ``receive_some(max) -> bytes`` (``b""``: the end).

    Shared by every stream over the same source (each ``get-stdin`` makes a
    new stream over one stdin). Reading never blocks: the buffer is filled by
    a trio task started (through ``context.start_soon``) when it runs low.
    """

    HIGH_WATER = 1 << 16

    def __init__(
        self, context: HostContext, receive_some: Callable[[int], Awaitable[bytes]]
    ) -> None:
        self._context = context
        self._receive_some = receive_some
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._eof = False
        self._error: IoError | None = None
        self._pumping = False
        self._changed: trio.Event | None = None  # touched on trio only

    def read_now(self, n: int) -> bytes:
        with self._lock:
            if self._buffer:
                chunk = bytes(self._buffer[:n])
                del self._buffer[:n]
            elif self._error is not None:
                raise StreamFailed(self._error)
            elif self._eof:
                raise StreamClosed
            else:
                chunk = b""
            start = not self._pumping and not self._eof and len(self._buffer) < self.HIGH_WATER
            if start:
                self._pumping = True
        if start:
            self._context.start_soon(self._pump)
        return chunk

    def readable_now(self) -> bool:
        with self._lock:
            return bool(self._buffer) or self._eof or self._error is not None

    async def wait_readable(self) -> None:
        while True:
            with self._lock:
                if self._buffer or self._eof or self._error is not None:
                    return
                start = not self._pumping
                self._pumping = True
            if start:
                self._context.start_soon(self._pump)
            if self._changed is None:
                self._changed = trio.Event()
            await self._changed.wait()

    async def receive(self, n: int) -> bytes:
        """Wait for and take up to ``n`` bytes; ``b""`` at the end (0.3 streams)."""
        while True:
            try:
                data = self.read_now(n)
            except StreamClosed:
                return b""
            if data:
                return data
            await self.wait_readable()

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def _pump(self) -> None:
        try:
            while True:
                try:
                    chunk = await self._receive_some(self.HIGH_WATER)
                except OSError as exc:
                    with self._lock:
                        self._error = IoError.from_os_error(exc, "io")
                    return
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    chunk = b""
                with self._lock:
                    if not chunk:
                        self._eof = True
                        return
                    self._buffer += chunk
                    if len(self._buffer) >= self.HIGH_WATER:
                        return
                self._wake()
        finally:
            with self._lock:
                self._pumping = False
            self._wake()


class PumpedInputStream(InputStream):
    """An input stream over a shared :class:`PumpedSource`."""

    def __init__(self, source: PumpedSource) -> None:
        self.source = source

    def _read_now(self, n: int) -> bytes:
        return self.source.read_now(n)

    def _readable_now(self) -> bool:
        return self.source.readable_now()

    async def _wait_readable(self) -> None:
        await self.source.wait_readable()


# ---------------------------------------------------------------------------
# Output streams


class OutputStream:
    """``wasi:io/streams.output-stream``; subclasses provide the primitives."""

    def _check_write_now(self) -> int:
        raise NotImplementedError

    def _write_now(self, data: bytes) -> None:
        raise NotImplementedError

    def _flush_now(self) -> None:
        pass

    def _flushed(self) -> bool:
        return True

    async def _wait_writable(self) -> None:
        await trio.lowlevel.checkpoint()

    async def _wait_flushed(self) -> None:
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """The guest dropped the stream."""

    # -- WIT methods -------------------------------------------------------

    def check_write(self) -> Ok | Err:
        try:
            return Ok(self._check_write_now())
        except (StreamClosed, StreamFailed) as exc:
            return _stream_error(exc)

    def write(self, contents: bytes) -> Ok | Err:
        try:
            self._write_now(bytes(contents))
            return Ok()
        except (StreamClosed, StreamFailed) as exc:
            return _stream_error(exc)

    async def blocking_write_and_flush(self, contents: bytes) -> Ok | Err:
        data = memoryview(bytes(contents))
        try:
            while data:
                budget = self._check_write_now()
                if budget == 0:
                    await self._wait_writable()
                    continue
                self._write_now(bytes(data[:budget]))
                data = data[budget:]
            self._flush_now()
            await self._wait_flushed()
            self._check_write_now()  # surfaces a failure of the flush
            return Ok()
        except (StreamClosed, StreamFailed) as exc:
            return _stream_error(exc)

    def flush(self) -> Ok | Err:
        try:
            self._flush_now()
            return Ok()
        except (StreamClosed, StreamFailed) as exc:
            return _stream_error(exc)

    async def blocking_flush(self) -> Ok | Err:
        try:
            self._flush_now()
            await self._wait_flushed()
            self._check_write_now()
            return Ok()
        except (StreamClosed, StreamFailed) as exc:
            return _stream_error(exc)

    def subscribe(self) -> Pollable:
        def ready() -> bool:
            try:
                return self._check_write_now() > 0
            except (StreamClosed, StreamFailed):
                return True

        return Pollable(FnReadiness(ready, self._wait_writable))

    def write_zeroes(self, length: int) -> Ok | Err:
        return self.write(bytes(length))

    async def blocking_write_zeroes_and_flush(self, length: int) -> Ok | Err:
        return await self.blocking_write_and_flush(bytes(length))

    def splice(self, src: InputStream, length: int) -> Ok | Err:
        try:
            budget = min(length, self._check_write_now())
            data = src._read_now(budget) if budget else b""
            if data:
                self._write_now(data)
            return Ok(len(data))
        except (StreamClosed, StreamFailed) as exc:
            return _stream_error(exc)

    async def blocking_splice(self, src: InputStream, length: int) -> Ok | Err:
        result = await src.blocking_read(length)
        if isinstance(result, Err):
            return result
        written = await self.blocking_write_and_flush(result.value)
        return Ok(len(result.value)) if isinstance(written, Ok) else written


class SyncOutputStream(OutputStream):
    """Writes go straight to ``write(bytes)`` (a file, the inherited stdout, a bytearray)."""

    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self._write = write

    def _check_write_now(self) -> int:
        return WRITE_BUDGET

    def _write_now(self, data: bytes) -> None:
        try:
            self._write(data)
        except BrokenPipeError as exc:
            raise StreamClosed from exc
        except OSError as exc:
            raise StreamFailed(IoError.from_os_error(exc, "io")) from exc


class PumpedOutputStream(OutputStream):
    """Writes are buffered and sent on trio by ``send(bytes)`` (a trio stream or channel)."""

    def __init__(self, context: HostContext, send: Callable[[bytes], Awaitable[None]]) -> None:
        self._context = context
        self._send = send
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._pumping = False
        self._closed = False  # the destination is gone
        self._ended = False  # no more writes taken (what was taken still goes out)
        self._then: Callable[[], None] | None = None
        self._error: IoError | None = None
        self._changed: trio.Event | None = None  # touched on trio only

    def _check_write_now(self) -> int:
        with self._lock:
            if self._error is not None:
                raise StreamFailed(self._error)
            if self._closed or self._ended:
                raise StreamClosed
            return max(0, WRITE_BUDGET - len(self._buffer))

    def _write_now(self, data: bytes) -> None:
        with self._lock:
            if self._error is not None:
                raise StreamFailed(self._error)
            if self._closed or self._ended:
                raise StreamClosed
            self._buffer += data
            start = not self._pumping
            self._pumping = True
        if start:
            self._context.start_soon(self._pump)

    def _flushed(self) -> bool:
        with self._lock:
            return not self._buffer and not self._pumping

    async def _wait_writable(self) -> None:
        await self._wait(lambda: len(self._buffer) < WRITE_BUDGET)

    async def _wait_flushed(self) -> None:
        await self._wait(lambda: not self._buffer and not self._pumping)

    def _end_after_flush(self, then: Callable[[], None]) -> None:
        """Take no more writes; call ``then`` once everything taken has been sent.

        ``then`` runs at once when nothing is pending, else on trio after the
        last send (or its failure). wasi:io lets ``write`` return before the
        bytes go out, so whatever ends the destination (a socket's
        ``shutdown``, closing it) waits here rather than drop them.
        """
        with self._lock:
            self._ended = True
            pending = bool(self._buffer) or self._pumping
            if pending:
                self._then = then
        if not pending:
            then()

    async def _wait(self, done: Callable[[], bool]) -> None:
        while True:
            with self._lock:
                if done() or self._closed or self._error is not None:
                    return
            if self._changed is None:
                self._changed = trio.Event()
            await self._changed.wait()

    async def _pump(self) -> None:
        try:
            while True:
                with self._lock:
                    drained = not self._buffer
                    if drained:
                        self._pumping = False
                        then, self._then = self._then, None
                    else:
                        chunk = bytes(self._buffer)
                        self._buffer.clear()
                if drained:
                    if then is not None:
                        then()
                    return
                try:
                    # Accepted by write(): delivered even if the instance closes.
                    with trio.CancelScope(shield=True):
                        await self._send(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError, BrokenPipeError):
                    with self._lock:
                        self._closed = True
                        self._pumping = False
                        then, self._then = self._then, None
                    if then is not None:
                        then()
                    return
                except OSError as exc:
                    with self._lock:
                        self._error = IoError.from_os_error(exc, "io")
                        self._pumping = False
                        then, self._then = self._then, None
                    if then is not None:
                        then()
                    return
                if self._changed is not None:
                    self._changed.set()
                    self._changed = None
        finally:
            if self._changed is not None:
                self._changed.set()
                self._changed = None


# ---------------------------------------------------------------------------
# Registration


class ErrorInterface:
    """wasi:io/error@0.2.0."""

    Error = IoError


class PollInterface:
    """wasi:io/poll@0.2.0."""

    Pollable = Pollable
    poll = staticmethod(poll)


class StreamsInterface:
    """wasi:io/streams@0.2.0."""

    InputStream = InputStream
    OutputStream = OutputStream


def add_to_linker(linker: Any, config: Any) -> None:
    """Define wasi:io 0.2 (error, poll, streams); they need no per-instance state."""
    linker.define_interface("wasi:io/error@0.2.0", ErrorInterface)
    linker.define_interface("wasi:io/poll@0.2.0", PollInterface)
    linker.define_interface("wasi:io/streams@0.2.0", StreamsInterface)
