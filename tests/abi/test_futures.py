"""Futures: rendezvous, the futures-must-write rule, drop, cancel, traps, host buffers, transfer."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from trio_wasi._abi import (
    CHAR,
    GUEST_ASYNC_VALUES,
    STRING,
    U8,
    U32,
    BytesMemory,
    CanonOptions,
    CopyResult,
    CopyState,
    CoreValueIter,
    FutureType,
    HostReadableBuffer,
    HostWritableBuffer,
    InstanceState,
    LiftLowerContext,
    ReadableFutureEnd,
    SharedFuture,
    WritableFutureEnd,
    future_cancel_read,
    future_cancel_write,
    future_drop_readable,
    future_drop_writable,
    future_new,
    future_read,
    future_write,
    lift_flat,
    lift_future,
    load,
    lower_flat,
    lower_future,
    store,
)
from trio_wasi._abi._waitables import BLOCKED, EventCode, Waitable, WaitableSet
from trio_wasi._errors import Trap

U32F = FutureType(U32)
COMPLETED, DROPPED, CANCELLED = (int(r) for r in CopyResult)


def no_wait(e: Waitable) -> None:
    raise AssertionError("an asynchronous copy must not block")


class Guest:
    """One component instance with a memory, a bump allocator and options."""

    def __init__(self, encoding: str = "utf8") -> None:
        self.inst = InstanceState()
        self.memory = BytesMemory()
        self.top = 1024
        self.opts = CanonOptions(
            memory=self.memory,
            string_encoding=encoding,  # type: ignore[arg-type]
            realloc=self.realloc,
        )

    def realloc(self, old: int, old_size: int, align: int, new_size: int) -> int:
        assert old == 0
        ptr = (self.top + align - 1) & -align
        self.top = ptr + new_size
        return ptr

    def cx(self) -> LiftLowerContext:
        return LiftLowerContext(self.opts, self.inst, hooks=GUEST_ASYNC_VALUES)

    def u32(self, ptr: int, v: int | None = None) -> int:
        view = self.memory.view()
        if v is not None:
            struct.pack_into("<I", view, ptr, v)
        return int(struct.unpack_from("<I", view, ptr)[0])

    def new(self, t: FutureType = U32F) -> tuple[int, int]:
        packed = future_new(self.inst, t)
        return packed & 0xFFFFFFFF, packed >> 32

    def read(self, i: int, ptr: int, t: FutureType = U32F, **kw: Any) -> int:
        kw.setdefault("is_async", True)
        kw.setdefault("wait", no_wait)
        return future_read(self.inst, t, self.opts, i, ptr, **kw)

    def write(self, i: int, ptr: int, t: FutureType = U32F, **kw: Any) -> int:
        kw.setdefault("is_async", True)
        kw.setdefault("wait", no_wait)
        return future_write(self.inst, t, self.opts, i, ptr, **kw)

    def end(self, i: int) -> Any:
        return self.inst.table.get(i)

    def event(self, i: int) -> tuple[int, int, int]:
        e = self.end(i)
        assert e.has_pending_event()
        return e.get_pending_event()  # type: ignore[no-any-return]


def pair(t: FutureType = U32F) -> tuple[Guest, Guest, int, int]:
    """A writer guest holding the writable end, a reader guest holding the readable end."""
    w, r = Guest(), Guest()
    ri, wi = w.new(t)
    shared = lift_flat(w.cx(), CoreValueIter([ri]), t)
    [index] = lower_flat(r.cx(), shared, t)
    return w, r, wi, int(index)


def test_future_new_packs_both_ends() -> None:
    g = Guest()
    ri, wi = g.new()
    r, w = g.end(ri), g.end(wi)
    assert isinstance(r, ReadableFutureEnd) and isinstance(w, WritableFutureEnd)
    assert isinstance(r.shared, SharedFuture) and g.end(ri).shared is g.end(wi).shared
    assert r.type == U32F
    g.inst.may_leave = False
    with pytest.raises(Trap, match="cannot leave component instance"):
        g.new()


def test_reader_first() -> None:
    w, r, wi, ri = pair()
    assert r.read(ri, 16) == BLOCKED
    w.u32(32, 0xDEADBEEF)
    assert w.write(wi, 32) == COMPLETED
    assert w.end(wi).state is CopyState.DONE
    assert r.event(ri) == (EventCode.FUTURE_READ, ri, COMPLETED)
    assert r.end(ri).state is CopyState.DONE
    assert r.u32(16) == 0xDEADBEEF
    future_drop_writable(w.inst, U32F, wi)
    future_drop_readable(r.inst, U32F, ri)


def test_writer_first() -> None:
    w, r, wi, ri = pair()
    w.u32(32, 7)
    assert w.write(wi, 32) == BLOCKED
    assert r.read(ri, 16) == COMPLETED
    assert r.u32(16) == 7
    assert w.event(wi) == (EventCode.FUTURE_WRITE, wi, COMPLETED)
    assert w.end(wi).state is CopyState.DONE


def test_string_future_between_encodings() -> None:
    t = FutureType(STRING)
    w, r = Guest("latin1+utf16"), Guest("utf16")
    ri0, wi = w.new(t)
    ri = lower_future(r.cx(), lift_future(w.cx(), ri0, t), t)
    store(w.cx(), "ça va ✓", STRING, 32)
    assert r.read(ri, 64, t) == BLOCKED
    assert w.write(wi, 32, t) == COMPLETED
    assert load(r.cx(), 64, STRING) == "ça va ✓"


def test_synchronous_read_waits() -> None:
    w, r, wi, ri = pair()

    def wait(e: Waitable) -> None:
        assert e.has_sync_waiter
        w.u32(32, 99)
        assert w.write(wi, 32) == COMPLETED

    assert r.read(ri, 16, is_async=False, wait=wait) == COMPLETED
    assert r.u32(16) == 99


# ---------------------------------------------------------------------------
# Dropping: futures must write


def test_the_writable_end_cannot_be_dropped_before_writing() -> None:
    w, _, wi, _ = pair()
    with pytest.raises(Trap, match="cannot drop future write end without first writing a value"):
        future_drop_writable(w.inst, U32F, wi)


def test_the_writable_end_cannot_be_dropped_while_writing() -> None:
    w, _, wi, _ = pair()
    assert w.write(wi, 32) == BLOCKED
    with pytest.raises(Trap, match="cannot drop future write end without first writing a value"):
        future_drop_writable(w.inst, U32F, wi)


def test_reader_dropped_before_the_write() -> None:
    w, r, wi, ri = pair()
    future_drop_readable(r.inst, U32F, ri)
    assert w.write(wi, 32) == DROPPED
    assert w.end(wi).state is CopyState.DONE
    with pytest.raises(
        Trap,
        match="cannot write to future after previous write succeeded or readable end dropped",
    ):
        w.write(wi, 32)
    future_drop_writable(w.inst, U32F, wi)
    assert len(w.inst.table) == 0


def test_reader_dropped_while_the_write_is_parked() -> None:
    w, r, wi, ri = pair()
    assert w.write(wi, 32) == BLOCKED
    future_drop_readable(r.inst, U32F, ri)
    assert w.event(wi) == (EventCode.FUTURE_WRITE, wi, DROPPED)
    assert w.end(wi).state is CopyState.DONE
    future_drop_writable(w.inst, U32F, wi)


def test_dropping_a_busy_readable_end_traps() -> None:
    _, r, _, ri = pair()
    assert r.read(ri, 16) == BLOCKED
    with pytest.raises(Trap, match="cannot remove busy future"):
        future_drop_readable(r.inst, U32F, ri)


def test_copies_after_completion_trap() -> None:
    w, r, wi, ri = pair()
    assert w.write(wi, 32) == BLOCKED
    assert r.read(ri, 16) == COMPLETED
    assert w.event(wi)[2] == COMPLETED
    with pytest.raises(Trap, match="cannot read from future after previous read succeeded"):
        r.read(ri, 16)
    with pytest.raises(Trap, match="cannot write to future after previous write succeeded"):
        w.write(wi, 32)
    with pytest.raises(Trap, match="cannot lift future after previous read succeeded"):
        lift_future(r.cx(), ri, U32F)


# ---------------------------------------------------------------------------
# Cancelling


def test_cancel_read_then_read_again() -> None:
    w, r, wi, ri = pair()
    assert r.read(ri, 16) == BLOCKED
    assert future_cancel_read(r.inst, U32F, ri, is_async=True, wait=no_wait) == CANCELLED
    assert r.end(ri).state is CopyState.IDLE
    w.u32(32, 5)
    assert w.write(wi, 32) == BLOCKED
    assert r.read(ri, 20) == COMPLETED
    assert r.u32(20) == 5


def test_cancel_write_leaves_the_writer_owing_a_value() -> None:
    w, _, wi, _ = pair()
    assert w.write(wi, 32) == BLOCKED
    assert future_cancel_write(w.inst, U32F, wi, is_async=False, wait=no_wait) == CANCELLED
    assert w.end(wi).state is CopyState.IDLE
    with pytest.raises(Trap, match="cannot drop future write end"):
        future_drop_writable(w.inst, U32F, wi)


def test_cancel_after_completion_returns_the_completion() -> None:
    w, r, wi, ri = pair()
    assert w.write(wi, 32) == BLOCKED
    assert r.read(ri, 16) == COMPLETED
    assert future_cancel_write(w.inst, U32F, wi, is_async=True, wait=no_wait) == COMPLETED
    assert w.end(wi).state is CopyState.DONE


def test_cancel_traps() -> None:
    w, r, wi, ri = pair()
    with pytest.raises(Trap, match="no future read in progress to cancel"):
        future_cancel_read(r.inst, U32F, ri, is_async=True, wait=no_wait)
    with pytest.raises(Trap, match=f"handle index {wi} is not a readable future end"):
        future_cancel_read(w.inst, U32F, wi, is_async=True, wait=no_wait)
    with pytest.raises(Trap, match="wrong writable future end type"):
        future_cancel_write(w.inst, FutureType(U8), wi, is_async=True, wait=no_wait)
    w.inst.may_leave = False
    with pytest.raises(Trap, match="cannot leave component instance"):
        future_cancel_write(w.inst, U32F, wi, is_async=True, wait=no_wait)


# ---------------------------------------------------------------------------
# Traps of future.read / future.write


def test_copy_traps() -> None:
    w, r, wi, ri = pair()
    with pytest.raises(Trap, match=f"handle index {ri} is not a writable future end"):
        r.write(ri, 0)
    with pytest.raises(Trap, match="wrong readable future end type"):
        r.read(ri, 0, FutureType(None))
    with pytest.raises(Trap, match="unaligned pointer"):
        r.read(ri, 2)
    with pytest.raises(Trap, match="buffer out-of-bounds of memory"):
        r.read(ri, 65536)
    assert r.read(ri, 0) == BLOCKED
    with pytest.raises(Trap, match="cannot start a future read while one is in progress"):
        r.read(ri, 0)
    w.end(wi).join(WaitableSet())
    with pytest.raises(Trap, match="cannot be used synchronously while added to a waitable set"):
        w.write(wi, 0, is_async=False)


@pytest.mark.parametrize("reader_first", [True, False])
def test_same_instance_char_futures_trap(reader_first: bool) -> None:
    g = Guest()
    t = FutureType(CHAR)
    ri, wi = g.new(t)
    first, second = (g.read, g.write) if reader_first else (g.write, g.read)
    assert first(ri if reader_first else wi, 0, t) == BLOCKED
    with pytest.raises(Trap, match="cannot read from and write to intra-component future"):
        second(wi if reader_first else ri, 4, t)


@pytest.mark.parametrize("element", [None, U8])
def test_same_instance_unit_and_number_futures_work(element: Any) -> None:
    g = Guest()
    t = FutureType(element)
    ri, wi = g.new(t)
    g.memory.view()[8] = 42
    assert g.read(ri, 9, t) == BLOCKED
    assert g.write(wi, 8, t) == COMPLETED
    if element is not None:
        assert g.memory.view()[9] == 42


def test_lift_traps_while_reading_or_in_a_set() -> None:
    g = Guest()
    ri, _ = g.new()
    g.end(ri).join(WaitableSet())
    with pytest.raises(Trap, match="cannot lift future while it's in a waitable set"):
        lift_future(g.cx(), ri, U32F)
    ri, wi = g.new()
    with pytest.raises(Trap, match=f"handle index {wi} is not a readable future end"):
        lift_future(g.cx(), wi, U32F)


# ---------------------------------------------------------------------------
# Host sides


def test_host_writes_into_a_guest_reader() -> None:
    g = Guest()
    shared = SharedFuture(U32)
    ri = lower_future(g.cx(), shared, U32F)
    assert g.read(ri, 16) == BLOCKED
    done: list[CopyResult] = []
    shared.write(None, HostReadableBuffer(U32, [123456]), done.append)
    assert done == [CopyResult.COMPLETED]
    assert g.u32(16) == 123456
    assert g.event(ri)[2] == COMPLETED


def test_host_reads_from_a_guest_writer() -> None:
    g = Guest()
    ri, wi = g.new(FutureType(U8))
    shared = lift_future(g.cx(), ri, FutureType(U8))
    dst = HostWritableBuffer(U8, 1)
    done: list[CopyResult] = []
    shared.read(None, dst, done.append)
    g.memory.view()[40] = 200
    assert g.write(wi, 40, FutureType(U8)) == COMPLETED
    assert done == [CopyResult.COMPLETED] and dst.values() == b"\xc8"
