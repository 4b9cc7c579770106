"""wasi:cli 0.3.0 and 0.2.0: environment, exit, stdio and terminals.

Both generations read the same per-instance state (``WasiState``): 0.2 hands
out wasi:io streams over the shared stdin source and output sinks; 0.3 hands
out ``stream<u8>`` values (a receive channel over the same stdin source; a
trio task that drains the guest's stream into the sink) with the result
future the WIT declares. Output is written chunk by chunk as the guest
writes it, never buffered whole.

``exit`` records the status and raises :class:`WasiExit`: the guest stops
there (the host sees a Trap caused by it) and ``run_command`` turns it into
the status.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any

import trio

from .._abi._values import Err, Ok
from .._hostdefs import HostContext
from ._config import WasiConfig
from ._io import InputStream, OutputStream, PumpedInputStream, PumpedSource
from ._state import OutputSink, WasiExit, WasiState

if TYPE_CHECKING:
    from .._linker import Linker
    from .._run._hostvalues import StreamReceiver

__all__ = ["add_to_linker"]

CHUNK = 1 << 16


class TerminalInput:
    """``terminal-input``: stdin is a terminal (it has no methods yet)."""


class TerminalOutput:
    """``terminal-output``: stdout or stderr is a terminal."""


class _PerInstance:
    def __init__(self, config: WasiConfig, context: HostContext) -> None:
        self.context = context
        self.state = WasiState.of(context, config)


# -- environment -----------------------------------------------------------


class Environment02(_PerInstance):
    def get_environment(self) -> list[tuple[str, str]]:
        return self.state.env

    def get_arguments(self) -> list[str]:
        return self.state.args

    def initial_cwd(self) -> str | None:
        return self.state.config.cwd


class Environment03(Environment02):
    def get_initial_cwd(self) -> str | None:
        return self.state.config.cwd


# -- exit ------------------------------------------------------------------


class Exit(_PerInstance):
    def exit(self, status: Ok | Err) -> None:
        self.exit_with_code(0 if isinstance(status, Ok) else 1)

    def exit_with_code(self, status_code: int) -> None:
        self.state.exit_code = status_code
        raise WasiExit(status_code)


# -- 0.2 stdio -------------------------------------------------------------


class Stdin02(_PerInstance):
    def get_stdin(self) -> InputStream:
        return PumpedInputStream(self.state.stdin)


class Stdout02(_PerInstance):
    def get_stdout(self) -> OutputStream:
        return self.state.stdout.stream(self.context)


class Stderr02(_PerInstance):
    def get_stderr(self) -> OutputStream:
        return self.state.stderr.stream(self.context)


# -- 0.3 stdio -------------------------------------------------------------


class _SourceChannel(trio.abc.ReceiveChannel[bytes]):
    """stdin as a ``stream<u8>`` source: chunks on demand, then the result future."""

    def __init__(self, source: PumpedSource, done: trio.MemorySendChannel[Any]) -> None:
        self._source = source
        self._done = done

    async def receive(self) -> bytes:
        data = await self._source.receive(CHUNK)
        if data:
            return data
        self._finish(Ok())
        raise trio.EndOfChannel

    def _finish(self, value: Ok | Err) -> None:
        try:
            self._done.send_nowait(value)
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        self._done.close()

    async def aclose(self) -> None:
        # The guest dropped the stream early: nothing failed.
        self._finish(Ok())
        await trio.lowlevel.checkpoint()


class Stdin03(_PerInstance):
    def read_via_stream(self) -> tuple[Any, Any]:
        send, receive = trio.open_memory_channel[Any](1)
        return _SourceChannel(self.state.stdin, send), receive


async def _drain(sink: OutputSink, data: StreamReceiver, done: trio.MemorySendChannel[Any]) -> None:
    """Copy the guest's stream into ``sink`` chunk by chunk, then resolve the future."""
    result: Ok | Err = Ok()
    async with done:
        try:
            async for chunk in data:
                # The guest's write completed when this chunk was received:
                # deliver it even if the instance is closing meanwhile.
                with trio.CancelScope(shield=True):
                    await sink.send_all(bytes(chunk))
        except (BrokenPipeError, trio.BrokenResourceError, trio.ClosedResourceError):
            result = Err("pipe")
        except OSError:
            result = Err("io")
        finally:
            await data.aclose()
        # The guest may have dropped the future without reading it.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            done.send_nowait(result)


class _Writer(_PerInstance):
    def _sink(self) -> OutputSink:
        raise NotImplementedError

    def write_via_stream(self, data: StreamReceiver) -> Any:
        send, receive = trio.open_memory_channel[Any](1)
        self.context.start_soon(_drain, self._sink(), data, send)
        return receive


class Stdout03(_Writer):
    def _sink(self) -> OutputSink:
        return self.state.stdout


class Stderr03(_Writer):
    def _sink(self) -> OutputSink:
        return self.state.stderr


# -- terminals -------------------------------------------------------------


class TerminalInputInterface:
    TerminalInput = TerminalInput


class TerminalOutputInterface:
    TerminalOutput = TerminalOutput


class TerminalStdin(_PerInstance):
    def get_terminal_stdin(self) -> TerminalInput | None:
        return TerminalInput() if self.state.stdin_is_terminal else None


class TerminalStdout(_PerInstance):
    def get_terminal_stdout(self) -> TerminalOutput | None:
        return TerminalOutput() if self.state.stdout.is_terminal else None


class TerminalStderr(_PerInstance):
    def get_terminal_stderr(self) -> TerminalOutput | None:
        return TerminalOutput() if self.state.stderr.is_terminal else None


class CliTypes:
    """wasi:cli/types@0.3.0 declares only types."""


def add_to_linker(linker: Linker, config: WasiConfig) -> None:
    """Define wasi:cli 0.3.0 and 0.2.0 (every interface but the ``run`` export)."""

    def per(cls: type) -> Any:
        return functools.partial(cls, config)

    for v, env, stdin, stdout, stderr in (
        ("0.3.0", Environment03, Stdin03, Stdout03, Stderr03),
        ("0.2.0", Environment02, Stdin02, Stdout02, Stderr02),
    ):
        linker.define_interface(f"wasi:cli/environment@{v}", factory=per(env))
        linker.define_interface(f"wasi:cli/exit@{v}", factory=per(Exit))
        linker.define_interface(f"wasi:cli/stdin@{v}", factory=per(stdin))
        linker.define_interface(f"wasi:cli/stdout@{v}", factory=per(stdout))
        linker.define_interface(f"wasi:cli/stderr@{v}", factory=per(stderr))
        linker.define_interface(f"wasi:cli/terminal-input@{v}", TerminalInputInterface)
        linker.define_interface(f"wasi:cli/terminal-output@{v}", TerminalOutputInterface)
        linker.define_interface(f"wasi:cli/terminal-stdin@{v}", factory=per(TerminalStdin))
        linker.define_interface(f"wasi:cli/terminal-stdout@{v}", factory=per(TerminalStdout))
        linker.define_interface(f"wasi:cli/terminal-stderr@{v}", factory=per(TerminalStderr))
    linker.define_interface("wasi:cli/types@0.3.0", CliTypes)
