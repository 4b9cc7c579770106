"""What may run while a non-async-typed call is blocked (CanonicalABI.md "canon lift").

When the implicit thread of a call whose function type is not ``async``
switches to another guest thread, the call only resumes ready threads of its
own instance, and none that needs the instance's exclusive lock, until it
returns; it traps when no such thread can go on. Every scenario below makes
work that the call must not run *older* than the call's own frame, so the
executor's usual oldest-first order would run it first: the host's ``note``
log shows which ran first, by construction.

``$Main`` thread functions (core table): 0 makes the thread whose index it
was given ready again and returns; 1 notes its argument; 2 suspends for good.
``$Sibling``'s one thread function notes its argument.
"""

from __future__ import annotations

import pytest

import trio_wasi
from trio_wasi import Trap

WAT = r"""
(component
  (import "note" (func $note (param "n" u32)))
  (component $Sibling
    (import "note" (func $note (param "n" u32)))
    (core module $tbl (table (export "tbl") 1 funcref))
    (core instance $tbl (instantiate $tbl))
    (core type $ft (func (param i32)))
    (core func $new (canon thread.new-indirect (core type $ft) (core table $tbl "tbl")))
    (core func $resume-later (canon thread.resume-later))
    (core func $note' (canon lower (func $note)))
    (core module $m
      (import "" "tbl" (table 1 funcref))
      (import "" "new" (func $new (param i32 i32) (result i32)))
      (import "" "resume-later" (func $resume-later (param i32)))
      (import "" "note" (func $note (param i32)))
      (func $t-note (param i32) (call $note (local.get 0)))
      (elem (table 0) (i32.const 0) func $t-note)
      ;; Leaves a thread of this instance ready to run (it notes 1).
      (func (export "arm") (call $resume-later (call $new (i32.const 0) (i32.const 1)))))
    (core instance $i (instantiate $m (with "" (instance
      (export "tbl" (table $tbl "tbl"))
      (export "new" (func $new))
      (export "resume-later" (func $resume-later))
      (export "note" (func $note'))))))
    (func (export "arm") (canon lift (core func $i "arm"))))

  (component $Main
    (import "note" (func $note (param "n" u32)))
    (import "arm-sibling" (func $arm-sibling))
    (type $FT (future))
    (core module $mem (memory (export "mem") 1) (table (export "tbl") 4 funcref))
    (core instance $mem (instantiate $mem))
    (core type $ft (func (param i32)))
    (core func $index (canon thread.index))
    (core func $new (canon thread.new-indirect (core type $ft) (core table $mem "tbl")))
    (core func $resume-later (canon thread.resume-later))
    (core func $suspend (canon thread.suspend))
    (core func $suspend-then-resume (canon thread.suspend-then-resume))
    (core func $return (canon task.return))
    (core func $future.new (canon future.new $FT))
    (core func $future.read
      (canon future.read $FT async (memory (core memory $mem "mem"))))
    (core func $future.write
      (canon future.write $FT async (memory (core memory $mem "mem"))))
    (core func $wset.new (canon waitable-set.new))
    (core func $join (canon waitable.join))
    (core func $note' (canon lower (func $note)))
    (core func $arm-sibling' (canon lower (func $arm-sibling)))
    (core module $m
      (import "" "tbl" (table 4 funcref))
      (import "" "index" (func $index (result i32)))
      (import "" "new" (func $new (param i32 i32) (result i32)))
      (import "" "resume-later" (func $resume-later (param i32)))
      (import "" "suspend" (func $suspend (result i32)))
      (import "" "suspend-then-resume" (func $suspend-then-resume (param i32) (result i32)))
      (import "" "return" (func $return))
      (import "" "future.new" (func $future.new (result i64)))
      (import "" "future.read" (func $future.read (param i32 i32) (result i32)))
      (import "" "future.write" (func $future.write (param i32 i32) (result i32)))
      (import "" "wset.new" (func $wset.new (result i32)))
      (import "" "join" (func $join (param i32 i32)))
      (import "" "note" (func $note (param i32)))
      (import "" "arm-sibling" (func $arm-sibling))
      (global $writable (mut i32) (i32.const 0))
      (global $parked (mut i32) (i32.const 0))

      (func $t-wake (param i32) (call $resume-later (local.get 0)))
      (func $t-note (param i32) (call $note (local.get 0)))
      (func $t-suspend (param i32) (drop (call $suspend)))
      (elem (table 0) (i32.const 0) func $t-wake $t-note $t-suspend)

      ;; Switch to a new thread that makes this one ready again and ends, then note 2.
      (func $switch-and-note
        (drop (call $suspend-then-resume (call $new (i32.const 0) (call $index))))
        (call $note (i32.const 2)))

      (func (export "sibling-then-switch") (result i32)
        (call $arm-sibling)
        (call $switch-and-note)
        (i32.const 0))
      (func (export "own-then-switch") (result i32)
        (call $resume-later (call $new (i32.const 1) (i32.const 3)))
        (call $switch-and-note)
        (i32.const 0))
      ;; An async-typed callback task that returns, then waits for a future.
      (func (export "arm-callback") (result i32)
        (local $pair i64) (local $readable i32) (local $set i32)
        (local.set $pair (call $future.new))
        (local.set $readable (i32.wrap_i64 (local.get $pair)))
        (global.set $writable (i32.wrap_i64 (i64.shr_u (local.get $pair) (i64.const 32))))
        (drop (call $future.read (local.get $readable) (i32.const 0)))
        (local.set $set (call $wset.new))
        (call $join (local.get $readable) (local.get $set))
        (call $return)
        (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (local.get $set) (i32.const 4))))
      (func (export "cb") (param i32 i32 i32) (result i32)
        (call $note (i32.const 1))
        (i32.const 0 (; EXIT ;)))
      (func (export "write-then-switch") (result i32)
        (drop (call $future.write (global.get $writable) (i32.const 0)))
        (call $switch-and-note)
        (i32.const 0))
      ;; An async-typed task that leaves a suspended thread behind.
      (func (export "setup") (result i32)
        (global.set $parked (call $new (i32.const 2) (i32.const 0)))
        (call $return)
        (i32.const 0 (; EXIT ;)))
      (func (export "sibling-then-stuck") (result i32)
        (call $arm-sibling)
        (drop (call $suspend-then-resume (global.get $parked)))
        (i32.const 0))
      (func (export "ping") (result i32) (i32.const 0)))
    (core instance $i (instantiate $m (with "" (instance
      (export "tbl" (table $mem "tbl"))
      (export "index" (func $index))
      (export "new" (func $new))
      (export "resume-later" (func $resume-later))
      (export "suspend" (func $suspend))
      (export "suspend-then-resume" (func $suspend-then-resume))
      (export "return" (func $return))
      (export "future.new" (func $future.new))
      (export "future.read" (func $future.read))
      (export "future.write" (func $future.write))
      (export "wset.new" (func $wset.new))
      (export "join" (func $join))
      (export "note" (func $note'))
      (export "arm-sibling" (func $arm-sibling'))))))
    (func (export "sibling-then-switch") (result u32)
      (canon lift (core func $i "sibling-then-switch")))
    (func (export "own-then-switch") (result u32) (canon lift (core func $i "own-then-switch")))
    (func (export "arm-callback") async
      (canon lift (core func $i "arm-callback") async (callback (core func $i "cb"))))
    (func (export "write-then-switch") (result u32)
      (canon lift (core func $i "write-then-switch")))
    (func (export "setup") async
      (canon lift (core func $i "setup") async (callback (core func $i "cb"))))
    (func (export "sibling-then-stuck") (result u32)
      (canon lift (core func $i "sibling-then-stuck")))
    (func (export "ping") (result u32) (canon lift (core func $i "ping"))))

  (instance $sibling (instantiate $Sibling (with "note" (func $note))))
  (instance $main (instantiate $Main
    (with "note" (func $note))
    (with "arm-sibling" (func $sibling "arm"))))
  (export "sibling-then-switch" (func $main "sibling-then-switch"))
  (export "own-then-switch" (func $main "own-then-switch"))
  (export "arm-callback" (func $main "arm-callback"))
  (export "write-then-switch" (func $main "write-then-switch"))
  (export "setup" (func $main "setup"))
  (export "sibling-then-stuck" (func $main "sibling-then-stuck"))
  (export "ping" (func $main "ping")))
"""


@pytest.fixture(scope="module")
def component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(WAT)


async def run(component: trio_wasi.Component, *names: str) -> list[int]:
    """Call ``names`` in turn, then ``ping``; the notes in the order they were made."""
    notes: list[int] = []
    linker = trio_wasi.Linker(limits=trio_wasi.Limits(guest_threads=True))
    linker.define_function(None, "note", notes.append)
    async with linker.instantiate(component) as instance:
        for name in names:
            await instance.call(name)
        # Work queued before this call runs before it: whatever the calls
        # left ready has run by the time it returns.
        await instance.call("ping")
    return notes


async def test_a_ready_thread_of_a_sibling_instance_waits_for_the_call(
    component: trio_wasi.Component,
) -> None:
    # The sibling's thread was ready before the call blocked, but only after
    # the call returned (2) did it run (1).
    assert await run(component, "sibling-then-switch") == [2, 1]


async def test_a_ready_thread_of_the_calls_own_instance_runs_during_the_call(
    component: trio_wasi.Component,
) -> None:
    # A thread of the same instance made ready before the block runs while
    # the call is blocked (3), ahead of the call's own return (2).
    assert await run(component, "own-then-switch") == [3, 2]


async def test_a_callback_task_of_the_same_instance_waits_for_the_call(
    component: trio_wasi.Component,
) -> None:
    # The call's write gives the callback task its event before the call
    # blocks, but its implicit thread needs the exclusive lock, so its
    # callback (1) only runs once the call returned (2).
    assert await run(component, "arm-callback", "write-then-switch") == [2, 1]


async def test_a_blocked_call_with_nothing_it_may_run_traps(
    component: trio_wasi.Component,
) -> None:
    notes: list[int] = []
    linker = trio_wasi.Linker(limits=trio_wasi.Limits(guest_threads=True))
    linker.define_function(None, "note", notes.append)
    with pytest.raises(Trap, match="deadlock detected"):
        async with linker.instantiate(component) as instance:
            await instance.call("setup")
            # The thread it switches to suspends without making it ready:
            # only the sibling's thread is ready, and it may not run.
            await instance.call("sibling-then-stuck")
    assert notes == []
