"""A guest that sees its request cancelled: the cancellation reaches the guest's task.

The component is the shipped demo's type section with a different body:
``handle`` is lifted async with a callback, drops the request and waits on a
future nobody writes. When the client goes away the server cancels the task;
the callback receives the task-cancelled event and acknowledges it with
``task.cancel``, counting the cancellations it saw in memory. Nothing else
can end such a call, so a request that ends as cancelled (rather than hanging
or trapping) shows by construction that the guest observed the cancellation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from http_helpers import serving, wait_until

import trio_wasi

DEMO = Path(__file__).resolve().parents[2] / "wasi_http" / "demo" / "hello.wat"

BODY = r"""
  (type $never (future))
  (core module $memory (memory (export "memory") 1))
  (core instance $mem (instantiate $memory))

  (core module $m
    (import "host" "memory" (memory 1))
    (import "host" "drop-request" (func $drop-request (param i32)))
    (import "host" "future.new" (func $future-new (result i64)))
    (import "host" "waitable-set.new" (func $set-new (result i32)))
    (import "host" "waitable.join" (func $join (param i32 i32)))
    (import "host" "future.read" (func $future-read (param i32 i32) (result i32)))
    (import "host" "task.cancel" (func $task-cancel))
    ;; The number of cancellations seen lives at 0; the wait set's index at 4;
    ;; reads land at 64.
    (func (export "handle") (param $request i32) (result i32)
      (local $future i64) (local $set i32)
      (call $drop-request (local.get $request))
      (local.set $future (call $future-new))
      ;; Start a read of the readable end; nothing will ever write it.
      (drop (call $future-read (i32.wrap_i64 (local.get $future)) (i32.const 64)))
      (local.set $set (call $set-new))
      (call $join (i32.wrap_i64 (local.get $future)) (local.get $set))
      ;; WAIT on the set.
      (i32.or (i32.const 2) (i32.shl (local.get $set) (i32.const 4))))
    (func (export "callback") (param $event i32) (param $p1 i32) (param $p2 i32) (result i32)
      ;; Only the task-cancelled event (6) can arrive.
      (if (i32.ne (local.get $event) (i32.const 6)) (then unreachable))
      (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))
      (call $task-cancel)
      (i32.const 0)))

  (core func $drop-request (canon resource.drop $request))
  (core func $future-new (canon future.new $never))
  (core func $set-new (canon waitable-set.new))
  (core func $join (canon waitable.join))
  (core func $future-read (canon future.read $never async))
  (core func $task-cancel (canon task.cancel))
  (core instance $host
    (export "memory" (memory $mem "memory"))
    (export "drop-request" (func $drop-request))
    (export "future.new" (func $future-new))
    (export "waitable-set.new" (func $set-new))
    (export "waitable.join" (func $join))
    (export "future.read" (func $future-read))
    (export "task.cancel" (func $task-cancel)))
  (core instance $i (instantiate $m (with "host" (instance $host))))

  (type $handle-type (func async (param "request" (own $request)) (result $handle-result)))
  (func $handle (type $handle-type)
    (canon lift (core func $i "handle") async (callback (core func $i "callback"))
      (memory (core memory $mem "memory"))))
  (instance $handler
    (export "request" (type $request))
    (export "response" (type $response))
    (export "error-code" (type $error-code))
    (export "handle" (func $handle)))
  (export "wasi:http/handler@0.3.0" (instance $handler))
)
"""


def waiter_wat() -> str:
    """The demo's imports and types followed by the waiting ``handle``."""
    demo = DEMO.read_text()
    head = demo[: demo.index("  ;; The memory lives")]
    return head + BODY


async def _disconnect_one(url: str, pool: Any, index: int) -> None:
    """Send one request, wait until the guest holds it, then go away."""
    async with trio.open_nursery() as nursery:
        host, port = url.removeprefix("http://").split(":")
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        await wait_until(lambda: sum(s.inflight for s in pool.slots) == 1, "the request arrived")
        await stream.aclose()
        nursery.cancel_scope.cancel()
    await wait_until(lambda: pool.cancelled == index, "the server cancelled the request")


async def test_a_client_disconnect_is_observed_by_the_guest() -> None:
    component = trio_wasi.Component.from_wat(waiter_wat())
    async with serving(component, max_instances=1) as (url, app):
        pool = app.pool
        assert pool is not None
        for index in (1, 2):
            await _disconnect_one(url, pool, index)
        await wait_until(lambda: not any(s.inflight for s in pool.slots), "the leases ended")
        # The guest acknowledged both cancellations: no trap, one instance
        # served both requests, and it is still in the pool.
        assert (pool.created, pool.discarded) == (1, 0)
        assert [s.broken for s in pool.slots] == [None]
