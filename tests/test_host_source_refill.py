"""How a host source stream's refill reaches the store thread: through a buffer, not a job.

On store threads a ``HostSourceStream`` asks its pump for what the channel
holds (a refill) while the guest still reads the last item taken ahead. The
answer goes into the pump's ``refilled`` buffer; the wasm side takes it when
it needs the next item, and a job is posted to the store thread only when a
read waits for the answer by then. These tests drive both sides by hand
through a scripted executor, so each order of events is taken on purpose
(no threads, no timing): what the trio side queues for itself and what it
posts to the store thread are run only when a test says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from trio_wasi._abi._buffers import HostWritableBuffer
from trio_wasi._abi._streams import CopyResult
from trio_wasi._abi._types import U8
from trio_wasi._run._hostvalues import SPARE_ITEMS, HostSourceStream


class _Script:
    """An executor and runtime whose two sides run only when the test says."""

    threaded = True

    def __init__(self) -> None:
        self.for_trio: list[Callable[[], None]] = []
        self.posted: list[Callable[[], None]] = []
        self.outside = 0
        self.executor = self
        self.limits = None
        self.closing = False
        self.service_nursery = None
        self.nursery = None
        self.spawned: list[Any] = []

    # executor
    def current_agent(self) -> None:
        return None

    def outside_begin(self) -> None:
        self.outside += 1

    def outside_end(self) -> None:
        self.outside -= 1

    def call_soon_trio(self, fn: Callable[[], None]) -> None:
        self.for_trio.append(fn)

    def post(self, fn: Callable[[], None], agent: Any = None) -> None:
        self.posted.append(fn)

    # runtime
    def spawn(self, fn: Any, service: bool = False) -> None:
        self.spawned.append(fn)

    def poison(self, exc: BaseException) -> None:
        raise AssertionError(f"poisoned: {exc!r}")

    def run_trio(self) -> None:
        """Run what the wasm side queued for the trio side."""
        while self.for_trio:
            self.for_trio.pop(0)()

    def run_posted(self) -> int:
        """Run the jobs posted to the store thread; how many there were."""
        n = 0
        while self.posted:
            self.posted.pop(0)()
            n += 1
        return n


class _Read:
    """A guest read of ``n`` bytes and its outcome."""

    def __init__(self, stream: HostSourceStream, n: int) -> None:
        self.buf = HostWritableBuffer(U8, n)
        self.results: list[CopyResult] = []
        stream.read(None, self.buf, self._on_copy, self.results.append)

    def _on_copy(self, reclaim: Any) -> None:
        raise AssertionError("a host source completes copies with on_copy_done")

    @property
    def data(self) -> bytes:
        return bytes(self.buf.values()) if self.buf.progress else b""


def _open(items: list[bytes]) -> tuple[_Script, HostSourceStream]:
    script = _Script()
    send, recv = trio.open_memory_channel[bytes](len(items) + 1)
    for item in items:
        send.send_nowait(item)
    stream = HostSourceStream(script, recv, U8)  # type: ignore[arg-type]
    return script, stream


def _read_all_spares(script: _Script, stream: HostSourceStream, items: list[bytes]) -> None:
    # The first read waits for the pump; its answer brings SPARE_ITEMS more.
    first = _Read(stream, 8)
    assert first.results == []
    script.run_trio()
    assert script.run_posted() == 1
    assert first.results == [CopyResult.COMPLETED] and first.data == items[0]
    # Reading the spares; starting on the last one asks for a refill.
    for k in range(1, SPARE_ITEMS + 1):
        rd = _Read(stream, 8)
        assert rd.results == [CopyResult.COMPLETED] and rd.data == items[k]
    assert script.posted == []


def test_a_refill_answered_before_the_next_read_costs_no_job() -> None:
    items = [bytes([i]) * 8 for i in range(2 * SPARE_ITEMS + 1)]
    script, stream = _open(items)
    _read_all_spares(script, stream, items)
    # The refill was asked for when the guest started on the last spare.
    # It counts as trio-side work until answered.
    assert len(script.for_trio) == 1 and script.outside == 1
    script.run_trio()
    # Answered into the buffer: nothing for the store thread to run.
    assert script.posted == []
    assert list(stream._pump.refilled) == items[SPARE_ITEMS + 1 : 2 * SPARE_ITEMS + 1]
    assert script.outside == 0
    # The guest's next reads take the refilled items at once, in order.
    for k in range(SPARE_ITEMS + 1, 2 * SPARE_ITEMS + 1):
        rd = _Read(stream, 8)
        assert rd.results == [CopyResult.COMPLETED] and rd.data == items[k]
    assert script.posted == []


def test_a_read_waiting_for_the_refill_gets_exactly_one_job() -> None:
    items = [bytes([i]) * 8 for i in range(SPARE_ITEMS + 3)]
    script, stream = _open(items)
    _read_all_spares(script, stream, items)
    # The guest reads again before the trio side answered the refill.
    waiting = _Read(stream, 8)
    assert waiting.results == []
    script.run_trio()
    # The answer found the read waiting: one job, which completes it.
    assert len(script.posted) == 1
    assert script.run_posted() == 1
    assert waiting.results == [CopyResult.COMPLETED]
    assert waiting.data == items[SPARE_ITEMS + 1]
    rd = _Read(stream, 8)
    assert rd.results == [CopyResult.COMPLETED] and rd.data == items[SPARE_ITEMS + 2]


def test_a_cancelled_read_leaves_the_refill_to_the_next_read() -> None:
    items = [bytes([i]) * 8 for i in range(SPARE_ITEMS + 2)]
    script, stream = _open(items)
    _read_all_spares(script, stream, items)
    cancelled = _Read(stream, 8)
    stream.cancel()
    assert cancelled.results == [CopyResult.CANCELLED]
    script.run_trio()
    # Nobody waits any more: the answer stays in the buffer, no job.
    assert script.posted == []
    rd = _Read(stream, 8)
    assert rd.results == [CopyResult.COMPLETED] and rd.data == items[SPARE_ITEMS + 1]
