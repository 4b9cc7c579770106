"""Many calls of a stackful export on one instance: its store thread nests them, boundedly.

A stackful task that waits parks its frame on the store thread's stack, and a
call started meanwhile runs on top of it (wasm frames of one store unwind in
LIFO order). The executor nests at most ``MAX_PARKED`` parked frames per
store thread; further calls from the host wait to start until frames unwind.
Without that bound a few dozen concurrent calls reached Python's recursion
limit (and a few hundred wasmtime's wasm stack), which lost the instance.

The export ``wait`` calls the host's ``gate`` (an ``async def``, lowered
async), waits for the subtask with ``waitable-set.wait`` and returns 1.
``meet(n)`` is a rendezvous inside the guest: each of the first ``n - 1``
calls makes a future, keeps its writable end in memory and waits to read it;
the ``n``-th writes them all. Each call returns its arrival number.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import trio

import trio_wasi
from trio_wasi._run._executor import MAX_PARKED, ThreadedExecutor

WAT = """
(component
  (import "gate" (func $gate async))
  (type $signal (future))
  (core module $Mem (memory (export "memory") 1))
  (core instance $mem (instantiate $Mem))
  (core module $M
    (import "" "memory" (memory 1))
    (import "" "gate" (func $gate (result i32)))
    (import "" "task.return" (func $task.return (param i32)))
    (import "" "waitable-set.new" (func $ws.new (result i32)))
    (import "" "waitable-set.drop" (func $ws.drop (param i32)))
    (import "" "waitable-set.wait" (func $ws.wait (param i32 i32) (result i32)))
    (import "" "waitable.join" (func $join (param i32 i32)))
    (import "" "subtask.drop" (func $subtask.drop (param i32)))
    (import "" "future.new" (func $future.new (result i64)))
    (import "" "future.read" (func $future.read (param i32 i32) (result i32)))
    (import "" "future.write" (func $future.write (param i32 i32) (result i32)))
    (import "" "future.drop-readable" (func $future.drop-readable (param i32)))
    (import "" "future.drop-writable" (func $future.drop-writable (param i32)))
    (global $arrived (mut i32) (i32.const 0))
    ;; Stackful: call `gate`; unless it RETURNED (2) at once, wait for the
    ;; subtask's event (SUBTASK, 1) in a set of this call's own.
    (func (export "wait")
      (local $ret i32) (local $ws i32)
      (local.set $ret (call $gate))
      (if (i32.ne (i32.and (local.get $ret) (i32.const 0xf)) (i32.const 2))
        (then
          (local.set $ws (call $ws.new))
          (call $join (i32.shr_u (local.get $ret) (i32.const 4)) (local.get $ws))
          (if (i32.ne (call $ws.wait (local.get $ws) (i32.const 0)) (i32.const 1))
            (then unreachable))
          (call $subtask.drop (i32.shr_u (local.get $ret) (i32.const 4)))
          (call $ws.drop (local.get $ws))))
      (call $task.return (i32.const 1)))
    ;; The writable ends wait at 1024 + 4 * arrival; reads and writes
    ;; complete (0) with no payload.
    (func (export "meet") (param $n i32)
      (local $me i32) (local $f i64) (local $j i32) (local $w i32)
      (local.set $me (global.get $arrived))
      (global.set $arrived (i32.add (local.get $me) (i32.const 1)))
      (if (i32.lt_u (i32.add (local.get $me) (i32.const 1)) (local.get $n))
        (then
          (local.set $f (call $future.new))
          (i32.store (i32.add (i32.const 1024) (i32.shl (local.get $me) (i32.const 2)))
            (i32.wrap_i64 (i64.shr_u (local.get $f) (i64.const 32))))
          (if (call $future.read (i32.wrap_i64 (local.get $f)) (i32.const 0))
            (then unreachable))
          (call $future.drop-readable (i32.wrap_i64 (local.get $f))))
        (else
          (loop $each
            (if (i32.lt_u (local.get $j) (local.get $me))
              (then
                (local.set $w (i32.load
                  (i32.add (i32.const 1024) (i32.shl (local.get $j) (i32.const 2)))))
                (if (call $future.write (local.get $w) (i32.const 0)) (then unreachable))
                (call $future.drop-writable (local.get $w))
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $each))))))
      (call $task.return (local.get $me))))
  (canon lower (func $gate) async (core func $gate'))
  (canon task.return (result u32) (core func $task.return))
  (canon waitable-set.new (core func $ws.new))
  (canon waitable-set.drop (core func $ws.drop))
  (canon waitable-set.wait (memory (core memory $mem "memory")) (core func $ws.wait))
  (canon waitable.join (core func $join))
  (canon subtask.drop (core func $subtask.drop))
  (canon future.new $signal (core func $future.new))
  (canon future.read $signal (memory (core memory $mem "memory")) (core func $future.read))
  (canon future.write $signal (memory (core memory $mem "memory")) (core func $future.write))
  (canon future.drop-readable $signal (core func $future.drop-readable))
  (canon future.drop-writable $signal (core func $future.drop-writable))
  (core instance $m (instantiate $M (with "" (instance
    (export "memory" (memory $mem "memory"))
    (export "gate" (func $gate'))
    (export "task.return" (func $task.return))
    (export "waitable-set.new" (func $ws.new))
    (export "waitable-set.drop" (func $ws.drop))
    (export "waitable-set.wait" (func $ws.wait))
    (export "waitable.join" (func $join))
    (export "subtask.drop" (func $subtask.drop))
    (export "future.new" (func $future.new))
    (export "future.read" (func $future.read))
    (export "future.write" (func $future.write))
    (export "future.drop-readable" (func $future.drop-readable))
    (export "future.drop-writable" (func $future.drop-writable))))))
  (func (export "wait") async (result u32)
    (canon lift (core func $m "wait") async))
  (func (export "meet") async (param "n" u32) (result u32)
    (canon lift (core func $m "meet") async)))
"""


@functools.cache
def _component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(WAT)


class Gate:
    """The host's ``gate``: counts the calls in it; waits until released (or not at all)."""

    def __init__(self, *, closed: bool) -> None:
        self.opened = trio.Event()
        if not closed:
            self.opened.set()
        self.entered = 0
        self.inside = 0
        self.peak = 0

    async def gate(self) -> None:
        self.entered += 1
        self.inside += 1
        self.peak = max(self.peak, self.inside)
        try:
            await self.opened.wait()
            # Still one more wait: the guest's frame parks every time.
            await trio.lowlevel.checkpoint()
        finally:
            self.inside -= 1

    def open(self) -> trio_wasi.Instantiation:
        linker = trio_wasi.Linker(_component().engine)
        linker.define_function(None, "gate", self.gate)
        return linker.instantiate(_component())


def _agent_state(instance: trio_wasi.Instance) -> tuple[int, int]:
    """(parked frames, calls waiting to start) of the instance's one store thread."""
    ex = instance._rt.executor
    assert isinstance(ex, ThreadedExecutor)
    (agent,) = [a for a in ex.agents if a.name != "trio_wasi scheduler"]
    return agent.parked, len(agent.entries)


async def _wait_until(cond: Callable[[], bool], what: str) -> None:
    # Store threads are not trio tasks: poll. A hang guard, not a timing check.
    with trio.move_on_after(60):
        while not cond():
            await trio.sleep(0.002)
    assert cond(), f"timed out waiting until {what}"


async def test_many_successive_calls_share_one_instance() -> None:
    gate = Gate(closed=False)
    async with gate.open() as instance:
        assert instance.threaded
        for _ in range(500):
            assert await instance.call("wait") == 1
        assert _agent_state(instance) == (0, 0)
        assert instance.poisoned is None
    assert gate.entered == 500


async def test_concurrent_calls_nest_up_to_the_bound_then_queue() -> None:
    """Far more calls than the bound, all parked at once: each is answered.

    The gate stays closed until the store thread holds MAX_PARKED parked
    frames and queues every other call: by construction, the bound was
    reached and nothing nested past it.
    """
    n = 4 * MAX_PARKED + 3
    gate = Gate(closed=True)
    results: list[int] = []
    async with gate.open() as instance:

        async def call() -> None:
            results.append(await instance.call("wait"))

        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(call)
            await _wait_until(
                lambda: (
                    _agent_state(instance) == (MAX_PARKED, n - MAX_PARKED)
                    and gate.inside == MAX_PARKED
                ),
                "the store thread holds the most parked frames it nests",
            )
            gate.opened.set()
        assert _agent_state(instance) == (0, 0)
        assert instance.poisoned is None
    assert results == [1] * n
    assert gate.entered == n
    assert gate.peak == MAX_PARKED


async def test_a_call_waiting_to_start_can_be_cancelled() -> None:
    """Cancelling a call that waits behind the bound withdraws it: it never runs."""
    gate = Gate(closed=True)
    results: list[int] = []
    async with gate.open() as instance:

        async def call() -> None:
            results.append(await instance.call("wait"))

        async with trio.open_nursery() as nursery:
            for _ in range(MAX_PARKED):
                nursery.start_soon(call)
            await _wait_until(lambda: _agent_state(instance) == (MAX_PARKED, 0), "all parked")
            scope = trio.CancelScope()
            withdrawn = trio.Event()

            async def cancelled_call() -> None:
                with scope:
                    await instance.call("wait")
                if scope.cancelled_caught:
                    withdrawn.set()

            nursery.start_soon(cancelled_call)
            await _wait_until(lambda: _agent_state(instance) == (MAX_PARKED, 1), "it queued")
            scope.cancel()
            with trio.fail_after(60):
                await withdrawn.wait()
            assert _agent_state(instance) == (MAX_PARKED, 0)
            gate.opened.set()
        assert instance.poisoned is None
    assert results == [1] * MAX_PARKED
    assert gate.entered == MAX_PARKED


async def test_calls_past_the_bound_start_when_nothing_else_can_go_on() -> None:
    """Parked frames that wait for a call still queued: it starts past the bound.

    No host work is in flight, so holding the call back would leave nothing
    able to run; the executor starts it on top instead of declaring a
    deadlock, one call at a time, until the last arrival releases them all.
    Holding the bound strictly, the instance would trap here.
    """
    n = MAX_PARKED + 3
    results: list[int] = []
    async with Gate(closed=False).open() as instance:

        async def call() -> None:
            results.append(await instance.call("meet", n))

        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(call)
        assert instance.poisoned is None
        assert _agent_state(instance) == (0, 0)
    # Every arrival number once: the first n - 1 calls were all parked at
    # once (each waits for the last), MAX_PARKED + 2 of them.
    assert sorted(results) == list(range(n))
