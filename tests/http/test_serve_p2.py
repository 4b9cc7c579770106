"""Serving a wasi:http/proxy@0.2.0 component: bodies over wasi:io streams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from http_helpers import build_example_p2, serving

from trio_wasi import Component

GREETING = b"Hello from a wasi:http 0.2 component!\n"


@pytest.fixture(scope="session")
def hello_p2_component() -> Any:
    path: Path = build_example_p2("hello_p2")
    return Component.from_file(path)


async def test_a_02_component_answers(hello_p2_component: Any) -> None:
    async with serving(hello_p2_component) as (url, app), httpx.AsyncClient() as client:
        response = await client.get(url + "/")
    assert app.kind == "0.2"
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain"
    assert response.content == GREETING


async def test_a_02_component_streams_the_body_back(hello_p2_component: Any) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    async with serving(hello_p2_component) as (url, _app):
        async with httpx.AsyncClient(timeout=120) as client:
            response = await client.post(url + "/", content=body)
    assert response.status_code == 200
    assert response.content == body


async def test_a_02_instance_serves_one_request_at_a_time(hello_p2_component: Any) -> None:
    peak = 0
    async with serving(hello_p2_component, max_instances=1) as (url, app):
        pool = app.pool
        assert pool is not None

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max([peak, *(s.inflight for s in pool.slots)])
                await trio.sleep(0)

        results: list[bytes] = []
        async with httpx.AsyncClient() as client:
            async with trio.open_nursery() as outer:
                outer.start_soon(watch)
                async with trio.open_nursery() as nursery:
                    for _ in range(5):
                        nursery.start_soon(lambda: _get(client, url, results))
                outer.cancel_scope.cancel()
        assert pool.created == 1
    assert results == [GREETING] * 5
    assert peak == 1


async def _get(client: httpx.AsyncClient, url: str, results: list[bytes]) -> None:
    results.append((await client.get(url + "/")).content)
