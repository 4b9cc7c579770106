"""Handle tables, resource built-ins, own/borrow lifting and lowering, re-entrance."""

from __future__ import annotations

import pytest

from trio_wasi._abi import (
    BorrowScope,
    BorrowType,
    BytesMemory,
    CanonOptions,
    CoreValueIter,
    GuestResource,
    HandleTable,
    InstanceState,
    LiftLowerContext,
    OwnType,
    RecordType,
    ResourceType,
    drop_guest_resource,
    lift_borrow,
    lift_flat,
    lift_own,
    load,
    lower_borrow,
    lower_flat,
    lower_own,
    resource_drop,
    resource_new,
    resource_rep,
    store,
)
from trio_wasi._errors import Trap


def cx_for(inst: InstanceState, scope: BorrowScope | None = None) -> LiftLowerContext:
    return LiftLowerContext(CanonOptions(memory=BytesMemory()), inst, scope or BorrowScope())


def guest_resource(inst: InstanceState, name: str = "r") -> tuple[ResourceType, list[int]]:
    dropped: list[int] = []
    return ResourceType(name, instance=inst, dtor=dropped.append), dropped


# ---------------------------------------------------------------------------
# HandleTable


def test_table_reserves_zero_and_reuses_freed_indices() -> None:
    table = HandleTable()
    a, b, c = table.add("a"), table.add("b"), table.add("c")
    assert (a, b, c) == (1, 2, 3)
    assert table.remove(2) == "b"
    assert table.remove(1) == "a"
    assert table.add("d") == 1  # most recently freed first
    assert table.add("e") == 2
    assert len(table) == 3
    assert table.get(3) == "c"


@pytest.mark.parametrize("index", [0, 4, 2**32 - 1, -1])
def test_table_traps_on_unknown_indices(index: int) -> None:
    table = HandleTable()
    table.add("a")
    table.add("b")
    table.add("c")
    with pytest.raises(Trap, match=f"unknown handle index {index}"):
        table.get(index)
    with pytest.raises(Trap, match=f"unknown handle index {index}"):
        table.remove(index)


def test_table_traps_on_freed_index() -> None:
    table = HandleTable()
    i = table.add("a")
    table.remove(i)
    with pytest.raises(Trap, match="unknown handle index 1"):
        table.remove(i)


# ---------------------------------------------------------------------------
# resource.new / rep / drop


def test_new_rep_drop_runs_the_destructor() -> None:
    definer, user = InstanceState(name="definer"), InstanceState(name="user")
    rt, dropped = guest_resource(definer)
    i = resource_new(user, rt, 42)
    assert i == 1
    assert resource_rep(user, rt, i) == 42
    resource_drop(user, rt, i)
    assert dropped == [42]
    with pytest.raises(Trap, match="unknown handle index 1"):
        resource_rep(user, rt, i)


def test_wrong_resource_type_traps() -> None:
    inst = InstanceState()
    r1, _ = guest_resource(inst, "r1")
    r2, _ = guest_resource(inst, "r2")
    i = resource_new(inst, r1, 1)
    message = (
        "handle index 1 used with the wrong type, expected guest-defined resource "
        "but found a different guest-defined resource"
    )
    with pytest.raises(Trap, match=message):
        resource_drop(inst, r2, i)
    with pytest.raises(Trap, match="wrong type"):
        resource_rep(inst, r2, i)
    inst.table.add(object())  # a non-resource handle
    with pytest.raises(Trap, match="handle index 2 used with the wrong type"):
        resource_rep(inst, r1, 2)
    assert resource_rep(inst, r1, i) == 1  # the failed drop left the handle alone


def test_builtins_trap_when_the_instance_may_not_leave() -> None:
    inst = InstanceState()
    rt, _ = guest_resource(inst)
    i = resource_new(inst, rt, 1)
    inst.may_leave = False
    with pytest.raises(Trap, match="cannot leave component instance"):
        resource_new(inst, rt, 2)
    with pytest.raises(Trap, match="cannot leave component instance"):
        resource_drop(inst, rt, i)


def test_destructor_needs_an_enterable_instance() -> None:
    definer, user = InstanceState(), InstanceState()
    rt, dropped = guest_resource(definer)
    i = resource_new(user, rt, 7)
    definer.enter_from(None)  # the definer is on the stack
    with pytest.raises(Trap, match="cannot enter component instance"):
        resource_drop(user, rt, i)
    definer.leave_to(None)
    j = resource_new(definer, rt, 8)
    definer.enter_from(None)
    resource_drop(definer, rt, j)  # dropping one's own resource enters nothing
    assert dropped == [8]


def test_destructor_runs_inside_the_defining_instance() -> None:
    definer, user = InstanceState(), InstanceState()
    seen: list[bool] = []
    rt = ResourceType("r", instance=definer, dtor=lambda rep: seen.append(definer.may_enter))
    resource_drop(user, rt, resource_new(user, rt, 1))
    assert seen == [False]
    assert definer.may_enter


def test_nested_instances_share_their_ancestors() -> None:
    parent = InstanceState(name="parent")
    child = InstanceState(parent, name="child")
    sibling = InstanceState(parent, name="sibling")
    assert child.host_reps is parent.host_reps
    assert child.entering_set(None) == (child, parent)
    assert child.entering_set(sibling) == (child,)
    assert child.entering_set(parent) == (child,)
    parent.enter_from(None)
    assert not child.may_enter_from(None)
    assert child.may_enter_from(sibling)
    child.enter_from(sibling)
    assert not child.may_enter
    child.leave_to(sibling)
    assert child.may_enter and not parent.may_enter


# ---------------------------------------------------------------------------
# own and borrow at the spec level


def test_lift_own_moves_the_handle_out() -> None:
    inst = InstanceState()
    rt, _ = guest_resource(InstanceState())
    i = resource_new(inst, rt, 5)
    assert lift_own(cx_for(inst), i, OwnType(rt)) == 5
    assert len(inst.table) == 0
    with pytest.raises(Trap, match="unknown handle index 1"):
        lift_own(cx_for(inst), i, OwnType(rt))


def test_lending_blocks_drop_and_move_until_released() -> None:
    inst = InstanceState()
    rt, dropped = guest_resource(InstanceState())
    i = resource_new(inst, rt, 5)
    scope = BorrowScope()
    assert lift_borrow(cx_for(inst, scope), i, BorrowType(rt)) == 5
    with pytest.raises(Trap, match="cannot remove owned resource while borrowed"):
        resource_drop(inst, rt, i)
    with pytest.raises(Trap, match="cannot remove owned resource while borrowed"):
        lift_own(cx_for(inst), i, OwnType(rt))
    scope.release_lenders()
    resource_drop(inst, rt, i)
    assert dropped == [5]


def test_own_cannot_be_lifted_from_a_borrow() -> None:
    definer, user = InstanceState(), InstanceState()
    rt, _ = guest_resource(definer)
    scope = BorrowScope()
    i = lower_borrow(cx_for(user, scope), 9, BorrowType(rt))
    with pytest.raises(Trap, match="is a borrow"):
        lift_own(cx_for(user), i, OwnType(rt))


def test_borrows_must_be_dropped_before_the_call_ends() -> None:
    definer, callee = InstanceState(), InstanceState()
    rt, dropped = guest_resource(definer)
    scope = BorrowScope()
    i = lower_borrow(cx_for(callee, scope), 9, BorrowType(rt))
    assert resource_rep(callee, rt, i) == 9
    with pytest.raises(Trap, match="borrow handles still remain at the end of the call"):
        scope.end()
    resource_drop(callee, rt, i)  # dropping a borrow ends it, no destructor
    assert dropped == []
    scope.end()


def test_borrow_into_the_defining_instance_is_the_bare_rep() -> None:
    definer = InstanceState()
    rt, _ = guest_resource(definer)
    scope = BorrowScope()
    assert lower_borrow(cx_for(definer, scope), 9, BorrowType(rt)) == 9
    assert scope.num_borrows == 0
    assert len(definer.table) == 0


def test_lower_own_adds_an_owning_handle() -> None:
    inst = InstanceState()
    rt, _ = guest_resource(InstanceState())
    i = lower_own(cx_for(inst), 3, OwnType(rt))
    h = inst.table.get(i)
    assert (h.own, h.rep, h.resource) == (True, 3, rt)


# ---------------------------------------------------------------------------
# Host values


class File:
    """A host resource's Python class."""


def host_file_type() -> tuple[ResourceType, list[int]]:
    dropped: list[int] = []
    return ResourceType("file", dtor=dropped.append, host_class=File), dropped


def test_host_objects_cross_as_owned_handles() -> None:
    guest = InstanceState()
    rt, _ = host_file_type()
    f = File()
    i = lower_flat(cx_for(guest), f, OwnType(rt))[0]
    rep = resource_rep(guest, rt, int(i))
    assert guest.host_reps.get(rep) is f
    assert lift_flat(cx_for(guest), CoreValueIter([i]), OwnType(rt)) is f
    assert len(guest.host_reps) == 0
    assert len(guest.table) == 0


def test_guest_drop_of_a_host_object_calls_the_dtor_then_forgets_it() -> None:
    guest = InstanceState()
    seen: list[object] = []
    rt = ResourceType("file", host_class=File)
    rt.dtor = lambda rep: seen.append(guest.host_reps.get(rep))
    f = File()
    i = lower_flat(cx_for(guest), f, OwnType(rt))[0]
    resource_drop(guest, rt, int(i))
    assert seen == [f]
    assert len(guest.host_reps) == 0


def test_host_objects_lent_for_one_call() -> None:
    guest = InstanceState()
    rt, _ = host_file_type()
    scope = BorrowScope()
    f = File()
    i = int(lower_flat(cx_for(guest, scope), f, BorrowType(rt))[0])
    passed_on = BorrowScope()  # the guest passes its borrow on to the host
    assert lift_flat(cx_for(guest, passed_on), CoreValueIter([i]), BorrowType(rt)) is f
    passed_on.release_lenders()
    resource_drop(guest, rt, i)
    scope.end()
    assert len(guest.host_reps) == 0


def test_host_class_is_checked() -> None:
    rt, _ = host_file_type()
    with pytest.raises(TypeError, match="expected a File"):
        lower_flat(cx_for(InstanceState()), object(), OwnType(rt))


def test_guest_resources_reach_the_host_as_guest_resource() -> None:
    definer, a, b = InstanceState(), InstanceState(), InstanceState()
    rt, dropped = guest_resource(definer)
    i = resource_new(a, rt, 77)
    res = lift_flat(cx_for(a), CoreValueIter([i]), OwnType(rt))
    assert isinstance(res, GuestResource)
    assert (res.resource, res.rep, res.owned, res.live) == (rt, 77, True, True)
    j = int(lower_flat(cx_for(b), res, OwnType(rt))[0])
    assert resource_rep(b, rt, j) == 77
    assert not res.live
    with pytest.raises(ValueError, match="already moved or dropped"):
        lower_flat(cx_for(b), res, OwnType(rt))
    with pytest.raises(TypeError, match="GuestResource"):
        lower_flat(cx_for(b), object(), OwnType(rt))
    assert dropped == []


def test_host_drops_an_owned_guest_resource() -> None:
    definer, a = InstanceState(), InstanceState()
    rt, dropped = guest_resource(definer)
    res = lift_own(cx_for(a), resource_new(a, rt, 12), OwnType(rt))
    owned = GuestResource(rt, res, owned=True)
    drop_guest_resource(owned)
    assert dropped == [12]
    with pytest.raises(ValueError, match="already moved or dropped"):
        drop_guest_resource(owned)
    with pytest.raises(ValueError, match="is a borrow"):
        drop_guest_resource(GuestResource(rt, 1, owned=False))


def test_guest_borrows_reach_the_host_and_go_back() -> None:
    definer, a = InstanceState(), InstanceState()
    rt, _ = guest_resource(definer)
    i = resource_new(a, rt, 3)
    scope = BorrowScope()
    borrowed = lift_flat(cx_for(a, scope), CoreValueIter([i]), BorrowType(rt))
    assert isinstance(borrowed, GuestResource) and not borrowed.owned
    # Passing the borrow on into the defining instance hands over the rep.
    assert lower_flat(cx_for(definer, BorrowScope()), borrowed, BorrowType(rt)) == [3]
    scope.release_lenders()
    assert a.table.get(i).num_lends == 0


def test_handles_through_memory() -> None:
    definer, a = InstanceState(), InstanceState()
    rt, _ = guest_resource(definer)
    t = RecordType((("own", OwnType(rt)), ("file", OwnType(host_file_type()[0]))))
    cx = cx_for(a)
    file_type = t.fields[1][1]
    assert isinstance(file_type, OwnType)
    f = File()
    store(cx, {"own": GuestResource(rt, 5, owned=True), "file": f}, t, 0)
    got = load(cx, 0, t)
    assert got["file"] is f
    assert (got["own"].resource, got["own"].rep) == (rt, 5)
    assert len(a.table) == 0


# ---------------------------------------------------------------------------
# Which signatures need a borrow scope


def test_may_borrow_finds_a_borrow_at_any_depth() -> None:
    from trio_wasi._abi import _types as T
    from trio_wasi._abi._resources import may_borrow

    r = ResourceType("r")
    borrow = T.BorrowType(r)
    holding = [
        borrow,
        T.ListType(borrow),
        T.ListType(borrow, 3),
        T.OptionType(borrow),
        T.ResultType(None, borrow),
        T.ResultType(borrow),
        T.TupleType((T.U32Type(), borrow)),
        T.RecordType((("a", T.StringType()), ("b", T.OptionType(borrow)))),
        T.VariantType((("none", None), ("some", borrow))),
        T.MapType(T.StringType(), T.ListType(borrow)),
        T.StreamType(T.TupleType((borrow,))),
        T.FutureType(borrow),
    ]
    for t in holding:
        assert may_borrow((t,)), t
        assert may_borrow((T.U8Type(), t)), t
    free = [
        T.OwnType(r),
        T.StringType(),
        T.ListType(T.OwnType(r)),
        T.ResultType(T.OwnType(r), T.EnumType(("a", "b"))),
        T.VariantType((("none", None), ("some", T.U32Type()))),
        T.FlagsType(("x",)),
        T.StreamType(None),
        T.FutureType(T.ResultType()),
    ]
    assert not may_borrow(tuple(free))
    assert not may_borrow(())
