"""The hash-all example, alone and behind the deflate middleware, against local upstreams.

hash-all fetches every ``url`` header's URL concurrently through
wasi:http/client and streams one ``URL: sha256`` line per URL as each fetch
finishes. The slow upstream holds its body until the test releases it, and the
test releases it only after reading the fast URLs' lines: a guest that answered
in header order, or buffered its response, would never get there (the hang
guard fails the test instead).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx
import pytest
import trio
from example_builds import composed_with_middleware, upstream
from http_helpers import build_example, serving

from trio_wasi import Component

CHUNK = 16 * 1024


@pytest.fixture(scope="module", params=["hash-all", "middleware+hash-all"])
def hash_all(request: pytest.FixtureRequest) -> tuple[str, Any]:
    """The hash-all service, served as built or composed behind the middleware."""
    if request.param == "hash-all":
        path = build_example("hash-all")
    else:
        path = composed_with_middleware("hash-all")
    return request.param, Component.from_file(path)


async def test_fast_urls_are_answered_while_a_slow_one_is_held(hash_all: tuple[str, Any]) -> None:
    kind, component = hash_all
    bodies = {"/a": os.urandom(5 * CHUNK + 7), "/b": os.urandom(3 * CHUNK)}
    bodies["/slow"] = os.urandom(4 * CHUNK + 1)
    slow_started = trio.Event()
    release = trio.Event()

    async def fast(scope: dict[str, Any], receive: Any, send: Any) -> None:
        data = bodies[scope["path"]]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        # Several body chunks, so the guest hashes piece by piece.
        for start in range(0, len(data), CHUNK):
            chunk = data[start : start + CHUNK]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        data = bodies["/slow"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": data[:CHUNK], "more_body": True})
        slow_started.set()
        await release.wait()
        await send({"type": "http.response.body", "body": data[CHUNK:]})

    async with upstream(fast) as fast_host, upstream(slow) as slow_host:
        slow_url = f"http://{slow_host}/slow"
        fast_urls = [f"http://{fast_host}/a", f"http://{fast_host}/b"]
        denied_url = "http://192.0.2.1:9/denied"  # not on the allow-list
        expected = {
            slow_url: hashlib.sha256(bodies["/slow"]).hexdigest(),
            fast_urls[0]: hashlib.sha256(bodies["/a"]).hexdigest(),
            fast_urls[1]: hashlib.sha256(bodies["/b"]).hexdigest(),
        }
        headers = [("url", u) for u in [slow_url, *fast_urls, denied_url]]
        if kind == "middleware+hash-all":
            headers.append(("accept-encoding", "deflate"))
        allow = [fast_host, slow_host]
        async with (
            serving(component, allow_http=allow) as (url, _app),
            httpx.AsyncClient(timeout=120) as client,
            client.stream("GET", url + "/", headers=headers) as response,
        ):
            assert response.status_code == 200
            coding = "deflate" if kind == "middleware+hash-all" else None
            assert response.headers.get("content-encoding") == coding
            lines = response.aiter_lines()
            early: dict[str, str] = {}
            with trio.fail_after(120):
                while len(early) < 3:
                    name, _, value = (await anext(lines)).partition(": ")
                    early[name] = value
                # The slow fetch is under way, its body held, while the others are answered.
                await slow_started.wait()
            release.set()
            with trio.fail_after(120):
                last = [line async for line in lines if line]
    assert set(early) == {*fast_urls, denied_url}
    assert early[denied_url].startswith("error") and "HttpRequestDenied" in early[denied_url]
    assert {u: early[u] for u in fast_urls} == {u: expected[u] for u in fast_urls}
    assert last == [f"{slow_url}: {expected[slow_url]}"]


async def test_no_url_headers_answer_an_empty_body(hash_all: tuple[str, Any]) -> None:
    _kind, component = hash_all
    async with serving(component) as (url, _app), httpx.AsyncClient(timeout=60) as client:
        response = await client.get(url + "/")
    assert response.status_code == 200
    assert response.text == ""
