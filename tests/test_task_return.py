"""``task.return`` must be given the result type of the task's own function.

CanonicalABI.md, ``canon task.return``: the built-in traps when its result type
differs from the result type of the function the current task was lifted with.
Each export below is lifted ``async`` with a callback and calls one
``task.return`` built-in; the core signatures of ``u32`` and ``s32`` (and of
``bool``) are all ``(param i32)``, so only a type check tells them apart.
"""

from __future__ import annotations

import pytest

import trio_wasi
from trio_wasi import Trap

WAT = r"""
(component
  (core module $m
    (import "" "return-u32" (func $return-u32 (param i32)))
    (import "" "return-s32" (func $return-s32 (param i32)))
    (import "" "return-bool" (func $return-bool (param i32)))
    (import "" "return-nothing" (func $return-nothing))
    (func (export "via-u32") (result i32) (call $return-u32 (i32.const 7)) (i32.const 0))
    (func (export "via-s32") (result i32) (call $return-s32 (i32.const 7)) (i32.const 0))
    (func (export "via-bool") (result i32) (call $return-bool (i32.const 1)) (i32.const 0))
    (func (export "via-nothing") (result i32) (call $return-nothing) (i32.const 0))
    (func (export "cb") (param i32 i32 i32) (result i32) unreachable))
  (core func $return-u32 (canon task.return (result u32)))
  (core func $return-s32 (canon task.return (result s32)))
  (core func $return-bool (canon task.return (result bool)))
  (core func $return-nothing (canon task.return))
  (core instance $i (instantiate $m (with "" (instance
    (export "return-u32" (func $return-u32))
    (export "return-s32" (func $return-s32))
    (export "return-bool" (func $return-bool))
    (export "return-nothing" (func $return-nothing))))))
  (func (export "u32-via-u32") async (result u32)
    (canon lift (core func $i "via-u32") async (callback (core func $i "cb"))))
  (func (export "u32-via-s32") async (result u32)
    (canon lift (core func $i "via-s32") async (callback (core func $i "cb"))))
  (func (export "u32-via-bool") async (result u32)
    (canon lift (core func $i "via-bool") async (callback (core func $i "cb"))))
  (func (export "u32-via-nothing") async (result u32)
    (canon lift (core func $i "via-nothing") async (callback (core func $i "cb"))))
  (func (export "nothing-via-u32") async
    (canon lift (core func $i "via-u32") async (callback (core func $i "cb"))))
  (func (export "nothing-via-nothing") async
    (canon lift (core func $i "via-nothing") async (callback (core func $i "cb")))))
"""


@pytest.fixture(scope="module")
def component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(WAT)


async def call(component: trio_wasi.Component, name: str) -> object:
    async with trio_wasi.Linker().instantiate(component) as instance:
        return await instance.call(name)


@pytest.mark.parametrize(("export", "result"), [("u32-via-u32", 7), ("nothing-via-nothing", None)])
async def test_matching_result_type_returns(
    component: trio_wasi.Component, export: str, result: object
) -> None:
    assert await call(component, export) == result


@pytest.mark.parametrize(
    "export", ["u32-via-s32", "u32-via-bool", "u32-via-nothing", "nothing-via-u32"]
)
async def test_other_result_type_traps(component: trio_wasi.Component, export: str) -> None:
    with pytest.raises(Trap, match=r"invalid `task\.return` signature"):
        await call(component, export)
