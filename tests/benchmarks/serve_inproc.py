"""CPU per request of ``WasiHttpApp`` alone: no server, no sockets.

Drives the ASGI application directly with synthetic ``http`` scopes (a GET
with no body, as hypercorn would hand it over) from ``CONNS`` concurrent
trio tasks, after the lifespan started its pool, and reports process CPU
time per request. Also counts what is left for the garbage collector after
the run (objects only a collection frees), and with ``--profile`` prints the
functions a request calls most (cProfile, trio thread only). ``--count`` counts
Python function calls per request on every thread (a figure free of timing
noise) and lists the most called functions of each thread.

    python tests/benchmarks/serve_inproc.py [--wat [--threaded]] [--requests N] [--conns N]
        [--profile | --count]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import gc
import importlib.util
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import attrs
import trio

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))


def _hello_example() -> Path:
    spec = importlib.util.spec_from_file_location(
        "_trio_wasi_tests_http_helpers", ROOT / "tests" / "http" / "http_helpers.py"
    )
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    path: Path = helpers.build_example("hello")
    return path


SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bench")],
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 8080),
    "extensions": {},
}


async def _one(app: Any) -> None:
    # As hypercorn does: the body message first, then (after the response is
    # complete) a disconnect; the app is expected to stop receiving by then.
    messages = [{"type": "http.request", "body": b"", "more_body": False}]
    done = trio.Event()
    status = 0

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    await app(dict(SCOPE), receive, send)
    if status != 200:
        raise RuntimeError(f"status {status}")


class _CallCounter:
    """Counts Python function calls per (thread, code object) while enabled."""

    def __init__(self) -> None:
        self.on = False
        self.counts: collections.Counter[tuple[str, Any]] = collections.Counter()

    def install(self) -> None:
        sys.setprofile(self._hook)
        threading.setprofile(self._hook)

    def _hook(self, frame: FrameType, event: str, arg: Any) -> None:
        if not self.on:
            return
        if event == "call":
            self.counts[threading.current_thread().name, frame.f_code] += 1

    def enable(self) -> None:
        self.on = True

    def disable(self) -> None:
        self.on = False

    def report(self, requests: int, top: int) -> None:
        per_thread: collections.Counter[str] = collections.Counter()
        for (thread, _), n in self.counts.items():
            per_thread[thread] += n
        total = sum(per_thread.values())
        print(f"Python calls per request: {total / requests:.1f}")
        for thread, n in per_thread.most_common():
            label = "trio" if thread == "MainThread" else thread
            print(f"  {label}: {n / requests:.1f}")
            codes = [(c, k) for (t, c), k in self.counts.items() if t == thread]
            codes.sort(key=lambda ck: -ck[1])
            for code, k in codes[:top]:
                where = f"{Path(code.co_filename).name}:{code.co_firstlineno}"
                print(f"    {k / requests:7.2f}  {code.co_qualname}  ({where})")


async def _drive(app: Any, requests: int, conns: int, profile: Any) -> None:
    startup = trio.Event()
    stop = trio.Event()
    lifespan = [{"type": "lifespan.startup"}]

    async def l_receive() -> dict[str, Any]:
        if lifespan:
            return lifespan.pop()
        await stop.wait()
        return {"type": "lifespan.shutdown"}

    async def l_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            startup.set()
        elif message["type"] == "lifespan.startup.failed":
            raise RuntimeError(message["message"])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(app, {"type": "lifespan"}, l_receive, l_send)
        await startup.wait()

        async def worker(n: int) -> None:
            for _ in range(n):
                await _one(app)

        async def run(total: int) -> None:
            async with trio.open_nursery() as inner:
                for i in range(conns):
                    inner.start_soon(worker, total // conns + (i < total % conns))

        await run(max(conns, 200))  # warm-up
        gc.collect()
        gc.disable()
        before_objects = len(gc.get_objects())
        if profile is not None:
            profile.enable()
        cpu = time.process_time()
        wall = time.perf_counter()
        await run(requests)
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        if profile is not None:
            profile.disable()
        after_objects = len(gc.get_objects())
        freed = gc.collect()
        gc.enable()
        print(
            f"{requests} requests, {conns} concurrent: "
            f"{1e6 * cpu / requests:.0f} us CPU/request, {requests / wall:.0f} req/s wall; "
            f"gc-tracked objects +{(after_objects - before_objects) / requests:.1f}/request, "
            f"a collection then freed {freed / requests:.1f}/request"
        )
        stop.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wat", action="store_true", help="the callback WAT hello (inline)")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--threaded", action="store_true", help="with --wat: on a store thread")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--count", type=int, nargs="?", const=40, metavar="TOP")
    parser.add_argument(
        "--no-timeout", action="store_true", help="no per-call deadline (Limits.serve's timeout)"
    )
    args = parser.parse_args()

    from trio_wasi import Component, Engine
    from wasi_http import ServeConfig, WasiHttpApp

    engine = Engine()
    with tempfile.TemporaryDirectory() as scratch:
        if args.wat:
            from serve import callback_hellos  # type: ignore[import-not-found]

            inline, threaded = callback_hellos(Path(scratch))
            path = threaded if args.threaded else inline
        else:
            path = _hello_example()
        component = Component.from_file(path, engine=engine)
    config = ServeConfig()
    if args.no_timeout:
        config = attrs.evolve(config, limits=attrs.evolve(config.limits, timeout=None))
    # As ``serve`` makes it: the first instance at startup (a burst of
    # requests then shares it), long-lived objects frozen.
    app = WasiHttpApp(component, config, freeze_gc=True)
    profile: Any = cProfile.Profile() if args.profile else None
    if args.count is not None:
        profile = _CallCounter()
        profile.install()
    trio.run(_drive, app, args.requests, args.conns, profile)
    if args.count is not None:
        profile.report(args.requests, args.count)
        return
    if profile is not None:
        stats = pstats.Stats(profile)
        print(f"function calls per request: {stats.total_calls / args.requests:.0f}")  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
