"""Sizes, alignments and flattenings of our ``_abi`` against the specification's definitions."""

from __future__ import annotations

from typing import Any

import _trio_wasi_oracle_adapter as A
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_wasi._abi import (
    MAX_FLAT_ASYNC_PARAMS,
    MAX_FLAT_PARAMS,
    MAX_FLAT_RESULTS,
    U8,
    CanonOptions,
    EnumType,
    FlagsType,
    FuncType,
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

S = A.require_spec()


def spec_opts(*, is_async: bool = False, callback: bool = False) -> Any:
    return S.CanonicalOptions(
        memory=S.MemInst(bytearray(0), "i32"),
        async_=is_async,
        callback=(lambda *a: None) if callback else None,
    )


def test_limits_agree() -> None:
    assert (MAX_FLAT_PARAMS, MAX_FLAT_ASYNC_PARAMS, MAX_FLAT_RESULTS) == (
        S.MAX_FLAT_PARAMS,
        S.MAX_FLAT_ASYNC_PARAMS,
        S.MAX_FLAT_RESULTS,
    )


@settings(deadline=None, max_examples=300)
@given(A.value_types(max_leaves=8))
def test_size_alignment_and_flattening(t: ValueType) -> None:
    st_ = A.spec_type(t)
    assert elem_size(t) == S.elem_size(st_, "i32")
    assert alignment(t) == S.alignment(st_, "i32")
    assert flatten_type(t) == S.flatten_type(st_, spec_opts())


@pytest.mark.parametrize("n", [1, 2, 255, 256, 257, 65535, 65536, 65537, 2**24])
def test_discriminant_type(n: int) -> None:
    ours = discriminant_type(n)
    # The specification only takes the length of the case list.
    assert type(ours).__name__ == type(S.discriminant_type(range(n))).__name__


@pytest.mark.parametrize("n", [1, 8, 9, 16, 17, 32])
def test_flags_size(n: int) -> None:
    assert flags_size(n) == S.elem_size_flags([str(i) for i in range(n)])
    t = FlagsType(tuple(f"f{i}" for i in range(n)))
    assert flatten_type(t) == S.flatten_type(A.spec_type(t), spec_opts()) == ["i32"]


def test_flags_beyond_32_are_rejected_by_both() -> None:
    labels = [f"f{i}" for i in range(33)]
    with pytest.raises(ValueError):
        elem_size(FlagsType(tuple(labels)))
    with pytest.raises(AssertionError):
        S.elem_size_flags(labels)


def test_large_enum_layout() -> None:
    # A u16 discriminant: size and alignment 2.
    t = EnumType(tuple(f"e{i}" for i in range(300)))
    assert (elem_size(t), alignment(t)) == (S.elem_size(A.spec_type(t), "i32"), 2)
    v = VariantType((("a", U8), *((f"e{i}", None) for i in range(300))))
    assert elem_size(v) == S.elem_size(A.spec_type(v), "i32") == 4


@st.composite
def functypes(draw: Any) -> FuncType:
    # Up to 20 small parameters reach past MAX_FLAT_PARAMS; a compound result
    # reaches past MAX_FLAT_RESULTS.
    params = draw(st.lists(A.value_types(max_leaves=3), max_size=20))
    result = draw(st.one_of(st.none(), A.value_types(max_leaves=4)))
    return FuncType(tuple((f"p{i}", t) for i, t in enumerate(params)), result)


@settings(deadline=None, max_examples=120)
@given(
    functypes(),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["lift", "lower"]),
)
def test_flatten_functype(ft: FuncType, is_async: bool, callback: bool, context: str) -> None:
    ours = flatten_functype(
        ft,
        CanonOptions(is_async=is_async, callback=object() if callback else None),
        context,  # type: ignore[arg-type]
    )
    spec = S.flatten_functype(
        spec_opts(is_async=is_async, callback=callback), A.spec_functype(ft), context
    )
    assert list(ours.params) == spec.params
    assert list(ours.results) == spec.results


@settings(deadline=None, max_examples=100)
@given(st.one_of(st.none(), A.value_types(max_leaves=8)))
def test_task_return_signature(result: ValueType | None) -> None:
    # canon task.return takes the result as the parameters of a synchronous lowered function.
    ft = FuncType((("r", result),) if result is not None else ())
    spec = S.flatten_functype(spec_opts(), A.spec_functype(ft), "lower")
    ours = task_return_sig(result)
    assert (list(ours.params), list(ours.results)) == (spec.params, spec.results)
