"""Limits: no guest can take the host down (time, memory, value size, handles, buffers).

Each guest is a small WAT component. Deadlines in these tests are hang guards
or the very limit under test; overlap is proven by counting answers, never by
timing.
"""

from __future__ import annotations

import functools
import resource
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

import trio_wasi
from trio_wasi import Limits, Trap, parse_w_options
from trio_wasi._engine import Engine

# -- components -------------------------------------------------------------------------

SPIN_WAT = """
(component
  (core module $m
    (memory (export "mem") 1)
    (func (export "spin") (loop $l (br $l)))
    (func (export "add") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
    ;; Grow one page at a time, touching every new page, until memory.grow
    ;; fails; return the number of pages reached.
    (func (export "bomb") (result i32)
      (local $old i32)
      (block $done
        (loop $more
          (local.set $old (memory.grow (i32.const 1)))
          (br_if $done (i32.eq (local.get $old) (i32.const -1)))
          (i32.store8 (i32.shl (local.get $old) (i32.const 16)) (i32.const 1))
          (br $more)))
      (memory.size))
    (table $t 1 funcref)
    (func (export "table-bomb") (result i32)
      (block $done
        (loop $more
          (br_if $done (i32.eq (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1)))
          (br $more)))
      (table.size $t))
  )
  (core instance $i (instantiate $m))
  (func (export "spin") (canon lift (core func $i "spin")))
  (func (export "add") (param "x" u32) (result u32) (canon lift (core func $i "add")))
  (func (export "bomb") (result u32) (canon lift (core func $i "bomb")))
  (func (export "table-bomb") (result u32) (canon lift (core func $i "table-bomb")))
)
"""


@functools.cache
def _engine() -> Engine:
    return Engine(use_cache=False)


@functools.cache
def spin_component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(SPIN_WAT, engine=_engine())


HANG_GUARD = 60


# -- time -------------------------------------------------------------------------------


async def _count_answers(other: trio_wasi.Instance, stop: trio.Event, counter: list[int]) -> None:
    while not stop.is_set():
        assert await other.call("add", counter[0]) == counter[0] + 1
        counter[0] += 1
        await trio.sleep(0)


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "store-thread"])
async def test_an_infinite_loop_traps_at_its_deadline_and_others_go_on(threaded: bool) -> None:
    linker = trio_wasi.Linker()
    answers = [0]
    stop = trio.Event()
    with trio.fail_after(HANG_GUARD):
        async with (
            linker.instantiate(spin_component(), run_on_thread=threaded) as looping,
            linker.instantiate(spin_component()) as other,
            trio.open_nursery() as nursery,
        ):
            assert looping.threaded is threaded
            nursery.start_soon(_count_answers, other, stop, answers)
            await trio.sleep(0)
            before = answers[0]
            with pytest.raises(Trap, match="deadline exceeded"):
                await looping.call("spin", timeout=1.0)
            during = answers[0] - before
            # The instance is discarded: no more wasm runs in it.
            with pytest.raises(Trap, match="poisoned"):
                await looping.call("add", 1)
            # The other instance goes on answering after the trap.
            after_trap = answers[0]
            while answers[0] < after_trap + 10:
                await trio.sleep(0)
            stop.set()
    if threaded:
        # The loop ran on its store thread while the trio loop served the
        # other instance for the whole second before the deadline.
        assert during > 10
    assert answers[0] >= after_trap + 10


async def test_the_instance_default_timeout_applies_and_a_call_can_override_it() -> None:
    linker = trio_wasi.Linker()
    with trio.fail_after(HANG_GUARD):
        async with linker.instantiate(spin_component(), limits=Limits(timeout=0.2)) as inst:
            assert inst.limits.timeout == 0.2
            # A call that finishes in time is not affected by the deadline.
            assert await inst.call("add", 41) == 42
            assert await inst.call("add", 1, timeout=None) == 2
            with pytest.raises(Trap, match="deadline exceeded"):
                await inst.call("spin")
            assert inst.limits.timeout == 0.2


async def test_a_guest_that_waits_past_its_deadline_is_discarded_too() -> None:
    # The epoch stops running wasm; a guest that waits (here: on a host
    # function that never returns) is ended by the trio side at the same time.
    wat = """
    (component
      (import "forever" (func $forever async))
      (core func $lowered (canon lower (func $forever)))
      (core module $m
        (import "" "forever" (func $forever))
        (func (export "wait") (call $forever)))
      (core instance $i (instantiate $m (with "" (instance (export "forever" (func $lowered))))))
      (func (export "wait") async (canon lift (core func $i "wait") async))
    )
    """
    linker = trio_wasi.Linker()

    async def forever() -> None:
        await trio.sleep_forever()

    linker.define_function(None, "forever", forever)
    component = trio_wasi.Component.from_wat(wat, engine=_engine())
    with trio.fail_after(HANG_GUARD):
        async with linker.instantiate(component) as inst:
            with pytest.raises(Trap, match=r"deadline exceeded: .*did not finish"):
                await inst.call("wait", timeout=0.2)
            with pytest.raises(Trap, match="poisoned"):
                await inst.call("wait")


def test_every_engine_is_configured_for_epoch_interruption() -> None:
    from trio_wasi._engine._config import ENGINE_SETTINGS, engine_fingerprint

    # Part of the settings, hence of the compile cache's fingerprint.
    assert ("epoch_interruption", True) in ENGINE_SETTINGS
    assert len(engine_fingerprint()) == 16


# -- memory and tables --------------------------------------------------------------------


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # pragma: no cover


def test_a_memory_bomb_is_refused_at_the_limit() -> None:
    limit = 64 << 20
    linker = trio_wasi.Linker()
    inst = linker.instantiate_sync(spin_component(), limits=Limits(max_memory_size=limit))
    try:
        before = _rss_bytes()
        pages = inst.call_sync("bomb")
        grown = _rss_bytes() - before
        # memory.grow returned -1 at the limit (it did not trap or abort), and
        # every page the guest got was touched.
        assert pages == limit // 65536
        assert grown < limit + (100 << 20)
        # The instance is still usable: a refused grow is not a trap.
        assert inst.call_sync("add", 1) == 2
    finally:
        inst.close()


def test_table_growth_is_refused_at_the_limit() -> None:
    # Limits given to the linker apply to the instances it makes.
    linker = trio_wasi.Linker(limits=Limits(max_table_elements=5001))
    inst = linker.instantiate_sync(spin_component())
    try:
        assert inst.call_sync("table-bomb") == 5001
    finally:
        inst.close()


def test_an_instance_whose_memory_starts_above_the_limit_is_not_created() -> None:
    linker = trio_wasi.Linker()
    with pytest.raises(trio_wasi.Error, match="memory"):
        linker.instantiate_sync(spin_component(), limits=Limits(max_memory_size=1024))


# -- -W options ---------------------------------------------------------------------------


def test_w_options_parse_sizes_times_and_counts() -> None:
    limits = parse_w_options(
        ["timeout=5s", "max-memory-size=64MiB,max-table-elements=10000", "max-handles=500"]
    )
    assert limits.timeout == 5.0
    assert limits.max_memory_size == 64 << 20
    assert limits.max_table_elements == 10_000
    assert limits.max_handles == 500
    # Untouched settings keep the base's values.
    assert limits.hostcall_budget == Limits.embedding().hostcall_budget
    assert parse_w_options(["timeout=250ms"]).timeout == pytest.approx(0.25)
    assert parse_w_options(["max-memory-size=2G"]).max_memory_size == 2 << 30
    assert parse_w_options(["hostcall-fuel=1000"]).hostcall_budget == 1000
    assert parse_w_options(["max-stream-buffer=none"], Limits.serve()).max_stream_buffer is None
    assert parse_w_options([], Limits.serve()) == Limits.serve()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("timeout", "expected name=value"),
        ("no-such=1", "unknown option"),
        ("timeout=soon", "expected a number"),
        ("timeout=5 parsecs", "unknown unit"),
        ("timeout=5y", "unknown unit"),
        ("max-handles=1.5", "whole number"),
        ("max-handles=0", "positive"),
        ("max-memory-size=0", "positive"),
    ],
)
def test_bad_w_options_are_refused_with_their_name(option: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_w_options([option])


def test_limits_validate_their_values() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Limits(timeout=0)
    with pytest.raises(TypeError, match="max_handles"):
        Limits(max_handles="10")  # type: ignore[arg-type]
    serve = Limits.serve()
    # Serving bounds everything (fuel is the deadline's alternative, off by
    # default: it needs a metering engine).
    assert all(value is not None for value in attrs.astuple(serve.replace(fuel=1)))
    assert serve.fuel is None
    assert Limits.run() == Limits.embedding() == Limits()
    assert serve.replace(timeout=None).timeout is None


# -- the host-call budget -------------------------------------------------------------------

# A caller fills its one page of memory with (pointer 0, length 65536) pairs and
# passes the first `count` of them to a callee as a list<list<u8>>: every inner
# list is the caller's whole memory, so 8192 of them describe 512 MiB in 64 KiB.
ALIASED_LISTS_WAT = """
(component
  (component $Callee
    (core module $M
      (memory (export "mem") 1)
      (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0))
      (func (export "take") (param i32 i32) (result i32) (local.get 1)))
    (core instance $m (instantiate $M))
    (func (export "take") (param "x" (list (list u8))) (result u32)
      (canon lift (core func $m "take") (memory (core memory $m "mem"))
        (realloc (core func $m "realloc")))))
  (instance $callee (instantiate $Callee))
  (component $Caller
    (import "take" (func $take (param "x" (list (list u8))) (result u32)))
    (core module $Mem (memory (export "mem") 1))
    (core instance $mem (instantiate $Mem))
    (core func $take_lowered (canon lower (func $take) (memory (core memory $mem "mem"))))
    (core module $M
      (import "mem" "mem" (memory 1))
      (import "" "take" (func $take (param i32 i32) (result i32)))
      (func (export "run") (param $count i32) (result i32)
        (local $p i32)
        (loop $fill
          (i64.store (local.get $p) (i64.const 0x0001000000000000))
          (local.set $p (i32.add (local.get $p) (i32.const 8)))
          (br_if $fill (i32.lt_u (local.get $p) (i32.const 65536))))
        (call $take (i32.const 0) (local.get $count))))
    (core instance $m (instantiate $M
      (with "mem" (instance $mem))
      (with "" (instance (export "take" (func $take_lowered))))))
    (func (export "run") (param "count" u32) (result u32) (canon lift (core func $m "run"))))
  (instance $caller (instantiate $Caller (with "take" (func $callee "take"))))
  (export "run" (func $caller "run"))
)
"""


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "store-thread"])
async def test_a_nested_list_the_size_of_memory_traps_on_the_budget(threaded: bool) -> None:
    component = trio_wasi.Component.from_wat(ALIASED_LISTS_WAT, engine=_engine())
    linker = trio_wasi.Linker()
    limits = Limits(hostcall_budget=8 << 20)
    with trio.fail_after(HANG_GUARD):
        async with linker.instantiate(component, limits=limits, run_on_thread=threaded) as inst:
            assert inst.threaded is threaded
            # Four inner lists (256 KiB) are within the budget and arrive whole.
            assert await inst.call("run", 4) == 4
        async with linker.instantiate(component, limits=limits, run_on_thread=threaded) as inst:
            with pytest.raises(Trap, match=r"host-call budget exhausted.*8388608 units"):
                await inst.call("run", 8192)


def test_the_budget_is_per_call() -> None:
    component = trio_wasi.Component.from_wat(ALIASED_LISTS_WAT, engine=_engine())
    linker = trio_wasi.Linker()
    inst = linker.instantiate_sync(component, limits=Limits(hostcall_budget=1 << 20))
    try:
        # Each call lifts 640 KiB out of the caller; calls in a row never add up.
        for _ in range(20):
            assert inst.call_sync("run", 10) == 10
    finally:
        inst.close()


# -- handles ----------------------------------------------------------------------------------

HOARD_WAT = """
(component
  (type $r (resource (rep i32)))
  (core func $resource.new (canon resource.new $r))
  (core func $waitable-set.new (canon waitable-set.new))
  (core module $M
    (import "" "resource.new" (func $resource.new (param i32) (result i32)))
    (import "" "waitable-set.new" (func $waitable-set.new (result i32)))
    (global $count (mut i32) (i32.const 0))
    (func (export "hoard-resources")
      (loop $more
        (drop (call $resource.new (global.get $count)))
        (global.set $count (i32.add (global.get $count) (i32.const 1)))
        (br $more)))
    (func (export "hoard-sets")
      (loop $more
        (drop (call $waitable-set.new))
        (global.set $count (i32.add (global.get $count) (i32.const 1)))
        (br $more)))
    (func (export "count") (result i32) (global.get $count)))
  (core instance $m (instantiate $M (with "" (instance
    (export "resource.new" (func $resource.new))
    (export "waitable-set.new" (func $waitable-set.new))))))
  (func (export "hoard-resources") (canon lift (core func $m "hoard-resources")))
  (func (export "hoard-sets") (canon lift (core func $m "hoard-sets")))
)
"""


@pytest.mark.parametrize("export", ["hoard-resources", "hoard-sets"])
def test_a_guest_creating_handles_in_a_loop_traps_at_the_bound(export: str) -> None:
    component = trio_wasi.Component.from_wat(HOARD_WAT, engine=_engine())
    linker = trio_wasi.Linker()
    inst = linker.instantiate_sync(component, limits=Limits(max_handles=1000))
    try:
        with pytest.raises(Trap, match=r"handle table is full.*1000 handles.*max-handles"):
            inst.call_sync(export)
        assert len(inst._rt.states[0].table) == 1000
    finally:
        inst.close()


# -- stream buffers ---------------------------------------------------------------------------

STREAM_SIZE = 4 * 65536

# `produce` returns the readable end of a stream<u8> and writes its whole
# memory (256 KiB) into it, re-issuing the write after each partial copy.
PRODUCER_WAT = f"""
(component
  (core module $Memory (memory (export "mem") 4))
  (core instance $memory (instantiate $Memory))
  (core module $M
    (import "" "mem" (memory 4))
    (import "" "task.return" (func $task.return (param i32)))
    (import "" "stream.new" (func $stream.new (result i64)))
    (import "" "stream.write" (func $stream.write (param i32 i32 i32) (result i32)))
    (import "" "stream.drop-writable" (func $stream.drop-writable (param i32)))
    (import "" "waitable-set.new" (func $waitable-set.new (result i32)))
    (import "" "waitable.join" (func $waitable.join (param i32 i32)))
    (global $tx (mut i32) (i32.const 0))
    (global $ws (mut i32) (i32.const 0))
    (global $done (export "done") (mut i32) (i32.const 0))
    (func $finish (result i32)
      (call $stream.drop-writable (global.get $tx))
      (i32.const 0 (; EXIT ;)))
    (func $pump (result i32)
      (local $r i32)
      (loop $again
        (if (i32.ge_u (global.get $done) (i32.const {STREAM_SIZE}))
          (then (return (call $finish))))
        (local.set $r (call $stream.write (global.get $tx) (global.get $done)
          (i32.sub (i32.const {STREAM_SIZE}) (global.get $done))))
        (if (i32.eq (local.get $r) (i32.const -1 (; BLOCKED ;)))
          (then (return
            (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (global.get $ws) (i32.const 4))))))
        (global.set $done (i32.add (global.get $done) (i32.shr_u (local.get $r) (i32.const 4))))
        (if (i32.and (local.get $r) (i32.const 15)) (then (return (call $finish))))
        (br $again))
      unreachable)
    (func (export "produce") (result i32)
      (local $ends i64)
      (local.set $ends (call $stream.new))
      (global.set $tx (i32.wrap_i64 (i64.shr_u (local.get $ends) (i64.const 32))))
      (call $task.return (i32.wrap_i64 (local.get $ends)))
      (global.set $ws (call $waitable-set.new))
      (call $waitable.join (global.get $tx) (global.get $ws))
      (call $pump))
    (func (export "cb") (param $event i32) (param $index i32) (param $payload i32) (result i32)
      (global.set $done (i32.add (global.get $done) (i32.shr_u (local.get $payload) (i32.const 4))))
      (if (i32.and (local.get $payload) (i32.const 15)) (then (return (call $finish))))
      (call $pump)))
  (type $ST (stream u8))
  (canon task.return (result $ST) (core func $task.return))
  (canon stream.new $ST (core func $stream.new))
  (canon stream.write $ST async (memory (core memory $memory "mem")) (core func $stream.write))
  (canon stream.drop-writable $ST (core func $stream.drop-writable))
  (canon waitable-set.new (core func $waitable-set.new))
  (canon waitable.join (core func $waitable.join))
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $memory "mem"))
    (export "task.return" (func $task.return))
    (export "stream.new" (func $stream.new))
    (export "stream.write" (func $stream.write))
    (export "stream.drop-writable" (func $stream.drop-writable))
    (export "waitable-set.new" (func $waitable-set.new))
    (export "waitable.join" (func $waitable.join))))))
  (func (export "produce") async (result $ST)
    (canon lift (core func $m "produce") async (callback (core func $m "cb"))))
)
"""


async def test_the_host_buffers_at_most_the_configured_stream_buffer() -> None:
    component = trio_wasi.Component.from_wat(PRODUCER_WAT, engine=_engine())
    linker = trio_wasi.Linker()
    with trio.fail_after(HANG_GUARD):
        async with linker.instantiate(component, limits=Limits(max_stream_buffer=1000)) as inst:
            receiver = await inst.call("produce")
            assert isinstance(receiver, trio_wasi.StreamReceiver)
            # Nobody reads: the guest's write stays pending in its own memory
            # and the host holds none of it.
            await trio.testing.wait_all_tasks_blocked()
            assert len(receiver._items) == 0
            sizes = [len(chunk) async for chunk in receiver]
    # Each receive held at most the buffer; everything arrived in order.
    assert max(sizes) <= 1000
    assert sum(sizes) == STREAM_SIZE


def test_the_timeout_bounds_synchronous_calls_and_start_functions() -> None:
    linker = trio_wasi.Linker()
    inst = linker.instantiate_sync(spin_component(), limits=Limits(timeout=0.2))
    try:
        with pytest.raises(Trap, match="deadline exceeded"):
            inst.call_sync("spin")
        with pytest.raises(Trap, match="poisoned"):
            inst.call_sync("add", 1)
    finally:
        inst.close()
    looping_start = """
    (component
      (core module $m (func $spin (loop $l (br $l))) (start $spin))
      (core instance $i (instantiate $m)))
    """
    component = trio_wasi.Component.from_wat(looping_start, engine=_engine())
    with pytest.raises(Trap, match="deadline exceeded"):
        linker.instantiate_sync(component, limits=Limits(timeout=0.2))


def test_the_limits_benchmark_runs() -> None:
    """The benchmark's figures come out (their values are not asserted)."""
    import importlib.util

    path = Path(__file__).parent / "benchmarks" / "limits.py"
    spec = importlib.util.spec_from_file_location("_trio_wasi_tests_limits_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.measure(quick=True)
    assert set(figures) == {
        "loop_ratio",
        "checksum_ratio",
        "call_us",
        "call_deadline_us",
        "deadline_overhead_us",
    }
    assert figures["loop_ratio"] > 0 and figures["call_us"] > 0


# A guest returns a stream<list<list<u8>>> and writes one element into it: a
# list of 8192 inner lists that each are its whole first page (512 MiB in all).
NESTED_STREAM_WAT = """
(component
  (core module $Memory (memory (export "mem") 2))
  (core instance $memory (instantiate $Memory))
  (core module $M
    (import "" "mem" (memory 2))
    (import "" "task.return" (func $task.return (param i32)))
    (import "" "stream.new" (func $stream.new (result i64)))
    (import "" "stream.write" (func $stream.write (param i32 i32 i32) (result i32)))
    (import "" "stream.drop-writable" (func $stream.drop-writable (param i32)))
    (import "" "waitable-set.new" (func $waitable-set.new (result i32)))
    (import "" "waitable.join" (func $waitable.join (param i32 i32)))
    (global $tx (mut i32) (i32.const 0))
    (func (export "produce") (result i32)
      (local $ends i64) (local $p i32) (local $ws i32)
      (loop $fill
        (i64.store (local.get $p) (i64.const 0x0001000000000000))
        (local.set $p (i32.add (local.get $p) (i32.const 8)))
        (br_if $fill (i32.lt_u (local.get $p) (i32.const 65536))))
      (i32.store (i32.const 65536) (i32.const 0))
      (i32.store (i32.const 65540) (i32.const 8192))
      (local.set $ends (call $stream.new))
      (global.set $tx (i32.wrap_i64 (i64.shr_u (local.get $ends) (i64.const 32))))
      (call $task.return (i32.wrap_i64 (local.get $ends)))
      (drop (call $stream.write (global.get $tx) (i32.const 65536) (i32.const 1)))
      (local.set $ws (call $waitable-set.new))
      (call $waitable.join (global.get $tx) (local.get $ws))
      (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (local.get $ws) (i32.const 4))))
    (func (export "cb") (param i32 i32 i32) (result i32)
      (call $stream.drop-writable (global.get $tx))
      (i32.const 0 (; EXIT ;))))
  (type $ST (stream (list (list u8))))
  (canon task.return (result $ST) (core func $task.return))
  (canon stream.new $ST (core func $stream.new))
  (canon stream.write $ST async (memory (core memory $memory "mem")) (core func $stream.write))
  (canon stream.drop-writable $ST (core func $stream.drop-writable))
  (canon waitable-set.new (core func $waitable-set.new))
  (canon waitable.join (core func $waitable.join))
  (core instance $m (instantiate $M (with "" (instance
    (export "mem" (memory $memory "mem"))
    (export "task.return" (func $task.return))
    (export "stream.new" (func $stream.new))
    (export "stream.write" (func $stream.write))
    (export "stream.drop-writable" (func $stream.drop-writable))
    (export "waitable-set.new" (func $waitable-set.new))
    (export "waitable.join" (func $waitable.join))))))
  (func (export "produce") async (result $ST)
    (canon lift (core func $m "produce") async (callback (core func $m "cb"))))
)
"""


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "store-thread"])
async def test_a_stream_copy_of_aliased_nested_lists_traps_on_the_budget(threaded: bool) -> None:
    component = trio_wasi.Component.from_wat(NESTED_STREAM_WAT, engine=_engine())
    linker = trio_wasi.Linker()
    limits = Limits(hostcall_budget=8 << 20)
    with trio.fail_after(HANG_GUARD):
        async with linker.instantiate(component, limits=limits, run_on_thread=threaded) as inst:
            receiver = await inst.call("produce")
            with pytest.raises(Trap, match=r"host-call budget exhausted.*8388608 units"):
                await receiver.receive()
            # The writer's instance is discarded, so leaving does not wait for
            # its task (still waiting for its write) forever.
            with pytest.raises(Trap, match="poisoned"):
                await inst.call("produce")


def test_a_bounded_handle_table_reuses_freed_indices_before_trapping() -> None:
    from trio_wasi._abi._handles import HandleTable

    table = HandleTable(limit=2)
    first = table.add("a")
    table.add("b")
    table.remove(first)
    assert table.add("c") == first
    with pytest.raises(Trap, match=r"handle table is full.*2 handles"):
        table.add("d")
    assert len(table) == 2


def test_the_budget_counts_the_bytes_of_each_list() -> None:
    from trio_wasi._abi._handles import InstanceState
    from trio_wasi._abi._load import load_list_from_range
    from trio_wasi._abi._options import CanonOptions, LiftLowerContext
    from trio_wasi._abi._types import U8Type, U32Type

    class Bytes:
        def __init__(self, size: int) -> None:
            self.data = bytearray(size)

        def view(self) -> memoryview:
            return memoryview(self.data)

    memory = Bytes(4096)
    state = InstanceState(hostcall_budget=1000)
    cx = LiftLowerContext(CanonOptions(memory=memory), state)  # type: ignore[arg-type]
    view = cx.memory_view()
    load_list_from_range(cx, view, 0, 100, U32Type())  # 400 bytes
    assert cx.budget == 1000 - 401
    load_list_from_range(cx, view, 0, 500, U8Type())  # 500 bytes
    assert cx.budget == 1000 - 401 - 501
    with pytest.raises(Trap, match=r"host-call budget exhausted.*1000 units"):
        load_list_from_range(cx, view, 0, 100, U32Type())
    # A nested instance inherits the bound; each context starts afresh.
    child = InstanceState(parent=state)
    assert LiftLowerContext(CanonOptions(memory=memory), child).budget == 1000  # type: ignore[arg-type]


# `start` returns 3 at once, then goes on in its callback, which never ends.
BACKGROUND_LOOP_WAT = """
(component
  (core module $M
    (import "" "task.return" (func $task.return (param i32)))
    (func (export "start") (result i32)
      (call $task.return (i32.const 3))
      (i32.const 1 (; YIELD ;)))
    (func (export "cb") (param i32 i32 i32) (result i32)
      (loop $l (br $l))
      (i32.const 0 (; EXIT ;))))
  (canon task.return (result u32) (core func $task.return))
  (core instance $m (instantiate $M
    (with "" (instance (export "task.return" (func $task.return))))))
  (func (export "start") async (result u32)
    (canon lift (core func $m "start") async (callback (core func $m "cb"))))
)
"""


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "store-thread"])
async def test_a_task_looping_after_it_returned_is_ended_by_the_instance_timeout(
    threaded: bool,
) -> None:
    component = trio_wasi.Component.from_wat(BACKGROUND_LOOP_WAT, engine=_engine())
    linker = trio_wasi.Linker()
    answers = [0]
    stop = trio.Event()
    with trio.fail_after(HANG_GUARD):
        async with (
            linker.instantiate(spin_component()) as other,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(_count_answers, other, stop, answers)
            # Nobody on the host side was told of the trap (the call was
            # over): the instance's block raises it when it ends.
            with pytest.raises(trio_wasi.Trap, match="deadline exceeded"):
                async with linker.instantiate(
                    component, limits=Limits(timeout=0.3), run_on_thread=threaded
                ) as inst:
                    assert inst.threaded is threaded
                    # The call is over before the loop starts: no call deadline
                    # covers the loop, the instance's timeout per step does.
                    assert await inst.call("start") == 3
                    while inst.poisoned is None:
                        await trio.sleep(0.01)
                    assert "deadline exceeded" in inst.poisoned
            after = answers[0]
            while answers[0] < after + 10:
                await trio.sleep(0)
            stop.set()


# -- the same bounds on a store thread ----------------------------------------------------


async def test_a_memory_bomb_on_a_store_thread_is_refused_at_the_limit() -> None:
    limit = 64 << 20
    linker = trio_wasi.Linker()
    with trio.fail_after(HANG_GUARD):
        async with linker.instantiate(
            spin_component(), limits=Limits(max_memory_size=limit), run_on_thread=True
        ) as inst:
            assert inst.threaded
            before = _rss_bytes()
            pages = await inst.call("bomb")
            grown = _rss_bytes() - before
            assert pages == limit // 65536
            assert grown < limit + (100 << 20)
            assert await inst.call("add", 1) == 2


@pytest.mark.parametrize("export", ["hoard-resources", "hoard-sets"])
async def test_handles_created_in_a_loop_on_a_store_thread_trap_at_the_bound(export: str) -> None:
    component = trio_wasi.Component.from_wat(HOARD_WAT, engine=_engine())
    linker = trio_wasi.Linker()
    with trio.fail_after(HANG_GUARD):
        async with linker.instantiate(
            component, limits=Limits(max_handles=1000), run_on_thread=True
        ) as inst:
            assert inst.threaded
            with pytest.raises(Trap, match=r"handle table is full.*1000 handles.*max-handles"):
                await inst.call(export)
            assert inst.poisoned is not None and "max-handles" in inst.poisoned


async def test_a_stream_nobody_reads_on_a_store_thread_holds_at_most_the_buffer() -> None:
    component = trio_wasi.Component.from_wat(PRODUCER_WAT, engine=_engine())
    linker = trio_wasi.Linker()
    with trio.fail_after(HANG_GUARD):
        async with linker.instantiate(
            component, limits=Limits(max_stream_buffer=1000), run_on_thread=True
        ) as inst:
            assert inst.threaded
            receiver = await inst.call("produce")
            assert isinstance(receiver, trio_wasi.StreamReceiver)
            await trio.testing.wait_all_tasks_blocked()
            assert len(receiver._items) == 0
            sizes = [len(chunk) async for chunk in receiver]
    assert max(sizes) <= 1000
    assert sum(sizes) == STREAM_SIZE
