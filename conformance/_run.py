"""Executing one converted ``.wast`` script against trio_wasi.

Commands run in order inside one ``trio.run``. Instances stay open until the
file ends (the script may call them again or instantiate definitions that
import from them), then they are closed together. A per-file time limit turns
a hang into a failure.
"""

from __future__ import annotations

import contextlib
import functools
import re
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import trio

from ._results import CommandResult, FileResult, Outcome
from ._values import ValueFormError, argument_value, expected_value, matches
from ._wast import ConversionError, convert

if TYPE_CHECKING:
    import trio_wasi

__all__ = ["DEFAULT_TIME_LIMIT", "expected_trap_text", "run_file"]

#: Seconds one file may take before it counts as hung.
DEFAULT_TIME_LIMIT: Final = 60.0

_SOURCE_LINE: Final = re.compile(r"\.wast:(\d+):\d+")


class _StopFile(Exception):
    """A command failed before it could be judged (its module, instance or arguments)."""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


#: The suite's trap texts carry the prefix of one reference host's trap
#: messages; it says nothing about the trap, so it is dropped before comparing.
_TRAP_PREFIX: Final = "wasm trap: "


def expected_trap_text(text: str) -> str:
    """The part of an expected trap text our trap message must contain."""
    return text.removeprefix(_TRAP_PREFIX)


def _trap_messages(exc: BaseException, trap: type[BaseException]) -> list[str] | None:
    """The messages of a Trap, or of a group of nothing but Traps; None for anything else."""
    if isinstance(exc, trap):
        return [str(exc)]
    if isinstance(exc, BaseExceptionGroup):
        matched, rest = exc.split(trap)
        if rest is None and matched is not None:
            messages: list[str] = []
            for inner in matched.exceptions:
                found = _trap_messages(inner, trap)
                messages.extend(found or [])
            return messages
    return None


@functools.cache
def _engine() -> trio_wasi.Engine:
    import trio_wasi

    # One engine per process, so its compile cache is shared by every file.
    return trio_wasi.Engine()


class _Script:
    """The state of one script: named definitions and instances, and the results."""

    def __init__(
        self,
        script: dict[str, Any],
        module_dir: Path,
        time_limit: float,
        skip: Collection[int] = (),
    ) -> None:
        import trio_wasi

        self._tw = trio_wasi
        self._commands: list[dict[str, Any]] = script["commands"]
        self._module_dir = module_dir
        self._time_limit = time_limit
        self._skip = frozenset(skip)
        self._engine = _engine()
        # The suite exercises guest threads, which a runtime allows only when asked.
        self._linker = trio_wasi.Linker(self._engine, limits=trio_wasi.Limits(guest_threads=True))
        self._stack = contextlib.AsyncExitStack()
        self._instances: dict[str, trio_wasi.Instance] = {}
        self._current: trio_wasi.Instance | None = None
        self._definitions: dict[str, trio_wasi.Component] = {}
        self._current_definition: trio_wasi.Component | None = None
        self.results: list[CommandResult] = []

    # -- driver ----------------------------------------------------------------

    async def execute(self) -> None:
        line, kind = 0, "module"
        try:
            with trio.fail_after(self._time_limit):
                async with self._stack:
                    for command in self._commands:
                        line, kind = int(command.get("line", 0)), str(command["type"])
                        if line in self._skip:
                            self.results.append(
                                CommandResult(line, kind, False, "not run (ledger)", skipped=True)
                            )
                            self._forget(kind)
                            continue
                        handler = getattr(self, "_cmd_" + kind, None)
                        if handler is None:
                            # Only this command fails; the file goes on.
                            self._fail(line, kind, "unsupported command")
                            continue
                        try:
                            await handler(command)
                        except _StopFile as exc:
                            # Later commands still run: those that need the
                            # failed module's instance fail on their own, the
                            # independent ones (assert_malformed, other
                            # modules) are still judged.
                            self._fail(line, kind, str(exc))
                            self._forget(kind)
                    kind = "close"
        except trio.TooSlowError:
            self._fail(line, kind, f"timed out after {self._time_limit:g} s")
        except Exception as exc:
            # Only closing the instances can get here: commands catch their own errors.
            self._fail(line, "close", f"closing the instances raised {_describe(exc)}")

    def _forget(self, kind: str) -> None:
        """A module command did not produce its module: later commands must not use an older one."""
        if kind == "module" or kind == "module_instance":
            self._current = None
        elif kind == "module_definition":
            self._current_definition = None

    def _pass(
        self,
        command: dict[str, Any],
        *,
        expected_text: str | None = None,
        actual_text: str | None = None,
    ) -> None:
        self.results.append(
            CommandResult(
                int(command["line"]),
                str(command["type"]),
                True,
                expected_text=expected_text,
                actual_text=actual_text,
            )
        )

    def _fail(
        self,
        line: int,
        kind: str,
        message: str,
        *,
        expected_text: str | None = None,
        actual_text: str | None = None,
    ) -> None:
        self.results.append(CommandResult(line, kind, False, message, expected_text, actual_text))

    def _fail_command(
        self,
        command: dict[str, Any],
        message: str,
        *,
        expected_text: str | None = None,
        actual_text: str | None = None,
    ) -> None:
        self._fail(
            int(command["line"]),
            str(command["type"]),
            message,
            expected_text=expected_text,
            actual_text=actual_text,
        )

    # -- helpers ---------------------------------------------------------------

    def _component(self, command: dict[str, Any]) -> trio_wasi.Component:
        """Load a command's module; the runtime's own errors propagate.

        ``json-from-wast`` writes a quoted module it cannot encode as text; the
        runtime reads that text itself (:meth:`Component.from_wat`), so a text
        that does not parse is the runtime's :class:`DecodeError`.
        """
        path: Path = self._module_dir / str(command["filename"])
        if command.get("module_type", "binary") == "text":
            return self._tw.Component.from_wat(
                path.read_text(encoding="utf-8"), engine=self._engine
            )
        return self._tw.Component.from_bytes(path.read_bytes(), engine=self._engine)

    def _load(self, command: dict[str, Any]) -> trio_wasi.Component:
        try:
            return self._component(command)
        except Exception as exc:
            raise _StopFile(f"loading failed: {_describe(exc)}") from exc

    async def _instantiate(self, component: trio_wasi.Component) -> trio_wasi.Instance:
        try:
            return await self._stack.enter_async_context(
                self._linker.instantiate(component, trap_on_deadlock=True)
            )
        except Exception as exc:
            raise _StopFile(f"instantiation failed: {_describe(exc)}") from exc

    async def _invoke(self, action: dict[str, Any]) -> Any:
        """Run an action; errors other than the call's own propagate as _StopFile."""
        if action.get("type") != "invoke":
            raise _StopFile(f"unsupported action {action.get('type')!r}")
        name = action.get("module")
        instance = self._current if name is None else self._instances.get(name)
        if instance is None:
            raise _StopFile(f"no instance {name!r}" if name else "no current instance")
        try:
            args = [argument_value(arg) for arg in action.get("args", [])]
        except ValueFormError as exc:
            raise _StopFile(f"cannot convert an argument: {exc}") from exc
        return await instance.call(action["field"], *args)

    # -- commands --------------------------------------------------------------

    async def _cmd_module(self, command: dict[str, Any]) -> None:
        instance = await self._instantiate(self._load(command))
        self._current = instance
        if command.get("name"):
            self._instances[command["name"]] = instance
        self._pass(command)

    async def _cmd_module_definition(self, command: dict[str, Any]) -> None:
        component = self._load(command)
        self._current_definition = component
        if command.get("name"):
            self._definitions[command["name"]] = component
        self._pass(command)

    async def _cmd_module_instance(self, command: dict[str, Any]) -> None:
        name = command.get("module")
        component = self._current_definition if name is None else self._definitions.get(name)
        if component is None:
            raise _StopFile(f"no definition {name!r}" if name else "no current definition")
        instance = await self._instantiate(component)
        self._current = instance
        if command.get("instance"):
            self._instances[command["instance"]] = instance
        self._pass(command)

    async def _cmd_action(self, command: dict[str, Any]) -> None:
        try:
            await self._invoke(command["action"])
        except _StopFile:
            raise
        except Exception as exc:
            self._fail_command(command, f"raised {_describe(exc)}")
        else:
            self._pass(command)

    async def _cmd_assert_return(self, command: dict[str, Any]) -> None:
        try:
            patterns = [expected_value(value) for value in command.get("expected", [])]
        except ValueFormError as exc:
            raise _StopFile(f"cannot convert the expected value: {exc}") from exc
        try:
            result = await self._invoke(command["action"])
        except _StopFile:
            raise
        except Exception as exc:
            self._fail_command(command, f"expected a result, raised {_describe(exc)}")
            return
        if not patterns:
            ok, want = result is None, "no result"
        elif len(patterns) == 1:
            ok, want = matches(patterns[0], result), repr(patterns[0])
        else:
            ok, want = matches(tuple(patterns), result), repr(tuple(patterns))
        if ok:
            self._pass(command)
        else:
            self._fail_command(command, f"expected {want}, got {result!r}")

    async def _cmd_assert_trap(self, command: dict[str, Any]) -> None:
        """assert_trap, assert_exhaustion, assert_uninstantiable: a trap with the expected text."""
        expected_text = str(command.get("text", ""))
        try:
            if "action" in command:
                result = await self._invoke(command["action"])
                outcome = f"returned {result!r}"
            else:
                # A module form: instantiation itself must trap.
                try:
                    component = self._load(command)
                except _StopFile as exc:
                    self._fail_command(command, str(exc), expected_text=expected_text)
                    return
                async with self._linker.instantiate(component, trap_on_deadlock=True):
                    pass
                outcome = "instantiated without trapping"
        except _StopFile:
            raise
        except Exception as exc:
            messages = _trap_messages(exc, self._tw.Trap)
            actual = " | ".join(messages) if messages is not None else str(exc)
            if messages is None:
                self._fail_command(
                    command,
                    f"expected a trap, raised {_describe(exc)}",
                    expected_text=expected_text,
                    actual_text=actual,
                )
            elif any(expected_trap_text(expected_text) in m for m in messages):
                self._pass(command, expected_text=expected_text, actual_text=actual)
            else:
                self._fail_command(
                    command,
                    f"trapped with a different message: {actual!r}",
                    expected_text=expected_text,
                    actual_text=actual,
                )
            return
        self._fail_command(command, f"expected a trap, {outcome}", expected_text=expected_text)

    _cmd_assert_exhaustion = _cmd_assert_trap

    async def _cmd_assert_uninstantiable(self, command: dict[str, Any]) -> None:
        await self._cmd_assert_trap({k: v for k, v in command.items() if k != "action"})

    async def _cmd_assert_unlinkable(self, command: dict[str, Any]) -> None:
        """The module loads, but instantiating it must fail to link (LinkError)."""
        expected_text = str(command.get("text", ""))
        try:
            component = self._load(command)
        except _StopFile as exc:
            self._fail_command(command, str(exc), expected_text=expected_text)
            return
        try:
            async with self._linker.instantiate(component, trap_on_deadlock=True):
                pass
        except self._tw.LinkError as exc:
            if expected_text in str(exc):
                self._pass(command, expected_text=expected_text, actual_text=str(exc))
            else:
                self._fail_command(
                    command,
                    f"failed to link with a different message: {str(exc)!r}",
                    expected_text=expected_text,
                    actual_text=str(exc),
                )
        except Exception as exc:
            self._fail_command(
                command,
                f"expected LinkError, raised {_describe(exc)}",
                expected_text=expected_text,
                actual_text=str(exc),
            )
        else:
            self._fail_command(
                command, "instantiated, expected it not to link", expected_text=expected_text
            )

    async def _reject(self, command: dict[str, Any]) -> None:
        """assert_malformed / assert_invalid: loading must fail at the right stage and say why.

        A malformed module is refused by decoding (:class:`DecodeError`), an
        invalid one by validation (:class:`ValidationError`); the message must
        contain the expected text.
        """
        expected_text = str(command.get("text", ""))
        malformed = command["type"] == "assert_malformed"
        wanted = self._tw.DecodeError if malformed else self._tw.ValidationError
        other = self._tw.ValidationError if malformed else self._tw.DecodeError
        try:
            self._component(command)
        except wanted as exc:
            if expected_text in str(exc):
                self._pass(command, expected_text=expected_text, actual_text=str(exc))
            else:
                self._fail_command(
                    command,
                    f"rejected with a different message: {str(exc)!r}",
                    expected_text=expected_text,
                    actual_text=str(exc),
                )
        except Exception as exc:
            stage = "wrong stage: " if isinstance(exc, other) else ""
            self._fail_command(
                command,
                f"{stage}expected {wanted.__name__}, raised {_describe(exc)}",
                expected_text=expected_text,
                actual_text=str(exc),
            )
        else:
            self._fail_command(
                command,
                "loaded without error, expected it to be rejected",
                expected_text=expected_text,
            )

    _cmd_assert_invalid = _reject
    _cmd_assert_malformed = _reject


def run_file(
    wast: Path,
    display: str,
    *,
    time_limit: float = DEFAULT_TIME_LIMIT,
    skip: Collection[int] = (),
) -> FileResult:
    """Convert and run one ``.wast`` file in this process; ``display`` names it in results.

    Commands whose source line is in ``skip`` are recorded as skipped, not run.
    """
    start = time.monotonic()
    results: list[CommandResult] = []
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        try:
            script = convert(wast, Path(tmp))
        except ConversionError as exc:
            found = _SOURCE_LINE.search(str(exc))
            line = int(found.group(1)) if found else 0
            results.append(CommandResult(line, "convert", False, str(exc)))
        else:
            try:
                runner = _Script(script, Path(tmp), time_limit, skip)
            except Exception as exc:
                results.append(
                    CommandResult(0, "setup", False, f"cannot set up trio_wasi: {_describe(exc)}")
                )
            else:
                trio.run(runner.execute)
                results = runner.results
    failed = any(not r.passed and not r.skipped for r in results)
    return FileResult(
        path=display,
        outcome=Outcome.FAILED if failed else Outcome.PASSED,
        commands=results,
        seconds=time.monotonic() - start,
    )
