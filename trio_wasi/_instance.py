"""Component instances as seen by the embedding application.

"Instance" names six different things in this package; each has its own name:

``Instance`` (here, public)
    An instantiated top-level component as the application sees it: its
    exports, callable from trio, and its nursery.
``Instantiation`` (here, public)
    What ``Linker.instantiate`` returns before it is entered: an ``async
    with`` context manager that makes the ``Instance`` and closes it.
``InstanceState`` (``_abi._handles``)
    The canonical ABI's per-component-instance state (the specification's
    ``ComponentInstance``): the handle table, ``may_leave``/``may_enter``,
    backpressure and the exclusive lock. A top-level component with nested
    components has one per component instance, linked by ``parent``.
``InstanceRuntime`` (``_run._runtime``)
    The scheduler of one top-level ``Instance``: which executor runs its
    wasm, the current task of each thread, the nursery, every
    ``InstanceState`` and every wasmtime store of the instance (one store per
    component instance, ``StoreHandle``). It implements ``_abi._scheduler``.
``InlineInstance``, ``CoreInlineInstance``, ``Instantiate``, ``CoreInstantiate``
(``_binary._model``)
    Definitions in the decoded binary: instances built from exports
    (inline) or by instantiating a component or core module. The link walk
    (``_link``) turns them into ``InstanceItems`` (a component instance's
    exports, by name) or core instances.
core instances (``_link._CoreExports``, ``_engine.Store.instantiate``)
    wasmtime's instantiations of core modules, seen through their exports.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, final

import trio

from ._binary import _model as M
from ._component import Component
from ._engine import Deadline
from ._errors import Error, ExportError, Trap
from ._hostdefs import HostContext
from ._limits import Limits
from ._link import HostDefinitions, InstanceItems, LinkedComponent, prelink
from ._resolve import describe
from ._run._executor import NOT_IN_SYNC_CALL, InlineExecutor, ThreadedExecutor
from ._run._runtime import InstanceRuntime
from ._run._stackroot import StackRoot
from ._run._tasks import ComponentFunc, LiftedFunc, OnCancel, Task
from ._run._threads import register_store

__all__ = ["Instance", "Instantiation"]


class _Default:
    """The type of :data:`_DEFAULT`: "use the instance's setting"."""

    def __repr__(self) -> str:
        return "<instance default>"


_DEFAULT = _Default()

# How long a cancelled host call waits for the guest to acknowledge the
# cancellation (task.cancel) or return, before it gives up on the task.
CANCEL_GRACE_SECONDS = 5.0


@final
class Instance:
    """An instantiated component: its exports, callable from trio.

    Every task the instance runs lives in the instance's nursery, so a task
    that keeps working after returning its value (streaming a body, say)
    finishes inside the ``async with`` block that opened the instance, and
    leaving that block cancels whatever is still running.

    A trap poisons the instance: later calls raise :class:`Trap` without
    entering wasm, because the guest's state may be inconsistent. A trap no
    host call was told of (a task trapping after it returned its value, with
    no later call) is raised when the ``async with`` block ends.
    """

    def __init__(self, exports: InstanceItems, rt: InstanceRuntime) -> None:
        self.trap_on_deadlock = False
        self._exports = exports
        self._rt = rt
        self._closed = False
        self._funcs: dict[str, ComponentFunc] = {}
        assert rt.limits is not None and rt.deadline is not None
        self._limits: Limits = rt.limits
        self._deadline: Deadline = rt.deadline
        self._watchdog: _Watchdog | None = None

    @classmethod
    def _create(
        cls,
        component: Component | LinkedComponent,
        host: HostDefinitions,
        *,
        threaded_ok: bool,
        force_thread: bool = False,
        data: Any = None,
        limits: Limits | None = None,
    ) -> Instance:
        # Every link error is raised here, before any store exists or wasm runs;
        # a pre-linked component carries its own (already checked) definitions.
        linked = prelink(component, host) if isinstance(component, Component) else component
        # What the dry walk already knows is refused before any store exists.
        if linked.may_block and not threaded_ok:
            raise _may_block_error(linked.may_block)
        limits = limits if limits is not None else Limits.embedding()
        if limits.fuel is not None and not linked.engine.consume_fuel:
            raise Error(
                "Limits.fuel needs a component compiled for fuel metering: load it "
                "with engine=trio_wasi.Engine(consume_fuel=True)"
            )
        rt = InstanceRuntime(InlineExecutor(), limits, Deadline(linked.engine.ticker))
        context = HostContext(data)
        context._drops = dict(host.drops)
        context._spawn = rt.spawn
        rt.context = context
        deadline = rt.deadline
        assert deadline is not None
        try:
            # Start functions run under the instance's timeout too.
            with _armed(deadline, limits.timeout):
                exports, may_block = linked._instantiate(rt)
            # The instance's own walk has the last word: host definitions bound
            # per instance are only known to be `async def` once bound.
            if may_block and not threaded_ok:
                raise _may_block_error(may_block)
        except BaseException:
            _close_stores(rt)
            deadline.release()
            raise
        for state in rt.states:
            state.host_reps.on_drop = context._drop_host_object
        if may_block or force_thread:
            executor = ThreadedExecutor()
            executor.on_error = rt.poison  # type: ignore[method-assign]
            rt.use_executor(executor)
            for n, handle in enumerate(rt.stores):
                handle.agent = executor.new_agent(f"trio_wasi store {n}")
                if handle.threads:
                    register_store(handle)
                    try:
                        handle.root = StackRoot(handle.store)
                    except BaseException:
                        executor.close()
                        _close_stores(rt)
                        deadline.release()
                        raise
        return cls(exports, rt)

    # -- lookup --------------------------------------------------------------

    def _func(self, name: str) -> ComponentFunc:
        """The exported function ``name`` (``"f"`` or ``"pkg:ns/iface#f"``).

        Raises :class:`Error` (also a ``KeyError``) naming what is missing.
        """
        items = self._exports
        path = name.split("#") if "#" in name else [name]
        for i, part in enumerate(path):
            if part not in items:
                where = f"`{'#'.join(path[:i])}`" if i else "the component"
                known = ", ".join(sorted(items)) or "none"
                raise ExportError(f"{where} has no export `{part}` (exports: {known})")
            sort, item = items[part]
            if i < len(path) - 1:
                if sort is not M.Sort.INSTANCE:
                    raise ExportError(f"export `{part}` is a {sort.value}, not an instance")
                items = item
            elif sort is not M.Sort.FUNC:
                raise ExportError(f"export `{name}` is a {sort.value}, not a function")
            else:
                func: ComponentFunc = item
                return func
        raise ExportError(f"no export `{name}`")

    def _checked_func(self, name: str, args: tuple[Any, ...]) -> ComponentFunc:
        func = self._func(name)
        params = func.type.params
        if len(args) != len(params):
            wanted = ", ".join(f"{p}: {describe(t)}" for p, t in params) or "none"
            missing = [p for p, _ in params[len(args) :]]
            detail = f"; missing `{missing[0]}`" if missing else ""
            raise Error(
                f"`{name}` takes {len(params)} argument{'s' if len(params) != 1 else ''} "
                f"({wanted}), got {len(args)}{detail}"
            )
        return func

    @property
    def exports(self) -> dict[str, str]:
        """Top-level export names and their sorts (``"func"``, ``"instance"``, ...)."""
        return {name: sort.value for name, (sort, _) in self._exports.items()}

    def signature(self, name: str) -> str:
        """The WIT type of the exported function ``name``, e.g. ``func(x: u32) -> string``."""
        return describe(self._func(name).type)

    @property
    def threaded(self) -> bool:
        """Whether this instance's wasm runs on a store thread of its own."""
        return self._rt.executor.threaded

    # -- calls ---------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise Error("the instance is closed")
        if self._rt.poisoned is not None:
            # The host now knows of the trap: the block need not raise it.
            self._rt.unreported = None
            raise Trap(
                "cannot enter component instance "
                f"(poisoned by an earlier trap: {self._rt.poisoned})"
            )

    @property
    def poisoned(self) -> str | None:
        """Why the instance can no longer be entered (the trap's message), or None.

        A trap, a passed deadline or a failure on a store thread poisons the
        instance for good: every later call raises :class:`Trap`. A server
        pooling instances reads this to discard one whose guest trapped while
        no call of its own was waiting.
        """
        return self._rt.poisoned

    @property
    def limits(self) -> Limits:
        """The :class:`Limits` the instance was created with."""
        return self._limits

    async def call(self, name: str, *args: Any, timeout: float | _Default | None = _DEFAULT) -> Any:
        """Call an export and return its result (``None`` if it has none).

        The call returns when the guest's task returns its value; the task may
        keep running afterwards inside the instance. Cancelling the caller asks
        the guest to cancel the task (it sees TASK_CANCELLED); the call then
        returns the value if the task returned first, and otherwise re-raises
        the cancellation once the guest acknowledged it.

        ``timeout`` (seconds; default: the instance's ``Limits.timeout``,
        ``None`` for none) bounds the call: past it, wasm the instance is
        running traps with "deadline exceeded" (even a loop that never calls
        out, inline or on a store thread), the call raises :class:`Trap` and
        the instance is poisoned. While the call runs, every wasm frame of the
        instance runs under its deadline.
        """
        self._check_usable()
        seconds = self._limits.timeout if isinstance(timeout, _Default) else timeout
        if seconds is None:
            return await self._call(name, args, None)
        if not seconds > 0:
            raise ValueError(f"timeout must be positive, not {seconds!r}")
        deadline = self._deadline
        at = time.monotonic() + seconds
        # With a nursery, one watchdog per instance ends a call whose guest
        # waits past its deadline; a cancel scope per call would cost about
        # as much as the call itself.
        watched = self._watchdog is not None or self._start_watchdog()
        deadline.arm(at)
        try:
            return await self._call(name, args, None if watched else seconds)
        finally:
            deadline.disarm(at)

    def _start_watchdog(self) -> bool:
        nursery = self._rt.service_nursery
        if nursery is None:
            return False
        watchdog = self._watchdog = _Watchdog(self._rt, self._deadline)
        nursery.start_soon(watchdog.run)
        return True

    async def _call(self, name: str, args: tuple[Any, ...], timeout: float | None) -> Any:
        func = self._funcs.get(name)
        if func is None or len(args) != len(func.type.params):
            func = self._funcs[name] = self._checked_func(name, args)
        rt = self._rt
        call = _ExportCall(rt, func, args)
        rt.host_waiters.add(call.on_trap)
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            # Straight onto the callee's store thread (inline: run now); a new
            # task, which never starts while a synchronous call is blocked.
            await rt.executor.run(call.start, call.agent, NOT_IN_SYNC_CALL, entry=True)
            try:
                if timeout is None and not self.trap_on_deadlock:
                    # Wait here rather than in _wait: one coroutine less per
                    # waiting call for the garbage collector to scan.
                    while not call.over():
                        # Parked directly, woken by call.finish: no trio.Event per call.
                        call.waiter = trio.lowlevel.current_task()
                        await trio.lowlevel.wait_task_rescheduled(call.abort)
                elif timeout is None:
                    await self._wait(call)
                else:
                    await self._wait_until(call, name, timeout)
            except trio.Cancelled:
                await self._cancel_task(call)
                if call.resolved and call.results is not None:
                    results = call.results
                    return results[0] if results else None
                raise
        finally:
            rt.host_waiters.discard(call.on_trap)
            # The task holds call.on_resolve: without this the call and its
            # task would form a cycle that only the garbage collector frees.
            call.cancel = _no_cancel
            call.task = None
        if call.error is not None:
            err = call.error
            raise Trap(str(err)) from err
        final = call.results
        if final is None:
            raise Trap("the task acknowledged a cancellation nobody requested")
        return final[0] if final else None

    async def _wait_until(self, call: _ExportCall, name: str, timeout: float) -> None:
        # The guest may be waiting rather than computing (the epoch deadline
        # only stops running wasm): the trio side gives up at the same time.
        with trio.move_on_after(timeout):
            await self._wait(call)
        if not call.over():
            exc = Trap(f"deadline exceeded: {name} did not finish within {timeout:g} s")
            self._rt.poison(exc)
            raise exc

    async def _wait(self, call: _ExportCall) -> None:
        rt = self._rt
        # Wait for the result; with trap_on_deadlock, whenever the runtime
        # turns idle, look: if the store has nothing left to do and the
        # result has not come, it never will: that is a deadlock, and a trap.
        watch = self.trap_on_deadlock
        if not watch:
            while not call.over():
                # Parked directly, woken by call.finish: no trio.Event per call.
                call.waiter = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(call.abort)
            return
        while not call.over():
            if watch and self._stuck() and await self._still_stuck(call):
                exc = Trap("deadlock detected: event loop cannot make further progress")
                rt.poison(exc)
                raise exc
            event = call.event = trio.Event()
            if watch:
                rt.idle_listeners.add(event.set)
                if self._stuck():
                    # It turned idle on a store thread before the listener
                    # was in place: look again at once.
                    event.set()
            try:
                await event.wait()
            finally:
                if watch:
                    rt.idle_listeners.discard(event.set)

    async def _still_stuck(self, call: _ExportCall) -> bool:
        # Idle now; still idle, with nothing having run and no result, once
        # every other trio task (callbacks from the store threads among them)
        # had its turn?
        # Imported here: trio.testing pulls in pytest when it is installed,
        # a tenth of a second that only a deadlock watch should pay.
        import trio.testing

        before = self._rt.activity()
        await trio.testing.wait_all_tasks_blocked()
        if call.over():
            return False
        return self._stuck() and self._rt.activity() == before

    def _stuck(self) -> bool:
        rt = self._rt
        # Idle, or only spinning in yields with nothing outside to wait for.
        return rt.is_idle() or (rt.stalled() and rt.executor.is_idle())

    async def _cancel_task(self, call: _ExportCall) -> None:
        rt = self._rt
        task = call.task
        on_cancel: OnCancel = call.cancel if task is None else task.request_cancellation
        with trio.CancelScope(shield=True):

            def request() -> None:
                rt.current.append(None)
                try:
                    on_cancel(None)
                finally:
                    rt.current.pop()

            try:
                await rt.executor.run(request, call.agent)
            except Trap as exc:
                rt.poison(exc)
                return
            with trio.move_on_after(CANCEL_GRACE_SECONDS):
                while not call.over():
                    event = call.event = trio.Event()
                    await event.wait()

    def call_sync(self, name: str, *args: Any) -> Any:
        """Call a synchronous export from plain Python (no trio needed).

        Only for instances whose wasm cannot block; the call must finish
        without waiting (a synchronously-lifted function). The instance's
        ``Limits.timeout`` applies as for :meth:`call`.
        """
        self._check_usable()
        if self._rt.executor.threaded:
            raise Error("this instance runs on a store thread: use `await instance.call(...)`")
        func = self._checked_func(name, args)
        box: dict[str, Any] = {}

        def on_resolve(results: list[Any] | None, encoding: object) -> None:
            box["results"] = results

        rt = self._rt
        rt.current.append(None)
        try:
            with _armed(self._deadline, self._limits.timeout):
                func.invoke(None, lambda: list(args), on_resolve, None)
        except Trap as exc:
            rt.poison(exc)
            raise
        finally:
            rt.current.pop()
        if "results" not in box:
            raise Error(f"{name} did not return synchronously: use `await instance.call(...)`")
        results = box["results"]
        return results[0] if results else None

    def close(self) -> None:
        """Release the instance's store. Further calls raise :class:`Error`."""
        if not self._closed:
            self._closed = True
            self._rt.closing = True
            # Anything on the trio side still waiting on this instance (a
            # host call, a stream receive) is told it is gone.
            for waiter in list(self._rt.host_waiters):
                waiter(Error("the instance was closed"))
            self._rt.executor.close()
            if isinstance(self._rt.executor, ThreadedExecutor):
                self._rt.executor.join(timeout=5)
            _close_stores(self._rt)
            self._deadline.release()
            # Host objects the guest still owned (async ones were released
            # by the `async with` block before this).
            for obj in self._take_host_objects():
                close = getattr(obj, "close", None)
                if callable(close):
                    close()

    def _take_host_objects(self) -> list[object]:
        objects: list[object] = []
        seen: set[int] = set()
        for state in self._rt.states:
            table = state.host_reps
            if id(table) not in seen:
                seen.add(id(table))
                objects.extend(table.take_all())
        return objects

    @property
    def context(self) -> HostContext:
        """The :class:`HostContext` its host functions see."""
        context: HostContext = self._rt.context
        return context


def _may_block_error(reasons: Sequence[str]) -> Error:
    return Error(
        "this component may block ("
        + ", ".join(sorted(set(reasons)))
        + "): instantiate it with `async with linker.instantiate(...)`"
    )


@final
class _ExportCall:
    """One host call of an export: what the wasm side reports and the trio side waits for.

    The result (``resolved``/``results``) or a trap (``error``) arrives from
    the wasm side; ``event``, when set, is what the waiting trio task sleeps on.
    """

    __slots__ = (
        "agent",
        "args",
        "cancel",
        "error",
        "event",
        "ex",
        "func",
        "resolved",
        "results",
        "rt",
        "task",
        "waiter",
    )

    def __init__(self, rt: InstanceRuntime, func: ComponentFunc, args: tuple[Any, ...]) -> None:
        self.rt = rt
        self.ex = rt.executor
        self.func = func
        self.args = args
        # The callee's store thread (None inline, or for a host function).
        self.agent = func.agent if isinstance(func, LiftedFunc) else None
        self.cancel: OnCancel = _no_cancel
        # The guest task of a lifted callee (None for a host function).
        self.task: Task | None = None
        self.resolved = False
        self.results: list[Any] | None = None
        self.error: BaseException | None = None
        self.event: trio.Event | None = None
        self.waiter: trio.lowlevel.Task | None = None

    def over(self) -> bool:
        return self.resolved or self.error is not None

    def finish(self) -> None:
        """Wake the trio task waiting for this call (trio thread)."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            trio.lowlevel.reschedule(waiter)
        event = self.event
        if event is not None:
            event.set()

    def abort(self, raise_cancel: Any) -> trio.lowlevel.Abort:
        self.waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    def on_start(self) -> list[Any]:
        return list(self.args)

    def on_resolve(self, results: list[Any] | None, encoding: object) -> None:
        self.results = results
        self.resolved = True
        self.ex.call_soon_trio(self.finish)

    def on_trap(self, exc: BaseException) -> bool:
        if self.resolved:
            return False  # the call has its value; the trap is the instance's
        if self.error is None:
            self.error = exc
        self.ex.call_soon_trio(self.finish)
        return True

    def start(self) -> None:
        """Start the call (wasm side)."""
        rt = self.rt
        func = self.func
        current = rt.current
        current.append(None)
        try:
            if isinstance(func, LiftedFunc):
                task = func.new_task(None, self.on_start, self.on_resolve, None)
                # Its request_cancellation is looked up only when cancelling.
                self.task = task
                func.eager(task)
            else:
                self.cancel = func.invoke(None, self.on_start, self.on_resolve, None)
        except Trap as exc:
            rt.poison(exc)
            if rt.unreported is exc:
                # A trap after the value was delivered (in a post-return
                # function, say) still ends this very call: raised here, it
                # is reported, not left for closing the instance.
                rt.unreported = None
            raise
        finally:
            current.pop()


def _no_cancel(caller: object) -> None:
    pass


class _Watchdog:
    """Poisons an instance whose earliest armed call deadline passed.

    The epoch deadline ends wasm that runs past it; this ends the calls whose
    guest is waiting instead (on a host call, a stream, a subtask). It sleeps
    until the earliest deadline; arming an earlier one moves its wake-up.
    """

    def __init__(self, rt: InstanceRuntime, deadline: Deadline) -> None:
        self._rt = rt
        self._deadline = deadline
        self._scope: trio.CancelScope | None = None
        # When (time.monotonic()) the watchdog wakes up next.
        self._wake_at = math.inf
        deadline.on_earlier = self._earlier

    def _earlier(self, at: float) -> None:
        # Calls in a row arm ever later deadlines: only one before the
        # planned wake-up moves it (moving a trio deadline costs about as
        # much as a call); otherwise the watchdog wakes early and sleeps again.
        scope = self._scope
        if scope is not None and at < self._wake_at:
            self._wake_at = at
            scope.deadline = trio.current_time() + (at - time.monotonic())

    async def run(self) -> None:
        deadline = self._deadline
        try:
            while self._rt.poisoned is None:
                at = deadline.at
                now = time.monotonic()
                if at <= now:
                    self._rt.poison(
                        Trap("deadline exceeded: a call did not finish within its timeout")
                    )
                    return
                with trio.CancelScope() as scope:
                    if at != math.inf:
                        scope.deadline = trio.current_time() + (at - now)
                    self._wake_at = at
                    self._scope = scope
                    await trio.sleep_forever()
                self._scope = None
        finally:
            self._scope = None
            self._wake_at = math.inf
            deadline.on_earlier = None


@contextlib.contextmanager
def _armed(deadline: Deadline, seconds: float | None) -> Iterator[None]:
    """Run the block's wasm under a deadline ``seconds`` from now (None: none)."""
    if seconds is None:
        yield
        return
    at = time.monotonic() + seconds
    deadline.arm(at)
    try:
        yield
    finally:
        deadline.disarm(at)


def _close_stores(rt: InstanceRuntime) -> None:
    for handle in rt.stores:
        if handle.root is not None:
            # No other wasm of the store runs any more: the root may leave it.
            handle.root.release()
        handle.store.close()


@final
class Instantiation:
    """What :meth:`Linker.instantiate` returns: ``async with`` it to get the :class:`Instance`.

    Opens the instance's nursery; leaving the block waits for tasks still
    running after returning their values, unless the block is left by an
    exception, in which case they are cancelled.
    """

    def __init__(
        self,
        component: Component | LinkedComponent,
        host: HostDefinitions,
        *,
        run_on_thread: bool | None = None,
        trap_on_deadlock: bool = False,
        data: Any = None,
        limits: Limits | None = None,
    ) -> None:
        self._limits = limits
        self._component = component
        self._host = host
        self._data = data
        self._run_on_thread = run_on_thread
        self._trap_on_deadlock = trap_on_deadlock
        self._instance: Instance | None = None
        self._nursery_cm: Any = None
        self._service_cm: Any = None

    if not TYPE_CHECKING:
        # Only at run time: type checkers should keep reporting the mistake.

        def __getattr__(self, name: str) -> Any:
            # Reached only for names this class lacks. An Instance attribute
            # asked of this object means the `async with` was left out.
            hint = ""
            if not name.startswith("_") and hasattr(Instance, name):
                hint = (
                    f" (`{name}` is an Instance's: "
                    "`async with linker.instantiate(component) as instance:` makes one)"
                )
            raise AttributeError(f"'Instantiation' object has no attribute {name!r}{hint}")

    async def __aenter__(self) -> Instance:
        await trio.lowlevel.checkpoint()
        instance = Instance._create(
            self._component,
            self._host,
            threaded_ok=self._run_on_thread is not False,
            force_thread=bool(self._run_on_thread),
            data=self._data,
            limits=self._limits,
        )
        instance.trap_on_deadlock = self._trap_on_deadlock
        # Service work (host stream pumps, tasks host functions start) lives
        # in an outer nursery that is cancelled once the guest's own work is
        # over, so it can never keep the block open.
        self._service_cm = trio.open_nursery()
        service = await self._service_cm.__aenter__()
        self._nursery_cm = trio.open_nursery()
        try:
            nursery = await self._nursery_cm.__aenter__()
        except BaseException as exc:
            await self._service_cm.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        instance._rt.nursery = nursery
        instance._rt.service_nursery = service
        instance.context._nursery = service
        self._instance = instance
        return instance

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        instance = self._instance
        assert instance is not None and self._nursery_cm is not None
        rt = instance._rt
        nursery: trio.Nursery = rt.nursery  # type: ignore[assignment]
        service: trio.Nursery = rt.service_nursery  # type: ignore[assignment]
        rt.drain()
        if exc is not None or rt.poisoned is not None:
            nursery.cancel_scope.cancel()
        try:
            result: bool | None = await self._nursery_cm.__aexit__(exc_type, exc, tb)
            if exc is None and rt.unreported is not None:
                unreported, rt.unreported = rt.unreported, None
                raise Trap(
                    f"a task of the instance trapped after its caller had its value: {unreported}"
                ) from unreported
            return result
        except BaseExceptionGroup as group:
            # The nursery wraps the block's own exception; hand it back as it
            # was raised when nothing else went wrong.
            if exc is not None:
                rest = group.split(lambda e: e is exc or isinstance(e, trio.Cancelled))[1]
                if rest is None:
                    raise exc from None
            raise
        finally:
            service.cancel_scope.cancel()
            try:
                await self._service_cm.__aexit__(None, None, None)
            finally:
                # Stop the wasm first, then release what the guest still owns.
                leftovers = [] if instance._closed else instance._take_host_objects()
                instance.close()
                with trio.CancelScope(shield=True):
                    await instance.context._release_all(leftovers)
