"""The WASI layer without componentize-py: the shipped 0.3 command, the wasi:io core,
the deny-everything baselines, and the command line as a newcomer meets it."""

from __future__ import annotations

import gc
import shutil
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import trio

import trio_wasi
from trio_wasi import Err, Ok, Variant
from trio_wasi._cli import main
from trio_wasi._names import compatibility_key
from trio_wasi.wasi import _io
from trio_wasi.wasi._command import run_command

DEMO = resources.files("trio_wasi").joinpath("demo")
HELLO = "Hello from a WASI 0.3 component!\n"


def demo_text(name: str) -> str:
    return DEMO.joinpath(name).read_text(encoding="utf-8")


# -- the shipped command ---------------------------------------------------------


async def test_shipped_command_prints_through_a_stdout_stream() -> None:
    out = bytearray()
    component = trio_wasi.Component.from_wat(demo_text("hello_cli.wat"))
    code = await run_command(component, trio_wasi.WasiConfig(stdout=out))
    assert (code, out.decode()) == (0, HELLO)


async def test_stdout_into_a_trio_channel() -> None:
    send, receive = trio.open_memory_channel[bytes](10)
    component = trio_wasi.Component.from_wat(demo_text("hello_cli.wat"))
    code = await run_command(component, trio_wasi.WasiConfig(stdout=send))
    assert code == 0
    assert receive.receive_nowait() == HELLO.encode()


def test_run_with_no_file_runs_the_shipped_command(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 0
    assert capfd.readouterr().out == HELLO
    assert main([]) == 0
    assert capfd.readouterr().out == HELLO


def test_run_collects_nothing_until_instantiated_and_restores_the_collector(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trio_wasi import _cli

    seen: list[tuple[bool, int]] = []
    settle = _cli._settle

    def watch() -> None:
        # When the instance exists: the collector has been off all along.
        seen.append((gc.isenabled(), gc.get_freeze_count()))
        settle()
        seen.append((gc.isenabled(), gc.get_freeze_count()))

    monkeypatch.setattr(_cli, "_settle", watch)
    assert gc.isenabled()
    assert main(["run"]) == 0
    assert capfd.readouterr().out == HELLO
    (off, _), (on, frozen) = seen
    assert (off, on) == (False, True) and frozen > 0
    # An in-process caller gets the collector back as it was.
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_run_takes_limits_as_w_options(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-W", "timeout=30s,max-memory-size=64MiB", "-W", "max-handles=100"]) == 0
    assert capfd.readouterr().out == HELLO
    assert main(["run", "-W", "no-such-limit=1"]) == 1
    err = capfd.readouterr().err
    assert "-W" in err and "no-such-limit" in err and len(err.strip().splitlines()) == 1
    # A memory limit below what the shipped command needs refuses its instantiation.
    assert main(["run", "-W", "max-memory-size=0"]) != 0


# -- wasi:io core -----------------------------------------------------------------


async def test_poll_reports_pollables_in_deadline_order() -> None:
    now = time.monotonic_ns()
    ms = 1_000_000
    pollables = [_io.Pollable(_io.ClockReadiness(now + d * ms)) for d in (60, 20, 40)]
    order = []
    pending = [0, 1, 2]
    with trio.fail_after(10):
        while pending:
            ready = await _io.poll([pollables[i] for i in pending])
            batch = [pending[j] for j in ready]
            order.append(batch)
            pending = [i for i in pending if i not in batch]
    # Every batch holds only deadlines no later than those of any later batch.
    flat = [i for batch in order for i in batch]
    assert sorted(flat) == [0, 1, 2]
    deadlines = [p.readiness.when_ns for p in pollables]  # type: ignore[attr-defined]
    for n, batch in enumerate(order):
        for later in order[n + 1 :]:
            assert max(deadlines[i] for i in batch) <= min(deadlines[i] for i in later)


async def test_poll_returns_at_once_when_something_is_ready() -> None:
    never = _io.Pollable(_io.ClockReadiness(time.monotonic_ns() + 10**15))
    assert await _io.poll([never, _io.Pollable(_io.AlwaysReady())]) == [1]


class _FakeContext:
    """start_soon into a nursery, as HostContext does."""

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery

    def start_soon(self, fn: Any, *args: Any) -> None:
        self.nursery.start_soon(fn, *args)


async def test_pumped_input_reads_without_blocking_then_ends() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    async with trio.open_nursery() as nursery:
        ctx: Any = _FakeContext(nursery)

        async def receive_some(n: int) -> bytes:
            return bytes(await receive.receive_some(n))

        stream = _io.PumpedInputStream(_io.PumpedSource(ctx, receive_some))
        # Nothing yet: a non-blocking read returns no bytes rather than waiting.
        assert stream.read(10) == Ok(b"")
        await send.send_all(b"abc")
        assert await stream.blocking_read(10) == Ok(b"abc")
        await send.aclose()
        assert await stream.blocking_read(10) == Err(Variant("closed"))
        assert stream.subscribe().ready()


async def test_pumped_output_flushes_and_reports_a_closed_reader() -> None:
    send, receive = trio.open_memory_channel[bytes](1)
    async with trio.open_nursery() as nursery:
        ctx: Any = _FakeContext(nursery)
        stream = _io.PumpedOutputStream(ctx, send.send)
        assert stream.write(b"one") == Ok()
        assert await receive.receive() == b"one"
        assert await stream.blocking_flush() == Ok()
        await receive.aclose()
        # The pump finds the reader gone while flushing: the write reports it.
        assert await stream.blocking_write_and_flush(b"two") == Err(Variant("closed"))
        assert stream.check_write() == Err(Variant("closed"))


async def test_sync_output_maps_os_errors_to_stream_errors() -> None:
    def broken(data: bytes) -> None:
        raise OSError(5, "Input/output error")

    result = _io.SyncOutputStream(broken).write(b"x")
    assert isinstance(result, Err) and result.value.case == "last-operation-failed"
    assert result.value.value.to_debug_string() == "Input/output error"


# -- baselines ------------------------------------------------------------------


def _bound(linker: trio_wasi.Linker, interface: str, name: str) -> Any:
    definition = linker._host.functions[(compatibility_key(interface), name)]
    return definition.bind(trio_wasi.HostContext())


def test_baselines_grant_nothing_and_answer_with_the_interfaces_error_codes() -> None:
    linker = trio_wasi.Linker()
    linker.add_wasi()
    assert _bound(linker, "wasi:filesystem/preopens@0.2.9", "get-directories")() == []
    assert _bound(linker, "wasi:filesystem/preopens@0.3.0", "get-directories")() == []
    create = _bound(linker, "wasi:sockets/tcp-create-socket@0.2.9", "create-tcp-socket")
    assert create("ipv4") == Err("access-denied")
    create_udp = _bound(linker, "wasi:sockets/types@0.3.0", "[static]udp-socket.create")
    assert create_udp("ipv4") == Err(Variant("access-denied"))
    error_code = _bound(linker, "wasi:filesystem/types@0.2.0", "filesystem-error-code")
    assert error_code(object()) is None


# -- a trap after a blocking host call ends the call ----------------------------

EXIT_AFTER_WAIT = """
(component
  (import "wait" (func $wait))
  (import "exit" (func $exit))
  (core func $w (canon lower (func $wait)))
  (core func $e (canon lower (func $exit)))
  (core module $m
    (import "h" "wait" (func $wait))
    (import "h" "exit" (func $exit))
    (func (export "run") (call $wait) (call $exit)))
  (core instance $h (export "wait" (func $w)) (export "exit" (func $e)))
  (core instance $i (instantiate $m (with "h" (instance $h))))
  (func (export "run") (canon lift (core func $i "run"))))
"""


async def test_a_trap_after_a_blocking_host_call_reaches_the_caller() -> None:
    # The guest's frame parks in `wait` (async def), resumes, then `exit` raises:
    # wasi:cli/exit after a poll works this way.
    linker = trio_wasi.Linker()

    async def wait() -> None:
        await trio.sleep(0.001)

    def exit_() -> None:
        raise RuntimeError("exit requested")

    linker.define_function(None, "wait", wait)
    linker.define_function(None, "exit", exit_)
    component = trio_wasi.Component.from_wat(EXIT_AFTER_WAIT)
    with trio.fail_after(30), pytest.raises(trio_wasi.Trap, match="exit requested"):
        async with linker.instantiate(component, run_on_thread=True) as instance:
            await instance.call("run")


# -- the command line --------------------------------------------------------------


def _error_line(capfd: pytest.CaptureFixture[str]) -> str:
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_help_has_no_markup(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["run"], ["call"], ["inspect"]):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        text = capsys.readouterr().out
        assert "``" not in text and ":class:" not in text
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for flag in ("--dir", "--env", "-S", "--invoke", "inherit-env", "allow-ip-name-lookup"):
        assert flag in text


def test_a_file_is_recognised_by_its_content(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "app.bin"
    app.write_text(demo_text("hello.wat"))
    assert main(["call", str(app), "greet", "you"]) == 0
    assert capfd.readouterr().out == "Hello, you!\n"


def test_a_missing_export_is_one_clear_line(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["call", "nope"]) == 1
    line = _error_line(capfd)
    assert "no export `nope`" in line and "greet" in line and "'" not in line


def test_an_argument_count_mismatch_names_the_export_and_parameter(
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert main(["call", "greet"]) == 1
    line = _error_line(capfd)
    assert "`greet` takes 1 argument (name: string), got 0; missing `name`" in line


def test_a_missing_file_is_one_clear_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(tmp_path / "missing.wasm")]) == 1
    assert "no such file" in _error_line(capfd)
    not_wasm = tmp_path / "notes.txt"
    not_wasm.write_text("hello")
    assert main(["run", str(not_wasm)]) == 1
    assert "not a WebAssembly component" in _error_line(capfd)


def test_run_refuses_unknown_settings(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "-S", "no-such-thing"]) == 1
    assert "unknown -S setting `no-such-thing`" in _error_line(capfd)


def test_run_invoke_calls_one_export(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "hello.wat"
    app.write_text(demo_text("hello.wat"))
    assert main(["run", "--invoke", "greet", str(app), "there"]) == 0
    assert capfd.readouterr().out == "Hello, there!\n"


@pytest.mark.skipif(shutil.which("wasm-tools") is None, reason="wasm-tools is not installed")
def test_inspect_prints_wit_with_signatures(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect"]) == 0
    out = capfd.readouterr().out
    assert "import wasi:cli/stdout@0.3.0" in out
    assert "write-via-stream: func(data: stream<u8>) -> future<result<_, error-code>>" in out
    assert "export wasi:cli/run@0.3.0" in out


def test_wasi_links_without_wasm_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    # The bundled WIT ships encoded: an install without wasm-tools can run commands.
    from trio_wasi import _hostdefs, _wit

    monkeypatch.setattr(_wit, "_validator", lambda: None)
    _hostdefs._bundled_wit.cache_clear()
    try:
        linker = trio_wasi.Linker()
        linker.add_wasi()
        assert _bound(linker, "wasi:cli/environment@0.3.0", "get-arguments") is not None
    finally:
        _hostdefs._bundled_wit.cache_clear()


def test_terminals_are_reported_only_for_terminals() -> None:
    linker = trio_wasi.Linker()
    linker.add_wasi(trio_wasi.WasiConfig(stdout=bytearray()))
    for gen in ("0.2.0", "0.3.0"):
        stdout = _bound(linker, f"wasi:cli/terminal-stdout@{gen}", "get-terminal-stdout")
        stdin = _bound(linker, f"wasi:cli/terminal-stdin@{gen}", "get-terminal-stdin")
        assert stdout() is None and stdin() is None


def test_a_slow_load_shows_a_progress_line_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trio_wasi import _cli

    monkeypatch.setattr(_cli, "_PROGRESS_AFTER", 0.0)
    monkeypatch.setattr(_cli.sys.stderr, "isatty", lambda: True)
    shown = threading.Event()
    real_write = _cli.sys.stderr.write

    def write(text: str) -> int:
        if text.startswith("compiling"):
            shown.set()
        return real_write(text)

    monkeypatch.setattr(_cli.sys.stderr, "write", write)

    def load() -> Any:
        assert shown.wait(10)  # the line appears while loading
        return "loaded"

    assert _cli._with_progress("app.wasm, 18.0 MB", load) == "loaded"
    err = capsys.readouterr().err
    assert "compiling app.wasm, 18.0 MB" in err and err.endswith("\r\x1b[K")


def test_os_errors_map_to_each_generations_codes() -> None:
    import errno

    from trio_wasi.wasi._errno import filesystem_code, socket_code

    gone = FileNotFoundError(errno.ENOENT, "No such file or directory")
    assert filesystem_code(gone, variant=False) == "no-entry"
    assert filesystem_code(gone, variant=True) == Variant("no-entry")
    odd = OSError(errno.ECHILD, "No child processes")
    assert filesystem_code(odd, variant=False) == "io"
    assert filesystem_code(odd, variant=True) == Variant("other", "No child processes")
    broken = BrokenPipeError(errno.EPIPE, "Broken pipe")
    assert socket_code(broken, variant=True) == Variant("connection-broken")
    assert socket_code(broken, variant=False) == "connection-reset"
    assert socket_code(ConnectionRefusedError(errno.ECONNREFUSED, "x"), variant=False) == (
        "connection-refused"
    )


@pytest.mark.parametrize(
    ("interface", "table", "extra"),
    [
        ("wasi:filesystem/types@0.2.0", "FILESYSTEM_CODES", set()),
        ("wasi:filesystem/types@0.3.0", "FILESYSTEM_CODES", {"would-block"}),
        ("wasi:sockets/tcp@0.2.0", "SOCKET_CODES", {"connection-broken"}),
        ("wasi:sockets/types@0.3.0", "SOCKET_CODES", set()),
    ],
)
def test_error_code_tables_use_the_wit_labels(interface: str, table: str, extra: set[str]) -> None:
    from trio_wasi._abi import _types as T
    from trio_wasi._hostdefs import _find_interface
    from trio_wasi._wit import resolve_interface
    from trio_wasi.wasi import _errno

    resolved = resolve_interface(
        _find_interface(interface, None), lambda i, n: T.ResourceType(name=n)
    )
    labels: set[str] = set()
    for ft in resolved.functions.values():
        err = ft.result.error if isinstance(ft.result, T.ResultType) else None
        if isinstance(err, T.EnumType):
            labels |= set(err.labels)
        elif isinstance(err, T.VariantType):
            labels |= {case for case, _ in err.cases}
    assert labels
    used = set(getattr(_errno, table).values())
    # Labels a generation lacks are translated by the function (tested above).
    assert used - extra <= labels, sorted(used - extra - labels)


def test_timezone_names_the_zone_from_tz(monkeypatch: pytest.MonkeyPatch) -> None:
    from trio_wasi.wasi._clocks import Timezone

    monkeypatch.setenv("TZ", "Europe/Paris")
    assert Timezone.iana_id() == "Europe/Paris"
    assert Timezone.to_debug_string() == "Europe/Paris"
    offset = Timezone.utc_offset({"seconds": 0, "nanoseconds": 0})
    assert offset is None or abs(offset) < 86_400 * 10**9


def test_call_reads_arguments_for_their_types(capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["call", "greet", "5"]) == 0  # a string parameter takes the text
    assert capfd.readouterr().out == "Hello, 5!\n"
    assert main(["call", "count-bytes", "abc"]) == 1
    line = _error_line(capfd)
    assert "`count-bytes`: an argument does not fit its parameter type" in line


def test_the_run_only_parser_reads_run_as_the_full_one_does() -> None:
    from trio_wasi._cli import _parser

    argv = ["run", "--env", "A=1", "-S", "inherit-env", "--dir", "/tmp::/t::ro", "-W"]
    argv += ["fuel=100", "--invoke", "go", "app.wasm", "--", "x", "-y"]
    full, short = _parser(), _parser(run_only=True)
    assert vars(short.parse_args(argv)) == vars(full.parse_args(argv))
    assert vars(short.parse_args(argv)) != vars(full.parse_args(argv[:1]))
    assert full.parse_args(["inspect"]).command == "inspect"
    with pytest.raises(SystemExit):
        short.parse_args(["inspect"])


def test_run_dir_takes_a_read_only_permission(tmp_path: Path) -> None:
    from trio_wasi._cli import _parser, _wasi_config

    def preopens(*dirs: str) -> list[tuple[str, str, bool]]:
        ns = _parser().parse_args(["run", *(f for d in dirs for f in ("--dir", d))])
        config = _wasi_config(ns, "app.wasm", [])
        return [(str(p.host_path), p.guest_path, p.read_only) for p in config.preopens]

    host = str(tmp_path)
    assert preopens(host) == [(host, host, False)]
    assert preopens(f"{host}::/data") == [(host, "/data", False)]
    assert preopens(f"{host}::/data::ro", f"{host}::/rw::rw") == [
        (host, "/data", True),
        (host, "/rw", False),
    ]
    with pytest.raises(trio_wasi.Error, match="unknown permission `readonly`"):
        preopens(f"{host}::/data::readonly")


def test_config_refuses_unknown_stdio_at_once() -> None:
    with pytest.raises(TypeError, match="stdout must be"):
        trio_wasi.WasiConfig(stdout="a file name")
    with pytest.raises(TypeError, match="stdin must be"):
        trio_wasi.WasiConfig(stdin=42)
    config = trio_wasi.WasiConfig(env={"A": "1"}, preopens=[("/tmp", "/data")])
    assert config.environment() == [("A", "1")]
    assert config.preopens[0].guest_path == "/data" and not config.preopens[0].read_only


def test_read_ahead_gives_what_a_read_gives_and_its_errors(tmp_path: Path) -> None:
    from trio_wasi._cli import _ReadAhead
    from trio_wasi._digests import read_with_digest

    file = tmp_path / "app.wasm"
    file.write_bytes(b"\0asm" + bytes(range(256)) * 64)
    assert _ReadAhead(file, None).result() == read_with_digest(file, None)
    assert _ReadAhead(file, tmp_path / "cache").result() == read_with_digest(file, None)
    with pytest.raises(FileNotFoundError):
        _ReadAhead(tmp_path / "missing.wasm", None).result()
