"""Outgoing requests (wasi:http/client@0.3.0) at the host level, against loopback servers."""

from __future__ import annotations

from typing import Any

import trio
from example_builds import read_body, upstream

from trio_wasi import Err, Ok, Variant
from wasi_http._client import Client03, HttpClient
from wasi_http._types03 import Fields, Request, RequestOptions, Response, future_of


class _Context:
    """Stands in for an instance's HostContext: background work goes to a nursery."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.start_soon = nursery.start_soon


def _handler(release: trio.Event) -> Any:
    async def handle(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            await release.wait()
        body = await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"got:" + body})

    return handle


def _request(port: int, path: str, body: bytes | None, options: RequestOptions | None) -> Request:
    contents = None
    if body is not None:
        send, contents = trio.open_memory_channel[bytes](1)
        send.send_nowait(body)
        send.close()
    request, _sent = Request.new(Fields(), contents, future_of(Ok(None)), options)
    request.set_authority(f"127.0.0.1:{port}")
    request.set_path_with_query(path)
    request.set_method(Variant("post"))
    return request


async def test_a_request_streams_out_and_its_response_back() -> None:
    release = trio.Event()
    async with upstream(_handler(release)) as address, trio.open_nursery() as nursery:
        port = int(address.rsplit(":", 1)[1])
        async with HttpClient([f"127.0.0.1:{port}"]) as http:
            client = Client03(http)
            result = await client.send(_Context(nursery), _request(port, "/", b"hi", None))  # type: ignore[arg-type]
            assert isinstance(result, Ok)
            response = result.value
            assert isinstance(response, Response)
            assert response.get_status_code() == 200
            body, trailers = response.take_body()
            data = b"".join([chunk async for chunk in body])
            assert data == b"got:hi"
            assert await trailers.receive() == Ok(None)
        nursery.cancel_scope.cancel()


async def test_a_first_byte_timeout_is_an_error_code() -> None:
    release = trio.Event()
    async with upstream(_handler(release)) as address, trio.open_nursery() as nursery:
        port = int(address.rsplit(":", 1)[1])
        options = RequestOptions()
        options.set_first_byte_timeout(50_000_000)  # 50 ms; the upstream never answers
        async with HttpClient([f"127.0.0.1:{port}"]) as http:
            result = await Client03(http).send(  # type: ignore[arg-type]
                _Context(nursery), _request(port, "/slow", None, options)
            )
        assert result == Err(Variant("HTTP-response-timeout"))
        release.set()
        nursery.cancel_scope.cancel()


async def test_a_refused_connection_is_an_error_code() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        async with trio.open_nursery() as nursery, HttpClient([f"127.0.0.1:{port}"]) as http:
            result = await Client03(http).send(  # type: ignore[arg-type]
                _Context(nursery), _request(port, "/", None, None)
            )
    assert result == Err(Variant("connection-refused"))
