"""Resolved types are shared between resolutions when they can be."""

from __future__ import annotations

from trio_wasi._abi import _types as T
from trio_wasi._binary import _model as M
from trio_wasi._resolve import TypeSpace, resolve_deftype


def _error_and_result(space: TypeSpace) -> T.ResultType:
    # type 0: variant { a, b(string) }; type 1: result<u32, type 0>
    space.types.append(resolve_deftype(space, M.VariantDef((("a", None), ("b", M.Prim.STRING)))))
    result = resolve_deftype(space, M.Result(M.Prim.U32, M.TypeIndex(0)))
    space.types.append(result)
    return result


def test_equal_types_resolved_apart_are_one_object() -> None:
    first = _error_and_result(TypeSpace())
    second = _error_and_result(TypeSpace())
    assert first == second
    assert first is second
    assert first.error is second.error


def test_types_of_a_guest_resource_are_not_shared() -> None:
    owner = object()
    results = []
    for _ in range(2):
        space = TypeSpace(types=[T.ResourceType("r", instance=owner)])  # type: ignore[arg-type]
        own = resolve_deftype(space, M.Own(0))
        space.types.append(own)
        results.append(resolve_deftype(space, M.Option(M.TypeIndex(1))))
    # Distinct resource types: unequal, and nothing to share.
    assert results[0] != results[1]
    again = TypeSpace(types=[results[0].type.resource])
    own = resolve_deftype(again, M.Own(0))
    assert own == results[0].type
    assert own is not results[0].type


def test_host_resource_types_are_shared() -> None:
    host = T.ResourceType("fields")
    owns = [resolve_deftype(TypeSpace(types=[host]), M.Own(0)) for _ in range(2)]
    assert owns[0] is owns[1]
