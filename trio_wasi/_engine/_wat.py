"""Component and module text (WAT) to binary, with wasmtime's text parser."""

from __future__ import annotations

import re

import wasmtime

from .._errors import DecodeError

__all__ = ["wat_to_wasm"]


def wat_to_wasm(text: str) -> bytes:
    """Assemble component or core module text; :class:`DecodeError` if it does not parse."""
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        raise DecodeError(f"invalid component text: {exc}", _offset(text, str(exc))) from exc


# Where wasmtime's text parser reports an error: `--> <anon>:LINE:COLUMN`.
_WHERE = re.compile(r"<anon>:(\d+):(\d+)")


def _offset(text: str, message: str) -> int:
    """The byte offset (UTF-8) in ``text`` of the line and column ``message`` names, else 0."""
    where = _WHERE.search(message)
    if where is None:
        return 0
    line, column = int(where[1]), int(where[2])
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return 0
    before = sum(len(x.encode()) + 1 for x in lines[: line - 1])
    return before + len(lines[line - 1][: column - 1].encode())
