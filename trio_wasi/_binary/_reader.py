"""A bounds-checked cursor over the bytes of a WebAssembly binary.

Every read either returns a value or raises :class:`DecodeError` carrying the
absolute offset at which the problem lies, so nothing else (``IndexError``,
``UnicodeDecodeError``, ``MemoryError``) can escape a decoder built on it.

Offsets are absolute: a reader for a sub-section shares the buffer of its parent
and only narrows the ``[pos, end)`` window, so an error deep inside a nested
component still points into the outermost file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from trio_wasi._errors import DecodeError

__all__ = ["Reader"]

T = TypeVar("T")

EOF: Final = "unexpected end-of-file"


class Reader:
    """A cursor over ``data[pos:end]`` (Core spec, Binary Format: Values).

    ``data`` is the whole outermost binary; positions are indices into it.
    """

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    # -- position -----------------------------------------------------------

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def at_end(self) -> bool:
        return self.pos >= self.end

    def error(self, message: str, offset: int | None = None) -> DecodeError:
        """A DecodeError at ``offset`` (default: the current position)."""
        return DecodeError(message, self.pos if offset is None else offset)

    def invalid_byte(self, byte: int, production: str, offset: int) -> DecodeError:
        """The error for an opcode that no alternative of ``production`` starts with."""
        return DecodeError(f"invalid leading byte (0x{byte:x}) for {production}", offset)

    # -- bytes --------------------------------------------------------------

    def u8(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise DecodeError(EOF, pos)
        self.pos = pos + 1
        return self.data[pos]

    def peek(self) -> int:
        if self.pos >= self.end:
            raise DecodeError(EOF, self.pos)
        return self.data[self.pos]

    def read_bytes(self, n: int) -> bytes:
        """The next ``n`` bytes, copied out of the buffer."""
        pos = self.pos
        if n > self.end - pos:
            raise DecodeError(EOF, self.end)
        self.pos = pos + n
        return bytes(self.data[pos : pos + n])

    def read_view(self, n: int) -> memoryview:
        """The next ``n`` bytes as a read-only view of the buffer, without a copy.

        A core module is most of a component's bytes (19 MB for a
        componentize-py guest) and is only read again to compile it, so it
        is kept as a view; a writable buffer is copied first, so the view
        cannot change.
        """
        pos = self.pos
        if n > self.end - pos:
            raise DecodeError(EOF, self.end)
        self.pos = pos + n
        view = memoryview(self.data)[pos : pos + n]
        return view if view.readonly else memoryview(view.tobytes())

    def skip(self, n: int) -> int:
        """Advance over ``n`` bytes; returns where they started."""
        pos = self.pos
        if n > self.end - pos:
            raise DecodeError(EOF, self.end)
        self.pos = pos + n
        return pos

    def flag(self) -> bool:
        """A boolean immediate: exactly 0x00 or 0x01."""
        start = self.pos
        b = self.u8()
        if b > 1:
            raise DecodeError("invalid boolean value", start)
        return b == 1

    # -- LEB128 (Core spec 5.2.2 Integers) ----------------------------------

    def u32(self) -> int:
        pos = self.pos
        end = self.end
        data = self.data
        if pos < end:
            b = data[pos]
            if b < 0x80:
                # One-byte values dominate real binaries; skip the loop for them.
                self.pos = pos + 1
                return b
        start = pos
        result = 0
        shift = 0
        while True:
            if pos >= end:
                raise DecodeError(EOF, pos)
            b = data[pos]
            pos += 1
            if shift == 28:
                # The fifth byte holds bits 28..31; anything above is out of range.
                if b & 0x80:
                    raise DecodeError("invalid var_u32: integer representation too long", start)
                if b & 0x70:
                    raise DecodeError("invalid var_u32: integer too large", start)
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                self.pos = pos
                return result
            shift += 7

    def u64(self) -> int:
        return self._unsigned(64)

    def _unsigned(self, bits: int) -> int:
        pos = start = self.pos
        end = self.end
        data = self.data
        result = 0
        shift = 0
        while True:
            if pos >= end:
                raise DecodeError(EOF, pos)
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if shift >= bits:
                # Last permitted byte: no continuation, no bits past ``bits``.
                if b & 0x80:
                    raise DecodeError(
                        f"invalid var_u{bits}: integer representation too long", start
                    )
                if (b & 0x7F) >> (bits - (shift - 7)):
                    raise DecodeError(f"invalid var_u{bits}: integer too large", start)
            if not b & 0x80:
                self.pos = pos
                return result

    def s33(self) -> int:
        return self._signed(33)

    def s64(self) -> int:
        return self._signed(64)

    def _signed(self, bits: int) -> int:
        pos = start = self.pos
        end = self.end
        data = self.data
        result = 0
        shift = 0
        while True:
            if pos >= end:
                raise DecodeError(EOF, pos)
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if shift >= bits:
                if b & 0x80:
                    raise DecodeError(
                        f"invalid var_s{bits}: integer representation too long", start
                    )
                # The unused high bits of the last byte must repeat the sign bit.
                used = bits - (shift - 7)
                rest = (b & 0x7F) >> (used - 1)
                if rest not in (0, (0x7F >> (used - 1))):
                    raise DecodeError(f"invalid var_s{bits}: integer too large", start)
            if not b & 0x80:
                self.pos = pos
                if b & 0x40:
                    result -= 1 << shift
                return result

    # -- names and vectors ---------------------------------------------------

    def name(self) -> str:
        """A ``core:name``: u32 byte length, then that many bytes of UTF-8."""
        n = self.u32()
        pos = self.pos
        if n > self.end - pos:
            raise DecodeError(EOF, self.end)
        try:
            text = bytes(self.data[pos : pos + n]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError("malformed UTF-8 encoding", pos + exc.start) from None
        self.pos = pos + n
        return text

    def count(self) -> int:
        """A vector length, refused when the input cannot hold that many items.

        Every element of every vector in the format takes at least one byte,
        so a count above the remaining length is certainly truncated input; it
        is caught here before anything is allocated or looped over.
        """
        start = self.pos
        n = self.u32()
        if n > self.end - self.pos:
            raise DecodeError(f"{EOF}: vector of {n} items exceeds the input", start)
        return n

    def vec(self, item: Callable[[Reader], T]) -> tuple[T, ...]:
        n = self.count()
        return tuple([item(self) for _ in range(n)])

    def sub(self, size: int) -> Reader:
        """A reader over the next ``size`` bytes; this reader skips past them."""
        pos = self.pos
        if size > self.end - pos:
            raise DecodeError(EOF, self.end)
        self.pos = pos + size
        return Reader(self.data, pos, pos + size)

    def expect_end(self, what: str) -> None:
        """Fail unless every byte of this window was consumed."""
        if self.pos != self.end:
            raise DecodeError(f"unexpected content after the end of the {what}", self.pos)
