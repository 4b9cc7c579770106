"""Streams: rendezvous, partial and zero-length copies, drop, cancel, traps, buffers, transfer."""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest

from trio_wasi._abi import (
    GUEST_ASYNC_VALUES,
    S16,
    S64,
    STRING,
    U8,
    U16,
    U32,
    BytesMemory,
    CanonOptions,
    CopyResult,
    CopyState,
    CoreValueIter,
    GuestReadableBuffer,
    GuestWritableBuffer,
    HostReadableBuffer,
    HostWritableBuffer,
    InstanceState,
    LiftLowerContext,
    ReadableStream,
    ReadableStreamEnd,
    SharedStream,
    StreamType,
    ValueType,
    WritableBuffer,
    WritableStreamEnd,
    lift_flat,
    lift_stream,
    load,
    lower_flat,
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
from trio_wasi._abi._streams import OnCopy, OnCopyDone
from trio_wasi._abi._waitables import BLOCKED, EventCode, Waitable, WaitableSet
from trio_wasi._errors import Trap

U8S = StreamType(U8)


def packed(result: CopyResult, progress: int) -> int:
    return int(result) | progress << 4


def no_wait(e: Waitable) -> None:
    raise AssertionError("an asynchronous copy must not block")


class Guest:
    """One component instance with a memory, a bump allocator and options."""

    def __init__(self, encoding: str = "utf8", *, memory: bool = True) -> None:
        self.inst = InstanceState()
        self.memory = BytesMemory()
        self.top = 1024
        self.opts = CanonOptions(
            memory=self.memory if memory else None,
            string_encoding=encoding,  # type: ignore[arg-type]
            realloc=self.realloc,
        )

    def realloc(self, old: int, old_size: int, align: int, new_size: int) -> int:
        ptr = (self.top + align - 1) & -align
        self.top = ptr + new_size
        if old:
            view = self.memory.view()
            n = min(old_size, new_size)
            view[ptr : ptr + n] = bytes(view[old : old + n])
        return ptr

    def cx(self) -> LiftLowerContext:
        return LiftLowerContext(self.opts, self.inst, hooks=GUEST_ASYNC_VALUES)

    def put(self, ptr: int, data: bytes) -> None:
        self.memory.view()[ptr : ptr + len(data)] = data

    def get(self, ptr: int, n: int) -> bytes:
        return bytes(self.memory.view()[ptr : ptr + n])

    def new(self, t: StreamType = U8S) -> tuple[int, int]:
        packed = stream_new(self.inst, t)
        return packed & 0xFFFFFFFF, packed >> 32

    def read(self, i: int, ptr: int, n: int, t: StreamType = U8S, **kw: Any) -> int:
        kw.setdefault("is_async", True)
        kw.setdefault("wait", no_wait)
        return stream_read(self.inst, t, self.opts, i, ptr, n, **kw)

    def write(self, i: int, ptr: int, n: int, t: StreamType = U8S, **kw: Any) -> int:
        kw.setdefault("is_async", True)
        kw.setdefault("wait", no_wait)
        return stream_write(self.inst, t, self.opts, i, ptr, n, **kw)

    def end(self, i: int) -> Any:
        return self.inst.table.get(i)

    def event(self, i: int) -> tuple[int, int, int]:
        e = self.end(i)
        assert e.has_pending_event()
        return e.get_pending_event()  # type: ignore[no-any-return]


def transfer(src: Guest, dst: Guest, ri: int, t: StreamType = U8S) -> int:
    """Pass readable end ``ri`` from ``src`` to ``dst`` as a call would."""
    shared = lift_flat(src.cx(), CoreValueIter([ri]), t)
    [index] = lower_flat(dst.cx(), shared, t)
    return int(index)


def pair(t: StreamType = U8S) -> tuple[Guest, Guest, int, int]:
    """A writer guest holding the writable end, a reader guest holding the readable end."""
    w, r = Guest(), Guest()
    ri, wi = w.new(t)
    return w, r, wi, transfer(w, r, ri, t)


# ---------------------------------------------------------------------------
# stream.new


def test_stream_new_packs_both_ends() -> None:
    g = Guest()
    ri, wi = g.new()
    assert (ri, wi) == (1, 2)
    r, w = g.end(ri), g.end(wi)
    assert isinstance(r, ReadableStreamEnd) and isinstance(w, WritableStreamEnd)
    assert g.end(ri).shared is g.end(wi).shared and isinstance(r.shared, SharedStream)
    assert r.state is w.state is CopyState.IDLE
    assert r.type == w.type == U8S
    assert r.element == U8


def test_stream_new_traps_when_the_instance_may_not_leave() -> None:
    g = Guest()
    g.inst.may_leave = False
    with pytest.raises(Trap, match="cannot leave component instance"):
        g.new()


# ---------------------------------------------------------------------------
# Rendezvous


def test_reader_first_rendezvous() -> None:
    w, r, wi, ri = pair()
    assert r.read(ri, 100, 8) == BLOCKED
    assert r.end(ri).state is CopyState.COPYING
    w.put(200, b"abcd")
    assert w.write(wi, 200, 4) == packed(CopyResult.COMPLETED, 4)
    assert w.end(wi).state is CopyState.IDLE
    assert r.get(100, 4) == b"abcd"
    assert r.event(ri) == (EventCode.STREAM_READ, ri, packed(CopyResult.COMPLETED, 4))
    assert r.end(ri).state is CopyState.IDLE
    # The reader's buffer was reclaimed: the next write waits for a new read.
    assert w.write(wi, 200, 4) == BLOCKED


def test_writer_first_rendezvous() -> None:
    w, r, wi, ri = pair()
    w.put(200, b"hello")
    assert w.write(wi, 200, 5) == BLOCKED
    assert not w.end(wi).has_pending_event()
    assert r.read(ri, 100, 16) == packed(CopyResult.COMPLETED, 5)
    assert r.get(100, 5) == b"hello"
    assert w.event(wi) == (EventCode.STREAM_WRITE, wi, packed(CopyResult.COMPLETED, 5))
    assert w.end(wi).state is CopyState.IDLE


def test_partial_copies_reuse_the_parked_buffer_until_its_event_is_delivered() -> None:
    w, r, wi, ri = pair()
    w.put(200, bytes(range(10)))
    assert w.write(wi, 200, 10) == BLOCKED
    assert r.read(ri, 100, 4) == packed(CopyResult.COMPLETED, 4)
    writer = w.end(wi)
    assert writer.has_pending_event() and writer.state is CopyState.COPYING
    # The writer has not seen its event: the rest of its buffer is still there.
    assert r.read(ri, 104, 4) == packed(CopyResult.COMPLETED, 4)
    assert r.get(100, 8) == bytes(range(8))
    assert w.event(wi) == (EventCode.STREAM_WRITE, wi, packed(CopyResult.COMPLETED, 8))
    assert w.end(wi).state is CopyState.IDLE
    # Delivering the event reclaimed the buffer: the last two bytes stay unsent.
    assert r.read(ri, 108, 4) == BLOCKED
    w.put(300, b"\xaa\xbb")
    assert w.write(wi, 300, 2) == packed(CopyResult.COMPLETED, 2)
    assert r.event(ri)[2] == packed(CopyResult.COMPLETED, 2)
    assert r.get(108, 2) == b"\xaa\xbb"


def test_reader_that_empties_a_parked_writer_completes_it_and_parks() -> None:
    w, r, wi, ri = pair()
    w.put(200, b"xy")
    assert w.write(wi, 200, 2) == BLOCKED
    assert r.read(ri, 100, 2) == packed(CopyResult.COMPLETED, 2)
    # The writer's buffer is now empty but its event is undelivered; a new read
    # completes the writer and parks itself.
    assert r.read(ri, 102, 2) == BLOCKED
    assert w.event(wi)[2] == packed(CopyResult.COMPLETED, 2)
    assert r.end(ri).state is CopyState.COPYING


def test_progress_is_counted_in_elements() -> None:
    t = StreamType(U32)
    w, r, wi, ri = pair(t)
    w.put(200, struct.pack("<3I", 1, 2, 0xFFFFFFFF))
    assert r.read(ri, 100, 8, t) == BLOCKED
    assert w.write(wi, 200, 3, t) == packed(CopyResult.COMPLETED, 3)
    assert struct.unpack("<3I", r.get(100, 12)) == (1, 2, 0xFFFFFFFF)
    assert r.event(ri)[2] == packed(CopyResult.COMPLETED, 3)


# ---------------------------------------------------------------------------
# Zero-length copies


def test_zero_length_write_completes_and_leaves_a_zero_length_read_parked() -> None:
    w, r, wi, ri = pair()
    assert r.read(ri, 100, 0) == BLOCKED
    assert w.write(wi, 200, 0) == packed(CopyResult.COMPLETED, 0)
    assert not r.end(ri).has_pending_event()
    assert r.end(ri).state is CopyState.COPYING


def test_zero_length_write_first_is_completed_by_a_zero_length_read_which_parks() -> None:
    w, r, wi, ri = pair()
    assert w.write(wi, 200, 0) == BLOCKED
    assert r.read(ri, 100, 0) == BLOCKED
    assert w.event(wi)[2] == packed(CopyResult.COMPLETED, 0)
    assert r.end(ri).state is CopyState.COPYING


def test_zero_length_read_does_not_consume_a_parked_write() -> None:
    w, r, wi, ri = pair()
    w.put(200, b"abc")
    assert w.write(wi, 200, 3) == BLOCKED
    assert r.read(ri, 100, 0) == packed(CopyResult.COMPLETED, 0)
    assert not w.end(wi).has_pending_event()
    assert r.read(ri, 100, 3) == packed(CopyResult.COMPLETED, 3)
    assert r.get(100, 3) == b"abc"


def test_zero_length_write_does_not_satisfy_a_parked_read() -> None:
    w, r, wi, ri = pair()
    assert r.read(ri, 100, 4) == BLOCKED
    assert w.write(wi, 200, 0) == packed(CopyResult.COMPLETED, 0)
    assert not r.end(ri).has_pending_event()


def test_write_after_a_parked_zero_length_read_completes_the_read_and_parks() -> None:
    w, r, wi, ri = pair()
    assert r.read(ri, 100, 0) == BLOCKED
    w.put(200, b"z")
    assert w.write(wi, 200, 1) == BLOCKED
    assert r.event(ri)[2] == packed(CopyResult.COMPLETED, 0)
    assert r.read(ri, 100, 1) == packed(CopyResult.COMPLETED, 1)
    assert r.get(100, 1) == b"z"


# ---------------------------------------------------------------------------
# Dropping


def test_dropping_the_reader_delivers_dropped_to_a_parked_writer_keeping_progress() -> None:
    w, r, wi, ri = pair()
    w.put(200, bytes(10))
    assert w.write(wi, 200, 10) == BLOCKED
    assert r.read(ri, 100, 4) == packed(CopyResult.COMPLETED, 4)
    stream_drop_readable(r.inst, U8S, ri)
    assert w.event(wi) == (EventCode.STREAM_WRITE, wi, packed(CopyResult.DROPPED, 4))
    assert w.end(wi).state is CopyState.DONE
    with pytest.raises(
        Trap, match="cannot write to stream after being notified that the readable end dropped"
    ):
        w.write(wi, 200, 1)
    stream_drop_writable(w.inst, U8S, wi)
    assert len(w.inst.table) == 0 and len(r.inst.table) == 0


def test_dropping_the_writer_delivers_dropped_to_a_parked_reader() -> None:
    w, r, wi, ri = pair()
    assert r.read(ri, 100, 4) == BLOCKED
    stream_drop_writable(w.inst, U8S, wi)
    assert r.event(ri) == (EventCode.STREAM_READ, ri, packed(CopyResult.DROPPED, 0))
    assert r.end(ri).state is CopyState.DONE
    with pytest.raises(
        Trap, match="cannot read from stream after being notified that the writable end dropped"
    ):
        r.read(ri, 100, 4)


def test_copies_after_the_other_end_dropped_complete_with_dropped_at_once() -> None:
    w, r, wi, ri = pair()
    stream_drop_readable(r.inst, U8S, ri)
    assert w.write(wi, 200, 4) == packed(CopyResult.DROPPED, 0)
    w2, r2, wi2, ri2 = pair()
    stream_drop_writable(w2.inst, U8S, wi2)
    assert r2.read(ri2, 100, 4) == packed(CopyResult.DROPPED, 0)


def test_dropping_a_busy_end_traps() -> None:
    w, r, wi, ri = pair()
    assert r.read(ri, 100, 4) == BLOCKED
    with pytest.raises(Trap, match="cannot remove busy stream"):
        stream_drop_readable(r.inst, U8S, ri)
    w, r, wi, ri = pair()
    w.put(200, bytes(8))
    assert w.write(wi, 200, 8) == BLOCKED
    assert r.read(ri, 100, 4) == packed(CopyResult.COMPLETED, 4)
    # The writer has an undelivered event: still copying.
    with pytest.raises(Trap, match="cannot drop busy stream"):
        stream_drop_writable(w.inst, U8S, wi)


# ---------------------------------------------------------------------------
# Cancelling


def test_cancel_a_parked_read() -> None:
    w, r, wi, ri = pair()
    assert r.read(ri, 100, 4) == BLOCKED
    result = stream_cancel_read(r.inst, U8S, ri, is_async=True, wait=no_wait)
    assert result == packed(CopyResult.CANCELLED, 0)
    assert r.end(ri).state is CopyState.IDLE
    # The buffer is no longer parked.
    assert w.write(wi, 200, 4) == BLOCKED
    assert r.read(ri, 100, 4) == packed(CopyResult.COMPLETED, 4)


def test_cancel_after_partial_progress_reports_cancelled_with_the_progress() -> None:
    # The conformance suite (async/cancel-stream.wast) requires a cancel that
    # finds undelivered progress to report CANCELLED with that progress.
    w, r, wi, ri = pair()
    w.put(200, b"0123456789")
    assert w.write(wi, 200, 10) == BLOCKED
    assert r.read(ri, 100, 3) == packed(CopyResult.COMPLETED, 3)
    result = stream_cancel_write(w.inst, U8S, wi, is_async=True, wait=no_wait)
    assert result == packed(CopyResult.CANCELLED, 3)
    assert w.end(wi).state is CopyState.IDLE
    assert r.read(ri, 100, 3) == BLOCKED


def test_cancel_without_a_copy_in_progress_traps() -> None:
    _, r, _, ri = pair()
    with pytest.raises(Trap, match="no stream read in progress to cancel"):
        stream_cancel_read(r.inst, U8S, ri, is_async=True, wait=no_wait)


def test_synchronous_cancel_of_an_end_in_a_waitable_set_traps() -> None:
    _, r, _, ri = pair()
    assert r.read(ri, 100, 4) == BLOCKED
    r.end(ri).join(WaitableSet())
    with pytest.raises(Trap, match="cannot be used synchronously while added to a waitable set"):
        stream_cancel_read(r.inst, U8S, ri, is_async=False, wait=no_wait)


# ---------------------------------------------------------------------------
# Synchronous copies


def test_synchronous_read_waits_and_marks_the_sync_waiter() -> None:
    w, r, wi, ri = pair()
    seen: list[bool] = []

    def wait(e: Waitable) -> None:
        seen.append(e.has_sync_waiter)
        # Another task writes meanwhile.
        w.put(200, b"sync")
        assert w.write(wi, 200, 4) == packed(CopyResult.COMPLETED, 4)

    assert r.read(ri, 100, 4, is_async=False, wait=wait) == packed(CopyResult.COMPLETED, 4)
    assert seen == [True]
    assert not r.end(ri).has_sync_waiter
    assert r.get(100, 4) == b"sync"


def test_synchronous_copy_that_completes_at_once_does_not_wait() -> None:
    w, r, wi, ri = pair()
    assert w.write(wi, 200, 2) == BLOCKED
    assert r.read(ri, 100, 2, is_async=False, wait=no_wait) == packed(CopyResult.COMPLETED, 2)


def test_synchronous_cancel_waits_for_a_host_cancellation() -> None:
    # A host stream may finish cancelling later; the wait callback sees it through.
    class SlowCancel(ReadableStream):
        __slots__ = ("done", "t")

        def __init__(self) -> None:
            self.t = U8
            self.done: OnCopyDone | None = None

        def read(
            self,
            inst: InstanceState | None,
            dst: WritableBuffer,
            on_copy: OnCopy,
            on_copy_done: OnCopyDone,
        ) -> None:
            self.done = on_copy_done

        def cancel(self) -> None:
            pass

        def drop(self) -> None:
            pass

    g = Guest()
    host = SlowCancel()
    ri = lower_stream(g.cx(), host, U8S)
    assert g.read(ri, 100, 4) == BLOCKED
    waited: list[Waitable] = []

    def wait(e: Waitable) -> None:
        waited.append(e)
        assert host.done is not None
        host.done(CopyResult.CANCELLED)

    result = stream_cancel_read(g.inst, U8S, ri, is_async=False, wait=wait)
    assert result == packed(CopyResult.CANCELLED, 0)
    assert waited == [g.end(ri)]
    assert g.end(ri).state is CopyState.IDLE
    # Asynchronously, the same slow cancellation reports BLOCKED, then an event.
    assert g.read(ri, 100, 4) == BLOCKED
    assert stream_cancel_read(g.inst, U8S, ri, is_async=True, wait=no_wait) == BLOCKED
    assert g.end(ri).state is CopyState.CANCELLING_COPY
    assert host.done is not None
    host.done(CopyResult.CANCELLED)
    assert g.event(ri) == (EventCode.STREAM_READ, ri, packed(CopyResult.CANCELLED, 0))


# ---------------------------------------------------------------------------
# Traps of stream.read / stream.write


def test_copy_traps() -> None:
    w, r, wi, ri = pair()
    with pytest.raises(Trap, match=f"handle index {wi} is not a readable stream end"):
        w.read(wi, 0, 1)
    with pytest.raises(Trap, match=f"handle index {ri} is not a writable stream end"):
        r.write(ri, 0, 1)
    with pytest.raises(Trap, match="unknown handle index 9"):
        r.read(9, 0, 1)
    with pytest.raises(Trap, match="wrong readable stream end type"):
        r.read(ri, 0, 1, StreamType(U16))
    r.inst.may_leave = False
    with pytest.raises(Trap, match="cannot leave component instance"):
        r.read(ri, 0, 1)
    r.inst.may_leave = True
    assert r.read(ri, 0, 1) == BLOCKED
    with pytest.raises(Trap, match="cannot start a stream read while one is in progress"):
        r.read(ri, 0, 1)


def test_synchronous_copy_of_an_end_in_a_waitable_set_traps() -> None:
    w, _, wi, _ = pair()
    w.end(wi).join(WaitableSet())
    with pytest.raises(Trap, match="cannot be used synchronously while added to a waitable set"):
        w.write(wi, 0, 1, is_async=False)
    # Asynchronously it is fine.
    assert w.write(wi, 0, 1) == BLOCKED


@pytest.mark.parametrize(
    ("ptr", "n", "message"),
    [
        (1, 2, "unaligned pointer"),
        (65536 - 2, 2, "buffer out-of-bounds of memory"),
        (0, 2**28, "buffer length exceeds the maximum"),
        (0xFFFFFFFF, 0xFFFFFFFF, "buffer length exceeds the maximum"),
    ],
)
def test_buffer_traps(ptr: int, n: int, message: str) -> None:
    t = StreamType(U16)
    _, r, _, ri = pair(t)
    with pytest.raises(Trap, match=message):
        r.read(ri, ptr, n, t)


def test_empty_buffers_are_not_range_checked() -> None:
    t = StreamType(U16)
    _, r, _, ri = pair(t)
    assert r.read(ri, 0xFFFFFFF1, 0, t) == BLOCKED


def test_same_instance_copies_of_non_number_elements_trap() -> None:
    g = Guest()
    t = StreamType(STRING)
    ri, wi = g.new(t)
    assert g.read(ri, 0, 1, t) == BLOCKED
    with pytest.raises(Trap, match="cannot read from and write to intra-component stream"):
        g.write(wi, 8, 1, t)


@pytest.mark.parametrize(("dst", "src"), [(8 + k, 16) for k in range(17)])
def test_same_instance_byte_copies_may_overlap(dst: int, src: int) -> None:
    g = Guest()
    ri, wi = g.new()
    data = bytes.fromhex("efcdab8967452301")
    g.put(src, data)
    assert g.read(ri, dst, 8) == BLOCKED
    assert g.write(wi, src, 8) == packed(CopyResult.COMPLETED, 8)
    assert g.get(dst, 8) == data


# ---------------------------------------------------------------------------
# Element types: none, numbers (fast path), strings, nested streams


def test_unit_streams_touch_no_memory_and_allocate_nothing() -> None:
    t = StreamType(None)
    w, r = Guest(memory=False), Guest(memory=False)
    ri0, wi = w.new(t)
    ri = transfer(w, r, ri0, t)
    big = 2**28 - 1
    assert r.read(ri, 0xFFFFFFFF, big, t) == BLOCKED
    assert w.write(wi, 3, big, t) == packed(CopyResult.COMPLETED, big)
    assert r.event(ri)[2] == packed(CopyResult.COMPLETED, big)


NUMBER_CASES: list[tuple[ValueType, str]] = [
    (U8, "B"),
    (S16, "h"),
    (U16, "H"),
    (U32, "I"),
    (S64, "q"),
]


@pytest.mark.parametrize(("element", "fmt"), NUMBER_CASES)
def test_byte_fast_path_matches_the_value_path(element: ValueType, fmt: str) -> None:
    rng = random.Random(7)
    size = struct.calcsize(fmt)
    n = 37
    raw = bytes(rng.randrange(256) for _ in range(n * size))
    results = []
    for fast in (True, False):
        src, dst = Guest(), Guest()
        src.put(64, raw)
        rb = GuestReadableBuffer(element, src.cx(), 64, n)
        wb = GuestWritableBuffer(element, dst.cx(), 128, n)
        if fast:
            wb.write_from(rb, 20)
            wb.write_from(rb, 17)
        else:
            wb.write(rb.read(20))
            wb.write(rb.read(17))
        assert rb.progress == wb.progress == n and rb.remain() == wb.remain() == 0
        results.append(dst.get(128, n * size))
    assert results[0] == results[1] == raw


def test_string_stream_between_encodings() -> None:
    t = StreamType(STRING)
    w, r = Guest("utf8"), Guest("utf16")
    ri0, wi = w.new(t)
    ri = transfer(w, r, ri0, t)
    words = ["héllo", "", "🎉"]
    wcx = w.cx()
    for k, word in enumerate(words):
        store(wcx, word, STRING, 64 + 8 * k)
    assert w.write(wi, 64, 3, t) == BLOCKED
    assert r.read(ri, 32, 2, t) == packed(CopyResult.COMPLETED, 2)
    assert r.read(ri, 48, 2, t) == packed(CopyResult.COMPLETED, 1)
    rcx = r.cx()
    assert [load(rcx, p, STRING) for p in (32, 40, 48)] == words


def test_nested_streams_move_their_readable_ends() -> None:
    inner = U8S
    t = StreamType(inner)
    w, r = Guest(), Guest()
    ri0, wi = w.new(t)
    ri = transfer(w, r, ri0, t)
    x_ri, x_wi = w.new(inner)
    w.put(64, struct.pack("<I", x_ri))
    assert w.write(wi, 64, 1, t) == BLOCKED
    assert r.read(ri, 32, 1, t) == packed(CopyResult.COMPLETED, 1)
    with pytest.raises(Trap, match=f"unknown handle index {x_ri}"):
        w.end(x_ri)
    moved = struct.unpack("<I", r.get(32, 4))[0]
    end = r.end(moved)
    assert isinstance(end, ReadableStreamEnd) and end.shared is w.end(x_wi).shared


# ---------------------------------------------------------------------------
# Lifting and lowering stream handles


def test_lift_moves_the_readable_end_and_lower_adds_one() -> None:
    a, b = Guest(), Guest()
    ri, wi = a.new()
    shared = lift_stream(a.cx(), ri, U8S)
    assert shared is a.end(wi).shared
    assert len(a.inst.table) == 1
    bi = lower_stream(b.cx(), shared, U8S)
    assert b.end(bi).shared is shared and b.end(bi).state is CopyState.IDLE


def test_lift_traps() -> None:
    a = Guest()
    ri, wi = a.new()
    with pytest.raises(Trap, match=f"handle index {wi} is not a readable stream end"):
        lift_stream(a.cx(), wi, U8S)
    ri, wi = a.new()
    with pytest.raises(Trap, match="wrong readable stream end type"):
        lift_stream(a.cx(), ri, StreamType(U32))
    ri, wi = a.new()
    a.end(ri).join(WaitableSet())
    with pytest.raises(Trap, match="cannot lift stream while it's in a waitable set"):
        lift_stream(a.cx(), ri, U8S)
    ri, wi = a.new()
    assert a.read(ri, 0, 1) == BLOCKED
    with pytest.raises(Trap, match="cannot lift stream while a read is in progress"):
        lift_stream(a.cx(), ri, U8S)
    ri, wi = a.new()
    stream_drop_writable(a.inst, U8S, wi)
    assert a.read(ri, 0, 1) == packed(CopyResult.DROPPED, 0)
    with pytest.raises(
        Trap, match="cannot lift stream after being notified that the writable end dropped"
    ):
        lift_stream(a.cx(), ri, U8S)


def test_lowering_a_stream_of_another_type_is_a_host_error() -> None:
    a = Guest()
    with pytest.raises(TypeError, match="cannot be lowered"):
        lower_stream(a.cx(), SharedStream(U16), U8S)
    with pytest.raises(TypeError, match="expected a ReadableStream"):
        lower_stream(a.cx(), object(), U8S)  # type: ignore[arg-type]


def test_contexts_without_hooks_cannot_lift_streams() -> None:
    a = Guest()
    ri, _ = a.new()
    cx = LiftLowerContext(a.opts, a.inst)
    with pytest.raises(NotImplementedError, match="needs async value hooks"):
        lift_flat(cx, CoreValueIter([ri]), U8S)


# ---------------------------------------------------------------------------
# Host buffers


def test_host_writer_into_a_guest_reader_copies_bytes() -> None:
    g = Guest()
    shared = SharedStream(U8)
    ri = lower_stream(g.cx(), shared, U8S)
    assert g.read(ri, 100, 4) == BLOCKED
    src = HostReadableBuffer(U8, memoryview(b"abcdef"))
    done: list[CopyResult] = []
    copies: list[Any] = []
    shared.write(None, src, copies.append, done.append)
    assert done == [CopyResult.COMPLETED] and copies == []
    assert src.progress == 4 and bytes(src.unread()) == b"ef"
    assert g.get(100, 4) == b"abcd"
    assert g.event(ri)[2] == packed(CopyResult.COMPLETED, 4)


def test_guest_writer_into_a_host_reader_collects_bytes() -> None:
    g = Guest()
    ri, wi = g.new()
    shared = lift_stream(g.cx(), ri, U8S)
    g.put(200, b"0123456789")
    assert g.write(wi, 200, 10) == BLOCKED
    dst = HostWritableBuffer(U8, 6)
    reclaims: list[Any] = []
    done: list[CopyResult] = []
    shared.read(None, dst, reclaims.append, done.append)
    assert done == [CopyResult.COMPLETED]
    data = dst.values()
    assert type(data) is bytes and data == b"012345"
    dst2 = HostWritableBuffer(U8, 6)
    shared.read(None, dst2, reclaims.append, done.append)
    assert dst2.values() == b"6789"
    assert g.event(wi)[2] == packed(CopyResult.COMPLETED, 10)


def test_host_buffers_of_other_types_hold_values() -> None:
    g = Guest()
    t = StreamType(STRING)
    shared = SharedStream(STRING)
    ri = lower_stream(g.cx(), shared, t)
    assert g.read(ri, 64, 2, t) == BLOCKED
    done: list[CopyResult] = []
    shared.write(None, HostReadableBuffer(STRING, ["a", "β", "c"]), lambda r: None, done.append)
    assert [load(g.cx(), p, STRING) for p in (64, 72)] == ["a", "β"]
    ri2, wi2 = g.new(t)
    out = lift_stream(g.cx(), ri2, t)
    store(g.cx(), "x", STRING, 96)
    store(g.cx(), "yz", STRING, 104)
    assert g.write(wi2, 96, 2, t) == BLOCKED
    dst = HostWritableBuffer(STRING, 5)
    out.read(None, dst, lambda r: None, done.append)
    assert dst.values() == ["x", "yz"]
    assert done == [CopyResult.COMPLETED, CopyResult.COMPLETED]


def test_host_to_host_copies_of_any_type_are_allowed() -> None:
    shared = SharedStream(STRING)
    done: list[CopyResult] = []
    dst = HostWritableBuffer(STRING, 4)
    shared.read(None, dst, lambda r: None, done.append)
    shared.write(None, HostReadableBuffer(STRING, ["p", "q"]), lambda r: None, done.append)
    assert dst.values() == ["p", "q"] and done == [CopyResult.COMPLETED]


def test_host_buffers_for_unit_and_zero_length() -> None:
    src = HostReadableBuffer(None, [(), (), ()])
    dst = HostWritableBuffer(None, 2)
    dst.write_from(src, 2)
    assert dst.values() == [(), ()] and src.remain() == 1
    assert HostWritableBuffer(U8, 0).is_zero_length()
    assert HostReadableBuffer(U8, b"").is_zero_length()
    with pytest.raises(ValueError, match="negative capacity"):
        HostWritableBuffer(U8, -1)


def test_integer_copies_take_the_byte_path_and_others_the_value_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(self: object, n: int) -> Any:
        raise AssertionError("the value path was taken")

    monkeypatch.setattr(GuestReadableBuffer, "read", refuse)
    w, r, wi, ri = pair()
    w.put(200, b"fast")
    assert r.read(ri, 100, 4) == BLOCKED
    assert w.write(wi, 200, 4) == packed(CopyResult.COMPLETED, 4)
    assert r.get(100, 4) == b"fast"
    t = StreamType(STRING)
    w, r, wi, ri = pair(t)
    store(w.cx(), "slow", STRING, 200)
    assert r.read(ri, 100, 1, t) == BLOCKED
    with pytest.raises(AssertionError, match="the value path was taken"):
        w.write(wi, 200, 1, t)
