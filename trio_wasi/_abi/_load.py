"""Loading values from linear memory (CanonicalABI.md "Loading").

Rules:

* a value sits at a pointer aligned to its type, fully inside memory; the
  callers that get pointers from core wasm check that (``unaligned pointer``,
  ``... out-of-bounds``), so code inside a checked range reads without checks;
* bool is any non-zero byte; chars must be Unicode scalar values
  (``invalid `char` bit pattern``); a variant's discriminant must name a case
  (``invalid variant discriminant``); flags ignore bits past their labels;
* f32/f64 NaNs are canonicalised;
* a list is a (pointer, length) pair; its byte length may not exceed
  ``MAX_LIST_BYTE_LENGTH`` and its elements must be aligned and inside memory;
* a map is loaded as the ``list<tuple<K, V>>`` it despecialises to, then
  becomes a dict (:func:`~._shapes.map_from_pairs`).

Each type compiles once into a loader ``(cx, view, ptr) -> value``
(:func:`loader_for`); nothing in a loader runs wasm, so one view serves the
whole load.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable
from itertools import repeat
from typing import Any

from ._layout import (
    alignment,
    elem_size,
    flags_size,
    record_field_types,
    record_offsets,
    variant_case_types,
    variant_layout,
)
from ._options import LiftLowerContext
from ._resources import borrow_to_host, lift_borrow, lift_own, own_to_host
from ._shapes import flags_unpacker, map_from_pairs, record_maker, variant_maker
from ._strings import load_string_from_range
from ._trap import trap
from ._types import (
    BoolType,
    BorrowType,
    CharType,
    EnumType,
    ErrorContextType,
    F32Type,
    F64Type,
    FlagsType,
    FutureType,
    ListType,
    MapType,
    OptionType,
    OwnType,
    RecordType,
    ResultType,
    S8Type,
    S16Type,
    S32Type,
    S64Type,
    StreamType,
    StringType,
    TupleType,
    U8Type,
    U16Type,
    U32Type,
    U64Type,
    ValueType,
    VariantType,
)

__all__ = [
    "MAX_LIST_BYTE_LENGTH",
    "load",
    "checked_range_loader",
    "load_list_from_range",
    "load_list_from_valid_range",
    "loader_for",
]

Loader = Callable[[LiftLowerContext, memoryview, int], Any]

MAX_LIST_BYTE_LENGTH = (1 << 28) - 1
CANONICAL_NAN = math.nan  # f32 and f64 canonical NaNs are both this Python float

_CACHE = 4096

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_PAIR = struct.Struct("<II")

# Struct format codes of the fixed-size numeric types (used for list fast paths).
NUMERIC_FORMATS: dict[type, str] = {
    S8Type: "b",
    U8Type: "B",
    S16Type: "h",
    U16Type: "H",
    S32Type: "i",
    U32Type: "I",
    S64Type: "q",
    U64Type: "Q",
    F32Type: "f",
    F64Type: "d",
}


def char_from_i32(i: int) -> str:
    """A char from its code point, trapping on surrogates and values past U+10FFFF."""
    if i >= 0x110000 or 0xD800 <= i <= 0xDFFF:
        trap("invalid `char` bit pattern")
    return chr(i)


def _numeric_loader(fmt: str) -> Loader:
    unpack_from = struct.Struct("<" + fmt).unpack_from
    if fmt in "fd":

        def load_float(cx: LiftLowerContext, mv: memoryview, ptr: int) -> Any:
            f = unpack_from(mv, ptr)[0]
            return f if f == f else CANONICAL_NAN

        return load_float
    return lambda cx, mv, ptr: unpack_from(mv, ptr)[0]


def _load_bool(cx: LiftLowerContext, mv: memoryview, ptr: int) -> bool:
    return mv[ptr] != 0


def _load_u8(cx: LiftLowerContext, mv: memoryview, ptr: int) -> int:
    return mv[ptr]


def _load_char(cx: LiftLowerContext, mv: memoryview, ptr: int) -> str:
    return char_from_i32(_U32.unpack_from(mv, ptr)[0])


def _load_string(cx: LiftLowerContext, mv: memoryview, ptr: int) -> str:
    begin, tagged = _PAIR.unpack_from(mv, ptr)
    return load_string_from_range(cx, mv, begin, tagged)


def load_list_from_range(
    cx: LiftLowerContext, mv: memoryview, ptr: int, length: int, element: ValueType
) -> Any:
    """Load ``length`` elements at ``ptr`` after the range checks of ``load_list_from_range``."""
    return checked_range_loader(element)(cx, mv, ptr, length)


RangeLoader = Callable[[LiftLowerContext, memoryview, int, int], Any]


@functools.lru_cache(maxsize=_CACHE)
def checked_range_loader(element: ValueType) -> RangeLoader:
    """:func:`load_list_from_range` for one element type, its layout looked up once."""
    size = elem_size(element)
    mask = alignment(element) - 1
    load_range = _range_loader(element)

    def load_checked(cx: LiftLowerContext, mv: memoryview, ptr: int, length: int) -> Any:
        nbytes = length * size
        if nbytes > MAX_LIST_BYTE_LENGTH:
            trap("list content out-of-bounds: list too long")
        if ptr & mask:
            trap("unaligned pointer")
        if ptr + nbytes > len(mv):
            trap("list content out-of-bounds")
        cx.charge(max(nbytes, length) + 1)
        return load_range(cx, mv, ptr, length)

    return load_checked


def load_list_from_valid_range(
    cx: LiftLowerContext, mv: memoryview, ptr: int, length: int, element: ValueType
) -> Any:
    """Load ``length`` elements from a range already checked (``load_list_from_valid_range``).

    ``list<u8>`` gives ``bytes``; other element types give a list.
    """
    size, load_range = _valid_range_plan(element)
    cx.charge(max(length * size, length) + 1)
    return load_range(cx, mv, ptr, length)


@functools.lru_cache(maxsize=_CACHE)
def _valid_range_plan(element: ValueType) -> tuple[int, RangeLoader]:
    # The element size and range loader, in one lookup (one hash of the type).
    return elem_size(element), _range_loader(element)


@functools.lru_cache(maxsize=_CACHE)
def _range_loader(element: ValueType) -> RangeLoader:
    """``(cx, view, ptr, count) -> list`` for a checked range of elements."""
    cls = type(element)
    if cls is U8Type:
        return lambda cx, mv, ptr, n: bytes(mv[ptr : ptr + n])
    fmt = NUMERIC_FORMATS.get(cls)
    if fmt is not None:
        if fmt in "fd":

            def load_floats(cx: LiftLowerContext, mv: memoryview, ptr: int, n: int) -> Any:
                floats = struct.unpack_from(f"<{n}{fmt}", mv, ptr)
                return [f if f == f else CANONICAL_NAN for f in floats]

            return load_floats
        return lambda cx, mv, ptr, n: list(struct.unpack_from(f"<{n}{fmt}", mv, ptr))
    if cls is BoolType:
        return lambda cx, mv, ptr, n: [b != 0 for b in mv[ptr : ptr + n]]
    load_elem = loader_for(element)
    size = elem_size(element)
    if size == 0:
        return lambda cx, mv, ptr, n: [load_elem(cx, mv, ptr) for _ in range(n)]
    # map over the element addresses: no comprehension frame per list.
    return lambda cx, mv, ptr, n: list(
        map(load_elem, repeat(cx, n), repeat(mv, n), range(ptr, ptr + n * size, size))
    )


def _list_loader(t: ListType) -> Loader:
    element = t.element
    if t.length is not None:
        length = t.length
        load_range = _range_loader(element)
        if type(element) is U8Type:
            return lambda cx, mv, ptr: list(mv[ptr : ptr + length])
        return lambda cx, mv, ptr: load_range(cx, mv, ptr, length)

    load_checked = checked_range_loader(element)

    def load_list(cx: LiftLowerContext, mv: memoryview, ptr: int) -> Any:
        begin, length = _PAIR.unpack_from(mv, ptr)
        return load_checked(cx, mv, begin, length)

    return load_list


def _map_loader(t: MapType) -> Loader:
    pair = t.pair_type()

    def load_map(cx: LiftLowerContext, mv: memoryview, ptr: int) -> Any:
        begin, length = _PAIR.unpack_from(mv, ptr)
        return map_from_pairs(load_list_from_range(cx, mv, begin, length, pair))

    return load_map


def _record_loader(t: RecordType | TupleType) -> Loader:
    parts = tuple(
        zip(record_offsets(t), [loader_for(ft) for ft in record_field_types(t)], strict=True)
    )
    make = record_maker(t)
    if isinstance(t, RecordType):
        labels = tuple(label for label, _ in t.fields)
        fields = tuple((label, off, ld) for label, (off, ld) in zip(labels, parts, strict=True))
        return lambda cx, mv, ptr: {label: ld(cx, mv, ptr + off) for label, off, ld in fields}
    # Pairs, the commonest tuples (map entries, headers), unrolled.
    if len(parts) == 2:
        (off0, ld0), (off1, ld1) = parts
        return lambda cx, mv, ptr: (ld0(cx, mv, ptr + off0), ld1(cx, mv, ptr + off1))
    return lambda cx, mv, ptr: make([ld(cx, mv, ptr + off) for off, ld in parts])


def _variant_loader(t: ValueType) -> Loader:
    layout = variant_layout(t)
    cases = variant_case_types(t)
    n = len(cases)
    case_loaders = tuple(None if c is None else loader_for(c) for c in cases)
    make = variant_maker(t)
    disc_size = layout.disc_size
    offset = layout.payload_offset
    read_disc = {1: None, 2: _U16.unpack_from, 4: _U32.unpack_from}[disc_size]

    def load_variant(cx: LiftLowerContext, mv: memoryview, ptr: int) -> Any:
        i: int = mv[ptr] if read_disc is None else read_disc(mv, ptr)[0]
        if i >= n:
            trap("invalid variant discriminant")
        ld = case_loaders[i]
        return make(i, None if ld is None else ld(cx, mv, ptr + offset))

    return load_variant


def _flags_loader(t: FlagsType) -> Loader:
    unpack = flags_unpacker(t)
    size = flags_size(len(t.labels))
    if size == 1:
        return lambda cx, mv, ptr: unpack(mv[ptr])
    fmt = _U16 if size == 2 else _U32
    return lambda cx, mv, ptr: unpack(fmt.unpack_from(mv, ptr)[0])


def _hook_loader(t: ValueType) -> Loader:
    def load_hooked(cx: LiftLowerContext, mv: memoryview, ptr: int) -> Any:
        i = _U32.unpack_from(mv, ptr)[0]
        return lift_handle_value(cx, i, t)

    return load_hooked


def lift_handle_value(cx: LiftLowerContext, i: int, t: ValueType) -> Any:
    """Lift an error-context, stream or future handle through the context's hooks."""
    hooks = cx.hooks
    if hooks is None:
        raise NotImplementedError(f"lifting {type(t).__name__} needs async value hooks")
    if isinstance(t, StreamType):
        return hooks.lift_stream(cx, i, t)
    if isinstance(t, FutureType):
        return hooks.lift_future(cx, i, t)
    return hooks.lift_error_context(cx, i)


@functools.lru_cache(maxsize=_CACHE)
def loader_for(t: ValueType) -> Loader:
    """The memoised loader ``(cx, view, ptr) -> value`` of type ``t``."""
    cls = type(t)
    if cls is U8Type:
        return _load_u8
    fmt = NUMERIC_FORMATS.get(cls)
    if fmt is not None:
        return _numeric_loader(fmt)
    if cls is BoolType:
        return _load_bool
    if cls is CharType:
        return _load_char
    if cls is StringType:
        return _load_string
    if isinstance(t, ListType):
        return _list_loader(t)
    if isinstance(t, MapType):
        return _map_loader(t)
    if isinstance(t, RecordType | TupleType):
        return _record_loader(t)
    if isinstance(t, VariantType | EnumType | OptionType | ResultType):
        return _variant_loader(t)
    if isinstance(t, FlagsType):
        return _flags_loader(t)
    if isinstance(t, OwnType):
        own = t
        return lambda cx, mv, ptr: own_to_host(
            cx, lift_own(cx, _U32.unpack_from(mv, ptr)[0], own), own
        )
    if isinstance(t, BorrowType):
        borrow = t
        return lambda cx, mv, ptr: borrow_to_host(
            cx, lift_borrow(cx, _U32.unpack_from(mv, ptr)[0], borrow), borrow
        )
    if isinstance(t, StreamType | FutureType | ErrorContextType):
        return _hook_loader(t)
    raise TypeError(f"not a value type: {t!r}")


def load(cx: LiftLowerContext, ptr: int, t: ValueType) -> Any:
    """Load a value of type ``t`` at ``ptr`` (``load``).

    Traps if ``ptr`` is misaligned or the value runs past the memory.
    """
    mv = cx.memory_view()
    if ptr & (alignment(t) - 1):
        trap("unaligned pointer")
    if ptr + elem_size(t) > len(mv):
        trap("pointer out-of-bounds of memory")
    return loader_for(t)(cx, mv, ptr)
