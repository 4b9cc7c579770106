"""Serving wasi:http components on hypercorn: the examples driven with httpx over loopback."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from example_builds import upstream
from http_helpers import duplex_post, serving, wait_until

from trio_wasi.wasi._state import WasiState
from wasi_http import ServeConfig, WasiHttpApp, serve
from wasi_http._cli import default_component

GREETING = b"Hello from a wasi:http 0.3 component!\n"


async def test_the_shipped_component_says_hello() -> None:
    async with serving(default_component()) as (url, _app), httpx.AsyncClient() as client:
        response = await client.get(url + "/anything")
    assert response.status_code == 200
    assert response.content == GREETING


async def test_hello_example(hello_component: Any) -> None:
    async with serving(hello_component) as (url, app), httpx.AsyncClient() as client:
        first = await client.get(url + "/")
        second = await client.post(url + "/x?y=1", content=b"ignored")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content == GREETING
    assert first.headers["content-type"] == "text/plain; charset=utf-8"
    # The guest finished its body before the head went out: sent whole, with
    # its length, not chunked.
    assert first.headers["content-length"] == str(len(GREETING))
    assert "transfer-encoding" not in first.headers
    assert app.pool is None  # the lifespan closed the pool when serving ended


async def test_http2_with_prior_knowledge(hello_component: Any) -> None:
    async with serving(hello_component) as (url, _app):
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            responses = [await client.get(url + f"/{i}") for i in range(3)]
    assert {r.http_version for r in responses} == {"HTTP/2"}
    assert [r.content for r in responses] == [GREETING] * 3


async def _h2_get(url: str, path: str) -> tuple[list[Any], bytes, list[Any]]:
    """GET ``path`` over HTTP/2 (prior knowledge) asking for trailers.

    httpx does not surface response trailers, so this speaks h2 directly and
    returns the response headers, the body and the trailers.
    """
    import h2.config
    import h2.connection
    import h2.events

    host, port = url.removeprefix("http://").split(":")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    headers: list[Any] = []
    trailers: list[Any] = []
    body = bytearray()
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        request = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", host.encode())]
        request += [(b":path", path.encode()), (b"te", b"trailers")]
        conn.send_headers(1, request, end_stream=True)
        await stream.send_all(conn.data_to_send())
        ended = False
        with trio.fail_after(60):
            while not ended:
                data = await stream.receive_some(65536)
                assert data, "the server closed the connection mid-response"
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        headers = list(event.headers)
                    elif isinstance(event, h2.events.DataReceived):
                        body += event.data
                        conn.acknowledge_received_data(event.flow_controlled_length, 1)
                    elif isinstance(event, h2.events.TrailersReceived):
                        trailers = list(event.headers)
                    elif isinstance(event, h2.events.StreamEnded):
                        ended = True
                await stream.send_all(conn.data_to_send())
    return headers, bytes(body), trailers


async def test_a_guests_response_trailers_reach_an_http2_client(hello_component: Any) -> None:
    async with serving(hello_component) as (url, _app):
        headers, body, trailers = await _h2_get(url, "/trailers")
        _plain_headers, plain_body, no_trailers = await _h2_get(url, "/")
    assert (b":status", b"200") in headers
    assert body == GREETING
    assert trailers == [(b"x-greeting-length", str(len(GREETING)).encode())]
    # A response whose trailers future holds none ends with its body.
    assert plain_body == GREETING
    assert no_trailers == []


async def test_echo_streams_both_ways(echo_component: Any) -> None:
    # The response's first chunk arrives while the request body is still
    # open: the client sends the second chunk only after reading the first
    # back, so a server that buffered the body whole would hang here.
    async with serving(echo_component) as (url, _app):
        host, port = url.removeprefix("http://").split(":")
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            await stream.send_all(
                b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                b"content-type: application/x-test\r\n\r\n5\r\nfirst\r\n"
            )
            seen = b""
            with trio.fail_after(60):
                while b"first" not in seen:
                    seen += await stream.receive_some(65536)
            assert seen.startswith(b"HTTP/1.1 200")
            assert b"content-type: application/x-test" in seen.lower()
            await stream.send_all(b"6\r\nsecond\r\n0\r\n\r\n")
            with trio.fail_after(60):
                while not seen.endswith(b"0\r\n\r\n"):
                    seen += await stream.receive_some(65536)
    assert b"second" in seen.split(b"first", 1)[1]


async def test_echo_of_a_large_body_round_trips(echo_component: Any) -> None:
    size = 8 * 1024 * 1024
    chunk = os.urandom(1 << 16)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    expected = hashlib.sha256(chunk * (size // len(chunk))).hexdigest()
    got = hashlib.sha256()
    count = 0

    def take(data: bytes) -> None:
        nonlocal count
        got.update(data)
        count += len(data)

    async with serving(echo_component) as (url, _app):
        status = await duplex_post(url, body(), take)
    assert status == 200
    assert count == size
    assert got.hexdigest() == expected


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
async def test_a_100_mb_echo_does_not_grow_memory(echo_component: Any) -> None:
    size = 100 * 1024 * 1024
    chunk = b"\xa5" * (1 << 16)
    peak = 0
    count = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal peak
        for _ in range(size // len(chunk)):
            peak = max(peak, _rss())
            yield chunk

    def take(data: bytes) -> None:
        nonlocal count, peak
        count += len(data)
        peak = max(peak, _rss())

    async with serving(echo_component) as (url, _app):
        # Warm the instance (its first request instantiates it) before measuring.
        await duplex_post(url, body_of(b"warm"), lambda data: None)
        start = _rss()
        status = await duplex_post(url, body(), take)
    assert status == 200
    assert count == size
    assert peak - start < 64 * 1024 * 1024, f"RSS grew by {(peak - start) / 1e6:.1f} MB"


async def body_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_200_concurrent_requests_on_one_instance(echo_component: Any) -> None:
    # Every request holds its body open until all 200 are in flight on the
    # one instance: they can only complete if the instance serves them at once.
    all_in = trio.Event()
    results: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"x"
        await all_in.wait()
        yield b"y"

    async def one(client: httpx.AsyncClient, url: str) -> None:
        response = await client.post(url + "/", content=body())
        results.append(response.content)

    async with serving(echo_component, max_instances=1, max_concurrency=200) as (url, app):
        limits = httpx.Limits(max_connections=250)
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            async with trio.open_nursery() as nursery:
                for _ in range(200):
                    nursery.start_soon(one, client, url)
                pool = app.pool
                assert pool is not None
                await wait_until(
                    lambda: sum(s.inflight for s in pool.slots) == 200, "200 in flight"
                )
                assert pool.created == 1
                all_in.set()
    assert results == [b"xy"] * 200


def _clock_waiters(app: Any) -> int:
    """How many clock waits the pooled instances' guests have pending."""
    pool = app.pool
    return sum(
        WasiState.of(slot.instance.context, app.config.wasi).clock_waiters
        for slot in pool.slots
        if slot.instance is not None
    )


async def test_a_client_disconnect_cancels_the_guest_task(hello_component: Any) -> None:
    async with serving(hello_component) as (url, app), httpx.AsyncClient() as client:
        pool = app.pool
        assert pool is not None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.get, url + "/sleep")
            await wait_until(lambda: any(s.inflight for s in pool.slots), "the request arrived")
            # Wait until the guest itself runs (it waits on the clock): a
            # request cancelled before its guest task started never reaches
            # the guest, and so could not make it trap.
            await wait_until(lambda: _clock_waiters(app) == 1, "the guest is sleeping")
            nursery.cancel_scope.cancel()  # the client goes away mid-request
        await wait_until(lambda: pool.cancelled == 1, "the server cancelled the request")
        await wait_until(lambda: not any(s.inflight for s in pool.slots), "its lease ended")
        # componentize-py 0.25.1 guests answer a task cancellation with a trap
        # (their callback has no case for it): that instance is discarded once
        # its block has closed, which follows the end of its last lease.
        await wait_until(lambda: pool.discarded == 1, "the trapped instance was discarded")
        # The server goes on serving.
        after = await client.get(url + "/")
        # Ended exchanges leave nothing behind for the disconnect sweeper
        # (the last one ends just after its response went out).
        await wait_until(lambda: not app._unwatched, "no exchange is left to watch")
    assert after.content == GREETING


async def test_a_trap_fails_only_the_trapping_instance(hello_component: Any) -> None:
    async with serving(hello_component, max_instances=2) as (url, app):
        async with httpx.AsyncClient() as client:
            trapped = await client.get(url + "/trap")
            later = [await client.get(url + "/") for _ in range(3)]
    assert trapped.status_code == 500
    assert [r.status_code for r in later] == [200] * 3
    assert app.pool is None


async def test_an_outgoing_request_to_a_host_not_allowed_is_refused(
    hello_component: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(hello_component) as (url, _app), httpx.AsyncClient() as client:
        response = await client.get(url + "/fetch", headers={"url": url + "/"})
    assert response.status_code == 403
    assert b"HTTP-request-denied" in response.content
    assert any("denied" in r.getMessage() for r in caplog.records)


async def test_an_allowed_outgoing_request_streams_back(hello_component: Any) -> None:
    # A plain ASGI app on loopback is the upstream.
    async def handler(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 201, "headers": []})
        for part in (b"up", b"stream"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async with upstream(handler) as address:
        port = address.rsplit(":", 1)[1]
        async with serving(hello_component, allow_http=[f"127.0.0.1:{port}"]) as (url, _app):
            async with httpx.AsyncClient() as client:
                response = await client.get(url + "/fetch", headers={"url": f"http://{address}/"})
    assert response.status_code == 201
    assert response.content == b"upstream"


async def test_a_disconnect_mid_body_cancels_without_losing_the_instance(
    echo_component: Any,
) -> None:
    # The guest returned its response and is streaming the body when the
    # client goes away: the body stream is dropped, the guest's writer sees
    # that, and the instance goes on serving.
    async with serving(echo_component) as (url, app):
        pool = app.pool
        assert pool is not None
        host, port = url.removeprefix("http://").split(":")
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(
            b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n"
        )
        seen = b""
        with trio.fail_after(60):
            while b"first" not in seen:
                seen += await stream.receive_some(65536)
        await stream.aclose()
        await wait_until(lambda: pool.cancelled == 1, "the server cancelled the request")
        got: list[bytes] = []
        status = await duplex_post(url, body_of(b"again"), got.append)
        assert (status, b"".join(got)) == (200, b"again")
        assert (pool.created, pool.discarded) == (1, 0)


async def test_an_instance_is_replaced_after_max_requests(hello_component: Any) -> None:
    async with serving(hello_component, max_requests=2) as (url, app):
        pool = app.pool
        assert pool is not None
        async with httpx.AsyncClient() as client:
            statuses = [(await client.get(url + "/")).status_code for _ in range(5)]
        created = pool.created
    assert statuses == [200] * 5
    assert created == 3  # two requests each for the first two, then a third instance


async def test_graceful_shutdown_lets_a_request_in_flight_finish(echo_component: Any) -> None:
    release = trio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"before "
        await release.wait()
        yield b"after"

    config = ServeConfig(bind=["127.0.0.1:0"], shutdown_timeout=60)
    app = WasiHttpApp(echo_component, config)
    stop = trio.Event()
    got: list[bytes] = []
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            functools.partial(serve, app, config, shutdown_trigger=stop.wait)
        )
        pool = app.pool
        assert pool is not None

        async def request() -> None:
            status = await duplex_post(binds[0], body(), got.append)
            got.append(str(status).encode())

        nursery.start_soon(request)
        await wait_until(lambda: any(s.inflight for s in pool.slots), "the request arrived")
        stop.set()  # shutdown starts with the request in flight...
        host, port = binds[0].removeprefix("http://").split(":")

        async def refused() -> bool:
            try:
                probe = await trio.open_tcp_stream(host, int(port))
            except OSError:
                return True
            await probe.aclose()
            return False

        with trio.fail_after(60):
            while not await refused():  # the server no longer accepts
                await trio.sleep(0.01)
        release.set()  # ...and the request in flight still completes
    assert b"".join(got[:-1]) == b"before after"
    assert got[-1] == b"200"
    assert app.pool is None


def test_the_access_log_computes_its_own_atoms_and_any_other_on_demand() -> None:
    from wasi_http._serve import AccessLog, _Atoms, hypercorn_config

    hc = hypercorn_config(ServeConfig())
    assert hc.logger_class is AccessLog
    request = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "http_version": "1.1",
        "client": ("127.0.0.1", 5000),
        "headers": [(b"user-agent", b"bench")],
        "query_string": b"q=1",
        "scheme": "http",
    }
    response = {"status": 200, "headers": [(b"content-length", b"38")]}
    atoms = _Atoms(request, response, 0.0015)
    assert hc.access_log_format % atoms == '127.0.0.1:5000 "GET /x 1.1" 200 38 1500us'
    # Atoms outside the format come from hypercorn's own computation.
    custom = "%(m)s %(Uq)s %(a)s"  # as a configured access_log_format would be
    assert custom % atoms == "GET /x?q=1 bench"


async def test_the_access_log_skips_hypercorns_line_for_a_close_during_the_last_write(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # hypercorn logs "no response" when the client closes the connection
    # while the response's last message is being written, then logs the
    # response: only the second line is kept. A request abandoned before
    # the application answered is still logged without a response.
    import logging

    from wasi_http._app import ANSWERED, _Exchange
    from wasi_http._serve import AccessLog, hypercorn_config

    hc = hypercorn_config(ServeConfig())
    access_log = AccessLog(hc)
    response = {"status": 200, "headers": [(b"content-length", b"2")]}

    async def ignore(message: object) -> None:
        pass

    answered = {"type": "http", "method": "GET", "path": "/a", "http_version": "1.1"}
    exchange = _Exchange(ignore, answered)
    await exchange.send({"type": "http.response.start", "status": 200, "headers": []})
    assert ANSWERED not in answered
    await exchange.send({"type": "http.response.body", "body": b"hi", "more_body": False})
    abandoned = {"type": "http", "method": "GET", "path": "/b", "http_version": "1.1"}
    with caplog.at_level(logging.INFO, logger="wasi_http.access"):
        await access_log.access(answered, None, 0.001)
        await access_log.access(answered, response, 0.001)
        await access_log.access(abandoned, None, 0.001)
    lines = [r.getMessage() for r in caplog.records if r.name == "wasi_http.access"]
    assert lines == ['- "GET /a 1.1" 200 2 1000us', '- "GET /b 1.1" - - 1000us']


async def test_freeze_gc_makes_the_first_instance_then_freezes(hello_component: Any) -> None:
    import gc

    config = ServeConfig(bind=["127.0.0.1:0"])
    app = WasiHttpApp(hello_component, config, freeze_gc=True)
    stop = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                functools.partial(serve, app, config, shutdown_trigger=stop.wait)
            )
            pool = app.pool
            assert pool is not None
            # Made at startup, before any request, and frozen with the rest.
            assert pool.created == 1
            assert gc.get_freeze_count() > 0
            async with httpx.AsyncClient() as client:
                response = await client.get(binds[0] + "/")
            assert response.content == GREETING
            assert pool.created == 1
            stop.set()
    finally:
        gc.unfreeze()


async def test_requests_leave_no_cycles_of_ours_for_the_garbage_collector(
    hello_component: Any,
) -> None:
    """What a request allocates is freed by reference counting alone.

    A cycle per request (say, an object and a bound method of its own held
    by something it holds) would be freed only by a collection, which walks
    the instance's structures and stalls every request in flight.
    """
    import gc

    def ours() -> list[str]:
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            found = [
                type(o).__qualname__
                for o in gc.garbage
                if type(o).__module__.startswith(("trio_wasi", "wasi_http"))
            ]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.collect()  # free what the list kept (it would be found again)
        return found

    async def requests() -> None:
        for _ in range(5):
            assert (await client.get(url + "/")).content == GREETING
            response = await client.post(url + "/", content=b"a body")
            assert response.status_code == 200

    async with serving(hello_component) as (url, _app), httpx.AsyncClient() as client:
        await requests()  # the instance, and whatever its first calls set up
        ours()
        gc.disable()
        try:
            await requests()
            assert ours() == []
        finally:
            gc.enable()


@pytest.mark.parametrize(
    ("version", "headers", "expected"),
    [
        ("1.1", [], False),
        ("1.0", [(b"host", b"x")], False),
        ("1.1", [(b"content-length", b"0")], False),
        ("1.1", [(b"content-length", b"5")], True),
        ("1.1", [(b"transfer-encoding", b"chunked")], True),
        ("2", [], True),  # HTTP/2 may send a body without announcing it
        ("2", [(b"content-length", b"0")], False),
    ],
)
def test_which_requests_get_a_body_channel(
    version: str, headers: list[tuple[bytes, bytes]], expected: bool
) -> None:
    from wasi_http._app import _has_body

    assert _has_body({"http_version": version, "headers": headers}) is expected


async def test_a_burst_at_startup_shares_the_first_instance(hello_component: Any) -> None:
    # No instance before the first request (the application is not frozen,
    # so nothing is made at startup): every request of the burst finds the
    # first one still starting, with room for all of them.
    async with serving(hello_component) as (url, app), httpx.AsyncClient() as client:
        pool = app.pool
        assert pool is not None and pool.created == 0

        async def one() -> None:
            assert (await client.get(url + "/")).content == GREETING

        async with trio.open_nursery() as nursery:
            for _ in range(12):
                nursery.start_soon(one)
        assert pool.created == 1
