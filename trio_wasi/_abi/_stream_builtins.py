"""The stream, future and error-context built-ins, and lifting/lowering their values.

CanonicalABI.md ``canon {stream,future}.new``, ``canon stream.{read,write}``,
``canon future.{read,write}``, ``canon {stream,future}.cancel-{read,write}``,
``canon {stream,future}.drop-{readable,writable}``, and ``lift_stream``,
``lift_future``, ``lift_async_value``, ``lower_stream``, ``lower_future``.

Each built-in is a function of the calling instance and its immediates, so
the scheduler supplies the instance of the current task. Where the
specification blocks the current thread (a synchronous copy or cancel that
cannot finish at once), the built-in calls ``wait(end)``: the scheduler blocks
until ``end.has_pending_event()``. ``end.has_sync_waiter`` is set meanwhile,
so the end cannot be joined to a waitable set or cancelled by another thread.

Checks, in the order of the specification: ``may_leave``; the handle is the
right kind of end; its element type is the built-in's; a copy needs an IDLE
end (a DONE one traps with the message wasmtime uses), a cancel a COPYING one;
an end in a waitable set may only be used asynchronously.

Lifting a stream or future moves the readable end out of the caller's table
(it must be IDLE and in no waitable set); lowering adds a new readable end to
the callee's. :class:`GuestAsyncValues` is the :class:`AsyncValueHooks` for
guest-to-guest transfer; host-facing hooks are the caller's choice.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast, final

from ._buffers import Buffer, GuestReadableBuffer, GuestWritableBuffer
from ._errorctx import ErrorContext, lift_error_context, lower_error_context
from ._handles import InstanceState
from ._options import AsyncValueHooks, CanonOptions, LiftLowerContext
from ._streams import (
    CopyEnd,
    CopyResult,
    CopyState,
    FutureEnd,
    ReadableFuture,
    ReadableFutureEnd,
    ReadableStream,
    ReadableStreamEnd,
    ReclaimBuffer,
    SharedBase,
    SharedFuture,
    SharedStream,
    StreamEnd,
    WritableFutureEnd,
    WritableStreamEnd,
)
from ._trap import trap, trap_if
from ._types import FutureType, StreamType, ValueType, describe_value_type
from ._waitables import BLOCKED, EventCode, EventTuple, Waitable

__all__ = [
    "GUEST_ASYNC_VALUES",
    "GuestAsyncValues",
    "Wait",
    "cancel_copy",
    "copy_builtin",
    "drop_builtin",
    "drop_end",
    "future_cancel_read",
    "future_cancel_write",
    "future_copy",
    "future_drop_readable",
    "future_drop_writable",
    "future_new",
    "future_read",
    "future_write",
    "lift_async_value",
    "lift_future",
    "lift_stream",
    "lower_future",
    "lower_stream",
    "stream_cancel_read",
    "stream_cancel_write",
    "stream_copy",
    "stream_drop_readable",
    "stream_drop_writable",
    "stream_new",
    "stream_read",
    "stream_write",
]

Wait = Callable[[Waitable], None]
"""Blocks the calling thread until the waitable has a pending event."""

StreamEndClass = type[ReadableStreamEnd] | type[WritableStreamEnd]
FutureEndClass = type[ReadableFutureEnd] | type[WritableFutureEnd]
GuestBufferClass = type[GuestReadableBuffer] | type[GuestWritableBuffer]

# Trap messages for a copy on an end that is DONE, as wasmtime words them.
_DONE_MESSAGES: dict[type[CopyEnd], str] = {
    ReadableStreamEnd: "cannot read from stream after being notified that the writable end dropped",
    WritableStreamEnd: "cannot write to stream after being notified that the readable end dropped",
    ReadableFutureEnd: "cannot read from future after previous read succeeded",
    WritableFutureEnd: (
        "cannot write to future after previous write succeeded or readable end dropped"
    ),
}
_VERBS: dict[type[CopyEnd], str] = {
    ReadableStreamEnd: "stream read",
    WritableStreamEnd: "stream write",
    ReadableFutureEnd: "future read",
    WritableFutureEnd: "future write",
}


def stream_new(inst: InstanceState, t: StreamType) -> int:
    """``canon stream.new``: both ends in ``inst``'s table, packed ``ri | wi << 32``."""
    if not inst.may_leave:
        trap("cannot leave component instance")
    shared = SharedStream(t.element)
    ri = inst.table.add(ReadableStreamEnd(shared))
    wi = inst.table.add(WritableStreamEnd(shared))
    return ri | (wi << 32)


def future_new(inst: InstanceState, t: FutureType) -> int:
    """``canon future.new``: both ends in ``inst``'s table, packed ``ri | wi << 32``."""
    if not inst.may_leave:
        trap("cannot leave component instance")
    shared = SharedFuture(t.element)
    ri = inst.table.add(ReadableFutureEnd(shared))
    wi = inst.table.add(WritableFutureEnd(shared))
    return ri | (wi << 32)


def _end_for_copy(
    inst: InstanceState,
    end_cls: type[CopyEnd],
    element: ValueType | None,
    i: int,
    is_async: bool,
) -> CopyEnd:
    """The end ``i`` checked as ``stream_copy``/``future_copy`` check it."""
    if not inst.may_leave:
        trap("cannot leave component instance")
    e = inst.table.get(i)
    if not isinstance(e, end_cls):
        trap(f"handle index {i} is not a {end_cls.KIND}")
    et = e.shared.t
    if et is not element and et != element:
        trap(f"handle index {i} used with the wrong {end_cls.KIND} type")
    if e.state is not CopyState.IDLE:
        if e.state is CopyState.DONE:
            trap(_DONE_MESSAGES[end_cls])
        trap(
            "cannot have concurrent operations active on a future/stream "
            f"(cannot start a {_VERBS[end_cls]} while one is in progress)"
        )
    if not is_async and e.in_waitable_set():
        trap("waitable cannot be used synchronously while added to a waitable set")
    return e


def _wait_for_pending_event(e: Waitable, wait: Wait) -> None:
    """Block on ``e`` alone (``Waitable.wait_for_pending_event``)."""
    assert not e.in_waitable_set() and not e.has_sync_waiter
    e.has_sync_waiter = True
    try:
        wait(e)
    finally:
        e.has_sync_waiter = False
    assert e.has_pending_event()


def _finish(e: CopyEnd, is_async: bool, wait: Wait) -> int:
    if not e.has_pending_event():
        if not is_async:
            _wait_for_pending_event(e, wait)
        else:
            return BLOCKED
    _code, _index, payload = e.get_pending_event()
    return payload


def stream_copy(
    inst: InstanceState,
    end_cls: StreamEndClass,
    buffer_cls: GuestBufferClass,
    event_code: EventCode,
    t: StreamType,
    opts: CanonOptions,
    i: int,
    ptr: int,
    n: int,
    *,
    is_async: bool,
    wait: Wait,
    hooks: AsyncValueHooks | None = None,
) -> int:
    """``canon stream.read``/``stream.write`` (``stream_copy``).

    Returns ``CopyResult | progress << 4``, or ``BLOCKED`` when ``is_async``
    and the copy did not finish at once (the result then comes as an event).
    A synchronous copy that cannot finish calls ``wait(end)``. ``hooks`` lift
    and lower handle-typed elements (default: guest to guest).
    """
    e = _end_for_copy(inst, end_cls, t.element, i, is_async)
    assert isinstance(e, StreamEnd)
    cx = LiftLowerContext(opts, inst, None, hooks=hooks or GUEST_ASYNC_VALUES)
    buffer = buffer_cls(t.element, cx, ptr & 0xFFFFFFFF, n & 0xFFFFFFFF)

    def stream_event(result: CopyResult, reclaim_buffer: ReclaimBuffer) -> EventTuple:
        reclaim_buffer()
        assert e.copying()
        if result is CopyResult.COMPLETED and e.state is CopyState.CANCELLING_COPY:
            # A cancel that finds progress not yet delivered reports it as
            # cancelled with that progress (the suite's cancel-stream.wast).
            result = CopyResult.CANCELLED
        e.state = CopyState.DONE if result is CopyResult.DROPPED else CopyState.IDLE
        assert buffer.progress <= Buffer.MAX_LENGTH
        return (event_code, i, int(result) | (buffer.progress << 4))

    def on_copy(reclaim_buffer: ReclaimBuffer) -> None:
        e.set_pending_event(lambda: stream_event(CopyResult.COMPLETED, reclaim_buffer))

    def on_copy_done(result: CopyResult) -> None:
        e.set_pending_event(lambda: stream_event(result, _no_reclaim))

    e.state = CopyState.COPYING
    e.copy(inst, buffer, on_copy, on_copy_done)
    return _finish(e, is_async, wait)


def _no_reclaim() -> None:
    pass


def future_copy(
    inst: InstanceState,
    end_cls: FutureEndClass,
    buffer_cls: GuestBufferClass,
    event_code: EventCode,
    t: FutureType,
    opts: CanonOptions,
    i: int,
    ptr: int,
    *,
    is_async: bool,
    wait: Wait,
    hooks: AsyncValueHooks | None = None,
) -> int:
    """``canon future.read``/``future.write`` (``future_copy``).

    Returns the ``CopyResult``, or ``BLOCKED`` as :func:`stream_copy` does.
    """
    e = _end_for_copy(inst, end_cls, t.element, i, is_async)
    assert isinstance(e, FutureEnd)
    cx = LiftLowerContext(opts, inst, None, hooks=hooks or GUEST_ASYNC_VALUES)
    buffer = buffer_cls(t.element, cx, ptr & 0xFFFFFFFF, 1)

    def future_event(result: CopyResult) -> EventTuple:
        assert (buffer.remain() == 0) == (result is CopyResult.COMPLETED)
        assert e.copying()
        if result is CopyResult.DROPPED or result is CopyResult.COMPLETED:
            e.state = CopyState.DONE
        else:
            e.state = CopyState.IDLE
        return (event_code, i, int(result))

    def on_copy_done(result: CopyResult) -> None:
        assert result is not CopyResult.DROPPED or event_code == EventCode.FUTURE_WRITE
        e.set_pending_event(lambda: future_event(result))

    e.state = CopyState.COPYING
    e.copy(inst, buffer, on_copy_done)
    return _finish(e, is_async, wait)


def stream_read(
    inst: InstanceState,
    t: StreamType,
    opts: CanonOptions,
    i: int,
    ptr: int,
    n: int,
    *,
    is_async: bool,
    wait: Wait,
    hooks: AsyncValueHooks | None = None,
) -> int:
    """``canon stream.read``: read up to ``n`` values into guest memory at ``ptr``."""
    return stream_copy(
        inst,
        ReadableStreamEnd,
        GuestWritableBuffer,
        EventCode.STREAM_READ,
        t,
        opts,
        i,
        ptr,
        n,
        is_async=is_async,
        wait=wait,
        hooks=hooks,
    )


def stream_write(
    inst: InstanceState,
    t: StreamType,
    opts: CanonOptions,
    i: int,
    ptr: int,
    n: int,
    *,
    is_async: bool,
    wait: Wait,
    hooks: AsyncValueHooks | None = None,
) -> int:
    """``canon stream.write``: write up to ``n`` values from guest memory at ``ptr``."""
    return stream_copy(
        inst,
        WritableStreamEnd,
        GuestReadableBuffer,
        EventCode.STREAM_WRITE,
        t,
        opts,
        i,
        ptr,
        n,
        is_async=is_async,
        wait=wait,
        hooks=hooks,
    )


def future_read(
    inst: InstanceState,
    t: FutureType,
    opts: CanonOptions,
    i: int,
    ptr: int,
    *,
    is_async: bool,
    wait: Wait,
    hooks: AsyncValueHooks | None = None,
) -> int:
    """``canon future.read``: read the value into guest memory at ``ptr``."""
    return future_copy(
        inst,
        ReadableFutureEnd,
        GuestWritableBuffer,
        EventCode.FUTURE_READ,
        t,
        opts,
        i,
        ptr,
        is_async=is_async,
        wait=wait,
        hooks=hooks,
    )


def future_write(
    inst: InstanceState,
    t: FutureType,
    opts: CanonOptions,
    i: int,
    ptr: int,
    *,
    is_async: bool,
    wait: Wait,
    hooks: AsyncValueHooks | None = None,
) -> int:
    """``canon future.write``: write the value at ``ptr`` in guest memory."""
    return future_copy(
        inst,
        WritableFutureEnd,
        GuestReadableBuffer,
        EventCode.FUTURE_WRITE,
        t,
        opts,
        i,
        ptr,
        is_async=is_async,
        wait=wait,
        hooks=hooks,
    )


def cancel_copy(
    inst: InstanceState,
    end_cls: type[CopyEnd],
    event_code: EventCode,
    t: StreamType | FutureType,
    is_async: bool,
    i: int,
    *,
    wait: Wait,
) -> int:
    """``canon {stream,future}.cancel-{read,write}`` (``cancel_copy``).

    Returns the copy's result (with progress for streams), or ``BLOCKED``
    when ``is_async`` and the cancellation did not finish at once.
    """
    trap_if(not inst.may_leave, "cannot leave component instance")
    e = inst.table.get(i)
    if not isinstance(e, end_cls):
        trap(f"handle index {i} is not a {end_cls.KIND}")
    trap_if(e.shared.t != t.element, f"handle index {i} used with the wrong {end_cls.KIND} type")
    trap_if(
        e.state is not CopyState.COPYING or e.has_sync_waiter,
        f"no {_VERBS[end_cls]} in progress to cancel",
    )
    trap_if(
        e.in_waitable_set() and not is_async,
        "waitable cannot be used synchronously while added to a waitable set",
    )
    e.state = CopyState.CANCELLING_COPY
    if not e.has_pending_event():
        e.shared.cancel()
    result = _finish(e, is_async, wait)
    assert result == BLOCKED or not e.copying()
    return result


def stream_cancel_read(
    inst: InstanceState, t: StreamType, i: int, *, is_async: bool, wait: Wait
) -> int:
    """``canon stream.cancel-read``."""
    return cancel_copy(inst, ReadableStreamEnd, EventCode.STREAM_READ, t, is_async, i, wait=wait)


def stream_cancel_write(
    inst: InstanceState, t: StreamType, i: int, *, is_async: bool, wait: Wait
) -> int:
    """``canon stream.cancel-write``."""
    return cancel_copy(inst, WritableStreamEnd, EventCode.STREAM_WRITE, t, is_async, i, wait=wait)


def future_cancel_read(
    inst: InstanceState, t: FutureType, i: int, *, is_async: bool, wait: Wait
) -> int:
    """``canon future.cancel-read``."""
    return cancel_copy(inst, ReadableFutureEnd, EventCode.FUTURE_READ, t, is_async, i, wait=wait)


def future_cancel_write(
    inst: InstanceState, t: FutureType, i: int, *, is_async: bool, wait: Wait
) -> int:
    """``canon future.cancel-write``."""
    return cancel_copy(inst, WritableFutureEnd, EventCode.FUTURE_WRITE, t, is_async, i, wait=wait)


def drop_end(
    inst: InstanceState, end_cls: type[CopyEnd], t: StreamType | FutureType, i: int
) -> None:
    """``canon {stream,future}.drop-{readable,writable}`` (the spec's ``drop``)."""
    if not inst.may_leave:
        trap("cannot leave component instance")
    e = inst.table.remove(i)
    if not isinstance(e, end_cls):
        trap(f"handle index {i} is not a {end_cls.KIND}")
    et = e.shared.t
    if et is not t.element and et != t.element:
        trap(f"handle index {i} used with the wrong {end_cls.KIND} type")
    e.drop()


def stream_drop_readable(inst: InstanceState, t: StreamType, i: int) -> None:
    """``canon stream.drop-readable``."""
    drop_end(inst, ReadableStreamEnd, t, i)


def stream_drop_writable(inst: InstanceState, t: StreamType, i: int) -> None:
    """``canon stream.drop-writable``."""
    drop_end(inst, WritableStreamEnd, t, i)


def future_drop_readable(inst: InstanceState, t: FutureType, i: int) -> None:
    """``canon future.drop-readable``."""
    drop_end(inst, ReadableFutureEnd, t, i)


def future_drop_writable(inst: InstanceState, t: FutureType, i: int) -> None:
    """``canon future.drop-writable``."""
    drop_end(inst, WritableFutureEnd, t, i)


# ---------------------------------------------------------------------------
# Bodies for one instance and type (what a trampoline calls, one level down)

_COPIES: dict[str, tuple[type[CopyEnd], GuestBufferClass, EventCode]] = {
    "stream.read": (ReadableStreamEnd, GuestWritableBuffer, EventCode.STREAM_READ),
    "stream.write": (WritableStreamEnd, GuestReadableBuffer, EventCode.STREAM_WRITE),
    "future.read": (ReadableFutureEnd, GuestWritableBuffer, EventCode.FUTURE_READ),
    "future.write": (WritableFutureEnd, GuestReadableBuffer, EventCode.FUTURE_WRITE),
}

_DROPS: dict[str, type[CopyEnd]] = {
    "stream.drop-readable": ReadableStreamEnd,
    "stream.drop-writable": WritableStreamEnd,
    "future.drop-readable": ReadableFutureEnd,
    "future.drop-writable": WritableFutureEnd,
}


def copy_builtin(
    name: str,
    inst: InstanceState,
    t: StreamType | FutureType,
    opts: CanonOptions,
    *,
    is_async: bool,
    wait: Wait,
    hooks: AsyncValueHooks | None = None,
) -> Callable[..., int]:
    """The body of ``canon`` ``name`` (``stream.read`` ... ``future.write``) for ``inst`` and ``t``.

    ``(i, ptr, n)`` for a stream, ``(i, ptr)`` for a future, as
    :func:`stream_read` ... :func:`future_write` take them.
    """
    end_cls, buffer_cls, code = _COPIES[name]
    # Partials, not closures: the built-in's call is then one Python frame.
    if isinstance(t, StreamType):
        stream_end = cast(StreamEndClass, end_cls)
        return partial(
            stream_copy,
            inst,
            stream_end,
            buffer_cls,
            code,
            t,
            opts,
            is_async=is_async,
            wait=wait,
            hooks=hooks,
        )
    future_end = cast(FutureEndClass, end_cls)
    return partial(
        future_copy,
        inst,
        future_end,
        buffer_cls,
        code,
        t,
        opts,
        is_async=is_async,
        wait=wait,
        hooks=hooks,
    )


def drop_builtin(
    name: str, inst: InstanceState, t: StreamType | FutureType
) -> Callable[[int], None] | None:
    """The body of ``canon`` ``name`` (``stream.drop-readable`` ...) for ``inst`` and ``t``.

    None when ``name`` is not one of the four drops.
    """
    end_cls = _DROPS.get(name)
    if end_cls is None:
        return None
    return partial(drop_end, inst, end_cls, t)


# ---------------------------------------------------------------------------
# Lifting and lowering stream and future values (CanonicalABI.md "Lifting" /
# "Lowering": lift_stream, lift_future, lift_async_value, lower_stream,
# lower_future)

_LIFT_DONE_MESSAGES: dict[type[CopyEnd], str] = {
    ReadableStreamEnd: "cannot lift stream after being notified that the writable end dropped",
    ReadableFutureEnd: "cannot lift future after previous read succeeded",
}
_NOUNS: dict[type[CopyEnd], str] = {ReadableStreamEnd: "stream", ReadableFutureEnd: "future"}


def lift_async_value(
    end_cls: type[ReadableStreamEnd] | type[ReadableFutureEnd],
    cx: LiftLowerContext,
    i: int,
    element: ValueType | None,
) -> SharedBase:
    """Move readable end ``i`` out of the table, return its shared state (``lift_async_value``)."""
    e = cx.instance.table.remove(i)
    if not isinstance(e, end_cls):
        trap(f"handle index {i} is not a {end_cls.KIND}")
    et = e.shared.t
    if et is not element and et != element:
        trap(f"handle index {i} used with the wrong {end_cls.KIND} type")
    if e.state is not CopyState.IDLE:
        if e.state is CopyState.DONE:
            trap(_LIFT_DONE_MESSAGES[end_cls])
        trap(f"cannot lift {_NOUNS[end_cls]} while a read is in progress")
    if e.in_waitable_set():
        trap(f"cannot lift {_NOUNS[end_cls]} while it's in a waitable set")
    return e.shared


def lift_stream(cx: LiftLowerContext, i: int, t: StreamType) -> ReadableStream:
    """Lift readable stream end ``i`` (``lift_stream``)."""
    shared = lift_async_value(ReadableStreamEnd, cx, i, t.element)
    assert isinstance(shared, ReadableStream)
    return shared


def lift_future(cx: LiftLowerContext, i: int, t: FutureType) -> ReadableFuture:
    """Lift readable future end ``i`` (``lift_future``)."""
    shared = lift_async_value(ReadableFutureEnd, cx, i, t.element)
    assert isinstance(shared, ReadableFuture)
    return shared


def lower_stream(cx: LiftLowerContext, v: ReadableStream, t: StreamType) -> int:
    """A new readable end for stream ``v`` in the context's instance (``lower_stream``)."""
    if not isinstance(v, ReadableStream):
        raise TypeError(f"expected a ReadableStream for {describe_value_type(t)}, got {v!r}")
    if v.t is not t.element and v.t != t.element:
        raise TypeError(
            f"a stream of {describe_value_type(v.t)} cannot be lowered as {describe_value_type(t)}"
        )
    return cx.instance.table.add(ReadableStreamEnd(v))


def lower_future(cx: LiftLowerContext, v: ReadableFuture, t: FutureType) -> int:
    """A new readable end for future ``v`` in the context's instance (``lower_future``)."""
    if not isinstance(v, ReadableFuture):
        raise TypeError(f"expected a ReadableFuture for {describe_value_type(t)}, got {v!r}")
    if v.t is not t.element and v.t != t.element:
        raise TypeError(
            f"a future of {describe_value_type(v.t)} cannot be lowered as {describe_value_type(t)}"
        )
    return cx.instance.table.add(ReadableFutureEnd(v))


# ---------------------------------------------------------------------------
# Hooks for lifting and lowering between components


@final
class GuestAsyncValues:
    """The :class:`AsyncValueHooks` for values passed between two guests.

    Lifting a stream or future moves its readable end out of the source
    instance's table and yields the shared object; lowering puts a new
    readable end for it into the destination's table. Error contexts are
    copied by reference. Host-facing hooks convert the shared objects into
    host values instead.
    """

    __slots__ = ()

    def lift_error_context(self, cx: LiftLowerContext, i: int) -> ErrorContext:
        """Lift error-context handle ``i``."""
        return lift_error_context(cx, i)

    def lower_error_context(self, cx: LiftLowerContext, v: Any) -> int:
        """Lower error context ``v`` into a new handle."""
        return lower_error_context(cx, v)

    def lift_stream(self, cx: LiftLowerContext, i: int, t: StreamType) -> ReadableStream:
        """Lift readable stream end ``i``."""
        return lift_stream(cx, i, t)

    def lower_stream(self, cx: LiftLowerContext, v: Any, t: StreamType) -> int:
        """Lower stream ``v`` into a new readable end handle."""
        return lower_stream(cx, v, t)

    def lift_future(self, cx: LiftLowerContext, i: int, t: FutureType) -> ReadableFuture:
        """Lift readable future end ``i``."""
        return lift_future(cx, i, t)

    def lower_future(self, cx: LiftLowerContext, v: Any, t: FutureType) -> int:
        """Lower future ``v`` into a new readable end handle."""
        return lower_future(cx, v, t)


GUEST_ASYNC_VALUES: AsyncValueHooks = GuestAsyncValues()
"""The one :class:`GuestAsyncValues` instance (it holds no state)."""
