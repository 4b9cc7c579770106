"""Canonical options at run time, and the context of one lift or lower.

``CanonOptions`` is the resolved form of a ``canon lift``/``canon lower``
option list: the memory and functions are live objects, not indices.

``LiftLowerContext`` bundles what a single lifting or lowering needs
(CanonicalABI.md "Lifting and Lowering Context"): the options, the state of
the component instance whose memory and handle table are used, and the borrow
scope of the call in progress (see :mod:`._resources`).

Lifting and lowering ``error-context``, ``stream`` and ``future`` values needs
the asynchronous runtime; the context carries a pluggable
:class:`AsyncValueHooks` for them, and without one those types raise
NotImplementedError naming the type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .._frozen import frozen
from ._memory import Memory
from ._trap import trap

if TYPE_CHECKING:
    from ._handles import InstanceState
    from ._resources import BorrowScope
    from ._types import FutureType, StreamType

__all__ = ["AsyncValueHooks", "CanonOptions", "LiftLowerContext", "StringEncoding"]

StringEncoding = Literal["utf8", "utf16", "latin1+utf16"]


@frozen(eq=False)
class CanonOptions:
    """The options of one ``canon lift`` or ``canon lower`` (spec: "Canonical ABI Options").

    ``realloc(old_ptr, old_size, align, new_size) -> ptr`` and ``post_return``
    call into core wasm.
    """

    memory: Memory | None = None
    string_encoding: StringEncoding = "utf8"
    realloc: Callable[[int, int, int, int], int] | None = None
    post_return: Callable[..., None] | None = None
    is_async: bool = False
    callback: object | None = None

    def same_lift_options(self, other: CanonOptions) -> bool:
        """Whether values lift identically under both (``LiftOptions.equal``, used by task.return).

        Memories compare by identity: the same memory instance, not an equal one.
        """
        return self.string_encoding == other.string_encoding and self.memory is other.memory


class AsyncValueHooks(Protocol):
    """Lifts and lowers the handle types owned by the asynchronous runtime."""

    def lift_error_context(self, cx: LiftLowerContext, i: int) -> Any:
        """Lift error-context handle ``i``."""
        ...

    def lower_error_context(self, cx: LiftLowerContext, v: Any) -> int:
        """Lower error context ``v`` into a new handle."""
        ...

    def lift_stream(self, cx: LiftLowerContext, i: int, t: StreamType) -> Any:
        """Lift readable stream end ``i``."""
        ...

    def lower_stream(self, cx: LiftLowerContext, v: Any, t: StreamType) -> int:
        """Lower stream ``v`` into a new readable end handle."""
        ...

    def lift_future(self, cx: LiftLowerContext, i: int, t: FutureType) -> Any:
        """Lift readable future end ``i``."""
        ...

    def lower_future(self, cx: LiftLowerContext, v: Any, t: FutureType) -> int:
        """Lower future ``v`` into a new readable end handle."""
        ...


def _no_memory() -> memoryview:
    trap("canonical options have no memory")


class LiftLowerContext:
    """Everything one lift or lower needs (CanonicalABI.md "Lifting and Lowering Context").

    ``source_encoding`` is the string encoding of the side the values were
    lifted from, when they come from another component: string lowering then
    follows the specification's transcoding path for that pair (its realloc
    calls are observable). None means host strings, which are stored with one
    exact-size allocation.
    """

    __slots__ = (
        "borrow_scope",
        "budget",
        "hooks",
        "instance",
        "memory_view",
        "options",
        "source_encoding",
    )

    def __init__(
        self,
        options: CanonOptions,
        instance: InstanceState,
        borrow_scope: BorrowScope | None = None,
        *,
        source_encoding: StringEncoding | None = None,
        hooks: AsyncValueHooks | None = None,
    ) -> None:
        self.options = options
        self.instance = instance
        self.borrow_scope = borrow_scope
        self.source_encoding = source_encoding
        self.hooks = hooks
        # What lifts through this context may still copy out of the guest:
        # the host's bound on one call, so a value whose lists alias each other
        # (a small memory describing gigabytes) ends in a trap rather than in
        # minutes of copying. Lowering does not charge it.
        self.budget: int | None = instance.hostcall_budget
        memory = options.memory
        # A fresh view of the options' memory (trap if there is none): the
        # memory's own ``view``, so that taking a view is one call.
        self.memory_view: Callable[[], memoryview] = _no_memory if memory is None else memory.view

    def charge(self, units: int) -> None:
        """Count ``units`` against the budget and trap once it is spent.

        A list or string costs its byte size (its element count when larger:
        a list of empty records has no bytes but many values) plus one.
        """
        budget = self.budget
        if budget is not None:
            budget -= units
            self.budget = budget
            if budget < 0:
                limit = self.instance.hostcall_budget
                trap(
                    "host-call budget exhausted: the values copied by one call exceed "
                    f"{limit} units (limit hostcall-budget)"
                )

    def reallocate(self, old: int, old_size: int, align: int, new_size: int) -> int:
        """Call the guest's ``realloc`` (the instance may not leave meanwhile)."""
        realloc = self.options.realloc
        if realloc is None:
            trap("canonical options have no realloc")
        inst = self.instance
        may_leave = inst.may_leave
        inst.may_leave = False
        try:
            return realloc(old, old_size, align, new_size)
        finally:
            inst.may_leave = may_leave

    def allocate(self, align: int, size: int) -> int:
        """Allocate ``size`` bytes aligned to ``align`` through ``realloc``."""
        return self.reallocate(0, 0, align, size)
