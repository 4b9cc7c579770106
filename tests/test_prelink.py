"""The pre-linked form of a component (``trio_wasi._link.prelink``).

Pre-linking resolves and type-checks every import once; instantiating from the
pre-linked form only creates stores and core instances.  The ordering claim (every
link error before any wasm runs) is shown by construction: the components below
instantiate a core module whose start function traps *before* the definition that
fails to link, so a linker that ran wasm first would raise :class:`Trap`.
"""

from __future__ import annotations

from typing import Any

import pytest

import trio_wasi
from trio_wasi._engine import wat_to_wasm
from trio_wasi._instance import Instance
from trio_wasi._link import LinkedComponent, prelink

# A core module whose start function traps, instantiated first.
TRAPPING_START = """
  (core module $boom (func $start unreachable) (start $start))
  (core instance (instantiate $boom))
"""


def miswired(outer: str) -> str:
    return f"""(component {TRAPPING_START}
      (component $inner (import "f" (func (param "x" u32))))
      (core module $m (func (export "f") (param i32)))
      (core instance $i (instantiate $m))
      (func $f (param "x" {outer}) (canon lift (core func $i "f")))
      (instance (instantiate $inner (with "f" (func $f)))))"""


HOST_AFTER_START = f"""(component
  (import "pkg:ns/h" (instance $h (export "log" (func (param "n" u32)))))
  {TRAPPING_START})"""

COUNTER = """(component
  (import "pkg:ns/h" (instance $h (export "get" (func (result u32)))))
  (alias export $h "get" (func $get))
  (core func $get_c (canon lower (func $get)))
  (core module $m
    (import "h" "get" (func $get (result i32)))
    (global $n (mut i32) (i32.const 0))
    (func (export "bump") (result i32)
      (global.set $n (i32.add (global.get $n) (call $get)))
      (global.get $n)))
  (core instance $i (instantiate $m (with "h" (instance (export "get" (func $get_c))))))
  (func (export "bump") (result u32) (canon lift (core func $i "bump"))))"""


@pytest.fixture(scope="module")
def engine() -> Any:
    return trio_wasi.Engine(use_cache=False)


def load(engine: Any, wat: str) -> Any:
    return trio_wasi.Component.from_bytes(wat_to_wasm(wat), engine=engine, validate=False)


def counter_linker(engine: Any, step: int) -> Any:
    linker = trio_wasi.Linker(engine)
    linker.define_function("pkg:ns/h", "get", lambda: step)
    return linker


def test_type_mismatch_is_reported_before_any_start_function_runs(engine: Any) -> None:
    linker = trio_wasi.Linker(engine)
    # Correctly wired, the start function runs and traps...
    with pytest.raises(trio_wasi.Trap, match="unreachable"):
        linker.instantiate_sync(load(engine, miswired("u32")))
    # ...miswired, linking fails first, so it never runs.
    with pytest.raises(trio_wasi.LinkError, match=r"^instantiation argument `f`"):
        linker.instantiate_sync(load(engine, miswired("u64")))


def test_missing_host_import_is_reported_by_prelink(engine: Any) -> None:
    component = load(engine, HOST_AFTER_START)
    linker = trio_wasi.Linker(engine)
    with pytest.raises(trio_wasi.LinkError, match=r"missing import `pkg:ns/h#log`"):
        prelink(component, linker._host)
    linker.define_function("pkg:ns/h", "log", lambda n: None)
    assert isinstance(prelink(component, linker._host), LinkedComponent)
    with pytest.raises(trio_wasi.Trap, match="unreachable"):
        linker.instantiate_sync(component)


async def test_instances_of_one_linked_component_are_independent(engine: Any) -> None:
    linked = prelink(load(engine, COUNTER), counter_linker(engine, 5)._host)
    linker = trio_wasi.Linker(engine)  # its own (empty) definitions play no part
    async with linker.instantiate(linked) as one, linker.instantiate(linked) as two:
        assert await one.call("bump") == 5
        assert await one.call("bump") == 10
        assert await two.call("bump") == 5
    sync = linker.instantiate_sync(linked)
    try:
        assert sync.call_sync("bump") == 5
    finally:
        sync.close()


def test_linked_form_is_cached_per_definitions(engine: Any) -> None:
    component = load(engine, COUNTER)
    linker = counter_linker(engine, 1)
    first = prelink(component, linker._host)
    assert prelink(component, linker._host) is first
    # A new definition under the same name is a different set of definitions.
    linker.define_function("pkg:ns/h", "get", lambda: 2)
    second = prelink(component, linker._host)
    assert second is not first
    # Another linker holding the very same callables shares the cached form.
    other = trio_wasi.Linker(engine)
    other._host.functions.update(linker._host.functions)
    assert prelink(component, other._host) is second


def test_linked_form_keeps_the_definitions_it_was_checked_with(engine: Any) -> None:
    component = load(engine, COUNTER)
    linker = counter_linker(engine, 3)
    linked = prelink(component, linker._host)
    linker.define_function("pkg:ns/h", "get", lambda: 100)
    for source, expected in ((linked, 3), (component, 100)):
        instance = linker.instantiate_sync(source)
        try:
            assert instance.call_sync("bump") == expected
        finally:
            instance.close()


def test_core_module_names_match_wasmtime_py(engine: Any) -> None:
    from trio_wasi._engine import module_names

    module = engine.compile(
        wat_to_wasm(
            """(module
              (import "a" "f" (func (param i32)))
              (import "a" "m" (memory 1))
              (import "b" "" (global i64))
              (import "b" "t\\u{e9}" (table 1 funcref))
              (func (export "g"))
              (memory (export "mem") 1)
              (export "f-again" (func 0)))"""
        )
    )
    imports, exports = module_names(module)
    assert imports == tuple((imp.module, imp.name) for imp in module.imports)
    assert imports == (("a", "f"), ("a", "m"), ("b", ""), ("b", "té"))
    assert exports == {exp.name for exp in module.exports} == {"g", "mem", "f-again"}


BLOCKING_THEN_TRAPPING = f"""(component
  (core module $mm (memory (export "m") 1))
  (core instance $mi (instantiate $mm))
  (alias core export $mi "m" (core memory $mem))
  (core func (canon waitable-set.wait (memory $mem)))
  {TRAPPING_START})"""


def test_may_block_is_reported_before_any_wasm_runs(engine: Any) -> None:
    component = load(engine, BLOCKING_THEN_TRAPPING)
    linker = trio_wasi.Linker(engine)
    assert prelink(component, linker._host).may_block == ("waitable-set.wait",)
    # Inline only: refused up front, so the trapping start function never runs.
    with pytest.raises(trio_wasi.Error, match=r"may block \(waitable-set.wait\)"):
        linker.instantiate_sync(component)
    # Allowed to use a store thread, it gets as far as running the start function.
    with pytest.raises(trio_wasi.Trap, match="unreachable"):
        Instance._create(component, linker._host, threaded_ok=True)
