"""Deadlines for running wasm: wasmtime's epoch interruption driven by a ticker thread.

Every engine is configured with epoch interruption, so compiled code checks
the engine's epoch counter at function entries and loop headers (a load and
a compare). Each store asks to be told at the next tick (an epoch deadline
of one tick) through a deadline callback, which runs on the thread that runs
the wasm, with the GIL: it compares the store's :class:`Deadline` with the
clock and either lets the wasm continue for another tick or ends the call
with an error saying the deadline passed. The deadline itself is a plain
Python attribute, so the trio side can arm and disarm it without touching
the store from another thread.

The ticker is a thread, not a trio task, because wasm that runs inline holds
the trio thread: nothing on the event loop could tick while it runs. It only
runs while some deadline is armed on its engine, and lingers a little after
the last one goes so that back-to-back calls do not start a thread each.

The tick interval follows the nearest armed deadline: about 1% of the time
left to it, between :data:`TICK_SECONDS` and :data:`MAX_TICK_SECONDS`, and
never past it (the ticker wakes when a nearer deadline is armed). Once it has
passed, or while an expired deadline waits for its stores to close, the epoch
advances every :data:`TICK_SECONDS`. So a deadline is noticed at most about
1% of its timeout late, or one short tick when that is longer (5 ms), while
a server whose calls each arm a deadline of seconds wakes the ticker a few
times a second instead of two hundred.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_TICK_SECONDS", "TICK_SECONDS", "Deadline", "EpochTicker", "tick_interval"]

#: The shortest tick: how often the epoch advances once the nearest armed
#: deadline is near (1% of the time left is less) or has passed.
TICK_SECONDS = 0.005

#: The longest tick, however far the nearest deadline is.
MAX_TICK_SECONDS = 0.1

# Disarmed deadlines left in the heap before it is rebuilt, beyond the armed.
_COMPACT_SLACK = 1024

# The tick is this fraction of the time left to the nearest deadline.
_TICK_FRACTION = 0.01

# Seconds the ticker keeps running after the last deadline is disarmed.
_LINGER_SECONDS = 1.0


class Deadline:
    """When the wasm of one top-level instance must stop (``time.monotonic()`` seconds).

    ``at`` is the earliest armed deadline (``inf`` when none); ``expired``
    makes every later check fail, for an instance discarded after a deadline
    passed or a trap: wasm still running in it is ended at the next tick.
    """

    __slots__ = ("_armed", "_lock", "_ticker", "at", "expired", "on_earlier", "reason")

    def __init__(self, ticker: EpochTicker | None = None) -> None:
        self.at = math.inf
        self.expired = False
        self.reason = "deadline exceeded: the guest ran past its timeout (limit timeout)"
        self._armed: list[float] = []
        # Calls arm from the trio thread, background steps from store threads.
        self._lock = threading.Lock()
        self._ticker = ticker
        # Called with the new ``at`` when arming moves it earlier (a watcher
        # on the trio side that sleeps until ``at``).
        self.on_earlier: Callable[[float], None] | None = None

    def arm(self, at: float, *, notify: bool = True) -> None:
        """Add the deadline ``at``; the earliest armed one applies.

        ``notify=False`` (off the trio thread) leaves :attr:`on_earlier` alone.
        """
        with self._lock:
            self._armed.append(at)
            earlier = at < self.at
            if earlier:
                self.at = at
        if earlier and notify and self.on_earlier is not None:
            self.on_earlier(at)
        if self._ticker is not None:
            self._ticker.arm(at)

    def disarm(self, at: float) -> None:
        """Remove a deadline added by :meth:`arm`."""
        with self._lock:
            self._armed.remove(at)
            self.at = min(self._armed, default=math.inf)
        if self._ticker is not None:
            self._ticker.disarm(at)

    def expire(self, reason: str) -> None:
        """Make every later check fail with ``reason``, until :meth:`release`.

        The ticker keeps running meanwhile, so wasm still running under this
        deadline (a task that went on after its call) is ended too.
        """
        if not self.expired:
            self.reason = reason
            self.expired = True
            if self._ticker is not None:
                # Due at once: tick at the shortest interval until released.
                self._ticker.arm(-math.inf)

    def release(self) -> None:
        """The stores under this deadline are closed: stop ticking for them."""
        if self.expired and self._ticker is not None:
            self._ticker.disarm(-math.inf)
            self._ticker = None

    def passed(self) -> bool:
        """Whether wasm running under this deadline must stop now."""
        return self.expired or time.monotonic() >= self.at


def tick_interval(left: float) -> float:
    """Seconds until the next tick when the nearest deadline is ``left`` seconds away."""
    if left <= 0:
        return TICK_SECONDS
    return min(max(left * _TICK_FRACTION, TICK_SECONDS), MAX_TICK_SECONDS, left)


class EpochTicker:
    """Advances an engine's epoch while deadlines are armed, more often as the nearest nears."""

    def __init__(self, engine: Any) -> None:
        # The wasmtime.Engine; the thread holds it, so the engine outlives it.
        self._engine = engine
        self._lock = threading.Lock()
        # The armed deadlines as a heap; a disarmed one stays until it comes
        # to the top, counted in _gone meanwhile (disarming stays O(1)).
        self._heap: list[float] = []
        self._gone: dict[float, int] = {}
        self._armed = 0
        self._thread: threading.Thread | None = None
        # When the thread will next tick (inf while idle or lingering).
        self._next_tick = math.inf
        self._wake = threading.Condition(self._lock)
        self.ticks = 0

    def arm(self, at: float) -> None:
        """Note one more armed deadline ``at``, starting the thread if needed."""
        with self._lock:
            self._armed += 1
            heapq.heappush(self._heap, at)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="trio_wasi epoch ticker", daemon=True
                )
                self._thread.start()
            elif at < self._next_tick:
                # Sooner than the thread means to tick: let it choose again.
                self._wake.notify()

    def disarm(self, at: float) -> None:
        """Note that the deadline ``at`` added by :meth:`arm` is gone."""
        with self._lock:
            self._armed -= 1
            assert self._armed >= 0
            self._gone[at] = self._gone.get(at, 0) + 1
            if self._armed == 0:
                self._heap.clear()
                self._gone.clear()
            elif len(self._heap) > 2 * self._armed + _COMPACT_SLACK:
                # A long call's deadline on top keeps later ones, disarmed
                # since, from being popped: drop them (amortised O(1)).
                self._compact()

    def _compact(self) -> None:
        gone = self._gone
        kept = []
        for at in self._heap:
            count = gone.get(at)
            if count is None:
                kept.append(at)
            elif count == 1:
                del gone[at]
            else:
                gone[at] = count - 1
        heapq.heapify(kept)
        self._heap = kept

    def _nearest(self) -> float:
        """The nearest armed deadline (with the lock held, some armed)."""
        heap, gone = self._heap, self._gone
        while True:
            top = heap[0]
            count = gone.get(top)
            if count is None:
                return top
            heapq.heappop(heap)
            if count == 1:
                del gone[top]
            else:
                gone[top] = count - 1

    def _run(self) -> None:
        engine = self._engine
        with self._lock:
            while True:
                if self._armed == 0:
                    self._next_tick = math.inf
                    self._wake.wait(_LINGER_SECONDS)
                    if self._armed == 0:
                        self._thread = None
                        return
                    continue
                now = time.monotonic()
                interval = tick_interval(self._nearest() - now)
                self._next_tick = now + interval
                # Woken early by a nearer deadline: choose the interval again.
                if self._wake.wait(interval):
                    continue
                engine.increment_epoch()
                self.ticks += 1
