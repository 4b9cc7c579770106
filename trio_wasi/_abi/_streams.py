"""Streams and futures: shared state, the two ends, and their built-ins.

CanonicalABI.md "Stream State", "Future State", ``canon {stream,future}.new``,
``canon stream.{read,write}``, ``canon future.{read,write}``,
``canon {stream,future}.cancel-{read,write}`` and
``canon {stream,future}.drop-{readable,writable}``.

Rules:

* a stream or future made by ``stream.new``/``future.new`` is one shared
  object (:class:`SharedStream`, :class:`SharedFuture`) behind two handles, a
  readable and a writable end, each with its own :class:`CopyState`;
* a copy is a *rendezvous*: the first of a read and a write to arrive parks
  its buffer in the shared object (``pending_*``); the second copies directly
  between the two buffers, completes at once and notifies the first through
  its ``on_copy``/``on_copy_done`` callback, which sets the end's pending
  event. A stream copy moves ``min`` of what both sides have left; the parked
  side may take further copies into the same buffer until its event is
  delivered (``ReclaimBuffer``);
* zero-length copies: a zero-length write that meets a parked zero-length
  read completes and leaves the read parked; otherwise a side that meets a
  parked side with nothing left completes that one and parks itself;
* dropping an end notifies a parked copy of the *other* side with
  ``DROPPED`` (values copied before the drop still count in its progress);
  cancelling notifies one's *own* parked copy with ``CANCELLED``;
* an end may not be dropped while copying; a future's writable end may not be
  dropped before its value was written or the reader dropped (state DONE);
  after ``DROPPED`` (and after a future's completed copy) an end is DONE and
  cannot copy again;
* a copy result is ``CopyResult | progress << 4`` for streams and the bare
  ``CopyResult`` for futures;
* for now, a read and a write of the same stream or future may not both come
  from one component instance unless the element type is None or a number
  (the spec marks this rule temporary).

Host code may sit on either side of a stream by subclassing
:class:`ReadableStream`/:class:`ReadableFuture`, or by calling
:class:`SharedStream`/:class:`SharedFuture` with host buffers and instance
None. The built-ins that drive these objects are in :mod:`._stream_builtins`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import ClassVar, final

from ._buffers import Buffer, ReadableBuffer, WritableBuffer
from ._handles import InstanceState
from ._trap import trap
from ._types import (
    F32Type,
    F64Type,
    FutureType,
    S8Type,
    S16Type,
    S32Type,
    S64Type,
    StreamType,
    U8Type,
    U16Type,
    U32Type,
    U64Type,
    ValueType,
)
from ._waitables import Waitable

__all__ = [
    "CopyEnd",
    "CopyResult",
    "CopyState",
    "FutureEnd",
    "OnCopy",
    "OnCopyDone",
    "ReadableFuture",
    "ReadableFutureEnd",
    "ReadableStream",
    "ReadableStreamEnd",
    "ReclaimBuffer",
    "SharedBase",
    "SharedFuture",
    "SharedStream",
    "StreamEnd",
    "WritableFuture",
    "WritableFutureEnd",
    "WritableStream",
    "WritableStreamEnd",
    "none_or_number_type",
]


class CopyResult(enum.IntEnum):
    """How a copy ended (CanonicalABI.md "Stream State")."""

    COMPLETED = 0
    DROPPED = 1
    CANCELLED = 2


class CopyState(enum.Enum):
    """What one end of a stream or future is doing (CanonicalABI.md "Stream State")."""

    IDLE = 1
    COPYING = 2
    CANCELLING_COPY = 3
    DONE = 4


ReclaimBuffer = Callable[[], None]
OnCopy = Callable[[ReclaimBuffer], None]
OnCopyDone = Callable[[CopyResult], None]

_NUMBER_TYPES = (
    U8Type,
    U16Type,
    U32Type,
    U64Type,
    S8Type,
    S16Type,
    S32Type,
    S64Type,
    F32Type,
    F64Type,
)


def none_or_number_type(t: ValueType | None) -> bool:
    """Whether ``t`` is absent or a number type (``none_or_number_type``)."""
    return t is None or isinstance(t, _NUMBER_TYPES)


# ---------------------------------------------------------------------------
# The shared state behind both ends


class SharedBase:
    """What both ends of a stream or future share (the spec's ``SharedBase``).

    ``t`` is the element type (None for none).
    """

    __slots__ = ()

    t: ValueType | None

    def cancel(self) -> None:
        """Cancel the copy in progress of the end calling it."""
        raise NotImplementedError

    def drop(self) -> None:
        """Note that one end was dropped."""
        raise NotImplementedError


class ReadableStream(SharedBase):
    """The readable side of a stream; host streams passed into guests implement this."""

    __slots__ = ()

    def read(
        self,
        inst: InstanceState | None,
        dst: WritableBuffer,
        on_copy: OnCopy,
        on_copy_done: OnCopyDone,
    ) -> None:
        """Start reading into ``dst``; never blocks, reports through the callbacks."""
        raise NotImplementedError


class WritableStream(SharedBase):
    """The writable side of a stream."""

    __slots__ = ()

    def write(
        self,
        inst: InstanceState | None,
        src: ReadableBuffer,
        on_copy: OnCopy,
        on_copy_done: OnCopyDone,
    ) -> None:
        """Start writing from ``src``; never blocks, reports through the callbacks."""
        raise NotImplementedError


class ReadableFuture(SharedBase):
    """The readable side of a future; host futures passed into guests implement this."""

    __slots__ = ()

    def read(
        self, inst: InstanceState | None, dst: WritableBuffer, on_copy_done: OnCopyDone
    ) -> None:
        """Start reading the value into ``dst`` (room for exactly one)."""
        raise NotImplementedError


class WritableFuture(SharedBase):
    """The writable side of a future."""

    __slots__ = ()

    def write(
        self, inst: InstanceState | None, src: ReadableBuffer, on_copy_done: OnCopyDone
    ) -> None:
        """Start writing the value in ``src`` (exactly one)."""
        raise NotImplementedError


class _Rendezvous(SharedBase):
    """The parked copy and drop flag that :class:`SharedStream` and :class:`SharedFuture` share.

    Subclasses say how to forget the parked copy (``reset_pending``).
    """

    __slots__ = ("dropped", "pending_buffer", "pending_inst", "pending_on_copy_done", "t")

    def __init__(self, t: ValueType | None) -> None:
        self.t = t
        self.dropped = False
        self.pending_inst: InstanceState | None = None
        self.pending_buffer: Buffer | None = None
        self.pending_on_copy_done: OnCopyDone | None = None

    def __repr__(self) -> str:
        state = "dropped" if self.dropped else "open"
        return f"<{type(self).__name__} {self.t!r} {state} pending={self.pending_buffer!r}>"

    def reset_pending(self) -> None:
        """Forget the parked copy."""
        raise NotImplementedError

    def reset_and_notify_pending(self, result: CopyResult) -> None:
        """Finish the parked copy with ``result``."""
        on_copy_done = self.pending_on_copy_done
        assert on_copy_done is not None
        self.reset_pending()
        on_copy_done(result)

    def cancel(self) -> None:
        self.reset_and_notify_pending(CopyResult.CANCELLED)

    def drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            if self.pending_buffer is not None:
                self.reset_and_notify_pending(CopyResult.DROPPED)


@final
class SharedStream(ReadableStream, WritableStream, _Rendezvous):
    """The state of a stream made by ``stream.new`` (the spec's ``SharedStreamImpl``)."""

    __slots__ = ("pending_on_copy",)

    def __init__(self, t: ValueType | None) -> None:
        super().__init__(t)
        self.pending_on_copy: OnCopy | None = None

    def reset_pending(self) -> None:
        """Forget the parked copy."""
        self.set_pending(None, None, None, None)

    def set_pending(
        self,
        inst: InstanceState | None,
        buffer: Buffer | None,
        on_copy: OnCopy | None,
        on_copy_done: OnCopyDone | None,
    ) -> None:
        """Park a copy until the other side arrives."""
        self.pending_inst = inst
        self.pending_buffer = buffer
        self.pending_on_copy = on_copy
        self.pending_on_copy_done = on_copy_done

    def read(
        self,
        inst: InstanceState | None,
        dst: WritableBuffer,
        on_copy: OnCopy,
        on_copy_done: OnCopyDone,
    ) -> None:
        if self.dropped:
            on_copy_done(CopyResult.DROPPED)
            return
        src = self.pending_buffer
        if src is None:
            self.set_pending(inst, dst, on_copy, on_copy_done)
            return
        assert isinstance(src, ReadableBuffer)
        t = self.t  # (compared by identity first: usually the same object)
        assert (t is dst.t or t == dst.t) and (t is src.t or t == src.t)
        if inst is not None and inst is self.pending_inst and not none_or_number_type(t):
            trap("cannot read from and write to intra-component stream")
        src_remain = src.remain()
        if src_remain > 0:
            dst_remain = dst.remain()
            if dst_remain > 0:
                dst.write_from(src, min(dst_remain, src_remain))
                pending_on_copy = self.pending_on_copy
                assert pending_on_copy is not None
                pending_on_copy(self.reset_pending)
            on_copy_done(CopyResult.COMPLETED)
        else:
            self.reset_and_notify_pending(CopyResult.COMPLETED)
            self.set_pending(inst, dst, on_copy, on_copy_done)

    def write(
        self,
        inst: InstanceState | None,
        src: ReadableBuffer,
        on_copy: OnCopy,
        on_copy_done: OnCopyDone,
    ) -> None:
        if self.dropped:
            on_copy_done(CopyResult.DROPPED)
            return
        dst = self.pending_buffer
        if dst is None:
            self.set_pending(inst, src, on_copy, on_copy_done)
            return
        assert isinstance(dst, WritableBuffer)
        t = self.t  # (compared by identity first: usually the same object)
        assert (t is src.t or t == src.t) and (t is dst.t or t == dst.t)
        if inst is not None and inst is self.pending_inst and not none_or_number_type(t):
            trap("cannot read from and write to intra-component stream")
        dst_remain = dst.remain()
        if dst_remain > 0:
            src_remain = src.remain()
            if src_remain > 0:
                dst.write_from(src, min(dst_remain, src_remain))
                pending_on_copy = self.pending_on_copy
                assert pending_on_copy is not None
                pending_on_copy(self.reset_pending)
            on_copy_done(CopyResult.COMPLETED)
        elif src.is_zero_length() and dst.is_zero_length():
            # A zero-length write completes and leaves the zero-length read parked.
            on_copy_done(CopyResult.COMPLETED)
        else:
            self.reset_and_notify_pending(CopyResult.COMPLETED)
            self.set_pending(inst, src, on_copy, on_copy_done)


@final
class SharedFuture(ReadableFuture, WritableFuture, _Rendezvous):
    """The state of a future made by ``future.new`` (the spec's ``SharedFutureImpl``)."""

    __slots__ = ()

    def reset_pending(self) -> None:
        """Forget the parked copy."""
        self.set_pending(None, None, None)

    def set_pending(
        self,
        inst: InstanceState | None,
        buffer: Buffer | None,
        on_copy_done: OnCopyDone | None,
    ) -> None:
        """Park a copy until the other side arrives."""
        self.pending_inst = inst
        self.pending_buffer = buffer
        self.pending_on_copy_done = on_copy_done

    def drop(self) -> None:
        # Only a parked write can outlive the other end's drop: the writable
        # end cannot be dropped before it is DONE.
        assert self.pending_buffer is None or isinstance(self.pending_buffer, ReadableBuffer)
        super().drop()

    def read(
        self, inst: InstanceState | None, dst: WritableBuffer, on_copy_done: OnCopyDone
    ) -> None:
        assert not self.dropped and dst.remain() == 1
        src = self.pending_buffer
        if src is None:
            self.set_pending(inst, dst, on_copy_done)
            return
        assert isinstance(src, ReadableBuffer)
        if inst is not None and inst is self.pending_inst and not none_or_number_type(self.t):
            trap("cannot read from and write to intra-component future")
        dst.write_from(src, 1)
        self.reset_and_notify_pending(CopyResult.COMPLETED)
        on_copy_done(CopyResult.COMPLETED)

    def write(
        self, inst: InstanceState | None, src: ReadableBuffer, on_copy_done: OnCopyDone
    ) -> None:
        assert src.remain() == 1
        if self.dropped:
            on_copy_done(CopyResult.DROPPED)
            return
        dst = self.pending_buffer
        if dst is None:
            self.set_pending(inst, src, on_copy_done)
            return
        assert isinstance(dst, WritableBuffer)
        if inst is not None and inst is self.pending_inst and not none_or_number_type(self.t):
            trap("cannot read from and write to intra-component future")
        dst.write_from(src, 1)
        self.reset_and_notify_pending(CopyResult.COMPLETED)
        on_copy_done(CopyResult.COMPLETED)


# ---------------------------------------------------------------------------
# The ends (handle table entries)


class CopyEnd(Waitable):
    """One end of a stream or future: a waitable with a copy state (the spec's ``CopyEnd``)."""

    __slots__ = ("shared", "state")

    # How trap messages name this end, and what dropping it while busy says.
    KIND: ClassVar[str] = "stream or future end"
    BUSY_DROP: ClassVar[str] = "cannot drop busy end"

    def __init__(self, shared: SharedBase) -> None:
        # (Waitable.__init__, inline: two ends are made per stream or future.)
        self._pending = None
        self.wset = None
        self.has_sync_waiter = False
        self.sync_waker = None
        self.state = CopyState.IDLE
        self.shared = shared

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.state.name} of {self.shared!r}>"

    @property
    def element(self) -> ValueType | None:
        """The element type the end was created for."""
        return self.shared.t

    def copying(self) -> bool:
        """Whether a copy is in progress or being cancelled."""
        return self.state is CopyState.COPYING or self.state is CopyState.CANCELLING_COPY

    def drop(self) -> None:
        state = self.state
        if state is CopyState.COPYING or state is CopyState.CANCELLING_COPY:
            trap(self.BUSY_DROP)
        self.shared.drop()
        # (Waitable.drop, inline)
        assert not self.has_sync_waiter
        if self.wset is not None:
            self.join(None)


class StreamEnd(CopyEnd):
    """Either end of a stream."""

    __slots__ = ()

    @property
    def type(self) -> StreamType:
        """The ``stream<T>`` type the end was created for."""
        return StreamType(self.shared.t)

    def copy(
        self,
        inst: InstanceState | None,
        buffer: Buffer,
        on_copy: OnCopy,
        on_copy_done: OnCopyDone,
    ) -> None:
        raise NotImplementedError


class FutureEnd(CopyEnd):
    """Either end of a future."""

    __slots__ = ()

    @property
    def type(self) -> FutureType:
        """The ``future<T>`` type the end was created for."""
        return FutureType(self.shared.t)

    def copy(self, inst: InstanceState | None, buffer: Buffer, on_copy_done: OnCopyDone) -> None:
        raise NotImplementedError


@final
class ReadableStreamEnd(StreamEnd):
    """The readable end of a stream in a handle table (``ReadableStreamEnd``)."""

    __slots__ = ()

    KIND = "readable stream end"
    BUSY_DROP = "cannot remove busy stream"
    shared: ReadableStream

    def copy(
        self,
        inst: InstanceState | None,
        buffer: Buffer,
        on_copy: OnCopy,
        on_copy_done: OnCopyDone,
    ) -> None:
        """Read into ``buffer``."""
        assert isinstance(buffer, WritableBuffer)
        self.shared.read(inst, buffer, on_copy, on_copy_done)


@final
class WritableStreamEnd(StreamEnd):
    """The writable end of a stream in a handle table (``WritableStreamEnd``)."""

    __slots__ = ()

    KIND = "writable stream end"
    BUSY_DROP = "cannot drop busy stream"
    shared: WritableStream

    def copy(
        self,
        inst: InstanceState | None,
        buffer: Buffer,
        on_copy: OnCopy,
        on_copy_done: OnCopyDone,
    ) -> None:
        """Write from ``buffer``."""
        assert isinstance(buffer, ReadableBuffer)
        self.shared.write(inst, buffer, on_copy, on_copy_done)


@final
class ReadableFutureEnd(FutureEnd):
    """The readable end of a future in a handle table (``ReadableFutureEnd``)."""

    __slots__ = ()

    KIND = "readable future end"
    BUSY_DROP = "cannot remove busy future"
    shared: ReadableFuture

    def copy(self, inst: InstanceState | None, buffer: Buffer, on_copy_done: OnCopyDone) -> None:
        """Read the value into ``buffer``."""
        assert isinstance(buffer, WritableBuffer)
        self.shared.read(inst, buffer, on_copy_done)


@final
class WritableFutureEnd(FutureEnd):
    """The writable end of a future in a handle table (``WritableFutureEnd``).

    It may be dropped only once DONE: after its value was written, or after
    it learnt that the reader dropped.
    """

    __slots__ = ()

    KIND = "writable future end"
    BUSY_DROP = "cannot drop busy future"
    shared: WritableFuture

    def copy(self, inst: InstanceState | None, buffer: Buffer, on_copy_done: OnCopyDone) -> None:
        """Write the value in ``buffer``."""
        assert isinstance(buffer, ReadableBuffer)
        self.shared.write(inst, buffer, on_copy_done)

    def drop(self) -> None:
        if self.state is not CopyState.DONE:
            trap("cannot drop future write end without first writing a value")
        super().drop()
