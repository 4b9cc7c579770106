"""CoreExports: a core instance's exports fetched by name, one object per export."""

from __future__ import annotations

import pytest
import wasmtime

from trio_wasi._engine._exports import CoreExports

WAT = """
(module
  (func (export "one") (result i32) i32.const 1)
  (func (export "two") (result i32) i32.const 2)
  (memory (export "memory") 1))
"""


def _exports() -> tuple[wasmtime.Store, CoreExports]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    instance = wasmtime.Instance(store, wasmtime.Module(engine, WAT), [])
    return store, CoreExports(store, instance)


def test_lookup_by_name_and_membership() -> None:
    store, exports = _exports()
    assert "one" in exports and "missing" not in exports and 3 not in exports
    one = exports["one"]
    assert isinstance(one, wasmtime.Func) and one(store) == 1
    assert exports["one"] is one  # one object per export
    assert isinstance(exports["memory"], wasmtime.Memory)
    with pytest.raises(KeyError):
        exports["missing"]


def test_iteration_sees_every_export_and_keeps_objects() -> None:
    store, exports = _exports()
    two = exports["two"]
    assert sorted(exports) == ["memory", "one", "two"]
    assert len(exports) == 3
    assert dict(exports)["two"] is two
    assert exports["one"](store) == 1
