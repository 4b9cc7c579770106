"""Layout, sizes and flattening of component types (CanonicalABI.md "Alignment" to "Flattening")."""

from __future__ import annotations

import pytest

from trio_wasi._abi import (
    BOOL,
    CHAR,
    F32,
    F64,
    S8,
    S64,
    STRING,
    U8,
    U16,
    U32,
    U64,
    BorrowType,
    CanonOptions,
    CoreSig,
    EnumType,
    FlagsType,
    FuncType,
    ListType,
    OptionType,
    OwnType,
    RecordType,
    ResourceType,
    ResultType,
    StreamType,
    TupleType,
    ValueType,
    VariantType,
    alignment,
    discriminant_type,
    elem_size,
    flags_size,
    flatten_functype,
    flatten_type,
    task_return_sig,
)

R = ResourceType("r")


@pytest.mark.parametrize(
    ("t", "size", "align"),
    [
        (BOOL, 1, 1),
        (S8, 1, 1),
        (U16, 2, 2),
        (U32, 4, 4),
        (S64, 8, 8),
        (F32, 4, 4),
        (F64, 8, 8),
        (CHAR, 4, 4),
        (STRING, 8, 4),
        (ListType(U8), 8, 4),
        (ListType(U16, 3), 6, 2),
        (ListType(F64, 2), 16, 8),
        (OwnType(R), 4, 4),
        (BorrowType(R), 4, 4),
        (StreamType(U8), 4, 4),
        (RecordType((("a", U8), ("b", U32), ("c", U8))), 12, 4),
        (RecordType((("a", U8), ("b", U16))), 4, 2),
        (TupleType((U8, U64)), 16, 8),
        (OptionType(U8), 2, 1),
        (OptionType(U32), 8, 4),
        (OptionType(STRING), 12, 4),
        (ResultType(None, None), 1, 1),
        (ResultType(U64, STRING), 16, 8),
        (EnumType(("a", "b")), 1, 1),
        (EnumType(tuple(f"l{i}" for i in range(257))), 2, 2),
        (VariantType((("a", U8), ("b", None), ("c", F64))), 16, 8),
        (FlagsType(("a",)), 1, 1),
        (FlagsType(tuple(f"f{i}" for i in range(9))), 2, 2),
        (FlagsType(tuple(f"f{i}" for i in range(17))), 4, 4),
        (FlagsType(tuple(f"f{i}" for i in range(32))), 4, 4),
    ],
)
def test_size_and_alignment(t: ValueType, size: int, align: int) -> None:
    assert elem_size(t) == size
    assert alignment(t) == align


def test_discriminant_types() -> None:
    assert discriminant_type(1) == U8
    assert discriminant_type(256) == U8
    assert discriminant_type(257) == U16
    assert discriminant_type(1 << 16) == U16
    assert discriminant_type((1 << 16) + 1) == U32
    with pytest.raises(ValueError, match="cases"):
        discriminant_type(0)


def test_flags_size_limits() -> None:
    assert flags_size(8) == 1
    assert flags_size(16) == 2
    with pytest.raises(ValueError, match="labels"):
        flags_size(33)
    with pytest.raises(ValueError, match="labels"):
        flags_size(0)


@pytest.mark.parametrize(
    ("t", "flat"),
    [
        (BOOL, ["i32"]),
        (U64, ["i64"]),
        (F32, ["f32"]),
        (STRING, ["i32", "i32"]),
        (ListType(U8), ["i32", "i32"]),
        (ListType(F32, 3), ["f32", "f32", "f32"]),
        (RecordType((("a", U8), ("b", F64))), ["i32", "f64"]),
        (OptionType(F32), ["i32", "f32"]),
        # The join rules: i32 with f32 is i32; anything else mixed is i64.
        (VariantType((("a", U32), ("b", F32))), ["i32", "i32"]),
        (VariantType((("a", F32), ("b", F64))), ["i32", "i64"]),
        (VariantType((("a", U32), ("b", U64))), ["i32", "i64"]),
        (ResultType(TupleType((F32, U8)), STRING), ["i32", "i32", "i32"]),
        (VariantType((("a", None), ("b", None))), ["i32"]),
        (FlagsType(("a", "b")), ["i32"]),
        (OwnType(R), ["i32"]),
    ],
)
def test_flatten_type(t: ValueType, flat: list[str]) -> None:
    assert flatten_type(t) == flat


def test_types_hash_by_value_and_resources_by_identity() -> None:
    a = RecordType((("x", ListType(STRING)),))
    b = RecordType((("x", ListType(STRING)),))
    assert a == b and hash(a) == hash(b)
    r1, r2 = ResourceType("r"), ResourceType("r")
    assert OwnType(r1) != OwnType(r2)
    assert OwnType(r1) == OwnType(r1)


def _params(n: int) -> tuple[tuple[str, ValueType], ...]:
    return tuple((f"p{i}", U32) for i in range(n))


def test_flatten_functype_sync() -> None:
    sync = CanonOptions()
    small = FuncType(_params(16), U32)
    assert flatten_functype(small, sync, "lift") == CoreSig(("i32",) * 16, ("i32",))
    big = FuncType(_params(17), STRING)
    # Too many params: one pointer. A multi-value result: returned by pointer
    # when lifted, written through an extra out-pointer parameter when lowered.
    assert flatten_functype(big, sync, "lift") == CoreSig(("i32",), ("i32",))
    assert flatten_functype(big, sync, "lower") == CoreSig(("i32", "i32"), ())
    none = FuncType((), None)
    assert flatten_functype(none, sync, "lower") == CoreSig((), ())


def test_flatten_functype_async() -> None:
    callback = CanonOptions(is_async=True, callback=object())
    stackful = CanonOptions(is_async=True)
    ft = FuncType(_params(5), STRING, is_async=True)
    assert flatten_functype(ft, callback, "lift") == CoreSig(("i32",) * 5, ("i32",))
    assert flatten_functype(ft, stackful, "lift") == CoreSig(("i32",) * 5, ())
    # An async lower takes at most 4 flat params, returns results through an
    # out-pointer and returns the packed subtask status.
    assert flatten_functype(ft, stackful, "lower") == CoreSig(("i32", "i32"), ("i32",))
    small = FuncType(_params(4), None, is_async=True)
    assert flatten_functype(small, stackful, "lower") == CoreSig(("i32",) * 4, ("i32",))


def test_task_return_signature() -> None:
    assert task_return_sig(None) == CoreSig((), ())
    assert task_return_sig(STRING) == CoreSig(("i32", "i32"), ())
    wide = TupleType((U64,) * 17)
    assert task_return_sig(wide) == CoreSig(("i32",), ())
