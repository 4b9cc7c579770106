"""Type-checked linking without the reference validator.

Each component here is loaded with ``validate=False``, so the only thing standing
between a miswired composition and a running instance is the linker's own check
(``trio_wasi/_typecheck.py``).  Every case has a correctly wired twin that links, so
a check that rejected everything would fail too.
"""

from __future__ import annotations

from typing import Any

import pytest

import trio_wasi
from trio_wasi._abi import _types as T
from trio_wasi._engine import wat_to_wasm
from trio_wasi._typecheck import (
    check_func_type,
    check_value_type,
    func_type_mismatch,
    value_type_mismatch,
)


@pytest.fixture(scope="module")
def engine() -> Any:
    return trio_wasi.Engine(use_cache=False)


def load(engine: Any, wat: str) -> Any:
    return trio_wasi.Component.from_bytes(wat_to_wasm(wat), engine=engine, validate=False)


def link(engine: Any, wat: str, linker: Any = None) -> Any:
    """Instantiate (synchronously) and close; return the exports' names."""
    instance = (linker or trio_wasi.Linker(engine)).instantiate_sync(load(engine, wat))
    try:
        return instance.exports
    finally:
        instance.close()


# -- the structural comparison ----------------------------------------------------


def test_function_types_compare_names_types_result_and_asyncness() -> None:
    f = T.FuncType((("x", T.U32),), T.STRING)
    assert func_type_mismatch(f, T.FuncType((("x", T.U32),), T.STRING)) is None
    assert "named `y`" in str(func_type_mismatch(f, T.FuncType((("y", T.U32),), T.STRING)))
    assert "parameter `x`" in str(func_type_mismatch(f, T.FuncType((("x", T.S32),), T.STRING)))
    assert "result" in str(func_type_mismatch(f, T.FuncType((("x", T.U32),), T.U32)))
    assert "has none" in str(func_type_mismatch(f, T.FuncType((("x", T.U32),))))
    assert "async" in str(func_type_mismatch(f, T.FuncType((("x", T.U32),), T.STRING, True)))
    assert "2 parameters" in str(
        func_type_mismatch(f, T.FuncType((("x", T.U32), ("y", T.U32)), T.STRING))
    )


def test_value_types_compare_structurally_and_resources_by_identity() -> None:
    r1, r2 = T.ResourceType("r"), T.ResourceType("r")
    rec = T.RecordType((("a", T.U8), ("b", T.ListType(T.OwnType(r1)))))
    assert (
        value_type_mismatch(rec, T.RecordType((("a", T.U8), ("b", T.ListType(T.OwnType(r1))))))
        is None
    )
    reason = value_type_mismatch(rec, T.RecordType((("a", T.U8), ("b", T.ListType(T.OwnType(r2))))))
    assert reason is not None and reason.startswith("field `b`")
    assert "fields (b, a)" in str(
        value_type_mismatch(rec, T.RecordType((("b", T.U8), ("a", T.U8))))
    )
    variant = T.VariantType((("none", None), ("some", T.U32)))
    assert "payload" in str(
        value_type_mismatch(variant, T.VariantType((("none", T.U8), ("some", T.U32))))
    )
    assert value_type_mismatch(T.OwnType(r1), T.BorrowType(r1)) is not None
    with pytest.raises(trio_wasi.LinkError, match=r"^here: expected u32, found string"):
        check_value_type(T.U32, T.STRING, "here")


def test_check_func_type_words_the_message_for_both_sides() -> None:
    expected = T.FuncType((("x", T.STRING),))
    actual = T.FuncType((("x", T.U32),))
    with pytest.raises(trio_wasi.LinkError) as info:
        check_func_type(
            expected, actual, "import `a#f`", actual_is="host defines", expected_is="it imports"
        )
    assert str(info.value).startswith(
        "import `a#f`: host defines func(x: u32), it imports func(x: string)"
    )
    with pytest.raises(trio_wasi.LinkError, match="found u32, expected func"):
        check_func_type(expected, T.U32, "here")


# -- compositions ----------------------------------------------------------------------


def composed(outer: str, core: str) -> str:
    """A nested component importing ``func(x: u32)``, given a lifted ``func(x: {outer})``."""
    return f"""(component
      (component $inner
        (import "f" (func $f (param "x" u32)))
        (export "ok" (func $f)))
      (core module $m (func (export "f") (param {core})))
      (core instance $i (instantiate $m))
      (func $f (param "x" {outer}) (canon lift (core func $i "f")))
      (instance $x (instantiate $inner (with "f" (func $f))))
      (export "ok" (func $x "ok")))"""


def test_function_argument_must_match_the_import(engine: Any) -> None:
    assert link(engine, composed("u32", "i32")) == {"ok": "func"}
    with pytest.raises(trio_wasi.LinkError) as info:
        link(engine, composed("u64", "i64"))
    message = str(info.value)
    assert message.startswith("instantiation argument `f`: found func(x: u64)")
    assert "expected func(x: u32)" in message


def instance_import(export_type: str, export_name: str = "g") -> str:
    return f"""(component
      (component $inner
        (import "i" (instance $i (export "g" (func (param "x" u32)))))
        (alias export $i "g" (func $g))
        (export "ok" (func $g)))
      (core module $m (func (export "f") (param i32)))
      (core instance $c (instantiate $m))
      (func $f (param "x" {export_type}) (canon lift (core func $c "f")))
      (instance $arg (export "{export_name}" (func $f)))
      (instance $x (instantiate $inner (with "i" (instance $arg))))
      (export "ok" (func $x "ok")))"""


def test_instance_argument_is_checked_export_by_export(engine: Any) -> None:
    assert link(engine, instance_import("u32")) == {"ok": "func"}
    with pytest.raises(trio_wasi.LinkError) as info:
        link(engine, instance_import("s32"))
    message = str(info.value)
    assert message.startswith("instantiation argument `i` export `g`: found func(x: s32)")
    assert "expected func(x: u32)" in message


def test_instance_argument_missing_an_export(engine: Any) -> None:
    with pytest.raises(trio_wasi.LinkError, match=r"argument `i`: .* has no export `g`"):
        link(engine, instance_import("u32", export_name="h"))


def test_argument_of_the_wrong_sort(engine: Any) -> None:
    wat = """(component
      (component $inner (import "i" (instance (export "g" (func)))))
      (core module $m (func (export "f")))
      (core instance $c (instantiate $m))
      (func $f (canon lift (core func $c "f")))
      (instance (instantiate $inner (with "i" (func $f)))))"""
    with pytest.raises(
        trio_wasi.LinkError, match=r"argument `i`: expected a instance, found a func"
    ):
        link(engine, wat)


def resources(*, second: str, func_resource: str) -> str:
    """Two resources $A and $B; the nested component imports `r`, `r2 (eq r)` and `take`."""
    return f"""(component
      (type $A (resource (rep i32)))
      (type $B (resource (rep i32)))
      (component $inner
        (import "r" (type $r (sub resource)))
        (import "r2" (type (eq $r)))
        (import "take" (func (param "h" (own $r))))
        (export "ok" (func 0)))
      (core module $m (func (export "f") (param i32)))
      (core instance $c (instantiate $m))
      (type $own (own {func_resource}))
      (func $take (param "h" $own) (canon lift (core func $c "f")))
      (instance $x (instantiate $inner
        (with "r" (type $A)) (with "r2" (type {second})) (with "take" (func $take))))
      (export "ok" (func $x "ok")))"""


def test_resources_compare_by_identity(engine: Any) -> None:
    assert link(engine, resources(second="$A", func_resource="$A")) == {"ok": "func"}
    with pytest.raises(trio_wasi.LinkError, match=r"argument `r2`: expected the resource type"):
        link(engine, resources(second="$B", func_resource="$A"))
    # `r` stands for $A inside the nested component, so own<$B> is not own<r>.
    with pytest.raises(trio_wasi.LinkError) as info:
        link(engine, resources(second="$A", func_resource="$B"))
    assert str(info.value).startswith("instantiation argument `take`:")
    assert "different resource type" in str(info.value)


def test_sub_resource_import_rejects_a_value_type(engine: Any) -> None:
    wat = """(component
      (type $t u32)
      (component $inner (import "r" (type (sub resource))))
      (instance (instantiate $inner (with "r" (type $t)))))"""
    with pytest.raises(
        trio_wasi.LinkError, match=r"argument `r`: expected a resource type, found u32"
    ):
        link(engine, wat)


# -- host definitions with a declared type ---------------------------------------------

HOST_IMPORT = """(component
  (import "pkg:ns/iface" (instance $h (export "f" (func (param "x" string) (result u32)))))
  (alias export $h "f" (func $f))
  (core module $mem (memory (export "m") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64)))
  (core instance $mi (instantiate $mem))
  (core func $lower (canon lower (func $f) (memory (core memory $mi "m"))))
  (core module $m
    (import "h" "f" (func $f (param i32 i32) (result i32)))
    (import "mi" "m" (memory 1))
    (func (export "call") (result i32) (call $f (i32.const 0) (i32.const 2))))
  (core instance $i (instantiate $m
    (with "h" (instance (export "f" (func $lower))))
    (with "mi" (instance $mi))))
  (func (export "call") (result u32) (canon lift (core func $i "call"))))"""


class Declared:
    """A host definition that carries the WIT function type it was declared with.

    It is both the callable (definitions as plain callables) and has ``bind``
    (definitions bound to an instance's context), so it stands in for either.
    """

    def __init__(self, fn: Any, declared: T.FuncType) -> None:
        self.fn = fn
        self.declared = declared

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def bind(self, context: Any) -> Any:
        return self.fn


def define_declared(linker: Any, fn: Any, declared: T.FuncType) -> None:
    # Straight into the definitions: what the linker's define_* methods store.
    linker._host.functions[linker._key("pkg:ns/iface", "f")] = Declared(fn, declared)


def test_host_definition_of_the_wrong_declared_type(engine: Any) -> None:
    linker = trio_wasi.Linker(engine)
    define_declared(linker, lambda x: 1, T.FuncType((("x", T.U32),), T.U32))
    with pytest.raises(trio_wasi.LinkError) as info:
        link(engine, HOST_IMPORT, linker)
    assert str(info.value).startswith(
        "import `pkg:ns/iface#f`: host defines func(x: u32) -> u32, "
        "the component imports func(x: string) -> u32"
    )


def test_host_definition_of_the_right_declared_type_is_called(engine: Any) -> None:
    seen: list[str] = []

    def f(x: str) -> int:
        seen.append(x)
        return len(x) + 40

    linker = trio_wasi.Linker(engine)
    define_declared(linker, f, T.FuncType((("x", T.STRING),), T.U32))
    instance = linker.instantiate_sync(load(engine, HOST_IMPORT))
    try:
        assert instance.call_sync("call") == 42
    finally:
        instance.close()
    assert seen == ["\x00\x00"]


def test_plain_callable_keeps_the_arity_check(engine: Any) -> None:
    linker = trio_wasi.Linker(engine)
    linker.define_function("pkg:ns/iface", "f", lambda: 1)
    with pytest.raises(trio_wasi.LinkError, match="does not accept 1 arguments"):
        link(engine, HOST_IMPORT, linker)


@pytest.mark.parametrize("ascribed", ["u32", "string"])
def test_ascribed_export_type_must_describe_the_item(engine: Any, ascribed: str) -> None:
    wat = f"""(component
      (core module $m (func (export "f") (param i32)))
      (core instance $i (instantiate $m))
      (func $f (param "x" u32) (canon lift (core func $i "f")))
      (export "f" (func $f) (func (param "x" {ascribed}))))"""
    if ascribed == "u32":
        assert link(engine, wat) == {"f": "func"}
        return
    with pytest.raises(trio_wasi.LinkError) as info:
        link(engine, wat)
    assert str(info.value).startswith("export `f`: found func(x: u32), expected func(x: string)")


def instance_with_resource(func_resource: str) -> str:
    """An instance type exporting a resource and a function over it, satisfied by $A."""
    return f"""(component
      (type $A (resource (rep i32)))
      (type $B (resource (rep i32)))
      (component $inner
        (import "i" (instance $i
          (export "r" (type $r (sub resource)))
          (export "take" (func (param "h" (own $r))))))
        (alias export $i "take" (func $take))
        (export "ok" (func $take)))
      (core module $m (func (export "f") (param i32)))
      (core instance $c (instantiate $m))
      (type $own (own {func_resource}))
      (func $take (param "h" $own) (canon lift (core func $c "f")))
      (instance $arg (export "r" (type $A)) (export "take" (func $take)))
      (instance $x (instantiate $inner (with "i" (instance $arg))))
      (export "ok" (func $x "ok")))"""


def test_instance_type_resources_stand_for_the_exported_resource(engine: Any) -> None:
    # Inside the instance type, `r` is whatever resource the instance exports as
    # "r", so `take` must take that very resource.
    assert link(engine, instance_with_resource("$A")) == {"ok": "func"}
    with pytest.raises(trio_wasi.LinkError) as info:
        link(engine, instance_with_resource("$B"))
    assert str(info.value).startswith("instantiation argument `i` export `take`:")
    assert "different resource type" in str(info.value)
