"""``thread.index``: the index of the calling thread in its instance's thread table.

CanonicalABI.md, ``canon thread.index``: every task runs on an implicit thread
registered in a per-instance thread table when the task starts and removed
when it exits; the built-in returns the caller's index and traps when the
instance may not be left (a post-return function).
"""

from __future__ import annotations

import pytest
import trio

import trio_wasi
from trio_wasi import Trap

WAT = r"""
(component
  (import "gate" (func $gate async))
  (core module $mem (memory (export "mem") 1))
  (core instance $mem (instantiate $mem))
  (core func $index (canon thread.index))
  (core func $return (canon task.return (result u32)))
  (core func $gate' (canon lower (func $gate) async))
  (core func $wset.new (canon waitable-set.new))
  (core func $join (canon waitable.join))
  (core func $wait (canon waitable-set.wait (memory (core memory $mem "mem"))))
  (core module $m
    (import "" "index" (func $index (result i32)))
    (import "" "return" (func $return (param i32)))
    (import "" "gate" (func $gate (result i32)))
    (import "" "wset.new" (func $wset.new (result i32)))
    (import "" "join" (func $join (param i32 i32)))
    (import "" "wait" (func $wait (param i32 i32) (result i32)))
    (global $held (mut i32) (i32.const 0))
    (func (export "sync-index") (result i32) (call $index))
    (func (export "pr-index") (param i32) (drop (call $index)))
    ;; Stackful: report the index, then stay alive until the host opens the gate.
    (func (export "hold")
      (local $status i32) (local $ws i32)
      (call $return (call $index))
      (local.set $status (call $gate))
      (if (i32.eq (i32.and (local.get $status) (i32.const 0xf)) (i32.const 1 (; STARTED ;)))
        (then
          (local.set $ws (call $wset.new))
          (call $join (i32.shr_u (local.get $status) (i32.const 4)) (local.get $ws))
          (drop (call $wait (local.get $ws) (i32.const 0))))))
    (func (export "quick")
      (call $return (call $index))))
  (core instance $i (instantiate $m (with "" (instance
    (export "index" (func $index))
    (export "return" (func $return))
    (export "gate" (func $gate'))
    (export "wset.new" (func $wset.new))
    (export "join" (func $join))
    (export "wait" (func $wait))))))
  (func (export "sync-index") (result u32) (canon lift (core func $i "sync-index")))
  (func (export "index-in-post-return") (result u32)
    (canon lift (core func $i "sync-index") (post-return (core func $i "pr-index"))))
  (func (export "hold") async (result u32) (canon lift (core func $i "hold") async))
  (func (export "quick") async (result u32) (canon lift (core func $i "quick") async)))
"""


@pytest.fixture(scope="module")
def component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(WAT)


def linker(gate: trio.Event) -> trio_wasi.Linker:
    result = trio_wasi.Linker()

    async def wait_for_gate() -> None:
        await gate.wait()

    result.define_function(None, "gate", wait_for_gate)
    return result


async def test_index_is_released_when_the_task_exits(component: trio_wasi.Component) -> None:
    async with linker(trio.Event()).instantiate(component) as instance:
        first = await instance.call("sync-index")
        second = await instance.call("sync-index")
    # Index 0 is never a thread; a released index is handed out again.
    assert first != 0
    assert second == first


async def test_live_tasks_have_distinct_indices(component: trio_wasi.Component) -> None:
    gate = trio.Event()
    async with linker(gate).instantiate(component) as instance:
        # "hold" returns its value and then waits for the gate: its task, and
        # so its thread, is alive while "quick" runs.
        held = await instance.call("hold")
        assert not gate.is_set()
        quick = await instance.call("quick")
        gate.set()
        # Once "hold" has exited, its index is free again.
        with trio.fail_after(30):
            while True:
                again = await instance.call("quick")
                if again == held:
                    break
                await trio.sleep(0)
    assert held != 0 and quick != 0
    assert held != quick


async def test_thread_index_traps_in_post_return(component: trio_wasi.Component) -> None:
    with pytest.raises(Trap, match="cannot leave component instance"):
        async with linker(trio.Event()).instantiate(component) as instance:
            await instance.call("index-in-post-return")
