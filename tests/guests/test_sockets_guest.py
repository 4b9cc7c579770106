"""wasi:sockets end to end: componentize-py guests serve TCP echo to a host client.

Two guests do the same things: ``tests/guests/sock_p3`` (a ``wasi:cli/command@0.3.0``)
with the wasi:sockets@0.3.0 bindings, ``tests/guests/sock_p2`` (a
``wasi:cli/command@0.2.0``) with Python's ``socket`` module, which reaches
wasi:sockets@0.2.0 through wasi-libc. Each makes a UDP round trip between two of its
sockets, reports a connect and a name lookup the policy refuses, then listens on an
ephemeral loopback port and echoes one connection. The host learns the port from the
guest's stdout and is the client. The policy allows ``127.0.0.1`` only; nothing leaves
loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

import trio_wasi
from trio_wasi.wasi._command import run_command

HANG_GUARD = 120
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


# What each guest prints before it listens: the refusals are the 0.3 error-code case,
# or the Python exception wasi-libc makes of the 0.2 one.
EXPECTED = {
    "sock_p3": [
        "create: ok",
        "udp: ping from a: True",
        "connect outside the policy: AccessDenied",
        "lookup: AccessDenied",
    ],
    "sock_p2": [
        "udp: ping from a: True",
        "connect outside the policy: PermissionError",
        "lookup: PermissionError",
    ],
}


@pytest.fixture(scope="module")
def sock_p3_wasm(build_guest: Any) -> Path:
    path: Path = build_guest("sock_p3", "command", stub_wasi=False)
    return path


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def sock_guest(request: pytest.FixtureRequest, build_guest: Any) -> tuple[str, Path]:
    name: str = request.param
    return name, build_guest(name, "command", stub_wasi=False)


async def _line(source: Any, buffer: bytearray, start: str) -> str:
    """The next whole stdout line starting with ``start`` (earlier lines stay in ``buffer``).

    ``source`` is a receive channel of chunks or a receive stream.
    """
    while True:
        for line in buffer.decode().splitlines(keepends=True):
            if line.startswith(start) and line.endswith("\n"):
                return line.strip()
        if isinstance(source, trio.abc.ReceiveStream):
            chunk = await source.receive_some(65536)
            assert chunk, f"the output ended before a line starting with {start!r}"
            buffer += chunk
        else:
            buffer += await source.receive()


async def test_tcp_echo_with_a_guest_listener(sock_guest: tuple[str, Path]) -> None:
    name, wasm = sock_guest
    component = trio_wasi.Component.from_file(wasm)
    out_send, out_receive = trio.open_memory_channel[bytes](64)
    config = trio_wasi.WasiConfig(stdout=out_send, allowed_addresses=["127.0.0.1:*"])
    payload = bytes(range(256)) * 2000  # 512000 bytes: several reads and writes
    status: list[int] = []
    output = bytearray()

    async def run() -> None:
        status.append(await run_command(component, config))

    with trio.fail_after(HANG_GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            listening = await _line(out_receive, output, "listening ")
            port = int(listening.split()[1])
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:

                async def send() -> None:
                    await stream.send_all(payload)
                    await stream.send_eof()

                nursery.start_soon(send)
                echoed = bytearray()
                while chunk := await stream.receive_some(65536):
                    echoed += chunk
            assert echoed == payload
            await _line(out_receive, output, "echoed ")

    assert status == [0]
    assert output.decode().splitlines() == [
        *EXPECTED[name],
        f"listening {port}",
        f"echoed {len(payload)} bytes",
    ]


async def test_guest_without_network_is_refused_its_socket(sock_p3_wasm: Path) -> None:
    component = trio_wasi.Component.from_file(sock_p3_wasm)
    stdout = bytearray()
    with trio.fail_after(HANG_GUARD):
        status = await run_command(component, trio_wasi.WasiConfig(stdout=stdout))
    assert status == 0
    assert stdout.decode() == "create: AccessDenied\n"


# With every address allowed, the connect to 127.0.0.2 (loopback, nothing there) is
# made and refused by the peer instead of by the policy; with name lookups allowed, the
# literal resolves to itself.
EXPECTED_GRANTED = {
    "sock_p3": {
        "connect": "connect outside the policy: ConnectionRefused",
        "lookup": "lookup: [IpAddress_Ipv4(value=(127, 0, 0, 1))]",
    },
    "sock_p2": {
        "connect": "connect outside the policy: ConnectionRefusedError",
        "lookup": "lookup: ok",
    },
}


async def test_cli_grants_every_address_and_name_lookups(sock_guest: tuple[str, Path]) -> None:
    name, wasm = sock_guest
    argv = [sys.executable, "-m", "trio_wasi", "run"]
    argv += ["-S", "inherit-network", "-S", "allow-ip-name-lookup", str(wasm)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await trio.lowlevel.open_process(argv, stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    output = bytearray()
    payload = b"through the command line\n" * 1000
    try:
        with trio.fail_after(HANG_GUARD):
            listening = await _line(proc.stdout, output, "listening ")
            stream = await trio.open_tcp_stream("127.0.0.1", int(listening.split()[1]))
            async with stream:
                await stream.send_all(payload)
                await stream.send_eof()
                echoed = bytearray()
                while chunk := await stream.receive_some(65536):
                    echoed += chunk
            while chunk := await proc.stdout.receive_some(65536):
                output += chunk
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await proc.stdout.aclose()
    assert echoed == payload
    granted = EXPECTED_GRANTED[name]
    expected = [granted.get(line.split()[0].rstrip(":"), line) for line in EXPECTED[name]]
    assert output.decode().splitlines() == [
        *expected,
        listening,
        f"echoed {len(payload)} bytes",
    ]
