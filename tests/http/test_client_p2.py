"""wasi:http/outgoing-handler@0.2.0: the fetch_p2 example forwarding to a local upstream."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from example_builds import read_body, upstream
from http_helpers import build_example_p2, serving

from trio_wasi import Component


@pytest.fixture(scope="module")
def fetch_p2() -> Any:
    return Component.from_file(build_example_p2("fetch_p2"))


async def answer_with_what_arrived(scope: dict[str, Any], receive: Any, send: Any) -> None:
    body = await read_body(receive)
    text = f"{scope['method']} {scope['path']}?{scope['query_string'].decode()} {len(body)}\n"
    await send(
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"application/x-upstream")],
        }
    )
    await send({"type": "http.response.body", "body": text.encode() + body})


async def test_a_get_is_forwarded_and_its_response_streamed_back(fetch_p2: Any) -> None:
    async with upstream(answer_with_what_arrived) as host:
        async with (
            serving(fetch_p2, allow_http=[host]) as (url, app),
            httpx.AsyncClient(timeout=60) as client,
        ):
            response = await client.get(url + "/", headers={"url": f"http://{host}/p?q=1"})
    assert app.kind == "0.2"
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/x-upstream"
    assert response.content == b"GET /p?q=1 0\n"


async def test_a_post_body_streams_out_and_back(fetch_p2: Any) -> None:
    body = bytes(range(256)) * 1024  # 256 KiB: many 4 KiB writes each way
    async with upstream(answer_with_what_arrived) as host:
        async with (
            serving(fetch_p2, allow_http=[host]) as (url, _app),
            httpx.AsyncClient(timeout=120) as client,
        ):
            response = await client.post(
                url + "/", content=body, headers={"url": f"http://{host}/up"}
            )
    assert response.status_code == 201
    assert response.content == f"POST /up? {len(body)}\n".encode() + body


async def test_a_host_not_allowed_is_refused_with_an_error_code(fetch_p2: Any) -> None:
    async with upstream(answer_with_what_arrived) as host:
        async with serving(fetch_p2) as (url, _app), httpx.AsyncClient(timeout=60) as client:
            response = await client.get(url + "/", headers={"url": f"http://{host}/"})
    assert response.status_code == 502
    assert "HttpRequestDenied" in response.text


async def test_a_refused_connection_is_an_error_code(fetch_p2: Any) -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        host = f"127.0.0.1:{port}"
        async with (
            serving(fetch_p2, allow_http=[host]) as (url, _app),
            httpx.AsyncClient(timeout=60) as client,
        ):
            response = await client.get(url + "/", headers={"url": f"http://{host}/"})
    assert response.status_code == 502
    assert "ConnectionRefused" in response.text
