"""Handle tables and per-instance state (CanonicalABI.md "Component Instances", "Table State").

Rules:

* every component instance has one handle table shared by resources,
  waitables, waitable sets, subtasks and error contexts; index 0 is never
  valid, freed indices are reused most-recent first, and a table never holds
  more than ``MAX_LENGTH`` entries;
* a host may bound a table further (``limit``, the ``max-handles`` setting):
  adding past it traps with ``handle table is full``, naming the limit;
* any use of an index that is out of range or free traps with
  ``unknown handle index N``;
* components nest: an instance may be entered only if it, and each ancestor
  the caller is not itself inside, is not already on the stack
  (``may_enter``). Entering clears the flag on that whole set, leaving restores
  it, so a component can never be re-entered through an import call chain;
* ``may_leave`` is cleared while the instance runs code that must not call out
  (realloc, post-return, destructors); canon built-ins trap on it with
  ``cannot leave component instance``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, final

from ._trap import trap

if TYPE_CHECKING:
    from ._resources import BorrowScope, HostRepTable
    from ._types import ResourceType

__all__ = ["HandleTable", "InstanceState", "ResourceHandle"]


@final
class HandleTable:
    """An instance's table of handles (the spec's ``Table``)."""

    __slots__ = ("_array", "_free", "limit")

    MAX_LENGTH = 2**28 - 1

    def __init__(self, limit: int | None = None) -> None:
        self._array: list[Any] = [None]
        self._free: list[int] = []
        # The most indices the table may hand out (None: only MAX_LENGTH).
        self.limit = limit

    def __len__(self) -> int:
        """The number of live handles."""
        return len(self._array) - 1 - len(self._free)

    def get(self, i: int) -> Any:
        """The element at ``i``; traps when ``i`` is not a live index."""
        array = self._array
        if i < 0 or i >= len(array) or array[i] is None:
            trap(f"unknown handle index {i}")
        return array[i]

    def add(self, e: object) -> int:
        """Store ``e`` and return its index."""
        assert e is not None
        if self._free:
            i = self._free.pop()
            self._array[i] = e
            return i
        i = len(self._array)
        if i > self.MAX_LENGTH:
            trap("handle table is full")
        limit = self.limit
        if limit is not None and i > limit:
            trap(f"handle table is full: the instance holds {limit} handles (limit max-handles)")
        self._array.append(e)
        return i

    def remove(self, i: int) -> Any:
        """Remove and return the element at ``i``; traps when ``i`` is not live."""
        array = self._array
        if i < 0 or i >= len(array) or array[i] is None:
            trap(f"unknown handle index {i}")
        e = array[i]
        array[i] = None
        self._free.append(i)
        return e


@final
class ResourceHandle:
    """One entry of a handle table that refers to a resource (CanonicalABI.md "Resource State").

    ``borrow_scope`` is set on borrowed handles: the call whose end the borrow
    must not outlive. ``num_lends`` counts calls currently borrowing through it.
    """

    __slots__ = ("borrow_scope", "num_lends", "own", "rep", "resource")

    def __init__(
        self,
        resource: ResourceType,
        rep: int,
        own: bool,
        borrow_scope: BorrowScope | None = None,
        num_lends: int = 0,
    ) -> None:
        self.resource = resource
        self.rep = rep
        self.own = own
        self.borrow_scope = borrow_scope
        self.num_lends = num_lends

    def __repr__(self) -> str:
        kind = "own" if self.own else "borrow"
        return f"<ResourceHandle {kind} {self.resource.name!r} rep={self.rep}>"


@final
class InstanceState:
    """The runtime state of one component instance (CanonicalABI.md "Component Instances").

    ``host_reps`` is the store-wide table of host resource objects; a child
    instance shares its parent's. The asynchronous runtime also uses
    ``backpressure``, ``num_waiting_to_enter`` and ``exclusive``.
    """

    __slots__ = (
        "__weakref__",
        "_chain",
        "backpressure",
        "exclusive",
        "host_reps",
        "hostcall_budget",
        "may_enter",
        "may_leave",
        "name",
        "num_waiting_to_enter",
        "parent",
        "poisoned",
        "table",
    )

    def __init__(
        self,
        parent: InstanceState | None = None,
        *,
        host_reps: HostRepTable | None = None,
        name: str = "",
        max_handles: int | None = None,
        hostcall_budget: int | None = None,
    ) -> None:
        from ._resources import HostRepTable

        self.parent = parent
        # This instance and its ancestors, innermost first: the parent never
        # changes, and every call from the host enters exactly this chain.
        self._chain: tuple[InstanceState, ...] = (self,) + (
            parent._chain if parent is not None else ()
        )
        self.name = name
        # A nested instance inherits its parent's bounds (see trio_wasi.Limits).
        if parent is not None:
            max_handles = max_handles if max_handles is not None else parent.table.limit
            if hostcall_budget is None:
                hostcall_budget = parent.hostcall_budget
        self.table: HandleTable = HandleTable(max_handles)
        # Units one lift or lower may copy (None: unbounded); see LiftLowerContext.charge.
        self.hostcall_budget: int | None = hostcall_budget
        self.may_enter = True
        self.may_leave = True
        self.poisoned = False
        self.backpressure = 0
        self.num_waiting_to_enter = 0
        self.exclusive: object | None = None
        if host_reps is None:
            host_reps = parent.host_reps if parent is not None else HostRepTable()
        self.host_reps: HostRepTable = host_reps

    def __repr__(self) -> str:
        return f"<InstanceState {self.name!r} at {id(self):#x}>"

    def self_and_ancestors(self) -> tuple[InstanceState, ...]:
        """This instance and every enclosing one, innermost first."""
        return self._chain

    def entering_set(self, caller: InstanceState | None) -> tuple[InstanceState, ...]:
        """The instances a call from ``caller`` (None: the host) enters."""
        chain = self._chain
        if caller is None:
            return chain
        outer = caller._chain
        return tuple(inst for inst in chain if inst not in outer)

    def may_enter_from(self, caller: InstanceState | None) -> bool:
        """Whether a call from ``caller`` may enter this instance now."""
        if caller is None and self.parent is None:
            return self.may_enter  # the common case: the host calls a top-level instance
        return all(inst.may_enter for inst in self.entering_set(caller))

    def enter_from(self, caller: InstanceState | None) -> None:
        """Mark the instances a call from ``caller`` enters as entered."""
        for inst in self._chain if caller is None else self.entering_set(caller):
            assert inst.may_enter
            inst.may_enter = False

    def leave_to(self, caller: InstanceState | None) -> None:
        """Undo :meth:`enter_from` when the call returns."""
        for inst in self._chain if caller is None else self.entering_set(caller):
            assert not inst.may_enter
            inst.may_enter = True
