"""How the limits behave under ``serve``, and what fuel metering costs.

    python tests/benchmarks/serve_limits.py [--quick]

Figures (each taken within one run):

- ``late_inline_ms`` / ``late_thread_ms``: how long after its deadline a request
  whose guest loops forever gets its 500, median over several requests (the
  time from sending ``GET /loop`` to the response, minus the deadline), with
  the guest inline on the trio thread and on a store thread;
- ``late_inline_max_ms`` / ``late_thread_max_ms``: the largest of those;
- ``good_inline_ms`` / ``good_thread_ms``: for scale, the median time of a
  request the guest answers at once, on the same servers;
- ``fuel_loop_ratio``: a wasm loop of adds (no calls) compiled with fuel
  metering divided by the same loop without, both with epoch checks, on a bare
  wasmtime store;
- ``fuel_call_ratio``: one ``await instance.call("add", 1)`` on an instance of a
  metering engine (``Limits(fuel=...)``) divided by the same call without.
"""

from __future__ import annotations

import functools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import trio
import wasmtime

import trio_wasi
from trio_wasi import Engine, Limits
from trio_wasi._engine._config import new_config
from wasi_http import ServeConfig, WasiHttpApp, serve

LOOP_SERVICE = Path(__file__).resolve().parent.parent / "http" / "loop_service.wat"
DEADLINE = 0.3

LOOP_WAT = """
(module
  (func (export "count") (param $n i32) (result i32)
    (local $acc i32)
    (loop $l
      (local.set $acc (i32.add (local.get $acc) (local.get $n)))
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


async def _late_seconds(threaded: bool, requests: int) -> tuple[list[float], list[float]]:
    component = trio_wasi.Component.from_wat(LOOP_SERVICE.read_text(encoding="utf-8"))
    config = ServeConfig(
        bind=["127.0.0.1:0"],
        limits=Limits.serve().replace(timeout=DEADLINE),
        run_on_thread=True if threaded else None,
        max_concurrency=1,
    )
    app = WasiHttpApp(component, config)
    stop = trio.Event()
    late: list[float] = []
    good: list[float] = []
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            functools.partial(serve, app, config, shutdown_trigger=stop.wait)
        )
        async with httpx.AsyncClient(timeout=60) as client:
            await client.get(binds[0] + "/warm-up")
            for _ in range(requests):
                start = time.perf_counter()
                response = await client.get(binds[0] + "/loop")
                late.append(time.perf_counter() - start - DEADLINE)
                assert response.status_code == 500
                start = time.perf_counter()
                response = await client.get(binds[0] + "/good")
                good.append(time.perf_counter() - start)
                assert response.status_code == 200
        stop.set()
    return late, good


def _counter(fuel: bool) -> tuple[wasmtime.Store, Any]:
    engine = wasmtime.Engine(new_config(consume_fuel=fuel))
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1 << 62)
    if fuel:
        store.set_fuel((1 << 64) - 1)
    module = wasmtime.Module(engine, LOOP_WAT)
    return store, wasmtime.Instance(store, module, []).exports(store)["count"]


def _loop_ratio(iterations: int, repeats: int) -> float:
    """Metered over plain loop time, the two runs interleaved so load hits both alike."""
    counters = {fuel: _counter(fuel) for fuel in (False, True)}
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for fuel, (store, count) in counters.items():
            start = time.perf_counter()
            count(store, iterations)
            times[fuel].append(time.perf_counter() - start)
    return statistics.median(times[True]) / statistics.median(times[False])


async def _call_seconds(fuel: bool, calls: int) -> float:
    engine = Engine(use_cache=False, consume_fuel=fuel)
    component = trio_wasi.Component.from_wat(ADD_WAT, engine=engine)
    limits = Limits(fuel=1 << 60) if fuel else Limits()
    async with trio_wasi.Linker().instantiate(component, limits=limits) as inst:
        await inst.call("add", 1)
        start = time.perf_counter()
        for _ in range(calls):
            await inst.call("add", 1)
        return (time.perf_counter() - start) / calls


def measure(quick: bool = False) -> dict[str, float]:
    """The figures described in the module docstring."""
    requests = 1 if quick else 7
    inline, inline_good = trio.run(_late_seconds, False, requests)
    thread, thread_good = trio.run(_late_seconds, True, requests)
    iterations = 1 << (18 if quick else 24)
    repeats = 3 if quick else 7
    loop_ratio = _loop_ratio(iterations, repeats)
    calls = 200 if quick else 20_000
    call_plain = trio.run(_call_seconds, False, calls)
    call_metered = trio.run(_call_seconds, True, calls)
    return {
        "late_inline_ms": statistics.median(inline) * 1e3,
        "late_inline_max_ms": max(inline) * 1e3,
        "late_thread_ms": statistics.median(thread) * 1e3,
        "late_thread_max_ms": max(thread) * 1e3,
        "good_inline_ms": statistics.median(inline_good) * 1e3,
        "good_thread_ms": statistics.median(thread_good) * 1e3,
        "fuel_loop_ratio": loop_ratio,
        "fuel_call_ratio": call_metered / call_plain,
    }


if __name__ == "__main__":
    for name, value in measure(quick="--quick" in sys.argv).items():
        print(f"{name:22} {value:10.3f}")
