"""Core exports fetched by name, raw externs and export references as imports."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import wasmtime

from trio_wasi._engine import Engine, Store
from trio_wasi._errors import LinkError

PROVIDER = """
(module
  (memory (export "mem") 1)
  (global (export "seven") i32 (i32.const 7))
  (func (export "get") (result i32) (i32.const 42))
  (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0))))
"""

USER = """
(module
  (import "p" "get" (func $get (result i32)))
  (import "p" "mem" (memory 1))
  (import "p" "seven" (global $seven i32))
  (func (export "sum") (result i32) (i32.add (call $get) (global.get $seven)))
  (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1))))
"""


@pytest.fixture
def store() -> Any:
    with Store(Engine(use_cache=False)) as store:
        yield store


def compile_wat(store: Store, wat: str) -> Any:
    return store.engine.compile(bytes(wasmtime.wat2wasm(wat)))


def ref(store: Store, instance: Any, name: str) -> Any:
    return (instance, store.instance_address(instance), name.encode())


def test_export_by_name_and_missing_name(store: Store) -> None:
    provider = store.instantiate(compile_wat(store, PROVIDER), [])
    get = store.export(provider, "get")
    assert get is not None and store.export(provider, "nope") is None
    assert store.raw_func(get, [], ["i32"])() == 42


def test_references_and_raw_externs_wire_one_instance_into_another(store: Store) -> None:
    provider = store.instantiate(compile_wat(store, PROVIDER), [])
    imports = [
        ref(store, provider, "get"),  # looked up straight into the import array
        store.export(provider, "mem"),  # a raw extern
        store.wrap(ref(store, provider, "seven")),  # a wasmtime-py object
    ]
    user = store.instantiate(compile_wat(store, USER), imports)
    assert store.raw_func(store.export(user, "sum"), [], ["i32"])() == 49
    # The memory is shared, not copied: a write through one is read through the other.
    store.raw_func(store.export(user, "poke"), ["i32", "i32"], [])(5, 99)
    assert store.raw_func(store.wrap(ref(store, provider, "load")), ["i32"], ["i32"])(5) == 99


def test_a_reference_keeps_its_instance_handle_alive(store: Store) -> None:
    r = ref(store, store.instantiate(compile_wat(store, PROVIDER), []), "get")
    gc.collect()
    # Handles of instances without a "get" export, allocated after the provider's
    # Python object would have died without the reference: one of them would
    # likely reuse the address the reference points at.
    empty = compile_wat(store, "(module)")
    others = [store.instantiate(empty, []) for _ in range(50)]
    assert store.raw_func(store.wrap(r), [], ["i32"])() == 42
    assert all(store.export(o, "get") is None for o in others)


def test_missing_referenced_export_is_a_link_error(store: Store) -> None:
    provider = store.instantiate(compile_wat(store, PROVIDER), [])
    imports = [ref(store, provider, "absent"), store.export(provider, "mem"), None]
    with pytest.raises(LinkError, match="no export 'absent'"):
        store.instantiate(compile_wat(store, USER), imports)
    with pytest.raises(LinkError, match="no export 'absent'"):
        store.wrap(ref(store, provider, "absent"))
