"""Memory layout and flattening of component types.

Rules (CanonicalABI.md "Despecialization", "Alignment", "Element Size",
"Flattening"):

* tuple, enum, option, result and map are laid out as the record, variant or
  list they despecialise to: a tuple is a record with fields ``0, 1, ...``, an
  enum a variant without payloads, ``option<T>`` the variant ``none | some(T)``,
  ``result<O, E>`` the variant ``ok(O) | error(E)`` and ``map<K, V>`` the list
  ``list<tuple<K, V>>``;
* a variant is a discriminant (u8, u16 or u32, the smallest holding the case
  count) followed by the payload area, aligned to the largest case alignment
  and as big as the largest case; the whole is rounded up to its alignment;
* a record packs its fields in order, each aligned to itself, and rounds the
  total up to the largest field alignment;
* strings and unbounded lists are a (pointer, length) pair of i32s; a list with
  a fixed length is its elements inline;
* flags take 1, 2 or 4 bytes for up to 8, 16 and 32 labels;
* handles (own, borrow, stream, future, error-context) are one i32.

Flattening turns a type into the core value types that carry it in
registers; a variant's payload slots are the element-wise *join* of its cases'
flattenings (equal types stay, i32 with f32 gives i32, anything else i64).

Only 32-bit memories are supported: every pointer is an i32.

Every function here is memoised per type (types are hashable by value).
"""

from __future__ import annotations

import functools
from typing import Literal

from .._frozen import frozen
from ._types import (
    BoolType,
    BorrowType,
    CharType,
    EnumType,
    ErrorContextType,
    F32Type,
    F64Type,
    FlagsType,
    FuncType,
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
    "MAX_FLAT_ASYNC_PARAMS",
    "MAX_FLAT_PARAMS",
    "MAX_FLAT_RESULTS",
    "CoreSig",
    "VariantLayout",
    "align_to",
    "alignment",
    "discriminant_size",
    "discriminant_type",
    "elem_size",
    "flags_size",
    "flat_types",
    "flat_types_of",
    "flatten_functype",
    "flatten_type",
    "join",
    "record_field_types",
    "record_offsets",
    "task_return_sig",
    "variant_case_types",
    "variant_layout",
]

CoreValType = Literal["i32", "i64", "f32", "f64"]

MAX_FLAT_PARAMS = 16
MAX_FLAT_ASYNC_PARAMS = 4
MAX_FLAT_RESULTS = 1

_CACHE = 4096  # bounded: resource types (identity-hashed) come and go with stores


def align_to(ptr: int, align: int) -> int:
    """Round ``ptr`` up to a multiple of ``align`` (a power of two)."""
    return (ptr + align - 1) & -align


# ---------------------------------------------------------------------------
# Despecialization (CanonicalABI.md "Despecialization")


@functools.lru_cache(maxsize=_CACHE)
def variant_case_types(t: ValueType) -> tuple[ValueType | None, ...]:
    """The payload types of a variant-like type, in case order."""
    if isinstance(t, VariantType):
        return tuple(ct for _, ct in t.cases)
    if isinstance(t, EnumType):
        return (None,) * len(t.labels)
    if isinstance(t, OptionType):
        return (None, t.type)
    if isinstance(t, ResultType):
        return (t.ok, t.error)
    raise TypeError(f"not a variant-like type: {t!r}")


def record_field_types(t: ValueType) -> tuple[ValueType, ...]:
    """The field types of a record-like type (record or tuple), in order."""
    if isinstance(t, RecordType):
        return tuple(ft for _, ft in t.fields)
    if isinstance(t, TupleType):
        return t.types
    raise TypeError(f"not a record-like type: {t!r}")


_VARIANT_LIKE = (VariantType, EnumType, OptionType, ResultType)
_RECORD_LIKE = (RecordType, TupleType)


# ---------------------------------------------------------------------------
# Alignment and size (CanonicalABI.md "Alignment", "Element Size")

_PRIM_SIZE: dict[type, int] = {
    BoolType: 1,
    S8Type: 1,
    U8Type: 1,
    S16Type: 2,
    U16Type: 2,
    S32Type: 4,
    U32Type: 4,
    S64Type: 8,
    U64Type: 8,
    F32Type: 4,
    F64Type: 8,
    CharType: 4,
    ErrorContextType: 4,
    OwnType: 4,
    BorrowType: 4,
    StreamType: 4,
    FutureType: 4,
}


def discriminant_size(n_cases: int) -> int:
    """Byte size of the discriminant of a variant with ``n_cases`` cases."""
    if not 0 < n_cases < (1 << 32):
        raise ValueError(f"a variant needs 1 to 2**32-1 cases, not {n_cases}")
    if n_cases <= 1 << 8:
        return 1
    if n_cases <= 1 << 16:
        return 2
    return 4


def discriminant_type(n_cases: int) -> U8Type | U16Type | U32Type:
    """The discriminant type of a variant with ``n_cases`` cases."""
    return {1: U8Type(), 2: U16Type(), 4: U32Type()}[discriminant_size(n_cases)]  # type: ignore[return-value]


def flags_size(n_labels: int) -> int:
    """Byte size of a flags value with ``n_labels`` labels."""
    if not 0 < n_labels <= 32:
        raise ValueError(f"flags need 1 to 32 labels, not {n_labels}")
    if n_labels <= 8:
        return 1
    if n_labels <= 16:
        return 2
    return 4


@frozen
class VariantLayout:
    """Where a variant's parts live: discriminant size, payload offset, totals."""

    disc_size: int
    payload_offset: int
    size: int
    align: int


@functools.lru_cache(maxsize=_CACHE)
def variant_layout(t: ValueType) -> VariantLayout:
    """The layout of a variant-like type (CanonicalABI.md "Element Size")."""
    cases = variant_case_types(t)
    disc = discriminant_size(len(cases))
    case_align = max((alignment(c) for c in cases if c is not None), default=1)
    payload_offset = align_to(disc, case_align)
    payload_size = max((elem_size(c) for c in cases if c is not None), default=0)
    align = max(disc, case_align)
    size = align_to(payload_offset + payload_size, align)
    return VariantLayout(disc, payload_offset, size, align)


@functools.lru_cache(maxsize=_CACHE)
def record_offsets(t: ValueType) -> tuple[int, ...]:
    """The byte offset of each field of a record-like type."""
    offsets = []
    s = 0
    for ft in record_field_types(t):
        s = align_to(s, alignment(ft))
        offsets.append(s)
        s += elem_size(ft)
    return tuple(offsets)


@functools.lru_cache(maxsize=_CACHE)
def alignment(t: ValueType) -> int:
    """Alignment in bytes of a value of type ``t`` in linear memory."""
    size = _PRIM_SIZE.get(type(t))
    if size is not None:
        return size
    if isinstance(t, StringType):
        return 4
    if isinstance(t, ListType):
        return 4 if t.length is None else alignment(t.element)
    if isinstance(t, MapType):
        return alignment(t.as_list())
    if isinstance(t, _RECORD_LIKE):
        return max((alignment(ft) for ft in record_field_types(t)), default=1)
    if isinstance(t, _VARIANT_LIKE):
        return variant_layout(t).align
    if isinstance(t, FlagsType):
        return flags_size(len(t.labels))
    raise TypeError(f"not a value type: {t!r}")


@functools.lru_cache(maxsize=_CACHE)
def elem_size(t: ValueType) -> int:
    """Size in bytes of a value of type ``t`` in linear memory."""
    size = _PRIM_SIZE.get(type(t))
    if size is not None:
        return size
    if isinstance(t, StringType):
        return 8
    if isinstance(t, ListType):
        return 8 if t.length is None else t.length * elem_size(t.element)
    if isinstance(t, MapType):
        return elem_size(t.as_list())
    if isinstance(t, _RECORD_LIKE):
        fts = record_field_types(t)
        if not fts:
            raise ValueError("a record or tuple needs at least one field")
        end = record_offsets(t)[-1] + elem_size(fts[-1])
        return align_to(end, alignment(t))
    if isinstance(t, _VARIANT_LIKE):
        return variant_layout(t).size
    if isinstance(t, FlagsType):
        return flags_size(len(t.labels))
    raise TypeError(f"not a value type: {t!r}")


# ---------------------------------------------------------------------------
# Flattening (CanonicalABI.md "Flattening")

_PRIM_FLAT: dict[type, tuple[CoreValType, ...]] = {
    BoolType: ("i32",),
    S8Type: ("i32",),
    U8Type: ("i32",),
    S16Type: ("i32",),
    U16Type: ("i32",),
    S32Type: ("i32",),
    U32Type: ("i32",),
    S64Type: ("i64",),
    U64Type: ("i64",),
    F32Type: ("f32",),
    F64Type: ("f64",),
    CharType: ("i32",),
    StringType: ("i32", "i32"),
    ErrorContextType: ("i32",),
    FlagsType: ("i32",),
    OwnType: ("i32",),
    BorrowType: ("i32",),
    StreamType: ("i32",),
    FutureType: ("i32",),
}


def join(a: CoreValType, b: CoreValType) -> CoreValType:
    """The core type that can carry both ``a`` and ``b`` in one variant slot."""
    if a == b:
        return a
    if {a, b} == {"i32", "f32"}:
        return "i32"
    return "i64"


@functools.lru_cache(maxsize=_CACHE)
def flat_types(t: ValueType) -> tuple[CoreValType, ...]:
    """The core value types that carry ``t`` when flattened (memoised tuple)."""
    prim = _PRIM_FLAT.get(type(t))
    if prim is not None:
        return prim
    if isinstance(t, ListType):
        if t.length is None:
            return ("i32", "i32")
        return flat_types(t.element) * t.length
    if isinstance(t, MapType):
        return flat_types(t.as_list())
    if isinstance(t, _RECORD_LIKE):
        return tuple(ct for ft in record_field_types(t) for ct in flat_types(ft))
    if isinstance(t, _VARIANT_LIKE):
        payload: list[CoreValType] = []
        for case in variant_case_types(t):
            if case is None:
                continue
            for i, ct in enumerate(flat_types(case)):
                if i < len(payload):
                    payload[i] = join(payload[i], ct)
                else:
                    payload.append(ct)
        return ("i32", *payload)
    raise TypeError(f"not a value type: {t!r}")


def flatten_type(t: ValueType) -> list[CoreValType]:
    """The core value types that carry ``t`` when flattened (a fresh list)."""
    return list(flat_types(t))


@functools.lru_cache(maxsize=_CACHE)
def flat_types_of(ts: tuple[ValueType, ...]) -> tuple[CoreValType, ...]:
    """The concatenated flattening of a sequence of types."""
    return tuple(ct for t in ts for ct in flat_types(t))


@frozen
class CoreSig:
    """A core function signature: parameter and result core value types."""

    params: tuple[CoreValType, ...]
    results: tuple[CoreValType, ...]


def flatten_functype(ft: FuncType, options: object, context: Literal["lift", "lower"]) -> CoreSig:
    """The core signature of a lifted or lowered function (CanonicalABI.md "Flattening").

    ``options`` needs ``is_async`` and ``callback`` attributes (a
    :class:`~._options.CanonOptions`).
    """
    is_async = bool(getattr(options, "is_async", False))
    has_callback = getattr(options, "callback", None) is not None
    return _flatten_functype(ft, is_async, has_callback, context)


@functools.lru_cache(maxsize=_CACHE)
def _flatten_functype(
    ft: FuncType, is_async: bool, has_callback: bool, context: Literal["lift", "lower"]
) -> CoreSig:
    params = flat_types_of(ft.param_types())
    results = flat_types_of(ft.result_types())
    if not is_async:
        if len(params) > MAX_FLAT_PARAMS:
            params = ("i32",)
        if len(results) > MAX_FLAT_RESULTS:
            if context == "lift":
                results = ("i32",)
            else:
                params = (*params, "i32")
                results = ()
        return CoreSig(params, results)
    if context == "lift":
        if len(params) > MAX_FLAT_PARAMS:
            params = ("i32",)
        # A callback-lifted export returns a packed callback code; a stackful one nothing.
        return CoreSig(params, ("i32",) if has_callback else ())
    if len(params) > MAX_FLAT_ASYNC_PARAMS:
        params = ("i32",)
    if results:
        params = (*params, "i32")
    # An async lower returns the packed subtask status.
    return CoreSig(params, ("i32",))


@functools.lru_cache(maxsize=_CACHE)
def task_return_sig(result: ValueType | None) -> CoreSig:
    """The core signature of ``task.return`` for ``result`` (CanonicalABI.md ``canon task.return``).

    It is the synchronous lowering of ``(func (param result)?)``: the value
    arrives as parameters, spilled behind one pointer past MAX_FLAT_PARAMS.
    """
    params = () if result is None else flat_types(result)
    if len(params) > MAX_FLAT_PARAMS:
        params = ("i32",)
    return CoreSig(params, ())
