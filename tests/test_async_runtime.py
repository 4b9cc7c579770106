"""Structured concurrency of the async runtime, seen from the embedding API.

Every test builds a small component from WAT whose exports are lifted ``async``
with a callback and drive the canonical built-ins by hand (``task.return``,
``task.cancel``, waitable sets, async lowers of host functions, subtasks,
backpressure). Two components are used:

* the *inline* one imports only a synchronous host function, so its wasm runs
  on the trio thread (the inline executor);
* the *threaded* one also imports ``async def`` host functions and is
  instantiated with ``run_on_thread=True``, so its wasm runs on store threads
  (the threaded executor).

Event codes seen by callbacks: 1 SUBTASK, 6 TASK_CANCELLED. Subtask states:
1 STARTED, 2 RETURNED, 4 CANCELLED_BEFORE_RETURNED. Callback codes: 0 EXIT,
1 YIELD, 2 WAIT (with the waitable set index above the low 4 bits).
"""

from __future__ import annotations

import contextvars
import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

import trio_wasi
from trio_wasi import Trap
from trio_wasi._instance import Instantiation

# -- building the components ----------------------------------------------------------

# Canon built-ins every core module imports from "": name -> (definition with {f} for
# the core func identifier, core func type).
BUILTINS: dict[str, tuple[str, str]] = {
    "task.return": ("(canon task.return (result u32) (core func {f}))", "(param i32)"),
    "task.cancel": ("(canon task.cancel (core func {f}))", ""),
    "waitable-set.new": ("(canon waitable-set.new (core func {f}))", "(result i32)"),
    "waitable-set.drop": ("(canon waitable-set.drop (core func {f}))", "(param i32)"),
    "waitable.join": ("(canon waitable.join (core func {f}))", "(param i32 i32)"),
    "subtask.drop": ("(canon subtask.drop (core func {f}))", "(param i32)"),
    "subtask.cancel": ("(canon subtask.cancel async (core func {f}))", "(param i32) (result i32)"),
    "context.get": ("(canon context.get i32 0 (core func {f}))", "(result i32)"),
    "context.set": ("(canon context.set i32 0 (core func {f}))", "(param i32)"),
    "backpressure.inc": ("(canon backpressure.inc (core func {f}))", ""),
    "backpressure.dec": ("(canon backpressure.dec (core func {f}))", ""),
}

# Host imports: name -> (component import, lower with {f}, core func type). ``slow`` and
# ``forever`` are async-typed and lowered async (the core call returns a subtask state
# with the subtask index above the low 4 bits); ``record`` is synchronous.
HOST_IMPORTS: dict[str, tuple[str, str, str]] = {
    "slow": (
        '(import "slow" (func $slow async))',
        "(canon lower (func $slow) async (core func {f}))",
        "(result i32)",
    ),
    "forever": (
        '(import "forever" (func $forever async))',
        "(canon lower (func $forever) async (core func {f}))",
        "(result i32)",
    ),
    "record": (
        '(import "record" (func $record (param "v" u32)))',
        "(canon lower (func $record) (core func {f}))",
        "(param i32)",
    ),
}

# Helpers every core module gets.
COMMON = """
    ;; WAIT on a new, empty waitable set kept in context slot 0.
    (func $park (result i32)
      (local $ws i32)
      (local.set $ws (call $waitable-set.new))
      (call $context.set (local.get $ws))
      (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (local.get $ws) (i32.const 4))))
    ;; WAIT for the subtask of an async lower's packed result, which must be STARTED.
    (func $await (param $ret i32) (result i32)
      (local $code i32)
      (if (i32.ne (i32.and (local.get $ret) (i32.const 0xf)) (i32.const 1 (; STARTED ;)))
        (then unreachable))
      (local.set $code (call $park))
      (call $waitable.join (i32.shr_u (local.get $ret) (i32.const 4)) (call $context.get))
      (local.get $code))
    ;; The callback of a task that waits for a subtask which must return.
    (func $subtask-returned (param $code i32) (param $index i32) (param $payload i32)
      (if (i32.ne (local.get $code) (i32.const 1 (; SUBTASK ;))) (then unreachable))
      (if (i32.ne (local.get $payload) (i32.const 2 (; RETURNED ;))) (then unreachable))
      (call $subtask.drop (local.get $index))
      (call $waitable-set.drop (call $context.get)))
    (func (export "trap-cb") (param i32 i32 i32) (result i32) unreachable)
"""


def component(host: list[str], core: str, lifts: list[str]) -> str:
    """The WAT of a component importing ``host``, with core functions ``core``."""
    imports, canons, exports, host_decls = [], [], [], []
    items = [(name, canon, sig) for name, (canon, sig) in BUILTINS.items()]
    for name in host:
        decl, lower, sig = HOST_IMPORTS[name]
        host_decls.append(decl)
        items.append((name, lower, sig))
    for name, canon, sig in items:
        imports.append(f'(import "" "{name}" (func ${name} {sig}))')
        canons.append(canon.format(f=f"$c.{name}"))
        exports.append(f'(export "{name}" (func $c.{name}))')
    nl = "\n  "
    return f"""
(component
  {nl.join(host_decls)}
  (core module $M
    {nl.join(imports)}
    {COMMON}
    {core})
  {nl.join(canons)}
  (core instance $m (instantiate $M (with "" (instance
    {nl.join(exports)}))))
  {nl.join(lifts)})
"""


def lift_cb(name: str, entry: str, callback: str, sig: str = "(result u32)") -> str:
    """An export lifted ``async`` with a callback."""
    return (
        f'(func (export "{name}") async {sig} (canon lift (core func $m "{entry}") '
        f'async (callback (core func $m "{callback}"))))'
    )


def lift_sync(name: str, entry: str, sig: str = "") -> str:
    return f'(func (export "{name}") {sig} (canon lift (core func $m "{entry}")))'


INLINE_CORE = """
    (global $calls (mut i32) (i32.const 0))
    (func (export "park") (result i32) (call $park))
    ;; TASK_CANCELLED expected: record it, acknowledge with task.cancel.
    (func (export "cancel-cb") (param $code i32) (param i32 i32) (result i32)
      (call $record (local.get $code))
      (if (i32.ne (local.get $code) (i32.const 6 (; TASK_CANCELLED ;))) (then unreachable))
      (call $waitable-set.drop (call $context.get))
      (call $task.cancel)
      (i32.const 0 (; EXIT ;)))
    ;; TASK_CANCELLED expected: record it, but return a value instead.
    (func (export "return-on-cancel-cb") (param $code i32) (param i32 i32) (result i32)
      (call $record (local.get $code))
      (if (i32.ne (local.get $code) (i32.const 6 (; TASK_CANCELLED ;))) (then unreachable))
      (call $waitable-set.drop (call $context.get))
      (call $task.return (i32.const 99))
      (i32.const 0 (; EXIT ;)))
    (func (export "return-then-park") (result i32)
      (call $task.return (i32.const 3))
      (call $park))
    (func (export "return-then-yield") (result i32)
      (call $task.return (i32.const 5))
      (i32.const 1 (; YIELD ;)))
    (func (export "yield") (result i32) (i32.const 1 (; YIELD ;)))
    (func (export "boom") (result i32) unreachable)
    (func (export "count") (result i32)
      (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
      (global.get $calls))
    (func (export "bp-inc") (call $backpressure.inc))
    (func (export "bp-dec") (call $backpressure.dec))
    (func (export "echo") (param $v i32) (result i32)
      (call $task.return (local.get $v))
      (i32.const 0 (; EXIT ;)))
"""

INLINE_WAT = component(
    ["record"],
    INLINE_CORE,
    [
        lift_cb("wait-forever", "park", "cancel-cb"),
        lift_cb("wait-then-return", "park", "return-on-cancel-cb"),
        lift_cb("return-then-wait", "return-then-park", "trap-cb"),
        lift_cb("return-then-trap", "return-then-yield", "trap-cb"),
        lift_cb("yield-then-trap", "yield", "trap-cb"),
        lift_cb("echo", "echo", "trap-cb", '(param "v" u32) (result u32)'),
        lift_sync("boom", "boom", "(result u32)"),
        lift_sync("count", "count", "(result u32)"),
        lift_sync("bp-inc", "bp-inc"),
        lift_sync("bp-dec", "bp-dec"),
    ],
)

THREADED_CORE = """
    (global $sub (mut i32) (i32.const 0))
    (global $serial-arg (mut i32) (i32.const 0))
    (global $serial-busy (mut i32) (i32.const 0))
    ;; await-forever: waits for `forever`; when cancelled, cancels that subtask, waits
    ;; until it resolves, then acknowledges its own cancellation.
    (func (export "await-forever") (result i32)
      (local $ret i32)
      (local.set $ret (call $forever))
      (global.set $sub (i32.shr_u (local.get $ret) (i32.const 4)))
      (call $await (local.get $ret)))
    (func $acknowledge
      (call $subtask.drop (global.get $sub))
      (call $waitable-set.drop (call $context.get))
      (call $task.cancel))
    (func (export "await-forever-cb") (param $code i32) (param $index i32) (param $payload i32)
        (result i32)
      (local $r i32)
      (call $record (local.get $code))
      (if (i32.eq (local.get $code) (i32.const 6 (; TASK_CANCELLED ;)))
        (then
          (local.set $r (call $subtask.cancel (global.get $sub)))
          (if (i32.eq (local.get $r) (i32.const -1 (; BLOCKED ;)))
            (then (return (i32.or (i32.const 2 (; WAIT ;))
                                  (i32.shl (call $context.get) (i32.const 4))))))
          (call $record (i32.add (i32.const 100) (local.get $r)))
          (call $acknowledge)
          (return (i32.const 0 (; EXIT ;)))))
      (if (i32.ne (local.get $code) (i32.const 1 (; SUBTASK ;))) (then unreachable))
      (call $record (i32.add (i32.const 100) (local.get $payload)))
      (call $acknowledge)
      (i32.const 0 (; EXIT ;)))
    ;; sleep-call: awaits `slow`, then returns 42.
    (func (export "sleep-call") (result i32) (call $await (call $slow)))
    (func (export "return-42-cb") (param i32 i32 i32) (result i32)
      (call $subtask-returned (local.get 0) (local.get 1) (local.get 2))
      (call $task.return (i32.const 42))
      (i32.const 0 (; EXIT ;)))
    ;; return-early: returns 1 at once, then awaits `slow` and records 1.
    (func (export "return-early") (result i32)
      (call $task.return (i32.const 1))
      (call $await (call $slow)))
    (func (export "record-cb") (param i32 i32 i32) (result i32)
      (call $subtask-returned (local.get 0) (local.get 1) (local.get 2))
      (call $record (i32.const 1))
      (i32.const 0 (; EXIT ;)))
    ;; return-then-forever: returns 3, then awaits `forever`.
    (func (export "return-then-forever") (result i32)
      (call $task.return (i32.const 3))
      (call $await (call $forever)))
    ;; return-then-slow: returns 5, awaits `slow`, then its callback traps (trap-cb).
    (func (export "return-then-slow") (result i32)
      (call $task.return (i32.const 5))
      (call $await (call $slow)))
    ;; serial: holds backpressure while it awaits `slow`, then returns its argument.
    ;; The globals would be clobbered if two of these ever ran at once.
    (func (export "serial") (param $v i32) (result i32)
      (if (global.get $serial-busy) (then unreachable))
      (global.set $serial-busy (i32.const 1))
      (global.set $serial-arg (local.get $v))
      (call $backpressure.inc)
      (call $await (call $slow)))
    (func (export "serial-cb") (param i32 i32 i32) (result i32)
      (call $subtask-returned (local.get 0) (local.get 1) (local.get 2))
      (global.set $serial-busy (i32.const 0))
      (call $backpressure.dec)
      (call $task.return (global.get $serial-arg))
      (i32.const 0 (; EXIT ;)))
"""

THREADED_WAT = component(
    ["slow", "forever", "record"],
    THREADED_CORE,
    [
        lift_cb("await-forever", "await-forever", "await-forever-cb"),
        lift_cb("sleep-call", "sleep-call", "return-42-cb"),
        lift_cb("return-early", "return-early", "record-cb"),
        lift_cb("return-then-forever", "return-then-forever", "record-cb"),
        lift_cb("return-then-slow", "return-then-slow", "trap-cb"),
        lift_cb("serial", "serial", "serial-cb", '(param "v" u32) (result u32)'),
    ],
)


@functools.cache
def _engine() -> trio_wasi.Engine:
    return trio_wasi.Engine()


@functools.cache
def inline_component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(INLINE_WAT, engine=_engine())


@functools.cache
def threaded_component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(THREADED_WAT, engine=_engine())


class Host:
    """Host functions that record what the guest and the host side did."""

    def __init__(
        self, slow_seconds: float = 0.2, *, gated: bool = False, open_at: int | None = None
    ) -> None:
        self.slow_seconds = slow_seconds
        # Gated, `slow` waits (instead of sleeping) until `release()`, or until
        # `open_at` calls have started: overlap and ordering by construction.
        self.gated = gated
        self.open_at = open_at
        self.released = trio.Event()
        self.records: list[int] = []
        self.slow_started = 0
        self.slow_done = 0
        self.slow_active = 0
        self.slow_peak = 0
        self.forever_started = 0
        self.forever_cancelled = 0

    def release(self) -> None:
        """Let every gated `slow` call finish."""
        self.released.set()

    def record(self, value: int) -> None:
        self.records.append(value)

    async def slow(self) -> None:
        self.slow_started += 1
        self.slow_active += 1
        self.slow_peak = max(self.slow_peak, self.slow_active)
        try:
            if not self.gated:
                await trio.sleep(self.slow_seconds)
            else:
                if self.open_at is not None and self.slow_started >= self.open_at:
                    self.released.set()
                await self.released.wait()
        finally:
            self.slow_active -= 1
        self.slow_done += 1

    async def forever(self) -> None:
        self.forever_started += 1
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            self.forever_cancelled += 1
            raise

    def linker(self, *, threaded: bool) -> trio_wasi.Linker:
        linker = trio_wasi.Linker(_engine())
        linker.define_function(None, "record", self.record)
        if threaded:
            linker.define_function(None, "slow", self.slow)
            linker.define_function(None, "forever", self.forever)
        return linker

    def open(self, *, threaded: bool) -> Instantiation:
        component = threaded_component() if threaded else inline_component()
        # The threaded variant asks for a store thread explicitly: its async
        # host imports are lowered async, which alone runs inline.
        return self.linker(threaded=threaded).instantiate(component, run_on_thread=threaded)


async def wait_until(cond: Callable[[], bool], what: str, timeout: float = 2.0) -> None:
    """Poll ``cond`` (store threads are not trio tasks, so wait_all_tasks_blocked is not enough)."""
    with trio.move_on_after(timeout):
        while not cond():
            await trio.sleep(0.005)
    assert cond(), f"timed out waiting until {what}"


def instance_tasks(instance: trio_wasi.Instance) -> list[str]:
    """What still runs in the instance: its host calls and its waiting guest tasks.

    The trio tasks of the instance's nursery, except the pump that serves the
    waiting guest tasks and the pooled tasks that wait for the next host call
    (both idle until the block ends), plus one entry per guest task that waits.
    """
    rt = instance._rt
    assert rt.nursery is not None
    idle = rt._idle_workers
    names = [
        t.name
        for t in rt.nursery.child_tasks
        if not t.name.endswith(".drivers_pump") and t not in idle
    ]
    return names + ["waiting guest task"] * rt.live_drivers


async def assert_no_tasks_left(instance: trio_wasi.Instance) -> None:
    await trio.testing.wait_all_tasks_blocked()
    await wait_until(lambda: not instance_tasks(instance), "the instance has no tasks")


# -- 1. cancelling an awaited export --------------------------------------------------


async def test_cancelled_call_delivers_task_cancelled_inline() -> None:
    """The guest waits on an empty waitable set; the host's deadline cancels the call.

    The guest's callback gets TASK_CANCELLED, acknowledges with task.cancel, and the
    host sees its own cancellation; nothing of the instance is left running.
    """
    host = Host()
    with trio.fail_after(5):
        async with host.open(threaded=False) as inst:
            assert not inst.threaded
            # Long enough for the runtime to see that the guest has nothing to do
            # but wait: that is not a deadlock, the host may still cancel.
            with trio.move_on_after(0.3) as scope:
                await inst.call("wait-forever")
            assert scope.cancelled_caught
            assert host.records == [6]
            await assert_no_tasks_left(inst)
            # The instance is still usable.
            assert await inst.call("count") == 1


async def test_cancelled_call_gets_value_returned_instead_of_acknowledging() -> None:
    """Cancelled, the guest returns a value rather than task.cancel: the caller gets it."""
    host = Host()
    with trio.fail_after(5):
        async with host.open(threaded=False) as inst:
            with trio.move_on_after(0.3):
                result = await inst.call("wait-then-return")
            assert result == 99
            assert host.records == [6]
            await assert_no_tasks_left(inst)


async def test_cancelled_call_delivers_task_cancelled_threaded() -> None:
    """The guest awaits an async host import that sleeps forever; the host cancels.

    The guest sees TASK_CANCELLED, cancels its subtask (which cancels the host
    function's trio task), waits for the subtask to resolve as
    CANCELLED_BEFORE_RETURNED, then acknowledges.
    """
    host = Host()
    with trio.fail_after(5):
        async with host.open(threaded=True) as inst:
            assert inst.threaded
            with trio.move_on_after(0.3) as scope:
                await inst.call("await-forever")
            assert scope.cancelled_caught
            assert host.forever_started == 1
            assert host.forever_cancelled == 1
            # TASK_CANCELLED first; the subtask ends CANCELLED_BEFORE_RETURNED (4), seen
            # either from subtask.cancel directly or as a SUBTASK event after a wait.
            assert host.records[0] == 6
            assert host.records[-1] == 104
            assert host.records in ([6, 104], [6, 1, 104])
            await assert_no_tasks_left(inst)


# -- 2. work after task.return finishes inside the instance -----------------------------


async def test_work_after_return_finishes_before_the_block_exits() -> None:
    # `slow` cannot finish before the test releases it, after the value came back.
    host = Host(gated=True)
    with trio.fail_after(5):
        async with host.open(threaded=True) as inst:
            assert await inst.call("return-early") == 1
            # The value came back before the post-return work.
            assert host.records == []
            await wait_until(lambda: host.slow_started == 1, "the guest called `slow`")
            assert host.slow_done == 0
            host.release()
        # Leaving the block waited for the task to finish its work.
        assert host.slow_done == 1
        assert host.records == [1]


# -- 3. closing the instance cancels its tasks ------------------------------------------


class LeaveBlock(Exception):
    pass


async def test_leaving_by_exception_cancels_background_task_threaded() -> None:
    host = Host()
    with trio.fail_after(2):
        with pytest.raises(LeaveBlock):
            async with host.open(threaded=True) as inst:
                assert await inst.call("return-then-forever") == 3
                await wait_until(lambda: host.forever_started == 1, "`forever` started")
                raise LeaveBlock
    assert host.forever_cancelled == 1
    assert host.records == []


async def test_leaving_by_exception_cancels_background_task_inline() -> None:
    host = Host()
    with trio.fail_after(2):
        with pytest.raises(LeaveBlock):
            async with host.open(threaded=False) as inst:
                # The task returns, then waits on an empty waitable set forever.
                assert await inst.call("return-then-wait") == 3
                assert instance_tasks(inst)
                raise LeaveBlock


async def test_leaving_by_cancel_scope_cancels_background_task() -> None:
    host = Host()
    with trio.fail_after(2):
        with trio.move_on_after(0.2) as scope:
            async with host.open(threaded=True) as inst:
                assert await inst.call("return-then-forever") == 3
                await trio.sleep_forever()
        assert scope.cancelled_caught
    assert host.forever_started == 1
    assert host.forever_cancelled == 1


async def test_cancelling_while_the_block_waits_for_background_work() -> None:
    """The block's body is done; its exit waits for the task; an outer cancel ends it."""
    host = Host()
    exited = trio.Event()
    with trio.fail_after(2):
        async with trio.open_nursery() as nursery:

            async def user() -> None:
                async with host.open(threaded=True) as inst:
                    assert await inst.call("return-then-forever") == 3
                exited.set()  # never reached: the exit is cancelled

            nursery.start_soon(user)
            await wait_until(lambda: host.forever_started == 1, "`forever` started")
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    assert not exited.is_set()
    assert host.forever_cancelled == 1


# -- 4. traps poison only their instance -----------------------------------------------


async def test_trap_poisons_only_its_instance() -> None:
    host = Host()
    with trio.fail_after(5):
        async with host.open(threaded=False) as a, host.open(threaded=False) as b:
            assert await a.call("count") == 1
            with pytest.raises(Trap, match="unreachable"):
                await a.call("boom")
            with pytest.raises(Trap, match="earlier trap") as again:
                await a.call("count")
            assert "unreachable" in str(again.value)
            with pytest.raises(Trap, match="earlier trap"):
                await a.call("echo", 1)
            assert await b.call("count") == 1
            assert await b.call("echo", 7) == 7


async def test_trap_in_a_callback_step_reaches_the_caller() -> None:
    host = Host()
    with trio.fail_after(5):
        async with host.open(threaded=False) as a, host.open(threaded=False) as b:
            with pytest.raises(Trap, match="unreachable"):
                await a.call("yield-then-trap")
            with pytest.raises(Trap, match="earlier trap"):
                await a.call("count")
            assert await b.call("count") == 1


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threaded"])
async def test_trap_after_return_poisons_and_the_block_exits_normally(threaded: bool) -> None:
    """A task traps after returning its value (in a later callback step).

    What the runtime does: the trap poisons the instance; the next call raises
    :class:`Trap` naming the original trap; the ``async with`` block still exits
    normally (no exception group), cancelling whatever else the instance ran. The
    trap is reported to callers of the instance, not raised out of the block.
    """
    host = Host(slow_seconds=0.01)
    name = "return-then-slow" if threaded else "return-then-trap"
    with trio.fail_after(5):
        async with host.open(threaded=threaded) as inst, host.open(threaded=False) as other:
            assert await inst.call(name) == 5
            await wait_until(lambda: inst._rt.poisoned is not None, "the trap happened")
            with pytest.raises(Trap, match="earlier trap") as info:
                await inst.call("return-then-forever" if threaded else "count")
            assert "unreachable" in str(info.value)
            assert await other.call("count") == 1


async def test_trap_after_return_nobody_observes_fails_the_block() -> None:
    # Nothing on the host side was told of the trap (no later call saw it), so
    # the block raises it rather than losing it.
    host = Host()
    with (
        trio.fail_after(5),
        pytest.raises(Trap, match=r"after its caller had its value.*unreachable"),
    ):
        async with host.open(threaded=False) as inst:
            assert await inst.call("return-then-trap") == 5
            await wait_until(lambda: inst._rt.poisoned is not None, "the trap happened")
    with pytest.raises(trio_wasi.Error, match="closed"):
        await inst.call("count")


# -- 5. backpressure delays, never drops -------------------------------------------------


async def test_backpressure_from_the_host_delays_calls() -> None:
    """Calls made while the export's backpressure is set start once it is lowered."""
    host = Host()
    results: dict[int, int] = {}
    with trio.fail_after(5):
        async with host.open(threaded=False) as inst:
            await inst.call("bp-inc")

            async def call(i: int) -> None:
                results[i] = await inst.call("echo", i)

            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(call, i)
                await trio.testing.wait_all_tasks_blocked()
                # Held for a while: the queued calls must keep waiting, not fail.
                await trio.sleep(0.2)
                assert results == {}
                await inst.call("bp-dec")
            assert results == {i: i for i in range(10)}
            assert await inst.call("echo", 11) == 11


async def test_backpressure_held_by_the_guest_serialises_calls() -> None:
    """Each call raises backpressure while it works: calls queue up, and all complete."""
    host = Host(slow_seconds=0.02)
    results: dict[int, int] = {}
    with trio.fail_after(5):
        async with host.open(threaded=True) as inst:

            async def call(i: int) -> None:
                results[i] = await inst.call("serial", i)

            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(call, i)
    assert results == {i: i for i in range(10)}
    assert host.slow_done == 10
    assert host.slow_peak == 1


# -- 6. many concurrent calls --------------------------------------------------------------


async def test_fifty_concurrent_calls_overlap() -> None:
    # No `slow` call finishes before all 50 have started: had the runtime run
    # the calls one after another, the first would wait forever (the hang guard fails).
    host = Host(gated=True, open_at=50)
    results: list[int] = []
    with trio.fail_after(10):
        async with host.open(threaded=True) as inst:

            async def call() -> None:
                results.append(await inst.call("sleep-call"))

            async with trio.open_nursery() as nursery:
                for _ in range(50):
                    nursery.start_soon(call)
    assert results == [42] * 50
    assert host.slow_done == 50
    assert host.slow_peak == 50


# -- the async call benchmark ----------------------------------------------------------------


def test_async_call_benchmark_runs() -> None:
    """The benchmark's component works and its figures come out (not their values)."""
    path = Path(__file__).parent / "benchmarks" / "async_call.py"
    spec = importlib.util.spec_from_file_location("_trio_wasi_tests_async_call", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.measure(quick=True, sizes=(3, 5))
    keys = ["to_thread", "raw_core_call"]
    for mode in ("inline", "threaded"):
        keys += [f"{f}_{mode}" for f in ("trivial", "def", "async_def")]
        keys += [f"concurrent_{n}_{mode}" for n in (3, 5)]
    assert sorted(figures) == sorted(keys)
    for key in keys:
        if key.startswith("concurrent_"):
            # A difference of two CPU-time samples: on a busy machine, a few
            # calls can measure below one lone call.
            assert -1e6 < figures[key] < 1e6, key
        else:
            assert 0.0 < figures[key] < 1e6, key


async def test_host_coroutines_never_see_each_others_context_variables() -> None:
    """Each call of an async def import starts from a fresh context, as a new trio task would.

    Host coroutines run on trio tasks the instance reuses; a context variable
    one call sets must not be visible to the next call, inline or threaded.
    """
    path = Path(__file__).parent / "benchmarks" / "async_call.py"
    spec = importlib.util.spec_from_file_location("_trio_wasi_tests_async_call_ctx", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    async def ping() -> None:
        seen.append(var.get())
        var.set("set by an earlier call")

    engine = _engine()
    component = trio_wasi.Component.from_wat(module.ASYNC_CALL_WAT, engine=engine)
    for threaded in (False, True):
        linker = trio_wasi.Linker(engine)
        linker.define_function(None, "ping", ping)
        linker.define_function(None, "slow", module._slow)
        async with linker.instantiate(component, run_on_thread=threaded) as inst:
            for _ in range(3):
                assert await inst.call("call") == 1
    assert len(seen) == 6
    assert "set by an earlier call" not in seen


STREAM_WAT = """
(component
  (core module $Memory (memory (export "mem") 1))
  (core instance $memory (instantiate $Memory))
  (core module $M
    (import "" "mem" (memory 1))
    (import "" "task.return" (func $task.return (param i32)))
    (import "" "stream.new" (func $stream.new (result i64)))
    (import "" "stream.write" (func $stream.write (param i32 i32 i32) (result i32)))
    (import "" "waitable-set.new" (func $waitable-set.new (result i32)))
    (import "" "waitable.join" (func $waitable.join (param i32 i32)))
    ;; Returns 3, then writes 8 bytes into a stream whose readable end it keeps and
    ;; never reads, and waits for the write to complete.
    (func (export "return-then-write") (result i32)
      (local $ends i64) (local $tx i32) (local $ws i32)
      (call $task.return (i32.const 3))
      (local.set $ends (call $stream.new))
      (local.set $tx (i32.wrap_i64 (i64.shr_u (local.get $ends) (i64.const 32))))
      (if (i32.ne (call $stream.write (local.get $tx) (i32.const 16) (i32.const 8))
                  (i32.const -1 (; BLOCKED ;)))
        (then unreachable))
      (local.set $ws (call $waitable-set.new))
      (call $waitable.join (local.get $tx) (local.get $ws))
      (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (local.get $ws) (i32.const 4))))
    (func (export "trap-cb") (param i32 i32 i32) (result i32) unreachable))
  (type $ST (stream u8))
  (canon task.return (result u32) (core func $task.return))
  (canon stream.new $ST (core func $stream.new))
  (canon stream.write $ST async (memory (core memory $memory "mem")) (core func $stream.write))
  (canon waitable-set.new (core func $waitable-set.new))
  (canon waitable.join (core func $waitable.join))
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $memory "mem"))
    (export "task.return" (func $task.return))
    (export "stream.new" (func $stream.new))
    (export "stream.write" (func $stream.write))
    (export "waitable-set.new" (func $waitable-set.new))
    (export "waitable.join" (func $waitable.join))))))
  (func (export "return-then-write") async (result u32)
    (canon lift (core func $m "return-then-write") async (callback (core func $m "trap-cb")))))
"""


async def test_leaving_cancels_a_task_writing_a_stream_nobody_reads() -> None:
    component = trio_wasi.Component.from_wat(STREAM_WAT, engine=_engine())
    with trio.fail_after(2):
        with pytest.raises(LeaveBlock):
            async with trio_wasi.Linker(_engine()).instantiate(component) as inst:
                assert await inst.call("return-then-write") == 3
                # The task is still there, blocked on its write.
                await trio.testing.wait_all_tasks_blocked()
                assert instance_tasks(inst)
                raise LeaveBlock
