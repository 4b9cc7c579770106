"""Lifted and host functions, the drivers of waiting tasks, and the runtime's lowers.

The functions here implement the ``FuncInst`` protocol of ``_abi._lower``
(``ComponentFunc``); the task state machine they run is ``_abi._tasks.Task``,
and this module is the scheduling around it: on which agent a step runs, how a
waiting task is woken (``_Driver``), how an ``async def`` host function runs
on trio.

A call starts *eagerly*: the callee runs on the caller's stack until it
returns or has to wait. What happens next depends on how it was lifted:

* synchronous lift: the core function runs to completion on the stack; if it
  has to wait (only ``async``-typed functions may), the wait parks its frame
  (``InstanceRuntime.block_until``);
* ``async`` lift with ``callback``: each step is a short core call returning
  EXIT, YIELD or WAIT; between steps the task waits in Python and a
  :class:`_Driver` runs the next step when an event is ready;
* ``async`` stackful lift: one core call that may park its frame like a
  synchronous one.

While any task outlives its eager start, the instance's nursery holds a trio
task for the waiting tasks (``InstanceRuntime.drivers_pump``), so their lifetime
and cancellation follow trio's structured concurrency.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any, final

import trio

from .._abi import _types as T
from .._abi._flat import CoreValueIter, ValuesLowerer, values_lifter_for, values_lowerer_for
from .._abi._handles import InstanceState
from .._abi._layout import MAX_FLAT_PARAMS, MAX_FLAT_RESULTS
from .._abi._lower import ComponentFunc, OnCancel, async_lower, noop_cancel, sync_lower
from .._abi._options import AsyncValueHooks, CanonOptions, LiftLowerContext, StringEncoding
from .._abi._stream_builtins import GUEST_ASYNC_VALUES as HOOKS
from .._abi._tasks import CALLBACK_YIELD, OnResolve, OnStart, Task, TaskState, TaskWait
from .._abi._trap import trap, trap_if
from .._abi._waitables import EventCode, EventTuple
from .._arity import arity_error
from .._errors import LinkError, Trap
from ._executor import NOT_IN_SYNC_CALL, Agent
from ._hostvalues import host_values
from ._runtime import InstanceRuntime, StoreHandle

__all__ = [
    "ComponentFunc",
    "HostFunc",
    "LiftedFunc",
    "OnCancel",
    "OnResolve",
    "OnStart",
    "Task",
    "make_async_lower",
    "make_sync_lower",
]

# ---------------------------------------------------------------------------
# Driving tasks that wait between steps


@final
class _Driver:
    """The trio side of a task that waits: to enter, or between callback steps.

    While any task waits, the runtime keeps one trio task in the instance
    nursery (``InstanceRuntime.drivers_pump``), so waiting tasks live and are
    cancelled with the nursery. Only what the task waits for wakes it: an
    event of its waitable set (the set's waker), a cancellation, or, when its
    own wait is over but its instance holds it back, a change of that instance
    (``InstanceRuntime.hold_back``). A wake-up (:meth:`poke`) arranges for
    :meth:`try_resume` to run on the wasm side: inline, at once or by waking
    the trio task; threaded, by queueing the step straight onto the store
    thread.
    """

    __slots__ = ("_queued", "func", "held_by", "rt", "seen_blocked", "task")

    def __init__(self, task: Task, func: LiftedFunc) -> None:
        self.task = task
        self.func = func
        self.rt = func.rt
        self._queued = False
        # The instance holding this driver back (see InstanceRuntime.hold_back).
        self.held_by: InstanceState | None = None
        self.seen_blocked = False

    def attach(self) -> None:
        """Register for wakeups and start the trio task (wasm side)."""
        task = self.task
        task.driver = self
        self.rt.driver_started()
        self.rearm()

    def _unregister(self) -> None:
        task = self.task
        wait = task.wait
        if wait is not None and wait.wset is not None:
            wait.wset.remove_waker(self)
        if self.held_by is not None:
            self.rt.release_held(self.held_by, self)
            self.held_by = None
        self.seen_blocked = False

    def rearm(self) -> None:
        """The task waits (again, after a step): register for its wake-ups (wasm side)."""
        wait = self.task.wait
        assert wait is not None
        if wait.wset is not None:
            # The driver is its own waker (no bound method kept per wait).
            wait.wset.add_waker(self)
        if self.task.wait_over():
            self.poke()

    def can_go(self) -> bool:
        """Whether a held-back task may resume now (wasm side)."""
        task = self.task
        if task.exited or task.wait is None:
            return True  # stale: let try_resume drop it
        return task.held_back_by(task.cancel_pending()) is None

    def poke(self) -> None:
        """The wait may be over: schedule :meth:`try_resume` (wasm side)."""
        rt = self.rt
        ex = rt.executor
        if ex.threaded:
            if not self._queued:
                self._queued = True
                # A step starts or resumes the task's implicit thread, which no
                # synchronous call lets run (it is new, or needs the exclusive lock).
                ex.post(self.step, self.func.handle.agent, tag=NOT_IN_SYNC_CALL)
        elif not rt.current and not rt.stepping:
            # Inline, and no wasm is running on this thread (a host coroutine
            # finished, say): this is an event-loop turn, so run the step now
            # instead of deferring it.
            self.step()
        elif not self._queued:
            self._queued = True
            rt.defer_step(self)

    __call__ = poke

    def step(self) -> None:
        """Run :meth:`try_resume` for a wake-up (wasm side)."""
        self._queued = False
        try:
            self.try_resume()
        except Trap:
            pass  # recorded by rt.poison; the waiting host calls get it

    def finished(self) -> None:
        self._unregister()
        self.rt.driver_finished()

    def try_resume(self) -> None:
        """Run the task's next step if its wait is over (wasm side)."""
        task = self.task
        rt = self.rt
        rt.steps += 1
        if task.exited or task.wait is None or rt.poisoned is not None:
            return
        wait = task.wait
        cancel = task.cancel_pending()
        if not cancel and not wait.has_event():
            return  # its waitable set's waker pokes again
        holder = task.held_back_by(cancel)
        if holder is not None:
            # Its instance holds it back: a change there wakes it.
            if self.held_by is not None and self.held_by is not holder:
                rt.release_held(self.held_by, self)
            rt.hold_back(holder, self)
            self.seen_blocked = True
            return
        cancelled = task.state is TaskState.CANCEL_DELIVERED and wait.kind == "enter"
        if not cancelled:
            cancelled = task.deliver_pending_cancel(wait.cancellable)
        rt.stepping += 1
        try:
            self.resume(cancelled)
        finally:
            rt.stepping -= 1

    def resume(self, cancelled: bool) -> None:
        task = self.task
        self._unregister()
        wait = task.wait
        assert wait is not None
        task.wait = None
        rt = self.rt
        step_deadline = rt.arm_step()
        try:
            if wait.kind == "enter":
                task.inst.num_waiting_to_enter -= 1
                if cancelled:
                    task.cancel()
                    task.exit()
                    return
                self.func.begin(task, from_driver=True)
            else:
                if wait.wset is not None:
                    wait.wset.num_waiting -= 1
                event: EventTuple
                if cancelled:
                    event = (EventCode.TASK_CANCELLED, 0, 0)
                elif wait.wset is not None:
                    event = wait.wset.get_pending_event()
                else:
                    event = (EventCode.NONE, 0, 0)
                self.func.callback_step(task, event)
        except Trap as exc:
            rt.poison(exc)
            raise
        finally:
            rt.disarm_step(step_deadline)
        if not task.exited and task.wait is not None:
            self.rearm()


# ---------------------------------------------------------------------------
# Lifted functions


@final
class LiftedFunc(ComponentFunc):
    """A core function lifted by ``canon lift`` (any of the three modes)."""

    __slots__ = (
        "_callback",
        "_core",
        "_exclusive",
        "_lift_results",
        "_lower_params",
        "_post_return",
        "handle",
        "host_hooks",
        "name",
        "named",
        "options",
        "rt",
        "state",
        "type",
    )

    def __init__(
        self,
        rt: InstanceRuntime,
        ft: T.FuncType,
        core: Callable[..., Any],
        options: CanonOptions,
        state: InstanceState,
        handle: StoreHandle,
        name: str = "",
    ) -> None:
        self.rt = rt
        self.handle = handle
        self.type = ft
        self._core = core
        self.options = options
        self.state = state
        self.name = name or "lifted function"
        self.named = bool(name)
        # The lowerer and lifter of this signature, looked up once, not per call.
        self._lower_params = values_lowerer_for(tuple(ft.param_types()), MAX_FLAT_PARAMS)
        self._lift_results = values_lifter_for(tuple(ft.result_types()), MAX_FLAT_RESULTS)
        self._post_return = options.post_return
        # The store's host-facing value hooks, for calls from the host.
        self.host_hooks = host_values(rt)
        self._callback: Callable[..., Any] | None = options.callback  # type: ignore[assignment]
        # Task.needs_exclusive of every task of this function (it depends on
        # the options alone), for the per-step checks.
        self._exclusive = not options.is_async or options.callback is not None

    @property
    def agent(self) -> Agent | None:
        """The agent running this function's store (None when inline)."""
        return self.handle.agent

    # -- FuncInst ----------------------------------------------------------------

    def invoke(
        self,
        caller: InstanceState | None,
        on_start: OnStart,
        on_resolve: OnResolve,
        source_encoding: StringEncoding | None,
    ) -> OnCancel:
        task = self.new_task(caller, on_start, on_resolve, source_encoding)
        self.rt.executor.call_on(self.agent, lambda: self.eager(task))
        return task.request_cancellation

    def new_task(
        self,
        caller: InstanceState | None,
        on_start: OnStart,
        on_resolve: OnResolve,
        source_encoding: StringEncoding | None,
    ) -> Task:
        """A task for one call from ``caller``, after the entry checks (wasm side)."""
        inst = self.state
        if inst.poisoned or not inst.may_enter_from(caller):
            trap("cannot enter component instance")
        if caller is not None:
            # Calls between an instance and its ancestors or descendants trap
            # as re-entrance (the suite's "for now" rule, trap-on-reenter.wast).
            trap_if(
                caller in inst.self_and_ancestors() or inst in caller.self_and_ancestors(),
                "cannot enter component instance",
            )
        return Task(self, caller, on_start, on_resolve, source_encoding)

    def eager(self, task: Task) -> None:
        """Start ``task`` on this store's agent, or queue it to enter.

        If the callee parks here, control goes back to whoever handed the
        job over (PARKED) and the caller carries on, as when a callee blocks
        during its eager start (CanonicalABI.md "canon lift").
        """
        rt = self.rt
        inst = self.state
        caller = task.caller
        rt.enter(inst, caller)
        try:
            if task.must_wait_to_enter():
                self._wait_to_enter(task)
            else:
                self.begin(task, from_driver=False)
        finally:
            # Leaving wakes whoever this instance held back.
            rt.leave(inst, caller)

    # -- entering ------------------------------------------------------------------

    def _wait_to_enter(self, task: Task) -> None:
        self.state.num_waiting_to_enter += 1
        task.wait = TaskWait("enter", cancellable=True)
        driver = _Driver(task, self)
        driver.attach()

    def begin(self, task: Task, *, from_driver: bool) -> None:
        """Run the task from its start (wasm side; the instance is entered)."""
        inst = self.state
        if from_driver:
            self.rt.enter(inst, None)
        try:
            if self.type.is_async and self._exclusive:
                assert inst.exclusive is None
                inst.exclusive = task
            if not self.options.is_async:
                self._run_sync(task)
            elif self._callback is None:
                self._run_stackful(task)
            else:
                self._run_callback_first(task)
        finally:
            if from_driver:
                self.rt.leave(inst, None)

    # -- the three lift modes -------------------------------------------------------

    def _lower_args(self, task: Task, cx: LiftLowerContext) -> list[Any]:
        return self._lower_params(cx, task.start(), None)

    def _call(self, task: Task, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
        current = self.rt._tls.current
        current.append(task)
        try:
            return fn(*args)
        finally:
            current.pop()

    def _run_sync(self, task: Task) -> None:
        cx = LiftLowerContext(
            self.options,
            self.state,
            task.scope,
            source_encoding=task.source_encoding,
            hooks=task.value_hooks(),
        )
        flat_args = self._lower_args(task, cx)
        raw = self._call(task, self._core, flat_args)
        flat_results = [] if raw is None else list(raw) if isinstance(raw, tuple) else [raw]
        results = self._lift_results(cx, CoreValueIter(flat_results))
        task.return_(results)
        if self._post_return is not None:
            inst = self.state
            inst.may_leave = False
            try:
                self._call(task, self._post_return, flat_results)
            finally:
                inst.may_leave = True
        task.exit()

    def _run_stackful(self, task: Task) -> None:
        cx = LiftLowerContext(
            self.options,
            self.state,
            task.scope,
            source_encoding=task.source_encoding,
            hooks=task.value_hooks(),
        )
        flat_args = self._lower_args(task, cx)
        self._call(task, self._core, flat_args)
        task.exit()

    def _run_callback_first(self, task: Task) -> None:
        cx = LiftLowerContext(
            self.options,
            self.state,
            task,  # (its own borrow scope: Task.scope)
            source_encoding=task.source_encoding,
            # (Task.value_hooks, inline: host channels when the host is the caller)
            hooks=self.host_hooks if task.caller is None else HOOKS,
        )
        flat_args = self._lower_params(cx, task.start(), None)
        # (_call, inline)
        current = self.rt._tls.current
        current.append(task)
        try:
            packed = self._core(*flat_args)
        finally:
            current.pop()
        # CanonicalABI.md "canon lift": the callback loop's first iteration.
        if task.callback_returned(packed) and task.driver is None:
            _Driver(task, self).attach()

    def callback_step(self, task: Task, event: EventTuple) -> None:
        """Deliver ``event`` to the callback (wasm side; the instance is entered by the caller)."""
        inst = self.state
        entered_here = inst.may_enter_from(None)
        if entered_here:
            self.rt.enter(inst, None)
        try:
            if self._exclusive:
                assert inst.exclusive is None
                inst.exclusive = task
            assert self._callback is not None
            code, p1, p2 = event
            # (_call, inline)
            current = self.rt._tls.current
            current.append(task)
            try:
                packed = self._callback(int(code), p1, p2)
            finally:
                current.pop()
            self.rt.note_step(code == EventCode.NONE and packed & 0xF == CALLBACK_YIELD)
            # The task exits or waits again; its driver re-arms after this step.
            task.callback_returned(packed)
        finally:
            if entered_here:
                self.rt.leave(inst, None)


# ---------------------------------------------------------------------------
# Host functions


@final
class HostFunc(ComponentFunc):
    """A Python callable (plain or ``async def``) offered as a component function."""

    __slots__ = ("_fn", "immediate", "is_coroutine", "name", "rt", "type")

    def __init__(
        self, rt: InstanceRuntime, ft: T.FuncType, fn: Callable[..., Any], name: str
    ) -> None:
        _check_arity(fn, len(ft.params), name)
        self.rt = rt
        self.type = ft
        self._fn = fn
        self.name = name
        self.is_coroutine = inspect.iscoroutinefunction(fn)
        # A plain function runs to completion when invoked (see ComponentFunc).
        self.immediate = None if self.is_coroutine else self._call_now

    def _call_plain(self, args: Sequence[Any]) -> list[Any]:
        """The plain function's results: what it raises poisons the instance."""
        try:
            result = self._fn(*args)
        except Trap:
            raise
        except Exception as exc:
            raise self._failure(exc) from exc
        return [] if self.type.result is None else [result]

    def _call_now(
        self, args: list[Any], lower: ValuesLowerer, cx: LiftLowerContext, vi: CoreValueIter
    ) -> list[Any]:
        """Call the plain function and return its lowered results (as :meth:`invoke` resolves)."""
        # (_call_plain, inline: this is the per-call path of every plain import.)
        try:
            result = self._fn(*args)
        except Trap:
            raise
        except Exception as exc:
            raise self._failure(exc) from exc
        try:
            return lower(cx, [] if self.type.result is None else [result], vi)
        except Trap:
            raise
        except Exception as exc:
            raise self._mismatch(exc) from exc

    def invoke(
        self,
        caller: InstanceState | None,
        on_start: OnStart,
        on_resolve: OnResolve,
        source_encoding: StringEncoding | None,
    ) -> OnCancel:
        args = on_start()
        if not self.is_coroutine:
            self._resolve(on_resolve, self._call_plain(args))
            return noop_cancel
        return self._start_coroutine(args, on_resolve)

    def _failure(self, exc: BaseException) -> Trap:
        """The trap that poisons the instance when the host function raised ``exc``."""
        message = f"host function `{self.name}` raised {type(exc).__name__}: {exc}"
        if isinstance(exc, RuntimeError) and _TRIO_MISUSE.search(str(exc)):
            # The rule for where host code runs (README "Where host code runs").
            message += (
                " (a plain `def` host function runs on the thread that runs the guest, "
                "a store thread here, and cannot use trio: make it `async def`, or start "
                "trio work with HostContext.start_soon)"
            )
        return Trap(message)

    def _resolve(self, on_resolve: OnResolve, results: list[Any] | None) -> None:
        """Hand the results to the caller, which lowers them: a bad value is a trap."""
        try:
            on_resolve(results, None)
        except Trap:
            raise
        except Exception as exc:
            raise self._mismatch(exc) from exc

    def _mismatch(self, exc: Exception) -> Trap:
        return Trap(
            f"host function `{self.name}` returned a value that does not match "
            f"its result type: {exc}"
        )

    def _start_coroutine(self, args: list[Any], on_resolve: OnResolve) -> OnCancel:
        rt = self.rt
        ex = rt.executor
        # The result goes back to the calling store's thread, no other.
        call = _HostCall(self, args, on_resolve, ex.current_agent())
        ex.outside_begin()
        rt.spawn_pooled(call.run)

        if not self.type.is_async:
            # A sync-typed import implemented by a coroutine: the host blocks
            # the calling frame (like any blocking host call), the guest
            # cannot observe it.
            rt.block_until(
                lambda: call.resolved or rt.poisoned is not None,
                lambda: f"host function {self.name}",
            )
            if rt.poisoned is not None and not call.resolved:
                trap(rt.poisoned)
        # The call is its own on_cancel (one object less per waiting call).
        return call


@final
class _HostCall:
    """One call of an ``async def`` host function, run as a trio task of the instance.

    Its outcome is posted back to the wasm side (the calling store's agent),
    where :meth:`deliver` resolves the call or poisons the instance.
    """

    __slots__ = ("agent", "args", "func", "kind", "on_resolve", "resolved", "scope", "value")

    def __init__(
        self, func: HostFunc, args: Sequence[Any], on_resolve: OnResolve, agent: Agent | None
    ) -> None:
        self.func = func
        self.args = args
        self.on_resolve = on_resolve
        self.agent = agent
        self.scope = trio.CancelScope()
        self.resolved = False
        # "cancelled" until the coroutine returns ("ok") or raises ("error").
        self.kind = "cancelled"
        self.value: Any = None

    async def run(self) -> None:
        ex = self.func.rt.executor
        try:
            with self.scope:
                coro = self.func._fn(*self.args)
                self.args = ()  # the coroutine has them
                self.value = await coro
                self.kind = "ok"
        except BaseException as exc:  # delivered to the wasm side as a trap
            self.kind, self.value = "error", exc
            if not isinstance(exc, Exception):
                raise
        finally:
            ex.post(self.deliver, self.agent)
            ex.outside_end()

    def deliver(self) -> None:
        """The coroutine ended: resolve the call, or poison the instance (wasm side)."""
        func = self.func
        rt = func.rt
        rt.note_step(False)
        kind, value = self.kind, self.value
        try:
            if kind == "ok":
                self._resolve([] if func.type.result is None else [value])
            elif kind == "cancelled":
                self._resolve(None)
            else:
                failure = value
                if not isinstance(value, Trap):
                    failure = func._failure(value)
                    failure.__cause__ = value
                rt.poison(failure)
        except Trap as exc:
            rt.poison(exc)

    def _resolve(self, results: list[Any] | None) -> None:
        if not self.resolved:
            self.resolved = True
            self.func._resolve(self.on_resolve, results)

    def __call__(self, caller: InstanceState | None) -> None:
        """The caller cancels the subtask (its ``on_cancel``): cancel the coroutine (on trio)."""
        self.func.rt.executor.call_soon_trio(self.scope.cancel)


# What trio says when it is used from a thread outside its run.
_TRIO_MISUSE = re.compile(r"async context|created by Trio|trio_token|Trio", re.IGNORECASE)


def _check_arity(fn: Callable[..., Any], count: int, where: str) -> None:
    error = arity_error(fn, count)
    if error is not None:
        raise LinkError(f"{where}: the host function does not accept {count} arguments: {error}")


# ---------------------------------------------------------------------------
# Lower trampolines


def _hooks_for(rt: InstanceRuntime, callee: ComponentFunc) -> AsyncValueHooks:
    # A host callee takes and returns host values (channels for streams and futures).
    return host_values(rt) if isinstance(callee, HostFunc) else HOOKS


def make_sync_lower(
    rt: InstanceRuntime, callee: ComponentFunc, options: CanonOptions, state: InstanceState
) -> Callable[..., Any]:
    """``canon lower`` without ``async`` (``_abi._lower.sync_lower``) for this runtime."""
    return sync_lower(rt, callee, options, state, _hooks_for(rt, callee))


def make_async_lower(
    rt: InstanceRuntime, callee: ComponentFunc, options: CanonOptions, state: InstanceState
) -> Callable[..., Any]:
    """``canon lower`` with ``async`` (``_abi._lower.async_lower``) for this runtime."""
    return async_lower(rt, callee, options, state, _hooks_for(rt, callee))
