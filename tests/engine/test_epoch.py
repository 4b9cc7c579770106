"""The epoch ticker: how often it ticks, and its bookkeeping of armed deadlines."""

from __future__ import annotations

import math
import threading

import pytest

from trio_wasi._engine._epoch import (
    _COMPACT_SLACK,
    MAX_TICK_SECONDS,
    TICK_SECONDS,
    Deadline,
    EpochTicker,
    tick_interval,
)


@pytest.mark.parametrize(
    ("left", "interval"),
    [
        (3600.0, MAX_TICK_SECONDS),  # far: the longest tick
        (30.0, MAX_TICK_SECONDS),
        (2.0, 0.02),  # 1% of the time left
        (0.2, TICK_SECONDS),  # 1% is less than the shortest tick
        (0.002, 0.002),  # never past the deadline
        (0.0, TICK_SECONDS),  # passed: the shortest tick
        (-1.0, TICK_SECONDS),
        (-math.inf, TICK_SECONDS),  # an expired deadline
    ],
)
def test_tick_interval(left: float, interval: float) -> None:
    assert tick_interval(left) == pytest.approx(interval)


class _Engine:
    """Counts epoch increments; tells a waiter when one happened."""

    def __init__(self) -> None:
        self.ticked = threading.Event()

    def increment_epoch(self) -> None:
        self.ticked.set()


def _nearest(ticker: EpochTicker) -> float:
    with ticker._lock:
        return ticker._nearest()


def test_nearest_follows_arming_and_disarming() -> None:
    ticker = EpochTicker(_Engine())
    far = 1e12  # never reached: the thread only waits
    ticker.arm(far + 3)
    ticker.arm(far + 1)
    ticker.arm(far + 1)
    ticker.arm(far + 2)
    assert _nearest(ticker) == far + 1
    ticker.disarm(far + 1)
    assert _nearest(ticker) == far + 1  # armed twice, disarmed once
    ticker.disarm(far + 1)
    assert _nearest(ticker) == far + 2
    ticker.arm(far)
    assert _nearest(ticker) == far
    for at in (far, far + 2, far + 3):
        ticker.disarm(at)
    assert ticker._armed == 0
    assert ticker._heap == []


def test_disarmed_deadlines_under_a_long_one_are_dropped() -> None:
    ticker = EpochTicker(_Engine())
    far = 1e12
    ticker.arm(far)  # a long call: stays on top of the heap
    for i in range(1, 4 * _COMPACT_SLACK):
        ticker.arm(far + i)
        ticker.disarm(far + i)
    assert len(ticker._heap) <= 2 + _COMPACT_SLACK
    assert _nearest(ticker) == far
    ticker.arm(far + 0.5)
    ticker.disarm(far)
    assert _nearest(ticker) == far + 0.5
    ticker.disarm(far + 0.5)


def test_an_expired_deadline_behind_a_far_one_is_ticked_for() -> None:
    engine = _Engine()
    ticker = EpochTicker(engine)
    ticker.arm(1e12)  # far: the thread waits the longest tick
    deadline = Deadline(ticker)
    deadline.expire("gone")  # due now: ticks at the shortest interval
    assert engine.ticked.wait(60)  # a hang guard, not a timing claim
    assert deadline.passed()
    deadline.release()
    ticker.disarm(1e12)
    assert ticker._armed == 0
