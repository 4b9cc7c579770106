"""Per-instantiation runtime state shared by tasks, built-ins and the host API.

One :class:`StoreRuntime` exists per top-level instance. It knows which
executor runs the wasm (see ``_executor``), which task's wasm is on top of
each thread's stack (the built-ins act on "the current task"), which
component instances each thread's active frames have entered, the nursery
that owns every trio task the instance starts, and every component instance
state.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from .._abi._handles import InstanceState
from .._abi._trap import trap
from ._executor import Agent, Executor

if TYPE_CHECKING:
    from ._tasks import Task

__all__ = ["StoreHandle", "StoreRuntime"]


@attrs.define(eq=False)
class StoreHandle:
    """A wasmtime store of one component instance and the agent that runs it."""

    store: Any
    agent: Agent | None = None


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.current: list[Task | None] = []
        # (instance, caller) pairs entered by this thread's active frames.
        self.entered: list[tuple[InstanceState, InstanceState | None]] = []


class StoreRuntime:
    """Scheduling state of one top-level instance."""

    SPIN_LIMIT = 2000

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        # The HostContext its host functions see (set by the instance).
        self.context: Any = None
        self._tls = _ThreadState()
        self.nursery: trio.Nursery | None = None
        self.service_nursery: trio.Nursery | None = None
        self.states: list[InstanceState] = []
        self.stores: list[StoreHandle] = []
        self.poisoned: str | None = None
        self.closing = False
        # Wakers of tasks waiting on an instance's backpressure, exclusive
        # lock or re-entrance flags.
        self._watchers: dict[InstanceState, list[Callable[[], None]]] = {}
        # Host calls awaiting a result: told when the instance traps.
        self.host_waiters: set[Callable[[BaseException], None]] = set()
        # Drivers whose wait may be over but who have not run yet (inline).
        self.pending_pokes = 0
        # Consecutive callback steps that only yielded (got no event, asked to
        # yield again): a parked frame that sees nothing else is stalled.
        self.yield_spins = 0

    # -- the current task ------------------------------------------------------

    @property
    def current(self) -> list[Task | None]:
        """The tasks whose wasm is on this thread's stack, innermost last."""
        return self._tls.current

    def current_task(self) -> Task:
        stack = self._tls.current
        task = stack[-1] if stack else None
        if task is None:
            trap("this built-in needs a task, and none is running (start function?)")
        return task

    def maybe_current_task(self) -> Task | None:
        stack = self._tls.current
        return stack[-1] if stack else None

    # -- entering instances ---------------------------------------------------------

    def enter(self, inst: InstanceState, caller: InstanceState | None) -> None:
        inst.enter_from(caller)
        self._tls.entered.append((inst, caller))

    def leave(self, inst: InstanceState, caller: InstanceState | None) -> None:
        entered = self._tls.entered
        assert entered and entered[-1][0] is inst, "unbalanced instance enter/leave"
        entered.pop()
        inst.leave_to(caller)

    # -- spinning --------------------------------------------------------------------

    def note_step(self, spun: bool) -> None:
        self.yield_spins = self.yield_spins + 1 if spun else 0

    def stalled(self) -> bool:
        return self.yield_spins > self.SPIN_LIMIT

    def is_idle(self) -> bool:
        """No work is queued or running and none can arrive from the trio side."""
        return self.pending_pokes == 0 and self.executor.is_idle()

    def yield_now(self, task: Task) -> None:
        """``thread.yield`` from a frame: let other ready work run first.

        Inline there is no other stack to switch to, so it returns at once.
        """
        if not self.executor.threaded or not task.may_block:
            return
        self.note_step(True)
        self._parked(lambda: self.executor.yield_park(lambda: f"{task!r} yields", self.stalled))

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
        """Record that the instance trapped: none of its wasm may run again."""
        if self.poisoned is None:
            self.poisoned = str(exc) or type(exc).__name__
            for s in self.states:
                s.poisoned = True
            for waiter in list(self.host_waiters):
                waiter(exc)

    # -- trio side work ------------------------------------------------------------

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any, service: bool = False) -> None:
        """Start ``fn(*args)`` as a trio task of the instance (from either side).

        Guest work (task drivers, host calls made by guest tasks) runs in the
        instance's nursery, which its ``async with`` block waits for. Service
        work (pumps of host streams, tasks host functions start for the
        instance) runs in the service nursery, which is cancelled once the
        guest work is over: nothing left behind can keep the block open.
        """
        nursery = self.service_nursery if service else self.nursery
        if nursery is None:
            nursery = self.nursery
        if nursery is None:
            trap("the instance has no nursery: open it with `async with linker.instantiate(...)`")

        # Until the task has started, the wasm side cannot see that it will
        # post (a host function's task that will read the stream the guest is
        # about to write): count it as trio-side work until then, so a guest
        # waiting for it is not taken for a deadlock. Once it runs, what it
        # waits for counts itself (pumps, host calls); counting its whole life
        # would hide real deadlocks behind every waiting task driver.
        ex = self.executor
        ex.outside_begin()

        async def run() -> None:
            ex.outside_end()
            await fn(*args)

        def start() -> None:
            if self.closing:
                ex.outside_end()
            else:
                nursery.start_soon(run)

        ex.call_soon_trio(start)

    # -- blocking on the wasm side ---------------------------------------------

    def block_until(self, ready: Callable[[], bool], describe: Callable[[], str]) -> None:
        """Park the current wasm frame until ``ready()`` (see ``_executor``).

        While the frame is parked, the instances its thread's active frames
        entered may be entered by other work, as they could be if the frame's
        stack had been switched out (CanonicalABI.md: a blocked thread has
        returned control to the event loop).
        """
        if ready():
            return
        self._parked(lambda: self.executor.block_until(ready, describe, self.stalled))

    def _parked(self, wait: Callable[[], None]) -> None:
        """Run ``wait`` with this thread's entered instances released."""
        tls = self._tls
        saved = tls.entered
        tls.entered = []
        for inst, caller in reversed(saved):
            inst.leave_to(caller)
        saved_current = list(tls.current)
        try:
            wait()
        finally:
            tls.current[:] = saved_current
            for inst, caller in saved:
                if not inst.may_enter_from(caller):
                    trap("cannot enter component instance (resuming a parked call)")
                inst.enter_from(caller)
            tls.entered = saved
