"""Per-call cost of an async export that awaits one async-lowered host import.

    python tests/benchmarks/async_call.py [--quick]

The export is lifted ``async`` with a callback; its core function calls the host
import ``ping`` through ``canon lower ... async``. When the import returns at once
(a plain ``def``) the lower reports RETURNED and the export returns without a
callback step; when it is an ``async def`` the export WAITs for the subtask and
returns from its callback. Both are timed inside one ``trio.run``, next to a raw
core wasm call (``trio_wasi._engine._bench.bench_raw_call``) measured in the same run.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
if (REPO_ROOT / "trio_wasi" / "__init__.py").is_file() and str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import trio  # noqa: E402

import trio_wasi  # noqa: E402
from trio_wasi._engine import _bench  # noqa: E402

__all__ = ["ASYNC_CALL_WAT", "measure"]

ASYNC_CALL_WAT = """
(component
  (import "ping" (func $ping async))
  (core module $M
    (import "" "ping" (func $ping (result i32)))
    (import "" "task.return" (func $task.return (param i32)))
    (import "" "waitable-set.new" (func $waitable-set.new (result i32)))
    (import "" "waitable.join" (func $waitable.join (param i32 i32)))
    (import "" "subtask.drop" (func $subtask.drop (param i32)))
    ;; One waitable set for every call, made on first use (calls are sequential).
    (global $ws (mut i32) (i32.const 0))
    (func (export "call") (result i32)
      (local $ret i32)
      (local.set $ret (call $ping))
      (if (i32.eq (i32.and (local.get $ret) (i32.const 0xf)) (i32.const 2 (; RETURNED ;)))
        (then
          (call $task.return (i32.const 1))
          (return (i32.const 0 (; EXIT ;)))))
      (if (i32.eqz (global.get $ws)) (then (global.set $ws (call $waitable-set.new))))
      (call $waitable.join (i32.shr_u (local.get $ret) (i32.const 4)) (global.get $ws))
      (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (global.get $ws) (i32.const 4))))
    (func (export "cb") (param $code i32) (param $index i32) (param $payload i32) (result i32)
      (if (i32.ne (local.get $code) (i32.const 1 (; SUBTASK ;))) (then unreachable))
      (if (i32.ne (local.get $payload) (i32.const 2 (; RETURNED ;))) (then unreachable))
      (call $subtask.drop (local.get $index))
      (call $task.return (i32.const 1))
      (i32.const 0 (; EXIT ;))))
  (canon lower (func $ping) async (core func $ping'))
  (canon task.return (result u32) (core func $task.return))
  (canon waitable-set.new (core func $waitable-set.new))
  (canon waitable.join (core func $waitable.join))
  (canon subtask.drop (core func $subtask.drop))
  (core instance $m (instantiate $M (with "" (instance
    (export "ping" (func $ping'))
    (export "task.return" (func $task.return))
    (export "waitable-set.new" (func $waitable-set.new))
    (export "waitable.join" (func $waitable.join))
    (export "subtask.drop" (func $subtask.drop))))))
  (func (export "call") async (result u32)
    (canon lift (core func $m "call") async (callback (core func $m "cb")))))
"""


def _ping_sync() -> None:
    pass


async def _ping_async() -> None:
    pass


async def _time_calls(instance: trio_wasi.Instance, iterations: int, repeats: int) -> float:
    """Median over ``repeats`` loops of the mean µs per call in a loop of ``iterations``."""
    for _ in range(max(iterations // 10, 1)):  # warm up
        await instance.call("call")
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(iterations):
            await instance.call("call")
        samples.append((time.perf_counter_ns() - start) / iterations / 1000)
    return statistics.median(samples)


def measure(quick: bool = False) -> dict[str, float]:
    """Figures in µs per call: ``def_import``, ``async_def_import`` and ``raw_core_call``.

    Also ``def_threaded`` and ``async_threaded`` (1.0 when that instance runs on a
    store thread, else 0.0), so a reader can tell which executor was measured.
    """
    iterations, repeats = (200, 3) if quick else (2_000, 5)

    async def main() -> dict[str, float]:
        engine = trio_wasi.Engine()
        component = trio_wasi.Component.from_wat(ASYNC_CALL_WAT, engine=engine)
        figures: dict[str, float] = {}
        for key, ping in (("def", _ping_sync), ("async_def", _ping_async)):
            linker = trio_wasi.Linker(engine)
            linker.define_function(None, "ping", ping)
            async with linker.instantiate(component) as instance:
                if await instance.call("call") != 1:
                    raise AssertionError("the export returned the wrong value")
                figures[f"{key}_import"] = await _time_calls(instance, iterations, repeats)
                figures[f"{key}_threaded"] = 1.0 if instance.threaded else 0.0
        raw = _bench.bench_raw_call(iterations=iterations * 20, repeats=repeats)
        figures["raw_core_call"] = float(raw["us_per_call"])
        return figures

    return trio.run(main)


def _main() -> None:
    figures = measure(quick="--quick" in sys.argv[1:])
    print(f"async call, def import:       {figures['def_import']:8.2f} us")
    print(f"async call, async def import: {figures['async_def_import']:8.2f} us")
    print(f"raw core call (same run):     {figures['raw_core_call']:8.3f} us")


if __name__ == "__main__":
    _main()
