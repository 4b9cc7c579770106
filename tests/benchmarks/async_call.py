"""Per-call cost of async exports, inline and on store threads, in one run.

    python tests/benchmarks/async_call.py [--quick]

Every figure comes from one ``trio.run``, beside a ``trio.to_thread.run_sync``
round trip measured in the same process (the cost of one hand-off to another
thread and back, the yardstick for the store-thread figures):

* ``trivial``: an async export (callback lift) that returns at once, no import;
* ``def`` / ``async_def``: the export calls the host import ``ping`` through
  ``canon lower ... async``; a plain ``def`` returns at once (the lower reports
  RETURNED, no callback step); an ``async def`` makes the export WAIT for the
  subtask and return from its callback;
* ``concurrent``: N calls of an export that awaits a 50 ms ``async def`` import
  (``slow``), all started together on one instance; the figure is the overhead
  per call, ``(cpu(N) - cpu(1)) / (N - 1)``, where ``cpu`` is the process CPU
  time (every thread) from starting the first call to the last result, and
  ``cpu(1)`` that of one lone call on the same instance, each the median of a
  few runs. CPU time, unlike wall-clock time, neither counts the 50 ms sleep
  nor what other processes on the machine take.

Each single-call figure is taken on an instance forced inline
(``run_on_thread=False``) and one forced onto store threads (``run_on_thread=True``).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
if (REPO_ROOT / "trio_wasi" / "__init__.py").is_file() and str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import trio  # noqa: E402

import trio_wasi  # noqa: E402
from trio_wasi._engine import _bench  # noqa: E402

__all__ = ["ASYNC_CALL_WAT", "SLOW_SECONDS", "measure"]

SLOW_SECONDS = 0.05

ASYNC_CALL_WAT = """
(component
  (import "ping" (func $ping async))
  (import "slow" (func $slow async))
  (core module $M
    (import "" "ping" (func $ping (result i32)))
    (import "" "slow" (func $slow (result i32)))
    (import "" "task.return" (func $task.return (param i32)))
    (import "" "waitable-set.new" (func $waitable-set.new (result i32)))
    (import "" "waitable-set.drop" (func $waitable-set.drop (param i32)))
    (import "" "waitable.join" (func $waitable.join (param i32 i32)))
    (import "" "subtask.drop" (func $subtask.drop (param i32)))
    (import "" "context.get" (func $context.get (result i32)))
    (import "" "context.set" (func $context.set (param i32)))
    (func (export "trivial") (result i32)
      (call $task.return (i32.const 1))
      (i32.const 0 (; EXIT ;)))
    ;; Call an import; return at once if it RETURNED, else WAIT on a waitable
    ;; set of this call's own (kept in context slot 0 for the callback).
    (func $await (param $ret i32) (result i32)
      (local $ws i32)
      (if (i32.eq (i32.and (local.get $ret) (i32.const 0xf)) (i32.const 2 (; RETURNED ;)))
        (then
          (call $task.return (i32.const 1))
          (return (i32.const 0 (; EXIT ;)))))
      (local.set $ws (call $waitable-set.new))
      (call $context.set (local.get $ws))
      (call $waitable.join (i32.shr_u (local.get $ret) (i32.const 4)) (local.get $ws))
      (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (local.get $ws) (i32.const 4))))
    (func (export "call") (result i32) (call $await (call $ping)))
    (func (export "call-slow") (result i32) (call $await (call $slow)))
    (func (export "cb") (param $code i32) (param $index i32) (param $payload i32) (result i32)
      (if (i32.ne (local.get $code) (i32.const 1 (; SUBTASK ;))) (then unreachable))
      (if (i32.ne (local.get $payload) (i32.const 2 (; RETURNED ;))) (then unreachable))
      (call $subtask.drop (local.get $index))
      (call $waitable-set.drop (call $context.get))
      (call $task.return (i32.const 1))
      (i32.const 0 (; EXIT ;))))
  (canon lower (func $ping) async (core func $ping'))
  (canon lower (func $slow) async (core func $slow'))
  (canon task.return (result u32) (core func $task.return))
  (canon waitable-set.new (core func $waitable-set.new))
  (canon waitable-set.drop (core func $waitable-set.drop))
  (canon waitable.join (core func $waitable.join))
  (canon subtask.drop (core func $subtask.drop))
  (canon context.get i32 0 (core func $context.get))
  (canon context.set i32 0 (core func $context.set))
  (core instance $m (instantiate $M (with "" (instance
    (export "ping" (func $ping'))
    (export "slow" (func $slow'))
    (export "task.return" (func $task.return))
    (export "waitable-set.new" (func $waitable-set.new))
    (export "waitable-set.drop" (func $waitable-set.drop))
    (export "waitable.join" (func $waitable.join))
    (export "subtask.drop" (func $subtask.drop))
    (export "context.get" (func $context.get))
    (export "context.set" (func $context.set))))))
  (func (export "trivial") async (result u32)
    (canon lift (core func $m "trivial") async (callback (core func $m "cb"))))
  (func (export "call") async (result u32)
    (canon lift (core func $m "call") async (callback (core func $m "cb"))))
  (func (export "call-slow") async (result u32)
    (canon lift (core func $m "call-slow") async (callback (core func $m "cb")))))
"""


def _ping_sync() -> None:
    pass


async def _ping_async() -> None:
    pass


async def _slow() -> None:
    await trio.sleep(SLOW_SECONDS)


async def _best_us(call: Callable[[], Awaitable[Any]], iterations: int, repeats: int) -> float:
    """Best over ``repeats`` loops of the mean µs per call in a loop of ``iterations``.

    The best loop, not the median: on a shared machine the other loops
    measure the neighbours as much as the call.
    """
    for _ in range(max(iterations // 10, 1)):  # warm up
        await call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            await call()
        samples.append((time.perf_counter_ns() - start) / iterations / 1000)
    return min(samples)


async def _cpu(instance: trio_wasi.Instance, n: int) -> float:
    """CPU seconds from starting ``n`` concurrent ``call-slow`` calls to the last result."""
    results: list[Any] = []

    async def one() -> None:
        results.append(await instance.call("call-slow"))

    start = time.process_time()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)
    used = time.process_time() - start
    if results != [1] * n:
        raise AssertionError("a concurrent call returned the wrong value")
    return used


async def _concurrent_overhead_us(instance: trio_wasi.Instance, n: int) -> float:
    """µs of overhead per call for ``n`` concurrent ``call-slow`` calls (see above)."""
    lone = statistics.median([await _cpu(instance, 1) for _ in range(5)])
    runs = 3 if n <= 1_000 else 1
    batch = statistics.median([await _cpu(instance, n) for _ in range(runs)])
    return (batch - lone) / max(n - 1, 1) * 1e6


def measure(quick: bool = False, sizes: tuple[int, ...] = (100, 4_000)) -> dict[str, float]:
    """Figures in µs: see the module docstring; keys ``<figure>_<inline|threaded>``.

    ``concurrent_<N>_<mode>`` for each N in ``sizes``; also ``to_thread`` (one
    ``trio.to_thread.run_sync`` round trip) and ``raw_core_call``.
    """
    iterations, repeats = (200, 3) if quick else (2_000, 5)

    async def main() -> dict[str, float]:
        engine = trio_wasi.Engine()
        component = trio_wasi.Component.from_wat(ASYNC_CALL_WAT, engine=engine)
        figures: dict[str, float] = {}

        def nothing() -> None:
            pass

        async def round_trip() -> None:
            await trio.to_thread.run_sync(nothing)

        figures["to_thread"] = await _best_us(round_trip, iterations, repeats)
        for mode, threaded in (("inline", False), ("threaded", True)):
            for key, ping in (("def", _ping_sync), ("async_def", _ping_async)):
                linker = trio_wasi.Linker(engine)
                linker.define_function(None, "ping", ping)
                linker.define_function(None, "slow", _slow)
                async with linker.instantiate(component, run_on_thread=threaded) as instance:
                    if instance.threaded != threaded:
                        raise AssertionError(f"the instance did not run {mode}")
                    if await instance.call("call") != 1:
                        raise AssertionError("the export returned the wrong value")

                    async def call(instance: trio_wasi.Instance = instance) -> Any:
                        return await instance.call("call")

                    async def trivial(instance: trio_wasi.Instance = instance) -> Any:
                        return await instance.call("trivial")

                    figures[f"{key}_{mode}"] = await _best_us(call, iterations, repeats)
                    if key == "def":
                        figures[f"trivial_{mode}"] = await _best_us(trivial, iterations, repeats)
                    else:
                        for n in sizes:
                            figures[f"concurrent_{n}_{mode}"] = await _concurrent_overhead_us(
                                instance, n
                            )
        raw = _bench.bench_raw_call(iterations=iterations * 20, repeats=repeats)
        figures["raw_core_call"] = float(raw["us_per_call"])
        return figures

    return trio.run(main)


def _main() -> None:
    figures = measure(quick="--quick" in sys.argv[1:])
    for key, value in figures.items():
        print(f"{key:28s} {value:10.2f} us")


if __name__ == "__main__":
    _main()
