"""Values of every type through memory and through flat core values."""

from __future__ import annotations

import functools
import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_wasi._abi import (
    BOOL,
    CHAR,
    F32,
    F64,
    S8,
    S16,
    S32,
    S64,
    STRING,
    U8,
    U16,
    U32,
    U64,
    BorrowScope,
    BytesMemory,
    CanonOptions,
    CoreValueIter,
    EnumType,
    Err,
    FlagsType,
    InstanceState,
    LiftLowerContext,
    ListType,
    Ok,
    OptionType,
    RecordType,
    ResultType,
    Some,
    StreamType,
    TupleType,
    ValueType,
    Variant,
    VariantType,
    alignment,
    elem_size,
    lift_flat,
    lift_flat_values,
    load,
    lower_flat,
    lower_flat_values,
    store,
)
from trio_wasi._errors import Trap


class Env:
    """A memory with a bump allocator standing in for the guest's realloc."""

    def __init__(self, encoding: str = "utf8", pages: int = 1) -> None:
        self.memory = BytesMemory(pages * 65536)
        self.top = 16
        self.calls: list[tuple[int, int, int, int]] = []
        options = CanonOptions(
            memory=self.memory,
            string_encoding=encoding,  # type: ignore[arg-type]
            realloc=self.realloc,
        )
        self.cx = LiftLowerContext(options, InstanceState(), BorrowScope())

    def realloc(self, old: int, old_size: int, align: int, new_size: int) -> int:
        self.calls.append((old, old_size, align, new_size))
        ptr = (self.top + align - 1) & -align
        self.top = ptr + new_size
        if self.top > len(self.memory):
            self.memory.grow((self.top - len(self.memory)) // 65536 + 1)
        if old:
            n = min(old_size, new_size)
            view = self.memory.view()
            view[ptr : ptr + n] = bytes(view[old : old + n])
        return ptr


def roundtrip_memory(env: Env, v: Any, t: ValueType) -> Any:
    ptr = env.realloc(0, 0, alignment(t), elem_size(t))
    store(env.cx, v, t, ptr)
    return load(env.cx, ptr, t)


def roundtrip_flat(env: Env, v: Any, t: ValueType) -> Any:
    flat = lower_flat(env.cx, v, t)
    vi = CoreValueIter(flat)
    out = lift_flat(env.cx, vi, t)
    assert vi.done()
    return out


SAMPLES: list[tuple[ValueType, Any]] = [
    (BOOL, True),
    (BOOL, False),
    (S8, -128),
    (U8, 255),
    (S16, -32768),
    (U16, 65535),
    (S32, -(2**31)),
    (U32, 2**32 - 1),
    (S64, -(2**63)),
    (U64, 2**64 - 1),
    (F32, 1.5),
    (F32, -math.inf),
    (F64, 1e300),
    (CHAR, "\U0010ffff"),
    (CHAR, "\ud7ff"),
    (STRING, "héllo, wörld €"),
    (ListType(U8), b"\x00\x01\xff"),
    (ListType(STRING), ["a", "", "ü"]),
    (ListType(U32), [1, 2, 3]),
    (ListType(F64), [0.5, -2.0]),
    (ListType(BOOL), [True, False]),
    (ListType(U16, 3), [1, 2, 3]),
    (ListType(U8, 2), [7, 8]),
    (ListType(ListType(S8)), [[-1], [], [1, 2]]),
    (RecordType((("x", U8), ("y", STRING), ("z", F64))), {"x": 1, "y": "s", "z": 2.5}),
    (TupleType((U8, STRING, S64)), (1, "t", -5)),
    (VariantType((("a", U8), ("b", None), ("c", STRING))), Variant("c", "payload")),
    (VariantType((("a", U8), ("b", None), ("c", STRING))), Variant("b")),
    (EnumType(("red", "green", "blue")), "blue"),
    (OptionType(STRING), None),
    (OptionType(STRING), "x"),
    (OptionType(OptionType(U8)), Some(None)),
    (OptionType(OptionType(U8)), Some(3)),
    (OptionType(OptionType(U8)), None),
    (ResultType(U32, STRING), Ok(5)),
    (ResultType(U32, STRING), Err("bad")),
    (ResultType(None, None), Ok()),
    (ResultType(None, None), Err()),
    (FlagsType(("a", "b", "c")), frozenset({"a", "c"})),
    (FlagsType(tuple(f"f{i}" for i in range(32))), frozenset({"f0", "f31"})),
    (FlagsType(("a",)), frozenset()),
]


@pytest.mark.parametrize(("t", "v"), SAMPLES)
def test_roundtrip_memory(t: ValueType, v: Any) -> None:
    assert roundtrip_memory(Env(), v, t) == v


@pytest.mark.parametrize(("t", "v"), SAMPLES)
def test_roundtrip_flat(t: ValueType, v: Any) -> None:
    assert roundtrip_flat(Env(), v, t) == v


def test_list_u8_accepts_bytes_likes() -> None:
    env = Env()
    t = ListType(U8)
    for v in (bytearray(b"ab"), memoryview(b"ab"), [97, 98]):
        assert roundtrip_flat(env, v, t) == b"ab"
    with pytest.raises(ValueError, match="list<u8>"):
        lower_flat(env.cx, [256], t)


def test_flags_accept_any_iterable() -> None:
    t = FlagsType(("a", "b"))
    assert roundtrip_flat(Env(), ["b"], t) == frozenset({"b"})
    with pytest.raises(ValueError, match="'z' is not a label"):
        lower_flat(Env().cx, {"z"}, t)


def test_option_accepts_some_for_any_payload() -> None:
    assert roundtrip_flat(Env(), Some(4), OptionType(U8)) == 4


@pytest.mark.parametrize(
    ("t", "v"),
    [
        (U8, 256),
        (U8, -1),
        (S8, 128),
        (U32, 2**32),
        (S64, 2**63),
        (U64, -1),
        (U16, 1.0),
        (F32, "x"),
        (CHAR, "ab"),
        (CHAR, "\ud800"),
        (STRING, b"bytes"),
        (EnumType(("a",)), "b"),
        (VariantType((("a", None),)), Variant("z")),
        (VariantType((("a", None),)), "a"),
        (ResultType(U8, U8), 3),
        (RecordType((("x", U8),)), {"y": 1}),
        (RecordType((("x", U8),)), {"x": 1, "y": 1}),
        (ListType(U8), 5),
        (ListType(U8), "ab"),
        (TupleType((U8, U8)), (1,)),
        (ListType(U8, 2), [1, 2, 3]),
        (U8, True),
        (S64, False),
        (U32, 1.0),
    ],
)
def test_bad_host_values_raise_value_error(t: ValueType, v: Any) -> None:
    env = Env()
    with pytest.raises(ValueError):
        lower_flat(env.cx, v, t)
    with pytest.raises(ValueError):
        store(env.cx, v, t, 64)


def test_value_errors_name_the_type() -> None:
    with pytest.raises(ValueError, match="not a valid u8"):
        lower_flat(Env().cx, 300, U8)
    with pytest.raises(ValueError, match="not a valid s16"):
        store(Env().cx, 40000, S16, 0)


def test_value_errors_write_types_as_wit() -> None:
    # A user reads these: the type as WIT writes it, not a Python repr.
    point = RecordType((("x", U8), ("y", ListType(STRING))))
    with pytest.raises(ValueError) as info:
        lower_flat(Env().cx, [1, 2], point)
    assert str(info.value) == "expected a dict for record { x: u8, y: list<string> }, got [1, 2]"
    with pytest.raises(ValueError) as info:
        lower_flat(Env().cx, {"x": 1, "y": [], "z": 0, "w": 0}, point)
    assert str(info.value) == (
        "record value has fields record { x: u8, y: list<string> } does not: w, z"
    )
    with pytest.raises(ValueError, match=r"for result<u8, _>, got 3"):
        lower_flat(Env().cx, 3, ResultType(U8, None))
    with pytest.raises(ValueError, match=r"is not a case of variant \{ a, b\(u32\) \}"):
        lower_flat(Env().cx, Variant("c"), VariantType((("a", None), ("b", U32))))


def test_an_int_is_not_a_list_of_bytes() -> None:
    # bytes(5) is five zero bytes; as a list<u8> value it is a mistake.
    with pytest.raises(ValueError, match="5 is not a valid list<u8>"):
        lower_flat(Env().cx, 5, ListType(U8))


# ---------------------------------------------------------------------------
# Core values coming from wasm


@pytest.mark.parametrize(
    ("t", "core", "value"),
    [
        (U8, 0x1FF, 0xFF),  # only the low bits count
        (S8, 0xFF, -1),
        (S8, -1, -1),  # engines may hand over signed i32s
        (S16, 0x8000, -32768),
        (U32, -1, 2**32 - 1),
        (S32, 0xFFFFFFFF, -1),
        (S64, 2**64 - 1, -1),
        (U64, -1, 2**64 - 1),
        (BOOL, 2, True),  # any non-zero i32 is true
        (BOOL, -1, True),
        (BOOL, 0, False),
    ],
)
def test_lift_reinterprets_core_integers(t: ValueType, core: int, value: Any) -> None:
    assert lift_flat(Env().cx, CoreValueIter([core]), t) == value


def test_lower_produces_unsigned_core_integers() -> None:
    cx = Env().cx
    assert lower_flat(cx, -1, S8) == [0xFFFFFFFF]
    assert lower_flat(cx, -1, S64) == [2**64 - 1]


def test_bool_in_memory_is_any_nonzero_byte() -> None:
    env = Env()
    env.memory.view()[40] = 7
    assert load(env.cx, 40, BOOL) is True


def test_nan_is_canonicalised() -> None:
    env = Env()
    view = env.memory.view()
    struct.pack_into("<I", view, 0, 0xFFC00001)  # a NaN with sign and payload
    assert math.isnan(load(env.cx, 0, F32))
    store(env.cx, float("-nan"), F32, 8)
    assert struct.unpack_from("<I", env.memory.view(), 8)[0] == 0x7FC00000
    store(env.cx, -math.nan, F64, 16)
    assert struct.unpack_from("<Q", env.memory.view(), 16)[0] == 0x7FF8000000000000
    assert math.isnan(lift_flat(env.cx, CoreValueIter([math.nan]), F64))


def test_f32_out_of_range_rounds_to_infinity() -> None:
    env = Env()
    store(env.cx, 1e300, F32, 0)
    assert load(env.cx, 0, F32) == math.inf


def test_variant_joined_slots_carry_float_bits() -> None:
    env = Env()
    t = VariantType((("i", U32), ("f", F32), ("d", F64), ("w", U64)))
    # f32 in an i64 slot travels as its bit pattern.
    assert lower_flat(env.cx, Variant("f", 1.0), t) == [1, 0x3F800000]
    assert lower_flat(env.cx, Variant("d", 1.0), t) == [2, 0x3FF0000000000000]
    assert lower_flat(env.cx, Variant("i", 7), t) == [0, 7]
    # Lifting takes the low 32 bits of the i64 slot for an i32 case.
    assert lift_flat(env.cx, CoreValueIter([0, 2**32 + 7]), t) == Variant("i", 7)
    assert lift_flat(env.cx, CoreValueIter([1, 0x3F800000]), t) == Variant("f", 1.0)
    # Unused slots are zero of their core type.
    two = VariantType((("a", None), ("b", TupleType((F32, F64)))))
    assert lower_flat(env.cx, Variant("a"), two) == [0, 0.0, 0.0]
    assert roundtrip_flat(env, Variant("b", (0.5, 0.25)), two) == Variant("b", (0.5, 0.25))


# ---------------------------------------------------------------------------
# Traps


def test_invalid_char_traps() -> None:
    env = Env()
    for code in (0xD800, 0xDFFF, 0x110000):
        with pytest.raises(Trap, match="invalid `char` bit pattern"):
            lift_flat(env.cx, CoreValueIter([code]), CHAR)
    struct.pack_into("<I", env.memory.view(), 0, 0xD800)
    with pytest.raises(Trap, match="invalid `char` bit pattern"):
        load(env.cx, 0, CHAR)


def test_bad_discriminant_traps() -> None:
    env = Env()
    t = VariantType((("a", U8), ("b", None)))
    with pytest.raises(Trap, match="invalid variant discriminant"):
        lift_flat(env.cx, CoreValueIter([2, 0]), t)
    env.memory.view()[0] = 2
    with pytest.raises(Trap, match="invalid variant discriminant"):
        load(env.cx, 0, t)
    with pytest.raises(Trap, match="invalid variant discriminant"):
        lift_flat(env.cx, CoreValueIter([3]), EnumType(("x", "y", "z")))
    with pytest.raises(Trap, match="invalid variant discriminant"):
        lift_flat(env.cx, CoreValueIter([2, 0]), OptionType(U8))


def test_unaligned_and_out_of_bounds_traps() -> None:
    env = Env()
    with pytest.raises(Trap, match="unaligned pointer"):
        load(env.cx, 2, U32)
    with pytest.raises(Trap, match="out-of-bounds"):
        load(env.cx, 65536, U32)
    with pytest.raises(Trap, match="unaligned pointer"):
        store(env.cx, 1, U64, 4)
    t = ListType(U32)
    with pytest.raises(Trap, match="unaligned pointer"):
        lift_flat(env.cx, CoreValueIter([2, 1]), t)
    with pytest.raises(Trap, match="list content out-of-bounds"):
        lift_flat(env.cx, CoreValueIter([65532, 2]), t)
    with pytest.raises(Trap, match="list content out-of-bounds"):
        lift_flat(env.cx, CoreValueIter([0, 2**27]), ListType(U64))


def test_realloc_results_are_checked() -> None:
    env = Env()
    cx = LiftLowerContext(
        CanonOptions(memory=env.memory, realloc=lambda *a: 2), InstanceState(), None
    )
    with pytest.raises(Trap, match=r"unaligned pointer.*realloc return: result not aligned"):
        lower_flat(cx, [1, 2], ListType(U32))
    oob = LiftLowerContext(
        CanonOptions(memory=env.memory, realloc=lambda *a: -4), InstanceState(), None
    )
    with pytest.raises(Trap, match="realloc return: beyond end of memory"):
        lower_flat(oob, [], ListType(U32))
    with pytest.raises(Trap, match="realloc return: beyond end of memory"):
        lower_flat(oob, "x", STRING)


def test_realloc_may_not_leave() -> None:
    env = Env()
    seen: list[bool] = []

    def realloc(*args: int) -> int:
        seen.append(env.cx.instance.may_leave)
        return env.realloc(*args)

    cx = LiftLowerContext(CanonOptions(memory=env.memory, realloc=realloc), env.cx.instance, None)
    lower_flat(cx, "abc", STRING)
    assert seen == [False]
    assert env.cx.instance.may_leave


# ---------------------------------------------------------------------------
# Parameter and result lists


def test_values_within_the_limit_stay_flat() -> None:
    env = Env()
    ts = [U32] * 16
    flat = lower_flat_values(env.cx, 16, list(range(16)), ts)
    assert flat == list(range(16))
    assert lift_flat_values(env.cx, 16, CoreValueIter(flat), ts) == list(range(16))
    assert env.calls == []


def test_values_past_the_limit_spill_through_realloc() -> None:
    env = Env()
    ts: list[ValueType] = [U8, STRING, F64] * 6  # 24 flat values
    vs = [1, "spill", 2.5] * 6
    flat = lower_flat_values(env.cx, 16, vs, ts)
    assert len(flat) == 1
    tuple_type = TupleType(tuple(ts))
    assert env.calls[0] == (0, 0, alignment(tuple_type), elem_size(tuple_type))
    assert lift_flat_values(env.cx, 16, CoreValueIter(flat), ts) == vs


def test_results_spill_to_the_out_pointer() -> None:
    env = Env()
    ts = [STRING]
    flat = lower_flat_values(env.cx, 1, ["out"], ts, CoreValueIter([64]))
    assert flat == []
    assert lift_flat_values(env.cx, 1, [64], ts) == ["out"]
    with pytest.raises(Trap, match="unaligned pointer"):
        lower_flat_values(env.cx, 1, ["out"], ts, CoreValueIter([66]))
    with pytest.raises(Trap, match="unaligned pointer"):
        lift_flat_values(env.cx, 1, [66], ts)
    with pytest.raises(Trap, match="out-of-bounds"):
        lift_flat_values(env.cx, 1, [65532], ts)


def test_lowering_survives_memory_growth() -> None:
    env = Env()
    env.top = 65536 - 8  # the next allocation grows (and moves) the memory
    t = RecordType((("s", STRING), ("n", U32), ("l", ListType(STRING))))
    v = {"s": "x" * 100, "n": 7, "l": ["y" * 70000, "z"]}
    assert roundtrip_memory(env, v, t) == v
    assert len(env.memory) > 65536


def test_async_value_types_need_hooks() -> None:
    with pytest.raises(NotImplementedError, match="StreamType"):
        lift_flat(Env().cx, CoreValueIter([1]), StreamType(U8))
    with pytest.raises(NotImplementedError, match="StreamType"):
        lower_flat(Env().cx, object(), StreamType(U8))


# ---------------------------------------------------------------------------
# Random types and values

_LABEL = st.text(alphabet="abcdefgh", min_size=1, max_size=6)
_PRIMS = st.sampled_from([BOOL, S8, U8, S16, U16, S32, U32, S64, U64, F32, F64, CHAR, STRING])


def _compound(children: st.SearchStrategy[ValueType]) -> st.SearchStrategy[ValueType]:
    labels = st.lists(_LABEL, min_size=1, max_size=4, unique=True)
    return st.one_of(
        st.builds(ListType, children),
        st.builds(ListType, children, st.integers(1, 3)),
        labels.flatmap(
            lambda ls: st.tuples(*[children] * len(ls)).map(
                lambda ts: RecordType(tuple(zip(ls, ts, strict=True)))
            )
        ),
        st.lists(children, min_size=1, max_size=3).map(lambda ts: TupleType(tuple(ts))),
        labels.flatmap(
            lambda ls: st.tuples(*[st.none() | children] * len(ls)).map(
                lambda ts: VariantType(tuple(zip(ls, ts, strict=True)))
            )
        ),
        labels.map(lambda ls: EnumType(tuple(ls))),
        st.builds(OptionType, children),
        st.builds(ResultType, st.none() | children, st.none() | children),
        labels.map(lambda ls: FlagsType(tuple(ls))),
    )


TYPES = st.recursive(_PRIMS, _compound, max_leaves=6)

_INT_BOUNDS = {
    S8: (-(2**7), 2**7 - 1),
    U8: (0, 2**8 - 1),
    S16: (-(2**15), 2**15 - 1),
    U16: (0, 2**16 - 1),
    S32: (-(2**31), 2**31 - 1),
    U32: (0, 2**32 - 1),
    S64: (-(2**63), 2**63 - 1),
    U64: (0, 2**64 - 1),
}


def values_of(t: ValueType) -> st.SearchStrategy[Any]:
    if t in _INT_BOUNDS:
        return st.integers(*_INT_BOUNDS[t])
    if t == BOOL:
        return st.booleans()
    if t == F32:
        return st.floats(width=32, allow_nan=False)
    if t == F64:
        return st.floats(allow_nan=False)
    if t == CHAR:
        return st.characters(exclude_categories=["Cs"])
    if t == STRING:
        return st.text(max_size=8)
    if isinstance(t, ListType):
        if t.length is not None:
            return st.lists(values_of(t.element), min_size=t.length, max_size=t.length)
        if t.element == U8:
            return st.binary(max_size=8)
        return st.lists(values_of(t.element), max_size=3)
    if isinstance(t, RecordType):
        return st.fixed_dictionaries({label: values_of(ft) for label, ft in t.fields})
    if isinstance(t, TupleType):
        return st.tuples(*[values_of(ft) for ft in t.types])
    if isinstance(t, VariantType):
        return st.one_of(
            *[
                st.just(Variant(label))
                if ct is None
                else values_of(ct).map(functools.partial(Variant, label))
                for label, ct in t.cases
            ]
        )
    if isinstance(t, EnumType):
        return st.sampled_from(t.labels)
    if isinstance(t, OptionType):
        some = values_of(t.type)
        if isinstance(t.type, OptionType):
            some = some.map(Some)
        return st.none() | some
    if isinstance(t, ResultType):
        ok = st.just(Ok()) if t.ok is None else values_of(t.ok).map(Ok)
        err = st.just(Err()) if t.error is None else values_of(t.error).map(Err)
        return ok | err
    if isinstance(t, FlagsType):
        return st.frozensets(st.sampled_from(t.labels))
    raise AssertionError(t)


@settings(max_examples=300, deadline=None)
@given(st.data(), TYPES, st.sampled_from(["utf8", "utf16", "latin1+utf16"]))
def test_random_roundtrips(data: st.DataObject, t: ValueType, encoding: str) -> None:
    v = data.draw(values_of(t))
    env = Env(encoding)
    assert roundtrip_memory(env, v, t) == v
    assert roundtrip_flat(env, v, t) == v
    ts = [t] * 9  # past MAX_FLAT_PARAMS for most compound types
    assert lift_flat_values(env.cx, 16, lower_flat_values(env.cx, 16, [v] * 9, ts), ts) == [v] * 9
