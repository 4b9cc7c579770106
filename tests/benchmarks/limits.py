"""What limits cost: epoch checks in compiled code, and a deadline per export call.

    python tests/benchmarks/limits.py [--quick]

Figures (ratios are taken within one run):

- ``loop_ratio``: a wasm loop of 2**24 iterations (adds and a branch, no calls),
  compiled with epoch interruption on (every trio_wasi engine) divided by the same
  loop compiled without, both on a bare wasmtime store;
- ``checksum_ratio``: the same for a loop that loads a byte and calls a small
  function per iteration;
- ``call_us`` / ``call_deadline_us``: one ``await instance.call("add", 1)`` on a
  small inline component without a timeout and with ``timeout=30``;
  ``deadline_overhead_us`` is their difference.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import trio
import wasmtime

import trio_wasi
from trio_wasi._engine._config import new_config

LOOP_WAT = """
(module
  (memory 1)
  (func (export "count") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $acc))
  ;; A checksum over memory, calling a small function per byte: more work per
  ;; loop iteration, and a call (each function entry checks the epoch too).
  (func $mix (param $acc i32) (param $b i32) (result i32)
    (i32.xor (i32.rotl (local.get $acc) (i32.const 5)) (local.get $b)))
  (func (export "checksum") (param $n i32) (result i32)
    (local $acc i32) (local $p i32)
    (loop $l
      (local.set $acc
        (call $mix (local.get $acc) (i32.load8_u (i32.and (local.get $n) (i32.const 65535)))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l (local.get $n)))
    (local.get $acc)))
"""

ADD_WAT = """
(component
  (core module $m
    (func (export "add") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1))))
  (core instance $i (instantiate $m))
  (func (export "add") (param "x" u32) (result u32) (canon lift (core func $i "add"))))
"""


def _loop_seconds(epoch: bool, iterations: int, repeats: int, export: str = "count") -> float:
    config = new_config()
    config.epoch_interruption = epoch
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    if epoch:
        store.set_epoch_deadline(1 << 62)
    module = wasmtime.Module(engine, LOOP_WAT)
    count: Any = wasmtime.Instance(store, module, []).exports(store)[export]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        count(store, iterations)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def _call_seconds(calls: int) -> tuple[float, float]:
    component = trio_wasi.Component.from_wat(ADD_WAT)
    linker = trio_wasi.Linker()
    async with linker.instantiate(component) as inst:

        async def loop(timeout: float | None) -> float:
            start = time.perf_counter()
            for i in range(calls):
                await inst.call("add", i, timeout=timeout)
            return (time.perf_counter() - start) / calls

        plain, timed = [], []
        for _ in range(5):
            plain.append(await loop(None))
            timed.append(await loop(30.0))
    return statistics.median(plain), statistics.median(timed)


def measure(quick: bool = False) -> dict[str, float]:
    """The figures described in the module docstring."""
    iterations = 1 << (18 if quick else 24)
    repeats = 3 if quick else 7
    with_epoch = _loop_seconds(True, iterations, repeats)
    without = _loop_seconds(False, iterations, repeats)
    mixed_with = _loop_seconds(True, iterations, repeats, "checksum")
    mixed_without = _loop_seconds(False, iterations, repeats, "checksum")
    plain, timed = trio.run(_call_seconds, 200 if quick else 5000)
    return {
        "loop_ratio": with_epoch / without,
        "checksum_ratio": mixed_with / mixed_without,
        "call_us": plain * 1e6,
        "call_deadline_us": timed * 1e6,
        "deadline_overhead_us": (timed - plain) * 1e6,
    }


if __name__ == "__main__":
    for name, value in measure(quick="--quick" in sys.argv).items():
        print(f"{name:22} {value:10.3f}")
