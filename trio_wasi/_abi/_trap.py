"""The one place the canonical ABI raises traps.

Every dynamic check the specification writes as ``trap_if(cond)`` goes through
:func:`trap_if` or :func:`trap`, with a message in the wording wasmtime uses
where one exists (the conformance suites match on it).
"""

from __future__ import annotations

from typing import NoReturn

from .._errors import Trap

__all__ = ["trap", "trap_if"]


def trap(message: str) -> NoReturn:
    """Raise a :class:`~trio_wasi._errors.Trap` with ``message``."""
    raise Trap(message)


def trap_if(cond: object, message: str) -> None:
    """Trap with ``message`` when ``cond`` is true."""
    if cond:
        raise Trap(message)
