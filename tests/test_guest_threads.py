"""Guest threads: ``thread.new-indirect`` and the built-ins that switch threads.

CanonicalABI.md, "canon thread.*". Each export below runs a short scenario and
appends numbers to a log in linear memory (``$log``); the tests read the log
back (export ``log``) and compare it with the order the specification
prescribes, so every ordering is proved by construction, never by timing.

Thread functions in the core table: 0 logs its argument and its own index;
1 logs 20, makes the thread whose index it was given ready again
(``thread.resume-later``) and logs 21; 2 reads, writes and reads its context
slots; 3 does nothing; 4 notes the host, then suspends for good; 5 switches
back to the thread whose index it was given.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

import trio_wasi
from trio_wasi import Trap

WAT = r"""
(component
  (import "note" (func $note))
  (core module $mem (memory (export "mem") 1) (table (export "tbl") 8 funcref))
  (core instance $mem (instantiate $mem))
  (core type $ft (func (param i32)))
  (core func $index (canon thread.index))
  (core func $new (canon thread.new-indirect (core type $ft) (core table $mem "tbl")))
  (core func $resume-later (canon thread.resume-later))
  (core func $suspend (canon thread.suspend))
  (core func $suspend-then-resume (canon thread.suspend-then-resume))
  (core func $yield-then-resume (canon thread.yield-then-resume))
  (core func $get0 (canon context.get i32 0))
  (core func $get1 (canon context.get i32 1))
  (core func $set0 (canon context.set i32 0))
  (core func $set1 (canon context.set i32 1))
  (core func $return (canon task.return))
  (core func $cancel (canon task.cancel))
  (core func $wset.new (canon waitable-set.new))
  (core func $note' (canon lower (func $note)))
  (core module $m
    (import "" "mem" (memory 1))
    (import "" "tbl" (table 8 funcref))
    (import "" "index" (func $index (result i32)))
    (import "" "new" (func $new (param i32 i32) (result i32)))
    (import "" "resume-later" (func $resume-later (param i32)))
    (import "" "suspend" (func $suspend (result i32)))
    (import "" "suspend-then-resume" (func $suspend-then-resume (param i32) (result i32)))
    (import "" "yield-then-resume" (func $yield-then-resume (param i32) (result i32)))
    (import "" "get0" (func $get0 (result i32)))
    (import "" "get1" (func $get1 (result i32)))
    (import "" "set0" (func $set0 (param i32)))
    (import "" "set1" (func $set1 (param i32)))
    (import "" "return" (func $return))
    (import "" "cancel" (func $cancel))
    (import "" "wset.new" (func $wset.new (result i32)))
    (import "" "note" (func $note))

    ;; The log: its length at 0, its entries from 16 on; (ptr, len) at 8.
    (func $log (param i32)
      (local $n i32)
      (local.set $n (i32.load (i32.const 0)))
      (i32.store (i32.add (i32.const 16) (i32.shl (local.get $n) (i32.const 2))) (local.get 0))
      (i32.store (i32.const 0) (i32.add (local.get $n) (i32.const 1))))
    (func (export "log") (result i32)
      (i32.store (i32.const 8) (i32.const 16))
      (i32.store (i32.const 12) (i32.load (i32.const 0)))
      (i32.const 8))

    (func $t-log (param i32) (call $log (local.get 0)) (call $log (call $index)))
    (func $t-wake (param i32)
      (call $log (i32.const 20))
      (call $resume-later (local.get 0))
      (call $log (i32.const 21)))
    (func $t-context (param i32)
      (call $log (call $get0))
      (call $log (call $get1))
      (call $set0 (i32.const 21))
      (call $set1 (i32.const 22))
      (call $log (call $get0)))
    (func $t-nop (param i32))
    (func $t-suspend-for-good (param i32)
      (call $log (i32.const 30))
      (call $note)
      (drop (call $suspend))
      (call $log (i32.const 31)))
    (func $t-switch-back (param i32)
      (call $log (i32.const 50))
      (drop (call $suspend-then-resume (local.get 0)))
      (call $log (i32.const 51)))
    (elem (table 0) (i32.const 0)
      func $t-log $t-wake $t-context $t-nop $t-suspend-for-good $t-switch-back)

    (func (export "yield-to") (result i32)
      (local $t i32)
      (call $log (call $index))
      (local.set $t (call $new (i32.const 0) (i32.const 7)))
      (call $log (local.get $t))
      (call $log (call $yield-then-resume (local.get $t)))
      (call $log (i32.const 3))
      (i32.const 0))
    (func (export "switch-to") (result i32)
      (call $log (i32.const 1))
      (call $log (i32.add (i32.const 10)
        (call $suspend-then-resume (call $new (i32.const 1) (call $index)))))
      (i32.const 0))
    ;; Stackful async: a plain suspend may wait for another thread.
    (func (export "suspend-resume-later")
      (call $resume-later (call $new (i32.const 1) (call $index)))
      (call $log (i32.const 1))
      (call $log (i32.add (i32.const 10) (call $suspend)))
      (call $return))
    (func (export "context") (result i32)
      (call $set0 (i32.const 11))
      (call $set1 (i32.const 12))
      (drop (call $yield-then-resume (call $new (i32.const 2) (i32.const 0))))
      (call $log (call $get0))
      (call $log (call $get1))
      (i32.const 0))
    (func (export "switch-back") (result i32)
      (drop (call $suspend-then-resume (call $new (i32.const 5) (call $index))))
      (i32.const 0))
    (func (export "resume-running") (result i32)
      (call $resume-later (call $index))
      (i32.const 0))
    (func (export "resume-twice") (result i32)
      (local $t i32)
      (local.set $t (call $new (i32.const 3) (i32.const 0)))
      (call $resume-later (local.get $t))
      (call $resume-later (local.get $t))
      (i32.const 0))
    (func (export "switch-to-finished") (result i32)
      (local $t i32)
      (local.set $t (call $new (i32.const 3) (i32.const 0)))
      (drop (call $yield-then-resume (local.get $t)))
      (drop (call $suspend-then-resume (local.get $t)))
      (i32.const 0))
    (func (export "suspend-in-sync") (result i32)
      (drop (call $suspend))
      (i32.const 0))
    (func (export "new-bad-index") (result i32)
      (drop (call $new (i32.const 6) (i32.const 0)))
      (i32.const 0))
    ;; Callback async: a thread suspends for good, then the task is cancelled.
    (func (export "cancel-with-suspended-thread") (result i32)
      (call $resume-later (call $new (i32.const 4) (i32.const 0)))
      (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (call $wset.new) (i32.const 4))))
    (func (export "cb") (param i32 i32 i32) (result i32)
      (call $log (i32.add (i32.const 40) (local.get 0)))
      (if (i32.eq (local.get 0) (i32.const 6 (; TASK_CANCELLED ;)))
        (then (call $cancel) (return (i32.const 0 (; EXIT ;)))))
      unreachable))
  (core instance $i (instantiate $m (with "" (instance
    (export "mem" (memory $mem "mem"))
    (export "tbl" (table $mem "tbl"))
    (export "index" (func $index))
    (export "new" (func $new))
    (export "resume-later" (func $resume-later))
    (export "suspend" (func $suspend))
    (export "suspend-then-resume" (func $suspend-then-resume))
    (export "yield-then-resume" (func $yield-then-resume))
    (export "get0" (func $get0))
    (export "get1" (func $get1))
    (export "set0" (func $set0))
    (export "set1" (func $set1))
    (export "return" (func $return))
    (export "cancel" (func $cancel))
    (export "wset.new" (func $wset.new))
    (export "note" (func $note'))))))
  (func (export "log") (result (list u32))
    (canon lift (core func $i "log") (memory (core memory $mem "mem"))))
  (func (export "yield-to") (result u32) (canon lift (core func $i "yield-to")))
  (func (export "switch-to") (result u32) (canon lift (core func $i "switch-to")))
  (func (export "suspend-resume-later") async
    (canon lift (core func $i "suspend-resume-later") async))
  (func (export "context") (result u32) (canon lift (core func $i "context")))
  (func (export "switch-back") (result u32) (canon lift (core func $i "switch-back")))
  (func (export "resume-running") (result u32) (canon lift (core func $i "resume-running")))
  (func (export "resume-twice") (result u32) (canon lift (core func $i "resume-twice")))
  (func (export "switch-to-finished") (result u32)
    (canon lift (core func $i "switch-to-finished")))
  (func (export "suspend-in-sync") (result u32) (canon lift (core func $i "suspend-in-sync")))
  (func (export "new-bad-index") (result u32) (canon lift (core func $i "new-bad-index")))
  (func (export "cancel-with-suspended-thread") async
    (canon lift (core func $i "cancel-with-suspended-thread") async
      (callback (core func $i "cb")))))
"""


@pytest.fixture(scope="module")
def component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(WAT)


def linker(
    note: Callable[[], None] = lambda: None, *, guest_threads: bool = True
) -> trio_wasi.Linker:
    result = trio_wasi.Linker(limits=trio_wasi.Limits(guest_threads=guest_threads))
    result.define_function(None, "note", note)
    return result


async def test_guest_threads_are_refused_unless_allowed(component: trio_wasi.Component) -> None:
    with pytest.raises(trio_wasi.LinkError, match=r"guest threads.*-W guest-threads=y"):
        async with linker(guest_threads=False).instantiate(component):
            pass  # pragma: no cover - linking fails first
    # Allowed per instance as well as per linker.
    limits = trio_wasi.Limits(guest_threads=True)
    async with linker(guest_threads=False).instantiate(component, limits=limits) as instance:
        await instance.call("log")


def test_w_guest_threads_parses_yes_and_no() -> None:
    from trio_wasi._limits import parse_w_options

    assert parse_w_options(["guest-threads=y"]).guest_threads is True
    assert parse_w_options(["guest-threads=no"]).guest_threads is False
    assert trio_wasi.Limits.serve().guest_threads is False
    with pytest.raises(ValueError, match="expected y or n"):
        parse_w_options(["guest-threads=maybe"])


async def run(component: trio_wasi.Component, name: str) -> list[int]:
    async with linker().instantiate(component) as instance:
        await instance.call(name)
        log = await instance.call("log")
    assert isinstance(log, list)
    return log


async def test_a_new_thread_runs_with_an_index_of_its_own(
    component: trio_wasi.Component,
) -> None:
    main, new, arg, ran_as, yielded, after = await run(component, "yield-to")
    # The new thread ran between the yield and the return to the main thread,
    # with the argument it was created with and under the index it was given.
    assert (arg, yielded, after) == (7, 0, 3)
    assert ran_as == new
    assert 0 not in (main, new)
    assert main != new


async def test_switch_to_a_thread_that_resumes_the_switcher_later(
    component: trio_wasi.Component,
) -> None:
    # The switch runs the new thread at once; it makes the main thread ready
    # and finishes, and only then does the main thread go on (not cancelled).
    assert await run(component, "switch-to") == [1, 20, 21, 10]


async def test_suspend_until_another_thread_resumes_it(component: trio_wasi.Component) -> None:
    # resume-later only makes the new thread ready: it runs once the main
    # thread suspends, and the main thread goes on once the new one made it
    # ready again.
    assert await run(component, "suspend-resume-later") == [1, 20, 21, 10]


async def test_context_slots_belong_to_each_thread(component: trio_wasi.Component) -> None:
    # The new thread starts with zeroed slots; its writes do not touch the
    # main thread's slots.
    assert await run(component, "context") == [0, 0, 21, 11, 12]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("resume-running", "thread is not suspended"),
        ("resume-twice", "thread is not suspended"),
        ("switch-to-finished", "is not a thread of this instance"),
        ("suspend-in-sync", "cannot block a synchronous task before returning"),
        ("new-bad-index", "no function at table index 6"),
        # Wasm frames of one store must end in LIFO order (see _threads.StoreEntries):
        # the main thread, made ready by the new thread's switch back, cannot run
        # while the new thread's frames are still suspended above it.
        ("switch-back", "a thread it made ready cannot run before it"),
    ],
)
async def test_traps(component: trio_wasi.Component, name: str, message: str) -> None:
    with pytest.raises(Trap, match=message):
        async with linker().instantiate(component) as instance:
            await instance.call(name)


async def test_cancelling_a_task_whose_thread_is_suspended(
    component: trio_wasi.Component,
) -> None:
    token = trio.lowlevel.current_trio_token()
    parked = trio.Event()

    def note() -> None:
        # Called by the thread just before it suspends (on a store thread).
        token.run_sync_soon(parked.set)

    async with linker(note).instantiate(component) as instance:
        with trio.CancelScope() as scope:

            async def cancel_when_parked() -> None:
                await parked.wait()
                scope.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel_when_parked)
                await instance.call("cancel-with-suspended-thread")
        assert scope.cancelled_caught
        log = await instance.call("log")
    # The thread suspended (30) and was never resumed (no 31); the task got
    # TASK_CANCELLED (40 + 6) in its callback and acknowledged it.
    assert log == [30, 46]
