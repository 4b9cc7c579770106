"""Component and module text (WAT) to binary, with wasmtime's text parser."""

from __future__ import annotations

import wasmtime

from .._errors import DecodeError

__all__ = ["wat_to_wasm"]


def wat_to_wasm(text: str) -> bytes:
    """Assemble component or core module text; :class:`DecodeError` if it does not parse."""
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        raise DecodeError(f"invalid component text: {exc}", 0) from exc
