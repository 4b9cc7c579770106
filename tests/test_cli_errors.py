"""Bad input to ``python -m trio_wasi run`` and to the Linker: one clear line, or a named error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import trio_wasi
from trio_wasi._cli import main
from trio_wasi.wasi._command import run_command

ROOT = Path(__file__).resolve().parent.parent

# A wasi:http service: linkable only with wasi:http defined, which `run` does not do.
HTTP_SERVICE = resources.files("wasi_http").joinpath("demo/hello.wat").read_text(encoding="utf-8")

# A 0.3 command whose run waits an hour on wasi:clocks (on a store thread:
# a synchronous call of an async import), unless interrupted.
SLEEPER = """\
(component
  (import "wasi:clocks/monotonic-clock@0.3.0" (instance $c
    (export "wait-for" (func async (param "how-long" u64)))))
  (core func $wait (canon lower (func $c "wait-for")))
  (core module $m
    (import "host" "wait" (func $wait (param i64)))
    (func (export "run") (result i32) (call $wait (i64.const 3600000000000)) (i32.const 0)))
  (core instance $h (export "wait" (func $wait)))
  (core instance $i (instantiate $m (with "host" (instance $h))))
  (type $run-type (func async (result (result))))
  (func $run (type $run-type) (canon lift (core func $i "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $run-instance))
)
"""

# The same wait in a 0.2 command: a synchronous host call (pollable.block)
# that parks the guest's frame on its store thread.
SLEEPER_P2 = """\
(component
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow 0))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer 1 $pollable (type $p))
    (export "pollable" (type $pe (eq $p)))
    (export "subscribe-duration" (func (param "when" u64) (result (own $pe))))))
  (core func $sub (canon lower (func $clock "subscribe-duration")))
  (core func $block (canon lower (func $poll "[method]pollable.block")))
  (core module $m
    (import "host" "sub" (func $sub (param i64) (result i32)))
    (import "host" "block" (func $block (param i32)))
    (func (export "run") (result i32)
      (call $block (call $sub (i64.const 3600000000000))) (i32.const 0)))
  (core instance $h (export "sub" (func $sub)) (export "block" (func $block)))
  (core instance $i (instantiate $m (with "host" (instance $h))))
  (type $run-type (func (result (result))))
  (func $run (type $run-type) (canon lift (core func $i "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $run-instance))
)
"""


def _error_line(capfd: pytest.CaptureFixture[str]) -> str:
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_run_names_a_component_that_is_not_a_command(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Not by the first WASI import the host lacks (wasi:http/types).
    app = tmp_path / "service.wat"
    app.write_text(HTTP_SERVICE)
    assert main(["run", str(app)]) == 1
    line = _error_line(capfd)
    assert "not a WASI command" in line and "wasi:http" not in line


async def test_run_command_checks_for_the_run_export_before_linking() -> None:
    with pytest.raises(trio_wasi.Error, match="not a WASI command"):
        await run_command(trio_wasi.Component.from_wat(HTTP_SERVICE))


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("--env==x", "--env =x: no variable name (NAME=VALUE or NAME)"),
        ("--dir=", "--dir : an empty path (HOST[::GUEST[::ro]])"),
        ("--dir=.::", "--dir .::: an empty path (HOST[::GUEST[::ro]])"),
        ("--dir=::/data", "--dir ::/data: an empty path (HOST[::GUEST[::ro]])"),
    ],
)
def test_run_rejects_an_empty_name_or_path(
    option: str, says: str, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", option]) == 1
    assert _error_line(capfd) == f"error: {says}"


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("nope=1", "error: -W nope: unknown option (known: "),
        (
            "max-memory-size=1XB",
            "error: -W max-memory-size: unknown unit 'XB' (use b, k, kb, kib, m, mb, mib, g,",
        ),
    ],
)
def test_a_bad_w_option_is_named_once(
    option: str, expected: str, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "-W", option]) == 1
    line = _error_line(capfd)
    assert line.startswith(expected) and line.count("-W") == 1


@pytest.mark.parametrize("text", [SLEEPER, SLEEPER_P2], ids=["0.3", "0.2"])
def test_sigint_ends_a_sleeping_guest_with_status_130(tmp_path: Path, text: str) -> None:
    app = tmp_path / "sleeper.wat"
    app.write_text(text)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # -W timeout=none: only the signal can end the wait.
    script = (
        "import sys\n"
        "from trio_wasi import _cli\n"
        "_cli._settle_before = _cli._settle\n"
        "def ready():\n"
        "    _cli._settle_before()\n"
        "    print('ready', flush=True)\n"
        "_cli._settle = ready\n"
        "sys.exit(_cli.main(sys.argv[1:]))\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script, "run", "-W", "timeout=none", str(app)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            # The instance exists and run is about to start: a signal from
            # now on reaches the trio run, which the guest's wait leaves free.
            line = proc.stdout.readline()
            assert line == "ready\n", proc.stderr.read()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)  # a hang guard
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err


def test_define_function_refuses_what_is_not_callable() -> None:
    linker = trio_wasi.Linker()
    with pytest.raises(TypeError, match="local:demo/host#log: expected a callable, got 42"):
        linker.define_function("local:demo/host", "log", 42)  # type: ignore[arg-type]


async def test_a_later_definition_replaces_an_earlier_one() -> None:
    wat = """(component
      (import "f" (func $f (result u32)))
      (core func $g (canon lower (func $f)))
      (core module $m (import "" "f" (func $f (result i32)))
        (func (export "call") (result i32) (call $f)))
      (core instance $i (instantiate $m (with "" (instance (export "f" (func $g))))))
      (func (export "call") (result u32) (canon lift (core func $i "call"))))"""
    linker = trio_wasi.Linker()
    linker.define_function(None, "f", lambda: 1)
    linker.define_function(None, "f", lambda: 2)

    async with linker.instantiate(trio_wasi.Component.from_wat(wat)) as instance:
        assert await instance.call("call") == 2


@pytest.mark.parametrize("command", [["run"], ["inspect"], ["call"]])
def test_a_directory_is_named_as_one(
    command: list[str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, str(tmp_path), "greet"][: len(command) + 1]) == 1
    assert _error_line(capfd) == f"error: {tmp_path} is a directory, not a component file"


def test_call_names_a_file_that_is_not_a_component(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Not looked up as an export of the shipped demo.
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert main(["call", str(notes), "greet", "you"]) == 1
    line = _error_line(capfd)
    assert line == f"error: {notes} is not a WebAssembly component (no wasm magic bytes)"


async def test_an_instance_method_asked_of_the_instantiation_says_to_use_async_with() -> None:
    component = trio_wasi.Component.from_wat(
        resources.files("trio_wasi").joinpath("demo/hello.wat").read_text(encoding="utf-8")
    )
    pending = trio_wasi.Linker().instantiate(component)
    with pytest.raises(AttributeError, match=r"`call` is an Instance's: `async with linker"):
        pending.call  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match=r"no attribute 'frobnicate'$"):
        pending.frobnicate  # type: ignore[attr-defined]  # noqa: B018


def _call_demo_with_stdout(stdout: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "trio_wasi", "call", "greet", "x" * 100_000],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=120,  # a hang guard
    )


def test_a_reader_that_went_away_ends_call_quietly() -> None:
    read, write = os.pipe()
    os.close(read)  # gone before the result is written: the write must fail
    try:
        proc = _call_demo_with_stdout(write)
    finally:
        os.close(write)
    assert proc.returncode == 1
    assert proc.stderr == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_stdout_is_one_error_line() -> None:
    with open("/dev/full", "wb") as full:
        proc = _call_demo_with_stdout(full.fileno())
    assert proc.returncode == 1
    assert proc.stderr == "error: cannot write to stdout: No space left on device\n"


def test_a_text_error_gives_the_byte_offset_of_its_line_and_column() -> None:
    # The second line holds a non-ASCII name, so a character count would be off.
    text = '(component\n  (core module $m (func (export "ü") (result i32) nope)))'
    with pytest.raises(trio_wasi.DecodeError) as caught:
        trio_wasi.Component.from_wat(text)
    assert caught.value.offset == text.encode().index(b"nope")
    assert "<anon>:2:" in caught.value.message


TRAPPER = """\
(component
  (core module $m (func (export "run") (result i32) unreachable))
  (core instance $i (instantiate $m))
  (type $run-type (func async (result (result))))
  (func $run (type $run-type) (canon lift (core func $i "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $run-instance))
)
"""

EXITER = """\
(component
  (import "wasi:cli/exit@0.3.0" (instance $e
    (export "exit-with-code" (func (param "status-code" u8)))))
  (core func $exit (canon lower (func $e "exit-with-code")))
  (core module $m
    (import "host" "exit" (func $exit (param i32)))
    (func (export "run") (result i32) (call $exit (i32.const 7)) unreachable))
  (core instance $h (export "exit" (func $exit)))
  (core instance $i (instantiate $m (with "host" (instance $h))))
  (type $run-type (func async (result (result))))
  (func $run (type $run-type) (canon lift (core func $i "run")))
  (instance $run-instance (export "run" (func $run)))
  (export "wasi:cli/run@0.3.0" (instance $run-instance))
)
"""


def test_a_trap_is_status_134_with_one_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "trap.wat"
    app.write_text(TRAPPER)
    assert main(["run", str(app)]) == 134
    assert _error_line(capfd) == "error: wasm trap: wasm `unreachable` instruction executed"
    # Any other error stays 1.
    assert main(["run", str(tmp_path / "missing.wasm")]) == 1
    capfd.readouterr()


def test_a_guest_exit_code_is_the_status_with_nothing_on_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    app = tmp_path / "exit.wat"
    app.write_text(EXITER)
    assert main(["run", str(app)]) == 7
    assert capfd.readouterr().err == ""


def test_a_process_started_without_stdout_writes_nothing_into_its_descriptor(
    tmp_path: Path,
) -> None:
    # Started with stdout closed, the process's first open file takes
    # descriptor 1: the guest's output must not land in it.
    other = tmp_path / "other.bin"
    script = (
        "import os, sys\n"
        f"f = open({str(other)!r}, 'wb')\n"
        "assert f.fileno() == 1\n"
        "from trio_wasi._cli import main\n"
        "code = main(['run'])\n"
        "f.close()\n"
        "sys.exit(code)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        ["bash", "-c", 'exec "$0" -c "$1" >&-', sys.executable, script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # a hang guard
        check=False,
    )
    # The shipped command ignores its write's outcome and returns ok.
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert other.read_bytes() == b""
