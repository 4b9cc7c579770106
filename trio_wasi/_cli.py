"""The command line: thin wrappers over the embedding API.

``call`` runs one export of a component and prints its result; ``inspect``
lists a component's imports and exports. With no component file, ``call``
uses the demo component shipped in ``trio_wasi/demo/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import trio

from ._binary import _model as M
from ._component import Component
from ._errors import Error
from ._linker import Linker

__all__ = ["main"]


def _demo_component() -> Component:
    text = resources.files("trio_wasi").joinpath("demo/hello.wat").read_text(encoding="utf-8")
    return Component.from_wat(text)


def _parse_arg(text: str) -> Any:
    # JSON when it parses (numbers, lists, records as objects); otherwise the
    # literal text, so `call greet world` needs no quoting.
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return repr(value)


async def _call(component: Component, export: str, args: list[Any]) -> Any:
    async with Linker().instantiate(component) as instance:
        return await instance.call(export, *args)


def _cmd_call(ns: argparse.Namespace) -> int:
    rest: list[str] = list(ns.rest)
    if rest and rest[0].endswith((".wasm", ".wat")):
        component = Component.from_file(rest.pop(0))
    else:
        component = _demo_component()
    if not rest:
        rest = ["greet", "world"]
    export, args = rest[0], [_parse_arg(a) for a in rest[1:]]
    result = trio.run(_call, component, export, args)
    if result is not None:
        print(_render(result))
    return 0


def _cmd_inspect(ns: argparse.Namespace) -> int:
    component = Component.from_file(ns.file) if ns.file else _demo_component()
    for d in component.model.definitions:
        if isinstance(d, M.Import):
            print(f"import {d.name.name}")
        elif isinstance(d, M.Export):
            print(f"export {d.name.name} ({d.sort.value})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(prog="python -m trio_wasi", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    p_call = sub.add_parser("call", help="call an export and print its result")
    p_call.add_argument(
        "rest",
        nargs="*",
        metavar="[FILE] EXPORT [ARG ...]",
        help="component file (default: the shipped demo), export name, arguments (JSON or text)",
    )
    p_inspect = sub.add_parser("inspect", help="list a component's imports and exports")
    p_inspect.add_argument("file", nargs="?", type=Path)
    ns = parser.parse_args(argv)
    try:
        if ns.command == "inspect":
            return _cmd_inspect(ns)
        if ns.command in (None, "call"):
            if ns.command is None:
                ns.rest = []
            return _cmd_call(ns)
    except (Error, KeyError, TypeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    parser.print_help()
    return 2
