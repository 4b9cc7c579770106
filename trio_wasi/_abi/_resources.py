"""Resource handles: the built-ins, lifting and lowering, and their host values.

Rules (CanonicalABI.md "Resource State", "canon resource.new/drop/rep" and the
``lift_own``/``lift_borrow``/``lower_own``/``lower_borrow`` definitions):

* a handle is an index into the holding instance's table; it names a resource
  type (by identity), a representation (an i32 chosen by the defining
  instance) and whether it owns or borrows;
* lifting an ``own`` moves the handle out of the table: it must be an owning
  handle of the expected type that is not lent out right now;
* lifting a ``borrow`` lends the handle for the duration of the callee's call:
  its lend count rises until the call's :class:`BorrowScope` releases it, and
  an owning handle that is lent cannot be dropped or moved;
* lowering a ``borrow`` into the resource's own defining instance passes the
  bare representation; into any other instance it creates a borrowed handle,
  counted in the call's scope, which must be dropped before the call returns
  (``borrow handles still remain at the end of the call``);
* dropping an owning handle runs the type's destructor in the defining
  instance, which must be enterable from the dropping one.

Host values. The host sees resources this way:

* a resource the **host** defines (``ResourceType.instance is None``) is any
  Python object, an instance of ``ResourceType.host_class`` when that is set.
  Its i32 representation is a key in the store's :class:`HostRepTable`:
  lowering an ``own`` puts the object there, lifting an ``own`` takes it out,
  a borrow only looks it up (a borrow lowered from the host gets a key for the
  length of the call). A guest dropping its owning handle calls the type's
  ``dtor(rep)`` and then forgets the object;
* a resource a **guest** defines reaches the host as a :class:`GuestResource`
  (type, representation, owning or not). Lowering it back moves ownership
  (each owning value can be lowered once); the host ends an owned one with
  :func:`drop_guest_resource`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, final

from ._handles import InstanceState, ResourceHandle
from ._options import LiftLowerContext
from ._trap import trap, trap_if
from ._types import (
    BorrowType,
    FutureType,
    ListType,
    MapType,
    OptionType,
    OwnType,
    RecordType,
    ResourceType,
    ResultType,
    StreamType,
    TupleType,
    ValueType,
    VariantType,
    type_parts,
)
from ._values import GuestResource

__all__ = [
    "BorrowScope",
    "CallScope",
    "GuestResource",
    "HostRepTable",
    "drop_guest_resource",
    "lift_borrow",
    "lift_own",
    "lower_borrow",
    "lower_own",
    "may_borrow",
    "resource_drop",
    "resource_new",
    "resource_rep",
]


# ---------------------------------------------------------------------------
# Call-scoped borrow accounting (the resource parts of the spec's Task/Subtask)


class BorrowScope:
    """The borrow bookkeeping of one call.

    As the callee's task (a lift) it counts the borrowed handles lowered into
    the callee, which must all be dropped before it returns. As the caller's
    subtask (a lower) it holds the handles lent to the callee, released when
    the call's result is delivered.
    """

    __slots__ = ("lenders", "lent_host_reps", "num_borrows")

    def __init__(self) -> None:
        self.num_borrows = 0
        # Made on first use: most calls lend nothing, and a waiting call's
        # objects are what the garbage collector scans.
        self.lenders: list[ResourceHandle] | None = None
        self.lent_host_reps: list[tuple[HostRepTable, int]] | None = None

    def add_lender(self, handle: ResourceHandle) -> None:
        """Lend ``handle`` to the callee until :meth:`release_lenders`."""
        handle.num_lends += 1
        if self.lenders is None:
            self.lenders = []
        self.lenders.append(handle)

    def release_lenders(self) -> None:
        """End every lend of this call (the spec's ``Subtask.deliver_resolve``)."""
        lenders = self.lenders
        if lenders:
            for handle in lenders:
                handle.num_lends -= 1
            lenders.clear()

    def check_borrows_dropped(self) -> None:
        """Trap if the callee still holds a borrowed handle (``Task.return_``)."""
        if self.num_borrows > 0:
            trap("borrow handles still remain at the end of the call")

    def lend_host_object(self, reps: HostRepTable, obj: object) -> int:
        """A representation for a host object borrowed for this call only."""
        rep = reps.add(obj)
        if self.lent_host_reps is None:
            self.lent_host_reps = []
        self.lent_host_reps.append((reps, rep))
        return rep

    def release_host_objects(self) -> None:
        """Forget the host objects lent for this call."""
        host_reps = self.lent_host_reps
        if host_reps:
            for reps, rep in host_reps:
                reps.discard(rep)
            host_reps.clear()

    def release(self) -> None:
        """Release the call's lends and host objects (most calls lend nothing)."""
        if self.lenders:
            self.release_lenders()
        if self.lent_host_reps:
            self.release_host_objects()

    def end(self) -> None:
        """End the call: trap on undropped borrows, release lends and host objects."""
        self.check_borrows_dropped()
        self.release()


CallScope = BorrowScope
"""The name the call paths use for a call's :class:`BorrowScope`."""


def may_borrow(ts: tuple[ValueType, ...]) -> bool:
    """Whether lifting or lowering values of types ``ts`` may use the call's BorrowScope.

    Only ``borrow`` handles do, at any depth. Stream and future element types
    count too (their values travel later, under other scopes), so a False
    answer is certain: a call of such a signature needs no scope.
    """
    return any(_may_borrow(t) for t in ts)


def _may_borrow(t: object) -> bool:
    if isinstance(t, BorrowType):
        return True
    if t is None or isinstance(t, OwnType) or not isinstance(t, _COMPOUND):
        return False
    return any(_may_borrow(p) for p in type_parts(t))


# Value types made of other value types (an own handle cannot hold a borrow).
_COMPOUND = (
    ListType,
    MapType,
    OptionType,
    RecordType,
    ResultType,
    StreamType,
    FutureType,
    TupleType,
    VariantType,
)


# ---------------------------------------------------------------------------
# Host resources


@final
class HostRepTable:
    """The store-wide map from i32 representations to host resource objects.

    ``on_drop`` is told of each object whose last owning handle a guest
    dropped, once the object has left the table.
    """

    __slots__ = ("_free", "_objects", "on_drop")

    def __init__(self) -> None:
        self._objects: list[object] = [None]
        self._free: list[int] = []
        self.on_drop: Callable[[object], None] | None = None

    def __len__(self) -> int:
        return len(self._objects) - 1 - len(self._free)

    def add(self, obj: object) -> int:
        """Store ``obj`` and return its representation (never 0)."""
        if self._free:
            rep = self._free.pop()
            self._objects[rep] = obj
            return rep
        self._objects.append(obj)
        return len(self._objects) - 1

    def get(self, rep: int) -> Any:
        """The object stored under ``rep``."""
        objects = self._objects
        if rep <= 0 or rep >= len(objects) or objects[rep] is None:
            trap(f"unknown host resource representation {rep}")
        return objects[rep]

    def remove(self, rep: int) -> Any:
        """Take the object stored under ``rep`` out of the table."""
        objects = self._objects
        if rep <= 0 or rep >= len(objects) or objects[rep] is None:
            trap(f"unknown host resource representation {rep}")  # (as get)
        obj = objects[rep]
        objects[rep] = None
        self._free.append(rep)
        return obj

    def discard(self, rep: int) -> None:
        """Forget ``rep`` if it is present."""
        if 0 < rep < len(self._objects) and self._objects[rep] is not None:
            self.remove(rep)

    def drop(self, rep: int) -> None:
        """A guest dropped the owning handle of ``rep``: forget it and tell ``on_drop``."""
        if 0 < rep < len(self._objects) and self._objects[rep] is not None:
            obj = self.remove(rep)
            if self.on_drop is not None:
                self.on_drop(obj)

    def take_all(self) -> list[object]:
        """Empty the table, returning the objects it held (when the store closes)."""
        objects = [o for o in self._objects if o is not None]
        self._objects = [None]
        self._free = []
        return objects


# ---------------------------------------------------------------------------
# Guest resources seen by the host


def drop_guest_resource(res: GuestResource, caller: InstanceState | None = None) -> None:
    """Drop an owned guest resource held by the host, running its destructor."""
    rep = res.take()
    _run_dtor(res.resource, rep, caller)


def _run_dtor(rt: ResourceType, rep: int, caller: InstanceState | None) -> None:
    callee = rt.instance
    if callee is None:
        if rt.dtor is not None:
            rt.dtor(rep)
        return
    # The destructor is a synchronous call into the defining instance (spec:
    # canon_resource_drop lifts the dtor), subject to the re-entrance rule.
    trap_if(not callee.may_enter_from(caller), "cannot enter component instance")
    if rt.dtor is None:
        return
    callee.enter_from(caller)
    try:
        rt.dtor(rep)
    finally:
        callee.leave_to(caller)


# ---------------------------------------------------------------------------
# Built-ins (CanonicalABI.md "canon resource.new", "resource.drop", "resource.rep")


def _kind(rt: ResourceType) -> str:
    return "host-defined" if rt.instance is None else "guest-defined"


def _resource_handle(inst: InstanceState, rt: ResourceType, i: int) -> ResourceHandle:
    h = inst.table.get(i)
    if type(h) is not ResourceHandle:
        trap(f"handle index {i} used with the wrong type, expected {_kind(rt)} resource")
    if h.resource is not rt:
        other = h.resource
        found = f"a different {_kind(other)}" if _kind(other) == _kind(rt) else _kind(other)
        trap(
            f"handle index {i} used with the wrong type, "
            f"expected {_kind(rt)} resource but found {found} resource"
        )
    return h


def resource_new(inst: InstanceState, rt: ResourceType, rep: int) -> int:
    """``canon resource.new``: a new owning handle for ``rep``."""
    trap_if(not inst.may_leave, "cannot leave component instance")
    return inst.table.add(ResourceHandle(rt, rep, own=True))


def resource_rep(inst: InstanceState, rt: ResourceType, i: int) -> int:
    """``canon resource.rep``: the representation behind handle ``i``."""
    return _resource_handle(inst, rt, i).rep


def resource_drop(inst: InstanceState, rt: ResourceType, i: int) -> None:
    """``canon resource.drop``: drop handle ``i``.

    Dropping an owning handle runs the destructor (for a host resource, then
    forgets its object); dropping a borrow ends it in its call's scope.
    """
    if not inst.may_leave:
        trap("cannot leave component instance")
    h = inst.table.get(i)
    if type(h) is not ResourceHandle or h.resource is not rt:
        h = _resource_handle(inst, rt, i)  # traps, saying why
    if h.num_lends != 0:
        trap("cannot remove owned resource while borrowed")
    inst.table.remove(i)
    if h.own:
        _run_dtor(rt, h.rep, inst)
        if rt.instance is None:
            inst.host_reps.drop(h.rep)
    else:
        assert h.borrow_scope is not None
        h.borrow_scope.num_borrows -= 1


# ---------------------------------------------------------------------------
# Lifting and lowering handles (CanonicalABI.md "Loading", "Storing")


def lift_own(cx: LiftLowerContext, i: int, t: OwnType) -> int:
    """Move owning handle ``i`` out of the table; returns its representation."""
    inst = cx.instance
    h = inst.table.get(i)
    if type(h) is not ResourceHandle or h.resource is not t.resource:
        h = _resource_handle(inst, t.resource, i)  # traps, saying why
    if h.num_lends != 0:
        trap("cannot remove owned resource while borrowed")
    if not h.own:
        trap(f"handle index {i} is a borrow, expected an owned resource")
    inst.table.remove(i)
    return h.rep


def lift_borrow(cx: LiftLowerContext, i: int, t: BorrowType) -> int:
    """Lend handle ``i`` to the call of ``cx``; returns its representation."""
    h = cx.instance.table.get(i)
    if type(h) is not ResourceHandle or h.resource is not t.resource:
        h = _resource_handle(cx.instance, t.resource, i)  # traps, saying why
    scope = cx.borrow_scope
    assert scope is not None, "lifting a borrow needs the call's BorrowScope"
    scope.add_lender(h)
    return h.rep


def lower_own(cx: LiftLowerContext, rep: int, t: OwnType) -> int:
    """A new owning handle for ``rep`` in the context's instance."""
    return cx.instance.table.add(ResourceHandle(t.resource, rep, own=True))


def lower_borrow(cx: LiftLowerContext, rep: int, t: BorrowType) -> int:
    """A borrowed handle for ``rep`` (the bare rep inside the defining instance)."""
    if cx.instance is t.resource.instance:
        return rep
    scope = cx.borrow_scope
    assert scope is not None, "lowering a borrow needs the call's BorrowScope"
    scope.num_borrows += 1
    return cx.instance.table.add(ResourceHandle(t.resource, rep, own=False, borrow_scope=scope))


# ---------------------------------------------------------------------------
# Host values of handles


def own_to_host(cx: LiftLowerContext, rep: int, t: OwnType) -> Any:
    """The host value of a lifted ``own<R>`` with representation ``rep``."""
    rt = t.resource
    if rt.instance is None:
        return cx.instance.host_reps.remove(rep)
    return GuestResource(rt, rep, owned=True)


def borrow_to_host(cx: LiftLowerContext, rep: int, t: BorrowType) -> Any:
    """The host value of a lifted ``borrow<R>`` with representation ``rep``."""
    rt = t.resource
    if rt.instance is None:
        return cx.instance.host_reps.get(rep)
    return GuestResource(rt, rep, owned=False)


def _check_host_value(v: object, rt: ResourceType) -> None:
    cls = rt.host_class
    if cls is not None and not isinstance(v, cls):
        raise TypeError(f"expected a {cls.__name__} for resource {rt.name!r}, got {v!r}")
    if isinstance(v, GuestResource):
        raise TypeError(f"expected a host object for resource {rt.name!r}, got {v!r}")


def _guest_value(v: object, rt: ResourceType) -> GuestResource:
    if not isinstance(v, GuestResource) or v.resource is not rt:
        raise TypeError(f"expected a GuestResource of {rt!r}, got {v!r}")
    return v


def host_to_own(cx: LiftLowerContext, v: object, t: OwnType) -> int:
    """The representation to lower for host value ``v`` of ``own<R>``."""
    rt = t.resource
    if rt.instance is None:
        cls = rt.host_class
        if (cls is not None and not isinstance(v, cls)) or isinstance(v, GuestResource):
            _check_host_value(v, rt)  # raises, saying why
        return cx.instance.host_reps.add(v)
    return _guest_value(v, rt).take()


def host_to_borrow(cx: LiftLowerContext, v: object, t: BorrowType) -> int:
    """The representation to lower for host value ``v`` of ``borrow<R>``."""
    rt = t.resource
    if rt.instance is None:
        _check_host_value(v, rt)
        scope = cx.borrow_scope
        assert scope is not None, "lowering a borrow needs the call's BorrowScope"
        return scope.lend_host_object(cx.instance.host_reps, v)
    res = _guest_value(v, rt)
    if not res.live:
        raise ValueError(f"{res!r} was already moved or dropped")
    return res.rep
