"""The composed examples and local upstream servers for the wasi:http example tests.

``middleware`` is built for ``wasi:http/middleware@0.3.0`` (it exports and
imports ``wasi:http/handler``) and composed with a service example by
``wasm-tools compose`` (``tests/guests/_compose.py``, cached like the builds).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio
from http_helpers import ROOT, build_example
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve

MIDDLEWARE_WORLD = "wasi:http/middleware@0.3.0"

# An ASGI HTTP handler: (scope, receive, send) for one request.
AsgiHandler = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _compose_module() -> ModuleType:
    # Loaded by path under the name the guests' tests use, so both share one module.
    name = "_trio_wasi_tests_guest_compose"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "guests" / "_compose.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def composed_with_middleware(inner: str) -> Path:
    """``examples/middleware`` composed with ``examples/INNER``: one component that serves."""
    compose = _compose_module()
    try:
        compose.wasm_tools_version()
    except compose.ComposeError as exc:
        pytest.skip(f"needs wasm-tools to compose the middleware: {exc}")
    middleware = build_example("middleware", world=MIDDLEWARE_WORLD)
    service = build_example(inner)
    cache = middleware.parent
    path: Path = compose.compose(middleware, service, name=f"middleware-{inner}", cache=cache)
    return path


@asynccontextmanager
async def upstream(handler: AsgiHandler) -> AsyncIterator[str]:
    """Serve ``handler`` with hypercorn on a loopback port 0; yields its ``host:port``."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await handler(scope, receive, send)

    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            functools.partial(hypercorn_serve, app, config, shutdown_trigger=stop.wait)
        )
        try:
            yield str(binds[0]).removeprefix("http://")
        finally:
            stop.set()
            nursery.cancel_scope.cancel()


async def read_body(receive: Any) -> bytes:
    """The whole request body of an ASGI request (the upstreams' bodies are small)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body
