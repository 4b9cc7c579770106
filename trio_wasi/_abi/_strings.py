"""Strings in linear memory: decoding, encoding and transcoding.

Rules (CanonicalABI.md "Loading" ``load_string_from_range`` and "Storing"
``store_string_into_range`` and its helpers):

* a string is a pointer and a length in *code units* of the options' encoding:
  bytes for ``utf8``, 16-bit units for ``utf16``; under ``latin1+utf16`` bit 31
  of the length tags a UTF-16 string, otherwise it is Latin-1;
* lifting traps when the byte length exceeds ``MAX_STRING_BYTE_LENGTH``, the
  pointer is not aligned to the code unit (2 for the UTF-16 forms), the bytes
  run past the memory, or they do not decode;
* lowering asks ``realloc`` for space, and traps if the answer is misaligned
  or past the end of memory. When the source encoding is known (a string on
  its way from one component to another), the number of bytes needed is not,
  so the specification allocates a guess (the source's code unit count),
  grows to the worst case at the first character that does not fit, and
  shrinks to the exact size at the end; those realloc calls are observable and
  reproduced here exactly. A host string's encoded size is known up front, so
  it takes one exact allocation.

The transcoding path depends on how the source held the string, not only on
its characters: a ``latin1+utf16`` component may hold a string that fits
Latin-1 as UTF-16. Such a string lifts as :class:`Utf16HeldStr`, a ``str``
that remembers it, so lowering it takes the specification's UTF-16 source path.
"""

from __future__ import annotations

from typing import final

from ._options import LiftLowerContext, StringEncoding
from ._trap import trap

__all__ = [
    "MAX_STRING_BYTE_LENGTH",
    "UTF16_TAG",
    "Utf16HeldStr",
    "load_string_from_range",
    "store_string_into_range",
]

MAX_STRING_BYTE_LENGTH = (1 << 28) - 1
UTF16_TAG = 1 << 31

_OOB = "string content out-of-bounds: string pointer/length out of bounds of memory"


@final
class Utf16HeldStr(str):
    """A string a ``latin1+utf16`` component held as UTF-16 although it fits Latin-1.

    It is an ordinary ``str`` to everyone else; lowering it into another
    component transcodes from UTF-16 (``store_string_into_range`` reads the
    source's tagged length, not the characters).
    """

    __slots__ = ()


def _utf8_error(exc: UnicodeDecodeError) -> str:
    if exc.reason == "unexpected end of data":
        return "invalid utf-8: incomplete utf-8 byte sequence"
    return f"invalid utf-8: {exc.reason}"


def load_string_from_range(cx: LiftLowerContext, mv: memoryview, ptr: int, tagged: int) -> str:
    """Decode the string at ``ptr`` with tagged length ``tagged`` (``load_string_from_range``)."""
    encoding = cx.options.string_encoding
    if encoding == "utf8":
        n = tagged
        if n > MAX_STRING_BYTE_LENGTH:
            trap("string content out-of-bounds: string length too large")
        if ptr + n > len(mv):
            trap(_OOB)
        cx.charge(n + 1)
        try:
            return str(mv[ptr : ptr + n], "utf-8")
        except UnicodeDecodeError as exc:
            trap(_utf8_error(exc))
    if encoding == "utf16" or tagged & UTF16_TAG:
        n = 2 * (tagged & ~UTF16_TAG) if encoding != "utf16" else 2 * tagged
        codec = "utf-16-le"
    else:
        n = tagged
        codec = "latin-1"
    if n > MAX_STRING_BYTE_LENGTH:
        trap("string content out-of-bounds: string length too large")
    if ptr & 1:
        trap("unaligned pointer")
    if ptr + n > len(mv):
        trap(_OOB)
    cx.charge(n + 1)
    try:
        s = str(mv[ptr : ptr + n], codec)
    except UnicodeDecodeError as exc:
        trap(f"invalid utf-16: {exc.reason}")
    if encoding != "utf16" and tagged & UTF16_TAG and max(s, default="\0") < "\u0100":
        return Utf16HeldStr(s)
    return s


# ---------------------------------------------------------------------------
# Storing


def _checked(cx: LiftLowerContext, ptr: int, align: int, size: int) -> memoryview:
    mv = cx.memory_view()
    if ptr & (align - 1):
        trap("unaligned pointer (realloc return: result not aligned)")
    if ptr + size > len(mv):
        trap("string content out-of-bounds (realloc return: beyond end of memory)")
    return mv


def _realloc(cx: LiftLowerContext, old: int, old_size: int, align: int, size: int) -> int:
    return cx.reallocate(old, old_size, align, size) & 0xFFFFFFFF


def _copy(cx: LiftLowerContext, data: bytes, units: int, align: int) -> tuple[int, int]:
    """``store_string_copy``: one exact allocation."""
    n = len(data)
    ptr = _realloc(cx, 0, 0, align, n)
    mv = _checked(cx, ptr, align, n)
    mv[ptr : ptr + n] = data
    return ptr, units


def _host_string(cx: LiftLowerContext, s: str) -> tuple[int, int]:
    encoding = cx.options.string_encoding
    if encoding == "utf8":
        data = s.encode("utf-8")
        units = len(data)
        align = 1
    elif encoding == "utf16":
        data = s.encode("utf-16-le")
        units = len(data) >> 1
        align = 2
    else:
        try:
            data = s.encode("latin-1")
            units = len(data)
        except UnicodeEncodeError:
            data = s.encode("utf-16-le")
            units = (len(data) >> 1) | UTF16_TAG
        align = 2
    if len(data) > MAX_STRING_BYTE_LENGTH:
        raise ValueError(f"string of {len(data)} bytes is too long to lower")
    return _copy(cx, data, units, align)


def store_string_into_range(cx: LiftLowerContext, s: str) -> tuple[int, int]:
    """Lower ``s`` into fresh memory; returns (pointer, tagged length).

    Follows ``store_string_into_range`` for the context's source encoding, or
    stores a host string with one exact allocation.
    """
    source = cx.source_encoding
    if source is None:
        if cx.options.string_encoding == "utf8":
            # The common case inline: ``_host_string`` and ``_copy`` for UTF-8.
            data = s.encode("utf-8")
            n = len(data)
            if n > MAX_STRING_BYTE_LENGTH:
                raise ValueError(f"string of {n} bytes is too long to lower")
            ptr = cx.reallocate(0, 0, 1, n) & 0xFFFFFFFF
            mv = cx.memory_view()
            if ptr + n > len(mv):
                trap("string content out-of-bounds (realloc return: beyond end of memory)")
            mv[ptr : ptr + n] = data
            return ptr, n
        return _host_string(cx, s)
    return _transcode(cx, s, source)


def _source_units(s: str, source: StringEncoding) -> tuple[str, int]:
    """The simple source encoding and its code unit count for ``s``."""
    if source == "utf8":
        return "utf8", len(s.encode("utf-8"))
    if source == "utf16":
        return "utf16", len(s.encode("utf-16-le")) >> 1
    if type(s) is not Utf16HeldStr and max(s, default="\0") < "\u0100":
        return "latin1", len(s)
    return "utf16", len(s.encode("utf-16-le")) >> 1


def _transcode(cx: LiftLowerContext, s: str, source: StringEncoding) -> tuple[int, int]:
    simple, units = _source_units(s, source)
    dst = cx.options.string_encoding
    if dst == "utf8":
        if simple == "utf8":
            return _copy(cx, s.encode("utf-8"), units, 1)
        worst = 3 * units if simple == "utf16" else 2 * units
        return _store_to_utf8(cx, s, units, worst)
    if dst == "utf16":
        if simple == "utf8":
            return _store_utf8_to_utf16(cx, s, units)
        return _copy(cx, s.encode("utf-16-le"), units, 2)
    if source != "latin1+utf16":
        return _store_to_latin1_or_utf16(cx, s, units)
    if simple == "latin1":
        return _copy(cx, s.encode("latin-1"), units, 2)
    return _store_probably_utf16_to_latin1_or_utf16(cx, s, units)


def _store_to_utf8(cx: LiftLowerContext, s: str, units: int, worst: int) -> tuple[int, int]:
    """``store_string_to_utf8``: guess one byte per unit, grow on the first non-ASCII."""
    ptr = _realloc(cx, 0, 0, 1, units)
    mv = _checked(cx, ptr, 1, units)
    if s.isascii():
        mv[ptr : ptr + units] = s.encode("ascii")
        return ptr, units
    i = next(j for j, c in enumerate(s) if c >= "\x80")
    mv[ptr : ptr + i] = s[:i].encode("ascii")
    ptr = _realloc(cx, ptr, units, 1, worst)
    mv = _checked(cx, ptr, 1, worst)
    encoded = s.encode("utf-8")
    mv[ptr + i : ptr + len(encoded)] = encoded[i:]
    if worst > len(encoded):
        ptr = _realloc(cx, ptr, worst, 1, len(encoded))
        _checked(cx, ptr, 1, len(encoded))
    return ptr, len(encoded)


def _store_utf8_to_utf16(cx: LiftLowerContext, s: str, units: int) -> tuple[int, int]:
    """``store_utf8_to_utf16``: allocate the worst case, then shrink."""
    worst = 2 * units
    ptr = _realloc(cx, 0, 0, 2, worst)
    mv = _checked(cx, ptr, 2, worst)
    encoded = s.encode("utf-16-le")
    mv[ptr : ptr + len(encoded)] = encoded
    if len(encoded) < worst:
        ptr = _realloc(cx, ptr, worst, 2, len(encoded))
        _checked(cx, ptr, 2, len(encoded))
    return ptr, len(encoded) >> 1


def _store_to_latin1_or_utf16(cx: LiftLowerContext, s: str, units: int) -> tuple[int, int]:
    """``store_string_to_latin1_or_utf16``: Latin-1 until a character needs UTF-16."""
    ptr = _realloc(cx, 0, 0, 2, units)
    mv = _checked(cx, ptr, 2, units)
    try:
        latin1 = s.encode("latin-1")
    except UnicodeEncodeError as exc:
        j = exc.start
    else:
        n = len(latin1)
        mv[ptr : ptr + n] = latin1
        if n < units:
            ptr = _realloc(cx, ptr, units, 2, n)
            _checked(cx, ptr, 2, n)
        return ptr, n
    mv[ptr : ptr + j] = s[:j].encode("latin-1")
    worst = 2 * units
    ptr = _realloc(cx, ptr, units, 2, worst)
    mv = _checked(cx, ptr, 2, worst)
    # Inflate the Latin-1 prefix realloc carried over into UTF-16 code units.
    prefix = bytes(mv[ptr : ptr + j])
    mv[ptr : ptr + 2 * j] = prefix.decode("latin-1").encode("utf-16-le")
    encoded = s.encode("utf-16-le")
    mv[ptr + 2 * j : ptr + len(encoded)] = encoded[2 * j :]
    if worst > len(encoded):
        ptr = _realloc(cx, ptr, worst, 2, len(encoded))
        _checked(cx, ptr, 2, len(encoded))
    return ptr, (len(encoded) >> 1) | UTF16_TAG


def _store_probably_utf16_to_latin1_or_utf16(
    cx: LiftLowerContext, s: str, units: int
) -> tuple[int, int]:
    """``store_probably_utf16_to_latin1_or_utf16``: copy the UTF-16, compact it if it fits Latin-1.

    The compaction shrinks the allocation with alignment 1, as the
    specification does.
    """
    size = 2 * units
    ptr = _realloc(cx, 0, 0, 2, size)
    mv = _checked(cx, ptr, 2, size)
    encoded = s.encode("utf-16-le")
    mv[ptr : ptr + len(encoded)] = encoded
    if max(s, default="\0") >= "\u0100":
        return ptr, (len(encoded) >> 1) | UTF16_TAG
    latin1 = s.encode("latin-1")
    n = len(latin1)
    mv[ptr : ptr + n] = latin1
    ptr = _realloc(cx, ptr, size, 1, n)
    _checked(cx, ptr, 1, n)
    return ptr, n
