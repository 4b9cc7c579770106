"""Flat lifting and lowering: values in core wasm parameters and results.

Rules (CanonicalABI.md "Flat Lifting", "Flat Lowering", "Lifting and Lowering
Values"):

* a value travels as the core values of its flattening (:mod:`._layout`);
  lifting reads them from a :class:`CoreValueIter`, lowering appends them;
* core integers are reinterpreted: an i32 carrying a ``u8`` keeps its low 8
  bits, signed types are sign-extended from their width. The iterator accepts
  signed or unsigned core integers, so masking makes both read the same;
  lowering produces unsigned core integers;
* a map travels as the (pointer, length) of its ``list<tuple<K, V>>``;
* a variant is its case index, then the joined payload slots: the chosen
  case's values are coerced to the slot types (an f32 in an i32 or i64 slot
  travels as its bit pattern, an i32 in an i64 slot zero-extended) and unused
  slots are zero;
* a function's parameters or results that flatten to more than ``max_flat``
  core values travel in memory instead, as a tuple behind one i32 pointer:
  lowering allocates it through ``realloc`` (or writes to a caller-supplied
  out-pointer), lifting reads it after checking its alignment and bounds.

Each type compiles once into a flat lifter ``(cx, iter) -> value`` and a flat
lowerer ``(cx, value, out_list) -> None`` (:func:`flat_lifter_for`,
:func:`flat_lowerer_for`).
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

from ._handles import ResourceHandle
from ._layout import (
    CoreValType,
    alignment,
    elem_size,
    flat_types,
    flat_types_of,
    record_field_types,
    variant_case_types,
)
from ._load import (
    char_from_i32,
    checked_range_loader,
    lift_handle_value,
    load_list_from_range,
    loader_for,
)
from ._options import LiftLowerContext
from ._resources import (
    borrow_to_host,
    host_to_borrow,
    host_to_own,
    lift_borrow,
    lift_own,
    lower_borrow,
    own_to_host,
)
from ._shapes import (
    flags_packer,
    flags_unpacker,
    map_from_pairs,
    map_to_pairs,
    record_maker,
    record_splitter,
    variant_maker,
    variant_splitter,
)
from ._store import (
    char_to_i32,
    f32_bits,
    f64_bits,
    lower_handle_value,
    store_list_into_range,
    storer_for,
)
from ._strings import load_string_from_range, store_string_into_range
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
    describe_value_type,
)

__all__ = [
    "CoreValueIter",
    "flat_lifter_for",
    "flat_lowerer_for",
    "lift_flat",
    "lift_flat_values",
    "lower_flat",
    "lower_flat_values",
]

CoreValue = int | float
FlatLifter = Callable[[LiftLowerContext, "CoreValueIter"], Any]
FlatLowerer = Callable[[LiftLowerContext, Any, list[CoreValue]], None]

_CACHE = 4096
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF
_NAN = math.nan
_F32_FROM_BITS = struct.Struct("<I")
_F32 = struct.Struct("<f")


class CoreValueIter:
    """Core values being lifted, consumed in order (the spec's ``CoreValueIter``)."""

    __slots__ = ("i", "values")

    def __init__(self, values: Sequence[CoreValue]) -> None:
        self.values = values
        self.i = 0

    def next(self, t: CoreValType) -> Any:
        """The next core value; ``t`` is the core type the reader expects."""
        i = self.i
        self.i = i + 1
        return self.values[i]

    def done(self) -> bool:
        """Whether every value has been consumed."""
        return self.i == len(self.values)


def f32_from_bits(i: int) -> float:
    """``f32.reinterpret_i32`` with NaN canonicalisation (``decode_i32_as_float``)."""
    f: float = _F32.unpack(_F32_FROM_BITS.pack(i & M32))[0]
    return f if f == f else _NAN


def f64_from_bits(i: int) -> float:
    """``f64.reinterpret_i64`` with NaN canonicalisation (``decode_i64_as_float``)."""
    f: float = struct.unpack("<d", (i & M64).to_bytes(8, "little"))[0]
    return f if f == f else _NAN


# ---------------------------------------------------------------------------
# Flat lifting


def _unsigned_lifter(core: CoreValType, mask: int) -> FlatLifter:
    return lambda cx, vi: vi.next(core) & mask


def _signed_lifter(core: CoreValType, bits: int) -> FlatLifter:
    mask = (1 << bits) - 1
    sign = 1 << (bits - 1)
    return lambda cx, vi: ((vi.next(core) & mask) ^ sign) - sign


def _lift_float(cx: LiftLowerContext, vi: CoreValueIter) -> float:
    f = vi.next("f32")
    return float(f) if f == f else _NAN


def _lift_f64(cx: LiftLowerContext, vi: CoreValueIter) -> float:
    f = vi.next("f64")
    return float(f) if f == f else _NAN


def _lift_string(cx: LiftLowerContext, vi: CoreValueIter) -> str:
    ptr = vi.next("i32") & M32
    tagged = vi.next("i32") & M32
    return load_string_from_range(cx, cx.memory_view(), ptr, tagged)


def _list_lifter(t: ListType) -> FlatLifter:
    element = t.element
    if t.length is not None:
        n = t.length
        lift_elem = flat_lifter_for(element)
        return lambda cx, vi: [lift_elem(cx, vi) for _ in range(n)]

    load_checked = checked_range_loader(element)

    def lift_list(cx: LiftLowerContext, vi: CoreValueIter) -> Any:
        i = vi.i
        vi.i = i + 2
        values: Any = vi.values  # two i32s (CoreValueIter.next, inline)
        return load_checked(cx, cx.memory_view(), values[i] & M32, values[i + 1] & M32)

    return lift_list


def _map_lifter(t: MapType) -> FlatLifter:
    pair = t.pair_type()

    def lift_map(cx: LiftLowerContext, vi: CoreValueIter) -> Any:
        ptr = vi.next("i32") & M32
        length = vi.next("i32") & M32
        return map_from_pairs(load_list_from_range(cx, cx.memory_view(), ptr, length, pair))

    return lift_map


def _record_lifter(t: RecordType | TupleType) -> FlatLifter:
    lifters = tuple(flat_lifter_for(ft) for ft in record_field_types(t))
    if isinstance(t, RecordType):
        fields = tuple((label, lf) for (label, _), lf in zip(t.fields, lifters, strict=True))
        return lambda cx, vi: {label: lf(cx, vi) for label, lf in fields}
    make = record_maker(t)
    return lambda cx, vi: make([lf(cx, vi) for lf in lifters])


def _identity(x: Any) -> Any:
    return x


def _coercion(have: CoreValType, want: CoreValType) -> Callable[[Any], Any]:
    """How a value read from a joined slot of type ``have`` becomes a ``want``."""
    if have == want:
        return _identity
    if want == "f32":
        return f32_from_bits  # from an i32 or i64 slot: the low 32 bits
    if want == "f64":
        return f64_from_bits
    if have == "i64" and want == "i32":
        return lambda x: x & M32
    raise AssertionError(f"no coercion from {have} to {want}")


def _variant_lifter(t: ValueType) -> FlatLifter:
    slots = flat_types(t)[1:]
    width = 1 + len(slots)
    cases = variant_case_types(t)
    n = len(cases)
    make = variant_maker(t)
    # Per case: its lifter, the coercions of its joined slots (None when every
    # slot already has the case's type), and how many slots it reads.
    plans: list[tuple[FlatLifter, tuple[Callable[[Any], Any], ...] | None, int] | None] = []
    for c in cases:
        if c is None:
            plans.append(None)
        else:
            wants = flat_types(c)
            convs = tuple(_coercion(have, want) for have, want in zip(slots, wants, strict=False))
            plain = all(conv is _identity for conv in convs)
            plans.append((flat_lifter_for(c), None if plain else convs, len(convs)))
    case_plans = tuple(plans)

    def lift_variant(cx: LiftLowerContext, vi: CoreValueIter) -> Any:
        # The discriminant and every joined slot are consumed whatever the case.
        start = vi.i
        values: Any = vi.values
        end = start + width
        if end > len(values):
            raise IndexError("fewer core values than the variant's flat type")
        vi.i = end
        i = values[start] & M32
        if i >= n:
            trap("invalid variant discriminant")
        plan = case_plans[i]
        if plan is None:
            return make(i, None)
        lift_case, convs, count = plan
        payload = values[start + 1 : start + 1 + count]
        if convs is not None:
            payload = [conv(x) for conv, x in zip(convs, payload, strict=False)]
        return make(i, lift_case(cx, CoreValueIter(payload)))

    return lift_variant


def _flags_lifter(t: FlagsType) -> FlatLifter:
    unpack = flags_unpacker(t)
    return lambda cx, vi: unpack(vi.next("i32") & M32)


@functools.lru_cache(maxsize=_CACHE)
def flat_lifter_for(t: ValueType) -> FlatLifter:
    """The memoised flat lifter ``(cx, iter) -> value`` of type ``t``."""
    cls = type(t)
    if cls is U8Type:
        return _unsigned_lifter("i32", 0xFF)
    if cls is U16Type:
        return _unsigned_lifter("i32", 0xFFFF)
    if cls is U32Type:
        return _unsigned_lifter("i32", M32)
    if cls is U64Type:
        return _unsigned_lifter("i64", M64)
    if cls is S8Type:
        return _signed_lifter("i32", 8)
    if cls is S16Type:
        return _signed_lifter("i32", 16)
    if cls is S32Type:
        return _signed_lifter("i32", 32)
    if cls is S64Type:
        return _signed_lifter("i64", 64)
    if cls is F32Type:
        return _lift_float
    if cls is F64Type:
        return _lift_f64
    if cls is BoolType:
        return lambda cx, vi: vi.next("i32") & M32 != 0
    if cls is CharType:
        return lambda cx, vi: char_from_i32(vi.next("i32") & M32)
    if cls is StringType:
        return _lift_string
    if isinstance(t, ListType):
        return _list_lifter(t)
    if isinstance(t, MapType):
        return _map_lifter(t)
    if isinstance(t, RecordType | TupleType):
        return _record_lifter(t)
    if isinstance(t, VariantType | EnumType | OptionType | ResultType):
        return _variant_lifter(t)
    if isinstance(t, FlagsType):
        return _flags_lifter(t)
    if isinstance(t, OwnType):
        own = t

        def lift_own_value(cx: LiftLowerContext, vi: CoreValueIter) -> Any:
            i = vi.i
            vi.i = i + 1  # (CoreValueIter.next, inline)
            rep = lift_own(cx, vi.values[i] & M32, own)  # type: ignore[operator]
            if own.resource.instance is None:
                return cx.instance.host_reps.remove(rep)  # (own_to_host's host case, inline)
            return own_to_host(cx, rep, own)

        return lift_own_value
    if isinstance(t, BorrowType):
        borrow = t

        def lift_borrow_value(cx: LiftLowerContext, vi: CoreValueIter) -> Any:
            i = vi.i
            vi.i = i + 1
            rep = lift_borrow(cx, vi.values[i] & M32, borrow)  # type: ignore[operator]
            if borrow.resource.instance is None:
                return cx.instance.host_reps.get(rep)  # (borrow_to_host's host case, inline)
            return borrow_to_host(cx, rep, borrow)

        return lift_borrow_value
    # Streams and futures: lift_handle_value's dispatch, chosen once here
    # (it still reports a context without hooks).
    if isinstance(t, StreamType | FutureType):
        async_t = t
        hook = "lift_stream" if isinstance(t, StreamType) else "lift_future"

        def lift_async_value(cx: LiftLowerContext, vi: CoreValueIter) -> Any:
            i = vi.i
            vi.i = i + 1
            hooks = cx.hooks
            if hooks is None:
                return lift_handle_value(cx, vi.values[i] & M32, async_t)  # type: ignore[operator]
            return getattr(hooks, hook)(cx, vi.values[i] & M32, async_t)  # type: ignore[operator]

        return lift_async_value
    if isinstance(t, ErrorContextType):
        hooked = t

        def lift_hooked(cx: LiftLowerContext, vi: CoreValueIter) -> Any:
            i = vi.i
            vi.i = i + 1
            return lift_handle_value(cx, vi.values[i] & M32, hooked)  # type: ignore[operator]

        return lift_hooked
    raise TypeError(f"not a value type: {t!r}")


def lift_flat(cx: LiftLowerContext, vi: CoreValueIter, t: ValueType) -> Any:
    """Lift one value of type ``t`` from ``vi`` (``lift_flat``)."""
    return flat_lifter_for(t)(cx, vi)


# ---------------------------------------------------------------------------
# Flat lowering

_INT_RANGES: dict[type, tuple[str, int, int, int]] = {
    U8Type: ("u8", 0, 0xFF, M32),
    U16Type: ("u16", 0, 0xFFFF, M32),
    U32Type: ("u32", 0, M32, M32),
    U64Type: ("u64", 0, M64, M64),
    S8Type: ("s8", -(1 << 7), (1 << 7) - 1, M32),
    S16Type: ("s16", -(1 << 15), (1 << 15) - 1, M32),
    S32Type: ("s32", -(1 << 31), (1 << 31) - 1, M32),
    S64Type: ("s64", -(1 << 63), (1 << 63) - 1, M64),
}


def _int_lowerer(name: str, lo: int, hi: int, mask: int) -> FlatLowerer:
    def lower_int(cx: LiftLowerContext, v: Any, out: list[CoreValue]) -> None:
        # (bool is an int subclass, but True is no integer a caller means.)
        if (type(v) is not int and (isinstance(v, bool) or not isinstance(v, int))) or not (
            lo <= v <= hi
        ):
            raise ValueError(f"{v!r} is not a valid {name}")
        out.append(v & mask)

    return lower_int


def _float_lowerer(name: str) -> FlatLowerer:
    def lower_float(cx: LiftLowerContext, v: Any, out: list[CoreValue]) -> None:
        if not isinstance(v, float):
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"{v!r} is not a valid {name}")
            v = float(v)
        out.append(v if v == v else _NAN)

    return lower_float


def _lower_string(cx: LiftLowerContext, v: Any, out: list[CoreValue]) -> None:
    if not isinstance(v, str):
        raise ValueError(f"expected a str for string, got {v!r}")
    out.extend(store_string_into_range(cx, v))


def _list_lowerer(t: ListType) -> FlatLowerer:
    element = t.element
    if t.length is not None:
        n = t.length
        lower_elem = flat_lowerer_for(element)

        def lower_fixed(cx: LiftLowerContext, v: Any, out: list[CoreValue]) -> None:
            if len(v) != n:
                raise ValueError(
                    f"expected {n} elements for {describe_value_type(t)}, got {len(v)}"
                )
            for e in v:
                lower_elem(cx, e, out)

        return lower_fixed
    return lambda cx, v, out: out.extend(store_list_into_range(cx, v, element))


def _map_lowerer(t: MapType) -> FlatLowerer:
    pair = t.pair_type()
    return lambda cx, v, out: out.extend(store_list_into_range(cx, map_to_pairs(v), pair))


def _record_lowerer(t: RecordType | TupleType) -> FlatLowerer:
    lowerers = tuple(flat_lowerer_for(ft) for ft in record_field_types(t))
    split = record_splitter(t)

    def lower_record(cx: LiftLowerContext, v: Any, out: list[CoreValue]) -> None:
        for lw, fv in zip(lowerers, split(v), strict=True):
            lw(cx, fv, out)

    return lower_record


def _widening(have: CoreValType, want: CoreValType) -> Callable[[Any], Any]:
    """How a case's core value of type ``have`` goes into a joined slot of type ``want``."""
    if have == want:
        return _identity
    if have == "f32":
        return f32_bits  # into an i32 or i64 slot
    if have == "f64":
        return f64_bits
    if have == "i32" and want == "i64":
        return _identity  # already an unsigned 32-bit value
    raise AssertionError(f"no widening from {have} to {want}")


def _variant_lowerer(t: ValueType) -> FlatLowerer:
    slots = flat_types(t)[1:]
    zeros = tuple(0.0 if s in ("f32", "f64") else 0 for s in slots)
    split = variant_splitter(t)
    plans: list[tuple[FlatLowerer, tuple[Callable[[Any], Any], ...]] | None] = []
    for c in variant_case_types(t):
        if c is None:
            plans.append(None)
        else:
            haves = flat_types(c)
            convs = tuple(_widening(have, want) for have, want in zip(haves, slots, strict=False))
            plans.append((flat_lowerer_for(c), convs))
    case_plans = tuple(plans)

    def lower_variant(cx: LiftLowerContext, v: Any, out: list[CoreValue]) -> None:
        i, payload = split(v)
        out.append(i)
        plan = case_plans[i]
        if plan is None:
            out.extend(zeros)
            return
        lower_case, convs = plan
        flat: list[CoreValue] = []
        lower_case(cx, payload, flat)
        out.extend([conv(x) for conv, x in zip(convs, flat, strict=True)])
        out.extend(zeros[len(flat) :])

    return lower_variant


def _flags_lowerer(t: FlagsType) -> FlatLowerer:
    pack = flags_packer(t)
    return lambda cx, v, out: out.append(pack(v))


def _lower_bool(cx: LiftLowerContext, v: Any, out: list[CoreValue]) -> None:
    out.append(1 if v else 0)


@functools.lru_cache(maxsize=_CACHE)
def flat_lowerer_for(t: ValueType) -> FlatLowerer:
    """The memoised flat lowerer ``(cx, value, out) -> None`` of type ``t``."""
    cls = type(t)
    rng = _INT_RANGES.get(cls)
    if rng is not None:
        return _int_lowerer(*rng)
    if cls is F32Type:
        return _float_lowerer("f32")
    if cls is F64Type:
        return _float_lowerer("f64")
    if cls is BoolType:
        return _lower_bool
    if cls is CharType:
        return lambda cx, v, out: out.append(char_to_i32(v))
    if cls is StringType:
        return _lower_string
    if isinstance(t, ListType):
        return _list_lowerer(t)
    if isinstance(t, MapType):
        return _map_lowerer(t)
    if isinstance(t, RecordType | TupleType):
        return _record_lowerer(t)
    if isinstance(t, VariantType | EnumType | OptionType | ResultType):
        return _variant_lowerer(t)
    if isinstance(t, FlagsType):
        return _flags_lowerer(t)
    if isinstance(t, OwnType):
        own = t
        resource = own.resource
        # (lower_own, inline: a new owning handle for the representation)
        return lambda cx, v, out: out.append(
            cx.instance.table.add(ResourceHandle(resource, host_to_own(cx, v, own), own=True))
        )
    if isinstance(t, BorrowType):
        borrow = t
        return lambda cx, v, out: out.append(
            lower_borrow(cx, host_to_borrow(cx, v, borrow), borrow)
        )
    if isinstance(t, StreamType | FutureType | ErrorContextType):
        hooked = t
        return lambda cx, v, out: out.append(lower_handle_value(cx, v, hooked))
    raise TypeError(f"not a value type: {t!r}")


def lower_flat(cx: LiftLowerContext, v: Any, t: ValueType) -> list[CoreValue]:
    """Lower ``v`` of type ``t`` to its core values (``lower_flat``)."""
    out: list[CoreValue] = []
    flat_lowerer_for(t)(cx, v, out)
    return out


# ---------------------------------------------------------------------------
# Parameter and result lists (CanonicalABI.md "Lifting and Lowering Values")

ValuesLifter = Callable[[LiftLowerContext, CoreValueIter], list[Any]]
ValuesLowerer = Callable[[LiftLowerContext, Sequence[Any], "CoreValueIter | None"], list[CoreValue]]


def _spill_check(mv: memoryview, ptr: int, align: int, size: int) -> None:
    if ptr & (align - 1):
        trap("unaligned pointer")
    if ptr + size > len(mv):
        trap("pointer out-of-bounds of memory")


@functools.lru_cache(maxsize=_CACHE)
def values_lifter_for(ts: tuple[ValueType, ...], max_flat: int) -> ValuesLifter:
    """The memoised lifter of a parameter or result list (``lift_flat_values``)."""
    if len(flat_types_of(ts)) > max_flat:
        tuple_type = TupleType(ts)
        align = alignment(tuple_type)
        size = elem_size(tuple_type)
        load_tuple = loader_for(tuple_type)

        def lift_spilled(cx: LiftLowerContext, vi: CoreValueIter) -> list[Any]:
            ptr = vi.next("i32") & M32
            mv = cx.memory_view()
            _spill_check(mv, ptr, align, size)
            return list(load_tuple(cx, mv, ptr))

        return lift_spilled
    lifters = tuple(flat_lifter_for(t) for t in ts)
    # Short lists, unrolled (in order: each lifter consumes its core values).
    if len(lifters) == 1:
        (only,) = lifters
        return lambda cx, vi: [only(cx, vi)]
    if len(lifters) == 2:
        first, second = lifters
        return lambda cx, vi: [first(cx, vi), second(cx, vi)]
    if len(lifters) == 3:
        first, second, third = lifters
        return lambda cx, vi: [first(cx, vi), second(cx, vi), third(cx, vi)]
    return lambda cx, vi: [lf(cx, vi) for lf in lifters]


@functools.lru_cache(maxsize=_CACHE)
def values_lowerer_for(ts: tuple[ValueType, ...], max_flat: int) -> ValuesLowerer:
    """The memoised lowerer of a parameter or result list (``lower_flat_values``)."""
    n = len(ts)
    if len(flat_types_of(ts)) > max_flat:
        tuple_type = TupleType(ts)
        align = alignment(tuple_type)
        size = elem_size(tuple_type)
        store_tuple = storer_for(tuple_type)
        # A one-element tuple is laid out as its element (same alignment and
        # size, offset 0): the element's storer stores it, without the split.
        store_only = storer_for(ts[0]) if n == 1 else None

        def lower_spilled(
            cx: LiftLowerContext, vs: Sequence[Any], out_param: CoreValueIter | None
        ) -> list[CoreValue]:
            if len(vs) != n:
                raise ValueError(f"expected {n} values, got {len(vs)}")
            flat: list[CoreValue]
            if out_param is None:
                ptr = cx.allocate(align, size) & M32
                flat = [ptr]
            else:
                i = out_param.i  # (CoreValueIter.next, inline)
                out_param.i = i + 1
                values: Any = out_param.values
                ptr = values[i] & M32
                flat = []
            mv = cx.memory_view()
            # (_spill_check, inline)
            if ptr & (align - 1):
                trap("unaligned pointer")
            if ptr + size > len(mv):
                trap("pointer out-of-bounds of memory")
            if store_only is not None and isinstance(vs, tuple | list):
                store_only(cx, mv, vs[0], ptr)
            else:
                store_tuple(cx, mv, vs, ptr)
            return flat

        return lower_spilled
    lowerers = tuple(flat_lowerer_for(t) for t in ts)

    def lower_values(
        cx: LiftLowerContext, vs: Sequence[Any], out_param: CoreValueIter | None
    ) -> list[CoreValue]:
        if len(vs) != n:
            raise ValueError(f"expected {n} values, got {len(vs)}")
        out: list[CoreValue] = []
        for lw, v in zip(lowerers, vs, strict=True):
            lw(cx, v, out)
        return out

    return lower_values


def lift_flat_values(
    cx: LiftLowerContext,
    max_flat: int,
    values: CoreValueIter | Sequence[CoreValue],
    ts: Sequence[ValueType],
) -> list[Any]:
    """Lift a parameter or result list, from memory past ``max_flat`` core values."""
    vi = values if isinstance(values, CoreValueIter) else CoreValueIter(values)
    return values_lifter_for(tuple(ts), max_flat)(cx, vi)


def lower_flat_values(
    cx: LiftLowerContext,
    max_flat: int,
    vs: Sequence[Any],
    ts: Sequence[ValueType],
    out_param: CoreValueIter | None = None,
) -> list[CoreValue]:
    """Lower a parameter or result list, spilling to memory past ``max_flat`` core values.

    A spilled list goes to fresh memory from ``realloc`` (its pointer is the
    one core value returned) or, with ``out_param``, to the pointer read from
    it (nothing returned).
    """
    return values_lowerer_for(tuple(ts), max_flat)(cx, vs, out_param)
