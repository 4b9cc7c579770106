"""Storing values into linear memory (CanonicalABI.md "Storing").

Rules:

* host values are checked as they are stored: an int out of its type's range,
  a char that is not a Unicode scalar value, a label a type does not have,
  raise ValueError naming the type (these are host bugs, not guest traps);
* NaNs are stored as the canonical NaN (the specification's deterministic
  profile);
* a map is stored as the ``list<tuple<K, V>>`` it despecialises to; the host
  value is a Mapping or an iterable of pairs (:func:`~._shapes.map_to_pairs`);
* strings and lists get fresh memory from the guest's ``realloc``; its result
  must be aligned (``unaligned pointer``) and inside memory
  (``... out-of-bounds``);
* ``realloc`` runs wasm and may grow, and so move, the memory. Every storer
  therefore takes the current view and returns the view that is current after
  it ran; callers carry on with the returned one.

Each type compiles once into a storer ``(cx, view, value, ptr) -> view``
(:func:`storer_for`).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from typing import Any

from ._handles import ResourceHandle
from ._layout import (
    alignment,
    elem_size,
    flags_size,
    record_field_types,
    record_offsets,
    variant_case_types,
    variant_layout,
)
from ._load import MAX_LIST_BYTE_LENGTH, NUMERIC_FORMATS
from ._options import LiftLowerContext
from ._resources import host_to_borrow, host_to_own, lower_borrow
from ._shapes import flags_packer, map_to_pairs, record_splitter, variant_splitter
from ._strings import store_string_into_range
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
    StreamType,
    StringType,
    TupleType,
    U8Type,
    ValueType,
    VariantType,
    describe_value_type,
)

__all__ = [
    "store",
    "store_list_into_range",
    "store_list_into_valid_range",
    "storer_for",
]

Storer = Callable[[LiftLowerContext, memoryview, Any, int], memoryview]

_CACHE = 4096

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_PAIR = struct.Struct("<II")
_F32 = struct.Struct("<f")

CANONICAL_NAN32 = 0x7FC00000
CANONICAL_NAN64 = 0x7FF8000000000000

_TYPE_NAMES = {
    "b": "s8",
    "B": "u8",
    "h": "s16",
    "H": "u16",
    "i": "s32",
    "I": "u32",
    "q": "s64",
    "Q": "u64",
}


def f32_bits(v: float) -> int:
    """The f32 bit pattern of ``v``, rounded to f32 (canonical NaN for NaNs)."""
    if v != v:
        return CANONICAL_NAN32
    try:
        return int(_U32.unpack(_F32.pack(v))[0])
    except OverflowError:
        return 0x7F800000 if v > 0 else 0xFF800000  # rounds to infinity


def f64_bits(v: float) -> int:
    """The f64 bit pattern of ``v`` (canonical NaN for NaNs)."""
    if v != v:
        return CANONICAL_NAN64
    return int.from_bytes(struct.pack("<d", v), "little")


def char_to_i32(v: Any) -> int:
    """The code point of char ``v``; ValueError unless it is one Unicode scalar value."""
    if not isinstance(v, str) or len(v) != 1:
        raise ValueError(f"expected a one-character str for char, got {v!r}")
    i = ord(v)
    if 0xD800 <= i <= 0xDFFF:
        raise ValueError(f"char cannot be the surrogate U+{i:04X}")
    return i


def _int_storer(fmt: str) -> Storer:
    pack_into = struct.Struct("<" + fmt).pack_into
    name = _TYPE_NAMES[fmt]

    def store_int(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
        try:
            if type(v) is bool:  # (struct packs it as 0 or 1)
                raise struct.error
            pack_into(mv, ptr, v)
        except struct.error:
            raise ValueError(f"{v!r} is not a valid {name}") from None
        return mv

    return store_int


def _store_f32(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
    _U32.pack_into(mv, ptr, f32_bits(_float(v, "f32")))
    return mv


def _store_f64(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
    v = _float(v, "f64")
    if v != v:
        struct.pack_into("<Q", mv, ptr, CANONICAL_NAN64)
    else:
        struct.pack_into("<d", mv, ptr, v)
    return mv


def _float(v: Any, name: str) -> float:
    if isinstance(v, float):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    raise ValueError(f"{v!r} is not a valid {name}")


def _store_bool(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
    mv[ptr] = 1 if v else 0
    return mv


def _store_char(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
    _U32.pack_into(mv, ptr, char_to_i32(v))
    return mv


def _store_string(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
    if not isinstance(v, str):
        raise ValueError(f"expected a str for string, got {v!r}")
    begin, tagged = store_string_into_range(cx, v)
    mv = cx.memory_view()
    _PAIR.pack_into(mv, ptr, begin, tagged)
    return mv


# ---------------------------------------------------------------------------
# Lists


def as_bytes(v: Any) -> bytes:
    """The bytes of a ``list<u8>`` host value (bytes-like or an iterable of ints)."""
    if isinstance(v, bytes):
        return v
    if isinstance(v, bytearray | memoryview):
        return bytes(v)
    if isinstance(v, int | str):
        # bytes(5) would make five zero bytes, bytes("ab") needs an encoding:
        # neither is a list of bytes.
        raise ValueError(f"{v!r} is not a valid list<u8>")
    try:
        return bytes(v)
    except (TypeError, ValueError):
        raise ValueError(f"{v!r} is not a valid list<u8>") from None


def store_list_into_range(cx: LiftLowerContext, v: Any, element: ValueType) -> tuple[int, int]:
    """Allocate and fill a list (``store_list_into_range``); returns (pointer, length)."""
    if type(element) is U8Type:
        v = as_bytes(v)
    elif not isinstance(v, Sequence) or isinstance(v, str):
        raise ValueError(f"expected a sequence for list<...>, got {v!r}")
    n = len(v)
    size = elem_size(element)
    nbytes = n * size
    if nbytes > MAX_LIST_BYTE_LENGTH:
        raise ValueError(f"a list of {nbytes} bytes is too long to lower")
    align = alignment(element)
    ptr = cx.allocate(align, nbytes) & 0xFFFFFFFF
    mv = cx.memory_view()
    if ptr & (align - 1):
        trap("unaligned pointer (realloc return: result not aligned)")
    if ptr + nbytes > len(mv):
        trap("list content out-of-bounds (realloc return: beyond end of memory)")
    _range_storer(element)(cx, mv, v, ptr)
    return ptr, n


RangeStorer = Callable[[LiftLowerContext, memoryview, Any, int], memoryview]


def store_list_into_valid_range(
    cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int, element: ValueType
) -> memoryview:
    """Store ``v`` into a range already checked (``store_list_into_valid_range``).

    Returns the view that is current afterwards (element storers may call
    ``realloc``, which may move the memory).
    """
    return _range_storer(element)(cx, mv, v, ptr)


@functools.lru_cache(maxsize=_CACHE)
def _range_storer(element: ValueType) -> RangeStorer:
    """``(cx, view, elements, ptr) -> view`` for a checked range."""
    cls = type(element)
    if cls is U8Type:

        def store_bytes(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
            data = as_bytes(v)
            mv[ptr : ptr + len(data)] = data
            return mv

        return store_bytes
    fmt = NUMERIC_FORMATS.get(cls)
    if fmt is not None and fmt not in "fd":
        name = _TYPE_NAMES[fmt]

        def store_ints(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
            try:
                struct.pack_into(f"<{len(v)}{fmt}", mv, ptr, *v)
            except struct.error:
                raise ValueError(f"{v!r} is not a valid list<{name}>") from None
            return mv

        return store_ints
    st = storer_for(element)
    size = elem_size(element)

    def store_elements(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
        for e in v:
            mv = st(cx, mv, e, ptr)
            ptr += size
        return mv

    return store_elements


def _list_storer(t: ListType) -> Storer:
    element = t.element
    if t.length is not None:
        length = t.length
        store_range = _range_storer(element)

        def store_fixed(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
            if len(v) != length:
                raise ValueError(
                    f"expected {length} elements for {describe_value_type(t)}, got {len(v)}"
                )
            return store_range(cx, mv, v, ptr)

        return store_fixed

    def store_list(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
        begin, n = store_list_into_range(cx, v, element)
        mv = cx.memory_view()
        _PAIR.pack_into(mv, ptr, begin, n)
        return mv

    return store_list


def _map_storer(t: MapType) -> Storer:
    pair = t.pair_type()

    def store_map(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
        begin, n = store_list_into_range(cx, map_to_pairs(v), pair)
        mv = cx.memory_view()
        _PAIR.pack_into(mv, ptr, begin, n)
        return mv

    return store_map


# ---------------------------------------------------------------------------
# Compound types


def _record_storer(t: RecordType | TupleType) -> Storer:
    parts = tuple(
        zip(record_offsets(t), [storer_for(ft) for ft in record_field_types(t)], strict=True)
    )
    split = record_splitter(t)

    def store_record(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
        for (off, st), fv in zip(parts, split(v), strict=True):
            mv = st(cx, mv, fv, ptr + off)
        return mv

    return store_record


def _variant_storer(t: ValueType) -> Storer:
    layout = variant_layout(t)
    case_storers = tuple(None if c is None else storer_for(c) for c in variant_case_types(t))
    split = variant_splitter(t)
    offset = layout.payload_offset
    disc_fmt = {1: struct.Struct("<B"), 2: _U16, 4: _U32}[layout.disc_size]
    write_disc = disc_fmt.pack_into

    def store_variant(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
        i, payload = split(v)
        write_disc(mv, ptr, i)
        st = case_storers[i]
        if st is not None:
            mv = st(cx, mv, payload, ptr + offset)
        return mv

    return store_variant


def _flags_storer(t: FlagsType) -> Storer:
    pack = flags_packer(t)
    fmt = {1: struct.Struct("<B"), 2: _U16, 4: _U32}[flags_size(len(t.labels))]
    pack_into = fmt.pack_into

    def store_flags(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
        pack_into(mv, ptr, pack(v))
        return mv

    return store_flags


def lower_handle_value(cx: LiftLowerContext, v: Any, t: ValueType) -> int:
    """Lower an error-context, stream or future through the context's hooks."""
    hooks = cx.hooks
    if hooks is None:
        raise NotImplementedError(f"lowering {type(t).__name__} needs async value hooks")
    if isinstance(t, StreamType):
        return hooks.lower_stream(cx, v, t)
    if isinstance(t, FutureType):
        return hooks.lower_future(cx, v, t)
    return hooks.lower_error_context(cx, v)


def _handle_storer(t: ValueType) -> Storer:
    pack_into = _U32.pack_into
    if isinstance(t, OwnType):
        own = t
        resource = own.resource

        def store_own(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
            # (lower_own, inline: a new owning handle for the representation)
            handle = ResourceHandle(resource, host_to_own(cx, v, own), own=True)
            pack_into(mv, ptr, cx.instance.table.add(handle))
            return mv

        return store_own
    if isinstance(t, BorrowType):
        borrow = t

        def store_borrow(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
            pack_into(mv, ptr, lower_borrow(cx, host_to_borrow(cx, v, borrow), borrow))
            return mv

        return store_borrow

    # Streams and futures: lower_handle_value's dispatch, chosen once here
    # (it still reports a context without hooks).
    if isinstance(t, StreamType | FutureType):
        async_t = t
        hook = "lower_stream" if isinstance(t, StreamType) else "lower_future"

        def store_async(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
            hooks = cx.hooks
            if hooks is None:
                lower_handle_value(cx, v, async_t)  # raises
            else:
                pack_into(mv, ptr, getattr(hooks, hook)(cx, v, async_t))
            return mv

        return store_async

    def store_handle(cx: LiftLowerContext, mv: memoryview, v: Any, ptr: int) -> memoryview:
        pack_into(mv, ptr, lower_handle_value(cx, v, t))
        return mv

    return store_handle


@functools.lru_cache(maxsize=_CACHE)
def storer_for(t: ValueType) -> Storer:
    """The memoised storer ``(cx, view, value, ptr) -> view`` of type ``t``."""
    cls = type(t)
    fmt = NUMERIC_FORMATS.get(cls)
    if fmt is not None:
        if cls is F32Type:
            return _store_f32
        if cls is F64Type:
            return _store_f64
        return _int_storer(fmt)
    if cls is BoolType:
        return _store_bool
    if cls is CharType:
        return _store_char
    if cls is StringType:
        return _store_string
    if isinstance(t, ListType):
        return _list_storer(t)
    if isinstance(t, MapType):
        return _map_storer(t)
    if isinstance(t, RecordType | TupleType):
        return _record_storer(t)
    if isinstance(t, VariantType | EnumType | OptionType | ResultType):
        return _variant_storer(t)
    if isinstance(t, FlagsType):
        return _flags_storer(t)
    if isinstance(t, OwnType | BorrowType | StreamType | FutureType | ErrorContextType):
        return _handle_storer(t)
    raise TypeError(f"not a value type: {t!r}")


def store(cx: LiftLowerContext, v: Any, t: ValueType, ptr: int) -> None:
    """Store ``v`` of type ``t`` at ``ptr`` (``store``), trapping if misaligned or out of bounds."""
    mv = cx.memory_view()
    if ptr & (alignment(t) - 1):
        trap("unaligned pointer")
    if ptr + elem_size(t) > len(mv):
        trap("pointer out-of-bounds of memory")
    storer_for(t)(cx, mv, v, ptr)
