"""Stream and future copy state machines: scripted sequences through our ``_abi`` and the spec.

A writer instance makes a stream (or future) and hands its readable end to a
reader instance; then a script of asynchronous reads, writes, cancels, drops
and polls runs against both implementations. After every step the codes
returned, the traps, the events, the copy states and every byte of both
memories must agree.

All copies and cancels are asynchronous: a synchronous built-in that cannot
finish blocks its thread, and the specification's threads are not driven
here. (Whether an operation finishes at once is compared all the same: it
returns BLOCKED on both sides or on neither.)

One divergence is deliberate: a cancel that finds a copy already made
progress with its event not yet delivered. The specification's
``definitions.py`` reports that copy's COMPLETED event; the conformance suite
(``async/cancel-stream.wast``, the same revision) expects CANCELLED with the
progress, and trio_wasi follows the suite. The script comparison maps that one
case, and :func:`test_cancel_after_progress_divergence` pins it.

One spec defect is stepped around: ``SharedFutureImpl.drop`` asserts that a
parked copy is a read (``WritableBuffer``), but the parked copy it meets when
the readable end is dropped under a pending write is that write (and the
``DROPPED`` result is meant for writes only, as ``future_copy`` asserts). The
future scripts end there; :func:`test_future_drop_under_pending_write` checks
our behaviour (the write ends DROPPED) and pins the spec's assertion.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import _trio_wasi_oracle_adapter as A
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from trio_wasi._abi import (
    CHAR,
    F32,
    F64,
    STRING,
    U8,
    U16,
    U32,
    CanonOptions,
    CopyResult,
    FutureType,
    ListType,
    OptionType,
    ResultType,
    StreamType,
    TupleType,
    ValueType,
    future_cancel_read,
    future_cancel_write,
    future_drop_readable,
    future_drop_writable,
    future_new,
    future_read,
    future_write,
    lift_future,
    lift_stream,
    lower_future,
    lower_stream,
    store,
    stream_cancel_read,
    stream_cancel_write,
    stream_drop_readable,
    stream_drop_writable,
    stream_new,
    stream_read,
    stream_write,
)
from trio_wasi._abi._waitables import Waitable

S = A.require_spec()

ELEMENTS: list[ValueType | None] = [
    None,
    U8,
    U32,
    F32,
    STRING,
    TupleType((U8, U16)),
    ListType(U8),
    OptionType(STRING),
    ResultType(F64, CHAR),
]
N = 6  # elements in the writer's buffer
W_BUF = 256  # the writer's values
R_BUF = 1024  # where the reader reads into
HEAP = 2048  # where realloc starts handing out memory
# Where a copy's buffer starts: as planned, one byte off (misaligned for most
# element types), or two bytes before the end of memory (out of bounds).
WHERE = st.sampled_from([0, 0, 0, 0, 1, 2])


def buffer_at(base: int, where: int) -> int:
    return (base, base + 1, A.PAGE - 2)[where]


def no_wait(e: Waitable) -> None:
    raise AssertionError("an asynchronous built-in must not block")


def would_block(e: Waitable) -> None:
    raise A.WouldBlock


class Side:
    """The writer and reader instances of one implementation, and the two ends."""

    wi: int
    ri: int


Pairing = tuple[str, str | None]
"""The writer's string encoding and the reader's (None: the writer's instance reads too)."""

PAIRINGS = st.tuples(st.sampled_from(A.ENCODINGS), st.sampled_from([None, *A.ENCODINGS]))
SEPARATE: Pairing = ("utf8", "utf8")


class OursSide(Side):
    def __init__(self, pairing: Pairing) -> None:
        enc_w, enc_r = pairing
        self.w = A.Ours(enc_w, top=HEAP)
        self.r = self.w if enc_r is None else A.Ours(enc_r, top=HEAP)
        for inst in {id(self.w): self.w, id(self.r): self.r}.values():
            inst.opts = CanonOptions(
                memory=inst.memory,
                string_encoding=inst.encoding,
                realloc=inst.alloc,
                is_async=True,
            )


class SpecSide(Side):
    def __init__(self, pairing: Pairing) -> None:
        enc_w, enc_r = pairing
        self.w = A.Spec(enc_w, top=HEAP)
        self.r = self.w if enc_r is None else A.Spec(enc_r, top=HEAP)
        for inst in {id(self.w): self.w, id(self.r): self.r}.values():
            inst.opts.async_ = True


RAW_ELEMENTS = (U8, U32, F32)  # filled with raw bytes: every bit pattern (NaN payloads too)


def fill_writer(ours: OursSide, spec: SpecSide, t: ValueType | None, data: st.DataObject) -> None:
    """The same N values at W_BUF in both writers' memories."""
    if t is None:
        return
    if t in RAW_ELEMENTS:
        raw = data.draw(A.memory_bytes(64))
        ours.w.memory.view()[W_BUF : W_BUF + 64] = raw
        spec.w.memory.bytes[W_BUF : W_BUF + 64] = raw
    else:
        # Each side stores the values itself (the value tests check they agree).
        values = data.draw(st.lists(A.values_of(t), min_size=N, max_size=N))
        lt = ListType(t, N)
        store(ours.w.cx(), values, lt, W_BUF)
        S.store(spec.w.cx(), A.spec_value(lt, values, spec.w.encoding), A.spec_type(lt), W_BUF)
    assert ours.w.bytes() == spec.w.bytes()


def compare_memories(ours: OursSide, spec: SpecSide) -> None:
    assert ours.w.bytes() == spec.w.bytes()
    assert ours.r.bytes() == spec.r.bytes()
    assert ours.r.alloc.calls == spec.r.alloc.calls


def end_state(e: Any) -> Any:
    return (e.state.name, e.has_pending_event())


# ---------------------------------------------------------------------------
# Streams

# Copies and polls are drawn more often than cancels and drops, which often
# trap (nothing to cancel) or end the script.
COUNT = st.one_of(st.integers(0, N), st.just(1 << 28))  # 2**28 - 1 is the longest buffer
# Synchronous copies and cancels are compared up to the point where one would
# block (the script ends there: blocking is not driven).
SYNC = st.sampled_from([False, False, False, True])
STREAM_OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["write", "read"]), st.integers(0, N), WHERE, SYNC),
        st.tuples(st.sampled_from(["write", "read"]), COUNT, WHERE, SYNC),
        st.tuples(st.just("poll"), st.just(0), st.just(0), st.just(False)),
        st.tuples(st.just("poll"), st.just(0), st.just(0), st.just(False)),
        st.tuples(st.sampled_from(["cancel_write", "cancel_read"]), st.just(0), st.just(0), SYNC),
        st.tuples(
            st.sampled_from(["drop_writable", "drop_readable"]),
            st.just(0),
            st.just(0),
            st.just(False),
        ),
    ),
    max_size=12,
)


def stream_setup(t: StreamType, pairing: Pairing) -> tuple[OursSide, SpecSide, Any]:
    T = A.spec_type(t)
    ours, spec = OursSide(pairing), SpecSide(pairing)
    same_instance = pairing[1] is None
    packed = stream_new(ours.w.inst, t)
    ours.ri, ours.wi = packed & A.M32, packed >> 32
    [packed_s] = A.spec_call(spec.w.inst, S.canon_stream_new, T)
    assert packed_s == packed
    spec.ri, spec.wi = packed & A.M32, packed >> 32
    ours.ends = (ours.w.inst.table.get(ours.wi), ours.w.inst.table.get(ours.ri))
    spec.ends = (spec.w.inst.handles.get(spec.wi), spec.w.inst.handles.get(spec.ri))
    if not same_instance:
        # Hand the readable end to the reader: lift it out of the writer's
        # table, lower it into the reader's.
        shared = lift_stream(ours.w.cx(), ours.ri, t)
        ours.ri = lower_stream(ours.r.cx(), shared, t)
        shared_s = S.lift_stream(spec.w.cx(), spec.ri, T.t)
        spec.ri = S.lower_stream(spec.r.cx(), shared_s, T.t)
        assert ours.ri == spec.ri
        ours.ends = (ours.ends[0], ours.r.inst.table.get(ours.ri))
        spec.ends = (spec.ends[0], spec.r.inst.handles.get(spec.ri))
    return ours, spec, T


def run_stream_op(
    side: Any,
    op: str,
    n: int,
    t: StreamType,
    T: Any,
    is_ours: bool,
    where: int = 0,
    sync: bool = False,
) -> Any:
    w, r = side.w, side.r
    wp, rp = buffer_at(W_BUF, where), buffer_at(R_BUF, where)
    is_async = not sync
    wait = would_block if sync else no_wait
    if is_ours:
        calls = {
            "write": lambda: stream_write(
                w.inst, t, w.opts, side.wi, wp, n, is_async=is_async, wait=wait
            ),
            "read": lambda: stream_read(
                r.inst, t, r.opts, side.ri, rp, n, is_async=is_async, wait=wait
            ),
            "cancel_write": lambda: stream_cancel_write(
                w.inst, t, side.wi, is_async=is_async, wait=wait
            ),
            "cancel_read": lambda: stream_cancel_read(
                r.inst, t, side.ri, is_async=is_async, wait=wait
            ),
            "drop_writable": lambda: stream_drop_writable(w.inst, t, side.wi),
            "drop_readable": lambda: stream_drop_readable(r.inst, t, side.ri),
        }
        return calls[op]()
    w_opts = dataclasses.replace(w.opts, async_=is_async)
    r_opts = dataclasses.replace(r.opts, async_=is_async)
    calls = {
        "write": (w.inst, S.canon_stream_write, T, w_opts, side.wi, wp, n),
        "read": (r.inst, S.canon_stream_read, T, r_opts, side.ri, rp, n),
        "cancel_write": (w.inst, S.canon_stream_cancel_write, T, is_async, side.wi),
        "cancel_read": (r.inst, S.canon_stream_cancel_read, T, is_async, side.ri),
        "drop_writable": (w.inst, S.canon_stream_drop_writable, T, side.wi),
        "drop_readable": (r.inst, S.canon_stream_drop_readable, T, side.ri),
    }
    inst, builtin, *args = calls[op]
    got = A.spec_call(inst, builtin, *args)
    return got[0] if got else None


def poll(side: Any) -> list[Any]:
    """The pending events of both ends, delivered (as waitable-set.poll would)."""
    out = []
    for e in side.ends:
        out.append(e.get_pending_event() if e.has_pending_event() else None)
    return [None if ev is None else tuple(int(x) for x in ev) for ev in out]


def known_cancel_divergence(op: str, got_o: Any, got_s: Any) -> bool:
    """Ours says CANCELLED where the spec delivers the copy's COMPLETED event."""
    if not op.startswith("cancel") or got_o[0] != "ok" or got_s[0] != "ok":
        return False
    o, s = got_o[1], got_s[1]
    return bool(
        o & 0xF == CopyResult.CANCELLED and s & 0xF == CopyResult.COMPLETED and o >> 4 == s >> 4
    )


@settings(deadline=None, max_examples=500)
@given(st.data(), st.sampled_from(ELEMENTS), PAIRINGS, STREAM_OPS)
def test_stream_scripts(
    data: st.DataObject, element: ValueType | None, pairing: Pairing, ops: list[Any]
) -> None:
    t = StreamType(element)
    ours, spec, T = stream_setup(t, pairing)
    fill_writer(ours, spec, element, data)
    for op, n, where, sync in ops:
        if op == "poll":
            assert poll(ours) == poll(spec)
        else:
            got_o = A.outcome(lambda a=(op, n, t, T, True, where, sync): run_stream_op(ours, *a))
            got_s = A.outcome(lambda a=(op, n, t, T, False, where, sync): run_stream_op(spec, *a))
            if known_cancel_divergence(op, got_o, got_s):
                event("cancel after progress (known divergence)")
            else:
                assert got_o == got_s, (op, n, sync)
            if got_o[0] != "ok":
                # A trap ends the instance; a blocked thread is not driven on.
                event(f"{got_o[0]} at {'sync ' if sync else ''}{op}")
                return
        assert [end_state(e) for e in ours.ends] == [end_state(e) for e in spec.ends]
        compare_memories(ours, spec)
    event("script ran to the end")


def test_cancel_after_progress_divergence() -> None:
    """The one deliberate difference from definitions.py (see the module docstring)."""
    t = StreamType(U8)
    ours, spec, T = stream_setup(t, SEPARATE)
    for side, is_ours in ((ours, True), (spec, False)):
        assert run_stream_op(side, "read", 4, t, T, is_ours) == 0xFFFF_FFFF  # BLOCKED
        assert run_stream_op(side, "write", 2, t, T, is_ours) == 2 << 4  # COMPLETED, 2
    got_o = run_stream_op(ours, "cancel_read", 0, t, T, True)
    got_s = run_stream_op(spec, "cancel_read", 0, t, T, False)
    assert got_s == CopyResult.COMPLETED | 2 << 4
    assert got_o == CopyResult.CANCELLED | 2 << 4


# ---------------------------------------------------------------------------
# Futures

FUTURE_OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["write", "read"]), WHERE, SYNC),
        st.tuples(st.just("poll"), st.just(0), st.just(False)),
        st.tuples(st.sampled_from(["cancel_write", "cancel_read"]), st.just(0), SYNC),
        st.tuples(st.sampled_from(["drop_writable", "drop_readable"]), st.just(0), st.just(False)),
    ),
    max_size=10,
)


def future_setup(t: FutureType, pairing: Pairing) -> tuple[OursSide, SpecSide, Any]:
    T = A.spec_type(t)
    ours, spec = OursSide(pairing), SpecSide(pairing)
    same_instance = pairing[1] is None
    packed = future_new(ours.w.inst, t)
    ours.ri, ours.wi = packed & A.M32, packed >> 32
    [packed_s] = A.spec_call(spec.w.inst, S.canon_future_new, T)
    assert packed_s == packed
    spec.ri, spec.wi = packed & A.M32, packed >> 32
    ours.ends = (ours.w.inst.table.get(ours.wi), ours.w.inst.table.get(ours.ri))
    spec.ends = (spec.w.inst.handles.get(spec.wi), spec.w.inst.handles.get(spec.ri))
    if not same_instance:
        shared = lift_future(ours.w.cx(), ours.ri, t)
        ours.ri = lower_future(ours.r.cx(), shared, t)
        shared_s = S.lift_future(spec.w.cx(), spec.ri, T.t)
        spec.ri = S.lower_future(spec.r.cx(), shared_s, T.t)
        assert ours.ri == spec.ri
        ours.ends = (ours.ends[0], ours.r.inst.table.get(ours.ri))
        spec.ends = (spec.ends[0], spec.r.inst.handles.get(spec.ri))
    return ours, spec, T


def run_future_op(
    side: Any,
    op: str,
    t: FutureType,
    T: Any,
    is_ours: bool,
    where: int = 0,
    sync: bool = False,
) -> Any:
    w, r = side.w, side.r
    wp, rp = buffer_at(W_BUF, where), buffer_at(R_BUF, where)
    is_async = not sync
    wait = would_block if sync else no_wait
    if is_ours:
        calls = {
            "write": lambda: future_write(
                w.inst, t, w.opts, side.wi, wp, is_async=is_async, wait=wait
            ),
            "read": lambda: future_read(
                r.inst, t, r.opts, side.ri, rp, is_async=is_async, wait=wait
            ),
            "cancel_write": lambda: future_cancel_write(
                w.inst, t, side.wi, is_async=is_async, wait=wait
            ),
            "cancel_read": lambda: future_cancel_read(
                r.inst, t, side.ri, is_async=is_async, wait=wait
            ),
            "drop_writable": lambda: future_drop_writable(w.inst, t, side.wi),
            "drop_readable": lambda: future_drop_readable(r.inst, t, side.ri),
        }
        return calls[op]()
    w_opts = dataclasses.replace(w.opts, async_=is_async)
    r_opts = dataclasses.replace(r.opts, async_=is_async)
    calls = {
        "write": (w.inst, S.canon_future_write, T, w_opts, side.wi, wp),
        "read": (r.inst, S.canon_future_read, T, r_opts, side.ri, rp),
        "cancel_write": (w.inst, S.canon_future_cancel_write, T, is_async, side.wi),
        "cancel_read": (r.inst, S.canon_future_cancel_read, T, is_async, side.ri),
        "drop_writable": (w.inst, S.canon_future_drop_writable, T, side.wi),
        "drop_readable": (r.inst, S.canon_future_drop_readable, T, side.ri),
    }
    inst, builtin, *args = calls[op]
    got = A.spec_call(inst, builtin, *args)
    return got[0] if got else None


def spec_future_write_parked(spec: SpecSide) -> bool:
    shared = spec.ends[0].shared
    return isinstance(shared.pending_buffer, S.ReadableBufferGuestImpl) and not shared.dropped


def test_future_drop_under_pending_write() -> None:
    t = FutureType(U8)
    ours, spec, T = future_setup(t, SEPARATE)
    assert run_future_op(ours, "write", t, T, True) == 0xFFFF_FFFF  # BLOCKED
    assert run_future_op(spec, "write", t, T, False) == 0xFFFF_FFFF
    run_future_op(ours, "drop_readable", t, T, True)
    assert poll(ours) == [(A.SPEC.EventCode.FUTURE_WRITE, ours.wi, CopyResult.DROPPED), None]
    assert ours.ends[0].state.name == "DONE"
    # definitions.py asserts that the parked copy is a read (a defect).
    with pytest.raises(AssertionError):
        run_future_op(spec, "drop_readable", t, T, False)


@settings(deadline=None, max_examples=300)
@given(st.data(), st.sampled_from(ELEMENTS), PAIRINGS, FUTURE_OPS)
def test_future_scripts(
    data: st.DataObject, element: ValueType | None, pairing: Pairing, ops: list[Any]
) -> None:
    t = FutureType(element)
    ours, spec, T = future_setup(t, pairing)
    fill_writer(ours, spec, element, data)
    for op, where, sync in ops:
        if op == "poll":
            assert poll(ours) == poll(spec)
        elif op == "drop_readable" and spec_future_write_parked(spec):
            event("drop under a pending write (spec defect)")
            return
        else:
            got_o = A.outcome(lambda a=(op, t, T, True, where, sync): run_future_op(ours, *a))
            got_s = A.outcome(lambda a=(op, t, T, False, where, sync): run_future_op(spec, *a))
            assert got_o == got_s, (op, sync)
            if got_o[0] != "ok":
                event(f"{got_o[0]} at {'sync ' if sync else ''}{op}")
                return
        assert [end_state(e) for e in ours.ends] == [end_state(e) for e in spec.ends]
        compare_memories(ours, spec)
    event("script ran to the end")


@pytest.mark.parametrize("element", ELEMENTS)
def test_transfer_of_a_busy_end_traps_on_both(element: ValueType | None) -> None:
    """Lifting a readable end that is mid-copy traps on both sides."""
    t = StreamType(element)
    ours, spec, T = stream_setup(t, SEPARATE)
    assert run_stream_op(ours, "read", 1, t, T, True) == 0xFFFF_FFFF
    assert run_stream_op(spec, "read", 1, t, T, False) == 0xFFFF_FFFF
    got_o = A.outcome(lambda: lift_stream(ours.r.cx(), ours.ri, t))
    got_s = A.outcome(lambda: S.lift_stream(spec.r.cx(), spec.ri, T.t))
    assert got_o[0] == got_s[0] == "trap"


# ---------------------------------------------------------------------------
# Waitable sets: stream ends joined to sets, sets polled and dropped
#
# When several members of a set have events, which one a poll delivers is the
# implementation's choice (the specification picks at random). The comparison
# lets ours choose and has the specification deliver the same member's event,
# after checking that member is in the set with an event pending.

EVENT_AT = 64  # where a poll stores the event's two payload words


class _NoTask:
    """The calling task for ours: never has a cancellation to deliver."""

    def deliver_pending_cancel(self, cancellable: bool) -> bool:
        return False


class _OneTaskRuntime:
    def current_task(self) -> _NoTask:
        return _NoTask()

    def maybe_current_task(self) -> _NoTask:
        return _NoTask()


def builtins_for(inst: Any) -> Any:
    from trio_wasi._run._builtins import BuiltinFactory

    return BuiltinFactory(_OneTaskRuntime(), inst)


SET_OPS = st.lists(
    st.one_of(
        # the third element: synchronous (an end in a waitable set cannot be)
        st.tuples(st.sampled_from(["write", "read"]), st.integers(0, N), SYNC),
        st.tuples(st.just("join"), st.integers(0, 1), st.integers(0, 1)),
        st.tuples(st.just("poll_set"), st.integers(0, 1), st.just(0)),
        st.tuples(st.just("poll_set"), st.integers(0, 1), st.just(0)),
        st.tuples(
            st.sampled_from(["drop_set", "cancel_write", "cancel_read", "drop_readable"]),
            st.integers(0, 1),
            st.just(0),
        ),
    ),
    max_size=14,
)


def set_op_ours(ours: OursSide, sets: list[int], op: str, a: int, b: int) -> Any:
    insts = (ours.w, ours.r)
    if op == "join":
        # end a (0 writable, 1 readable) joins its instance's set (b=1) or leaves (b=0)
        inst = insts[a]
        wi = (ours.wi, ours.ri)[a]
        return builtins_for(inst.inst).waitable_join()(wi, sets[a] if b else 0)
    if op == "drop_set":
        return builtins_for(insts[a].inst).waitable_set_drop()(sets[a])
    assert op == "poll_set"
    code = builtins_for(insts[a].inst).waitable_set_poll(False, insts[a].memory)(sets[a], EVENT_AT)
    return code


def set_op_spec(spec: SpecSide, sets: list[int], op: str, a: int, b: int, follow: Any) -> Any:
    insts = (spec.w, spec.r)
    inst = insts[a].inst
    if op == "join":
        wi = (spec.wi, spec.ri)[a]
        return A.spec_call(inst, S.canon_waitable_join, wi, sets[a] if b else 0) or None
    if op == "drop_set":
        return A.spec_call(inst, S.canon_waitable_set_drop, sets[a]) or None
    assert op == "poll_set"
    if follow is None:
        # Ours trapped or found nothing: the spec's own poll must agree.
        [code] = A.spec_call(
            inst, S.canon_waitable_set_poll, False, insts[a].memory, sets[a], EVENT_AT
        )
        return code
    # Deliver the member ours chose, checking the spec could have chosen it.
    wset = inst.handles.get(sets[a])
    w = inst.handles.get(follow)
    assert w in wset.elems and w.has_pending_event()
    [code] = S.unpack_event(insts[a].memory, inst, EVENT_AT, w.get_pending_event())
    return code


@settings(deadline=None, max_examples=300)
@given(st.data(), st.sampled_from([U8, STRING]), PAIRINGS, SET_OPS)
def test_stream_scripts_with_waitable_sets(
    data: st.DataObject, element: ValueType, pairing: Pairing, ops: list[Any]
) -> None:
    t = StreamType(element)
    ours, spec, T = stream_setup(t, pairing)
    fill_writer(ours, spec, element, data)
    sets = []
    for o_inst, s_inst in ((ours.w, spec.w), (ours.r, spec.r)):
        si = builtins_for(o_inst.inst).waitable_set_new()()
        [si_s] = A.spec_call(s_inst.inst, S.canon_waitable_set_new)
        assert si == si_s
        sets.append(si)
    for op, a, b in ops:
        if op in ("join", "poll_set", "drop_set"):
            got_o = A.outcome(lambda op=op, a=a, b=b: set_op_ours(ours, sets, op, a, b))
            follow = None
            if op == "poll_set" and got_o[0] == "ok" and got_o[1] != 0:
                follow = int.from_bytes(ours_mem(ours, a)[EVENT_AT : EVENT_AT + 4], "little")
            got_s = A.outcome(
                lambda op=op, a=a, b=b, f=follow: set_op_spec(spec, sets, op, a, b, f)
            )
            assert got_o == got_s, (op, a, b)
        else:
            got_o = A.outcome(
                lambda op=op, n=a, sync=b: run_stream_op(ours, op, n, t, T, True, 0, bool(sync))
            )
            got_s = A.outcome(
                lambda op=op, n=a, sync=b: run_stream_op(spec, op, n, t, T, False, 0, bool(sync))
            )
            if known_cancel_divergence(op, got_o, got_s):
                event("cancel after progress (known divergence)")
            else:
                assert got_o == got_s, (op, a)
        if got_o[0] != "ok":
            event(f"{got_o[0]} at {op}")
            return
        event(f"ran {op}")
        assert [end_state(e) for e in ours.ends] == [end_state(e) for e in spec.ends]
        assert [e.in_waitable_set() for e in ours.ends] == [e.in_waitable_set() for e in spec.ends]
        compare_memories(ours, spec)
    event("script ran to the end")


def ours_mem(ours: OursSide, a: int) -> bytes:
    return (ours.w, ours.r)[a].bytes()
