"""``canon lower``: a core function that calls a component function, and the caller's subtask.

Every component function follows the specification's ``FuncInst`` protocol
(CanonicalABI.md "Embedding API"): ``invoke(caller, on_start, on_resolve,
source_encoding)`` starts a call and returns an ``on_cancel`` callable. The
callee calls ``on_start()`` to receive its arguments when it actually starts
(backpressure may delay that) and ``on_resolve(results, encoding)`` exactly
once, with the result list or ``None`` when it acknowledged cancellation.
``encoding`` is the string encoding the values were lifted from (None for the
host), so the receiver can transcode the way the specification observes.

Rules of the caller's side (CanonicalABI.md "canon lower", "Subtask State"):

* a subtask goes STARTING -> STARTED -> RETURNED, or ends CANCELLED_BEFORE_STARTED
  or CANCELLED_BEFORE_RETURNED when the callee acknowledges a cancellation;
* a synchronous lower blocks the calling task until the callee resolves; a
  synchronous task may only do so when the callee is synchronous too (or
  another guest thread of its instance can run meanwhile);
* an ``async`` lower returns RETURNED when the callee resolved during its
  eager start, otherwise the subtask's state and a new handle, and each later
  step becomes the subtask's pending event;
* borrowed handles lent to the callee stay lent until the resolution is
  delivered to the caller.

Blocking goes through the calling task and its :class:`Scheduler`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, final

from . import _types as T
from ._flat import CoreValueIter, ValuesLowerer, values_lifter_for, values_lowerer_for
from ._handles import InstanceState
from ._layout import MAX_FLAT_ASYNC_PARAMS, MAX_FLAT_PARAMS, MAX_FLAT_RESULTS
from ._options import AsyncValueHooks, CanonOptions, LiftLowerContext, StringEncoding
from ._resources import BorrowScope, may_borrow
from ._scheduler import Scheduler
from ._tasks import OnResolve, OnStart, Task
from ._trap import trap, trap_if
from ._waitables import EventCode, EventTuple, Subtask, SubtaskState

__all__ = ["ComponentFunc", "OnCancel", "async_lower", "noop_cancel", "sync_lower"]

OnCancel = Callable[[InstanceState | None], None]


def noop_cancel(caller: InstanceState | None) -> None:
    """The ``on_cancel`` of a call that can no longer be cancelled."""


class ComponentFunc:
    """A value of the component-level ``func`` index space (the specification's ``FuncInst``).

    ``invoke`` starts a call and returns its ``on_cancel``; see the module docstring.
    """

    type: T.FuncType

    #: Set by a callee that runs to completion whenever it is invoked, with no
    #: task, subtask events or cancellation of its own (a plain host
    #: function): ``immediate(args, lower, cx, vi)`` calls it with the lifted
    #: arguments and returns ``lower(cx, results, vi)``, lowered inside the
    #: call so that the callee can tell a bad result from its own failure. A
    #: synchronous lower then skips the subtask it would only create and
    #: resolve at once.
    immediate: (
        Callable[[list[Any], ValuesLowerer, LiftLowerContext, CoreValueIter], list[Any]] | None
    ) = None

    def invoke(
        self,
        caller: InstanceState | None,
        on_start: OnStart,
        on_resolve: OnResolve,
        source_encoding: StringEncoding | None,
    ) -> OnCancel:
        raise NotImplementedError


def sync_lower(
    rt: Scheduler,
    callee: ComponentFunc,
    options: CanonOptions,
    state: InstanceState,
    hooks: AsyncValueHooks,
) -> Callable[..., Any]:
    """CanonicalABI.md "canon lower" without ``async``: the call blocks until the callee resolves.

    ``hooks`` lift and lower the stream, future and error-context values the
    callee takes and returns (host channels when the callee is the host).
    """
    ft = callee.type
    lift_params = values_lifter_for(tuple(ft.param_types()), MAX_FLAT_PARAMS)
    lower_results = values_lowerer_for(tuple(ft.result_types()), MAX_FLAT_RESULTS)
    callee_async = ft.is_async

    def check_may_block(task: Task | None) -> None:
        if task is None or not task.may_block:
            # Calling an async-typed function synchronously may block, which a
            # synchronous task may not do, unless another of its instance's
            # threads is ready to run meanwhile (guest threads, _threads).
            if task is None or not rt.others_ready(task):
                trap("cannot block a synchronous task before returning")

    immediate = callee.immediate
    if immediate is not None:
        # The same call as below, without the subtask: the callee resolves
        # while invoked, so nothing can wait on, cancel or observe one. The
        # borrows lent to it end when it returns, as on delivery below.
        if not may_borrow((*ft.param_types(), *ft.result_types())):
            # No value of this signature touches a borrow scope: the call
            # has nothing to lend, so it needs none (chosen once, here).
            def lowered_plain(*flat: Any) -> Any:
                if not state.may_leave:
                    trap("cannot leave component instance")
                if callee_async:
                    check_may_block(rt.maybe_current_task())
                cx = LiftLowerContext(options, state, None, hooks=hooks)
                vi = CoreValueIter(flat)
                out = immediate(lift_params(cx, vi), lower_results, cx, vi)
                if not out:
                    return None
                return out[0]

            return lowered_plain

        def lowered_now(*flat: Any) -> Any:
            if not state.may_leave:
                trap("cannot leave component instance")
            if callee_async:
                check_may_block(rt.maybe_current_task())
            scope = BorrowScope()
            cx = LiftLowerContext(options, state, scope, hooks=hooks)
            vi = CoreValueIter(flat)
            out = immediate(lift_params(cx, vi), lower_results, cx, vi)
            if scope.lenders or scope.lent_host_reps:
                scope.release()
            if not out:
                return None
            return out[0]

        return lowered_now

    def lowered(*flat: Any) -> Any:
        trap_if(not state.may_leave, "cannot leave component instance")
        task = rt.maybe_current_task()
        if callee_async:
            check_may_block(task)
        subtask = Subtask()
        cx = LiftLowerContext(options, state, subtask.scope, hooks=hooks)
        vi = CoreValueIter(list(flat))

        def on_start() -> list[Any]:
            subtask.state = SubtaskState.STARTED
            return lift_params(cx, vi)

        def on_resolve(results: list[Any] | None, encoding: StringEncoding | None) -> None:
            if results is None:
                subtask.resolve_cancelled()
                return
            rcx = LiftLowerContext(
                options, state, subtask.scope, source_encoding=encoding, hooks=hooks
            )
            flat_results = lower_results(rcx, results, vi)
            subtask.resolve(SubtaskState.RETURNED, flat_results)

        subtask.on_cancel = callee.invoke(state, on_start, on_resolve, options.string_encoding)
        if not subtask.resolved():
            assert task is not None
            # A synchronous callee parks only when its guest threads switch:
            # it still runs on top of this call, which does not block.
            task.block_until(
                subtask.resolved,
                False,
                f"a synchronous call to {_name(callee)}",
                nested=not callee_async,
            )
        subtask.deliver_resolve()
        out = subtask.flat_results
        if not out:
            return None
        return out[0]

    return lowered


def async_lower(
    rt: Scheduler,
    callee: ComponentFunc,
    options: CanonOptions,
    state: InstanceState,
    hooks: AsyncValueHooks,
) -> Callable[..., Any]:
    """CanonicalABI.md "canon lower" with ``async``: returns at once, with a subtask if needed.

    ``hooks`` as for :func:`sync_lower`.
    """
    ft = callee.type
    plan = _AsyncLower(
        options,
        state,
        hooks,
        values_lifter_for(tuple(ft.param_types()), MAX_FLAT_ASYNC_PARAMS),
        values_lowerer_for(tuple(ft.result_types()), 0),
    )
    invoke = callee.invoke
    encoding = options.string_encoding

    def lowered(*flat: Any) -> int:
        if not state.may_leave:
            trap("cannot leave component instance")
        subtask = Subtask()
        call = _AsyncLowering(plan, subtask, flat)
        # The lowering is its own on_resolve: the callee keeps no bound method.
        subtask.on_cancel = invoke(state, call.on_start, call, encoding)
        if subtask.resolved():
            subtask.deliver_resolve()
            return int(SubtaskState.RETURNED)
        index = call.index = state.table.add(subtask)
        return int(subtask.state) | (index << 4)

    return lowered


@final
class _AsyncLower:
    """What every call through one ``async`` lower shares."""

    __slots__ = ("hooks", "lift_params", "lower_results", "options", "state")

    def __init__(
        self,
        options: CanonOptions,
        state: InstanceState,
        hooks: AsyncValueHooks,
        lift_params: Callable[[LiftLowerContext, CoreValueIter], list[Any]],
        lower_results: Callable[[LiftLowerContext, Sequence[Any], CoreValueIter | None], Any],
    ) -> None:
        self.options = options
        self.state = state
        self.hooks = hooks
        self.lift_params = lift_params
        self.lower_results = lower_results


@final
class _AsyncLowering:
    """One call through an ``async`` lower: the caller's side of the subtask.

    Once the subtask has a handle (``index``), each step of its progress
    (started, resolved) becomes its pending event (CanonicalABI.md "canon
    lower", ``on_progress``).
    """

    # Only the core arguments (a tuple of numbers, which the garbage
    # collector does not track) and a position are kept between the steps,
    # not the lifting context and value iterator: a waiting call's objects
    # are what every collection of a busy instance scans.
    __slots__ = ("flat", "index", "plan", "rest", "subtask")

    def __init__(self, plan: _AsyncLower, subtask: Subtask, flat: tuple[Any, ...]) -> None:
        self.plan = plan
        self.subtask = subtask
        self.flat = flat
        # Where the arguments end in ``flat`` (the result pointer follows).
        self.rest = 0
        # The subtask's handle: 0 until the call outlives its eager start.
        self.index = 0

    def on_start(self) -> list[Any]:
        subtask = self.subtask
        assert subtask.state is SubtaskState.STARTING
        subtask.state = SubtaskState.STARTED
        plan = self.plan
        cx = LiftLowerContext(plan.options, plan.state, subtask.scope, hooks=plan.hooks)
        vi = CoreValueIter(self.flat)
        args = plan.lift_params(cx, vi)
        self.rest = vi.i
        if self.index:
            subtask.set_pending_event(self.event)
        return args

    def on_resolve(self, results: list[Any] | None, encoding: StringEncoding | None) -> None:
        subtask = self.subtask
        if results is None:
            assert subtask.cancellation_requested
            subtask.resolve_cancelled()
        else:
            plan = self.plan
            rcx = LiftLowerContext(
                plan.options, plan.state, subtask.scope, source_encoding=encoding, hooks=plan.hooks
            )
            vi = CoreValueIter(self.flat)
            vi.i = self.rest
            plan.lower_results(rcx, results, vi)
            subtask.resolve(SubtaskState.RETURNED, [])
        if self.index:
            subtask.set_pending_event(self.event)

    __call__ = on_resolve

    def event(self) -> EventTuple:
        subtask = self.subtask
        if subtask.resolved() and not subtask.resolve_delivered():
            subtask.deliver_resolve()
        return (int(EventCode.SUBTASK), self.index, int(subtask.state))


def _name(f: ComponentFunc) -> str:
    return getattr(f, "name", "a function")
