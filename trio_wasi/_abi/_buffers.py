"""Buffers: the memory a stream or future copy reads from or writes into.

CanonicalABI.md "Buffer State". A *readable* buffer hands out values of its
element type ``t``, a *writable* buffer takes them; both count their
``progress`` and say how many values ``remain``. A buffer never holds more than
``MAX_LENGTH`` values.

Rules:

* a guest buffer is a range of linear memory given to ``stream.read``/
  ``stream.write``/``future.read``/``future.write``; it is checked once, when
  it is made (length, then alignment and bounds when it has an element type
  and is not empty), so reading and writing it later cannot go out of range;
* ``t is None`` (``stream``/``future`` without an element type) moves unit
  values ``()``; the pointer is ignored and no memory is touched;
* a host buffer holds Python values: for ``u8`` a bytes-like chunk, for other
  types a sequence of values (see :mod:`._values`).

Speed: values move from a readable to a writable buffer by
``dst.write_from(src, n)``. When both buffers are *byte-copyable* (element
type None or a fixed-size integer, whose memory representation is already its
canonical form), the elements move as bytes: guest to guest is one slice copy
between memories, host ``bytes`` to guest one copy in, guest to host one copy
out. Everything else goes through Python values with the type's memoised
loader and storer. Floats take the value path so that NaNs are canonicalised
as in every other lift.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, final

from ._layout import alignment, elem_size
from ._load import load_list_from_valid_range
from ._options import LiftLowerContext
from ._store import as_bytes, store_list_into_valid_range
from ._trap import trap
from ._types import (
    S8Type,
    S16Type,
    S32Type,
    S64Type,
    U8Type,
    U16Type,
    U32Type,
    U64Type,
    ValueType,
)

__all__ = [
    "Buffer",
    "GuestReadableBuffer",
    "GuestWritableBuffer",
    "HostReadableBuffer",
    "HostWritableBuffer",
    "ReadableBuffer",
    "WritableBuffer",
    "byte_copyable",
]

# Element types whose values are their little-endian bytes in memory, with
# their sizes; None is the unit type (no bytes).
_BYTE_SIZES: dict[type, int] = {
    U8Type: 1,
    S8Type: 1,
    U16Type: 2,
    S16Type: 2,
    U32Type: 4,
    S32Type: 4,
    U64Type: 8,
    S64Type: 8,
}


def byte_copyable(t: ValueType | None) -> bool:
    """Whether values of element type ``t`` can be copied as raw bytes."""
    return t is None or type(t) in _BYTE_SIZES


def _unit_values(n: int) -> list[Any]:
    return [()] * n


class Buffer:
    """A region values are copied from or into (the spec's ``Buffer``).

    ``byte_size`` is the size of one element in bytes when the buffer is
    byte-copyable (0 for the unit type), and -1 when it is not.
    """

    __slots__ = ("byte_size", "progress", "t")

    MAX_LENGTH = 2**28 - 1

    def __init__(self, t: ValueType | None, byte_size: int) -> None:
        self.t = t
        self.progress = 0
        self.byte_size = byte_size

    def remain(self) -> int:
        """How many values may still be read or written."""
        raise NotImplementedError

    def is_zero_length(self) -> bool:
        """Whether the buffer was made empty (zero-length reads and writes are special)."""
        raise NotImplementedError


class ReadableBuffer(Buffer):
    """A buffer values are read *from* (the source of a write)."""

    __slots__ = ()

    def read(self, n: int) -> Sequence[Any]:
        """Take the next ``n`` values (``0 < n <= remain()``)."""
        raise NotImplementedError

    def read_bytes(self, n: int) -> bytes | bytearray | memoryview:
        """Take the next ``n`` values as their bytes (only when ``byte_size >= 0``).

        The result may be a view of the underlying memory: use it before any
        wasm runs.
        """
        raise NotImplementedError


class WritableBuffer(Buffer):
    """A buffer values are written *into* (the destination of a read)."""

    __slots__ = ()

    def write(self, vs: Sequence[Any]) -> None:
        """Append the values ``vs`` (``len(vs) <= remain()``)."""
        raise NotImplementedError

    def write_bytes(self, data: bytes | bytearray | memoryview, n: int) -> None:
        """Append ``n`` values given as their bytes (only when ``byte_size >= 0``)."""
        raise NotImplementedError

    def write_from(self, src: ReadableBuffer, n: int) -> None:
        """Move ``n`` values from ``src`` into this buffer (both of the same element type).

        Byte-copyable buffers move bytes; others move Python values.
        """
        if self.byte_size >= 0 and src.byte_size >= 0:
            assert self.byte_size == src.byte_size
            self.write_bytes(src.read_bytes(n), n)
        else:
            self.write(src.read(n))


# ---------------------------------------------------------------------------
# Guest buffers (the spec's BufferGuestImpl)


@functools.lru_cache(maxsize=1024)
def _guest_layout(t: ValueType) -> tuple[int, int, int]:
    """(element size, alignment mask, byte size or -1) of a guest buffer of ``t``."""
    size = elem_size(t)
    return size, alignment(t) - 1, size if byte_copyable(t) else -1


class _GuestBuffer(Buffer):
    __slots__ = ("cx", "length", "ptr", "size")

    def __init__(self, t: ValueType | None, cx: LiftLowerContext, ptr: int, length: int) -> None:
        if length > Buffer.MAX_LENGTH:
            trap("buffer length exceeds the maximum of 2^28-1 elements")
        if t is None:
            size, mask, byte_size = 0, 0, 0
        else:
            size, mask, byte_size = _guest_layout(t)
            if length > 0:
                if ptr & mask:
                    trap("unaligned pointer")
                if ptr + length * size > len(cx.memory_view()):
                    trap("buffer out-of-bounds of memory")
        self.t = t
        self.progress = 0
        self.byte_size = byte_size
        self.cx = cx
        self.ptr = ptr
        self.length = length
        self.size = size

    def remain(self) -> int:
        return self.length - self.progress

    def is_zero_length(self) -> bool:
        return self.length == 0

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.t!r} ptr={self.ptr} "
            f"progress={self.progress}/{self.length}>"
        )


@final
class GuestReadableBuffer(_GuestBuffer, ReadableBuffer):
    """Guest memory a ``stream.write``/``future.write`` copies from (``ReadableBufferGuestImpl``).

    Traps when made if ``length`` exceeds ``MAX_LENGTH`` or, for a typed,
    non-empty buffer, if ``ptr`` is misaligned or the range leaves memory.
    """

    __slots__ = ()

    def read(self, n: int) -> Sequence[Any]:
        assert 0 <= n <= self.length - self.progress
        t = self.t
        if t is None:
            vs: Sequence[Any] = _unit_values(n)
        else:
            vs = load_list_from_valid_range(self.cx, self.cx.memory_view(), self.ptr, n, t)
            self.ptr += n * self.size
        self.progress += n
        return vs

    def read_bytes(self, n: int) -> bytes | bytearray | memoryview:
        assert 0 <= n <= self.length - self.progress and self.byte_size >= 0
        nbytes = n * self.size
        self.progress += n
        if nbytes == 0:
            return b""
        ptr = self.ptr
        self.ptr = ptr + nbytes
        return self.cx.memory_view()[ptr : ptr + nbytes]


@final
class GuestWritableBuffer(_GuestBuffer, WritableBuffer):
    """Guest memory a ``stream.read``/``future.read`` copies into (``WritableBufferGuestImpl``).

    Same creation traps as :class:`GuestReadableBuffer`.
    """

    __slots__ = ()

    def write(self, vs: Sequence[Any]) -> None:
        n = len(vs)
        assert n <= self.length - self.progress
        t = self.t
        if t is not None and n:
            store_list_into_valid_range(self.cx, self.cx.memory_view(), vs, self.ptr, t)
            self.ptr += n * self.size
        self.progress += n

    def write_bytes(self, data: bytes | bytearray | memoryview, n: int) -> None:
        assert n <= self.length - self.progress and self.byte_size >= 0
        nbytes = n * self.size
        assert len(data) == nbytes
        if nbytes:
            ptr = self.ptr
            # memoryview slice assignment has memmove semantics, so source and
            # destination may overlap in the same memory.
            self.cx.memory_view()[ptr : ptr + nbytes] = data
            self.ptr = ptr + nbytes
        self.progress += n

    def write_from(self, src: ReadableBuffer, n: int) -> None:
        if self.byte_size < 0 or src.byte_size < 0:
            # Strings that come from another component are transcoded from its
            # encoding (the spec's realloc sequence); host strings are not.
            self.cx.source_encoding = (
                src.cx.options.string_encoding if isinstance(src, GuestReadableBuffer) else None
            )
        super().write_from(src, n)


# ---------------------------------------------------------------------------
# Host buffers


@final
class HostReadableBuffer(ReadableBuffer):
    """Values the host offers to a reader.

    ``items`` is a bytes-like chunk for ``u8`` (copied into guest memory with
    one slice copy), any sequence of values otherwise (its length counts for
    the unit type).
    """

    __slots__ = ("_items", "_view")

    def __init__(self, t: ValueType | None, items: Any) -> None:
        if type(t) is U8Type:
            if not isinstance(items, bytes | bytearray | memoryview):
                items = as_bytes(items)
            view = memoryview(items).cast("B")
            super().__init__(t, 1)
            self._view: memoryview | None = view
            self._items: Sequence[Any] = view
        else:
            if not isinstance(items, Sequence):
                items = list(items)
            super().__init__(t, 0 if t is None else -1)
            self._view = None
            self._items = items

    def remain(self) -> int:
        return len(self._items) - self.progress

    def is_zero_length(self) -> bool:
        return len(self._items) == 0

    def read(self, n: int) -> Sequence[Any]:
        assert 0 <= n <= len(self._items) - self.progress
        start = self.progress
        self.progress = start + n
        if self._view is not None:
            return bytes(self._view[start : start + n])
        if self.t is None:
            return _unit_values(n)
        return self._items[start : start + n]

    def read_bytes(self, n: int) -> bytes | bytearray | memoryview:
        assert 0 <= n <= len(self._items) - self.progress and self.byte_size >= 0
        start = self.progress
        self.progress = start + n
        if self._view is None:
            return b""
        return self._view[start : start + n]

    def unread(self) -> Sequence[Any]:
        """The values not yet read (a memoryview for ``u8``)."""
        return self._items[self.progress :]

    def __repr__(self) -> str:
        return f"<HostReadableBuffer {self.t!r} progress={self.progress}/{len(self._items)}>"


@final
class HostWritableBuffer(WritableBuffer):
    """Room for up to ``capacity`` values the host receives from a writer.

    :meth:`values` returns what was written: ``bytes`` for ``u8`` (a single
    write is one copy out of guest memory), a list otherwise.
    """

    __slots__ = ("_chunks", "_values", "capacity")

    def __init__(self, t: ValueType | None, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"negative capacity {capacity}")
        if type(t) is U8Type:
            byte_size = 1
        else:
            byte_size = 0 if t is None else -1
        # (Buffer.__init__, inline: one of these is made per host read.)
        self.t = t
        self.progress = 0
        self.byte_size = byte_size
        self.capacity = capacity
        self._chunks: list[bytes] = []
        self._values: list[Any] = []

    def remain(self) -> int:
        return self.capacity - self.progress

    def is_zero_length(self) -> bool:
        return self.capacity == 0

    def write(self, vs: Sequence[Any]) -> None:
        n = len(vs)
        assert n <= self.capacity - self.progress
        if self.byte_size == 1:
            self._chunks.append(as_bytes(vs))
        elif self.t is not None:
            self._values.extend(vs)
        self.progress += n

    def write_bytes(self, data: bytes | bytearray | memoryview, n: int) -> None:
        assert n <= self.capacity - self.progress and self.byte_size >= 0
        if self.byte_size == 1 and n:
            self._chunks.append(bytes(data))
        self.progress += n

    def values(self) -> Any:
        """Everything written so far: ``bytes`` for ``u8``, a list otherwise."""
        if self.byte_size == 1:
            chunks = self._chunks
            if len(chunks) == 1:
                return chunks[0]
            return b"".join(chunks)
        if self.t is None:
            return _unit_values(self.progress)
        return list(self._values)

    def __repr__(self) -> str:
        return f"<HostWritableBuffer {self.t!r} progress={self.progress}/{self.capacity}>"
