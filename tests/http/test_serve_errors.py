"""Bad serving input: malformed or unusable addresses and allow-list patterns.

Each is one line on the command line (exit status 1, no traceback) and a
plain ``ValueError`` or ``OSError`` naming the culprit when embedding.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from wasi_http import ServeConfig, serve
from wasi_http._cli import default_component
from wasi_http._client import AllowList

ROOT = Path(__file__).resolve().parent.parent.parent


def _serve_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "trio_wasi", "serve", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # a hang guard: every case here fails before serving
    )


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("addr", "says"),
    [
        ("localhost", "expected HOST:PORT"),
        ("127.0.0.1:", "the port must be a number"),
        ("127.0.0.1:http", "the port must be a number"),
        ("127.0.0.1:65536", "the port must be a number"),
        (":8080", "expected HOST:PORT"),
        ("::1:8080", "IPv6 host goes in brackets"),
    ],
)
def test_serve_rejects_a_malformed_address(addr: str, says: str) -> None:
    line = _one_error_line(_serve_cli("--addr", addr))
    assert repr(addr) in line and says in line


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_reports_an_address_in_use_in_one_line(taken_port: int, workers: str) -> None:
    addr = f"127.0.0.1:{taken_port}"
    line = _one_error_line(_serve_cli("--workers", workers, "--addr", addr))
    assert line.startswith(f"error: cannot listen on {addr}: ")


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ("", "no host"),
        ("example.com:80:80", "IPv6 host goes in brackets"),
        ("example.com:99999", "the port must be"),
        ("example.com:8x", "the port must be"),
        ("[::1", "without `]`"),
        ("[::1]8080", "expected `:PORT`"),
        (":80", "no host"),
    ],
)
def test_a_malformed_allow_list_pattern_is_named(pattern: str, says: str) -> None:
    with pytest.raises(ValueError, match="pattern") as caught:
        AllowList([pattern])
    assert says in str(caught.value) and repr(pattern) in str(caught.value)


def test_serve_rejects_a_malformed_allow_http_pattern() -> None:
    line = _one_error_line(_serve_cli("--addr", "127.0.0.1:0", "--allow-http", "a.test:1:2"))
    assert line.startswith("error: --allow-http: pattern 'a.test:1:2'")


def test_well_formed_patterns_and_addresses_are_accepted() -> None:
    allow = AllowList(["*", "*:443", "[::1]", "[::1]:*", "example.com:0"])
    assert allow.allows("::1", 9) and allow.allows("x.test", 443)
    config = ServeConfig(bind=["127.0.0.1:0", "[::1]:8080", "localhost:80", "unix:/tmp/s"])
    assert config.bind == ("127.0.0.1:0", "[::1]:8080", "localhost:80", "unix:/tmp/s")
    # One address given as a string is one address, not a list of characters.
    assert ServeConfig(bind="127.0.0.1:0").bind == ("127.0.0.1:0",)


def test_serve_config_names_a_malformed_address() -> None:
    with pytest.raises(ValueError, match="bind address 'localhost': expected HOST:PORT"):
        ServeConfig(bind=["localhost"])


async def test_embedded_serve_raises_oserror_naming_an_address_in_use(taken_port: int) -> None:
    addr = f"127.0.0.1:{taken_port}"
    config = ServeConfig(bind=["127.0.0.1:0", addr])
    with trio.fail_after(60):  # a hang guard
        async with trio.open_nursery() as nursery:
            with pytest.raises(OSError, match=f"cannot listen on {addr}: ") as caught:
                await nursery.start(serve, default_component(), config)
    # A plain OSError (not wrapped in an exception group), with its errno.
    assert type(caught.value) is OSError
    assert caught.value.errno is not None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_instances", 0),
        ("max_concurrency", 0),
        ("max_requests", -1),
        ("shutdown_timeout", -1.0),
        ("workers", 0),
    ],
)
def test_serve_config_names_a_count_out_of_range(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"^{field} must be at least "):
        ServeConfig(**{field: value})


@pytest.mark.parametrize(
    ("option", "value"),
    [("--max-instances", "0"), ("--max-concurrency", "0"), ("--shutdown-timeout", "-1")],
)
def test_serve_names_an_option_out_of_range(option: str, value: str) -> None:
    line = _one_error_line(_serve_cli("--addr", "127.0.0.1:0", option, value))
    assert line.startswith(f"error: {option} must be at least ")


async def test_serving_on_no_address_is_refused() -> None:
    with pytest.raises(ValueError, match="no address to listen on"):
        await serve(default_component(), ServeConfig(bind=[]))


def _demo_with(tmp_path: Path, extra: str) -> str:
    """The shipped service with ``extra`` inserted at the top of its component."""
    text = (ROOT / "wasi_http" / "demo" / "hello.wat").read_text(encoding="utf-8")
    changed, count = re.subn(r"^\(component$", f"(component\n{extra}", text, count=1, flags=re.M)
    assert count == 1
    path = tmp_path / "service.wat"
    path.write_text(changed)
    return str(path)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_names_a_missing_import_whatever_the_workers(tmp_path: Path, workers: str) -> None:
    app = _demo_with(tmp_path, '  (import "foo:bar/baz" (instance (export "f" (func))))')
    line = _one_error_line(_serve_cli("--workers", workers, "--addr", "127.0.0.1:0", app))
    assert line == "error: missing import `foo:bar/baz#f`: func() is not defined by the host"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_names_a_trap_while_making_the_first_instance(tmp_path: Path, workers: str) -> None:
    # With worker processes too: status 1 and one line, not each worker's
    # traceback and the supervisor's status 0.
    app = _demo_with(
        tmp_path,
        "  (core module $boom (func $s unreachable) (start $s))\n"
        "  (core instance (instantiate $boom))",
    )
    line = _one_error_line(_serve_cli("--workers", workers, "--addr", "127.0.0.1:0", app))
    assert line.startswith("error: the first instance failed at start-up: wasm trap: ")
    assert "unreachable" in line


async def test_the_asgi_lifespan_reports_a_start_up_trap_itself(tmp_path: Path) -> None:
    # Mounted in any ASGI server, the application's start-up failure names
    # the trap, not the exception group the instance pool's nursery raised.
    import trio_wasi
    from wasi_http import WasiHttpApp

    app_path = _demo_with(
        tmp_path,
        "  (core module $boom (func $s unreachable) (start $s))\n"
        "  (core instance (instantiate $boom))",
    )
    # (freeze_gc makes the first instance at start-up, as `serve` does; the
    # trap comes before anything is frozen.)
    app = WasiHttpApp(trio_wasi.Component.from_file(app_path), freeze_gc=True)
    inbox = [{"type": "lifespan.startup"}]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return inbox.pop(0)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    with trio.fail_after(60):  # a hang guard
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    text = str(sent[0]["message"])
    assert text.startswith("wasm trap: "), text
    assert "unreachable" in text
    assert "Exceptions from Trio nursery" not in text


def test_sigint_while_the_first_instance_is_made_shuts_down_cleanly() -> None:
    # The instance pool announces its start-up and waits a moment: the
    # signal arrives while it is being made, inside the trio run but before
    # hypercorn starts its shutdown trigger.
    script = (
        "import sys, time\n"
        "from wasi_http import _pool\n"
        "prestart = _pool.InstancePool.prestart\n"
        "async def announced(self):\n"
        "    print('starting', flush=True)\n"
        "    time.sleep(0.5)\n"
        "    await prestart(self)\n"
        "_pool.InstancePool.prestart = announced\n"
        "from trio_wasi._cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with subprocess.Popen(
        [sys.executable, "-c", script, "serve", "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "starting\n"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)  # a hang guard
        finally:
            if proc.poll() is None:
                proc.kill()
    assert "Traceback" not in err
    assert "received SIGINT: shutting down" in err
    assert proc.returncode == 0
