"""Error contexts: the ``error-context`` values and their built-ins.

CanonicalABI.md ``canon error-context.new``, ``canon error-context.debug-message``,
``canon error-context.drop`` and ``lift_error_context``/``lower_error_context``.

Rules:

* an error context is an immutable value held by handles; lifting one leaves
  the handle in place (it is copied, not moved), lowering adds a new handle;
* its debug message is a string read with the caller's string encoding. The
  specification lets an implementation replace the message by an empty one;
  this implementation always keeps it;
* ``debug-message`` stores the message as a string (pointer and tagged
  length at ``ptr``) with the caller's ``realloc``, one exact allocation.
"""

from __future__ import annotations

import struct
from typing import final

from ._handles import InstanceState
from ._options import CanonOptions, LiftLowerContext
from ._strings import load_string_from_range, store_string_into_range
from ._trap import trap, trap_if

__all__ = [
    "ErrorContext",
    "error_context_debug_message",
    "error_context_drop",
    "error_context_new",
    "lift_error_context",
    "lower_error_context",
]

_PAIR = struct.Struct("<II")


@final
class ErrorContext:
    """An ``error-context`` value (the spec's ``ErrorContext``)."""

    __slots__ = ("debug_message",)

    def __init__(self, debug_message: str) -> None:
        self.debug_message = debug_message

    def __repr__(self) -> str:
        return f"ErrorContext({self.debug_message!r})"


def _get(inst: InstanceState, i: int) -> ErrorContext:
    errctx = inst.table.get(i)
    if not isinstance(errctx, ErrorContext):
        trap(f"handle index {i} is not an error context")
    return errctx


def error_context_new(
    inst: InstanceState, opts: CanonOptions, ptr: int, tagged_code_units: int
) -> int:
    """``canon error-context.new``: a new handle for the message at ``ptr``.

    ``tagged_code_units`` is the string length in code units of the options'
    encoding (bit 31 tags UTF-16 under ``latin1+utf16``).
    """
    trap_if(not inst.may_leave, "cannot leave component instance")
    cx = LiftLowerContext(opts, inst)
    s = load_string_from_range(
        cx, cx.memory_view(), ptr & 0xFFFFFFFF, tagged_code_units & 0xFFFFFFFF
    )
    return inst.table.add(ErrorContext(s))


def error_context_debug_message(inst: InstanceState, opts: CanonOptions, i: int, ptr: int) -> None:
    """``canon error-context.debug-message``: store the message of ``i`` as a string at ``ptr``."""
    trap_if(not inst.may_leave, "cannot leave component instance")
    errctx = _get(inst, i)
    cx = LiftLowerContext(opts, inst)
    begin, tagged = store_string_into_range(cx, errctx.debug_message)
    mv = cx.memory_view()
    ptr &= 0xFFFFFFFF
    trap_if(ptr + _PAIR.size > len(mv), "pointer out-of-bounds of memory")
    _PAIR.pack_into(mv, ptr, begin, tagged)


def error_context_drop(inst: InstanceState, i: int) -> None:
    """``canon error-context.drop``: remove handle ``i``."""
    trap_if(not inst.may_leave, "cannot leave component instance")
    errctx = inst.table.remove(i)
    if not isinstance(errctx, ErrorContext):
        trap(f"handle index {i} is not an error context")


def lift_error_context(cx: LiftLowerContext, i: int) -> ErrorContext:
    """The error context of handle ``i``; the handle stays (``lift_error_context``)."""
    return _get(cx.instance, i)


def lower_error_context(cx: LiftLowerContext, v: ErrorContext) -> int:
    """A new handle for ``v`` in the context's instance (``lower_error_context``)."""
    if not isinstance(v, ErrorContext):
        raise TypeError(f"expected an ErrorContext, got {v!r}")
    return cx.instance.table.add(v)
