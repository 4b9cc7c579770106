"""Per-instantiation runtime state shared by tasks, built-ins and the host API.

One :class:`InstanceRuntime` exists per top-level instance. It knows which
executor runs the wasm (see ``_executor``), which task's wasm is on top of
each thread's stack (the built-ins act on "the current task"), which
component instances each thread's active frames have entered, the nursery
that owns every trio task the instance starts, and every component instance
state.
"""

from __future__ import annotations

import collections
import contextvars
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from threading import get_ident
from typing import TYPE_CHECKING, Any, cast

import outcome
import trio

from .._abi._handles import InstanceState
from .._abi._trap import trap
from .._engine import Deadline, Engine, Store
from .._limits import Limits
from ._executor import Agent, Executor
from ._threads import entries_of, others_ready, run_tag, stack_guard, sync_scope
from ._threads import release as release_thread

if TYPE_CHECKING:
    from .._abi._tasks import Task
    from ._tasks import LiftedFunc, _Driver

__all__ = ["StoreHandle", "InstanceRuntime"]


class StoreHandle:
    """A wasmtime store of one component instance and the agent that runs it.

    Guest threads (thread.new-indirect) run wasm of this store on several OS
    threads; ``root`` is then its permanent outermost activation (_stackroot).
    Compared by identity, and weakly referenceable (per-handle tables key on it).
    """

    __slots__ = ("__weakref__", "agent", "root", "store", "threads")

    def __init__(
        self, store: Any, agent: Agent | None = None, threads: bool = False, root: Any = None
    ) -> None:
        self.store = store
        self.agent = agent
        self.threads = threads
        self.root = root


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.current: list[Task | None] = []
        # (instance, caller) pairs entered by this thread's active frames.
        self.entered: list[tuple[InstanceState, InstanceState | None]] = []


class InstanceRuntime:
    """Scheduling state of one top-level instance.

    It is the :class:`~trio_wasi._abi._scheduler.Scheduler` of the tasks of
    its instances: the canonical ABI's task logic blocks, wakes and asks for
    the current task through it.
    """

    SPIN_LIMIT = 2000

    def __init__(
        self, executor: Executor, limits: Limits | None = None, deadline: Deadline | None = None
    ) -> None:
        # The bounds of this instance (None: unbounded, for dry walks) and
        # the deadline its stores' wasm runs under (see _engine/_epoch.py).
        self.limits = limits
        self.deadline = deadline
        # The HostContext its host functions see (set by the instance).
        self.context: Any = None
        self._tls = _ThreadState()
        self.nursery: trio.Nursery | None = None
        self.service_nursery: trio.Nursery | None = None
        self.states: list[InstanceState] = []
        self.stores: list[StoreHandle] = []
        self.poisoned: str | None = None
        self.unreported: BaseException | None = None
        self.closing = False
        # Drivers whose own wait is over but whom an instance holds back
        # (backpressure, its exclusive lock, or an active frame), keyed by
        # the instance that holds them back, oldest first. Only a change of
        # that instance wakes them, and only the first that can go.
        self._blocked: dict[InstanceState, OrderedDict[_Driver, None]] = {}
        # Host calls awaiting a result: told when the instance traps.
        self.host_waiters: set[Callable[[BaseException], bool | None]] = set()
        # Told (on the trio thread) when the runtime may have turned idle.
        self.idle_listeners: set[Callable[[], None]] = set()
        # Drivers whose wait may be over but who have not run yet (inline).
        self.pending_pokes = 0
        self._deferred: collections.deque[_Driver] = collections.deque()
        # Tasks waiting between steps or to enter (wasm side), and the trio
        # task that lives in the nursery while there are any.
        self.live_drivers = 0
        self._pump_running = False
        # Set when the block that opened the instance ends: the pump then
        # stops once no task waits (until then it stays, so that back-to-back
        # calls do not start a trio task each).
        self.draining = False
        # Set (and replaced) to wake the pump; pumps only ever wait on it.
        self._pump_wake = trio.Event()
        # Driver steps running on this thread's stack (inline): a poke made
        # during one is deferred to the driver's trio task.
        self.stepping = 0
        self.steps = 0
        # Consecutive callback steps that only yielded (got no event, asked to
        # yield again): a parked frame that sees nothing else is stalled.
        self.yield_spins = 0
        # Trio tasks of the nursery kept for short guest work (spawn_pooled):
        # idle ones wait here for their next job, jobs wait in _pool_jobs for
        # the trio thread to hand them out.
        self._idle_workers: list[trio.lowlevel.Task] = []
        self._pool_jobs: collections.deque[Callable[[], Awaitable[Any]]] = collections.deque()
        self._dispatch_cb = self._dispatch
        self.executor: Executor
        self.use_executor(executor)

    def use_executor(self, executor: Executor) -> None:
        """Run the wasm on ``executor`` from now on (store threads, after linking)."""
        # A plain attribute, not a property: it is read on every hand-over.
        self.executor = executor
        executor.on_idle = self._on_idle  # type: ignore[method-assign]

    # -- stores and core functions ---------------------------------------------

    def new_store(self, engine: Engine) -> StoreHandle:
        """A wasmtime store for one more component instance, under this instance's limits."""
        handle = StoreHandle(Store(engine, limits=self.limits, deadline=self.deadline))
        self.stores.append(handle)
        return handle

    def core_func(
        self, handle: StoreHandle, func: Any, params: list[str], results: list[str]
    ) -> Callable[..., Any]:
        """A core function of ``handle``'s store, callable from any agent thread.

        Called on the agent that runs the store (or inline when it has none),
        it calls straight into wasm; from elsewhere it hands the call over.
        The agent is looked up per call: an instance moves to store threads
        after linking.
        """
        raw = handle.store.raw_func(func, params, results)

        def call(*args: Any) -> Any:
            agent = handle.agent
            # (``executor.on_agent`` inline: only a threaded executor makes agents.)
            if agent is None or agent.ident == get_ident():
                if handle.threads:
                    # Several OS threads enter this store: track the entries.
                    entries = entries_of(handle)
                    if entries is not None:
                        return entries.call(agent, raw, args) if agent else raw(*args)
                return raw(*args)
            return self.executor.call_on(agent, lambda: call(*args))

        return call

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
        if self._blocked:
            self.instance_changed(inst)

    # -- spinning --------------------------------------------------------------------

    def note_step(self, spun: bool) -> None:
        if not spun:
            self.yield_spins = 0
            return
        self.yield_spins += 1
        if self.yield_spins == self.SPIN_LIMIT + 1 and self.idle_listeners:
            self.executor.call_soon_trio(self.notify_idle)

    def stalled(self) -> bool:
        return self.yield_spins > self.SPIN_LIMIT

    def is_idle(self) -> bool:
        """No work is queued or running and none can arrive from the trio side."""
        return self.pending_pokes == 0 and self.executor.is_idle()

    def activity(self) -> int:
        """A counter that moves whenever wasm-side work is handed out or run."""
        return self.steps + self.executor.activity

    def _on_idle(self) -> None:
        # The executor turned idle (on any thread): listeners check on trio.
        if self.idle_listeners:
            self.executor.call_soon_trio(self.notify_idle)

    def maybe_idle(self) -> None:
        """A driver step ended (inline): tell the listeners if nothing is left."""
        if self.idle_listeners and self.pending_pokes == 0 and self.executor.is_idle():
            self.notify_idle()

    def notify_idle(self) -> None:
        """Tell the idle listeners to look (trio thread)."""
        for listener in list(self.idle_listeners):
            listener()

    def others_ready(self, task: Task) -> bool:
        """Whether another guest thread of ``task``'s instance is ready to run."""
        return others_ready(task)

    def run_for(self, task: Task, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the agent that runs ``task``'s wasm (now when that is this one)."""
        self.executor.call_on(cast("LiftedFunc", task.func).agent, fn)

    def release_thread(self, task: Task) -> None:
        """``task`` exited: free its implicit guest thread's index."""
        release_thread(task)

    def yield_now(self, task: Task) -> None:
        """``thread.yield`` from a frame: let other ready work run first.

        Inline there is no other stack to switch to, so it returns at once.
        """
        if not self.executor.threaded or not task.may_block:
            return
        self.note_step(True)
        guard = stack_guard(self.executor.current_agent())
        tag = run_tag(task)
        self._parked(
            lambda: self.executor.yield_park(
                lambda: f"{task!r} yields", self.stalled, guard, guard, tag=tag
            )
        )

    def park_yielding(self, describe: Callable[[], str], *, blocks: bool = False) -> None:
        """Park the current frame, ready at once, behind other ready work (``_threads``).

        ``blocks`` as for :meth:`block_until`.
        """
        guard = stack_guard(self.executor.current_agent())
        task = self.maybe_current_task()
        tag = run_tag(task)
        scope = sync_scope(task) if blocks and task is not None else None
        self._parked(
            lambda: self.executor.yield_park(
                describe, self.stalled, guard, guard, tag=tag, scope=scope
            )
        )

    # -- instance-level wakeups ------------------------------------------------

    def hold_back(self, inst: InstanceState, driver: _Driver) -> None:
        """``driver`` could go but for ``inst``: wake it when ``inst`` changes."""
        blocked = self._blocked.get(inst)
        if blocked is None:
            blocked = self._blocked[inst] = OrderedDict()
        if driver in blocked:
            return
        blocked[driver] = None
        # One that was woken and is held back again keeps its place in line.
        if driver.seen_blocked:
            blocked.move_to_end(driver, last=False)
        driver.held_by = inst

    def release_held(self, inst: InstanceState, driver: _Driver) -> None:
        """``driver`` no longer waits for ``inst``."""
        blocked = self._blocked.get(inst)
        if blocked is not None:
            blocked.pop(driver, None)
            if not blocked:
                del self._blocked[inst]

    def instance_changed(self, inst: InstanceState) -> None:
        """Backpressure, the exclusive lock or an enter flag of ``inst`` changed.

        Wakes, for ``inst`` and each enclosing instance, the oldest driver
        held back by it that can go now; the step it runs changes the
        instance again, which wakes the next.
        """
        if not self._blocked:
            return
        target: InstanceState | None = inst
        while target is not None:
            blocked = self._blocked.get(target)
            if blocked:
                for driver in blocked:
                    if driver.can_go():
                        self.release_held(target, driver)
                        driver.held_by = None
                        driver.poke()
                        break
            target = target.parent

    def arm_step(self) -> float | None:
        """Bound one step the host runs for a task (a callback, an entry after waiting).

        With a ``timeout`` in the instance's limits, the step runs under a
        deadline that far away, besides any call's: work a task goes on
        with after its call returned is bounded too. Returns the deadline
        for :meth:`disarm_step` (None: nothing armed).
        """
        limits, deadline = self.limits, self.deadline
        if limits is None or limits.timeout is None or deadline is None:
            return None
        at = time.monotonic() + limits.timeout
        # Off the trio thread (store threads), the trio-side watchdog is not
        # told; running wasm is stopped by the epoch alone.
        deadline.arm(at, notify=False)
        return at

    def disarm_step(self, at: float | None) -> None:
        """Undo :meth:`arm_step`."""
        if at is not None:
            assert self.deadline is not None
            self.deadline.disarm(at)

    def poison(self, exc: BaseException) -> None:
        """Record that the instance trapped: none of its wasm may run again."""
        if self.poisoned is None:
            self.poisoned = str(exc) or type(exc).__name__
            # Wasm still running in the instance is ended at the next tick.
            if self.deadline is not None:
                self.deadline.expire(self.poisoned)
            for s in self.states:
                s.poisoned = True
            # A waiter returns False when the trap is not its call's (its
            # call already has its value). A trap no waiter takes (a task
            # working after it returned its value) is raised when the
            # instance's block ends, so it is never lost.
            taken = False
            for waiter in list(self.host_waiters):
                if waiter(exc) is not False:
                    taken = True
            self.unreported = None if taken else exc
            self.executor.call_soon_trio(self._wake_pump)

    # -- waiting tasks -------------------------------------------------------------

    def driver_started(self) -> None:
        """A task waits (wasm side): keep the pump running while any does."""
        self.live_drivers += 1
        if not self._pump_running:
            self._pump_running = True
            self.spawn(self.drivers_pump)

    def driver_finished(self) -> None:
        """A waiting task exited (wasm side)."""
        self.live_drivers -= 1
        if self.live_drivers == 0 and self.draining:
            self.executor.call_soon_trio(self._wake_pump)

    def defer_step(self, driver: _Driver) -> None:
        """Inline: run ``driver``'s step from the pump, once no wasm is on the stack."""
        self.pending_pokes += 1
        self._deferred.append(driver)
        self._wake_pump()

    def drain(self) -> None:
        """The opening block ended (trio side): let the pump stop once no task waits."""
        self.draining = True
        self._wake_pump()
        # Idle pooled workers end now, so that they do not keep the block open.
        idle = self._idle_workers
        while idle:
            trio.lowlevel.reschedule(idle.pop(), outcome.Value(None))

    def _wake_pump(self) -> None:
        wake = self._pump_wake
        self._pump_wake = trio.Event()
        wake.set()

    async def drivers_pump(self) -> None:
        """The trio task of the waiting tasks: runs their deferred steps (inline).

        It lives in the instance nursery from the first wait until the opening
        block ends and no task waits, so leaving the block waits for tasks
        still working, and cancelling the nursery (closing the instance) ends
        the waits with it.
        """
        deferred = self._deferred
        try:
            while True:
                while deferred:
                    driver = deferred.popleft()
                    self.pending_pokes -= 1
                    driver.step()
                    self.maybe_idle()
                # A poisoned instance's waiting tasks can never go on: the
                # pump stops with the block even if some still wait.
                if self.draining and (self.live_drivers == 0 or self.poisoned is not None):
                    return
                await self._pump_wake.wait()
        finally:
            self._pump_running = False

    # -- trio side work ------------------------------------------------------------

    def spawn(
        self,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        service: bool = False,
        counted: bool = False,
    ) -> None:
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

        ex = self.executor
        if not counted:

            def start() -> None:
                if not self.closing:
                    nursery.start_soon(fn, *args)

            ex.call_soon_trio(start)
            return

        # ``counted``: a task a host function starts (HostContext.start_soon)
        # may post to the wasm side at any time (it may read the stream the
        # guest is about to write), so it counts as trio-side work until it
        # ends and a guest waiting for it is not taken for a deadlock.
        ex.outside_begin()

        async def run() -> None:
            try:
                await fn(*args)
            finally:
                ex.outside_end()

        def start_counted() -> None:
            if self.closing:
                ex.outside_end()
            else:
                nursery.start_soon(run)

        ex.call_soon_trio(start_counted)

    POOL_IDLE_MAX = 64
    """How many idle pooled trio tasks an instance keeps at most."""

    def spawn_pooled(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Start ``fn()`` as guest work, as :meth:`spawn` does, on a reused trio task.

        For short jobs started once per call (an ``async def`` host function):
        an idle task of the nursery takes the job, which costs a fraction of
        starting a trio task. As in a new task, the job runs in a fresh copy of
        the context it was handed out from, so context variables never leak
        from one job to the next. Jobs are handed out in the order they were
        started.
        """
        if self.nursery is None:
            trap("the instance has no nursery: open it with `async with linker.instantiate(...)`")
        self._pool_jobs.append(fn)
        self.executor.call_soon_trio(self._dispatch_cb)

    def _dispatch(self) -> None:
        # Trio thread: one call per job queued by spawn_pooled.
        fn = self._pool_jobs.popleft()
        if self.closing:
            return
        idle = self._idle_workers
        if idle:
            worker = idle.pop()
            # Its next step starts the job: in a fresh copy of this context,
            # as trio gives a task it starts.
            worker.context = contextvars.copy_context()
            trio.lowlevel.reschedule(worker, outcome.Value(fn))
            return
        nursery = self.nursery
        assert nursery is not None
        nursery.start_soon(self._worker, fn)

    async def _worker(self, fn: Callable[[], Awaitable[Any]] | None) -> None:
        # While a job runs, this frame holds nothing but the job's own
        # awaitable: a pending host call's objects are what every garbage
        # collection of a busy instance scans.
        while fn is not None:
            job = fn()
            fn = None
            await job
            del job
            if self.draining or self.closing or len(self._idle_workers) >= self.POOL_IDLE_MAX:
                return
            fn = await self._next_job()

    async def _next_job(self) -> Callable[[], Awaitable[Any]] | None:
        """Wait, idle, for the next job ``_dispatch`` hands this task (None: end)."""
        idle = self._idle_workers
        me = trio.lowlevel.current_task()

        def abort(raise_cancel: Any) -> trio.lowlevel.Abort:
            # Cancelled while idle (the nursery is closing): just end.
            idle.remove(me)
            return trio.lowlevel.Abort.SUCCEEDED

        idle.append(me)
        job: Callable[[], Awaitable[Any]] | None = await trio.lowlevel.wait_task_rescheduled(abort)
        return job

    # -- blocking on the wasm side ---------------------------------------------

    def block_until(
        self,
        ready: Callable[[], bool],
        describe: Callable[[], str],
        *,
        trap_when: Callable[[], bool] | None = None,
        blocks: bool = False,
    ) -> None:
        """Park the current wasm frame until ``ready()`` (see ``_executor``).

        While the frame is parked, the instances its thread's active frames
        entered may be entered by other work, as they could be if the frame's
        stack had been switched out (CanonicalABI.md: a blocked thread has
        returned control to the event loop).

        ``blocks``: the calling thread blocks in the specification's sense (a
        built-in that suspends it), not in a host call the guest cannot
        observe. When that thread is the implicit thread of a non-async-typed
        call that has not returned, only work that call lets run is served
        until the frame resumes (``ThreadedExecutor._grant_in_sync_call_locked``).
        """
        if ready():
            return
        task = self.maybe_current_task()
        tag = run_tag(task)
        scope = sync_scope(task) if blocks and task is not None else None
        guard = stack_guard(self.executor.current_agent())
        if guard is not None:
            # A store with guest threads: resume only as its latest entry (_threads).
            inner = ready

            def ready() -> bool:
                return inner() and guard()

        unwindable = guard
        if trap_when is not None:
            # Only then may it end as a deadlock (a suspended guest thread).
            # When the store closes, every frame unwinds (in LIFO order).
            when = trap_when
            ex = self.executor

            def unwindable() -> bool:
                return (ex.stopping or when()) and (guard is None or guard())

        self._parked(
            lambda: self.executor.block_until(
                ready, describe, self.stalled, unwindable, tag=tag, scope=scope, on_top=guard
            )
        )

    def _parked(self, wait: Callable[[], None]) -> None:
        """Run ``wait`` with this thread's entered instances released."""
        tls = self._tls
        saved = tls.entered
        tls.entered = []
        for inst, caller in reversed(saved):
            inst.leave_to(caller)
            if self._blocked:
                self.instance_changed(inst)
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
