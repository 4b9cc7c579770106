"""Host ends of ``stream<T>`` and ``future<T>``: trio channels.

The host never sees a stream or future handle. It passes any
:class:`trio.abc.ReceiveChannel` where a ``stream<T>`` or ``future<T>`` goes
into a guest, and gets a :class:`StreamReceiver`/:class:`FutureReceiver`
(themselves receive channels) where one comes out.

Rules:

* host to guest: the channel becomes the readable side of the stream
  (:class:`HostSourceStream`, a :class:`ReadableStream`). A guest read takes
  what is buffered; with nothing buffered it parks and the stream asks a trio
  task (its *pump*, one per stream, started on first demand) for the next item.
  Items are fetched on demand, so the host's sender feels the guest's
  backpressure; on store threads an answer also brings the items after it
  that the channel holds already (:data:`SPARE_ITEMS` ahead at most, see
  :meth:`_Pump._answer`), and when the guest starts on the last of them it
  asks for what the channel holds by then (:meth:`_Pump.refill`, answered
  through a buffer the store thread takes from, with no job unless a read
  waits for it). For
  ``stream<u8>`` an item is a bytes-like chunk, copied into guest memory
  with one copy; a partial read keeps the rest of the chunk for the next
  read. For other element types an item is one value;
* the end of the channel (``EndOfChannel``, or the channel closed) is the
  writer dropping its end: the guest sees ``DROPPED`` once everything received
  was delivered. When the guest drops its readable end the channel is closed,
  so the host's sender gets ``BrokenResourceError``;
* guest to host: :meth:`StreamReceiver.receive` reads into a host buffer on
  the wasm side and waits for the copy. A ``receive`` cancelled while its read
  is parked cancels the read (CanonicalABI.md ``cancel_copy``); whatever was
  copied before the cancellation took effect is kept for the next
  ``receive``. On store threads reads are kept posted ahead (see
  :meth:`StreamReceiver._read_on`, :meth:`StreamReceiver._resume_reading`
  and :meth:`StreamReceiver._keep_reading`) while what they took unasked,
  plus the next read's capacity, stays within ``Limits.max_stream_buffer``;
  the read behind one that completes starts at once, before the guest's
  next step (:meth:`StreamReceiver._start_soon`).
  ``aclose`` drops the host's readable end: the guest's writer sees
  ``DROPPED`` (what a read ahead took is discarded with it, as any reader's
  data is when it drops its end);
* futures work the same way with exactly one value. A guest reader can never
  see ``DROPPED`` on a future (its writer must write), so a host channel that
  ends without a value while a guest reads it traps the instance, naming the
  cause, rather than leaving the guest waiting forever;
* stream and future state is touched on the wasm side only: trio-side code
  reaches it through ``executor.post`` and is answered through
  ``executor.call_soon_trio`` (see ``_executor``). A pump waiting for data the
  guest asked for is counted with ``outside_begin``/``outside_end``, so a
  store waiting for it is not mistaken for a deadlock. Exceptions, each a
  value with one writer: the trio side marks a read ``wanted`` when a
  ``receive`` waits for it, and the store thread looks at the mark when the
  copy completes (a mark set just too late counts the read as unasked); the
  store thread reads the trio side's count of unasked elements taken (stale
  only ever low, so it waits, never passes the bound); the trio side reads
  the store thread's count once every read it posted is done; a refill's
  answer is handed over in the pump's ``refilled`` buffer, its ``answered``
  flag written by the trio side after the items, and its ``waiting`` flag
  by the wasm side (see :meth:`_Pump.refill`).

Speed: with the inline executor the wasm side is the trio thread, so a guest
read of a memory channel that already holds an item takes it with
``receive_nowait`` at once, and a host ``receive`` whose copy completes on the
spot returns without waiting for a wakeup.
"""

from __future__ import annotations

import collections
import functools
import weakref
from collections.abc import Callable
from typing import Any, final

import trio

from .._abi._buffers import HostReadableBuffer, HostWritableBuffer, WritableBuffer
from .._abi._errorctx import ErrorContext
from .._abi._handles import InstanceState
from .._abi._options import AsyncValueHooks, LiftLowerContext
from .._abi._stream_builtins import (
    GUEST_ASYNC_VALUES,
    lift_future,
    lift_stream,
    lower_future,
    lower_stream,
)
from .._abi._streams import (
    CopyResult,
    OnCopy,
    OnCopyDone,
    ReadableFuture,
    ReadableStream,
    ReclaimBuffer,
    SharedBase,
)
from .._abi._types import FutureType, StreamType, U8Type, ValueType
from .._errors import Trap
from ._executor import Agent
from ._runtime import InstanceRuntime

__all__ = [
    "BYTES_CAPACITY",
    "FutureReceiver",
    "HostAsyncValues",
    "HostSourceFuture",
    "HostSourceStream",
    "SPARE_ITEMS",
    "StreamReceiver",
    "VALUES_CAPACITY",
    "host_values",
]

BYTES_CAPACITY = 64 * 1024
"""How many bytes one :meth:`StreamReceiver.receive` of a ``stream<u8>`` may return."""

VALUES_CAPACITY = 64
"""How many values of other element types one guest-to-host copy may move at most."""

SPARE_ITEMS = 8
"""How many items a host source stream takes from its channel ahead of the guest's reads.

On store threads only (see :meth:`_Pump._answer`). Counted in items, not
elements: the items are the host's own objects, already made and sent, so
taking them early moves no guest data and allocates nothing; what it changes
is how far ahead of the guest the host's sender may run: besides the item
the guest is reading, the stream holds at most ``SPARE_ITEMS`` items taken
from the channel (a refill is asked for only once none is left).
"""

_EOF: Any = object()
_REFILL: Any = object()  # the answer to a refill: only the spares it brings


def _is_bytes(t: ValueType | None) -> bool:
    return type(t) is U8Type


def _guest_value(rt: InstanceRuntime, v: Any, t: ValueType | None) -> Any:
    """An element the host sent, ready for the guest-facing element lowering.

    Element types that are themselves streams or futures are lowered with
    guest hooks by the stream built-ins, so host channels are wrapped here.
    """
    if isinstance(t, StreamType) and not isinstance(v, ReadableStream):
        return _readable_stream(rt, v, t)
    if isinstance(t, FutureType) and not isinstance(v, ReadableFuture):
        return _readable_future(rt, v, t)
    return v


def _host_value(rt: InstanceRuntime, v: Any, t: ValueType | None) -> Any:
    """An element a guest wrote, as the host receives it."""
    if isinstance(t, StreamType) and isinstance(v, ReadableStream):
        return StreamReceiver(rt, v, t)
    if isinstance(t, FutureType) and isinstance(v, ReadableFuture):
        return FutureReceiver(rt, v, t)
    return v


# ---------------------------------------------------------------------------
# Host to guest: a channel as the readable side of a stream or future


class _Pump:
    """The trio side of a host source: receives items from the channel on demand.

    Wasm side: :meth:`request` and :meth:`refill` (one of them outstanding
    at most) and :meth:`close`. Trio side: the pump task, which answers each
    request with exactly one ``deliver(item, spares)`` posted to the wasm
    side (``_EOF`` when the channel ended; ``spares``: see :meth:`_answer`);
    a refill is answered through :attr:`refilled` (see :meth:`refill`).
    """

    __slots__ = (
        "_agent",
        "_channel_closed",
        "_demand",
        "_owed",
        "_scope",
        "_started",
        "_stop",
        "_wake",
        "answered",
        "channel",
        "deliver",
        "on_refilled",
        "refilled",
        "rt",
        "spare",
        "waiting",
    )

    def __init__(
        self,
        rt: InstanceRuntime,
        channel: trio.abc.ReceiveChannel[Any],
        deliver: Callable[[Any, tuple[Any, ...]], None],
        spare: Callable[[Any], bool] | None = None,
    ) -> None:
        self.rt = rt
        self.channel = channel
        self.deliver = deliver
        # Whether an answer of ``item`` may bring the item after it along (None: never).
        self.spare = spare
        # The answer to a refill (see refill): the items, put there by the
        # trio side, which then sets ``answered``; the wasm side takes them
        # and clears it. ``waiting``: set by the wasm side while a read
        # waits for that answer, so the trio side posts ``on_refilled``.
        self.refilled: collections.deque[Any] = collections.deque()
        self.answered = False
        self.waiting = False
        self.on_refilled: Callable[[], None] = _nothing
        # Wasm side.
        self._started = False
        # The store thread that asked (threaded): items go straight to it.
        self._agent: Agent | None = None
        # Trio side.
        self._demand = False
        self._owed = 0
        self._stop = False
        self._channel_closed = False
        self._scope: trio.CancelScope | None = None
        self._wake: trio.Event | None = None

    # -- wasm side ---------------------------------------------------------------

    def request(self) -> None:
        """Ask for the next item (wasm side; one request outstanding at most)."""
        ex = self.rt.executor
        self._agent = ex.current_agent()
        # Counted from now: the store must not look idle while the item is on its way.
        ex.outside_begin()
        if not self._started:
            self._started = True
            self.rt.spawn(self._run, service=True)
        ex.call_soon_trio(self._on_request)

    def refill(self) -> None:
        """Ask for the items the channel holds now, without waiting for more (wasm side).

        Made on store threads while the guest still reads the last item
        taken, so the next ones arrive before its read would wait. Answered
        at once, even when the channel is empty: nobody waits on the host
        for it, so the store must not be counted as waiting for trio beyond
        the hand-over itself. Counts as the one request outstanding. The
        answer costs the store thread no job of its own: the items go into
        :attr:`refilled` (up to :data:`SPARE_ITEMS`), where the wasm side
        takes them when it needs the next item, and only a read that waits
        for them by then (:attr:`waiting`) gets ``on_refilled`` posted. Each
        flag is written before the other is read, on both sides, so at
        least one side sees the answer with the read waiting, and
        ``on_refilled`` does nothing when the wasm side took it already.
        """
        ex = self.rt.executor
        ex.outside_begin()
        ex.call_soon_trio(self._on_refill)

    def close(self) -> None:
        """The guest dropped its end: stop fetching and close the channel (wasm side)."""
        self.rt.executor.call_soon_trio(self._close_now)

    # -- trio side ---------------------------------------------------------------

    def _on_request(self) -> None:
        self._owed += 1
        if self._stop:
            self._settle()
            return
        if isinstance(self.channel, trio.MemoryReceiveChannel) and self._answer_nowait():
            return
        self._demand = True
        if self._wake is not None:
            self._wake.set()

    def _on_refill(self) -> None:
        self._owed += 1
        if self._stop:
            self._settle()
            return
        self.refilled.extend(self._spares(_REFILL))
        self.answered = True
        if self.waiting:
            self.rt.executor.post(self.on_refilled, self._agent)
        self._settle()

    def _answer_nowait(self) -> bool:
        """Answer the request from an item the channel holds already (trio side).

        Saves waking the pump task for every item of a busy stream; False
        when the channel is empty (the pump waits for the next item).
        """
        try:
            item = self.channel.receive_nowait()  # type: ignore[attr-defined]
        except trio.WouldBlock:
            return False
        except (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
            # Let the pump see the end itself (it closes the channel and stops).
            return False
        self._answer(item)
        return True

    def _answer(self, item: Any) -> None:
        """Post the answer to the request to the wasm side (trio side).

        A request is made for a guest read that waits, when the wasm side
        holds no item. Items the channel holds already go along as spares,
        up to :data:`SPARE_ITEMS` (on store threads, see
        ``HostSourceStream``): the guest's next reads then complete at once,
        without a hand-over of their own.
        """
        spares = self._spares(item)
        self.rt.executor.post(functools.partial(self._deliver, item, tuple(spares)), self._agent)
        self._settle()

    def _spares(self, item: Any) -> list[Any]:
        """The items the channel holds already, to go along with ``item`` (trio side)."""
        spares: list[Any] = []
        if self.spare is not None and isinstance(self.channel, trio.MemoryReceiveChannel):
            last = item
            while (
                len(spares) < SPARE_ITEMS
                and last is not _EOF
                and (last is _REFILL or self.spare(last))
            ):
                try:
                    last = self.channel.receive_nowait()
                except (
                    trio.WouldBlock,
                    trio.EndOfChannel,
                    trio.ClosedResourceError,
                    trio.BrokenResourceError,
                ):
                    break  # the end is left for the next request to see
                spares.append(last)
        return spares

    def _settle(self) -> None:
        while self._owed:
            self._owed -= 1
            self.rt.executor.outside_end()

    def _close_now(self) -> None:
        self._stop = True
        if self._scope is not None:
            self._scope.cancel()
        if self._wake is not None:
            self._wake.set()
        if not self._started or isinstance(self.channel, trio.MemoryReceiveChannel):
            self._close_channel_soon()

    def _close_channel_soon(self) -> None:
        if self._channel_closed:
            return
        channel = self.channel
        if isinstance(channel, trio.MemoryReceiveChannel):
            # Closed at once, so the sender's very next send fails.
            self._channel_closed = True
            channel.close()
            return
        nursery = self.rt.service_nursery or self.rt.nursery
        if nursery is not None and not self.rt.closing:
            self._channel_closed = True
            nursery.start_soon(trio.aclose_forcefully, channel)

    def _deliver(self, item: Any, spares: tuple[Any, ...]) -> None:
        # Wasm side. Inline, this runs in the pump's trio task: a failure must
        # poison the store, as it would on a store thread, not crash the nursery.
        try:
            self.deliver(item, spares)
        except Exception as exc:
            self.rt.poison(exc)

    async def _run(self) -> None:
        try:
            while not self._stop:
                if not self._demand:
                    self._wake = trio.Event()
                    await self._wake.wait()
                    self._wake = None
                    continue
                self._demand = False
                item: Any
                with trio.CancelScope() as scope:
                    self._scope = scope
                    try:
                        item = await self.channel.receive()
                    except (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
                        item = _EOF
                self._scope = None
                if scope.cancelled_caught:
                    break
                self._answer(item)
                if item is _EOF:
                    self._channel_closed = True
                    break
        finally:
            self._settle()
            if not self._channel_closed:
                self._channel_closed = True
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(self.channel)


def _ignore(item: Any, spare: Any) -> None:
    """What a dropped host source does with an item the pump still delivers."""


def _nothing() -> None:
    """What a dropped host source does when a refill is answered."""


@final
class HostSourceStream(ReadableStream):
    """A host receive channel as the readable side of a ``stream<T>``.

    Wasm-side object (built by lowering; the guest's ``stream.read`` drives it).
    """

    __slots__ = (
        "_chunk",
        "_dropped",
        "_eof",
        "_fetching",
        "_nowait",
        "_pending",
        "_pump",
        "_refilling",
        "_spares",
        "rt",
        "t",
    )

    def __init__(
        self, rt: InstanceRuntime, channel: trio.abc.ReceiveChannel[Any], t: ValueType | None
    ) -> None:
        self.rt = rt
        self.t = t
        threaded = rt.executor.threaded
        self._pump = _Pump(rt, channel, self._deliver, self._may_spare if threaded else None)
        self._pump.on_refilled = self._refilled
        self._chunk: HostReadableBuffer | None = None
        # Items fetched ahead, in order after _chunk.
        self._spares: collections.deque[Any] = collections.deque()
        self._eof = False
        self._dropped = False
        # One request or refill is outstanding (_refilling: a refill).
        self._fetching = False
        self._refilling = False
        self._pending: tuple[WritableBuffer, OnCopyDone] | None = None
        # Taking an item synchronously touches trio state: only on the trio thread.
        self._nowait = isinstance(channel, trio.MemoryReceiveChannel)

    def __repr__(self) -> str:
        return f"<HostSourceStream {self.t!r} of {self._pump.channel!r}>"

    @property
    def channel(self) -> trio.abc.ReceiveChannel[Any]:
        """The host's channel."""
        return self._pump.channel

    def _buffer(self, item: Any) -> HostReadableBuffer | None:
        if _is_bytes(self.t):
            buf = HostReadableBuffer(self.t, item)
        else:
            buf = HostReadableBuffer(self.t, [_guest_value(self.rt, item, self.t)])
        return buf if buf.remain() else None

    def _may_spare(self, item: Any) -> bool:
        # Trio side: a spare goes only after an item that fills a read, so
        # it is never the first item the next read sees behind an empty one.
        return not _is_bytes(self.t) or len(item) > 0

    def _take_nowait(self) -> bool:
        """Fill the buffer from a memory channel without waiting; False when it is empty."""
        channel = self._pump.channel
        assert isinstance(channel, trio.MemoryReceiveChannel)
        while True:
            try:
                item = channel.receive_nowait()
            except trio.WouldBlock:
                return False
            except (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError):
                self._eof = True
                return True
            self._chunk = self._buffer(item)
            if self._chunk is not None:
                return True

    def read(
        self,
        inst: InstanceState | None,
        dst: WritableBuffer,
        on_copy: OnCopy,
        on_copy_done: OnCopyDone,
    ) -> None:
        assert self._pending is None and not self._dropped
        if (
            self._chunk is None
            and not self._eof
            and not self._fetching
            and self._nowait
            and not self.rt.executor.threaded
        ):
            self._take_nowait()
        if self._chunk is None and self._refilling:
            self._use_spare()
        if self._chunk is not None:
            self._copy_into(dst)
            on_copy_done(CopyResult.COMPLETED)
        elif self._eof:
            on_copy_done(CopyResult.DROPPED)
        else:
            self._pending = (dst, on_copy_done)
            if not self._fetching:
                self._fetching = True
                self._pump.request()
            elif self._refilling:
                # This read waits for the refill's answer (see _Pump.refill).
                pump = self._pump
                pump.waiting = True
                if pump.answered:
                    self._refilled()

    def _copy_into(self, dst: WritableBuffer) -> None:
        chunk = self._chunk
        assert chunk is not None
        n = min(dst.remain(), chunk.remain())
        if n:
            dst.write_from(chunk, n)
            if not chunk.remain():
                self._chunk = None
                self._use_spare()

    def _use_spare(self) -> None:
        spares = self._spares
        if not spares and self._refilling:
            self._take_refilled()
        while spares and self._chunk is None:
            self._chunk = self._buffer(spares.popleft())
            if (
                not spares
                and self._chunk is not None
                and not self._fetching
                and not self._eof
                and self._nowait
                and self._pump.spare is not None
            ):
                # The guest reads the last item taken ahead: fetch what the
                # channel holds behind it while it does (within SPARE_ITEMS).
                self._fetching = True
                self._refilling = True
                self._pump.refill()

    def _take_refilled(self) -> bool:
        """Take the items the refill brought, if it was answered (wasm side)."""
        pump = self._pump
        if not pump.answered:
            return False
        self._fetching = self._refilling = False
        pump.answered = pump.waiting = False
        self._spares.extend(pump.refilled)
        pump.refilled.clear()
        return True

    def _refilled(self) -> None:
        """The refill was answered while a read waited for it (wasm side).

        Posted by the trio side, or called by the read that saw the answer
        itself; whichever comes second finds nothing to do.
        """
        if self._dropped or not self._take_refilled():
            return
        self._use_spare()
        self._finish_pending()

    def _deliver(self, item: Any, spares: tuple[Any, ...] = ()) -> None:
        """The pump's answer to a request, and the spare items with it (wasm side)."""
        self._fetching = False
        if self._dropped:
            return
        if item is _EOF:
            self._eof = True
        else:
            self._chunk = self._buffer(item)
        if spares:
            self._spares.extend(spares)
            self._use_spare()
        self._finish_pending()

    def _finish_pending(self) -> None:
        """Complete the read that waits, if what it waited for came (wasm side)."""
        pending = self._pending
        if pending is None:
            return
        if self._chunk is None and not self._eof:
            # An empty chunk: ask again.
            if not self._fetching:
                self._fetching = True
                self._pump.request()
            return
        self._pending = None
        dst, on_copy_done = pending
        if self._chunk is not None:
            self._copy_into(dst)
            on_copy_done(CopyResult.COMPLETED)
        else:
            on_copy_done(CopyResult.DROPPED)

    def cancel(self) -> None:
        pending = self._pending
        assert pending is not None
        self._pending = None
        self._pump.waiting = False
        # The item being fetched, if any, is kept for the next read.
        pending[1](CopyResult.CANCELLED)

    def drop(self) -> None:
        if not self._dropped:
            self._dropped = True
            self._chunk = None
            self._spares.clear()
            self._pump.refilled.clear()
            self._pump.close()
            # Items still on their way are ignored now: let go of this end, so
            # the pump and it are not a cycle left for the garbage collector.
            self._pump.deliver = _ignore
            self._pump.on_refilled = _nothing


@final
class HostSourceFuture(ReadableFuture):
    """A host receive channel as the readable side of a ``future<T>``: its first item."""

    __slots__ = ("_dropped", "_fetching", "_has_value", "_pending", "_pump", "_value", "rt", "t")

    def __init__(
        self, rt: InstanceRuntime, channel: trio.abc.ReceiveChannel[Any], t: ValueType | None
    ) -> None:
        self.rt = rt
        self.t = t
        self._pump = _Pump(rt, channel, self._deliver)
        self._has_value = False
        self._value: Any = None
        self._dropped = False
        self._fetching = False
        self._pending: tuple[WritableBuffer, OnCopyDone] | None = None

    def __repr__(self) -> str:
        return f"<HostSourceFuture {self.t!r} of {self._pump.channel!r}>"

    def read(
        self, inst: InstanceState | None, dst: WritableBuffer, on_copy_done: OnCopyDone
    ) -> None:
        assert self._pending is None and not self._dropped
        if self._has_value:
            self._complete(dst, on_copy_done)
            return
        self._pending = (dst, on_copy_done)
        if not self._fetching:
            self._fetching = True
            self._pump.request()

    def _complete(self, dst: WritableBuffer, on_copy_done: OnCopyDone) -> None:
        value = self._value
        self._has_value = False
        self._value = None
        dst.write([value])
        on_copy_done(CopyResult.COMPLETED)
        # One value per future: nobody needs the channel any more.
        self._pump.close()

    def _deliver(self, item: Any, spares: tuple[Any, ...] = ()) -> None:
        # Futures take no spare (their pump is made without one).
        self._fetching = False
        if self._dropped:
            return
        if item is _EOF:
            if self._pending is not None:
                # A future's reader can never be told DROPPED (its writer
                # must write), and waiting forever would hide the cause.
                self.rt.poison(
                    Trap(f"the host's channel for future<{self.t!r}> ended without a value")
                )
            return
        self._has_value = True
        self._value = _guest_value(self.rt, item, self.t)
        pending = self._pending
        if pending is not None:
            self._pending = None
            self._complete(*pending)

    def cancel(self) -> None:
        pending = self._pending
        assert pending is not None
        self._pending = None
        pending[1](CopyResult.CANCELLED)

    def drop(self) -> None:
        if not self._dropped:
            self._dropped = True
            self._value = None
            self._pump.close()
            self._pump.deliver = _ignore  # as HostSourceStream.drop


# ---------------------------------------------------------------------------
# Guest to host: receive channels over the readable end of a guest stream


@final
class _Read:
    """One copy from the wasm side into a host buffer, as the trio side sees it."""

    __slots__ = (
        "absorbed",
        "ahead",
        "done",
        "error",
        "next",
        "result",
        "unasked",
        "values",
        "waiters",
        "wanted",
    )

    def __init__(self) -> None:
        self.done = False
        # Trio tasks waiting for the outcome (receives made at once wait together).
        self.waiters: list[trio.lowlevel.Task] | None = None
        self.result = CopyResult.COMPLETED
        self.values: Any = None
        self.error: BaseException | None = None
        # A look-ahead's outcome that arrived before this read was absorbed
        # (it is absorbed right after it), and whether that happened.
        self.ahead: tuple[CopyResult, Any] | None = None
        self.absorbed = False
        # Set on the trio side when a receive waits for this read; the wasm
        # side reads it when the copy completes (a hint: a receive that
        # starts waiting just after that is simply not seen).
        self.wanted = False
        # The read the wasm side started right after this one (see
        # StreamReceiver._start), made before this one's outcome is sent.
        self.next: _Read | None = None
        # Elements this read took with no receive waiting for it (set on
        # the wasm side before the outcome is sent; see StreamReceiver).
        self.unasked = 0

    def finish(self, result: CopyResult, values: Any) -> None:
        """Record the outcome (trio side)."""
        if not self.done:
            self.done = True
            self.result = result
            self.values = values
            if self.waiters:  # (else _wake has nobody to wake)
                self._wake()

    def fail(self, exc: BaseException) -> None:
        """The store trapped or closed: no outcome will come (trio side)."""
        if not self.done:
            self.error = exc
            self.done = True
            self._wake()

    def _wake(self) -> None:
        waiters = self.waiters
        if waiters:
            self.waiters = None
            for task in waiters:
                trio.lowlevel.reschedule(task)

    async def wait(self, *, cancellable: bool = True) -> None:
        """Wait for the outcome (trio side; a checkpoint unless it is there already).

        Parks the task itself rather than on a :class:`trio.Event`: one wait
        per hand-over, so what an event adds (its parking lot) counts.

        ``cancellable=False`` waits as in a shielded cancel scope, without the
        scope: a cancellation is not delivered here (the abort fails, the task
        stays parked until the outcome wakes it) but at the task's next
        checkpoint.
        """
        if self.done:
            return
        task = trio.lowlevel.current_task()
        waiters = self.waiters
        if waiters is None:
            waiters = self.waiters = []
        waiters.append(task)
        if not cancellable:
            await trio.lowlevel.wait_task_rescheduled(_abort_fails)
            return

        def abort(raise_cancel: Any) -> trio.lowlevel.Abort:
            if self.waiters is not None:
                self.waiters.remove(task)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)


def _abort_fails(raise_cancel: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


class _Receiver(trio.abc.ReceiveChannel[Any]):
    """What :class:`StreamReceiver` and :class:`FutureReceiver` share.

    Trio side: ``_items`` holds values received and not yet returned,
    ``_inflight`` the read whose outcome is not yet absorbed. Wasm side:
    ``_reading`` says the read is parked in the shared object.
    """

    __slots__ = (
        "_agent",
        "_ahead_out",
        "_closed",
        "_ended",
        "_held",
        "_inflight",
        "_items",
        "_moved",
        "_reading",
        "_took",
        "rt",
        "shared",
        "t",
    )

    shared: SharedBase

    def __init__(self, rt: InstanceRuntime, shared: SharedBase, t: ValueType | None) -> None:
        self.rt = rt
        self.shared = shared
        self.t = t
        self._items: collections.deque[Any] = collections.deque()
        self._ended = False
        self._closed = False
        self._moved = False
        self._inflight: _Read | None = None
        self._reading = False
        # The store thread that lifted this end (None inline or on the trio
        # side): reads and drops run there, next to the guest that writes,
        # rather than on the scheduler thread, which would add a hand-over
        # between two threads to every copy.
        ex = rt.executor
        self._agent: Agent | None = ex.current_agent()
        # Trio side: look-ahead reads (streams) whose outcome has not come back.
        self._ahead_out = 0
        # Wasm side: a look-ahead took data the trio side may not have yet.
        self._took = False
        # While the host holds this end it may read at any time, so a guest
        # frame waiting to write to it is waiting on the trio side, not
        # deadlocked: counted as trio-side work until the end is closed,
        # handed on, or has seen the guest's writer go.
        self._held = True
        ex.outside_begin()

    def _release_hold(self) -> None:
        if self._held:
            self._held = False
            self.rt.executor.outside_end()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.t!r}>"

    # -- wasm side ---------------------------------------------------------------

    def _start(self, rd: _Read) -> None:
        raise NotImplementedError

    def _finisher(self, rd: _Read, buf: HostWritableBuffer) -> OnCopyDone:
        call_soon_trio = self.rt.executor.call_soon_trio

        def on_copy_done(result: CopyResult) -> None:
            self._reading = False
            values = buf.values() if buf.progress else None
            call_soon_trio(lambda: rd.finish(result, values))

        return on_copy_done

    def _cancel_read(self) -> None:
        if self._reading:
            self.shared.cancel()

    def _drop(self) -> None:
        self._cancel_read()
        self.shared.drop()

    # -- trio side ---------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed or self._moved:
            raise trio.ClosedResourceError("the channel was closed")

    def _absorb(self, rd: _Read) -> None:
        raise NotImplementedError

    def _absorb_read(self, rd: _Read) -> None:
        rd.absorbed = True
        self._taken_ahead(rd.unasked)
        self._absorb(rd)
        if rd.ahead is not None:
            self._absorb_ahead(*rd.ahead)

    def _absorb_ahead(self, result: CopyResult, values: Any) -> None:
        raise NotImplementedError

    def _begin_read(self, wanted: bool = False) -> _Read:
        """Post the next read to the wasm side (trio side; none is in flight)."""
        rt = self.rt
        if rt.poisoned is not None:
            raise Trap(f"the instance is poisoned by an earlier trap: {rt.poisoned}")
        if rt.closing:
            raise trio.BrokenResourceError("the instance is closed")
        rd = self._inflight = _Read()
        rd.wanted = wanted
        try:
            rt.executor.post(functools.partial(self._start, rd), self._agent)
        except Trap as exc:
            # Inline, the copy ran (and trapped: a bad buffer, the
            # host-call budget) right here; the writer's instance is
            # poisoned as it would be by the threaded executor.
            self._inflight = None
            rt.poison(exc)
            raise
        return rd

    def prefetch(self) -> None:
        """Start the next read now, without waiting; a later ``receive`` collects it.

        A host that will read this end anyway (the trailers future of a
        response whose body it is about to stream, say) lets the guest's
        write complete as soon as it is made, on the store thread, instead of
        after a round trip from the trio side. Does nothing when a value is
        buffered, a read is under way, the end is closed, or the instance
        has trapped (``receive`` reports that).
        """
        if self._items or self._ended or self._closed or self._moved or self._inflight:
            return
        try:
            self._begin_read()
        except (Trap, trio.BrokenResourceError):
            pass

    def _keep_reading(self) -> None:
        """Trio side: the host took the last buffered value (see :class:`StreamReceiver`)."""

    def _taken_ahead(self, n: int) -> None:
        """Trio side: a read that took ``n`` elements unasked was absorbed (streams)."""

    async def _fill(self) -> bool:
        """Wait until a value is buffered or the writer is known to be gone.

        True if it waited for a read (that wait was a schedule point).
        """
        rt = self.rt
        ex = rt.executor
        waited = False
        while not self._items and not self._ended:
            self._check_open()
            rd = self._inflight
            if rd is None:
                rd = self._begin_read(wanted=True)
            elif not rd.done and rt.poisoned is not None:
                # A read posted earlier (a prefetch, a cancelled receive)
                # whose store trapped while nobody waited for it.
                self._inflight = None
                raise Trap(f"the instance is poisoned by an earlier trap: {rt.poisoned}")
            if not rd.done:
                rd.wanted = True

                def on_trap(exc: BaseException, rd: _Read = rd) -> None:
                    ex.call_soon_trio(lambda: rd.fail(exc))

                rt.host_waiters.add(on_trap)
                try:
                    await rd.wait()
                    waited = True
                except trio.Cancelled:
                    if not rd.done:
                        # Cancel the parked read; its outcome, with whatever
                        # was copied meanwhile, is absorbed by the next receive.
                        ex.post(self._cancel_read, self._agent)
                    else:
                        if self._inflight is rd:
                            self._inflight = rd.next
                        if not rd.absorbed:
                            self._absorb_read(rd)
                    raise
                finally:
                    rt.host_waiters.discard(on_trap)
            if self._inflight is rd:
                self._inflight = rd.next
            if rd.error is not None:
                raise Trap(str(rd.error)) from rd.error
            if not rd.absorbed:  # receive_nowait may have taken it meanwhile
                self._absorb_read(rd)
        return waited

    async def receive(self) -> Any:
        """The next value; ``trio.EndOfChannel`` once the guest's writer is gone."""
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        # A receive that waited for a read was rescheduled by its outcome,
        # which is the schedule point trio asks of it: it need not yield
        # again (on store threads that saves a pass of trio's scheduler per
        # wake-up).
        waited = False
        if not self._items:
            waited = await self._fill()
        if self._items:
            value = self._items.popleft()
            if not self._items:
                self._keep_reading()
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
            return value
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()
        raise trio.EndOfChannel

    def receive_nowait(self) -> Any:
        """A value already received, without waiting or reading.

        Raises ``trio.EndOfChannel`` when the guest's writer is known to be
        gone and everything was received, ``trio.WouldBlock`` when only a
        read (a wait) could tell.
        """
        if self._closed or self._moved:
            self._check_open()  # raises
        rd = self._inflight
        if not self._items and rd is not None and rd.done:
            # A read (a prefetch) finished with nobody waiting for it.
            self._inflight = rd.next
            if rd.error is not None:
                raise Trap(str(rd.error)) from rd.error
            self._absorb_read(rd)
        if self._items:
            return self._items.popleft()
        if self._ended:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def aclose(self) -> None:
        """Drop the host's readable end; the guest's writer then sees DROPPED."""
        self.close()
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """:meth:`aclose` without its checkpoint (trio side), as trio's memory channels have."""
        if not (self._closed or self._moved):
            self._closed = True
            if self._held:  # (else _release_hold has nothing to do)
                self._release_hold()
            self._items.clear()
            # Once the writer is known gone (or the future's value received)
            # dropping this end changes nothing the guest can see: skip the
            # hand-over to the wasm side.
            if not self._ended and self.rt.poisoned is None and not self.rt.closing:
                self.rt.executor.post(self._drop, self._agent)

    def _take_shared(self) -> SharedBase | None:
        """Hand the untouched guest end over to a new lowering (or None)."""
        if (
            self._closed
            or self._moved
            or self._inflight is not None
            or self._items
            or self._ended
            or self._ahead_out
            or self._took
        ):
            return None
        self._moved = True
        self._release_hold()
        return self.shared


@final
class StreamReceiver(_Receiver):
    """The host's readable end of a ``stream<T>`` written by a guest.

    A :class:`trio.abc.ReceiveChannel`: ``await receive()`` returns ``bytes``
    (at most :data:`BYTES_CAPACITY` of them, and at most the instance's
    ``Limits.max_stream_buffer``) for ``stream<u8>`` and one value
    for other element types; it raises ``trio.EndOfChannel`` once the guest
    dropped its writable end and everything it wrote was received. ``async
    for`` works, and ``aclose()`` (or ``async with``) drops the host's end.
    Passing an untouched receiver back into a guest of the same instance
    hands the stream over without copying.
    """

    __slots__ = (
        "_ahead_copied",
        "_ahead_taken",
        "_dropped_here",
        "_next_read",
        "_starting",
        "ahead_bound",
        "capacity",
        "lookahead",
    )

    shared: ReadableStream

    def __init__(
        self,
        rt: InstanceRuntime,
        shared: ReadableStream,
        t: StreamType,
        capacity: int | None = None,
    ) -> None:
        super().__init__(rt, shared, t.element)
        if capacity is None:
            capacity = BYTES_CAPACITY if _is_bytes(t.element) else VALUES_CAPACITY
            # What one receive may hold is what the host buffers for the
            # stream (nothing is copied until the host receives).
            bound = rt.limits.max_stream_buffer if rt.limits is not None else None
            if bound is not None:
                capacity = min(capacity, bound)
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        #: Elements the store thread may hold ahead, taken and posted, that
        #: no receive asked for (see :meth:`_read_on`): the instance's
        #: ``Limits.max_stream_buffer``, and at least one read's capacity.
        bound = rt.limits.max_stream_buffer if rt.limits is not None else None
        self.ahead_bound = max(capacity, bound if bound is not None else capacity)
        # Elements of reads that completed with no receive waiting for them:
        # counted on the wasm side as they complete, on the trio side as
        # they are absorbed. Each counter has one writer; the wasm side
        # reads the trio side's, and a stale value only makes it wait.
        self._ahead_copied = 0
        self._ahead_taken = 0
        #: Look ahead after each read that returns data (see :meth:`_look_ahead`).
        self.lookahead = False
        self._dropped_here = False  # wasm side: this end was dropped
        # Wasm side: _start_soon is running, and the read it starts next.
        self._starting = False
        self._next_read: _Read | None = None

    def _keep_reading(self) -> None:
        """Keep one read posted while the host works on what it received (threaded).

        On a store thread each read costs a hand-over each way between the
        trio thread and the store's. Posting the next read as soon as the
        host takes the last buffered value lets the guest's next write
        complete into it on the store thread, without waiting for the trio
        side to ask. The guest sees what it would see of any reader that
        keeps a read pending. Only with nothing buffered, no read in flight
        and no look-ahead out: everything taken ahead was absorbed, so this
        read's :attr:`capacity` is all the host may hold unasked, within
        :attr:`ahead_bound`. Inline a read costs no hand-over, so nothing
        is read ahead there.
        """
        if (
            self._inflight is None
            and not self._ended
            and not self._ahead_out
            and self.rt.executor.threaded
        ):
            self.prefetch()

    def _taken_ahead(self, n: int) -> None:
        self._ahead_taken += n
        if n:
            self._resume_reading()

    def _resume_reading(self) -> None:
        """Trio side: restart the chain of reads where the bound stopped it.

        The store thread stops posting reads when what it holds unasked
        would exceed :attr:`ahead_bound`; the host taking a read's values
        makes room again. If the last read of the chain completed with data
        and started none after it, the next one is linked and posted now,
        while the host still has values in hand, rather than once it has
        taken them all. Every read of the chain is done, so the wasm side's
        count is final here and the bound is checked exactly.
        """
        tail = self._inflight
        if (
            tail is None
            or self.lookahead
            or self._ended
            or self._closed
            or self._moved
            or self._ahead_out
            or not self.rt.executor.threaded
        ):
            return
        while tail.next is not None:
            tail = tail.next
        if (
            not tail.done
            or tail.error is not None
            or tail.result is not CopyResult.COMPLETED
            or not tail.values
            or self._ahead_copied - self._ahead_taken + self.capacity > self.ahead_bound
        ):
            return
        nxt = tail.next = _Read()
        self.rt.executor.post(functools.partial(self._read_on, nxt), self._agent)

    def _start(self, rd: _Read) -> None:
        buf = HostWritableBuffer(self.t, self.capacity)
        on_copy_done = self._finisher(rd, buf)
        lookahead = self.lookahead
        ex = self.rt.executor

        def on_copy(reclaim: ReclaimBuffer) -> None:
            # Take what was copied now rather than wait for more.
            reclaim()
            done(CopyResult.COMPLETED)

        def done(result: CopyResult) -> None:
            nxt = None
            if not rd.wanted:
                rd.unasked = buf.progress
                self._ahead_copied += buf.progress
            if (
                ex.threaded
                and not lookahead
                and result is CopyResult.COMPLETED
                and buf.progress
                and self._ahead_copied - self._ahead_taken + self.capacity <= self.ahead_bound
            ):
                # Linked before the outcome goes out: the trio side moves on
                # to it as soon as it takes this one.
                nxt = rd.next = _Read()
            on_copy_done(result)
            if nxt is not None:
                self._start_soon(nxt)
            elif lookahead and result is CopyResult.COMPLETED and buf.progress:
                self._post_look_ahead(rd, chain=False)

        self._reading = True
        self.shared.read(None, buf, on_copy, done)

    def _start_soon(self, rd: _Read) -> None:
        """Wasm side: start the read that follows one that just completed, right now.

        Started before anything else runs on the store thread, in particular
        before the step of the guest task whose write the completed read
        took: that step's next write then completes into this read at once
        instead of parking, and the task needs one step fewer. Safe inside
        the copy that completed the read: the reader's side of the shared
        stream is free again by then (our ``on_copy`` reclaims its buffer
        first, and a read completed on arrival parked nothing). A read
        that completes at once starts its successor here too, from this
        loop rather than nested, so a writer with much ready costs no
        recursion.
        """
        if self._starting:
            self._next_read = rd
            return
        self._starting = True
        try:
            nxt: _Read | None = rd
            while nxt is not None:
                self._next_read = None
                self._read_on(nxt)
                nxt = self._next_read
        finally:
            self._starting = False
            self._next_read = None

    def _read_on(self, rd: _Read) -> None:
        """Wasm side: the read that follows a read that completed with data.

        Started by the store thread the moment that read completes, so the
        guest's next write completes into it without a round trip to the
        trio side. Posted only while the elements taken by reads no receive
        waited for, not yet absorbed by the trio side, plus this read's
        :attr:`capacity`, stay within :attr:`ahead_bound`: the host never
        holds more than that unasked (exactly one read when the bound is
        the capacity, as with ``serve``'s limits; four 64 KiB reads with
        the embedding defaults).
        """
        if self._dropped_here or self._reading or self._moved:
            self.rt.executor.call_soon_trio(
                functools.partial(rd.finish, CopyResult.CANCELLED, None)
            )
            return
        self._start(rd)

    def _post_look_ahead(self, rd: _Read, *, chain: bool) -> None:
        # Wasm side: queued behind whatever the copy just woke (the writer's
        # next step), so the look-ahead sees what that step does.
        self.rt.executor.call_soon_trio(self._ahead_posted)
        self.rt.executor.post(functools.partial(self._look_ahead, rd, chain), self._agent)

    def _ahead_posted(self) -> None:
        self._ahead_out += 1

    def _look_ahead(self, rd: _Read, chain: bool) -> None:
        """Wasm side: a read that never waits.

        What the writer has ready by now (a chunk, or its drop) is taken; if
        nothing is, the read is cancelled at once, unseen by the guest. After
        a read that returned data (with :attr:`lookahead`), a host that asked
        for one chunk thus learns in the same hand-over whether the stream
        ended right after it, holding at most one chunk more than it asked
        for. ``chain``: look ahead once more if this read returns data.
        """
        call_soon_trio = self.rt.executor.call_soon_trio
        if self._dropped_here or self._reading or self._moved:
            call_soon_trio(functools.partial(self._ahead_done, rd, CopyResult.CANCELLED, None))
            return
        buf = HostWritableBuffer(self.t, self.capacity)

        def done(result: CopyResult) -> None:
            self._reading = False
            values = buf.values() if buf.progress else None
            if values is not None:
                self._took = True
            call_soon_trio(functools.partial(self._ahead_done, rd, result, values))
            if chain and result is CopyResult.COMPLETED and values is not None:
                self._post_look_ahead(rd, chain=False)

        def on_copy(reclaim: ReclaimBuffer) -> None:
            reclaim()
            done(CopyResult.COMPLETED)

        self._reading = True
        self.shared.read(None, buf, on_copy, done)
        if self._reading:
            self.shared.cancel()

    def _ahead_done(self, rd: _Read, result: CopyResult, values: Any) -> None:
        # Trio side: in order after the read it follows.
        self._ahead_out -= 1
        if not (self._closed or self._moved):
            if rd.absorbed:
                self._absorb_ahead(result, values)
            else:
                rd.ahead = (result, values)
        # A probe (receive_if_ready) waits for this; a read it followed is done already.
        rd.finish(result, None)

    def read_ahead(self) -> None:
        """Let the store thread take what the guest writes next, before the trio side asks.

        Queues, on the store thread that lifted this end, one read that never
        waits (see :meth:`receive_if_ready`; with :attr:`lookahead`, one more
        after it if it returns data). A host that will read this end anyway
        (a response body, say) can call it as soon as it has the end, even on
        the wasm side: whatever the guest has written by the time the read
        runs arrives with the hand-over that brings the rest, without a round
        trip of its own. Does nothing inline, where reads cost no hand-over.
        """
        if self._agent is None or self._closed or self._moved or self._ended:
            return
        rd = _Read()
        rd.absorbed = True  # its outcome goes straight into the buffer
        self._post_look_ahead(rd, chain=self.lookahead)

    async def receive_if_ready(self) -> Any:
        """The next value if the guest's writer has one ready now, without waiting for it.

        Returns a buffered value, or reads once on the wasm side without
        parking: ``trio.EndOfChannel`` if the writer is gone (and everything
        was received), ``trio.WouldBlock`` if it has nothing ready (or a
        read is already under way). With :attr:`lookahead`, a read that
        returns data looks ahead once more in the same hand-over, so a
        following :meth:`receive_nowait` can tell whether the stream ended.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            return self.receive_nowait()
        except trio.WouldBlock:
            pass
        rt = self.rt
        if self._inflight is not None:
            raise trio.WouldBlock
        if rt.poisoned is not None:
            raise Trap(f"the instance is poisoned by an earlier trap: {rt.poisoned}")
        if rt.closing:
            raise trio.BrokenResourceError("the instance is closed")
        rd = _Read()
        rd.absorbed = True  # its outcome goes straight into the buffer
        self._ahead_out += 1
        ex = rt.executor
        ex.post(functools.partial(self._look_ahead, rd, self.lookahead), self._agent)
        if not rd.done:

            def on_trap(exc: BaseException) -> None:
                ex.call_soon_trio(lambda: rd.fail(exc))

            rt.host_waiters.add(on_trap)
            try:
                # The read never parks: its outcome comes whatever happens.
                await rd.wait(cancellable=False)
            finally:
                rt.host_waiters.discard(on_trap)
        if rd.error is not None:
            raise Trap(str(rd.error)) from rd.error
        return self.receive_nowait()

    def _drop(self) -> None:
        self._dropped_here = True
        super()._drop()

    def _absorb(self, rd: _Read) -> None:
        self._absorb_ahead(rd.result, rd.values)

    def _absorb_ahead(self, result: CopyResult, values: Any) -> None:
        if values is not None:
            if _is_bytes(self.t):
                self._items.append(values)
            else:
                rt, t = self.rt, self.t
                self._items.extend(_host_value(rt, v, t) for v in values)
        if result is CopyResult.DROPPED and not self._ended:
            self._ended = True
            self._release_hold()


@final
class FutureReceiver(_Receiver):
    """The host's readable end of a ``future<T>`` written by a guest.

    A :class:`trio.abc.ReceiveChannel` that yields the future's value once and
    then raises ``trio.EndOfChannel``; ``await get()`` returns the value
    (again on later calls). ``aclose()`` drops the host's end: the guest's
    writer then sees DROPPED.
    """

    __slots__ = ("_has_value", "_value")

    shared: ReadableFuture

    def __init__(self, rt: InstanceRuntime, shared: ReadableFuture, t: FutureType) -> None:
        super().__init__(rt, shared, t.element)
        self._has_value = False
        self._value: Any = None

    def _start(self, rd: _Read) -> None:
        buf = HostWritableBuffer(self.t, 1)
        self._reading = True
        self.shared.read(None, buf, self._finisher(rd, buf))

    def _absorb(self, rd: _Read) -> None:
        if rd.result is CopyResult.COMPLETED:
            values = rd.values
            value = _host_value(self.rt, values[0] if values else (), self.t)
            self._items.append(value)
            self._has_value = True
            self._value = value
            self._ended = True
            self._release_hold()

    def _absorb_ahead(self, result: CopyResult, values: Any) -> None:
        raise AssertionError("futures do not look ahead")

    async def get(self) -> Any:
        """The future's value, waiting for it if needed."""
        if self._has_value:
            await trio.lowlevel.checkpoint()
            return self._value
        return await self.receive()


# ---------------------------------------------------------------------------
# The hooks


def _readable_stream(rt: InstanceRuntime, v: Any, t: StreamType) -> ReadableStream:
    if type(v) is trio.MemoryReceiveChannel:
        # The common case first: the checks below go through ABCs.
        return HostSourceStream(rt, v, t.element)
    if isinstance(v, ReadableStream):
        return v
    if isinstance(v, StreamReceiver) and v.rt is rt:
        shared = v._take_shared()
        if shared is not None:
            assert isinstance(shared, ReadableStream)
            return shared
    if isinstance(v, trio.abc.ReceiveChannel):
        return HostSourceStream(rt, v, t.element)
    raise TypeError(f"expected a trio ReceiveChannel for {t!r}, got {v!r}")


def _readable_future(rt: InstanceRuntime, v: Any, t: FutureType) -> ReadableFuture:
    if type(v) is trio.MemoryReceiveChannel:
        # The common case first: the checks below go through ABCs.
        return HostSourceFuture(rt, v, t.element)
    if isinstance(v, ReadableFuture):
        return v
    if isinstance(v, FutureReceiver) and v.rt is rt:
        shared = v._take_shared()
        if shared is not None:
            assert isinstance(shared, ReadableFuture)
            return shared
    if isinstance(v, trio.abc.ReceiveChannel):
        return HostSourceFuture(rt, v, t.element)
    raise TypeError(f"expected a trio ReceiveChannel for {t!r}, got {v!r}")


@final
class HostAsyncValues:
    """The :class:`AsyncValueHooks` of values exchanged with the host.

    Lowering takes what the host holds: a trio receive channel (or a receiver
    the host got from this store, handed over as is) for a stream or future,
    an :class:`ErrorContext` or a ``str`` (its debug message) for an error
    context; guest shared objects are accepted too. Lifting gives the host a
    :class:`StreamReceiver`, a :class:`FutureReceiver` or an
    :class:`ErrorContext`.
    """

    __slots__ = ("rt",)

    def __init__(self, rt: InstanceRuntime) -> None:
        self.rt = rt

    def lift_error_context(self, cx: LiftLowerContext, i: int) -> ErrorContext:
        """Lift error-context handle ``i``."""
        result: ErrorContext = GUEST_ASYNC_VALUES.lift_error_context(cx, i)
        return result

    def lower_error_context(self, cx: LiftLowerContext, v: Any) -> int:
        """Lower error context ``v`` (or a message string) into a new handle."""
        if isinstance(v, str):
            v = ErrorContext(v)
        return GUEST_ASYNC_VALUES.lower_error_context(cx, v)

    def lift_stream(self, cx: LiftLowerContext, i: int, t: StreamType) -> StreamReceiver:
        """Lift readable stream end ``i`` into a receive channel."""
        shared = lift_stream(cx, i, t)  # (as GUEST_ASYNC_VALUES does, one call less)
        return StreamReceiver(self.rt, shared, t)

    def lower_stream(self, cx: LiftLowerContext, v: Any, t: StreamType) -> int:
        """Lower a host channel (or a guest stream) into a new readable end handle."""
        return lower_stream(cx, _readable_stream(self.rt, v, t), t)

    def lift_future(self, cx: LiftLowerContext, i: int, t: FutureType) -> FutureReceiver:
        """Lift readable future end ``i`` into a receive channel."""
        shared = lift_future(cx, i, t)  # (as GUEST_ASYNC_VALUES does, one call less)
        return FutureReceiver(self.rt, shared, t)

    def lower_future(self, cx: LiftLowerContext, v: Any, t: FutureType) -> int:
        """Lower a host channel (or a guest future) into a new readable end handle."""
        return lower_future(cx, _readable_future(self.rt, v, t), t)


_HOOKS: weakref.WeakKeyDictionary[InstanceRuntime, HostAsyncValues] = weakref.WeakKeyDictionary()


def host_values(rt: InstanceRuntime) -> AsyncValueHooks:
    """The host-facing hooks of store ``rt`` (one object per store)."""
    hooks = _HOOKS.get(rt)
    if hooks is None:
        hooks = _HOOKS[rt] = HostAsyncValues(rt)
    return hooks
