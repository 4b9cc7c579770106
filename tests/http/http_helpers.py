"""Helpers for the wasi:http tests: the examples built once (cached), a server on port 0."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio

from wasi_http import ServeConfig, WasiHttpApp, serve

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples"
WORLD = "wasi:http/service@0.3.0"


def _build_module() -> ModuleType:
    # The guests' build cache (tests/guests/_build.py), loaded by path under the
    # name its own conftest uses, so both share one module.
    name = "_trio_wasi_tests_guest_build"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "guests" / "_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def build_example(name: str, world: str = WORLD) -> Path:
    """``examples/NAME/app.py`` built for wasi:http/service@0.3.0 against ``wit/``, cached.

    The key covers the example's sources, the repository's WIT and the
    componentize-py version; the build lands in the guests' cache directory.
    """
    build = _build_module()
    try:
        version = build.componentize_py_version()
    except build.GuestBuildError as exc:
        pytest.skip(f"needs componentize-py to build the {name} example: {exc}")
    source = EXAMPLES / name
    digest = hashlib.sha256()
    for part in (b"wasi-http-example-v1", name.encode(), world.encode(), version.encode()):
        digest.update(len(part).to_bytes(8, "little") + part)
    files = sorted(p for p in source.glob("*.py"))
    wit = sorted((ROOT / "wit").rglob("*.wit"))
    for path in files + wit:
        data = path.read_bytes()
        label = path.relative_to(ROOT).as_posix().encode()
        digest.update(len(label).to_bytes(8, "little") + label)
        digest.update(len(data).to_bytes(8, "little") + data)
    cache = build.cache_dir()
    target = cache / f"example-{name}-{digest.hexdigest()[:32]}.wasm"
    if build._is_component(target):
        return target
    with tempfile.TemporaryDirectory(prefix=f"example-{name}-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for path in files:
            shutil.copyfile(path, src / path.name)
        build.componentize(
            src, ROOT / "wit", world, target, stub_wasi=False, what=f"the {name} example"
        )
    return target


@asynccontextmanager
async def serving(component: Any, **settings: Any) -> AsyncIterator[tuple[str, WasiHttpApp]]:
    """Serve ``component`` on a loopback port 0; yields the base URL and the application."""
    config = ServeConfig(bind=["127.0.0.1:0"], **settings)
    app = WasiHttpApp(component, config)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            functools.partial(serve, app, config, shutdown_trigger=stop.wait)
        )
        try:
            yield binds[0], app
        finally:
            # A graceful shutdown, as on SIGTERM (the lifespan closes the pool).
            stop.set()


async def wait_until(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` until it holds; a generous hang guard, not a timing assertion."""
    with trio.fail_after(60) as guard:
        while not predicate():
            await trio.sleep(0.005)
    assert not guard.cancelled_caught, what


async def duplex_post(
    url: str,
    body: AsyncIterator[bytes],
    on_chunk: Callable[[bytes], None],
    headers: list[tuple[str, str]] | None = None,
) -> int:
    """POST ``body`` (chunked) while reading the response at the same time; returns the status.

    httpx writes the whole request before it reads the response, which
    deadlocks against a server that streams a large body back; this client
    (h11 over a trio socket) sends and receives concurrently. Each response
    body chunk goes to ``on_chunk``.
    """
    import h11

    host, port = url.removeprefix("http://").split("/")[0].split(":")
    conn = h11.Connection(our_role=h11.CLIENT)
    status = 0
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:

        async def send(event: Any) -> None:
            data = conn.send(event)
            if data:
                await stream.send_all(data)

        async def upload() -> None:
            await send(
                h11.Request(
                    method="POST",
                    target="/",
                    headers=[("host", host), ("transfer-encoding", "chunked"), *(headers or [])],
                )
            )
            async for chunk in body:
                await send(h11.Data(data=chunk))
            await send(h11.EndOfMessage())

        async def download() -> None:
            nonlocal status
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(1 << 16))
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    on_chunk(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(upload)
            nursery.start_soon(download)
    return status


def build_example_p2(name: str) -> Path:
    """Like :func:`build_example`, for the wasi:http/proxy@0.2.0 world."""
    return build_example(name, world="wasi:http/proxy@0.2.0")
