"""Limits under ``serve``: a request whose guest loops forever, fuel, and the ``-W`` options.

The guest is ``loop_service.wat``: a callback-lifted wasi:http 0.3 handler
that answers 200 for any path except one starting with ``/loop``, where it
loops forever before answering. The host sees the guest ask for its path
(``request.get-path-with-query``), the last thing it does before the loop.
Deadlines here are the limit under test or hang guards; overlap is proven by
what the host observes, never by timing.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from http_helpers import serving, wait_until

from trio_wasi import Component, Engine, Limits
from wasi_http import ServeConfig
from wasi_http._pool import Slot
from wasi_http._types03 import Request

HERE = Path(__file__).resolve().parent
GOOD = 100
HANG_GUARD = 120


@functools.cache
def loop_service() -> Component:
    return Component.from_wat((HERE / "loop_service.wat").read_text(encoding="utf-8"))


@pytest.fixture
def entered(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set when a guest asked for a ``/loop`` path: right after that it loops."""
    event = threading.Event()
    original: Callable[[Request], str | None] = Request.get_path_with_query

    def get_path_with_query(self: Request) -> str | None:
        path = original(self)
        if path is not None and path.startswith("/loop"):
            event.set()
        return path

    monkeypatch.setattr(Request, "get_path_with_query", get_path_with_query)
    return event


async def _good_requests(url: str, answered: list[tuple[int, bool]], looping: Slot) -> None:
    """``GOOD`` concurrent requests; each notes its status and whether the loop was over."""
    limits = httpx.Limits(max_connections=GOOD, max_keepalive_connections=GOOD)
    async with httpx.AsyncClient(timeout=HANG_GUARD, limits=limits) as client:

        async def one(i: int) -> None:
            response = await client.get(f"{url}/good/{i}")
            assert looping.instance is not None
            answered.append((response.status_code, looping.instance.poisoned is not None))

        async with trio.open_nursery() as nursery:
            for i in range(GOOD):
                nursery.start_soon(one, i)


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "store-thread"])
async def test_a_looping_request_gets_a_5xx_at_its_deadline_while_good_ones_succeed(
    threaded: bool, entered: threading.Event
) -> None:
    # On store threads the loop runs beside the event loop, so the good
    # requests are served while it loops: its deadline is long enough for
    # them to finish first. Inline, the loop holds the trio thread until its
    # deadline (it can hold it no longer): the good requests, made while it
    # loops, are served right after.
    timeout = 10.0 if threaded else 2.0
    settings: dict[str, Any] = {
        "limits": Limits.serve().replace(timeout=timeout),
        "run_on_thread": True if threaded else None,
        # One request per instance: the looping one takes down only itself.
        "max_concurrency": 1,
        "max_instances": 8,
    }
    looped: list[httpx.Response] = []
    answered: list[tuple[int, bool]] = []
    with trio.fail_after(HANG_GUARD):
        async with (
            serving(loop_service(), **settings) as (url, app),
            httpx.AsyncClient(timeout=HANG_GUARD) as client,
        ):
            pool = app.pool
            assert pool is not None

            async def loop_request() -> None:
                looped.append(await client.get(url + "/loop"))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(loop_request)
                await wait_until(entered.is_set, "the guest entered its loop")
                [looping] = pool.slots
                assert looping.instance is not None
                assert looping.instance.threaded is threaded
                # The good requests come from a thread of their own, so they
                # are made while the guest loops even when it holds the trio
                # thread.
                await trio.to_thread.run_sync(
                    trio.run, _good_requests, url, answered, looping, abandon_on_cancel=True
                )
                if threaded:
                    # All answered, and the looping guest is still in its loop.
                    assert not looped and looping.instance.poisoned is None
                    assert looping.inflight == 1
            assert looping.instance.poisoned is not None
            assert "deadline exceeded" in looping.instance.poisoned
            await wait_until(lambda: pool.discarded == 1, "the looping instance was discarded")
            statuses = {status for status, _ in answered}
            assert len(answered) == GOOD and statuses == {200}
            if threaded:
                assert not any(over for _, over in answered)
            else:
                # Inline, nothing was answered while the guest looped.
                assert all(over for _, over in answered)
            # The server goes on serving.
            again = await client.get(url + "/after")
            assert again.status_code == 200
    assert [r.status_code for r in looped] == [500]


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "store-thread"])
async def test_a_looping_request_runs_out_of_fuel_under_serve(
    threaded: bool, entered: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    text = (HERE / "loop_service.wat").read_text(encoding="utf-8")
    component = Component.from_wat(text, engine=Engine(use_cache=False, consume_fuel=True))
    settings: dict[str, Any] = {
        # No deadline: only the fuel ends the loop.
        "limits": Limits.serve().replace(timeout=None, fuel=1_000_000),
        "run_on_thread": True if threaded else None,
        "max_concurrency": 1,
    }
    with trio.fail_after(HANG_GUARD):
        async with (
            serving(component, **settings) as (url, app),
            httpx.AsyncClient(timeout=HANG_GUARD) as client,
        ):
            pool = app.pool
            assert pool is not None
            looped = await client.get(url + "/loop")
            assert entered.is_set()
            await wait_until(lambda: pool.discarded == 1, "the looping instance was discarded")
            good = await client.get(url + "/after")
    assert looped.status_code == 500
    assert good.status_code == 200
    discarded = [r.getMessage() for r in caplog.records if "discarded" in r.getMessage()]
    assert len(discarded) == 1 and "fuel exhausted" in discarded[0] and "limit fuel" in discarded[0]


# A wasi:http/proxy@0.2.0 handler that loops forever on every request.
LOOP_02_WAT = """
;; Loops before setting its response-outparam, whatever the request.
(component
  (import "wasi:http/types@0.2.0" (instance $types
    (export "incoming-request" (type (sub resource)))
    (export "response-outparam" (type (sub resource)))))
  (alias export $types "incoming-request" (type $request))
  (alias export $types "response-outparam" (type $outparam))
  (core module $m
    (func (export "handle") (param i32 i32) (loop $spin (br $spin))))
  (core instance $i (instantiate $m))
  (func $handle (param "request" (own $request)) (param "response-out" (own $outparam))
    (canon lift (core func $i "handle")))
  (instance $handler (export "handle" (func $handle)))
  (export "wasi:http/incoming-handler@0.2.0" (instance $handler))
)
"""


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "store-thread"])
async def test_a_looping_0_2_handler_gets_a_5xx_at_its_deadline(
    threaded: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings: dict[str, Any] = {
        "limits": Limits.serve().replace(timeout=0.5),
        "run_on_thread": True if threaded else None,
    }
    with trio.fail_after(HANG_GUARD):
        async with (
            serving(Component.from_wat(LOOP_02_WAT), **settings) as (url, app),
            httpx.AsyncClient(timeout=HANG_GUARD) as client,
        ):
            pool = app.pool
            assert pool is not None
            first = await client.get(url + "/")
            # The server goes on: the next request gets an instance of its own.
            second = await client.get(url + "/")
            await wait_until(lambda: pool.discarded == 2, "both instances were discarded")
    assert (first.status_code, second.status_code) == (500, 500)
    discarded = [r.getMessage() for r in caplog.records if "discarded" in r.getMessage()]
    assert len(discarded) == 2 and all("deadline exceeded" in m for m in discarded)


def test_serve_takes_the_w_options_of_run_on_top_of_the_serve_preset() -> None:
    from trio_wasi import _cli

    ns = _cli._parser().parse_args(
        ["serve", "-W", "timeout=250ms,max-memory-size=64MiB", "-W", "max-handles=none"]
    )
    from wasi_http._cli import build

    _component, config = build(ns, _cli._load, _cli._wasi_config)
    assert config.limits == Limits.serve().replace(
        timeout=0.25, max_memory_size=64 << 20, max_handles=None
    )
    assert config.run_on_thread is None
    ns = _cli._parser().parse_args(["serve", "--store-threads"])
    _component, config = build(ns, _cli._load, _cli._wasi_config)
    assert config.limits == Limits.serve()
    assert config.run_on_thread is True
    assert not _component.engine.consume_fuel
    ns = _cli._parser().parse_args(["serve", "-W", "fuel=5000000"])
    component, config = build(ns, _cli._load, _cli._wasi_config)
    assert config.limits.fuel == 5_000_000
    # The component is compiled for fuel metering, or the limit could not apply.
    assert component.engine.consume_fuel


def test_a_bad_w_option_on_serve_is_refused_with_its_name() -> None:
    from trio_wasi import Error, _cli
    from wasi_http._cli import build

    ns = _cli._parser().parse_args(["serve", "-W", "max-memroy-size=1G"])
    with pytest.raises(Error, match="max-memroy-size: unknown option"):
        build(ns, _cli._load, _cli._wasi_config)


def test_the_embedding_api_defaults_to_the_serve_preset() -> None:
    assert ServeConfig().limits == Limits.serve()
    assert ServeConfig().run_on_thread is None


def test_the_serve_limits_benchmark_runs() -> None:
    """The benchmark's figures come out (their values are not asserted)."""
    import importlib.util

    path = HERE.parent / "benchmarks" / "serve_limits.py"
    spec = importlib.util.spec_from_file_location("_trio_wasi_tests_serve_limits_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.measure(quick=True)
    assert set(figures) == {
        "late_inline_ms",
        "late_inline_max_ms",
        "late_thread_ms",
        "late_thread_max_ms",
        "good_inline_ms",
        "good_thread_ms",
        "fuel_loop_ratio",
        "fuel_call_ratio",
    }
    assert figures["fuel_loop_ratio"] > 0 and figures["fuel_call_ratio"] > 0


@pytest.mark.parametrize(("command", "preset"), [("serve", Limits.serve()), ("run", Limits.run())])
def test_help_lists_every_limit_with_the_commands_default(
    command: str, preset: Limits, capsys: pytest.CaptureFixture[str]
) -> None:
    from trio_wasi._cli import main
    from trio_wasi._limits import w_option_help

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    listed = w_option_help(preset)
    # Every limit is named once, with this command's default.
    for field in ("timeout", "max_memory_size", "max_handles", "hostcall_budget", "fuel"):
        assert f"{field.replace('_', '-')}=" in listed
    expected = "timeout=30s" if command == "serve" else "timeout=none"
    assert expected in listed
    # argparse wraps lines at hyphens; compare without the wrapping spaces.
    assert listed.replace(" ", "") in text.replace(" ", "")


async def test_w_options_reach_the_worker_processes() -> None:
    # Each worker rebuilds its configuration from the command line's options:
    # the looping request runs out of the fuel given with -W (which needs the
    # worker to load the component on a metering engine) long before serve's
    # 30 s deadline.
    import os
    import re
    import signal
    import subprocess
    import sys

    root = HERE.parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    argv = [sys.executable, "-m", "trio_wasi", "serve", "--addr", "127.0.0.1:0"]
    argv += ["--workers", "2", "-W", "fuel=1000000", str(HERE / "loop_service.wat")]
    proc = await trio.lowlevel.open_process(argv, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    log = b""
    try:
        with trio.fail_after(HANG_GUARD):
            while len(re.findall(rb"Running on (http://\S+)", log)) < 2:
                chunk = await proc.stderr.receive_some(4096)
                assert chunk, log.decode()
                log += chunk
            url = re.findall(rb"Running on (http://\S+)", log)[0].decode()
            async with httpx.AsyncClient(timeout=HANG_GUARD) as client:
                looped = await client.get(url + "/loop")
                good = await client.get(url + "/")
            proc.send_signal(signal.SIGTERM)
            while chunk := await proc.stderr.receive_some(4096):
                log += chunk
            status = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert (looped.status_code, good.status_code, status) == (500, 200, 0)
    assert "fuel exhausted" in log.decode()
