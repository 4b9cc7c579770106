"""The command line: thin wrappers over the embedding API.

``run`` runs a WASI command component (its ``wasi:cli/run`` export, or one
export with ``--invoke``); ``call`` runs one export of any component and
prints its result; ``inspect`` prints a component's imports and exports as
WIT. With no component file, ``run`` and ``call`` use the components shipped
in ``trio_wasi/demo/``. Every error is one line from a :class:`trio_wasi.Error`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import gc
import importlib
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import Error, Trap

if TYPE_CHECKING:
    from ._component import Component
    from ._engine import Engine
    from ._instance import Instance
    from ._limits import Limits
    from ._linker import Linker
    from .wasi._config import WasiConfig

__all__ = ["main"]

T = TypeVar("T")

# The first bytes of a core module or component, and of component text.
_WASM_MAGIC = b"\x00asm"
_TEXT_STARTS = (b"(component", b"(module", b";;", b"(;")

# The exit status of `run` when the component traps: 128 + SIGABRT, as
# `wasmtime run` gives, so a script can tell a crash from a command's `err` (1).
TRAP_STATUS = 134

# Show a progress line when loading takes longer than this (seconds).
_PROGRESS_AFTER = 0.5

DESCRIPTION = """\
Run WebAssembly components on trio.

commands:
  run      run a WASI command component (wasi:cli/run, 0.2 or 0.3)
  call     call one export of a component and print its result
  serve    serve HTTP with a wasi:http component (0.3 service or 0.2 proxy)
  inspect  print a component's imports and exports as WIT

Run "python -m trio_wasi COMMAND --help" for a command's options.
With no command, runs the shipped demo command (same as "run").
"""

RUN_DESCRIPTION = """\
Run a WASI command component: its wasi:cli/run export (0.3.0 or 0.2.x).
The exit status is the component's: 0 when run returns ok, 1 for err, or
what it passed to wasi:cli/exit; 134 when it traps (as wasmtime run), 1 for
any other error (a missing file, an import the host lacks). stdin, stdout and stderr are the
process's own, streamed as the component reads and writes them.

Nothing is granted unless asked for: no files, no network, no environment.
With no FILE, runs the shipped demo command.

examples:
  python -m trio_wasi run app.wasm --flag value
  python -m trio_wasi run --dir ./data::/data --env NAME=value app.wasm
  python -m trio_wasi run --dir ./assets::/assets::ro app.wasm
  python -m trio_wasi run --invoke greet app.wasm world
"""

CALL_DESCRIPTION = """\
Call one export of a component and print its result. Arguments are JSON
when they parse (numbers, lists, objects for records), text otherwise.
FILE is recognised as an existing file; with no FILE, the shipped demo
component (export "greet") is used.
"""


def _demo(name: str, engine: Engine | None = None) -> Component:
    from ._component import Component

    text = resources.files("trio_wasi").joinpath(f"demo/{name}").read_text(encoding="utf-8")
    return Component.from_wat(text, engine=engine)


def engine_for(limits: Limits) -> Engine | None:
    """The engine to load components with under ``limits``: one that meters fuel if asked."""
    if limits.fuel is None:
        return None
    from ._component import fuel_engine

    return fuel_engine()


def _looks_like_component(path: Path) -> bool:
    """Whether ``path`` is an existing file holding wasm (by magic) or component text."""
    try:
        if not path.is_file():
            return False
        with path.open("rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head.startswith(_WASM_MAGIC) or head.lstrip().startswith(_TEXT_STARTS)


def check_component_path(text: str) -> Path:
    """``text`` as the path of a component file; :class:`Error` saying why it is not one."""
    path = Path(text)
    if not _looks_like_component(path):
        if not path.exists():
            raise Error(f"no such file: {text}")
        if path.is_dir():
            raise Error(f"{text} is a directory, not a component file")
        raise Error(f"{text} is not a WebAssembly component (no wasm magic bytes)")
    return path


def _with_progress(label: str, load: Callable[[], Component]) -> Component:
    """Run ``load``; on a terminal, say what is happening if it takes a while."""
    if not sys.stderr.isatty():
        return load()
    shown = threading.Event()

    def show() -> None:
        shown.set()
        sys.stderr.write(f"compiling {label} (the first run of a component compiles it)...")
        sys.stderr.flush()

    timer = threading.Timer(_PROGRESS_AFTER, show)
    timer.daemon = True
    timer.start()
    try:
        return load()
    finally:
        timer.cancel()
        if shown.is_set():
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


class _ReadAhead:
    """Reads a component file on a thread of its own while the caller gets on.

    Reading a componentize-py component (19 MB) takes some 10 ms, nearly all
    of it in the read system call, which runs without the GIL: ``run``
    imports the WASI host modules meanwhile. A failed read is left for the
    caller to repeat, so its error is reported as any other read's.
    """

    def __init__(self, path: Path, cache_dir: Path | None) -> None:
        self.path = path
        self._cache_dir = cache_dir
        self._result: tuple[bytes, bytes] | None = None
        self._thread = threading.Thread(target=self._read, name="trio_wasi read-ahead", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        from ._digests import read_with_digest

        try:
            self._result = read_with_digest(self.path, self._cache_dir)
        except Exception:
            pass  # read again by result(), which raises it there

    def result(self) -> tuple[bytes, bytes]:
        """The file's bytes and sha256, as :func:`read_with_digest` gives them."""
        from ._digests import read_with_digest

        self._thread.join()
        if self._result is None:
            return read_with_digest(self.path, self._cache_dir)
        return self._result


def _load(path: Path, engine: Engine | None = None, ahead: _ReadAhead | None = None) -> Component:
    """The component at ``path`` (binary or text); ``engine`` as for ``Component.from_bytes``.

    ``ahead`` is a read of the same file already under way (made with the
    engine's cache directory).
    """
    from ._component import Component
    from ._digests import read_with_digest

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise Error(f"cannot read {path}: {exc.strerror or exc}") from exc
    label = f"{path.name}, {size / 1e6:.1f} MB" if size >= 1e6 else path.name
    try:
        if engine is None:
            from ._component import default_engine

            engine = default_engine()
        if ahead is not None and ahead.path == path:
            data, sha256 = ahead.result()
        else:
            data, sha256 = read_with_digest(path, engine.cache_dir)
        if data.startswith(_WASM_MAGIC):
            return _with_progress(
                label, lambda: Component._from_binary(data, engine=engine, sha256=sha256)
            )
        text = data.decode("utf-8", errors="replace")
        return _with_progress(label, lambda: Component.from_wat(text, engine=engine))
    except OSError as exc:
        raise Error(f"cannot read {path}: {exc.strerror or exc}") from exc


def _parse_arg(text: str) -> Any:
    # JSON when it parses (numbers, lists, records as objects); otherwise the
    # literal text, so `call greet world` needs no quoting. (json is imported
    # here: `run` does not need it.)
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class _ReaderGone(Exception):
    """stdout's reader went away (``| head``): end quietly, with status 1."""


def _print(text: str, end: str = "\n") -> None:
    """Write ``text`` to stdout now; a failed write is an :class:`Error` or :class:`_ReaderGone`.

    The rest of what was buffered is sent to the null device, so the
    interpreter's final flush does not fail a second time with a traceback.
    """
    try:
        sys.stdout.write(text + end)
        sys.stdout.flush()
    except OSError as exc:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        if isinstance(exc, BrokenPipeError):
            raise _ReaderGone from exc
        raise Error(f"cannot write to stdout: {exc.strerror or exc}") from exc


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


# -- run -------------------------------------------------------------------


def _wasi_config(ns: argparse.Namespace, program: str, args: list[str]) -> WasiConfig:
    from .wasi._config import INHERIT, Preopen, WasiConfig

    settings = set()
    for item in ns.settings:
        for part in item.split(","):
            name, _, value = part.partition("=")
            if value in ("n", "no", "false", "0"):
                continue
            if name not in _SETTINGS:
                known = ", ".join(sorted(_SETTINGS))
                raise Error(f"unknown -S setting `{name}` (known: {known})")
            settings.add(name)
    env: list[tuple[str, str]] = []
    for item in ns.env:
        name, eq, value = item.partition("=")
        if not name:
            raise Error(f"--env {item}: no variable name (NAME=VALUE or NAME)")
        if not eq:
            if name not in os.environ:
                continue
            value = os.environ[name]
        env.append((name, value))
    preopens = []
    for item in ns.dirs:
        # HOST[::GUEST[::ro]]: wasmtime run's form, plus a permission of our own.
        host, sep, rest = item.partition("::")
        guest, has_mode, mode = rest.partition("::")
        if not host or (sep and not guest):
            raise Error(f"--dir {item}: an empty path (HOST[::GUEST[::ro]])")
        if has_mode and mode not in _DIR_MODES:
            raise Error(f"--dir {item}: unknown permission `{mode}` (ro: read-only, rw)")
        if not Path(host).is_dir():
            raise Error(f"--dir {item}: {host} is not a directory")
        preopens.append(Preopen(Path(host), guest if sep else host, read_only=mode == "ro"))
    return WasiConfig(
        args=[program, *args],
        env=env,
        inherit_env="inherit-env" in settings,
        preopens=preopens,
        stdin=INHERIT,
        stdout=INHERIT,
        stderr=INHERIT,
        inherit_network="inherit-network" in settings,
        allow_ip_name_lookup="allow-ip-name-lookup" in settings,
    )


# The permissions a --dir grant may name after a second `::`.
_DIR_MODES = ("ro", "rw")

# -S settings: what they grant. `cli` is accepted for wasmtime compatibility
# (the WASI interfaces are always defined here).
_SETTINGS = {
    "cli": "define wasi:cli (always on)",
    "inherit-env": "pass the host's whole environment (--env still overrides)",
    "inherit-network": "allow sockets to reach any address",
    "allow-ip-name-lookup": "allow DNS lookups (wasi:sockets/ip-name-lookup)",
}


def _cmd_run(ns: argparse.Namespace) -> int:
    enabled = gc.isenabled()
    # Loading, linking and instantiating a componentize-py guest makes about
    # half a million objects, nearly all of them kept to the end, and almost
    # none in reference cycles: the collector would scan them again and again
    # (a third of a short run's time). Collect nothing until the instance
    # exists, then freeze what exists, so later collections scan only what
    # the run itself makes.
    gc.disable()
    try:
        return _run_frozen(ns)
    finally:
        # In-process callers get the collector back as it was.
        gc.unfreeze()
        if enabled:
            gc.enable()


def _settle() -> None:
    """Freeze every object made so far and collect again (see :func:`_cmd_run`)."""
    gc.freeze()
    gc.enable()


def _run_frozen(ns: argparse.Namespace) -> int:
    from ._limits import Limits, parse_w_options
    from ._linker import Linker
    from .wasi import MODULES, add_to_linker
    from .wasi._command import component_imports

    try:
        limits = parse_w_options(ns.limits, base=Limits.run())
    except ValueError as exc:
        raise Error(str(exc)) from None
    engine = engine_for(limits)
    rest: list[str] = list(ns.rest)
    if rest and rest[0] == "--":
        rest.pop(0)
    if rest:
        path = check_component_path(rest[0])
        if engine is None:
            from ._component import default_engine

            engine = default_engine()
        ahead = _ReadAhead(path, engine.cache_dir)
        # What add_to_linker imports, imported while the file is read.
        for name in MODULES:
            importlib.import_module(f"{__package__}.wasi.{name}")
        component = _load(path, engine, ahead)
        program, args = rest[0], rest[1:]
    else:
        component = _demo("hello_cli.wat", engine)
        program, args = "hello_cli.wat", []
    config = _wasi_config(ns, program, args)
    linker = Linker(component.engine, limits=limits)
    add_to_linker(linker, config, only=component_imports(component))
    if ns.invoke is not None:
        return _trio_run(functools.partial(_invoke, component, linker, ns.invoke, args))
    from .wasi._command import run_command

    code: int = _trio_run(
        functools.partial(run_command, component, config, linker=linker, ready=_settle)
    )
    return code


def _trio_run(fn: Callable[[], Awaitable[T]]) -> T:
    """``trio.run(fn)``, where SIGINT cancels ``fn`` and then raises KeyboardInterrupt.

    Left to trio's default, a Ctrl-C raises KeyboardInterrupt wherever the
    trio thread happens to be, possibly in the middle of the runtime's own
    bookkeeping; a signal receiver turns it into a plain cancellation, which
    every wait (a guest parked on its store thread included) unwinds from.
    Off the main thread signals cannot be received, and ``fn`` runs as is.
    """
    import signal

    import trio

    if threading.current_thread() is not threading.main_thread():
        return trio.run(fn)
    interrupted = False

    async def body() -> T:
        try:
            return await watched()
        except BaseExceptionGroup as group:
            # fn ran in the watcher's nursery, which wraps what it raised:
            # callers expect fn's own exception.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    async def watched() -> T:
        async with trio.open_nursery() as nursery:

            async def watch(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                nonlocal interrupted
                with trio.open_signal_receiver(signal.SIGINT) as signals:
                    task_status.started()
                    async for _ in signals:
                        interrupted = True
                        nursery.cancel_scope.cancel()
                        return

            await nursery.start(watch)
            result = await fn()
            nursery.cancel_scope.cancel()
            return result
        raise KeyboardInterrupt  # (only reached when the watcher cancelled fn)

    try:
        return trio.run(body)
    except BaseException:
        if interrupted:
            # Whatever the cancelled run ended with, the user's Ctrl-C is the news.
            raise KeyboardInterrupt from None
        raise


async def _invoke(component: Component, linker: Linker, export: str, args: list[str]) -> int:
    async with linker.instantiate(component) as instance:
        _settle()
        result = await _call_export(instance, export, args)
    if result is not None:
        _print(_render(result))
    return 0


# -- call ------------------------------------------------------------------


async def _call_export(instance: Instance, export: str, texts: list[str]) -> Any:
    """Call ``export`` with command-line arguments read for its parameter types."""
    from ._abi import _types as T

    params = instance._func(export).type.params
    # A string parameter takes the text as written (`call greet 5` greets "5").
    args = [
        text if i < len(params) and isinstance(params[i][1], T.StringType) else _parse_arg(text)
        for i, text in enumerate(texts)
    ]
    try:
        return await instance.call(export, *args)
    except (TypeError, ValueError) as exc:
        raise Error(f"`{export}`: an argument does not fit its parameter type: {exc}") from exc


async def _call(component: Component, export: str, args: list[str]) -> Any:
    from ._linker import Linker
    from .wasi import add_to_linker
    from .wasi._command import component_imports
    from .wasi._config import INHERIT, WasiConfig

    # WASI is there for components that import it, granting output only.
    linker = Linker(component.engine)
    config = WasiConfig(args=[export], stdout=INHERIT, stderr=INHERIT)
    add_to_linker(linker, config, only=component_imports(component))
    async with linker.instantiate(component) as instance:
        return await _call_export(instance, export, args)


def _cmd_call(ns: argparse.Namespace) -> int:
    rest: list[str] = list(ns.rest)
    if rest and _looks_like_component(Path(rest[0])):
        component = _load(Path(rest.pop(0)))
    elif rest and (rest[0].endswith((".wasm", ".wat")) or os.sep in rest[0]):
        # Meant as a file (an export name has no path separator where a file
        # exists): say what is wrong with it rather than look it up as an export.
        if rest[0].endswith((".wasm", ".wat")) or Path(rest[0]).exists():
            check_component_path(rest[0])
        component = _demo("hello.wat")
    else:
        component = _demo("hello.wat")
        if not rest:
            rest = ["greet", "world"]
    if not rest:
        raise Error("which export? usage: call [FILE] EXPORT [ARG ...]")
    export, args = rest[0], rest[1:]
    result = _trio_run(functools.partial(_call, component, export, args))
    if result is not None:
        _print(_render(result))
    return 0


# -- inspect ---------------------------------------------------------------


def _cmd_inspect(ns: argparse.Namespace) -> int:
    from ._engine import wat_to_wasm

    path: Path | None = None
    if ns.file is None:
        data = resources.files("trio_wasi").joinpath("demo/hello_cli.wat").read_bytes()
    else:
        path = check_component_path(ns.file)
        data = path.read_bytes()
    if not data.startswith(_WASM_MAGIC):
        data = wat_to_wasm(data.decode("utf-8"))
    _print(_component_wit(data, path), end="")
    return 0


def _component_wit(data: bytes, path: Path | None) -> str:
    """The component's world as WIT text: imports and exports with their signatures."""
    import subprocess
    import tempfile

    from ._validate import _validator

    found = _validator()
    if found is None:
        raise Error("inspect needs wasm-tools (pip install 'trio_wasi[validate]')")
    with tempfile.TemporaryDirectory(prefix="trio_wasi_inspect") as tmp:
        file = Path(tmp) / "component.wasm"
        file.write_bytes(data)
        proc = subprocess.run(
            [str(found[0]), "component", "wit", str(file)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["unknown error"])[0]
        raise Error(f"cannot describe {path or 'the component'} as WIT: {detail}")
    return proc.stdout


# -- serve -----------------------------------------------------------------


def _cmd_serve(ns: argparse.Namespace) -> int:
    # The serving side lives in the top-level wasi_http package.
    from wasi_http._cli import serve_command

    load: Callable[[Path, Engine | None], Component] = _load
    if ns.file is not None and ns.workers == 1 and _looks_like_component(Path(ns.file)):
        from ._engine._config import default_cache_dir

        # The server's modules (hypercorn and its protocols) are imported
        # while the component file is read.
        ahead = _ReadAhead(Path(ns.file), default_cache_dir())
        importlib.import_module("wasi_http._serve")
        load = functools.partial(_load, ahead=ahead)
    return serve_command(ns, load, _wasi_config)


# -- main ------------------------------------------------------------------


def add_wasi_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the WASI grants (``--dir``, ``--env``, ``-S``) that ``run`` and ``serve`` share.

    :func:`_wasi_config` reads them back into a :class:`WasiConfig`.
    """
    parser.add_argument(
        "--dir",
        dest="dirs",
        action="append",
        default=[],
        metavar="HOST[::GUEST[::ro]]",
        help="grant the host directory HOST to the component, seen as GUEST (default: HOST); "
        "with ::ro after GUEST, read-only (every change refused with read-only)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="set an environment variable; NAME alone passes the host's value",
    )
    parser.add_argument(
        "-S",
        dest="settings",
        action="append",
        default=[],
        metavar="SETTING",
        help="a WASI setting: "
        + "; ".join(f"{k}: {v}" for k, v in _SETTINGS.items())
        + " (comma-separated or repeated)",
    )


def _parser(run_only: bool = False) -> argparse.ArgumentParser:
    """The command line's parser; with ``run_only``, without the other subcommands.

    ``run`` is the command whose start-up counts: building the other
    subcommands' parsers (and importing wasi_http for ``serve``'s) would cost
    it a few milliseconds for nothing once ``run`` is known to be the command.
    """
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m trio_wasi", description=DESCRIPTION, formatter_class=fmt
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_run = sub.add_parser(
        "run",
        help="run a WASI command component",
        description=RUN_DESCRIPTION,
        formatter_class=fmt,
    )
    add_wasi_arguments(p_run)
    from ._limits import Limits, add_w_argument

    add_w_argument(p_run, Limits.run())
    p_run.add_argument(
        "--invoke",
        metavar="EXPORT",
        help="call this export instead of wasi:cli/run (ARGS are its arguments) and print "
        "the result",
    )
    p_run.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="[FILE [ARGS ...]]",
        help="the component (.wasm or .wat) and the arguments it receives",
    )
    if run_only:
        return parser

    p_call = sub.add_parser(
        "call",
        help="call an export and print its result",
        description=CALL_DESCRIPTION,
        formatter_class=fmt,
    )
    p_call.add_argument(
        "rest",
        nargs="*",
        metavar="[FILE] EXPORT [ARG ...]",
        help="component file (default: the shipped demo), export name, arguments",
    )
    from wasi_http._cli import add_serve_parser

    add_serve_parser(sub, fmt)
    p_inspect = sub.add_parser(
        "inspect",
        help="print a component's imports and exports as WIT",
        description="Print a component's imports and exports as WIT, with the signature "
        "of every function, including those inside imported and exported instances.",
    )
    p_inspect.add_argument("file", nargs="?", metavar="FILE")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``)."""
    args = sys.argv[1:] if argv is None else argv
    parser = _parser(run_only=args[:1] == ["run"])
    ns = parser.parse_args(args)
    try:
        if ns.command == "inspect":
            return _cmd_inspect(ns)
        if ns.command == "call":
            return _cmd_call(ns)
        if ns.command == "serve":
            return _cmd_serve(ns)
        if ns.command is None:
            ns = parser.parse_args(["run"])
        return _cmd_run(ns)
    except Error as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return TRAP_STATUS if isinstance(exc, Trap) and ns.command in (None, "run") else 1
    except _ReaderGone:
        return 1
    except KeyboardInterrupt:
        return 130


def exit_process(code: int) -> None:
    """End the process with ``code`` now, skipping the interpreter's teardown, when that is safe.

    After a run the interpreter would free every object of the loaded
    component one by one (hundreds of thousands for a componentize-py guest)
    and unload every module: tens of milliseconds spent on memory the
    process is about to return anyway. This does what that teardown does that
    anyone can see (``atexit`` handlers, flushing stdout and stderr, with
    exit status 120 when stdout cannot be flushed, as Python does) and then
    ends the process. It returns, leaving the ordinary exit to happen, while
    any non-daemon thread is alive (the interpreter would wait for it) or when
    flushing fails before the handlers ran.
    """
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        return  # the ordinary exit reports it
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except Exception:
        code = 120
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code & 0xFF)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
