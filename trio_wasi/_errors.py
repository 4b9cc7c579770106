"""The exception tree of trio_wasi: one base class, one subclass per stage.

Decoding, validation, linking and running fail at distinct boundaries, and a
caller usually wants to tell them apart (a malformed upload is not a guest bug),
so each stage raises its own type and third-party errors are mapped at the
boundary with ``raise ... from exc``.
"""

from __future__ import annotations

from typing import final

__all__ = ["DecodeError", "Error", "LinkError", "Trap", "ValidationError"]


class Error(Exception):
    """Base class of every error trio_wasi raises on purpose."""


@final
class DecodeError(Error):
    """The bytes are not a well-formed component (or core module).

    ``offset`` is the byte offset at which decoding stopped; the message says
    what was expected there.
    """

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte offset {offset})")
        self.message = message
        self.offset = offset


@final
class ValidationError(Error):
    """The component is well-formed but breaks a validation rule."""


@final
class LinkError(Error):
    """An import is missing or has the wrong type, or instantiation failed."""


class Trap(Error):
    """A WebAssembly trap, raised by core wasm or by a canonical ABI check.

    Once an instance has trapped it must not be entered again; the runtime
    enforces that, so a trap poisons only the instance it happened in.
    """


class ExportError(Error, KeyError):
    """An export that does not exist or is not a function (also a ``KeyError``)."""

    def __str__(self) -> str:
        # KeyError quotes its argument; this is a message, not a key.
        return str(self.args[0]) if self.args else ""
