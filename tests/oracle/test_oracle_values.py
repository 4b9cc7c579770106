"""Values through memory and through core values: our ``_abi`` against the specification.

Each test runs the same operation on both sides, each with its own memory
and an identical bump allocator, and compares byte for byte: the memory, the
realloc calls, the core values, and the lifted values in a normal form
(see ``_adapter``).
"""

from __future__ import annotations

from typing import Any

import _trio_wasi_oracle_adapter as A
from hypothesis import event, given, settings
from hypothesis import strategies as st

from trio_wasi._abi import (
    MAX_FLAT_ASYNC_PARAMS,
    MAX_FLAT_PARAMS,
    MAX_FLAT_RESULTS,
    CoreValueIter,
    TupleType,
    ValueType,
    alignment,
    elem_size,
    flatten_type,
    lift_flat_values,
    load,
    lower_flat_values,
    store,
)
from trio_wasi._abi._layout import flat_types_of

S = A.require_spec()

ENCODING = st.sampled_from(A.ENCODINGS)
MAX_FLATS = st.sampled_from([MAX_FLAT_RESULTS, MAX_FLAT_ASYNC_PARAMS, MAX_FLAT_PARAMS])


def both(encoding: str) -> tuple[A.Ours, A.Spec]:
    return A.Ours(encoding), A.Spec(encoding)


def assert_same_memory(ours: A.Ours, spec: A.Spec) -> None:
    assert ours.alloc.calls == spec.alloc.calls
    assert ours.bytes() == spec.bytes()


@settings(deadline=None, max_examples=200)
@given(A.typed_values(), ENCODING, st.sampled_from([None, *A.ENCODINGS]))
def test_store_then_load(tv: tuple[ValueType, Any], encoding: str, source: str | None) -> None:
    """Store (a host value, or one lifted from a component using ``source``), then load."""
    t, v = tv
    T = A.spec_type(t)
    ours, spec = both(encoding)
    ptr = ours.alloc(0, 0, alignment(t), elem_size(t))
    assert spec.alloc(0, 0, S.alignment(T, "i32"), S.elem_size(T, "i32")) == ptr

    # A host string is stored as the specification stores one from a component
    # with the destination's own encoding.
    store(ours.cx(source_encoding=source), v, t, ptr)
    S.store(spec.cx(), A.spec_value(t, v, source or encoding), T, ptr)
    assert_same_memory(ours, spec)

    got_ours = load(ours.cx(), ptr, t)
    got_spec = S.load(spec.cx(), ptr, T)
    assert A.norm_ours(t, got_ours) == A.norm_spec(t, got_spec) == A.norm_ours(t, v)


RANDOM_MEMORY = 512


@settings(deadline=None, max_examples=300)
@given(A.value_types(max_leaves=5), A.memory_bytes(RANDOM_MEMORY), ENCODING)
def test_load_random_bytes(t: ValueType, data: bytes, encoding: str) -> None:
    """Loading arbitrary bytes: the same value, or a trap on both sides."""
    T = A.spec_type(t)
    ours, spec = both(encoding)
    ours.memory.view()[:RANDOM_MEMORY] = data
    spec.memory.bytes[:RANDOM_MEMORY] = data
    # Small lengths and pointers are likely in the random bytes, so lists and
    # strings are sometimes in bounds; the value itself sits at 0.
    kind_o, got_o = A.outcome(lambda: load(ours.cx(), 0, t))
    kind_s, got_s = A.outcome(lambda: S.load(spec.cx(), 0, T))
    assert kind_o == kind_s, (kind_o, got_o, kind_s, got_s)
    event(f"outcome: {kind_o}")
    if kind_o == "ok":
        assert A.norm_ours(t, got_o) == A.norm_spec(t, got_s)


@st.composite
def typed_value_lists(draw: Any) -> tuple[list[ValueType], list[Any]]:
    ts = draw(st.lists(A.value_types(max_leaves=4), max_size=6))
    vs = [draw(A.values_of(t)) for t in ts]
    return ts, vs


def core_types(ts: list[ValueType], max_flat: int) -> list[str]:
    flat = list(flat_types_of(tuple(ts)))
    return ["i32"] if len(flat) > max_flat else flat


@settings(deadline=None, max_examples=150)
@given(typed_value_lists(), MAX_FLATS, ENCODING, st.booleans())
def test_lower_then_lift_flat_values(
    tvs: tuple[list[ValueType], list[Any]], max_flat: int, encoding: str, out_param: bool
) -> None:
    ts, vs = tvs
    TS = [A.spec_type(t) for t in ts]
    ours, spec = both(encoding)
    spilled = len(flat_types_of(tuple(ts))) > max_flat
    out_o = out_s = None
    if out_param and spilled:
        tuple_t = TupleType(tuple(ts))
        ptr = ours.alloc(0, 0, alignment(tuple_t), elem_size(tuple_t))
        assert spec.alloc(0, 0, alignment(tuple_t), elem_size(tuple_t)) == ptr
        out_o, out_s = CoreValueIter([ptr]), S.CoreValueIter([ptr])

    flat_o = lower_flat_values(ours.cx(), max_flat, vs, ts, out_o)
    flat_s = S.lower_flat_values(
        spec.cx(S.Task(None, None, None, None, None)),
        max_flat,
        [A.spec_value(t, v, encoding) for t, v in zip(ts, vs, strict=True)],
        TS,
        out_s,
    )
    cts = [] if out_o is not None else core_types(ts, max_flat)
    assert A.norm_core(cts, flat_o) == A.norm_core(cts, flat_s)
    assert_same_memory(ours, spec)

    if out_o is not None:
        flat_o = flat_s = [out_o.values[0]]
    got_o = lift_flat_values(ours.cx(), max_flat, CoreValueIter(flat_o), ts)
    got_s = S.lift_flat_values(spec.cx(), max_flat, S.CoreValueIter(flat_s), TS)
    expect = [A.norm_ours(t, v) for t, v in zip(ts, vs, strict=True)]
    assert [A.norm_ours(t, v) for t, v in zip(ts, got_o, strict=True)] == expect
    assert [A.norm_spec(t, v) for t, v in zip(ts, got_s, strict=True)] == expect


@st.composite
def types_and_core_values(draw: Any) -> tuple[list[ValueType], list[Any]]:
    ts = draw(st.lists(A.value_types(max_leaves=4), min_size=1, max_size=3))
    flat = [ct for t in ts for ct in flatten_type(t)]
    return ts, draw(A.core_values_of(flat))


@settings(deadline=None, max_examples=150)
@given(types_and_core_values(), A.memory_bytes(RANDOM_MEMORY), ENCODING)
def test_lift_arbitrary_core_values(
    tcv: tuple[list[ValueType], list[Any]], data: bytes, encoding: str
) -> None:
    """Lifting arbitrary core values: reinterpreted variant slots, NaNs, wide ints."""
    ts, flat = tcv
    TS = [A.spec_type(t) for t in ts]
    ours, spec = both(encoding)
    ours.memory.view()[:RANDOM_MEMORY] = data
    spec.memory.bytes[:RANDOM_MEMORY] = data
    max_flat = len(flat)  # never spill: every value comes from a core value
    kind_o, got_o = A.outcome(
        lambda: lift_flat_values(ours.cx(), max_flat, CoreValueIter(flat), ts)
    )
    kind_s, got_s = A.outcome(
        lambda: S.lift_flat_values(spec.cx(), max_flat, S.CoreValueIter(flat), TS)
    )
    assert kind_o == kind_s, (kind_o, got_o, kind_s, got_s)
    event(f"outcome: {kind_o}")
    if kind_o == "ok":
        assert [A.norm_ours(t, v) for t, v in zip(ts, got_o, strict=True)] == [
            A.norm_spec(t, v) for t, v in zip(ts, got_s, strict=True)
        ]


@settings(deadline=None, max_examples=150)
@given(
    st.lists(A.value_types(max_leaves=4), min_size=1, max_size=4).flatmap(
        lambda ts: st.tuples(st.just(ts), st.tuples(*(A.values_of(t) for t in ts)))
    ),
    MAX_FLATS,
    st.sampled_from([1, 2, 3, A.PAGE - 8, A.PAGE - 1, A.PAGE, 2**32 - 4]),
)
def test_realloc_answers_are_checked(
    tvs: tuple[list[ValueType], tuple[Any, ...]], max_flat: int, answer: int
) -> None:
    """A realloc that answers a misaligned or out-of-bounds pointer traps on both sides or neither.

    Every allocation (spilled values, lists, strings) gets the same answer.
    """
    ts, vs = tvs
    TS = [A.spec_type(t) for t in ts]
    ours, spec = both("utf8")
    ours.opts = type(ours.opts)(memory=ours.memory, realloc=lambda *a: answer)
    spec.opts.realloc = lambda *a: answer
    got_o = A.outcome(lambda: lower_flat_values(ours.cx(), max_flat, list(vs), ts))
    got_s = A.outcome(
        lambda: S.lower_flat_values(
            spec.cx(S.Task(None, None, None, None, None)),
            max_flat,
            [A.spec_value(t, v, "utf8") for t, v in zip(ts, vs, strict=True)],
            TS,
        )
    )
    assert got_o[0] == got_s[0]
    if got_o[0] == "ok":
        cts = core_types(ts, max_flat)
        assert A.norm_core(cts, got_o[1]) == A.norm_core(cts, got_s[1])
        assert ours.bytes() == spec.bytes()


@settings(deadline=None, max_examples=150)
@given(
    st.lists(A.value_types(max_leaves=4), min_size=1, max_size=4),
    MAX_FLATS,
    st.one_of(st.integers(0, RANDOM_MEMORY), st.sampled_from([A.PAGE - 4, A.PAGE, 2**32 - 1])),
    A.memory_bytes(RANDOM_MEMORY),
    ENCODING,
)
def test_lift_spilled_values_at_arbitrary_pointers(
    ts: list[ValueType], max_flat: int, ptr: int, data: bytes, encoding: str
) -> None:
    """Spilled values behind any pointer: both check alignment and bounds alike, then load alike."""
    TS = [A.spec_type(t) for t in ts]
    ours, spec = both(encoding)
    ours.memory.view()[:RANDOM_MEMORY] = data
    spec.memory.bytes[:RANDOM_MEMORY] = data
    # Every type has at least one core value, so this limit always spills.
    max_flat = min(max_flat, len(flat_types_of(tuple(ts))) - 1)
    kind_o, got_o = A.outcome(
        lambda: lift_flat_values(ours.cx(), max_flat, CoreValueIter([ptr]), ts)
    )
    kind_s, got_s = A.outcome(
        lambda: S.lift_flat_values(spec.cx(), max_flat, S.CoreValueIter([ptr]), TS)
    )
    assert kind_o == kind_s, (kind_o, got_o, kind_s, got_s)
    event(f"outcome: {kind_o}")
    if kind_o == "ok":
        assert [A.norm_ours(t, v) for t, v in zip(ts, got_o, strict=True)] == [
            A.norm_spec(t, v) for t, v in zip(ts, got_s, strict=True)
        ]


@settings(deadline=None, max_examples=150)
@given(
    st.lists(A.value_types(max_leaves=4), min_size=1, max_size=3).flatmap(
        lambda ts: st.tuples(st.just(ts), st.tuples(*(A.values_of(t) for t in ts)))
    ),
    MAX_FLATS,
    st.one_of(
        st.integers(0, RANDOM_MEMORY),
        st.sampled_from([A.PAGE - 8, A.PAGE - 4, A.PAGE - 1, A.PAGE, 2**32 - 4]),
    ),
    ENCODING,
)
def test_lower_spilled_values_to_arbitrary_out_pointers(
    tvs: tuple[list[ValueType], tuple[Any, ...]], max_flat: int, ptr: int, encoding: str
) -> None:
    """Results spilled to any out-pointer: both check alignment and bounds alike, then store alike.

    One-element lists included (stored as their element, not split as a tuple).
    """
    ts, vs = tvs
    TS = [A.spec_type(t) for t in ts]
    ours, spec = both(encoding)
    # Every type has at least one core value, so this limit always spills.
    max_flat = min(max_flat, len(flat_types_of(tuple(ts))) - 1)
    kind_o, got_o = A.outcome(
        lambda: lower_flat_values(ours.cx(), max_flat, list(vs), ts, CoreValueIter([ptr]))
    )
    kind_s, got_s = A.outcome(
        lambda: S.lower_flat_values(
            spec.cx(S.Task(None, None, None, None, None)),
            max_flat,
            [A.spec_value(t, v, encoding) for t, v in zip(ts, vs, strict=True)],
            TS,
            S.CoreValueIter([ptr]),
        )
    )
    assert kind_o == kind_s, (kind_o, got_o, kind_s, got_s)
    event(f"outcome: {kind_o}, {len(ts)} value(s)")
    if kind_o == "ok":
        # (Not lifted back: an arbitrary out-pointer may overlap what the
        # lowering allocated, alike on both sides.)
        assert got_o == got_s == []
        assert_same_memory(ours, spec)
