"""``python -m trio_wasi serve``: the shipped component over loopback, errors, shutdown."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

ROOT = Path(__file__).resolve().parent.parent.parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_serve_rejects_a_missing_file() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trio_wasi", "serve", "no-such.wasm"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "error: no such file: no-such.wasm"


def test_serve_help_names_its_options() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trio_wasi", "serve", "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert proc.returncode == 0
    for option in ("--addr", "--workers", "--allow-http", "--max-concurrency", "--dir", "-S"):
        assert option in proc.stdout


@pytest.mark.parametrize("access_log", [True, False])
async def test_serve_the_shipped_component_then_stop_on_sigterm(access_log: bool) -> None:
    quiet = [] if access_log else ["--no-access-log"]
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trio_wasi", "serve", *quiet, "--addr", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stderr is not None
    log = b""
    try:
        with trio.fail_after(120):
            while not re.search(rb"serving on (http://\S+)", log):
                chunk = await proc.stderr.receive_some(4096)
                assert chunk, log.decode()
                log += chunk
        match = re.search(rb"serving on (http://\S+)", log)
        assert match is not None
        url = match.group(1).decode()
        async with httpx.AsyncClient() as client:
            response = await client.get(url + "/")
        assert response.content == b"Hello from a wasi:http 0.3 component!\n"
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            while chunk := await proc.stderr.receive_some(4096):
                log += chunk
            status = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert status == 0
    text = log.decode()
    assert "received SIGTERM: shutting down" in text
    assert ('"GET / 1.1" 200' in text) == access_log  # the access log


async def test_serve_with_two_worker_processes() -> None:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trio_wasi", "serve", "--addr", "127.0.0.1:0", "--workers", "2"],
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stderr is not None
    log = b""
    try:
        with trio.fail_after(120):
            while len(re.findall(rb"Running on (http://\S+)", log)) < 2:
                chunk = await proc.stderr.receive_some(4096)
                assert chunk, log.decode()
                log += chunk
        urls = {u.decode() for u in re.findall(rb"Running on (http://\S+)", log)}
        assert len(urls) == 1  # both workers share the listening socket
        url = urls.pop()
        async with httpx.AsyncClient() as client:
            responses = [await client.get(url + "/") for _ in range(4)]
        assert {r.status_code for r in responses} == {200}
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            status = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert status == 0
