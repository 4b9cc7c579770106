"""wasi:clocks 0.3.0 (monotonic, system, timezone) and 0.2.0 (monotonic, wall).

The monotonic clock is ``time.monotonic_ns``. 0.3 waits are ``async``
functions that sleep on trio, so a guest's concurrent waits overlap; 0.2
subscriptions are pollables (a :class:`ClockReadiness`). Every wait is counted in
the instance's state (``clock_waiters``, ``max_clock_waiters``).
"""

from __future__ import annotations

import functools
import os
import time
from typing import TYPE_CHECKING, Any

from ._config import WasiConfig
from ._io import ClockReadiness, Pollable
from ._state import WasiState

if TYPE_CHECKING:
    from .._hostdefs import HostContext
    from .._linker import Linker

__all__ = ["add_to_linker"]

RESOLUTION_NS = 1


class _PerInstance:
    def __init__(self, config: WasiConfig, context: HostContext) -> None:
        self.state = WasiState.of(context, config)


class Monotonic03(_PerInstance):
    def now(self) -> int:
        return time.monotonic_ns()

    def get_resolution(self) -> int:
        return RESOLUTION_NS

    async def wait_until(self, when: int) -> None:
        await ClockReadiness(when, self.state.note_clock_wait).wait()

    async def wait_for(self, how_long: int) -> None:
        await ClockReadiness(time.monotonic_ns() + how_long, self.state.note_clock_wait).wait()


class Monotonic02(_PerInstance):
    def now(self) -> int:
        return time.monotonic_ns()

    def resolution(self) -> int:
        return RESOLUTION_NS

    def subscribe_instant(self, when: int) -> Pollable:
        return Pollable(ClockReadiness(when, self.state.note_clock_wait))

    def subscribe_duration(self, when: int) -> Pollable:
        return Pollable(ClockReadiness(time.monotonic_ns() + when, self.state.note_clock_wait))


def _split(ns: int) -> tuple[int, int]:
    return ns // 1_000_000_000, ns % 1_000_000_000


class SystemClock:
    @staticmethod
    def now() -> dict[str, int]:
        seconds, nanos = _split(time.time_ns())
        return {"seconds": seconds, "nanoseconds": nanos}

    @staticmethod
    def get_resolution() -> int:
        return RESOLUTION_NS


class WallClock:
    @staticmethod
    def now() -> dict[str, int]:
        seconds, nanos = _split(time.time_ns())
        return {"seconds": seconds, "nanoseconds": nanos}

    @staticmethod
    def resolution() -> dict[str, int]:
        return {"seconds": 0, "nanoseconds": RESOLUTION_NS}


class Timezone:
    """The host's local time zone (the IANA name only when the host knows it)."""

    @staticmethod
    def iana_id() -> str | None:
        return _iana_id()

    @staticmethod
    def utc_offset(when: dict[str, int]) -> int | None:
        try:
            local = time.localtime(when["seconds"])
        except (OverflowError, OSError, ValueError):
            return None
        return int(local.tm_gmtoff) * 1_000_000_000

    @staticmethod
    def to_debug_string() -> str:
        return _iana_id() or time.strftime("%z")


def _iana_id() -> str | None:
    """The host's zone name: ``$TZ`` when it names one, else /etc/localtime's target."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if "/" in tz and not tz.startswith("/"):
        return tz
    try:
        target = os.readlink(tz if tz.startswith("/") else "/etc/localtime")
    except OSError:
        return None
    _, found, name = target.partition("zoneinfo/")
    return name if found and name else None


class Types:
    """wasi:clocks/types@0.3.0 declares only types."""


def add_to_linker(linker: Linker, config: WasiConfig) -> None:
    """Define wasi:clocks 0.3.0 and 0.2.0."""

    def per(cls: type) -> Any:
        return functools.partial(cls, config)

    linker.define_interface("wasi:clocks/types@0.3.0", Types)
    linker.define_interface("wasi:clocks/monotonic-clock@0.3.0", factory=per(Monotonic03))
    linker.define_interface("wasi:clocks/system-clock@0.3.0", SystemClock)
    linker.define_interface("wasi:clocks/timezone@0.3.0", Timezone)
    linker.define_interface("wasi:clocks/monotonic-clock@0.2.0", factory=per(Monotonic02))
    linker.define_interface("wasi:clocks/wall-clock@0.2.0", WallClock)
