"""A stackful service: one request per instance by default, shared when configured.

The component is the shipped demo's type section with a ``handle`` lifted
async without a callback (stackful) that first reads one byte of the request
body with a synchronous ``stream.read``, so its frame parks until the client
sends that byte; then it answers as the demo does (synchronous writes of the
body and the trailers, which park too). Parked frames of one instance nest
on its store thread; past ``MAX_PARKED`` of them, further requests wait to
start. A client that holds every body back shows by construction that the
instance reached that bound with more requests queued, and that all of them
are answered once the bodies come, by the one instance, which is not
discarded. Sharing is opt-in (``max_concurrency``): nested frames finish
last in, first out, so by default each request gets an instance of its own
and a client that holds its body back holds up nobody else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import trio
from http_helpers import serving, wait_until

import trio_wasi
from trio_wasi._run._executor import MAX_PARKED

DEMO = Path(__file__).resolve().parents[2] / "wasi_http" / "demo" / "hello.wat"

CONSUME_BODY = """
    (export "[static]request.consume-body" (func
      (param "this" (own $request))
      (param "res" (future (result (error $error-code))))
      (result (tuple (stream u8) (future (result (option (own $fields)) (error $error-code)))))))
"""

BODY = r"""
  (alias export $types "[static]request.consume-body" (func $consume-body))
  (core module $memory (memory (export "memory") 1))
  (core instance $mem (instantiate $memory))

  (core module $m
    (import "host" "memory" (memory 1))
    (import "host" "new-fields" (func $new-fields (result i32)))
    (import "host" "response-new" (func $response-new (param i32 i32 i32 i32 i32)))
    (import "host" "consume-body" (func $consume-body (param i32 i32 i32)))
    (import "host" "stream.new" (func $stream-new (result i64)))
    (import "host" "stream.read" (func $stream-read (param i32 i32 i32) (result i32)))
    (import "host" "stream.write" (func $stream-write (param i32 i32 i32) (result i32)))
    (import "host" "stream.drop-readable" (func $stream-drop-readable (param i32)))
    (import "host" "stream.drop-writable" (func $stream-drop-writable (param i32)))
    (import "host" "future.new" (func $future-new (result i64)))
    (import "host" "future.write" (func $future-write (param i32 i32) (result i32)))
    (import "host" "future.drop-readable" (func $future-drop-readable (param i32)))
    (import "host" "future.drop-writable" (func $future-drop-writable (param i32)))
    (import "host" "sent.new" (func $sent-new (result i64)))
    (import "host" "sent.write" (func $sent-write (param i32 i32) (result i32)))
    (import "host" "sent.drop-readable" (func $sent-drop-readable (param i32)))
    (import "host" "sent.drop-writable" (func $sent-drop-writable (param i32)))
    (import "host" "task.return"
      (func $task-return (param i32 i32 i32 i64 i32 i32 i32 i32)))
    ;; The body at 16; response.new's results at 128; consume-body's at 160;
    ;; ok values at 256 are all zeroes; the request byte lands at 512.
    (data (i32.const 16) "Hello from a wasi:http 0.3 component!\n")
    (func (export "handle") (param $request i32)
      (local $res i64) (local $body i64) (local $trailers i64) (local $in i32) (local $in-t i32)
      ;; Take the request body; report ok on `res` once read.
      (local.set $res (call $sent-new))
      (call $consume-body
        (local.get $request) (i32.wrap_i64 (local.get $res)) (i32.const 160))
      ;; Read the results before parking: other requests reuse the memory.
      (local.set $in (i32.load (i32.const 160)))
      (local.set $in-t (i32.load (i32.const 164)))
      ;; Parks until the client sends the body's one byte: COMPLETED (0), 1 value.
      (if (i32.ne (call $stream-read (local.get $in) (i32.const 512) (i32.const 1))
                  (i32.const 0x10))
        (then unreachable))
      (call $stream-drop-readable (local.get $in))
      (call $future-drop-readable (local.get $in-t))
      (drop (call $sent-write
        (i32.wrap_i64 (i64.shr_u (local.get $res) (i64.const 32))) (i32.const 256)))
      (call $sent-drop-writable (i32.wrap_i64 (i64.shr_u (local.get $res) (i64.const 32))))
      ;; Then as the demo: return the response, write its body and trailers.
      (local.set $body (call $stream-new))
      (local.set $trailers (call $future-new))
      (call $response-new
        (call $new-fields)
        (i32.const 1)
        (i32.wrap_i64 (local.get $body))
        (i32.wrap_i64 (local.get $trailers))
        (i32.const 128))
      (call $sent-drop-readable (i32.load (i32.const 132)))
      (call $task-return
        (i32.const 0) (i32.load (i32.const 128))
        (i32.const 0) (i64.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))
      (drop (call $stream-write
        (i32.wrap_i64 (i64.shr_u (local.get $body) (i64.const 32)))
        (i32.const 16) (i32.const 38)))
      (call $stream-drop-writable (i32.wrap_i64 (i64.shr_u (local.get $body) (i64.const 32))))
      (drop (call $future-write
        (i32.wrap_i64 (i64.shr_u (local.get $trailers) (i64.const 32)))
        (i32.const 256)))
      (call $future-drop-writable
        (i32.wrap_i64 (i64.shr_u (local.get $trailers) (i64.const 32))))))

  (core func $new-fields (canon lower (func $new-fields)))
  (core func $response-new (canon lower (func $response-new) (memory (core memory $mem "memory"))))
  (core func $consume-body (canon lower (func $consume-body) (memory (core memory $mem "memory"))))
  (core func $stream-new (canon stream.new $bytes))
  (core func $stream-read (canon stream.read $bytes (memory (core memory $mem "memory"))))
  (core func $stream-write (canon stream.write $bytes (memory (core memory $mem "memory"))))
  (core func $stream-drop-readable (canon stream.drop-readable $bytes))
  (core func $stream-drop-writable (canon stream.drop-writable $bytes))
  (core func $future-new (canon future.new $trailers))
  (core func $future-write (canon future.write $trailers (memory (core memory $mem "memory"))))
  (core func $future-drop-readable (canon future.drop-readable $trailers))
  (core func $future-drop-writable (canon future.drop-writable $trailers))
  (core func $sent-new (canon future.new $sent))
  (core func $sent-write (canon future.write $sent (memory (core memory $mem "memory"))))
  (core func $sent-drop-readable (canon future.drop-readable $sent))
  (core func $sent-drop-writable (canon future.drop-writable $sent))
  (core func $task-return
    (canon task.return (result $handle-result) (memory (core memory $mem "memory"))))
  (core instance $host
    (export "memory" (memory $mem "memory"))
    (export "new-fields" (func $new-fields))
    (export "response-new" (func $response-new))
    (export "consume-body" (func $consume-body))
    (export "stream.new" (func $stream-new))
    (export "stream.read" (func $stream-read))
    (export "stream.write" (func $stream-write))
    (export "stream.drop-readable" (func $stream-drop-readable))
    (export "stream.drop-writable" (func $stream-drop-writable))
    (export "future.new" (func $future-new))
    (export "future.write" (func $future-write))
    (export "future.drop-readable" (func $future-drop-readable))
    (export "future.drop-writable" (func $future-drop-writable))
    (export "sent.new" (func $sent-new))
    (export "sent.write" (func $sent-write))
    (export "sent.drop-readable" (func $sent-drop-readable))
    (export "sent.drop-writable" (func $sent-drop-writable))
    (export "task.return" (func $task-return)))
  (core instance $i (instantiate $m (with "host" (instance $host))))

  (type $handle-type (func async (param "request" (own $request)) (result $handle-result)))
  (func $handle (type $handle-type)
    (canon lift (core func $i "handle") async (memory (core memory $mem "memory"))))
  (instance $handler
    (export "request" (type $request))
    (export "response" (type $response))
    (export "error-code" (type $error-code))
    (export "handle" (func $handle)))
  (export "wasi:http/handler@0.3.0" (instance $handler))
)
"""


def stackful_wat() -> str:
    """The demo's imports (and ``request.consume-body``) and types, then ``handle``."""
    demo = DEMO.read_text()
    head = demo[: demo.index("  ;; The memory lives")]
    # Add consume-body to the imported types instance, after response.new.
    end_of_instance = head.index("  (alias export $types")
    close = head.rindex("))", 0, end_of_instance)
    head = head[:close] + CONSUME_BODY.rstrip() + "))" + head[close + 2 :]
    return head + BODY


def _component() -> trio_wasi.Component:
    return trio_wasi.Component.from_wat(stackful_wat())


def _store_thread_state(pool: Any) -> tuple[int, int]:
    """(parked frames, requests waiting to start) on the pool's one instance's store threads."""
    (slot,) = pool.slots
    executor = slot.instance._rt.executor
    return (
        sum(a.parked for a in executor.agents),
        sum(len(a.entries) for a in executor.agents),
    )


async def test_many_sequential_requests_share_one_instance() -> None:
    async with serving(_component(), max_instances=1, max_concurrency=100) as (url, app):
        pool = app.pool
        assert pool is not None
        async with httpx.AsyncClient() as client:
            for _ in range(500):
                response = await client.post(url, content=b"x")
                assert response.status_code == 200
                assert response.text == "Hello from a wasi:http 0.3 component!\n"
        (slot,) = pool.slots
        assert (pool.created, pool.discarded, slot.leases, slot.broken) == (1, 0, 500, None)
        assert slot.instance is not None and slot.instance.threaded


async def test_concurrent_requests_past_the_nesting_bound_share_one_instance() -> None:
    n = 2 * MAX_PARKED + 5
    bodies = trio.Event()
    statuses: list[tuple[int, str]] = []

    async def body() -> AsyncIterator[bytes]:
        await bodies.wait()
        yield b"x"

    async with serving(_component(), max_instances=1, max_concurrency=n) as (url, app):
        pool = app.pool
        assert pool is not None
        limits = httpx.Limits(max_connections=n)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:

            async def one() -> None:
                response = await client.post(url, content=body(), headers={"content-length": "1"})
                statuses.append((response.status_code, response.text))

            async with trio.open_nursery() as nursery:
                for _ in range(n):
                    nursery.start_soon(one)
                # Every request is in: MAX_PARKED of them parked in the guest
                # (each waits for its body), the others queued to start.
                await wait_until(
                    lambda: (
                        len(pool.slots) == 1
                        and _store_thread_state(pool) == (MAX_PARKED, n - MAX_PARKED)
                    ),
                    "the instance holds the most frames it nests and queues the rest",
                )
                bodies.set()
        assert statuses == [(200, "Hello from a wasi:http 0.3 component!\n")] * n
        (slot,) = pool.slots
        assert (pool.created, pool.discarded, slot.leases, slot.broken) == (1, 0, n, None)
        assert _store_thread_state(pool) == (0, 0)


async def test_by_default_a_request_is_not_held_up_by_a_later_one() -> None:
    # A enters and waits for its body, then B does. Sharing A's instance, B's
    # frame would nest on A's, and A, once its body came, could only finish
    # after B; by default B gets an instance of its own, and A is answered
    # while B still waits for its body.
    a_body, b_body = trio.Event(), trio.Event()
    answered: list[str] = []

    def held(event: trio.Event) -> AsyncIterator[bytes]:
        async def body() -> AsyncIterator[bytes]:
            await event.wait()
            yield b"x"

        return body()

    def parked(pool: Any) -> list[int]:
        return [
            sum(a.parked for a in slot.instance._rt.executor.agents)
            for slot in pool.slots
            if slot.instance is not None
        ]

    async with serving(_component(), max_instances=2) as (url, app):
        pool = app.pool
        assert pool is not None
        async with httpx.AsyncClient(timeout=60) as client:

            async def post(name: str, event: trio.Event) -> None:
                response = await client.post(
                    url, content=held(event), headers={"content-length": "1"}
                )
                assert response.status_code == 200
                answered.append(name)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(post, "A", a_body)
                await wait_until(lambda: parked(pool) == [1], "A's frame is parked")
                nursery.start_soon(post, "B", b_body)
                await wait_until(lambda: sum(parked(pool)) == 2, "B's frame is parked")
                a_body.set()
                await wait_until(lambda: answered == ["A"], "A is answered while B waits")
                b_body.set()
        assert answered == ["A", "B"]
        assert (pool.created, pool.discarded) == (2, 0)
