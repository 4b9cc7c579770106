"""wasi:filesystem 0.3.0 and 0.2.0: granted directories, capability-scoped.

One core (``_paths``: :class:`Node`, path resolution beneath a directory
descriptor, read-only grants) and two thin faces over it:

* **0.2** (``types@0.2.0``, ``preopens@0.2.0``): plain ``def`` methods
  returning ``result``\\ s; ``read-via-stream``, ``write-via-stream`` and
  ``append-via-stream`` hand out wasi:io streams built on the ``_io`` core
  (:class:`FileInputStream`, :class:`FileOutputStream`), whose failures carry
  an :class:`FsIoError` that ``filesystem-error-code`` reads; the directory
  listing is a ``directory-entry-stream`` resource.
* **0.3** (``types@0.3.0``, ``preopens@0.3.0``): ``async def`` methods on
  trio; ``read-via-stream`` returns a ``stream<u8>`` read from the file
  chunk by chunk as the guest asks for it, with a future that resolves at its
  end; ``write-via-stream``/``append-via-stream`` drain the guest's stream
  into the file in a task of the instance, then resolve their future;
  ``read-directory`` is a ``stream<directory-entry>`` and its future.

Each stream works on its own duplicate of the file descriptor, so it keeps
working (and never reaches a reused fd number) after the guest dropped the
descriptor. Every refusal is the interface's ``error-code``: ``Err(label)``
in 0.2 (an ``enum``), ``Err(Variant(label))`` in 0.3 (a ``variant``, where
an errno with no case of its own is ``other(message)``).

The preopens come from ``WasiConfig.preopens``; each call of
``get-directories`` opens them afresh, one descriptor each.
"""

from __future__ import annotations

import errno
import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from .._abi._values import Err, Ok, Variant
from ._config import WasiConfig
from ._io import (
    MAX_READ,
    WRITE_BUDGET,
    InputStream,
    IoError,
    OutputStream,
    StreamClosed,
    StreamFailed,
)
from ._paths import FsError, Node, descriptor_type, open_preopen
from ._state import WasiState

if TYPE_CHECKING:
    from .._hostdefs import HostContext
    from .._linker import Linker

__all__ = [
    "Descriptor02",
    "Descriptor03",
    "FileInputStream",
    "FileOutputStream",
    "FsIoError",
    "add_to_linker",
]

#: How much one 0.3 ``read-via-stream`` chunk holds (one hand-off to the guest's side).
READ_CHUNK = 1 << 20
#: The most one 0.2 ``read`` at an offset returns.
MAX_READ_AT = 1 << 24
# preadv flag: answer from the page cache or fail with EAGAIN (Linux 4.14+).
_RWF_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0)

# The 0.3 error-code cases (0.2 has these and ``would-block``).
_CODES_03 = frozenset(
    "access already bad-descriptor busy deadlock quota exist file-too-large "
    "illegal-byte-sequence in-progress interrupted invalid io is-directory loop "
    "too-many-links message-size name-too-long no-device no-entry no-lock "
    "insufficient-memory insufficient-space not-directory not-empty not-recoverable "
    "unsupported no-tty no-such-device overflow not-permitted pipe read-only "
    "invalid-seek text-file-busy cross-device".split()
)

F = TypeVar("F", bound=Callable[..., Any])


class FsIoError(IoError):
    """A wasi:io ``error`` raised by a file stream: ``filesystem-error-code`` knows it."""


def _stream_failure(exc: OSError) -> StreamFailed:
    return StreamFailed(FsIoError.from_os_error(exc, FsError.from_os(exc).code))


def _err02(exc: FsError) -> Err:
    return Err(exc.code)


def _err03(exc: FsError) -> Err:
    if exc.code in _CODES_03:
        return Err(Variant(exc.code))
    return Err(Variant("other", str(exc)))


def _p2(fn: F) -> F:
    """A 0.2 method: its value in ``Ok``, an :class:`FsError` as ``Err(label)``."""

    @functools.wraps(fn)
    def method(*args: Any) -> Any:
        try:
            return Ok(fn(*args))
        except FsError as exc:
            return _err02(exc)

    return method  # type: ignore[return-value]


def _p3(fn: F) -> F:
    """A 0.3 ``async`` method: its value in ``Ok``, an :class:`FsError` as ``Err(Variant)``."""

    @functools.wraps(fn)
    async def method(*args: Any) -> Any:
        try:
            return Ok(await fn(*args))
        except FsError as exc:
            return _err03(exc)

    return method  # type: ignore[return-value]


def _flags(path_flags: frozenset[str]) -> bool:
    return "symlink-follow" in path_flags


def _new_timestamp(value: Variant) -> Any:
    """A ``new-timestamp`` as ``_paths`` takes it: None, ``"now"`` or nanoseconds."""
    if value.case == "no-change":
        return None
    if value.case == "now":
        return "now"
    t = value.value
    return int(t["seconds"]) * 1_000_000_000 + int(t["nanoseconds"])


def _time(ns: int, *, signed: bool) -> dict[str, int] | None:
    if ns < 0 and not signed:
        return None  # 0.2's datetime cannot say it
    seconds, nanos = divmod(ns, 1_000_000_000)
    return {"seconds": seconds, "nanoseconds": nanos}


def _stat(st: os.stat_result, kind: Any, *, signed: bool) -> dict[str, Any]:
    return {
        "type": kind,
        "link-count": st.st_nlink,
        "size": st.st_size,
        "data-access-timestamp": _time(st.st_atime_ns, signed=signed),
        "data-modification-timestamp": _time(st.st_mtime_ns, signed=signed),
        "status-change-timestamp": _time(st.st_ctime_ns, signed=signed),
    }


def _type03(label: str) -> Variant:
    return Variant("other", None) if label == "unknown" else Variant(label)


def _hash_value(pair: tuple[int, int]) -> dict[str, int]:
    return {"lower": pair[0], "upper": pair[1]}


# ---------------------------------------------------------------------------
# 0.2 streams over the _io core


class FileInputStream(InputStream):
    """``input-stream`` reading a file from an offset (its own fd).

    Off the trio thread (a store thread) a read simply reads. On the trio
    thread (``blocking-read``, or ``read`` of an instance that runs inline) it
    answers from the page cache only; when the data must come from the disk,
    it returns no bytes, and waiting for readiness reads them on a worker
    thread, to be returned by the next read.
    """

    def __init__(self, fd: int, offset: int) -> None:
        self._reader = _FileReader(fd, offset)
        self._ahead: bytes | None = None  # read on a worker thread, not yet taken

    def _read_now(self, n: int) -> bytes:
        ahead = self._ahead
        try:
            if ahead is not None:
                data: bytes | bytearray | None = ahead[:n]
                self._ahead = ahead[n:] or None
            elif trio.lowlevel.in_trio_run():
                data = self._reader.read_nowait(n)
                if data is None:
                    return b""
            else:
                data = self._reader.read_blocking(n)
        except OSError as exc:
            raise _stream_failure(exc) from exc
        if n and not data:
            raise StreamClosed
        return bytes(data) if data is not None else b""

    def _readable_now(self) -> bool:
        return self._ahead is not None or not trio.lowlevel.in_trio_run()

    async def _wait_readable(self) -> None:
        if self._ahead is None:
            self._ahead = await trio.to_thread.run_sync(self._reader.read_blocking, MAX_READ)

    def close(self) -> None:
        self._reader.close()


class FileOutputStream(OutputStream):
    """``output-stream`` writing a file from an offset, or at its end (``offset=None``)."""

    def __init__(self, fd: int, offset: int | None) -> None:
        self._fd = fd
        self._pos = offset
        self._lock = threading.Lock()

    def _check_write_now(self) -> int:
        if self._fd < 0:
            raise StreamClosed
        return WRITE_BUDGET

    def _write_now(self, data: bytes) -> None:
        with self._lock:
            if self._fd < 0:
                raise StreamClosed
            try:
                self._pos = _write_all(self._fd, data, self._pos)
            except OSError as exc:
                raise _stream_failure(exc) from exc

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


# pwritev2's "append this write": the kernel finds the end and writes there
# in one step, so a writer elsewhere appending at the same time is never
# overwritten (reading the size first, then writing there, would).
_RWF_APPEND: int = getattr(os, "RWF_APPEND", 0)


def _write_all(fd: int, data: bytes | memoryview, pos: int | None) -> int | None:
    """Write all of ``data`` at ``pos`` (at the end when None); the position after it."""
    global _RWF_APPEND
    view = memoryview(data)
    while view:
        if pos is None and _RWF_APPEND:
            try:
                n = os.pwritev(fd, [view], 0, _RWF_APPEND)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                _RWF_APPEND = 0  # a kernel or file system without it
                continue
        else:
            at = os.fstat(fd).st_size if pos is None else pos
            n = os.pwrite(fd, view, at)
        view = view[n:]
        if pos is not None:
            pos += n
    return pos


class _FileReader:
    """Reads a file from a position, never making the trio thread wait for the disk.

    :meth:`read_nowait` answers from the page cache only (``preadv`` with
    ``RWF_NOWAIT``) and returns None when the data would have to come from
    the disk; :meth:`read_blocking` reads in any case (on a worker thread
    from trio, in place elsewhere). Where ``RWF_NOWAIT`` is missing or the
    file system refuses it, every read is a plain ``pread``. The lock keeps
    ``close`` from releasing the fd under a read in flight.
    """

    def __init__(self, fd: int, offset: int) -> None:
        self.fd = fd
        self.pos = offset
        self.lock = threading.Lock()
        self._nowait = _RWF_NOWAIT

    def read_nowait(self, n: int) -> bytes | bytearray | None:
        with self.lock:
            if self.fd < 0:
                return b""
            if self._nowait:
                buf = bytearray(n)
                try:
                    got = os.preadv(self.fd, [buf], self.pos, self._nowait)
                except BlockingIOError:
                    return None
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    self._nowait = 0
                else:
                    del buf[got:]
                    self.pos += got
                    return buf
            return self._pread(n)

    def read_blocking(self, n: int) -> bytes:
        with self.lock:
            if self.fd < 0:
                return b""
            return self._pread(n)

    def _pread(self, n: int) -> bytes:
        data = os.pread(self.fd, n, self.pos)
        self.pos += len(data)
        return data

    def close(self) -> None:
        with self.lock:
            fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


# ---------------------------------------------------------------------------
# 0.2 face


class DirectoryEntryStream:
    """``directory-entry-stream`` (0.2): the entries, listed when the stream was made."""

    def __init__(self, entries: list[tuple[str, str]]) -> None:
        self._entries = entries
        self._next = 0

    def read_directory_entry(self) -> Ok:
        if self._next >= len(self._entries):
            return Ok(None)
        name, kind = self._entries[self._next]
        self._next += 1
        return Ok({"type": kind, "name": name})


class Descriptor02:
    """``descriptor`` (wasi:filesystem 0.2): a file or directory the guest holds."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def close(self) -> None:
        self.node.close()

    @_p2
    def read_via_stream(self, offset: int) -> InputStream:
        node = self.node
        return FileInputStream(node.dup(node.readable_fd()), offset)

    @_p2
    def write_via_stream(self, offset: int) -> OutputStream:
        node = self.node
        return FileOutputStream(node.dup(node.writable_fd()), offset)

    @_p2
    def append_via_stream(self) -> OutputStream:
        node = self.node
        return FileOutputStream(node.dup(node.writable_fd()), None)

    @_p2
    def advise(self, offset: int, length: int, advice: str) -> None:
        self.node.advise(offset, length, advice)

    @_p2
    def sync_data(self) -> None:
        self.node.sync_data()

    @_p2
    def get_flags(self) -> frozenset[str]:
        return self.node.get_flags()

    @_p2
    def get_type(self) -> str:
        return self.node.get_type()

    @_p2
    def set_size(self, size: int) -> None:
        self.node.set_size(size)

    @_p2
    def set_times(
        self, data_access_timestamp: Variant, data_modification_timestamp: Variant
    ) -> None:
        self.node.set_times(
            _new_timestamp(data_access_timestamp), _new_timestamp(data_modification_timestamp)
        )

    @_p2
    def read(self, length: int, offset: int) -> tuple[bytes, bool]:
        want = min(length, MAX_READ_AT)
        data = self.node.read_at(want, offset) if want else b""
        return data, bool(want) and len(data) < want

    @_p2
    def write(self, buffer: bytes, offset: int) -> int:
        return self.node.write_at(bytes(buffer), offset)

    @_p2
    def read_directory(self) -> DirectoryEntryStream:
        return DirectoryEntryStream(self.node.list_directory())

    @_p2
    def sync(self) -> None:
        self.node.sync()

    @_p2
    def create_directory_at(self, path: str) -> None:
        self.node.create_directory_at(path)

    @_p2
    def stat(self) -> dict[str, Any]:
        st = self.node.stat()
        return _stat(st, self.node.get_type(), signed=False)

    @_p2
    def stat_at(self, path_flags: frozenset[str], path: str) -> dict[str, Any]:
        st = self.node.stat_at(_flags(path_flags), path)
        return _stat(st, descriptor_type(st.st_mode), signed=False)

    @_p2
    def set_times_at(
        self,
        path_flags: frozenset[str],
        path: str,
        data_access_timestamp: Variant,
        data_modification_timestamp: Variant,
    ) -> None:
        self.node.set_times_at(
            _flags(path_flags),
            path,
            _new_timestamp(data_access_timestamp),
            _new_timestamp(data_modification_timestamp),
        )

    @_p2
    def link_at(
        self,
        old_path_flags: frozenset[str],
        old_path: str,
        new_descriptor: Descriptor02,
        new_path: str,
    ) -> None:
        self.node.link_at(_flags(old_path_flags), old_path, new_descriptor.node, new_path)

    @_p2
    def open_at(
        self,
        path_flags: frozenset[str],
        path: str,
        open_flags: frozenset[str],
        flags: frozenset[str],
    ) -> Descriptor02:
        return Descriptor02(self.node.open_at(_flags(path_flags), path, open_flags, flags))

    @_p2
    def readlink_at(self, path: str) -> str:
        return self.node.readlink_at(path)

    @_p2
    def remove_directory_at(self, path: str) -> None:
        self.node.remove_directory_at(path)

    @_p2
    def rename_at(self, old_path: str, new_descriptor: Descriptor02, new_path: str) -> None:
        self.node.rename_at(old_path, new_descriptor.node, new_path)

    @_p2
    def symlink_at(self, old_path: str, new_path: str) -> None:
        self.node.symlink_at(old_path, new_path)

    @_p2
    def unlink_file_at(self, path: str) -> None:
        self.node.unlink_file_at(path)

    def is_same_object(self, other: Descriptor02) -> bool:
        return self.node.is_same_object(other.node)

    @_p2
    def metadata_hash(self) -> dict[str, int]:
        return _hash_value(self.node.metadata_hash())

    @_p2
    def metadata_hash_at(self, path_flags: frozenset[str], path: str) -> dict[str, int]:
        return _hash_value(self.node.metadata_hash_at(_flags(path_flags), path))


class Types02:
    """wasi:filesystem/types@0.2.0."""

    Descriptor = Descriptor02
    DirectoryEntryStream = DirectoryEntryStream

    @staticmethod
    def filesystem_error_code(err: IoError) -> str | None:
        return err.code if isinstance(err, FsIoError) else None


# ---------------------------------------------------------------------------
# 0.3 face


class _Resolved(trio.abc.ReceiveChannel[Any]):
    """A future's value known at once: the channel yields it once."""

    def __init__(self, value: Any) -> None:
        self._value = value
        self._given = False

    async def receive(self) -> Any:
        await trio.lowlevel.checkpoint()
        if self._given:
            raise trio.EndOfChannel
        self._given = True
        return self._value

    async def aclose(self) -> None:
        self._given = True
        await trio.lowlevel.checkpoint()


class _Items(trio.abc.ReceiveChannel[Any]):
    """A ``stream<T>`` of values known in advance."""

    def __init__(self, items: list[Any]) -> None:
        self._items = items
        self._next = 0

    async def receive(self) -> Any:
        await trio.lowlevel.checkpoint()
        if self._next >= len(self._items):
            raise trio.EndOfChannel
        self._next += 1
        return self._items[self._next - 1]

    async def aclose(self) -> None:
        self._next = len(self._items)
        await trio.lowlevel.checkpoint()


def _resolve(done: trio.MemorySendChannel[Any], value: Any) -> None:
    """Resolve a future once (on trio); a future the guest dropped is left alone."""
    try:
        done.send_nowait(value)
    except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    done.close()


class _FileChunks(trio.abc.ReceiveChannel[Any]):
    """A file from an offset as a ``stream<u8>``: one chunk per request, then the future.

    A chunk in the page cache is read in place; one that must come from the
    disk is read on a worker thread, so trio never waits for the disk.
    """

    def __init__(self, fd: int, offset: int, done: trio.MemorySendChannel[Any]) -> None:
        self._reader = _FileReader(fd, offset)
        self._done = done

    async def receive(self) -> bytes | bytearray:
        await trio.lowlevel.checkpoint()
        reader = self._reader
        try:
            data = reader.read_nowait(READ_CHUNK)
            if data is None:
                data = await trio.to_thread.run_sync(reader.read_blocking, READ_CHUNK)
        except OSError as exc:
            self._finish(_err03(FsError.from_os(exc)))
            raise trio.EndOfChannel from None
        if not data:
            self._finish(Ok())
            raise trio.EndOfChannel
        return data

    def _finish(self, value: Any) -> None:
        self._reader.close()
        _resolve(self._done, value)

    async def aclose(self) -> None:
        # The guest stopped reading early: nothing failed.
        self._finish(Ok())
        await trio.lowlevel.checkpoint()


async def _drain(
    node: Node,
    data: trio.abc.ReceiveChannel[Any],
    offset: int | None,
    done: trio.MemorySendChannel[Any],
) -> None:
    """Write the guest's ``stream<u8>`` into the file, then resolve the future."""
    result: Any = Ok()
    fd = -1
    try:
        fd = node.dup(node.writable_fd())
        async for chunk in data:
            offset = _write_all(fd, chunk, offset)
    except FsError as exc:
        result = _err03(exc)
    except OSError as exc:
        result = _err03(FsError.from_os(exc))
    finally:
        if fd >= 0:
            os.close(fd)
        with trio.CancelScope(shield=True):
            await data.aclose()
        _resolve(done, result)


class Descriptor03:
    """``descriptor`` (wasi:filesystem 0.3): a file or directory the guest holds."""

    def __init__(self, node: Node, context: HostContext) -> None:
        self.node = node
        self.context = context

    def close(self) -> None:
        self.node.close()

    def _child(self, node: Node) -> Descriptor03:
        return Descriptor03(node, self.context)

    def read_via_stream(self, offset: int) -> tuple[Any, Any]:
        send, receive = trio.open_memory_channel[Any](1)
        try:
            fd = self.node.dup(self.node.readable_fd())
        except FsError as exc:
            return _Items([]), _Resolved(_err03(exc))
        return _FileChunks(fd, offset, send), receive

    def _writer(self, data: Any, offset: int | None) -> Any:
        send, receive = trio.open_memory_channel[Any](1)
        self.context.start_soon(_drain, self.node, data, offset, send)
        return receive

    def write_via_stream(self, data: Any, offset: int) -> Any:
        return self._writer(data, offset)

    def append_via_stream(self, data: Any) -> Any:
        return self._writer(data, None)

    @_p3
    async def advise(self, offset: int, length: int, advice: str) -> None:
        self.node.advise(offset, length, advice)

    @_p3
    async def sync_data(self) -> None:
        await trio.to_thread.run_sync(self.node.sync_data)

    @_p3
    async def get_flags(self) -> frozenset[str]:
        return self.node.get_flags()

    @_p3
    async def get_type(self) -> Variant:
        return _type03(self.node.get_type())

    @_p3
    async def set_size(self, size: int) -> None:
        self.node.set_size(size)

    @_p3
    async def set_times(
        self, data_access_timestamp: Variant, data_modification_timestamp: Variant
    ) -> None:
        self.node.set_times(
            _new_timestamp(data_access_timestamp), _new_timestamp(data_modification_timestamp)
        )

    def read_directory(self) -> tuple[Any, Any]:
        try:
            entries = self.node.list_directory()
        except FsError as exc:
            return _Items([]), _Resolved(_err03(exc))
        items = [{"type": _type03(kind), "name": name} for name, kind in entries]
        return _Items(items), _Resolved(Ok())

    @_p3
    async def sync(self) -> None:
        await trio.to_thread.run_sync(self.node.sync)

    @_p3
    async def create_directory_at(self, path: str) -> None:
        self.node.create_directory_at(path)

    @_p3
    async def stat(self) -> dict[str, Any]:
        st = self.node.stat()
        return _stat(st, _type03(self.node.get_type()), signed=True)

    @_p3
    async def stat_at(self, path_flags: frozenset[str], path: str) -> dict[str, Any]:
        st = self.node.stat_at(_flags(path_flags), path)
        return _stat(st, _type03(descriptor_type(st.st_mode)), signed=True)

    @_p3
    async def set_times_at(
        self,
        path_flags: frozenset[str],
        path: str,
        data_access_timestamp: Variant,
        data_modification_timestamp: Variant,
    ) -> None:
        self.node.set_times_at(
            _flags(path_flags),
            path,
            _new_timestamp(data_access_timestamp),
            _new_timestamp(data_modification_timestamp),
        )

    @_p3
    async def link_at(
        self,
        old_path_flags: frozenset[str],
        old_path: str,
        new_descriptor: Descriptor03,
        new_path: str,
    ) -> None:
        self.node.link_at(_flags(old_path_flags), old_path, new_descriptor.node, new_path)

    @_p3
    async def open_at(
        self,
        path_flags: frozenset[str],
        path: str,
        open_flags: frozenset[str],
        flags: frozenset[str],
    ) -> Descriptor03:
        return self._child(self.node.open_at(_flags(path_flags), path, open_flags, flags))

    @_p3
    async def readlink_at(self, path: str) -> str:
        return self.node.readlink_at(path)

    @_p3
    async def remove_directory_at(self, path: str) -> None:
        self.node.remove_directory_at(path)

    @_p3
    async def rename_at(self, old_path: str, new_descriptor: Descriptor03, new_path: str) -> None:
        self.node.rename_at(old_path, new_descriptor.node, new_path)

    @_p3
    async def symlink_at(self, old_path: str, new_path: str) -> None:
        self.node.symlink_at(old_path, new_path)

    @_p3
    async def unlink_file_at(self, path: str) -> None:
        self.node.unlink_file_at(path)

    async def is_same_object(self, other: Descriptor03) -> bool:
        await trio.lowlevel.checkpoint()
        return self.node.is_same_object(other.node)

    @_p3
    async def metadata_hash(self) -> dict[str, int]:
        return _hash_value(self.node.metadata_hash())

    @_p3
    async def metadata_hash_at(self, path_flags: frozenset[str], path: str) -> dict[str, int]:
        return _hash_value(self.node.metadata_hash_at(_flags(path_flags), path))


class Types03:
    """wasi:filesystem/types@0.3.0."""

    Descriptor = Descriptor03


# ---------------------------------------------------------------------------
# Preopens


class _Preopens:
    def __init__(self, config: WasiConfig, context: HostContext) -> None:
        self.context = context
        self.preopens = WasiState.of(context, config).config.preopens

    def _nodes(self) -> list[tuple[Node, str]]:
        opened: list[tuple[Node, str]] = []
        try:
            for p in self.preopens:
                opened.append((open_preopen(p.host_path, p.read_only), p.guest_path))
        except OSError:
            for node, _ in opened:
                node.close()
            raise
        return opened


class Preopens02(_Preopens):
    def get_directories(self) -> list[tuple[Descriptor02, str]]:
        return [(Descriptor02(node), path) for node, path in self._nodes()]


class Preopens03(_Preopens):
    def get_directories(self) -> list[tuple[Descriptor03, str]]:
        return [(Descriptor03(node, self.context), path) for node, path in self._nodes()]


def check_preopens(config: WasiConfig) -> None:
    """Refuse a configuration whose granted directories are not directories."""
    for p in config.preopens:
        if not Path(p.host_path).is_dir():
            raise ValueError(f"preopen {p.guest_path!r}: {p.host_path} is not a directory")


def add_to_linker(linker: Linker, config: WasiConfig) -> None:
    """Define wasi:filesystem 0.3.0 and 0.2.0 over the directories ``config`` grants."""
    check_preopens(config)

    def per(cls: type) -> Any:
        return functools.partial(cls, config)

    linker.define_interface("wasi:filesystem/types@0.3.0", Types03)
    linker.define_interface("wasi:filesystem/preopens@0.3.0", factory=per(Preopens03))
    linker.define_interface("wasi:filesystem/types@0.2.0", Types02)
    linker.define_interface("wasi:filesystem/preopens@0.2.0", factory=per(Preopens02))
