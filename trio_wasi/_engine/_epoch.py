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
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["TICK_SECONDS", "Deadline", "EpochTicker"]

#: How often the epoch advances while a deadline is armed; a deadline is
#: noticed at most about one tick late.
TICK_SECONDS = 0.005

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
            self._ticker.arm()

    def disarm(self, at: float) -> None:
        """Remove a deadline added by :meth:`arm`."""
        with self._lock:
            self._armed.remove(at)
            self.at = min(self._armed, default=math.inf)
        if self._ticker is not None:
            self._ticker.disarm()

    def expire(self, reason: str) -> None:
        """Make every later check fail with ``reason``, until :meth:`release`.

        The ticker keeps running meanwhile, so wasm still running under this
        deadline (a task that went on after its call) is ended too.
        """
        if not self.expired:
            self.reason = reason
            self.expired = True
            if self._ticker is not None:
                self._ticker.arm()

    def release(self) -> None:
        """The stores under this deadline are closed: stop ticking for them."""
        if self.expired and self._ticker is not None:
            self._ticker.disarm()
            self._ticker = None

    def passed(self) -> bool:
        """Whether wasm running under this deadline must stop now."""
        return self.expired or time.monotonic() >= self.at


class EpochTicker:
    """Advances an engine's epoch every :data:`TICK_SECONDS` while deadlines are armed."""

    def __init__(self, engine: Any) -> None:
        # The wasmtime.Engine; the thread holds it, so the engine outlives it.
        self._engine = engine
        self._lock = threading.Lock()
        self._armed = 0
        self._thread: threading.Thread | None = None
        self._wake = threading.Condition(self._lock)
        self.ticks = 0

    def arm(self) -> None:
        """Note one more armed deadline, starting the thread if needed."""
        with self._lock:
            self._armed += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="trio_wasi epoch ticker", daemon=True
                )
                self._thread.start()
            elif self._armed == 1:
                self._wake.notify()

    def disarm(self) -> None:
        """Note one armed deadline fewer."""
        with self._lock:
            self._armed -= 1
            assert self._armed >= 0

    def _run(self) -> None:
        engine = self._engine
        with self._lock:
            while True:
                if self._armed == 0:
                    self._wake.wait(_LINGER_SECONDS)
                    if self._armed == 0:
                        self._thread = None
                        return
                    continue
                self._lock.release()
                try:
                    time.sleep(TICK_SECONDS)
                    engine.increment_epoch()
                    self.ticks += 1
                finally:
                    self._lock.acquire()
