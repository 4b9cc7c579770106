"""Micro-benchmarks of the engine's hot paths (ARCHITECTURE.md section 7).

Each function returns ``{"us_per_call": best, "iterations": n, "repeats": r}``
where ``best`` is the fastest of ``r`` timed loops of ``n`` operations, in
microseconds per operation. Run ``python -m trio_wasi._engine._bench`` for a
table.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable

import wasmtime

from ._compile import Engine
from ._store import Store

__all__ = [
    "bench_generic_call",
    "bench_host_callback",
    "bench_memory_copy",
    "bench_raw_call",
    "run_all",
]

_WAT = """
(module
  (import "host" "inc" (func $inc (param i32) (result i32)))
  (memory (export "mem") 2)
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "loop") (param $n i32) (result i32) (local $acc i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (call $inc (local.get $n))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again)))
    (local.get $acc))
)
"""

Result = dict[str, float]


def _best(loop: Callable[[int], None], iterations: int, repeats: int) -> Result:
    loop(max(iterations // 10, 1))  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter_ns()
        loop(iterations)
        best = min(best, (time.perf_counter_ns() - start) / iterations / 1000)
    return {"us_per_call": best, "iterations": iterations, "repeats": repeats}


def _setup(engine: Engine | None) -> tuple[Store, dict[str, object]]:
    engine = engine or Engine(use_cache=False)
    store = Store(engine)
    module = engine.compile(bytes(wasmtime.wat2wasm(_WAT)))
    inc = store.host_func(["i32"], ["i32"], lambda x: x + 1)
    instance = store.instantiate(module, [inc])
    return store, dict(instance.exports(store.wasmtime_store))


def bench_generic_call(iterations: int = 20_000, repeats: int = 5) -> Result:
    """wasmtime-py's generic ``Func.__call__``, 2 x i32 -> i32."""
    store, exports = _setup(None)
    add = exports["add"]
    assert isinstance(add, wasmtime.Func)
    wstore = store.wasmtime

    def loop(n: int) -> None:
        for _ in range(n):
            add(wstore, 1, 2)

    try:
        return _best(loop, iterations, repeats)
    finally:
        store.close()


def bench_raw_call(iterations: int = 200_000, repeats: int = 5) -> Result:
    """Our RawFunc (``wasmtime_func_call_unchecked``), 2 x i32 -> i32."""
    store, exports = _setup(None)
    add_func = exports["add"]
    assert isinstance(add_func, wasmtime.Func)
    add = store.raw_func(add_func, ["i32", "i32"], ["i32"])

    def loop(n: int) -> None:
        for _ in range(n):
            add(1, 2)

    try:
        return _best(loop, iterations, repeats)
    finally:
        store.close()


def bench_host_callback(iterations: int = 200_000, repeats: int = 5) -> Result:
    """wasm -> Python through ``host_func``: a wasm loop calling an i32 -> i32 import."""
    store, exports = _setup(None)
    loop_func = exports["loop"]
    assert isinstance(loop_func, wasmtime.Func)
    wasm_loop = store.raw_func(loop_func, ["i32"], ["i32"])

    def loop(n: int) -> None:
        wasm_loop(n)

    try:
        return _best(loop, iterations, repeats)
    finally:
        store.close()


def bench_memory_copy(iterations: int = 20_000, repeats: int = 5) -> Result:
    """Copy 64 KiB of bytes into linear memory through ``LinearMemory.view()``."""
    store, exports = _setup(None)
    mem = exports["mem"]
    assert isinstance(mem, wasmtime.Memory)
    memory = store.memory(mem)
    payload = bytes(range(256)) * 256
    size = len(payload)

    def loop(n: int) -> None:
        for _ in range(n):
            memory.view()[1024 : 1024 + size] = payload

    try:
        result = _best(loop, iterations, repeats)
        assert bytes(memory.view()[1024 : 1024 + size]) == payload
        return result
    finally:
        store.close()


def run_all(iterations: int = 200_000) -> dict[str, Result]:
    """Every benchmark; the generic and memory ones run a tenth of ``iterations``."""
    small = max(iterations // 10, 1)
    return {
        "generic_call": bench_generic_call(small),
        "raw_call": bench_raw_call(iterations),
        "host_callback": bench_host_callback(iterations),
        "memory_copy_64k": bench_memory_copy(small),
    }


def _main() -> None:
    for name, result in run_all().items():
        print(f"{name:18} {result['us_per_call']:8.3f} us")
    # ctypes.memmove to the base address, for comparison with the view.
    store, exports = _setup(None)
    mem = exports["mem"]
    assert isinstance(mem, wasmtime.Memory)
    memory = store.memory(mem)
    payload = bytes(65536)

    def loop(n: int) -> None:
        for _ in range(n):
            ctypes.memmove(memory.data_address + 1024, payload, 65536)

    print(f"{'memmove_64k':18} {_best(loop, 20_000, 5)['us_per_call']:8.3f} us")
    store.close()


if __name__ == "__main__":
    _main()
