"""Handles inside values: own, borrow, stream, future and error-context, against the specification.

Handles are i32 indices into the instance's table. Storing a value with
handles adds entries to the table in the order the specification does, so the
indices (and so the bytes) agree; loading takes them out again (own, stream,
future) or leaves them (borrow, error-context) as the specification does.
"""

from __future__ import annotations

import itertools
from typing import Any

import _trio_wasi_oracle_adapter as A
from hypothesis import event, given, reject, settings
from hypothesis import strategies as st

from trio_wasi._abi import (
    ERROR_CONTEXT,
    STRING,
    U8,
    BorrowType,
    CoreValueIter,
    ErrorContext,
    ErrorContextType,
    FutureType,
    GuestResource,
    InstanceState,
    ListType,
    OwnType,
    ResourceType,
    SharedFuture,
    SharedStream,
    StreamType,
    ValueType,
    alignment,
    elem_size,
    lift_flat_values,
    load,
    lower_flat_values,
    store,
)
from trio_wasi._abi._resources import may_borrow

S = A.require_spec()

# One guest resource type, defined by an instance other than the one under test
# (so a borrow is a new handle, not the bare representation).
RT = ResourceType("r", instance=InstanceState(name="definer"))
RESOURCES = A.Resources()
RESOURCES.pair(RT, S.ComponentInstance(S.Store()))

HANDLE_TYPES: list[ValueType] = [
    OwnType(RT),
    BorrowType(RT),
    StreamType(U8),
    StreamType(None),
    StreamType(STRING),
    FutureType(None),
    FutureType(STRING),
    ERROR_CONTEXT,
]
TYPES = A.value_types(max_leaves=5, extra_leaves=st.sampled_from(HANDLE_TYPES))


class Pairs:
    """Makes the values of handle types on both sides, paired."""

    def __init__(self) -> None:
        self.handles = A.Handles()
        self.reps = itertools.count(100)

    def strategy(self, t: ValueType) -> st.SearchStrategy[Any]:
        return st.builds(lambda: self.make(t))

    def make(self, t: ValueType) -> Any:
        if isinstance(t, OwnType | BorrowType):
            return GuestResource(RT, next(self.reps), owned=isinstance(t, OwnType))
        if isinstance(t, StreamType):
            ours: Any = SharedStream(t.element)
            spec: Any = S.SharedStreamImpl(A.spec_type(t.element))
        elif isinstance(t, FutureType):
            ours = SharedFuture(t.element)
            spec = S.SharedFutureImpl(A.spec_type(t.element))
        else:
            assert isinstance(t, ErrorContextType)
            ours = ErrorContext("oops")
            spec = S.ErrorContext(("oops", "utf8", 4))
        self.handles.pair(ours, spec)
        return ours


def table_shape(ours: A.Ours, spec: A.Spec) -> tuple[list[Any], list[Any]]:
    """The kinds of entry at each index of both tables."""

    def kind(e: Any) -> Any:
        name = type(e).__name__
        if name == "ResourceHandle":
            return ("resource", e.rep, e.own)
        return name.replace("Impl", "")

    ours_entries = [None if e is None else kind(e) for e in ours.inst.table._array]
    spec_entries = [None if e is None else kind(e) for e in spec.inst.handles.array]
    return ours_entries, spec_entries


@settings(deadline=None, max_examples=200)
@given(st.data(), TYPES)
def test_store_then_load_with_handles(data: st.DataObject, t: ValueType) -> None:
    pairs = Pairs()
    v = data.draw(A.values_of(t, pairs.strategy))
    T = A.spec_type(t, RESOURCES)
    ours, spec = A.Ours(), A.Spec()
    ptr = ours.alloc(0, 0, alignment(t), elem_size(t))
    assert spec.alloc(0, 0, alignment(t), elem_size(t)) == ptr
    expect = A.norm_ours(t, v, pairs.handles)

    task = S.Task(None, None, None, None, None)
    store(ours.cx(), v, t, ptr)
    S.store(spec.cx(task), A.spec_value(t, v, "utf8", pairs.handles), T, ptr)
    assert ours.bytes() == spec.bytes()
    o_table, s_table = table_shape(ours, spec)
    assert o_table == s_table

    got_o = A.outcome(lambda: load(ours.cx(), ptr, t))
    got_s = A.outcome(lambda: S.load(spec.cx(S.Subtask()), ptr, T))
    # A value holding the same owned handle twice cannot come about; every
    # lifted handle is distinct, so loading succeeds on both sides.
    assert got_o[0] == got_s[0] == "ok"
    assert A.norm_ours(t, got_o[1], pairs.handles) == expect
    assert A.norm_spec(t, got_s[1], pairs.handles) == expect
    o_table, s_table = table_shape(ours, spec)
    assert o_table == s_table


@settings(deadline=None, max_examples=150)
@given(st.data(), st.lists(TYPES, max_size=5), st.sampled_from([1, 4, 16]))
def test_flat_values_with_handles(data: st.DataObject, ts: list[ValueType], max_flat: int) -> None:
    pairs = Pairs()
    vs = [data.draw(A.values_of(t, pairs.strategy)) for t in ts]
    TS = [A.spec_type(t, RESOURCES) for t in ts]
    ours, spec = A.Ours(), A.Spec()
    expect = [A.norm_ours(t, v, pairs.handles) for t, v in zip(ts, vs, strict=True)]

    flat_o = lower_flat_values(ours.cx(), max_flat, vs, ts)
    flat_s = S.lower_flat_values(
        spec.cx(S.Task(None, None, None, None, None)),
        max_flat,
        [A.spec_value(t, v, "utf8", pairs.handles) for t, v in zip(ts, vs, strict=True)],
        TS,
    )
    types = [ct for t in TS for ct in S.flatten_type(t, spec.opts)]
    if len(types) > max_flat:
        types = ["i32"]
    assert A.norm_core(types, flat_o) == A.norm_core(types, flat_s)
    assert ours.bytes() == spec.bytes()
    assert table_shape(ours, spec)[0] == table_shape(ours, spec)[1]

    got_o = lift_flat_values(ours.cx(), max_flat, CoreValueIter(flat_o), ts)
    got_s = S.lift_flat_values(spec.cx(S.Subtask()), max_flat, S.CoreValueIter(flat_s), TS)
    assert [A.norm_ours(t, v, pairs.handles) for t, v in zip(ts, got_o, strict=True)] == expect
    assert [A.norm_spec(t, v, pairs.handles) for t, v in zip(ts, got_s, strict=True)] == expect
    assert table_shape(ours, spec)[0] == table_shape(ours, spec)[1]


def _with_async_wrappers(t: ValueType) -> st.SearchStrategy[ValueType]:
    # Borrows at any depth, stream and future elements included.
    return st.sampled_from([t, StreamType(t), FutureType(t), ListType(StreamType(t))])


BORROWING_TYPES = A.value_types(
    max_leaves=6, extra_leaves=st.sampled_from([OwnType(RT), BorrowType(RT), StreamType(U8)])
).flatmap(_with_async_wrappers)


@settings(deadline=None, max_examples=300)
@given(st.lists(BORROWING_TYPES, max_size=3))
def test_may_borrow_agrees_with_contains_borrow(ts: list[ValueType]) -> None:
    """A plain host call skips its borrow scope exactly when no type can hold a borrow."""
    spec_ts = [A.spec_type(t, RESOURCES) for t in ts]
    try:
        expected = any(S.contains_borrow(t) for t in spec_ts)
    except AssertionError:
        # The specification's ``contains`` has no case for flags, maps or
        # error contexts (none can hold a borrow): those draws say nothing.
        reject()
    event(f"holds a borrow: {expected}")
    assert may_borrow(tuple(ts)) == expected
