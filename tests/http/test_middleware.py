"""The deflate middleware composed with the echo example by ``wasm-tools compose``.

The composed component imports nothing of wasi:http/handler: the middleware's
imported handler is the echo instance's export. A deflate-coded request body
is inflated before echo sees it; echo's response is deflated on the way out
when the client accepts deflate.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from example_builds import MIDDLEWARE_WORLD, composed_with_middleware
from http_helpers import ROOT, build_example, duplex_post, serving

from trio_wasi import Component


@pytest.fixture(scope="module")
def middleware_echo() -> Any:
    return Component.from_file(composed_with_middleware("echo"))


def deflate(data: bytes) -> bytes:
    return zlib.compress(data)


async def test_a_compressed_body_round_trips_compressed(middleware_echo: Any) -> None:
    body = os.urandom(1 << 16) + b"compressible " * 50_000
    async with (
        serving(middleware_echo) as (url, _app),
        httpx.AsyncClient(timeout=120) as client,
        client.stream(
            "POST",
            url + "/",
            content=deflate(body),
            headers={
                "content-encoding": "deflate",
                "accept-encoding": "deflate",
                "content-type": "application/x-test",
            },
        ) as response,
    ):
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "deflate"
    assert response.headers["content-type"] == "application/x-test"
    assert len(raw) < len(body)
    assert zlib.decompress(raw) == body


async def test_a_compressed_request_is_echoed_plain_to_a_client_without_deflate(
    middleware_echo: Any,
) -> None:
    body = b"plain again " * 10_000
    async with serving(middleware_echo) as (url, _app), httpx.AsyncClient(timeout=120) as client:
        response = await client.post(
            url + "/",
            content=deflate(body),
            headers={"content-encoding": "deflate", "accept-encoding": "identity"},
        )
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.content == body


async def test_a_plain_request_is_compressed_for_a_client_that_accepts_deflate(
    middleware_echo: Any,
) -> None:
    body = b"squeeze me " * 10_000
    async with (
        serving(middleware_echo) as (url, _app),
        httpx.AsyncClient(timeout=120) as client,
        client.stream(
            "POST", url + "/", content=body, headers={"accept-encoding": "deflate;q=0.5, gzip"}
        ) as response,
    ):
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.headers["content-encoding"] == "deflate"
    assert zlib.decompress(raw) == body


async def test_both_directions_stream_through_the_middleware(middleware_echo: Any) -> None:
    # The client sends its second compressed chunk only after the first came
    # back compressed and inflated: a middleware that buffered either body
    # whole would hang here (the hang guard fails the test).
    coder = zlib.compressobj()
    inflater = zlib.decompressobj()
    received = bytearray()
    first_back = trio.Event()

    def on_chunk(data: bytes) -> None:
        received.extend(inflater.decompress(data))
        if b"first" in received:
            first_back.set()

    async def body() -> AsyncIterator[bytes]:
        yield coder.compress(b"first|") + coder.flush(zlib.Z_SYNC_FLUSH)
        with trio.fail_after(60):
            await first_back.wait()
        yield coder.compress(b"second") + coder.flush()

    async with serving(middleware_echo) as (url, _app):
        status = await duplex_post(
            url,
            body(),
            on_chunk,
            headers=[("content-encoding", "deflate"), ("accept-encoding", "deflate")],
        )
    assert status == 200
    assert bytes(received) == b"first|second"
    assert inflater.eof


async def test_a_corrupt_deflate_body_aborts_the_response(middleware_echo: Any) -> None:
    # The middleware ends the inflated body with an error instead of trailers;
    # echo passes that on as its response trailers, and the server then cuts
    # the response off rather than finishing it as if it were whole.
    good = deflate(b"x" * 1000)
    corrupt = good[:10] + bytes(b ^ 0xFF for b in good[10:])
    async with serving(middleware_echo) as (url, _app), httpx.AsyncClient(timeout=60) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            response = await client.post(
                url + "/",
                content=corrupt,
                headers={"content-encoding": "deflate", "accept-encoding": "identity"},
            )
            raise AssertionError(f"a corrupt body was answered whole: {response}")


async def test_the_cli_serves_the_composed_component() -> None:
    path = composed_with_middleware("echo")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trio_wasi", "serve", "--addr", "127.0.0.1:0", str(path)],
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stderr is not None
    log = b""
    try:
        with trio.fail_after(120):
            while not (match := re.search(rb"serving on (http://\S+)", log)):
                chunk = await proc.stderr.receive_some(4096)
                assert chunk, log.decode()
                log += chunk
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(
                match.group(1).decode() + "/",
                content=deflate(b"through the cli"),
                headers={"content-encoding": "deflate", "accept-encoding": "deflate"},
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            await proc.wait()
    assert response.headers["content-encoding"] == "deflate"
    assert response.content == b"through the cli"  # httpx inflates it


@pytest.mark.parametrize(
    ("accept", "deflated"),
    [
        ("deflate", True),
        ("gzip, deflate;q=0.5", True),
        ("*", True),
        ("deflate;q=0, *", False),
        ("*;q=0", False),
        ("identity", False),
        ("DEFLATE;Q=1.0", True),
    ],
)
async def test_accept_encoding_decides_the_coding(
    middleware_echo: Any, accept: str, deflated: bool
) -> None:
    async with (
        serving(middleware_echo) as (url, _app),
        httpx.AsyncClient(timeout=60) as client,
        client.stream(
            "POST", url + "/", content=b"coded or not", headers={"accept-encoding": accept}
        ) as response,
    ):
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.headers.get("content-encoding") == ("deflate" if deflated else None)
    assert (zlib.decompress(raw) if deflated else raw) == b"coded or not"


def test_the_middleware_alone_is_refused_with_a_one_line_error() -> None:
    # Uncomposed, it imports wasi:http/handler, which the host does not provide.
    path = build_example("middleware", world=MIDDLEWARE_WORLD)
    proc = subprocess.run(
        [sys.executable, "-m", "trio_wasi", "serve", "--addr", "127.0.0.1:0", str(path)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=300,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: missing import `wasi:http/handler@0.3.0#handle`")
    assert "Traceback" not in proc.stderr


async def test_concurrent_requests_through_the_composition_keep_their_own_bodies(
    middleware_echo: Any,
) -> None:
    # Many handler calls in flight at once cross from the middleware instance
    # into the echo instance; each response must carry its own request's body.
    count = 50
    results: dict[int, bytes] = {}
    bodies = {i: os.urandom(512) + b"%d " % i * (i * 100) for i in range(count)}
    async with (
        serving(middleware_echo) as (url, _app),
        httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=count)) as client,
    ):

        async def one(i: int) -> None:
            response = await client.post(
                url + "/",
                content=deflate(bodies[i]),
                headers={"content-encoding": "deflate", "accept-encoding": "deflate"},
            )
            assert response.headers["content-encoding"] == "deflate"
            results[i] = response.content

        with trio.fail_after(300):
            async with trio.open_nursery() as nursery:
                for i in range(count):
                    nursery.start_soon(one, i)
    assert results == bodies
