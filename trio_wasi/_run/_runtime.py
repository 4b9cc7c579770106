"""Per-store runtime state shared by tasks, built-ins and the host API.

One :class:`StoreRuntime` exists per wasmtime store (one per top-level
instance). It knows which executor runs the store's wasm, which task's wasm
is on top of the stack (the built-ins act on "the current task"), the nursery
that owns every trio task the store starts, and every component instance
state (to release re-entrance flags while a frame is parked).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from .._abi._handles import InstanceState
from .._abi._trap import trap
from ._executor import Executor

if TYPE_CHECKING:
    from ._tasks import Task

__all__ = ["StoreRuntime"]


class StoreRuntime:
    """Scheduling state of one store."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.current: list[Task | None] = []
        self.nursery: trio.Nursery | None = None
        self.states: list[InstanceState] = []
        self.poisoned: str | None = None
        self.closing = False
        # Wakers of tasks waiting on an instance's backpressure, exclusive
        # lock or re-entrance flags.
        self._watchers: dict[InstanceState, list[Callable[[], None]]] = {}
        # Host calls awaiting a result: told when the store traps.
        self.host_waiters: set[Callable[[BaseException], None]] = set()
        # Drivers whose wait may be over but who have not run yet (inline).
        self.pending_pokes = 0
        # Consecutive callback steps that only yielded (got no event, asked to
        # yield again): a parked frame that sees nothing else is stalled.
        self.yield_spins = 0

    SPIN_LIMIT = 2000

    def note_step(self, spun: bool) -> None:
        self.yield_spins = self.yield_spins + 1 if spun else 0

    def stalled(self) -> bool:
        return self.yield_spins > self.SPIN_LIMIT

    def is_idle(self) -> bool:
        """No work is queued or running and none can arrive from the trio side."""
        return self.pending_pokes == 0 and self.executor.is_idle()

    def yield_now(self) -> None:
        """Let other queued work of the store run (``thread.yield``)."""
        self.executor.drain()

    # -- instance-level wakeups ------------------------------------------------

    def watch_instance(self, inst: InstanceState, waker: Callable[[], None]) -> None:
        self._watchers.setdefault(inst, []).append(waker)

    def unwatch_instance(self, inst: InstanceState, waker: Callable[[], None]) -> None:
        wakers = self._watchers.get(inst)
        if wakers and waker in wakers:
            wakers.remove(waker)

    def instance_changed(self, inst: InstanceState) -> None:
        """Backpressure, the exclusive lock or an enter flag of ``inst`` changed."""
        for target in inst.self_and_ancestors():
            wakers = self._watchers.get(target)
            if wakers:
                for waker in list(wakers):
                    waker()

    def poison(self, exc: BaseException) -> None:
        """Record that the store trapped: no wasm of it may run again."""
        if self.poisoned is None:
            self.poisoned = str(exc) or type(exc).__name__
            for s in self.states:
                s.poisoned = True
            for waiter in list(self.host_waiters):
                waiter(exc)

    # -- the current task ------------------------------------------------------

    def current_task(self) -> Task:
        task = self.current[-1] if self.current else None
        if task is None:
            trap("this built-in needs a task, and none is running (start function?)")
        return task

    def maybe_current_task(self) -> Task | None:
        return self.current[-1] if self.current else None

    # -- trio side work ------------------------------------------------------------

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` as a trio task in the store's nursery (from the wasm side)."""
        nursery = self.nursery
        if nursery is None:
            trap("the instance has no nursery: it is not open (use `async with`)")

        def start() -> None:
            if not self.closing:
                nursery.start_soon(fn, *args)

        self.executor.call_soon_trio(start)

    # -- blocking on the wasm side ---------------------------------------------

    def block_until(self, ready: Callable[[], bool], describe: Callable[[], str]) -> None:
        """Block the current wasm frame until ``ready()`` (see ``_executor``).

        While the frame is parked, the instances it entered may be entered by
        other work, as they would be if the frame's stack had been switched
        out (CanonicalABI.md: a blocked thread's call has returned control to
        the event loop).
        """
        if ready():
            return
        entered = [s for s in self.states if not s.may_enter]
        for s in entered:
            s.may_enter = True
        saved_current = list(self.current)
        try:
            self.executor.block_until(ready, describe, self.stalled)
        finally:
            self.current[:] = saved_current
            for s in entered:
                s.may_enter = False
